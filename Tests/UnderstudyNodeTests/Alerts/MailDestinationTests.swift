import Foundation
import Testing
import UnderstudyModel
import UnderstudyTestSupport

@testable import UnderstudyNode

/// The mail destination against a real SMTP server (aiosmtpd): plain delivery, STARTTLS with
/// AUTH PLAIN and LOGIN, implicit TLS, refusals, certificate checks, outages and timeouts.
@Suite("Mail destination", .serialized)
struct MailDestinationTests {
    static let alert = AlertEvent(
        cluster: "prod", server: "db1", time: Date(timeIntervalSince1970: 1_796_549_000), level: .error, module: "rm",
        eventID: 9, message: "Monitor fipw1 detected an error.\n.\nThe line above is a lone dot.")

    func settings(_ server: MailTestServer, security: MailSecurity, to: [String] = ["ops@example.com", "dba@example.com"])
        -> MailSettings
    {
        MailSettings(
            host: "127.0.0.1", port: server.port, security: security, caFile: security == .none ? nil : server.certificate,
            from: "understudy@example.com", to: to, timeout: .seconds(10), heloName: "db1.example.com")
    }

    @Test(
        "plain delivery to two recipients: envelope, headers, dot-stuffed body",
        .requires(MailTestServer.prerequisite, TestCertificates.openssl))
    func plainDelivery() async throws {
        let server = try await MailTestServer.start(security: .none)
        defer { server.stop() }
        try await MailDestination(settings: settings(server, security: .none)).deliver(Self.alert)
        let mails = try server.messages()
        try #require(mails.count == 1, "\(server.log)")
        #expect(mails[0].mail_from == "understudy@example.com")
        #expect(mails[0].rcpt_tos == ["ops@example.com", "dba@example.com"])
        #expect(mails[0].tls == false)
        // Long header lines are folded (CRLF + space); unfolded, the subject reads as one line.
        let content = mails[0].content.replacingOccurrences(of: "\r\n ", with: " ")
        #expect(content.contains("Subject: [understudy] prod db1 ERROR rm 9: Monitor fipw1 detected an error. . The line"))
        #expect(content.contains("To: ops@example.com, dba@example.com"))
        #expect(content.contains("Message-ID: <"))
        // The server undid the dot-stuffing: the lone dot arrives as a lone dot.
        #expect(content.contains("error.\r\n.\r\nThe line above"))
    }

    /// STARTTLS with AUTH PLAIN; AUTH LOGIN when the server offers only LOGIN; implicit TLS
    /// (port 465 style). Each time the certificate is checked against the CA file.
    @Test(
        "TLS and authentication: STARTTLS + PLAIN, STARTTLS + LOGIN only, implicit TLS",
        .requires(MailTestServer.prerequisite, TestCertificates.openssl),
        arguments: [
            (MailTestServer.Security.starttls, MailSecurity.starttls, "PLAIN"), (.starttls, .starttls, "LOGIN"),
            (.implicitTLS, .tls, "PLAIN,LOGIN"),
        ])
    func authenticated(served: MailTestServer.Security, security: MailSecurity, mechanisms: String) async throws {
        let server = try await MailTestServer.start(security: served, authentication: mechanisms)
        defer { server.stop() }
        var mail = settings(server, security: security)
        mail.user = server.user
        mail.password = server.password
        try await MailDestination(settings: mail).deliver(Self.alert)
        let mails = try server.messages()
        try #require(mails.count == 1, "\(server.log)")
        #expect(mails[0].tls && mails[0].authenticated == true)
    }

    @Test(
        "a wrong password: the server's reply in the error, never the password",
        .requires(MailTestServer.prerequisite, TestCertificates.openssl))
    func wrongPassword() async throws {
        let server = try await MailTestServer.start(security: .starttls, authentication: "PLAIN")
        defer { server.stop() }
        var mail = settings(server, security: .starttls)
        mail.user = server.user
        mail.password = "not-" + server.password
        let error = try await #require(throws: MailDeliveryError.self) {
            try await MailDestination(settings: mail).deliver(Self.alert)
        }
        #expect(error.description.contains("AUTH PLAIN as alice"))
        #expect(error.description.contains("535"))
        #expect(error.description.contains("127.0.0.1:\(server.port)"))
        #expect(!error.description.contains(server.password))
        #expect(!error.description.contains(Data("\0alice\0not-\(server.password)".utf8).base64EncodedString()))
        #expect(error.isPermanent)
        #expect(try server.messages().isEmpty)
    }

    @Test("a certificate the CA file does not vouch for is refused", .requires(MailTestServer.prerequisite, TestCertificates.openssl))
    func untrustedCertificate() async throws {
        let server = try await MailTestServer.start(security: .starttls)
        defer { server.stop() }
        let other = try TestCertificates.selfSigned(in: server.folder + "/other", name: "other")
        var mail = settings(server, security: .starttls)
        mail.caFile = other.certificate
        let error = try await #require(throws: MailDeliveryError.self) {
            try await MailDestination(settings: mail).deliver(Self.alert)
        }
        #expect(error.description.contains("TLS with the mail server 127.0.0.1:\(server.port) failed"))
        #expect(try server.messages().isEmpty)
        // Verification off: the same server is accepted.
        mail.caFile = nil
        mail.verifyCertificate = false
        try await MailDestination(settings: mail).deliver(Self.alert)
        #expect(try server.messages().count == 1)
    }

    @Test("a refused recipient is named; the others get the mail", .requires(MailTestServer.prerequisite, TestCertificates.openssl))
    func refusedRecipient() async throws {
        let server = try await MailTestServer.start(security: .none, refuse: ["gone@example.com"])
        defer { server.stop() }
        let mail = settings(server, security: .none, to: ["ops@example.com", "gone@example.com", "dba@example.com"])
        let error = try await #require(throws: MailDeliveryError.self) {
            try await MailDestination(settings: mail).deliver(Self.alert)
        }
        #expect(error.refusedRecipients == ["gone@example.com"])
        #expect(error.description.contains("gone@example.com (550"))
        #expect(error.isPermanent)
        let mails = try server.messages()
        #expect(mails.map(\.rcpt_tos) == [["ops@example.com", "dba@example.com"]])
    }

    @Test("STARTTLS required but not offered: an error, no downgrade", .requires(MailTestServer.prerequisite, TestCertificates.openssl))
    func noDowngrade() async throws {
        let server = try await MailTestServer.start(security: .none)
        defer { server.stop() }
        let error = try await #require(throws: MailDeliveryError.self) {
            try await MailDestination(settings: settings(server, security: .starttls)).deliver(Self.alert)
        }
        #expect(error.description.contains("does not offer STARTTLS"))
        #expect(try server.messages().isEmpty)
    }

    @Test("server down: refused at once, naming the server")
    func serverDown() async throws {
        let port = try FreePort.take()
        let mail = MailSettings(
            host: "127.0.0.1", port: port, security: .none, from: "a@example.com", to: ["b@example.com"], timeout: .seconds(10))
        let started = ContinuousClock.now
        let error = try await #require(throws: MailDeliveryError.self) {
            try await MailDestination(settings: mail).deliver(Self.alert)
        }
        #expect(error.description.contains("cannot connect to the mail server 127.0.0.1:\(port)"))
        #expect(error.description.lowercased().contains("refused"))
        #expect(!error.isPermanent)
        // Not a timing assertion on the code: a refusal must not wait for the 10 s timeout.
        #expect(started.duration(to: .now) < .seconds(9))
    }

    @Test("a server that accepts but never answers: the timeout ends the attempt")
    func silentServer() async throws {
        let port = try FreePort.take()
        let listener = try SilentListener(address: "127.0.0.1", port: port)
        defer { listener.close() }
        let mail = MailSettings(
            host: "127.0.0.1", port: port, security: .starttls, from: "a@example.com", to: ["b@example.com"],
            timeout: .milliseconds(800))
        let error = try await #require(throws: MailDeliveryError.self) {
            try await MailDestination(settings: mail).deliver(Self.alert)
        }
        #expect(error.description.contains("did not complete the exchange within"))
        #expect(error.description.contains("waiting for the greeting"))
        #expect(!error.isPermanent)
    }

    @Test("a CA file that is not PEM is a settings error naming the file")
    func badCAFile() throws {
        let path = FileManager.default.temporaryDirectory.path + "/understudy-not-pem-\(UUID().uuidString.prefix(8))"
        try "not a certificate".write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let mail = MailSettings(host: "mail.example.com", caFile: path, from: "a@example.com", to: ["b@example.com"])
        #expect {
            _ = try MailDestination(settings: mail)
        } throws: { error in
            "\(error)".contains(path)
        }
    }

    /// Replies no real server sends reach the client through a real socket: each ends the
    /// attempt with an error that names the server and says what was wrong.
    @Test(
        "malformed, refusing and flooding servers: errors naming the server",
        arguments: [
            ("hello there\r\n", "sent a malformed reply: \"hello there\" is not a reply line", false),
            ("220-first\r\n221 second\r\n", "continued with code 221 after 220", false),
            ("554 5.3.2 no service here\r\n", "answered the connection with 554 5.3.2 no service here", true),
            ("220 " + String(repeating: "x", count: 100_000), "longer than 2048 bytes", false),
        ])
    func misbehavingServer(greeting: String, words: String, permanent: Bool) async throws {
        let peer = try ScriptedSMTPPeer(sending: Array(greeting.utf8))
        let mail = MailSettings(
            host: "127.0.0.1", port: peer.port, security: .none, from: "a@example.com", to: ["b@example.com"],
            timeout: .seconds(10))
        let error = try await #require(throws: MailDeliveryError.self) {
            try await MailDestination(settings: mail).deliver(Self.alert)
        }
        #expect(error.description.contains("the mail server 127.0.0.1:\(peer.port)"))
        #expect(error.description.contains(words), "\(error)")
        #expect(error.isPermanent == permanent)
    }
}
