import Foundation
import UnderstudyModel

/// The mail one alert becomes (RFC 5322 with MIME, RFC 2045/2047): headers in ASCII, the
/// subject `[understudy] <cluster> <server> <LEVEL> <module> <id>: <message>`, and a plain
/// text body with every field on a line of its own.
enum MailMessage {
    /// The subject's message part is cut here (with "…"); the body has the whole text.
    static let subjectMessageLimit = 120

    /// `[understudy] prod-db db1 ERROR rm 9: Monitor fipw1 detected an error.`
    static func subject(_ alert: AlertEvent) -> String {
        var message = singleLine(alert.message)
        if message.count > subjectMessageLimit { message = String(message.prefix(subjectMessageLimit - 1)) + "…" }
        return "[understudy] \(singleLine(alert.cluster)) \(singleLine(alert.server)) \(alert.level.rawValue) "
            + "\(singleLine(alert.module)) \(alert.eventID): \(message)"
    }

    /// The body: what the alert log holds, one field per line.
    static func body(_ alert: AlertEvent) -> String {
        """
        Cluster:  \(singleLine(alert.cluster))
        Server:   \(singleLine(alert.server))
        Time:     \(TrapMessage.timestamp(alert.time))
        Level:    \(alert.level.rawValue)
        Module:   \(singleLine(alert.module))
        Event ID: \(alert.eventID)
        Message:  \(alert.message)

        Sent by Understudy's mail alert destination.

        """
    }

    /// The whole message (headers and body, CRLF line ends), before dot-stuffing.
    static func render(_ alert: AlertEvent, from: String, to: [String], date: Date, messageID: String) -> [UInt8] {
        let bodyText = body(alert)
        let bodyLines = bodyText.split(separator: "\n", omittingEmptySubsequences: false)
        // 7bit when the body is ASCII with lines within RFC 5322's 998; base64 otherwise, so
        // that no server needs 8BITMIME or SMTPUTF8.
        let plain = bodyText.utf8.allSatisfy { $0 < 0x80 } && bodyLines.allSatisfy { $0.utf8.count <= 998 }
        var headers = [
            "Date: " + rfc5322Date(date),
            "From: " + from,
            "To: " + to.joined(separator: ", "),
            "Message-ID: " + messageID,
            encodedHeader("Subject", subject(alert)),
            "MIME-Version: 1.0",
            "Content-Type: text/plain; charset=utf-8",
            "Content-Transfer-Encoding: " + (plain ? "7bit" : "base64"),
            "Auto-Submitted: auto-generated",
            "X-Understudy-Event: \(asciiToken(alert.module)) \(alert.eventID) \(alert.level.rawValue)",
        ]
        headers.append("")
        var text = headers.joined(separator: "\r\n") + "\r\n"
        if plain {
            text += bodyLines.joined(separator: "\r\n")
        } else {
            let encoded = Data(bodyText.utf8).base64EncodedString()
            var lines: [Substring] = []
            var rest = Substring(encoded)
            while !rest.isEmpty {
                lines.append(rest.prefix(76))
                rest = rest.dropFirst(76)
            }
            text += lines.joined(separator: "\r\n") + "\r\n"
        }
        return Array(text.utf8)
    }

    /// The DATA payload: CRLF line ends, a "." doubled at the start of any line (RFC 5321
    /// §4.5.2), and the terminating `CRLF.CRLF`.
    static func dotStuffed(_ message: [UInt8]) -> [UInt8] {
        var output: [UInt8] = []
        output.reserveCapacity(message.count + 16)
        var atLineStart = true
        var index = 0
        while index < message.count {
            let byte = message[index]
            if atLineStart && byte == UInt8(ascii: ".") { output.append(UInt8(ascii: ".")) }
            if byte == 0x0D || byte == 0x0A {
                // Any of CRLF, bare LF, bare CR becomes one CRLF: a bare one is not allowed in DATA.
                output += [0x0D, 0x0A]
                if byte == 0x0D && index + 1 < message.count && message[index + 1] == 0x0A { index += 1 }
                atLineStart = true
            } else {
                output.append(byte)
                atLineStart = false
            }
            index += 1
        }
        if !atLineStart { output += [0x0D, 0x0A] }
        return output + Array(".\r\n".utf8)
    }

    /// `Name: value`, the value as RFC 2047 encoded words (UTF-8, base64) when it is not
    /// ASCII, folded so that no line passes 78 characters where it can be avoided.
    static func encodedHeader(_ name: String, _ value: String) -> String {
        if value.utf8.allSatisfy({ $0 >= 0x20 && $0 < 0x7F }) {
            return fold(name + ": " + value)
        }
        // Encoded words of at most 45 bytes of UTF-8 (60 of base64, under RFC 2047's 75),
        // split on character boundaries; one per line.
        var words: [String] = []
        var chunk: [UInt8] = []
        for character in value {
            let bytes = Array(String(character).utf8)
            if chunk.count + bytes.count > 45 {
                words.append("=?UTF-8?B?" + Data(chunk).base64EncodedString() + "?=")
                chunk = []
            }
            chunk += bytes
        }
        if !chunk.isEmpty { words.append("=?UTF-8?B?" + Data(chunk).base64EncodedString() + "?=") }
        return name + ": " + words.joined(separator: "\r\n ")
    }

    /// Folds an ASCII header line at spaces (RFC 5322 §2.2.3).
    static func fold(_ line: String) -> String {
        var lines: [String] = []
        var current = ""
        for word in line.split(separator: " ", omittingEmptySubsequences: false) {
            if !current.isEmpty && current.count + 1 + word.count > 78 {
                lines.append(current)
                current = String(word)
            } else {
                current = current.isEmpty && lines.isEmpty ? String(word) : current + " " + word
            }
        }
        lines.append(current)
        return lines.joined(separator: "\r\n ")
    }

    /// `Sun, 06 Dec 2026 09:40:00 +0000`.
    static func rfc5322Date(_ date: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss Z"
        return formatter.string(from: date)
    }

    /// `<random.millis@domain>`, the domain taken from the sender's address.
    static func messageID(from: String, date: Date) -> String {
        let parts = from.split(separator: "@", omittingEmptySubsequences: false)
        let domain = parts.count == 2 && !parts[1].isEmpty ? String(parts[1]) : "understudy.invalid"
        let millis = Int64(date.timeIntervalSince1970 * 1000)
        return "<\(UUID().uuidString.lowercased()).\(millis)@\(domain)>"
    }

    /// Text for one header line: line breaks and other control characters become spaces.
    static func singleLine(_ text: String) -> String {
        String(String.UnicodeScalarView(text.unicodeScalars.map { $0.properties.generalCategory == .control ? " " : $0 }))
    }

    /// Printable ASCII without spaces (for the X-Understudy-Event header).
    private static func asciiToken(_ text: String) -> String {
        let token = String(text.unicodeScalars.filter { $0.value > 0x20 && $0.value < 0x7F }.map(Character.init))
        return token.isEmpty ? "-" : token
    }
}
