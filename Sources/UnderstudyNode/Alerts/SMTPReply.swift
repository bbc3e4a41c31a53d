/// One SMTP reply (RFC 5321 §4.2): a three-digit code and its text lines.
struct SMTPReply: Sendable, Equatable, CustomStringConvertible {
    let code: Int
    /// The text after the code and separator, one entry per line (control characters
    /// replaced, so the text is safe to put in an error message or a log).
    let lines: [String]

    /// 2yz: the command succeeded.
    var isPositive: Bool { (200..<300).contains(code) }
    /// 3yz: the server waits for more (354 after DATA, 334 during AUTH).
    var isIntermediate: Bool { (300..<400).contains(code) }
    /// 5yz: permanent; sending the same again fails again.
    var isPermanentFailure: Bool { (500..<600).contains(code) }

    var description: String {
        lines.isEmpty || lines == [""] ? "\(code)" : "\(code) " + lines.joined(separator: " / ")
    }
}

/// Why bytes from the server are not an SMTP reply.
struct SMTPReplyError: Error, Equatable, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Splits the bytes a server sends into replies, strictly: every line is `ddd`, `ddd text`
/// or `ddd-text` (continued) with the first digit 2 to 5 and the second 0 to 5, every line of
/// one reply has the same code, and lines and replies are bounded in length, so a hostile or
/// broken server gets an error, never a crash or unbounded memory. Lines end in CRLF; a bare
/// LF is accepted too (RFC 5321 §2.3.8 asks for tolerance where it is harmless).
struct SMTPReplyReader {
    /// RFC 5321 §4.5.3.1.5 bounds a reply line at 512 octets; a little slack for servers that
    /// pad their greeting.
    static let maximumLineLength = 2048
    /// EHLO replies list extensions one per line; 100 is far more than any server offers.
    static let maximumLines = 100

    private var buffer: [UInt8] = []
    private var pendingCode: Int?
    private var pendingLines: [String] = []

    /// Bytes read from the connection, in order.
    mutating func append<Bytes: Sequence>(_ bytes: Bytes) where Bytes.Element == UInt8 {
        buffer.append(contentsOf: bytes)
    }

    /// Whether bytes are waiting that are not a whole reply yet.
    var hasPartialInput: Bool { !buffer.isEmpty || pendingCode != nil }

    /// The next complete reply, nil when more bytes are needed; throws when the bytes cannot
    /// be a reply (the reader is then of no further use: the connection must be dropped).
    mutating func next() throws(SMTPReplyError) -> SMTPReply? {
        while let newline = buffer.firstIndex(of: 0x0A) {
            guard newline <= Self.maximumLineLength else {
                throw SMTPReplyError("a reply line is longer than \(Self.maximumLineLength) bytes")
            }
            var line = Array(buffer[..<newline])
            buffer.removeSubrange(...newline)
            if line.last == 0x0D { line.removeLast() }
            if let reply = try take(line) { return reply }
        }
        guard buffer.count <= Self.maximumLineLength else {
            throw SMTPReplyError("a reply line is longer than \(Self.maximumLineLength) bytes")
        }
        return nil
    }

    /// Adds one line; the finished reply when it was the last.
    private mutating func take(_ line: [UInt8]) throws(SMTPReplyError) -> SMTPReply? {
        guard line.count >= 3,
            (UInt8(ascii: "2")...UInt8(ascii: "5")).contains(line[0]),
            (UInt8(ascii: "0")...UInt8(ascii: "5")).contains(line[1]),
            (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(line[2])
        else {
            throw SMTPReplyError("\"\(Self.printable(line.prefix(60)))\" is not a reply line (a code from 200 to 559 first)")
        }
        let code = line[0..<3].reduce(0) { $0 * 10 + Int($1 - UInt8(ascii: "0")) }
        var continued = false
        var text: ArraySlice<UInt8> = []
        if line.count > 3 {
            switch line[3] {
            case UInt8(ascii: "-"): continued = true
            case UInt8(ascii: " "): break
            default:
                throw SMTPReplyError("\"\(Self.printable(line.prefix(60)))\" has neither \" \" nor \"-\" after its code")
            }
            text = line[4...]
        }
        if let pendingCode, pendingCode != code {
            throw SMTPReplyError("a reply continued with code \(code) after \(pendingCode)")
        }
        pendingCode = code
        pendingLines.append(Self.printable(text))
        guard pendingLines.count <= Self.maximumLines else {
            throw SMTPReplyError("a reply has more than \(Self.maximumLines) lines")
        }
        if continued { return nil }
        let reply = SMTPReply(code: code, lines: pendingLines)
        pendingCode = nil
        pendingLines = []
        return reply
    }

    /// UTF-8 text with control characters (and invalid bytes) replaced by "?".
    static func printable<Bytes: Collection>(_ bytes: Bytes) -> String where Bytes.Element == UInt8 {
        String(decoding: bytes, as: UTF8.self).unicodeScalars.reduce(into: "") { text, scalar in
            if scalar.properties.generalCategory == .control || scalar == "\u{FFFD}" {
                text.append("?")
            } else {
                text.unicodeScalars.append(scalar)
            }
        }
    }
}
