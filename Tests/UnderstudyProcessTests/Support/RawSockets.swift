import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// IPv4 socket addresses for the raw sockets below.
func makeSocketAddress(_ host: String, _ port: Int) throws -> sockaddr_in {
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = UInt16(port).bigEndian
    guard inet_pton(AF_INET, host, &address.sin_addr) == 1 else { throw ProcessTestError("not an IPv4 address: \(host)") }
    return address
}

func withSocketAddress<Result>(_ address: sockaddr_in, _ body: (UnsafePointer<sockaddr>, socklen_t) -> Result) -> Result {
    var copy = address
    return withUnsafePointer(to: &copy) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
}

/// Waits up to `timeout` for `descriptor` to become readable.
func waitReadable(_ descriptor: Int32, timeout: Duration) -> Bool {
    var entry = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
    let milliseconds = Int32(timeout.components.seconds * 1000 + timeout.components.attoseconds / 1_000_000_000_000_000)
    return Glibc.poll(&entry, 1, max(0, milliseconds)) > 0
}

/// A plain UDP socket: to listen where a server that is not running would receive its
/// heartbeats, and to throw garbage at daemons.
final class RawUDPSocket {
    let descriptor: Int32

    init(bindTo host: String, port: Int) throws {
        descriptor = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        guard descriptor >= 0 else { throw ProcessTestError("socket() failed: errno \(errno)") }
        let address = try makeSocketAddress(host, port)
        let bound = withSocketAddress(address) { bind(descriptor, $0, $1) }
        guard bound == 0 else {
            let error = errno
            close(descriptor)
            throw ProcessTestError("cannot bind UDP \(host):\(port): errno \(error)")
        }
    }

    deinit { close(descriptor) }

    func send(_ bytes: [UInt8], to host: String, port: Int) throws {
        let address = try makeSocketAddress(host, port)
        _ = bytes.withUnsafeBytes { buffer in
            withSocketAddress(address) { sendto(descriptor, buffer.baseAddress, buffer.count, 0, $0, $1) }
        }
    }

    /// The next datagram, or nil when none arrives within `timeout`.
    func receive(timeout: Duration) -> [UInt8]? {
        guard waitReadable(descriptor, timeout: timeout) else { return nil }
        var buffer = [UInt8](repeating: 0, count: 65_536)
        let count = buffer.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
        return count >= 0 ? Array(buffer.prefix(count)) : nil
    }
}

/// A plain TCP connection to a daemon's control port.
final class RawTCPConnection {
    let descriptor: Int32

    init(to host: String, port: Int) throws {
        descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw ProcessTestError("socket() failed: errno \(errno)") }
        let address = try makeSocketAddress(host, port)
        let connected = withSocketAddress(address) { connect(descriptor, $0, $1) }
        guard connected == 0 else {
            let error = errno
            close(descriptor)
            throw ProcessTestError("cannot connect to \(host):\(port): errno \(error)")
        }
    }

    deinit { close(descriptor) }

    /// Writes what it can; a peer that already hung up is not an error here.
    func send(_ bytes: [UInt8]) {
        _ = bytes.withUnsafeBytes { Glibc.send(descriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
    }

    /// Reads until the peer closes the connection (true) or `timeout` passes (false).
    func waitForClose(timeout: Duration) -> Bool {
        let deadline = ContinuousClock.now + timeout
        var buffer = [UInt8](repeating: 0, count: 4096)
        while ContinuousClock.now < deadline {
            guard waitReadable(descriptor, timeout: deadline - ContinuousClock.now) else { return false }
            let count = buffer.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
            if count <= 0 { return true }
        }
        return false
    }
}

/// The sender name inside a heartbeat datagram ("USHB" | version | nameLength | name | …).
func heartbeatSender(of datagram: [UInt8]) -> String? {
    guard datagram.count > 6, Array(datagram.prefix(4)) == Array("USHB".utf8) else { return nil }
    let length = Int(datagram[5])
    guard datagram.count >= 6 + length else { return nil }
    return String(decoding: datagram[6..<(6 + length)], as: UTF8.self)
}
