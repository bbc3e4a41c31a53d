import Foundation
import Testing

@testable import UnderstudyNode

/// The SMTP reply parser: single and multi-line replies, fragments, strictness, and a fuzz
/// run that may produce replies or errors but never a crash.
@Suite("SMTP replies")
struct SMTPReplyTests {
    func replies(_ text: String) throws -> [SMTPReply] {
        var reader = SMTPReplyReader()
        reader.append(Array(text.utf8))
        var result: [SMTPReply] = []
        while let reply = try reader.next() { result.append(reply) }
        return result
    }

    @Test("single-line, multi-line and bare-code replies")
    func wellFormed() throws {
        #expect(try replies("220 mx.example.com ESMTP ready\r\n") == [SMTPReply(code: 220, lines: ["mx.example.com ESMTP ready"])])
        let ehlo = try replies("250-mx.example.com\r\n250-STARTTLS\r\n250-AUTH PLAIN LOGIN\r\n250 8BITMIME\r\n")
        #expect(ehlo == [SMTPReply(code: 250, lines: ["mx.example.com", "STARTTLS", "AUTH PLAIN LOGIN", "8BITMIME"])])
        #expect(try replies("354\r\n250 ok\n") == [SMTPReply(code: 354, lines: [""]), SMTPReply(code: 250, lines: ["ok"])])
        let extensions = SMTPExtensions(ehlo: ehlo[0])
        #expect(extensions.names == ["STARTTLS", "AUTH", "8BITMIME"])
        #expect(extensions.authMechanisms == ["PLAIN", "LOGIN"])
    }

    @Test("a reply split across reads comes out whole, once")
    func fragments() throws {
        let text = Array("250-first\r\n250-second\r\n250 third\r\n".utf8)
        for cut in 1..<text.count {
            var reader = SMTPReplyReader()
            reader.append(text[..<cut])
            let early = try reader.next()
            reader.append(text[cut...])
            let late = try reader.next()
            #expect([early, late].compactMap { $0 } == [SMTPReply(code: 250, lines: ["first", "second", "third"])])
            #expect(try reader.next() == nil)
        }
    }

    @Test(
        "malformed replies are errors that say why",
        arguments: [
            ("hello\r\n", "not a reply line"), ("25\r\n", "not a reply line"), ("650 x\r\n", "not a reply line"),
            ("270 x\r\n", "not a reply line"), ("2a0 x\r\n", "not a reply line"), ("250x\r\n", "neither"),
            ("250-a\r\n251 b\r\n", "continued with code 251 after 250"),
        ])
    func malformed(text: String, words: String) {
        #expect {
            _ = try replies(text)
        } throws: { error in
            "\(error)".contains(words)
        }
    }

    @Test("lines and replies are bounded")
    func bounds() {
        #expect(throws: SMTPReplyError.self) {
            _ = try replies(String(repeating: "x", count: SMTPReplyReader.maximumLineLength + 10))
        }
        #expect(throws: SMTPReplyError.self) {
            _ = try replies("250 " + String(repeating: "y", count: SMTPReplyReader.maximumLineLength + 10) + "\r\n")
        }
        #expect(throws: SMTPReplyError.self) {
            _ = try replies(String(repeating: "250-x\r\n", count: SMTPReplyReader.maximumLines + 1) + "250 x\r\n")
        }
    }

    @Test("control characters in reply text are made printable")
    func printable() throws {
        let reply = try replies("550 bad\u{1B}[31m\u{7}name\r\n")
        #expect(reply.first?.description == "550 bad?[31m?name")
        var reader = SMTPReplyReader()
        reader.append([0x32, 0x35, 0x30, 0x20, 0xFF, 0xFE, 0x0D, 0x0A])
        #expect(try reader.next()?.lines == ["??"])
    }

    /// Random bytes, random fragmentation, mutations of valid replies: every outcome is a
    /// reply or an SMTPReplyError; memory stays within the reader's bounds.
    @Test("fuzz: the parser never crashes and never buffers without bound")
    func fuzz() {
        var generator = SystemRandomNumberGenerator()
        let valid = Array("220 ready\r\n250-mx\r\n250-AUTH PLAIN\r\n250 OK\r\n354 go\r\n".utf8)
        let alphabet = Array("0123456789- \r\n25ABC".utf8)
        var parsed = 0
        var refused = 0
        for round in 0..<4000 {
            var bytes: [UInt8]
            switch round % 3 {
            case 0:
                bytes = (0..<Int.random(in: 0...400, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) }
            case 1:
                bytes = (0..<Int.random(in: 0...400, using: &generator)).map { _ in
                    alphabet[Int.random(in: 0..<alphabet.count, using: &generator)]
                }
            default:
                bytes = valid
                for _ in 0..<Int.random(in: 1...3, using: &generator) {
                    bytes[Int.random(in: 0..<bytes.count, using: &generator)] = UInt8.random(in: 0...255, using: &generator)
                }
            }
            var reader = SMTPReplyReader()
            var offset = 0
            feeding: while offset < bytes.count {
                let size = Int.random(in: 1...64, using: &generator)
                reader.append(bytes[offset..<min(bytes.count, offset + size)])
                offset += size
                do {
                    // Bounded: each reply consumes at least one line of the finite input.
                    while let reply = try reader.next() {
                        #expect((200...559).contains(reply.code))
                        #expect(reply.lines.count <= SMTPReplyReader.maximumLines)
                        parsed += 1
                    }
                } catch {
                    refused += 1
                    break feeding
                }
            }
        }
        #expect(parsed > 0)
        #expect(refused > 0)
    }
}
