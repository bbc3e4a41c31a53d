import Foundation
import UnderstudyModel

#if canImport(Glibc)
    import Glibc
#endif

/// A client of Network UPS Tools' `upsd` (network protocol 1.3): plain TCP, one command per
/// line, one answer line per command. Each call opens its own connection, bounded by
/// `timeout` from connect to the last answer, and ends it with LOGOUT. Blocking: call it from
/// a thread of its own (`BlockingCall`).
public struct NUTClient: Sendable {
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
        init(_ description: String) { self.description = description }
    }

    let host: String
    let port: Int
    let timeout: Duration

    public init(host: String, port: Int, timeout: Duration) {
        self.host = host
        self.port = port
        self.timeout = timeout
    }

    /// `ups.status` of `ups`: space-separated flags such as `OL`, `OB LB`, `FSD OB`.
    public func status(of ups: String) -> Result<String, Failure> { variable("ups.status", of: ups) }

    /// `GET VAR ups name`.
    public func variable(_ name: String, of ups: String) -> Result<String, Failure> {
        guard Self.isWord(ups), Self.isWord(name) else { return .failure(Failure("UPS and variable must be NUT names")) }
        return withConnection { connection in
            let answer = try connection.ask("GET VAR \(ups) \(name)")
            let prefix = "VAR \(ups) \(name) "
            guard answer.hasPrefix(prefix), let value = Self.unquote(String(answer.dropFirst(prefix.count))) else {
                throw Failure("unexpected answer to GET VAR: \(Self.printable(answer))")
            }
            return value
        }
    }

    /// `SET VAR ups name "value"` as `user` (who needs `actions = SET`); for simulated UPSes.
    public func setVariable(_ name: String, of ups: String, to value: String, user: String, password: String) -> Result<
        Void, Failure
    > {
        guard Self.isWord(ups), Self.isWord(name), Self.isWord(user), !value.contains(where: \.isNewline),
            !password.contains(where: \.isNewline)
        else { return .failure(Failure("UPS, variable and user must be NUT names; value and password one line")) }
        return withConnection { connection in
            _ = try connection.ask("USERNAME \(user)")
            _ = try connection.ask("PASSWORD " + Self.quote(password))
            let answer = try connection.ask("SET VAR \(ups) \(name) " + Self.quote(value))
            guard answer == "OK" || answer.hasPrefix("OK TRACKING") else {
                throw Failure("unexpected answer to SET VAR: \(Self.printable(answer))")
            }
        }
    }

    /// `INSTCMD ups command` as `user` (who needs `instcmds` for it in upsd.users).
    public func instantCommand(_ command: String, ups: String, user: String, password: String) -> Result<Void, Failure> {
        guard Self.isWord(ups), Self.isWord(command), Self.isWord(user) else {
            return .failure(Failure("UPS, command and user must be NUT names"))
        }
        guard !password.contains(where: { $0 == "\n" || $0 == "\r" }) else {
            return .failure(Failure("the password must be one line"))
        }
        return withConnection { connection in
            _ = try connection.ask("USERNAME \(user)")
            _ = try connection.ask("PASSWORD " + Self.quote(password))
            let answer = try connection.ask("INSTCMD \(ups) \(command)")
            guard answer == "OK" || answer.hasPrefix("OK TRACKING") else {
                throw Failure("unexpected answer to INSTCMD: \(Self.printable(answer))")
            }
        }
    }

    // MARK: - Connection

    func withConnection<T>(_ body: (Connection) throws -> T) -> Result<T, Failure> {
        let deadline = ContinuousClock.now + timeout
        do {
            let connection = try Connection(host: host, port: port, deadline: deadline)
            defer { connection.close() }
            let value = try body(connection)
            connection.logout()
            return .success(value)
        } catch let failure as Failure {
            return .failure(failure)
        } catch {
            return .failure(Failure("\(error)"))
        }
    }

    final class Connection {
        /// upsd's answers are short; anything longer is not upsd.
        static let maximumLine = 4096
        let fd: Int32
        let deadline: ContinuousClock.Instant
        let peer: String
        var buffer: [UInt8] = []

        init(host: String, port: Int, deadline: ContinuousClock.Instant) throws {
            self.deadline = deadline
            peer = "\(host):\(port)"
            switch DeadlineSocket.connect(host: host, port: port, deadline: deadline) {
            case .success(let fd): self.fd = fd
            case .failure(let failure) where failure.resolved:
                throw Failure("cannot connect to upsd at \(host):\(port): \(failure.reason)")
            case .failure(let failure): throw Failure(failure.reason)
            }
        }

        func send(_ line: String) throws {
            var bytes = Array((line + "\n").utf8)
            while !bytes.isEmpty {
                guard DeadlineSocket.waitFor(fd, events: Int16(POLLOUT), deadline: deadline) else {
                    throw Failure("upsd at \(peer) timed out")
                }
                let written = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                if written < 0 {
                    if errno == EAGAIN || errno == EINTR { continue }
                    throw Failure("sending to upsd at \(peer): \(String(cString: strerror(errno)))")
                }
                bytes.removeFirst(written)
            }
        }

        func readLine() throws -> String {
            while true {
                if let newline = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                    let line = String(decoding: buffer[..<newline], as: UTF8.self)
                    buffer.removeSubrange(...newline)
                    return line.hasSuffix("\r") ? String(line.dropLast()) : line
                }
                guard buffer.count < Self.maximumLine else { throw Failure("upsd at \(peer) sent an over-long line") }
                guard DeadlineSocket.waitFor(fd, events: Int16(POLLIN), deadline: deadline) else {
                    throw Failure("upsd at \(peer) timed out")
                }
                var chunk = [UInt8](repeating: 0, count: 1024)
                let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                if count < 0 {
                    if errno == EAGAIN || errno == EINTR { continue }
                    throw Failure("reading from upsd at \(peer): \(String(cString: strerror(errno)))")
                }
                guard count > 0 else { throw Failure("upsd at \(peer) closed the connection") }
                buffer.append(contentsOf: chunk[..<count])
            }
        }

        /// Sends a command and returns its answer; an `ERR …` answer is thrown.
        func ask(_ command: String) throws -> String {
            try send(command)
            let answer = try readLine()
            if answer.hasPrefix("ERR ") {
                throw Failure("upsd at \(peer) answered \(NUTClient.printable(answer)) to \(command.split(separator: " ").first ?? "")")
            }
            return answer
        }

        func logout() {
            try? send("LOGOUT")
            _ = try? readLine()
        }

        func close() { Glibc.close(fd) }
    }

    // MARK: - Protocol text

    /// Letters, digits, `.`, `_`, `-`: nothing that could split or extend a protocol line.
    static func isWord(_ text: String) -> Bool {
        !text.isEmpty && text.count <= 64
            && text.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "." || $0 == "_" || $0 == "-") }
    }

    static func quote(_ text: String) -> String {
        "\"" + text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
    }

    /// The value of a `"…"` field (with `\"` and `\\` escapes); nil when it is not one.
    static func unquote(_ field: String) -> String? {
        guard field.count >= 2, field.hasPrefix("\""), field.hasSuffix("\"") else { return nil }
        var value = ""
        var escaped = false
        for character in field.dropFirst().dropLast() {
            if escaped {
                value.append(character)
                escaped = false
            } else if character == "\\" {
                escaped = true
            } else {
                value.append(character)
            }
        }
        return escaped ? nil : value
    }

    /// An answer fit for a log line: printable, at most 120 characters.
    static func printable(_ text: String) -> String {
        String(text.unicodeScalars.filter { $0.isASCII && $0.value >= 0x20 }.prefix(120).map(Character.init))
    }
}
