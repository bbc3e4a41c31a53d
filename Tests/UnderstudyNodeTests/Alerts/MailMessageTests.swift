import Foundation
import Testing
import UnderstudyModel

@testable import UnderstudyNode

/// The mail an alert becomes: subject format, headers, encodings, dot-stuffing, and the
/// settings' checks.
@Suite("Mail message")
struct MailMessageTests {
    static let alert = AlertEvent(
        cluster: "prod", server: "db1", time: Date(timeIntervalSince1970: 1_796_549_000), level: .error, module: "rm",
        eventID: 9, message: "Monitor fipw1 detected an error.")

    func text(_ alert: AlertEvent) -> String {
        String(
            decoding: MailMessage.render(
                alert, from: "ha@example.com", to: ["a@example.com", "b@example.com"],
                date: alert.time, messageID: "<id@example.com>"), as: UTF8.self)
    }

    @Test("subject: [understudy] cluster server LEVEL module id: message")
    func subject() {
        #expect(MailMessage.subject(Self.alert) == "[understudy] prod db1 ERROR rm 9: Monitor fipw1 detected an error.")
        var long = Self.alert
        long.level = .warning
        long.message = String(repeating: "x", count: 300) + "\r\nBcc: victim@example.com"
        let subject = MailMessage.subject(long)
        #expect(subject.hasPrefix("[understudy] prod db1 WARN rm 9: xxx"))
        #expect(subject.hasSuffix("…"))
        #expect(!subject.contains("\n") && !subject.contains("\r"))
    }

    @Test("headers and a 7bit body for ASCII text")
    func asciiMessage() {
        let message = text(Self.alert)
        let (head, body) = split(message)
        #expect(head.contains("Date: Sun, 06 Dec 2026 09:23:20 +0000"))
        #expect(head.contains("From: ha@example.com"))
        #expect(head.contains("To: a@example.com, b@example.com"))
        #expect(head.contains("Message-ID: <id@example.com>"))
        #expect(head.contains("Subject: [understudy] prod db1 ERROR rm 9: Monitor fipw1 detected an error."))
        #expect(head.contains("Content-Transfer-Encoding: 7bit"))
        #expect(body.contains("Message:  Monitor fipw1 detected an error.\r\n"))
        #expect(body.contains("Time:     2026-12-06T09:23:20.000Z"))
        // Every line ends in CRLF, none longer than 78 in the header.
        #expect(!message.replacingOccurrences(of: "\r\n", with: "").contains("\n"))
        #expect(head.components(separatedBy: "\r\n").allSatisfy { $0.count <= 78 })
    }

    @Test("non-ASCII text: RFC 2047 subject, base64 body; header injection impossible")
    func unicodeMessage() throws {
        var alert = Self.alert
        alert.message = "フェイルオーバーしました: グループ failover1\nSubject: injected"
        let message = text(alert)
        let (head, body) = split(message)
        #expect(head.contains("Subject: =?UTF-8?B?"))
        #expect(!head.contains("injected"))
        #expect(head.contains("Content-Transfer-Encoding: base64"))
        #expect(message.utf8.allSatisfy { $0 < 0x80 })
        let decoded = try #require(Data(base64Encoded: body.replacingOccurrences(of: "\r\n", with: "")))
        #expect(String(decoding: decoded, as: UTF8.self).contains("フェイルオーバーしました"))
        // The encoded words decode back to the subject.
        let words = head.components(separatedBy: "\r\n").filter { $0.contains("=?UTF-8?B?") }
        let subject = words.map { line -> String in
            let payload = line.components(separatedBy: "=?UTF-8?B?")[1].replacingOccurrences(of: "?=", with: "")
            return String(decoding: Data(base64Encoded: payload) ?? Data(), as: UTF8.self)
        }.joined()
        #expect(subject == MailMessage.subject(alert))
    }

    @Test("dot-stuffing doubles a leading dot, normalises line ends, terminates with CRLF.CRLF")
    func dotStuffing() {
        func stuffed(_ text: String) -> String { String(decoding: MailMessage.dotStuffed(Array(text.utf8)), as: UTF8.self) }
        #expect(stuffed("a\r\n.b\r\n") == "a\r\n..b\r\n.\r\n")
        #expect(stuffed(".\r\n") == "..\r\n.\r\n")
        #expect(stuffed("x\n.\ny") == "x\r\n..\r\ny\r\n.\r\n")
        #expect(stuffed("x\r.y") == "x\r\n..y\r\n.\r\n")
        #expect(stuffed("") == ".\r\n")
        var alert = Self.alert
        alert.message = "line one\n.\nline three"
        let data = String(decoding: MailMessage.dotStuffed(Array(text(alert).utf8)), as: UTF8.self)
        #expect(data.contains("\r\n..\r\n"))
        #expect(data.hasSuffix("\r\n.\r\n"))
        #expect(!data.dropLast(5).contains("\r\n.\r\n"))
    }

    @Test("settings: bad addresses and inconsistent credentials are refused by name")
    func settings() {
        func problem(_ change: (inout MailSettings) -> Void) -> String? {
            var settings = MailSettings(host: "mail.example.com", from: "ha@example.com", to: ["ops@example.com"])
            change(&settings)
            do {
                try settings.validate()
                return nil
            } catch {
                return error.description
            }
        }
        #expect(problem { _ in } == nil)
        #expect(problem { $0.to = [] }?.contains("at least one recipient") == true)
        #expect(problem { $0.to = ["ok@example.com", "bad address@example.com"] }?.hasPrefix("to[1]:") == true)
        #expect(problem { $0.from = "no-at-sign" }?.hasPrefix("from:") == true)
        #expect(problem { $0.to = ["x@example.com>\r\nRCPT TO:<y@example.com"] } != nil)
        #expect(problem { $0.user = "alice" }?.contains("no password") == true)
        #expect(problem { $0.password = "p" }?.contains("without a user") == true)
        #expect(problem { $0.port = 0 }?.contains("port") == true)
        #expect(problem { $0.host = "bad host" } != nil)
        #expect(
            problem {
                $0.security = .none
                $0.user = "alice"
                $0.password = "secret"
            }?.contains("starttls or tls") == true)
        #expect(problem { $0.timeout = .zero }?.contains("timeout") == true)
    }

    func split(_ message: String) -> (head: String, body: String) {
        let parts = message.components(separatedBy: "\r\n\r\n")
        return (parts[0], parts.dropFirst().joined(separator: "\r\n\r\n"))
    }
}
