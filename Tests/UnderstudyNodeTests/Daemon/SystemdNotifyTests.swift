import Foundation
import Testing
import UnderstudyNode

#if canImport(Glibc)
    import Glibc
#endif

/// A datagram socket standing for systemd's notification socket: bound at a path (or an
/// abstract name), it receives what `SystemdNotify.send` sends.
private final class NotifyListener {
    let descriptor: Int32
    let name: String
    let path: String?

    init(abstract: Bool) throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("notify-\(UUID().uuidString.prefix(8))").path
        descriptor = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else { throw NotifyTestFailure("socket failed") }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        var bytes: [UInt8]
        if abstract {
            name = "@understudy-notify-test-\(getpid())-\(UUID().uuidString.prefix(8))"
            path = nil
            bytes = Array(name.utf8)
            bytes[0] = 0
        } else {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            name = directory + "/notify"
            path = directory
            bytes = Array(name.utf8) + [0]
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (index, byte) in bytes.enumerated() { raw[index] = byte }
        }
        let length = socklen_t(MemoryLayout<sa_family_t>.size + bytes.count)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, length) }
        }
        guard bound == 0 else {
            close(descriptor)
            throw NotifyTestFailure("bind \(name): \(String(cString: strerror(errno)))")
        }
        // A bounded receive: a message that never comes fails the test instead of hanging it.
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    func receive() -> String? {
        var buffer = [UInt8](repeating: 0, count: 4096)
        let count = buffer.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
        guard count > 0 else { return nil }
        return String(decoding: buffer[0..<count], as: UTF8.self)
    }

    deinit {
        close(descriptor)
        if let path { try? FileManager.default.removeItem(atPath: path) }
    }
}

private struct NotifyTestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

@Suite("systemd readiness notification (sd_notify without libsystemd)")
struct SystemdNotifyTests {
    @Test("a path socket receives READY=1 with its status line")
    func pathSocket() throws {
        let listener = try NotifyListener(abstract: false)
        try SystemdNotify.send("READY=1\nSTATUS=server node1 runs", to: listener.name)
        #expect(listener.receive() == "READY=1\nSTATUS=server node1 runs")
        try SystemdNotify.send("STOPPING=1", to: listener.name)
        #expect(listener.receive() == "STOPPING=1")
    }

    @Test("an abstract socket (@name, as systemd passes it) receives the message")
    func abstractSocket() throws {
        let listener = try NotifyListener(abstract: true)
        try SystemdNotify.send("READY=1", to: listener.name)
        #expect(listener.receive() == "READY=1")
    }

    @Test("a socket that is not there, an empty or an overlong name: a clear error, no crash")
    func failures() {
        let missing = FileManager.default.temporaryDirectory.appendingPathComponent("no-such-notify-\(UUID().uuidString)").path
        #expect(throws: SystemdNotify.Failure.self) { try SystemdNotify.send("READY=1", to: missing) }
        #expect(throws: SystemdNotify.Failure.self) { try SystemdNotify.send("READY=1", to: "@") }
        #expect(throws: SystemdNotify.Failure.self) {
            try SystemdNotify.send("READY=1", to: "/tmp/" + String(repeating: "x", count: 200))
        }
    }
}
