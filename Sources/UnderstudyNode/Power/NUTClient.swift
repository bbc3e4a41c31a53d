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
            var hints = addrinfo()
            hints.ai_family = AF_UNSPEC
            hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
            var list: UnsafeMutablePointer<addrinfo>?
            let status = getaddrinfo(host, String(port), &hints, &list)
            guard status == 0, let first = list else {
                throw Failure("cannot resolve \(host): \(String(cString: gai_strerror(status)))")
            }
            defer { freeaddrinfo(list) }
            var lastError = "no address"
            var candidate: UnsafeMutablePointer<addrinfo>? = first
            while let info = candidate {
                candidate = info.pointee.ai_next
                let fd = socket(info.pointee.ai_family, info.pointee.ai_socktype | Int32(SOCK_CLOEXEC.rawValue), 0)
                guard fd >= 0 else { continue }
                if Self.connect(fd, info.pointee.ai_addr, info.pointee.ai_addrlen, deadline: deadline, error: &lastError) {
                    self.fd = fd
                    return
                }
                Glibc.close(fd)
            }
            throw Failure("cannot connect to upsd at \(host):\(port): \(lastError)")
        }

        /// A non-blocking connect bounded by the deadline; the socket stays non-blocking.
        static func connect(
            _ fd: Int32, _ address: UnsafeMutablePointer<sockaddr>?, _ length: socklen_t, deadline: ContinuousClock.Instant,
            error: inout String
        ) -> Bool {
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            if Glibc.connect(fd, address, length) == 0 { return true }
            guard errno == EINPROGRESS else {
                error = String(cString: strerror(errno))
                return false
            }
            guard waitFor(fd, events: Int16(POLLOUT), deadline: deadline) else {
                error = "timed out"
                return false
            }
            var code: Int32 = 0
            var size = socklen_t(MemoryLayout<Int32>.size)
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &code, &size)
            if code != 0 { error = String(cString: strerror(code)) }
            return code == 0
        }

        static func waitFor(_ fd: Int32, events: Int16, deadline: ContinuousClock.Instant) -> Bool {
            // Bounded: every round waits for the time left, and EINTR is the only retry.
            for _ in 0..<100 {
                let left = ContinuousClock.now.duration(to: deadline)
                guard left > .zero else { return false }
                let milliseconds = Int32(clamping: max(1, left.inMilliseconds))
                var descriptor = pollfd(fd: fd, events: events, revents: 0)
                let ready = poll(&descriptor, 1, milliseconds)
                if ready > 0 { return true }
                if ready < 0 && errno == EINTR { continue }
                return false
            }
            return false
        }

        func send(_ line: String) throws {
            var bytes = Array((line + "\n").utf8)
            while !bytes.isEmpty {
                guard Self.waitFor(fd, events: Int16(POLLOUT), deadline: deadline) else { throw Failure("upsd at \(peer) timed out") }
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
                guard Self.waitFor(fd, events: Int16(POLLIN), deadline: deadline) else { throw Failure("upsd at \(peer) timed out") }
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
