import Foundation
import Testing
import UnderstudyTestSupport

@testable import UnderstudyNode

#if canImport(Glibc)
    import Glibc
#endif

/// A real SMTP server for tests: scripts/smtp_test_server.py (aiosmtpd, Debian
/// python3-aiosmtpd) on a free loopback port, in a folder of its own, stopped by PID.
final class MailTestServer: @unchecked Sendable {
    enum Security { case none, starttls, implicitTLS }

    static let python = "/usr/bin/python3"
    static let prerequisite = Prerequisite(
        "python3-aiosmtpd",
        missing: Prerequisite.exitStatus(python, ["-c", "import aiosmtpd"]) == 0
            ? nil : "\(python) cannot import aiosmtpd (Debian package python3-aiosmtpd)")
    static let script: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<4 { url.deleteLastPathComponent() }
        return url.appendingPathComponent("scripts/smtp_test_server.py").path
    }()

    let folder: String
    let port: Int
    let user = "alice"
    let password = "pw-\(UInt32.random(in: 100_000...999_999))"
    /// The server's self-signed certificate (trust it as the CA file).
    private(set) var certificate = ""
    private let process = Process()

    var outbox: String { folder + "/outbox" }

    private init(folder: String, port: Int) {
        self.folder = folder
        self.port = port
    }

    deinit { stop() }

    static func start(security: Security, authentication: String? = nil, refuse: [String] = []) async throws -> MailTestServer {
        let folder = FileManager.default.temporaryDirectory.path + "/understudy-smtp-\(UUID().uuidString.prefix(8))"
        let server = MailTestServer(folder: folder, port: try FreePort.take())
        do {
            try FileManager.default.createDirectory(atPath: server.outbox, withIntermediateDirectories: true)
            let files = try TestCertificates.selfSigned(in: folder, name: "smtp")
            server.certificate = files.certificate
            var arguments = [
                script, "--port", String(server.port), "--outbox", server.outbox, "--cert", files.certificate, "--key", files.key,
            ]
            switch security {
            case .none: break
            case .starttls: arguments.append("--starttls")
            case .implicitTLS: arguments.append("--implicit-tls")
            }
            if let authentication {
                try server.password.write(toFile: folder + "/password", atomically: true, encoding: .utf8)
                arguments += ["--user", server.user, "--password-file", folder + "/password", "--mechanisms", authentication]
            }
            for address in refuse { arguments += ["--refuse", address] }
            server.process.executableURL = URL(fileURLWithPath: python)
            server.process.arguments = arguments
            let log =
                FileHandle(forWritingAtPath: folder + "/server.log")
                ?? {
                    FileManager.default.createFile(atPath: folder + "/server.log", contents: nil)
                    return FileHandle(forWritingAtPath: folder + "/server.log") ?? .nullDevice
                }()
            server.process.standardOutput = log
            server.process.standardError = log
            try server.process.run()
            // Bounded: 100 rounds of 100 ms.
            for _ in 0..<100 {
                if FileManager.default.fileExists(atPath: server.outbox + "/ready") { return server }
                guard server.process.isRunning else { break }
                try await Task.sleep(for: .milliseconds(100))
            }
            throw TestSupportError("the SMTP test server did not start: \(server.log)")
        } catch {
            server.stop()
            throw error
        }
    }

    var log: String { (try? String(contentsOfFile: folder + "/server.log", encoding: .utf8)) ?? "" }

    /// The messages it stored, in order.
    func messages() throws -> [StoredMail] {
        let names = try FileManager.default.contentsOfDirectory(atPath: outbox).filter { $0.hasSuffix(".json") }
        return try names.sorted { (Int($0.dropLast(5)) ?? 0) < (Int($1.dropLast(5)) ?? 0) }.map { name in
            try JSONDecoder().decode(StoredMail.self, from: Data(contentsOf: URL(fileURLWithPath: outbox + "/" + name)))
        }
    }

    struct StoredMail: Decodable {
        let mail_from: String
        let rcpt_tos: [String]
        let content: String
        let tls: Bool
        let authenticated: Bool?
    }

    /// Stops the server by its PID and removes its folder. (The script unblocks SIGTERM, which
    /// it inherits blocked from the test runner's thread.)
    func stop() {
        process.stopBounded(signal: SIGTERM)
        try? FileManager.default.removeItem(atPath: folder)
    }
}

/// A TCP peer on loopback that sends fixed bytes to the first client and then reads until the
/// client hangs up (for replies no real server sends: garbage, floods). One connection, on
/// a thread of its own; every wait bounded by 5 s.
final class ScriptedSMTPPeer: @unchecked Sendable {
    let port: Int
    private let descriptor: Int32

    init(sending bytes: [UInt8]) throws {
        port = try FreePort.take()
        descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw TestSupportError("socket: \(String(cString: strerror(errno)))") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr = in_addr(s_addr: inet_addr("127.0.0.1"))
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(descriptor, 1) == 0 else {
            close(descriptor)
            throw TestSupportError("bind/listen on \(port): \(String(cString: strerror(errno)))")
        }
        let listener = descriptor
        let thread = Thread {
            var waiting = pollfd(fd: listener, events: Int16(POLLIN), revents: 0)
            guard poll(&waiting, 1, 5000) > 0 else { return }
            let connection = accept(listener, nil, nil)
            guard connection >= 0 else { return }
            defer { close(connection) }
            _ = bytes.withUnsafeBytes { send(connection, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            var buffer = [UInt8](repeating: 0, count: 4096)
            // Bounded: at most 100 reads, each waiting at most 5 s.
            for _ in 0..<100 {
                var readable = pollfd(fd: connection, events: Int16(POLLIN), revents: 0)
                guard poll(&readable, 1, 5000) > 0, recv(connection, &buffer, buffer.count, 0) > 0 else { return }
            }
        }
        thread.start()
    }

    deinit { close(descriptor) }
}
