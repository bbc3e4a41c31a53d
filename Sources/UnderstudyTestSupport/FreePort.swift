import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// An error of the test harness itself (a server that would not start, a port the kernel
/// would not give), as opposed to a failure of the code under test.
public struct TestSupportError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Ports for test servers, taken from the kernel instead of fixed or derived from the pid:
/// a fixed port in the ephemeral range can be in use by any outgoing connection of the
/// machine, and two test runs would share it.
public enum FreePort {
    /// A port that is free for both TCP and UDP on every address at the moment of the call.
    /// The kernel picks it (bind to port 0 on the wildcard address); the sockets are closed
    /// before returning, so the caller's server can bind it. The kernel hands out ephemeral
    /// ports in a random order, so the same port coming back before the server binds it is
    /// unlikely; `take(count:)` never returns the same port twice.
    public static func take() throws -> Int {
        for _ in 0..<50 {
            let port = try bind(type: SOCK_STREAM, port: 0)
            // The same number must be free for UDP too (heartbeats and control share a port set).
            if (try? bind(type: SOCK_DGRAM, port: port)) != nil { return port }
        }
        throw TestSupportError("the kernel gave no port free for both TCP and UDP in 50 tries")
    }

    /// `count` distinct free ports.
    public static func take(count: Int) throws -> [Int] {
        var ports: [Int] = []
        var tries = 0
        while ports.count < count {
            tries += 1
            if tries > 50 * count { throw TestSupportError("could not find \(count) distinct free ports") }
            let port = try take()
            if !ports.contains(port) { ports.append(port) }
        }
        return ports
    }

    /// Binds a socket of `type` to 0.0.0.0:`port` and closes it; returns the bound port.
    private static func bind(type: __socket_type, port: Int) throws -> Int {
        let descriptor = socket(AF_INET, Int32(type.rawValue), 0)
        guard descriptor >= 0 else { throw TestSupportError("socket(): \(String(cString: strerror(errno)))") }
        defer { close(descriptor) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr = in_addr(s_addr: INADDR_ANY)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard bound == 0 else { throw TestSupportError("bind(\(port)): \(String(cString: strerror(errno)))") }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let named = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
        }
        guard named == 0 else { throw TestSupportError("getsockname(): \(String(cString: strerror(errno)))") }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}
