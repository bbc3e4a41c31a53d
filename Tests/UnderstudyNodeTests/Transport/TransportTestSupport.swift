import Foundation
import NIOCore
import NIOPosix
import Testing

@testable import UnderstudyNode

/// Helpers for the transport tests, namespaced so they cannot clash with other suites.
enum TransportTestSupport {
    static let key: ClusterKey = {
        do { return try ClusterKey(material: Array("transport-test-cluster-key-0123456789".utf8)) } catch { fatalError("\(error)") }
    }()

    static let otherKey: ClusterKey = {
        do { return try ClusterKey(material: Array("a-completely-different-key-9876543210".utf8)) } catch { fatalError("\(error)") }
    }()

    /// A fresh directory under /tmp (short, so UNIX socket paths fit), removed afterwards
    /// whether the body succeeds or throws.
    static func withTemporaryDirectory<Result>(_ body: (String) async throws -> Result) async throws -> Result {
        var template = Array(("/tmp/us-transport-" + String(repeating: "X", count: 6)).utf8CString)
        let directory: String = try template.withUnsafeMutableBufferPointer { buffer in
            guard let baseAddress = buffer.baseAddress, mkdtemp(baseAddress) != nil else {
                throw POSIXError(.EIO)
            }
            return String(cString: baseAddress)
        }
        do {
            let result = try await body(directory)
            try? FileManager.default.removeItem(atPath: directory)
            return result
        } catch {
            try? FileManager.default.removeItem(atPath: directory)
            throw error
        }
    }

    /// Runs `body` with a channel and always closes it afterwards.
    static func withClosing<Result>(_ channel: Channel, _ body: () async throws -> Result) async throws -> Result {
        do {
            let result = try await body()
            try? await channel.close()
            return result
        } catch {
            try? await channel.close()
            throw error
        }
    }

    /// A plain UDP socket (no codec) for sending raw bytes.
    static func plainUDPSocket() async throws -> Channel {
        try await DatagramBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .bind(host: "127.0.0.1", port: 0)
            .get()
    }

    /// A plain TCP connection (no framing handler) for sending raw bytes.
    static func plainTCPConnection(port: Int) async throws -> Channel {
        try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: "127.0.0.1", port: port)
            .get()
    }

    /// A plain UNIX-socket connection (no framing handler) for sending raw bytes.
    static func plainUnixConnection(path: String) async throws -> Channel {
        try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(unixDomainSocketPath: path)
            .get()
    }

    /// A TCP listener that accepts connections and never writes anything.
    static func silentTCPListener() async throws -> Channel {
        try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .bind(host: "127.0.0.1", port: 0)
            .get()
    }

    /// A port on 127.0.0.1 that nothing listens on (bound by us, then released).
    /// A TCP port on 127.0.0.1 that refuses connections for as long as `body` runs: a socket
    /// bound to it that never listens holds it, so no parallel test can take it meanwhile.
    static func withRefusingTCPPort<T>(_ body: (Int) async throws -> T) async throws -> T {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw SocketSetupError(what: "socket") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        guard bound else { throw SocketSetupError(what: "bind") }
        return try await body(Int(UInt16(bigEndian: address.sin_port)))
    }

    struct SocketSetupError: Error {
        var what: String
    }

    static func fileMode(_ path: String) -> UInt32? {
        var status = stat()
        guard lstat(path, &status) == 0 else { return nil }
        return UInt32(status.st_mode) & 0o7777
    }

    static func fileExists(_ path: String) -> Bool {
        var status = stat()
        return lstat(path, &status) == 0
    }
}

/// Deterministic generator so garbage tests are reproducible.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var value = state
        value = (value ^ (value >> 30)) &* 0xBF58_476D_1CE4_E5B9
        value = (value ^ (value >> 27)) &* 0x94D0_49BB_1331_11EB
        return value ^ (value >> 31)
    }
}
