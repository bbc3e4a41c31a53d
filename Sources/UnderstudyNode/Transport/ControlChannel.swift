import Crypto
import NIOCore
import NIOPosix
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

// Authenticated request/response channel between servers over TCP (placement orders, status
// gathering, command forwarding).
//
// Stream framing: u32 big-endian body length (≤ 4 MiB) | body. Body kinds (first byte):
//   0x01 hello    "USCC" | version u8 = 1 | nonce (16)            each side sends one first
//   0x02 request  counter u64 | nameLength u8 | name | payload | mac (32)     client → server
//   0x03 response counter u64 | nameLength u8 | name | payload | mac (32)     server → client
//   0x04 reject   reason u8 (unauthenticated notice sent before the server hangs up)
// mac = HMAC-SHA256(key, "USCC" | version | serverNonce | clientNonce | kind | counter
//                        | nameLength | name | payloadLength u32 | payload)
// Both nonces bind every frame to this connection (a recorded frame, request or response,
// fails on any other connection), the kind byte is the direction, and the counter (0, 1, …
// per direction) rejects reordered or repeated frames within the connection. The server may
// serve several requests per connection; the client sends one.
// The key is the cluster key, except on a connection of an outside client (ControlClients.swift):
// its frames, both ways, are MACed under that client's own key, chosen by the sender name.

/// A verified request: `peerName` is the authenticated sender name of the client.
public struct ControlRequest: Sendable {
    public var peerName: String
    public var payload: [UInt8]
    public var remoteAddress: SocketAddress?
    /// True when `peerName` is a client of `ControlAccess.clients` (a host outside the
    /// cluster) that authenticated with its own key; such requests go to the client handler.
    public var fromClient: Bool

    public init(peerName: String, payload: [UInt8], remoteAddress: SocketAddress? = nil, fromClient: Bool = false) {
        self.peerName = peerName
        self.payload = payload
        self.remoteAddress = remoteAddress
        self.fromClient = fromClient
    }
}

/// Why the control server closed a connection early. Every such connection is counted.
public enum ControlDropReason: String, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    /// First frame was not a valid hello (wrong protocol, version or garbage).
    case badHello
    /// A frame was too short, had impossible lengths or an unexpected kind.
    case malformedFrame
    /// A frame announced more than the frame cap.
    case oversize
    /// An invalid sender name; or, when the server knows the member names, a frame that did
    /// not verify and names neither a member nor a client (an unknown outside client).
    case badSender
    /// HMAC did not verify: wrong cluster key, corruption, or a frame from another connection.
    case badMAC
    /// A valid MAC but the wrong counter: replayed or reordered within the connection.
    case outOfOrder
    /// The peer was too slow to complete the handshake or send its next request.
    case timedOut
    case tooManyConnections
    /// The handler's response does not fit in a frame.
    case responseTooLarge
    /// A frame named an outside client (`ControlAccess.clients`) but did not verify under that
    /// client's key: a wrong key file, or a frame recorded on another connection.
    case clientBadMAC
    /// An authenticated outside client asked for something it is not allowed (ControlClients.swift).
    case clientDenied

    public var description: String { rawValue }
}

public typealias ControlCounters = ConnectionCounters<ControlDropReason>

/// A failed control request. The description names the server and the reason.
public struct ControlChannelError: Error, Equatable, CustomStringConvertible {
    public enum Reason: Equatable, Sendable {
        /// Nothing listens on the port (daemon down or wrong port).
        case connectionRefused
        case connectTimedOut
        /// Connected, but no complete answer within the request timeout.
        case timedOut
        /// The server refused our MAC, or its response did not verify: the keys differ.
        case authenticationFailed(String)
        /// The other side does not speak this protocol (or version).
        case protocolError(String)
        /// Unreachable, unresolvable, reset, or closed before answering.
        case connectionFailed(String)
        /// The request itself is unusable (invalid local name, payload too large).
        case invalidRequest(String)
    }

    public let host: String
    public let port: Int
    public let reason: Reason
    /// Whether the request frame had been handed to the connection when it failed. When it
    /// had not, the server cannot have acted on it: sending it again (on another path) is safe.
    public let requestSent: Bool

    public init(host: String, port: Int, reason: Reason, requestSent: Bool = false) {
        self.host = host
        self.port = port
        self.reason = reason
        self.requestSent = requestSent
    }

    public var description: String {
        let target = "control request to \(host):\(port) failed"
        switch reason {
        case .connectionRefused: return "\(target): connection refused (is the understudy daemon running there?)"
        case .connectTimedOut: return "\(target): connect timed out"
        case .timedOut: return "\(target): timed out waiting for the answer"
        case .authenticationFailed(let why):
            return "\(target): authentication failed (\(why)); check that both servers use the same cluster key"
        case .protocolError(let why): return "\(target): protocol error (\(why))"
        case .connectionFailed(let why): return "\(target): \(why)"
        case .invalidRequest(let why): return "\(target): \(why)"
        }
    }
}

enum ControlWire {
    static let magic: [UInt8] = Array("USCC".utf8)
    static let version: UInt8 = 1
    static let nonceLength = 16
    static let macLength = 32
    static let maximumFrameLength = 4 * 1024 * 1024
    /// kind + counter + name length + longest name + mac.
    static let frameOverhead = 1 + 8 + 1 + NodeName.maximumLength + macLength
    static let maximumPayloadSize = maximumFrameLength - frameOverhead

    enum Kind: UInt8 {
        case hello = 0x01
        case request = 0x02
        case response = 0x03
        case reject = 0x04
    }

    enum RejectCode: UInt8 {
        case authenticationFailed = 1
        case protocolError = 2
        case busy = 3
        case responseTooLarge = 4
    }

    static func hello(nonce: [UInt8]) -> [UInt8] {
        [Kind.hello.rawValue] + magic + [version] + nonce
    }

    enum HelloResult {
        case nonce([UInt8])
        case rejected(UInt8?)
        case invalid(String)
    }

    static func parseHello(_ body: [UInt8]) -> HelloResult {
        if body.first == Kind.reject.rawValue { return .rejected(body.count > 1 ? body[1] : nil) }
        guard body.count == 1 + magic.count + 1 + nonceLength, body[0] == Kind.hello.rawValue else {
            return .invalid("expected a hello frame")
        }
        guard Array(body[1...4]) == magic else { return .invalid("not an Understudy control endpoint") }
        guard body[5] == version else { return .invalid("unsupported protocol version \(body[5])") }
        return .nonce(Array(body[6...]))
    }

    static func reject(_ code: RejectCode) -> [UInt8] {
        [Kind.reject.rawValue, code.rawValue]
    }
}

/// Per-connection MAC state for authenticated frames.
struct ControlSession {
    enum Role { case client, server }

    enum OpenFailure: Error, Equatable {
        case malformed(String)
        case badSender
        case badMAC
        case outOfOrder
        case rejected(UInt8?)
        /// The frame named an outside client and did not verify under its key.
        case badClientMAC
        /// The frame did not verify and names neither a member nor an outside client.
        case unknownSender

        var dropReason: ControlDropReason {
            switch self {
            case .malformed, .rejected: return .malformedFrame
            case .badSender, .unknownSender: return .badSender
            case .badMAC: return .badMAC
            case .outOfOrder: return .outOfOrder
            case .badClientMAC: return .clientBadMAC
            }
        }

        /// Refusals of outside senders, which the server reports (`ControlAccess.onRefusal`).
        var isOutsideRefusal: Bool { self == .badClientMAC || self == .unknownSender }
    }

    private var key: ClusterKey
    /// Server side: the outside clients' keys by name, and the member names (nil: unknown).
    private let clients: [String: ClusterKey]
    private let members: Set<String>?
    /// The outside client this connection authenticated as; once set, the connection speaks
    /// only for that client, under its key (requests and responses alike).
    private(set) var client: String?
    private var memberFrameSeen = false
    private let serverNonce: [UInt8]
    private let clientNonce: [UInt8]
    private let outgoingKind: ControlWire.Kind
    private let incomingKind: ControlWire.Kind
    private var sendCounter: UInt64 = 0
    private var receiveCounter: UInt64 = 0

    init(
        key: ClusterKey, serverNonce: [UInt8], clientNonce: [UInt8], role: Role, clients: [String: ClusterKey] = [:],
        members: Set<String>? = nil
    ) {
        self.key = key
        self.clients = clients
        self.members = members
        self.serverNonce = serverNonce
        self.clientNonce = clientNonce
        outgoingKind = role == .client ? .request : .response
        incomingKind = role == .client ? .response : .request
    }

    /// The body of the next outgoing frame; nil when the payload does not fit in a frame.
    mutating func seal(payload: [UInt8], sender: String) -> [UInt8]? {
        let name = Array(sender.utf8)
        guard NodeName.isValid(utf8: name), payload.count <= ControlWire.maximumPayloadSize else { return nil }
        let counter = sendCounter
        sendCounter += 1
        var body: [UInt8] = [outgoingKind.rawValue]
        body.reserveCapacity(1 + 8 + 1 + name.count + payload.count + ControlWire.macLength)
        WireBytes.append(counter, to: &body)
        body.append(UInt8(name.count))
        body.append(contentsOf: name)
        body.append(contentsOf: payload)
        body.append(contentsOf: mac(kind: outgoingKind.rawValue, counter: counter, name: name[...], payload: payload[...]))
        return body
    }

    /// Verifies the next incoming frame body; returns the sender name and payload.
    mutating func open(_ body: [UInt8]) -> Result<(sender: String, payload: [UInt8]), OpenFailure> {
        let frame = body[...]
        guard let kind = frame.first else { return .failure(.malformed("empty frame")) }
        if kind == ControlWire.Kind.reject.rawValue { return .failure(.rejected(frame.count > 1 ? frame[1] : nil)) }
        guard kind == incomingKind.rawValue else { return .failure(.malformed("unexpected frame kind \(kind)")) }
        let minimumLength = 1 + 8 + 1 + 1 + ControlWire.macLength
        guard frame.count >= minimumLength else { return .failure(.malformed("frame too short")) }

        let counter = WireBytes.readUInt64(frame, at: 1)
        let nameLength = Int(frame[9])
        guard nameLength >= 1, nameLength <= NodeName.maximumLength else { return .failure(.badSender) }
        let nameEnd = 10 + nameLength
        let macStart = frame.count - ControlWire.macLength
        guard nameEnd <= macStart else { return .failure(.malformed("frame too short for its name")) }
        let name = frame[10..<nameEnd]
        guard NodeName.isValid(utf8: name) else { return .failure(.badSender) }
        let payload = frame[nameEnd..<macStart]
        let sender = String(decoding: name, as: UTF8.self)

        // An outside client's frames verify under its own key only; a connection speaks for
        // one client, or for members (the cluster key), never both.
        let clientKey = clients[sender]
        if clientKey != nil {
            guard client == nil || client == sender, !memberFrameSeen else { return .failure(.badSender) }
        } else if client != nil {
            return .failure(.badSender)
        }
        let frameKey = clientKey ?? key
        let expected = mac(kind: kind, counter: counter, name: name, payload: payload, key: frameKey)
        guard constantTimeEqual(expected, Array(frame[macStart...])) else {
            if clientKey != nil { return .failure(.badClientMAC) }
            if let members, !members.contains(sender) { return .failure(.unknownSender) }
            return .failure(.badMAC)
        }
        guard counter == receiveCounter else { return .failure(.outOfOrder) }
        receiveCounter += 1
        if let clientKey {
            client = sender
            key = clientKey
        } else {
            memberFrameSeen = true
        }
        return .success((sender, Array(payload)))
    }

    private func mac(
        kind: UInt8, counter: UInt64, name: ArraySlice<UInt8>, payload: ArraySlice<UInt8>, key: ClusterKey? = nil
    ) -> [UInt8] {
        let key = key ?? self.key
        var header: [UInt8] = ControlWire.magic + [ControlWire.version] + serverNonce + clientNonce + [kind]
        WireBytes.append(counter, to: &header)
        header.append(UInt8(name.count))
        header.append(contentsOf: name)
        WireBytes.append(UInt32(payload.count), to: &header)
        var hmac = HMAC<SHA256>(key: key.symmetricKey)
        hmac.update(data: header)
        hmac.update(data: payload)
        return Array(hmac.finalize())
    }

    /// Compares two MACs in time independent of where they differ.
    private func constantTimeEqual(_ left: [UInt8], _ right: [UInt8]) -> Bool {
        guard left.count == right.count else { return false }
        var difference: UInt8 = 0
        for index in left.indices { difference |= left[index] ^ right[index] }
        return difference == 0
    }
}

// MARK: - Server

/// Accepts authenticated control connections and answers each request with `handler`.
public final class ControlServer: Sendable {
    public struct Limits: Sendable {
        public var maximumConnections: Int
        /// Time for a new connection to send its hello and first request.
        public var handshakeTimeout: Duration
        /// Time a connection may stay silent between requests.
        public var idleTimeout: Duration

        public init(maximumConnections: Int = 64, handshakeTimeout: Duration = .seconds(5), idleTimeout: Duration = .seconds(30)) {
            self.maximumConnections = maximumConnections
            self.handshakeTimeout = handshakeTimeout
            self.idleTimeout = idleTimeout
        }
    }

    public static var maximumFrameLength: Int { ControlWire.maximumFrameLength }
    public static var maximumPayloadSize: Int { ControlWire.maximumPayloadSize }

    /// The bound address (with the port the OS chose when started on port 0).
    public let localAddress: SocketAddress
    public var port: Int { localAddress.port ?? 0 }
    public var counters: ControlCounters { state.counters.withLock { $0 } }

    private let serverChannel: Channel
    private let state: ControlServerState
    private let acceptTask: Task<Void, Never>

    private init(localAddress: SocketAddress, serverChannel: Channel, state: ControlServerState, acceptTask: Task<Void, Never>) {
        self.localAddress = localAddress
        self.serverChannel = serverChannel
        self.state = state
        self.acceptTask = acceptTask
    }

    public static func start(
        host: String,
        port: Int,
        key: ClusterKey,
        localName: String,
        limits: Limits = Limits(),
        access: ControlAccess = ControlAccess(),
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        handler: @escaping @Sendable (ControlRequest) async -> [UInt8]
    ) async throws(ControlServerError) -> ControlServer {
        guard NodeName.isValid(localName) else {
            throw ControlServerError(host: host, port: port, reason: "invalid local name \"\(localName)\"")
        }
        let state = ControlServerState(key: key, localName: localName, limits: limits, handler: handler)
        state.access.withLock { $0 = access }
        let listener: NIOAsyncChannel<NIOAsyncChannel<ByteBuffer, Never>, Never>
        do {
            listener = try await ServerBootstrap(group: eventLoopGroup)
                .serverChannelOption(.backlog, value: 256)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .bind(host: host, port: port) { child in
                    child.eventLoop.makeCompletedFuture {
                        try Framing.wrapFramedStream(child, maximumFrameLength: ControlWire.maximumFrameLength)
                    }
                }
        } catch {
            throw ControlServerError(host: host, port: port, reason: describeTransportError(error))
        }
        guard let localAddress = listener.channel.localAddress else {
            try? await listener.channel.close()
            throw ControlServerError(host: host, port: port, reason: "the socket has no local address")
        }

        let acceptTask = Task {
            await withDiscardingTaskGroup { group in
                do {
                    try await listener.executeThenClose { connections in
                        for try await connection in connections {
                            group.addTask { await state.serve(connection) }
                        }
                    }
                } catch {
                    // The listener closed (shutdown or socket error); open connections are
                    // closed by `close()`.
                }
            }
        }
        return ControlServer(localAddress: localAddress, serverChannel: listener.channel, state: state, acceptTask: acceptTask)
    }

    /// Replaces the outside clients and member names (a new configuration); connections
    /// already open keep what they started with.
    public func setAccess(_ access: ControlAccess) {
        state.access.withLock { $0 = access }
    }

    deinit {
        // Dropped without close(): do not leave the port bound.
        serverChannel.close(promise: nil)
        state.closeAllConnections()
        acceptTask.cancel()
    }

    /// Stops accepting, closes every open connection and waits for the handlers to return.
    public func close() async {
        try? await serverChannel.close()
        state.closeAllConnections()
        acceptTask.cancel()
        await acceptTask.value
    }
}

public struct ControlServerError: Error, CustomStringConvertible {
    public let host: String
    public let port: Int
    public let reason: String

    public var description: String { "cannot start the control server on \(host):\(port): \(reason)" }
}

final class ControlServerState: Sendable {
    let key: ClusterKey
    let localName: String
    let limits: ControlServer.Limits
    let handler: @Sendable (ControlRequest) async -> [UInt8]
    let counters = Mutex(ControlCounters())
    let access = Mutex(ControlAccess())
    private let connections: ConnectionRegistry

    init(key: ClusterKey, localName: String, limits: ControlServer.Limits, handler: @escaping @Sendable (ControlRequest) async -> [UInt8]) {
        self.key = key
        self.localName = localName
        self.limits = limits
        self.handler = handler
        self.connections = ConnectionRegistry(maximum: limits.maximumConnections)
    }

    func closeAllConnections() { connections.closeAll() }

    private func register(_ channel: Channel) -> UInt64? { connections.register(channel) }

    private func unregister(_ id: UInt64) { connections.unregister(id) }

    private func count(_ reason: ControlDropReason) {
        counters.withLock { $0.dropped[reason, default: 0] += 1 }
    }

    private func send(_ body: [UInt8], on channel: Channel) async throws {
        try await channel.writeAndFlush(Framing.frame(body, allocator: channel.allocator))
    }

    func serve(_ connection: NIOAsyncChannel<ByteBuffer, Never>) async {
        let channel = connection.channel
        guard let id = register(channel) else {
            count(.tooManyConnections)
            try? await send(ControlWire.reject(.busy), on: channel)
            try? await channel.close()
            return
        }
        defer { unregister(id) }
        counters.withLock { $0.connectionsAccepted += 1 }

        let deadline = ChannelDeadline(channel: channel)
        deadline.arm(after: limits.handshakeTimeout)
        defer { deadline.disarm() }

        do {
            try await connection.executeThenClose { inbound in
                let serverNonce = SecureRandom.bytes(ControlWire.nonceLength)
                try await send(ControlWire.hello(nonce: serverNonce), on: channel)
                var frames = inbound.makeAsyncIterator()

                guard let helloFrame = try await frames.next() else {
                    if deadline.hasFired { count(.timedOut) }
                    return
                }
                guard case .nonce(let clientNonce) = ControlWire.parseHello(readableBytes(of: helloFrame)) else {
                    count(.badHello)
                    try? await send(ControlWire.reject(.protocolError), on: channel)
                    return
                }
                let access = self.access.withLock { $0 }
                var session = ControlSession(
                    key: key, serverNonce: serverNonce, clientNonce: clientNonce, role: .server, clients: access.clients,
                    members: access.members)

                while true {
                    guard let frame = try await frames.next() else {
                        if deadline.hasFired { count(.timedOut) }
                        return
                    }
                    switch session.open(readableBytes(of: frame)) {
                    case .failure(let failure):
                        count(failure.dropReason)
                        if failure.isOutsideRefusal {
                            access.onRefusal?(
                                ControlRefusal(
                                    reason: failure.dropReason, sender: ControlSession.senderName(in: readableBytes(of: frame)),
                                    remoteAddress: channel.remoteAddress))
                        }
                        let code: ControlWire.RejectCode =
                            failure == .badMAC || failure == .outOfOrder || failure.isOutsideRefusal
                            ? .authenticationFailed : .protocolError
                        try? await send(ControlWire.reject(code), on: channel)
                        return
                    case .success(let request):
                        deadline.disarm()
                        let response: [UInt8]
                        if session.client != nil {
                            let answer = await Self.answerClient(
                                ControlRequest(
                                    peerName: request.sender, payload: request.payload, remoteAddress: channel.remoteAddress,
                                    fromClient: true), access: access)
                            if answer.denied {
                                count(.clientDenied)
                                access.onRefusal?(
                                    ControlRefusal(reason: .clientDenied, sender: request.sender, remoteAddress: channel.remoteAddress))
                            }
                            response = answer.payload
                        } else {
                            response = await handler(
                                ControlRequest(peerName: request.sender, payload: request.payload, remoteAddress: channel.remoteAddress)
                            )
                        }
                        guard let body = session.seal(payload: response, sender: localName) else {
                            count(.responseTooLarge)
                            try? await send(ControlWire.reject(.responseTooLarge), on: channel)
                            return
                        }
                        try await send(body, on: channel)
                        counters.withLock { $0.requestsServed += 1 }
                        deadline.arm(after: limits.idleTimeout)
                    }
                }
            }
        } catch {
            if error is FrameTooLargeError {
                count(.oversize)
            } else if deadline.hasFired {
                count(.timedOut)
            }
            // Other errors are the peer resetting or closing: nothing to count as a drop.
        }
    }
}

// MARK: - Client

public enum ControlClient {
    private enum Failure: Error {
        case closedEarly(String)
        case rejected(UInt8?)
        case protocolError(String)
        case authenticationFailed(String)
    }

    /// Sends one authenticated request to `host:port` and returns the verified response.
    /// Opens one connection per request. `connectTimeout` bounds the TCP connect, `timeout`
    /// the whole exchange; `handshakeTimeout`, when given, bounds the connect and the server's
    /// hello together (a server answers its hello at once, from the event loop: a path that
    /// cannot carry it is given up quickly, before the request is sent).
    public static func request(
        host: String,
        port: Int,
        key: ClusterKey,
        localName: String,
        payload: [UInt8],
        timeout: Duration = .seconds(10),
        connectTimeout: Duration = .seconds(3),
        handshakeTimeout: Duration? = nil,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) async throws(ControlChannelError) -> [UInt8] {
        var requestSent = false
        func failure(_ reason: ControlChannelError.Reason) -> ControlChannelError {
            ControlChannelError(host: host, port: port, reason: reason, requestSent: requestSent)
        }
        guard NodeName.isValid(localName) else { throw failure(.invalidRequest("invalid local name \"\(localName)\"")) }
        guard payload.count <= ControlWire.maximumPayloadSize else {
            throw failure(
                .invalidRequest("request payload of \(payload.count) bytes exceeds the maximum of \(ControlWire.maximumPayloadSize)"))
        }
        let started = ContinuousClock.now

        let connection: NIOAsyncChannel<ByteBuffer, Never>
        do {
            connection = try await ClientBootstrap(group: eventLoopGroup)
                .connectTimeout(
                    .nanoseconds(max(1, ChannelDeadline.nanoseconds(min(connectTimeout, handshakeTimeout ?? timeout, timeout))))
                )
                .connect(host: host, port: port) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try Framing.wrapFramedStream(channel, maximumFrameLength: ControlWire.maximumFrameLength)
                    }
                }
        } catch {
            throw failure(connectFailureReason(error))
        }

        let channel = connection.channel
        let deadline = ChannelDeadline(channel: channel)
        deadline.arm(after: min(timeout, handshakeTimeout ?? timeout) - (ContinuousClock.now - started))
        defer { deadline.disarm() }

        do {
            return try await connection.executeThenClose { inbound in
                let clientNonce = SecureRandom.bytes(ControlWire.nonceLength)
                try await channel.writeAndFlush(Framing.frame(ControlWire.hello(nonce: clientNonce), allocator: channel.allocator))
                var frames = inbound.makeAsyncIterator()

                guard let helloFrame = try await frames.next() else {
                    throw Failure.closedEarly("the server closed the connection before its hello")
                }
                let serverNonce: [UInt8]
                switch ControlWire.parseHello(readableBytes(of: helloFrame)) {
                case .nonce(let nonce): serverNonce = nonce
                case .rejected(let code): throw Failure.rejected(code)
                case .invalid(let why): throw Failure.protocolError(why)
                }

                if handshakeTimeout != nil { deadline.arm(after: timeout - (ContinuousClock.now - started)) }
                var session = ControlSession(key: key, serverNonce: serverNonce, clientNonce: clientNonce, role: .client)
                guard let body = session.seal(payload: payload, sender: localName) else {
                    throw Failure.protocolError("request does not fit in a frame")
                }
                // From here on the server may have the request (even if the write fails half way).
                requestSent = true
                try await channel.writeAndFlush(Framing.frame(body, allocator: channel.allocator))

                guard let responseFrame = try await frames.next() else {
                    throw Failure.closedEarly("the server closed the connection without answering")
                }
                switch session.open(readableBytes(of: responseFrame)) {
                case .success(let response):
                    return response.payload
                case .failure(.rejected(let code)):
                    throw Failure.rejected(code)
                case .failure(.badMAC):
                    throw Failure.authenticationFailed("the response did not verify")
                case .failure(.outOfOrder):
                    throw Failure.authenticationFailed("the response was out of order")
                case .failure(.badSender), .failure(.unknownSender), .failure(.badClientMAC):
                    throw Failure.protocolError("the response carries an invalid server name")
                case .failure(.malformed(let why)):
                    throw Failure.protocolError(why)
                }
            }
        } catch {
            if deadline.hasFired { throw failure(.timedOut) }
            switch error {
            case let known as Failure:
                switch known {
                case .closedEarly(let why): throw failure(.connectionFailed(why))
                case .protocolError(let why): throw failure(.protocolError(why))
                case .authenticationFailed(let why): throw failure(.authenticationFailed(why))
                case .rejected(let code):
                    switch code.flatMap(ControlWire.RejectCode.init(rawValue:)) {
                    case .authenticationFailed: throw failure(.authenticationFailed("the server rejected our request"))
                    case .busy: throw failure(.connectionFailed("the server is busy (too many connections)"))
                    case .responseTooLarge: throw failure(.protocolError("the response was too large for a frame"))
                    case .protocolError, nil: throw failure(.protocolError("the server rejected the request as malformed"))
                    }
                }
            case let tooLarge as FrameTooLargeError:
                throw failure(
                    .protocolError("the server announced a frame of \(tooLarge.announcedLength) bytes, more than \(tooLarge.maximumLength)")
                )
            default:
                throw failure(.connectionFailed(describeTransportError(error)))
            }
        }
    }

    static func connectFailureReason(_ error: any Error) -> ControlChannelError.Reason {
        if let channelError = error as? ChannelError, case .connectTimeout = channelError {
            return .connectTimedOut
        }
        if let connectionError = error as? NIOConnectionError {
            let errnoCodes = connectionError.connectionErrors.compactMap { ($0.error as? IOError)?.errnoCode }
            if errnoCodes.contains(ECONNREFUSED) { return .connectionRefused }
            if let first = connectionError.connectionErrors.first {
                return .connectionFailed(describeTransportError(first.error))
            }
            if connectionError.dnsAError != nil || connectionError.dnsAAAAError != nil {
                return .connectionFailed("cannot resolve \(connectionError.host)")
            }
        }
        if let ioError = error as? IOError, ioError.errnoCode == ECONNREFUSED {
            return .connectionRefused
        }
        return .connectionFailed(describeTransportError(error))
    }
}
