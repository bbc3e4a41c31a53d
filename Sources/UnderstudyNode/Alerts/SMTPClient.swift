import Foundation
import NIOCore
import NIOPosix
import NIOSSL
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// One SMTP submission (RFC 5321) on a connection of its own: greeting, EHLO, STARTTLS and a
/// second EHLO, AUTH PLAIN or LOGIN, MAIL FROM, one RCPT TO per recipient, DATA, QUIT. The
/// whole exchange, connecting included, is bounded by one timeout; the error then says what
/// the client was waiting for.
struct SMTPClient {
    let settings: MailSettings
    /// Made once from the settings (CA file read, verification chosen); nil without TLS.
    let tls: NIOSSLContext?
    var group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton

    /// What one submission achieved: the recipients the server took and those it refused
    /// (with its reply).
    struct Outcome: Sendable {
        var accepted: [String]
        var refused: [(recipient: String, reply: String)]
    }

    var server: String { HostPort.display(host: settings.host, port: settings.port) }

    /// Sends `message` (already dot-stuffed, ending in CRLF.CRLF) to every recipient the
    /// server accepts.
    func submit(message: [UInt8]) async throws -> Outcome {
        let progress = SMTPProgress()
        let timeout = settings.timeout
        return try await withThrowingTaskGroup(of: Outcome?.self) { group in
            group.addTask { try await self.exchange(message: message, progress: progress) }
            group.addTask {
                try await Task.sleep(for: timeout)
                return nil
            }
            do {
                // The first to finish decides: the exchange's outcome, or nil for the timer.
                let first = try await group.next() ?? nil
                group.cancelAll()
                progress.close()
                // A mail the server stored counts even if QUIT or closing TLS outlasts the timeout.
                guard let outcome = first ?? progress.stored else {
                    throw MailDeliveryError(
                        "the mail server \(server) did not complete the exchange within \(timeout) (\(progress.stage))",
                        isPermanent: false)
                }
                return outcome
            } catch {
                group.cancelAll()
                progress.close()
                throw error
            }
        }
    }

    private func exchange(message: [UInt8], progress: SMTPProgress) async throws -> Outcome {
        progress.stage = "connecting"
        let implicitTLS = settings.security == .tls ? tls : nil
        let serverHostname = Self.hostnameForTLS(settings.host)
        let channel: NIOAsyncChannel<ByteBuffer, ByteBuffer>
        do {
            channel = try await ClientBootstrap(group: group)
                .connectTimeout(TimeAmount.nanoseconds(max(1, settings.timeout.inMilliseconds) * 1_000_000))
                .connect(host: settings.host, port: settings.port) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        if let implicitTLS {
                            try channel.pipeline.syncOperations.addHandler(
                                NIOSSLClientHandler(context: implicitTLS, serverHostname: serverHostname))
                        }
                        return try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                    }
                }
        } catch {
            throw MailDeliveryError(
                "cannot connect to the mail server \(server): \(Self.describe(connectError: error))", isPermanent: false)
        }
        progress.opened(channel.channel)
        return try await channel.executeThenClose { inbound, outbound in
            var session = SMTPSession(
                server: server, channel: channel.channel, inbound: inbound.makeAsyncIterator(), outbound: outbound,
                progress: progress, isEncrypted: implicitTLS != nil)
            return try await converse(&session, message: message, serverHostname: serverHostname)
        }
    }

    private func converse(_ session: inout SMTPSession, message: [UInt8], serverHostname: String?) async throws -> Outcome {
        session.progress.stage = "waiting for the greeting"
        let greeting = try await session.reply()
        guard greeting.code == 220 else { throw session.refusal("the connection", greeting) }

        var extensions = try await hello(&session)
        switch settings.security {
        case .starttls:
            guard extensions.names.contains("STARTTLS") else {
                throw MailDeliveryError(
                    "the mail server \(server) does not offer STARTTLS (security: starttls); it offers "
                        + (extensions.names.sorted().joined(separator: ", ").nilIfEmpty ?? "no extensions"),
                    isPermanent: true)
            }
            let ready = try await session.command("STARTTLS")
            guard ready.code == 220 else { throw session.refusal("STARTTLS", ready) }
            guard let tls else { throw MailDeliveryError("no TLS context for \(server)", isPermanent: true) }
            try await session.startTLS(context: tls, serverHostname: serverHostname)
            extensions = try await hello(&session)
        case .tls, .none:
            break
        }
        if let user = settings.user, let password = settings.password {
            try await authenticate(&session, extensions: extensions, user: user, password: password)
        }

        let from = try await session.command("MAIL FROM:<\(settings.from)>")
        guard from.isPositive else { throw session.refusal("MAIL FROM", from) }
        var outcome = Outcome(accepted: [], refused: [])
        for recipient in settings.to {
            let reply = try await session.command("RCPT TO:<\(recipient)>")
            if reply.isPositive {
                outcome.accepted.append(recipient)
            } else {
                outcome.refused.append((recipient, reply.description))
            }
        }
        guard !outcome.accepted.isEmpty else {
            _ = try? await session.command("QUIT")
            throw MailDeliveryError(
                "the mail server \(server) refused every recipient: "
                    + outcome.refused.map { "\($0.recipient) (\($0.reply))" }.joined(separator: "; "),
                isPermanent: outcome.refused.allSatisfy { $0.reply.hasPrefix("5") }, refusedRecipients: outcome.refused.map(\.recipient))
        }
        let data = try await session.command("DATA")
        guard data.code == 354 else { throw session.refusal("DATA", data) }
        let stored = try await session.send(raw: message, shown: "the message")
        guard stored.isPositive else { throw session.refusal("the message", stored) }
        // The mail is stored; QUIT is a courtesy whose failure changes nothing.
        session.progress.stored = outcome
        _ = try? await session.command("QUIT")
        return outcome
    }

    /// EHLO (HELO when the server does not know EHLO: no extensions then).
    private func hello(_ session: inout SMTPSession) async throws -> SMTPExtensions {
        let name = settings.heloName ?? Self.localHostName()
        let reply = try await session.command("EHLO \(name)")
        if reply.isPositive { return SMTPExtensions(ehlo: reply) }
        guard reply.code == 500 || reply.code == 502 else { throw session.refusal("EHLO", reply) }
        let helo = try await session.command("HELO \(name)")
        guard helo.isPositive else { throw session.refusal("HELO", helo) }
        return SMTPExtensions(ehlo: nil)
    }

    /// AUTH PLAIN when offered, else AUTH LOGIN (RFC 4954, RFC 4616; LOGIN as the
    /// draft-murchison-sasl-login describes). The credentials never appear in an error.
    private func authenticate(_ session: inout SMTPSession, extensions: SMTPExtensions, user: String, password: String)
        async throws
    {
        guard session.isEncrypted || settings.allowPlaintextAuthentication else {
            throw MailDeliveryError(
                "will not send the password for \(user) to \(server) unencrypted: use STARTTLS or TLS",
                isPermanent: true)
        }
        if extensions.authMechanisms.contains("PLAIN") {
            let credentials = Data(([0] + Array(user.utf8) + [0] + Array(password.utf8))).base64EncodedString()
            let reply = try await session.command("AUTH PLAIN \(credentials)", shown: "AUTH PLAIN")
            guard reply.code == 235 else { throw session.refusal("AUTH PLAIN as \(user)", reply) }
        } else if extensions.authMechanisms.contains("LOGIN") {
            let start = try await session.command("AUTH LOGIN")
            guard start.code == 334 else { throw session.refusal("AUTH LOGIN", start) }
            let name = try await session.command(Data(user.utf8).base64EncodedString(), shown: "AUTH LOGIN's user name")
            guard name.code == 334 else { throw session.refusal("AUTH LOGIN as \(user)", name) }
            let done = try await session.command(Data(password.utf8).base64EncodedString(), shown: "AUTH LOGIN's password")
            guard done.code == 235 else { throw session.refusal("AUTH LOGIN as \(user)", done) }
        } else {
            let offered = extensions.authMechanisms.sorted().joined(separator: " ")
            throw MailDeliveryError(
                "the mail server \(server) offers "
                    + (offered.isEmpty ? "no authentication" : "only AUTH \(offered)")
                    + " (PLAIN or LOGIN needed for \(user))",
                isPermanent: true)
        }
    }

    /// The name to check the server's certificate against: nil for an IP address (checked
    /// against the certificate's IP addresses by the address connected to).
    static func hostnameForTLS(_ host: String) -> String? {
        (try? SocketAddress(ipAddress: host, port: 0)) == nil ? host : nil
    }

    /// The EHLO argument: this host's name when it is a valid domain, else an address literal.
    static func localHostName() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count - 1) == 0 else { return "[127.0.0.1]" }
        let name = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let valid = !name.isEmpty && name.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == ".") }
        return valid ? name : "[127.0.0.1]"
    }

    static func describe(connectError error: any Error) -> String {
        guard let failure = error as? NIOConnectionError else { return "\(error)" }
        if !failure.connectionErrors.isEmpty {
            return failure.connectionErrors.map { "\($0.target): \(Self.describe(ioError: $0.error))" }.joined(separator: "; ")
        }
        if let dns = failure.dnsAError ?? failure.dnsAAAAError { return "cannot resolve \(failure.host): \(dns)" }
        return "no address for \(failure.host)"
    }

    private static func describe(ioError error: any Error) -> String {
        if let io = error as? IOError { return String(cString: strerror(io.errnoCode)) }
        return "\(error)"
    }
}

/// The extensions an EHLO reply lists (RFC 5321 §4.1.1.1): keyword per line after the first.
struct SMTPExtensions: Sendable {
    var names: Set<String> = []
    var authMechanisms: Set<String> = []

    init(ehlo reply: SMTPReply?) {
        guard let reply else { return }
        for line in reply.lines.dropFirst() {
            let words = line.split(separator: " ").map { $0.uppercased() }
            guard let keyword = words.first else { continue }
            names.insert(keyword)
            if keyword == "AUTH" { authMechanisms.formUnion(words.dropFirst()) }
        }
    }
}

/// What an exchange is doing (for the timeout's message) and its channel (closed on timeout).
final class SMTPProgress: Sendable {
    private let state = Mutex<(stage: String, channel: (any Channel)?, closed: Bool)>(("starting", nil, false))
    private let outcome = Mutex<SMTPClient.Outcome?>(nil)

    /// Set once the server has taken the message.
    var stored: SMTPClient.Outcome? {
        get { outcome.withLock { $0 } }
        set { outcome.withLock { $0 = newValue } }
    }

    var stage: String {
        get { state.withLock { $0.stage } }
        set { state.withLock { $0.stage = newValue } }
    }

    func opened(_ channel: any Channel) {
        let closeNow = state.withLock { value -> Bool in
            value.channel = channel
            return value.closed
        }
        if closeNow { channel.close(promise: nil) }
    }

    func close() {
        let channel = state.withLock { value -> (any Channel)? in
            value.closed = true
            return value.channel
        }
        channel?.close(promise: nil)
    }
}

/// The reading and writing half of one SMTP connection.
struct SMTPSession {
    let server: String
    let channel: any Channel
    var inbound: NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator
    let outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>
    let progress: SMTPProgress
    var reader = SMTPReplyReader()
    var isEncrypted = false

    init(
        server: String, channel: any Channel, inbound: NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator,
        outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>, progress: SMTPProgress, isEncrypted: Bool
    ) {
        self.server = server
        self.channel = channel
        self.inbound = inbound
        self.outbound = outbound
        self.progress = progress
        self.isEncrypted = isEncrypted
    }

    /// Sends one command line and reads its reply. `shown` names the command in messages
    /// instead of its text (for credentials).
    mutating func command(_ line: String, shown: String? = nil) async throws -> SMTPReply {
        try await send(raw: Array((line + "\r\n").utf8), shown: shown ?? line)
    }

    mutating func send(raw bytes: [UInt8], shown: String) async throws -> SMTPReply {
        progress.stage = "waiting for the reply to \(shown)"
        do {
            try await outbound.write(ByteBuffer(bytes: bytes))
        } catch {
            // The connection is gone; its inbound side says why (a failed TLS handshake, a
            // last reply such as 421) and `reply` throws that. Only if it has nothing to say:
            _ = try await reply()
            throw MailDeliveryError("the mail server \(server) closed the connection before \(shown): \(error)", isPermanent: false)
        }
        return try await reply()
    }

    /// The next whole reply; throws when the bytes are not one or the server hangs up.
    mutating func reply() async throws -> SMTPReply {
        // Bounded by the reader's limits: each round either completes a reply, throws, or
        // adds bytes that the reader caps at one line's length plus one reply's lines.
        while true {
            switch Result(catching: { () throws(SMTPReplyError) in try reader.next() }) {
            case .success(let reply?): return reply
            case .success(nil): break
            case .failure(let error):
                throw MailDeliveryError("the mail server \(server) sent a malformed reply: \(error)", isPermanent: false)
            }
            let buffer: ByteBuffer?
            do {
                buffer = try await inbound.next()
            } catch let error as NIOSSLError {
                throw MailDeliveryError("TLS with the mail server \(server) failed: \(error)", isPermanent: false)
            } catch {
                throw MailDeliveryError(
                    "the connection to the mail server \(server) failed (\(progress.stage)): \(error)", isPermanent: false)
            }
            guard let buffer else {
                throw MailDeliveryError("the mail server \(server) closed the connection (\(progress.stage))", isPermanent: false)
            }
            reader.append(buffer.readableBytesView)
        }
    }

    /// Puts TLS under the connection (after the server's 220 to STARTTLS). The handshake
    /// runs before the next command leaves (NIOSSL holds writes until then); a certificate
    /// that does not verify fails the next read, which says so (`reply`).
    mutating func startTLS(context: NIOSSLContext, serverHostname: String?) async throws {
        guard !reader.hasPartialInput else {
            // Bytes after 220 would have come in the clear: a command injection (CVE-2011-0411 kind).
            throw MailDeliveryError("the mail server \(server) sent data after its STARTTLS reply", isPermanent: false)
        }
        progress.stage = "waiting for the TLS handshake"
        let channel = channel
        do {
            try await channel.eventLoop.submit {
                let tls = try NIOSSLClientHandler(context: context, serverHostname: serverHostname)
                try channel.pipeline.syncOperations.addHandler(tls, position: .first)
            }.get()
        } catch {
            throw MailDeliveryError("TLS with the mail server \(server) failed: \(error)", isPermanent: false)
        }
        isEncrypted = true
    }
}

extension SMTPSession {
    /// The error for a reply that refuses `what`: 5yz permanent, 4yz worth a retry.
    func refusal(_ what: String, _ reply: SMTPReply) -> MailDeliveryError {
        MailDeliveryError("the mail server \(server) answered \(what) with \(reply)", isPermanent: reply.isPermanentFailure)
    }
}

extension String {
    fileprivate var nilIfEmpty: String? { isEmpty ? nil : self }
}
