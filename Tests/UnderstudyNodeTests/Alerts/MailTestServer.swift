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
        if process.isRunning {
            kill(process.processIdentifier, SIGTERM)
            // Bounded: 50 rounds of 100 ms, then SIGKILL.
            for _ in 0..<50 where process.isRunning { usleep(100_000) }
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
            process.waitUntilExit()
        }
        try? FileManager.default.removeItem(atPath: folder)
    }
}
