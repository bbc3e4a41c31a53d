import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// systemd's readiness protocol (`sd_notify(3)`) without libsystemd: one datagram of
/// `KEY=VALUE` lines to the `AF_UNIX` socket named by `$NOTIFY_SOCKET` (a path, or an
/// abstract name written with a leading `@`). The packaged unit (`understudy.service`,
/// `Type=notify`) waits for `READY=1` before it counts the daemon as started; `STOPPING=1`
/// tells it a clean stop has begun. Without `$NOTIFY_SOCKET` (not under systemd) nothing is sent.
public enum SystemdNotify {
    /// `$NOTIFY_SOCKET` as the daemon was started with, read once.
    public static let socketPath: String? = {
        guard let value = ProcessInfo.processInfo.environment["NOTIFY_SOCKET"], !value.isEmpty else { return nil }
        return value
    }()

    /// Sends `state` to systemd when the daemon runs under it; returns whether it was sent.
    @discardableResult
    public static func notify(_ state: String) -> Bool {
        guard let socketPath else { return false }
        return (try? send(state, to: socketPath)) != nil
    }

    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    /// Sends one datagram holding `state` to the socket `path` (`@name`: abstract namespace).
    public static func send(_ state: String, to path: String) throws(Failure) {
        var name = Array(path.utf8)
        let abstract = name.first == UInt8(ascii: "@")
        if abstract { name[0] = 0 }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        // A path needs room for its terminating NUL; an abstract name is counted exactly.
        guard name.count > (abstract ? 1 : 0), name.count < capacity + (abstract ? 1 : 0) else {
            throw Failure(description: "NOTIFY_SOCKET \(path) is not a usable socket name")
        }
        withUnsafeMutableBytes(of: &address.sun_path) { bytes in
            for (index, byte) in name.enumerated() { bytes[index] = byte }
        }
        let pathOffset = MemoryLayout<sockaddr_un>.offset(of: \.sun_path) ?? MemoryLayout<sa_family_t>.size
        let length = socklen_t(pathOffset + name.count + (abstract ? 0 : 1))
        let descriptor = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else { throw Failure(description: "socket: \(String(cString: strerror(errno)))") }
        defer { close(descriptor) }
        let message = Array(state.utf8)
        let sent = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { socketAddress in
                message.withUnsafeBytes { bytes in
                    sendto(descriptor, bytes.baseAddress, bytes.count, Int32(MSG_NOSIGNAL), socketAddress, length)
                }
            }
        }
        guard sent == message.count else {
            throw Failure(description: "sending to NOTIFY_SOCKET \(path): \(String(cString: strerror(errno)))")
        }
    }
}
