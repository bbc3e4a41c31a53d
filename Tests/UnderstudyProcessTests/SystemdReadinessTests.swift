import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The packaged unit is `Type=notify`: the daemon tells systemd over `$NOTIFY_SOCKET` when it
/// is ready (sockets bound, keeper running) and when a clean stop begins. Here the test plays
/// systemd's part with a datagram socket of its own.
@Suite("Process: systemd readiness notification")
struct SystemdReadinessTests {
    @Test("READY=1 (with MAINPID) once the control socket is there; STOPPING=1 at SIGTERM, then exit 0")
    func readyAndStopping() async throws {
        let folder = "/tmp/understudy-notify-\(getpid())-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: false)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let socketPath = folder + "/notify"
        let listener = try DatagramListener(path: socketPath)
        defer { listener.close() }

        var spec = ClusterSpec(subnet: 211)
        spec.servers = ["node1", "node2"]
        spec.daemonEnvironment = ["NOTIFY_SOCKET": socketPath]
        try await withCluster(spec) { cluster in
            try cluster.start(["node1"])
            let ready = try await listener.receive(within: .seconds(30))
            let pid = try #require(cluster.pid(of: "node1"))
            let lines = ready.split(separator: "\n").map(String.init)
            #expect(lines.contains("READY=1"), "\(ready)")
            #expect(lines.contains("MAINPID=\(pid)"), "\(ready)")
            #expect(lines.contains { $0.hasPrefix("STATUS=server node1 runs") }, "\(ready)")
            // Ready means commands can reach it: the socket is bound before the message.
            #expect(FileManager.default.fileExists(atPath: cluster.stateDirectory(of: "node1") + "/understudy.sock"))

            cluster.send(SIGTERM, to: "node1")
            let stopping = try await listener.receive(within: .seconds(10))
            #expect(stopping.split(separator: "\n").contains("STOPPING=1"), "\(stopping)")
            #expect(try await cluster.waitForExit("node1") == 0)
        }
    }
}

/// A non-blocking `AF_UNIX` datagram socket bound at a path, polled with bounded waits (no
/// thread of the test pool blocks in recv).
private final class DatagramListener: @unchecked Sendable {
    let descriptor: Int32

    init(path: String) throws {
        descriptor = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard descriptor >= 0 else { throw ProcessTestError("socket: \(String(cString: strerror(errno)))") }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8) + [0]
        guard bytes.count <= MemoryLayout.size(ofValue: address.sun_path) else { throw ProcessTestError("\(path) is too long") }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (index, byte) in bytes.enumerated() { raw[index] = byte }
        }
        let length = socklen_t(MemoryLayout<sa_family_t>.size + bytes.count)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, length) }
        }
        guard bound == 0 else {
            Glibc.close(descriptor)
            throw ProcessTestError("bind \(path): \(String(cString: strerror(errno)))")
        }
    }

    func receive(within limit: Duration) async throws -> String {
        let deadline = ContinuousClock.now + limit
        var buffer = [UInt8](repeating: 0, count: 4096)
        while ContinuousClock.now < deadline {
            let count = buffer.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
            if count > 0 { return String(decoding: buffer[0..<count], as: UTF8.self) }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw ProcessTestError("no notification within \(limit)")
    }

    func close() { Glibc.close(descriptor) }
}
