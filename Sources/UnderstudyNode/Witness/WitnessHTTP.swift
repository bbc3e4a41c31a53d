import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// The event-loop thread of every witness exchange of a server (witnesshb, httpnp), apart
/// from the heartbeat thread: a slow or hung witness holds back no LAN heartbeat.
public enum WitnessEventLoop {
    public static let group: MultiThreadedEventLoopGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)
}

// MARK: - Server

/// `understudy witness`: an HTTP/1.1 server (SwiftNIO) in front of a `WitnessService`. One
/// request per connection (`Connection: close`); a connection is closed after
/// `connectionLimit` whatever it does, bodies above `WitnessMessage.maximumBodySize` are
/// refused (413) without being kept.
public final class WitnessServer: Sendable {
    public static let connectionLimit: TimeAmount = .seconds(10)

    let channel: any Channel
    public let service: WitnessService

    private init(channel: any Channel, service: WitnessService) {
        self.channel = channel
        self.service = service
    }

    /// With `tls`, every connection speaks HTTPS (a plain HTTP request fails the handshake).
    public static func start(
        host: String, port: Int, service: WitnessService, tls: WitnessServerTLS? = nil,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) async throws -> WitnessServer {
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelOption(.backlog, value: 128)
            .childChannelInitializer { channel in
                channel.eventLoop.scheduleTask(in: connectionLimit) { channel.close(promise: nil) }
                return channel.eventLoop.makeCompletedFuture {
                    if let tls { try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls.context)) }
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(WitnessHTTPHandler(service: service))
                }
            }
            .bind(host: host, port: port).get()
        return WitnessServer(channel: channel, service: service)
    }

    /// The port bound (useful with port 0).
    public var port: Int? { channel.localAddress?.port }

    public func close() async { try? await channel.close() }

    /// Waits until the server's channel closes.
    public func wait() async { try? await channel.closeFuture.get() }
}

final class WitnessHTTPHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    let service: WitnessService
    private var head: HTTPRequestHead?
    private var body: [UInt8] = []
    private var tooLarge = false

    init(service: WitnessService) { self.service = service }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let requestHead):
            head = requestHead
            body = []
            tooLarge = false
            if let length = requestHead.headers["content-length"].first.flatMap({ Int($0) }), length > WitnessMessage.maximumBodySize {
                tooLarge = true
            }
        case .body(var buffer):
            guard !tooLarge else { return }
            if body.count + buffer.readableBytes > WitnessMessage.maximumBodySize {
                tooLarge = true
                body = []
            } else {
                body.append(contentsOf: buffer.readBytes(length: buffer.readableBytes) ?? [])
            }
        case .end:
            guard let head else { return }
            self.head = nil
            let path = String(head.uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first ?? "")
            let response = service.handle(method: head.method.rawValue, path: path, body: tooLarge ? nil : body)
            body = []
            var headers = HTTPHeaders()
            headers.add(name: "Content-Type", value: response.contentType)
            headers.add(name: "Content-Length", value: String(response.body.count))
            headers.add(name: "Connection", value: "close")
            context.write(
                wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .init(statusCode: response.status), headers: headers))),
                promise: nil)
            context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: response.body)))), promise: nil)
            let channel = context.channel
            context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in channel.close(promise: nil) }
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

// MARK: - Client

/// Why an exchange with the witness failed (the path is down, the resolution lost).
public struct WitnessExchangeError: Error, CustomStringConvertible, Equatable {
    public let reason: String
    public init(_ reason: String) { self.reason = reason }
    public var description: String { reason }
}

/// One HTTP/1.1 exchange on a connection of its own, bounded by `timeout` as a whole
/// (connect, send, answer): the status and the body. The witness and the alert webhook POST
/// through here, the httpw monitor GETs.
enum WitnessHTTPClient {
    /// What is done with an answer's body beyond `limit` bytes.
    enum BodyLimit: Sendable {
        /// The exchange fails (the witness's and the webhook's answers are small).
        case refuse(Int)
        /// The first `limit` bytes are kept, the rest read and dropped (a monitored page may grow).
        case truncate(Int)

        var bytes: Int {
            switch self {
            case .refuse(let limit), .truncate(let limit): return limit
            }
        }
    }

    /// `peer` names the receiver in errors; the alert webhook (WebhookDestination) posts
    /// JSON through here too.
    static func post(
        host: String, port: Int, path: String, body: [UInt8], timeout: Duration, tls: WitnessTLSClient? = nil,
        contentType: String = "application/octet-stream", headers extra: [(String, String)] = [], peer: String = "the witness",
        group: any EventLoopGroup = WitnessEventLoop.group
    ) async throws -> (status: Int, body: [UInt8]) {
        var headers = [("Content-Type", contentType)] + extra
        headers.append(("Content-Length", String(body.count)))
        return try await exchange(
            method: .POST, host: host, port: port, path: path, body: body, timeout: timeout, tls: tls, headers: headers,
            peer: peer, bodyLimit: .refuse(WitnessMessage.maximumBodySize), group: group)
    }

    /// A GET of `path` (with its query), no body sent.
    static func get(
        host: String, port: Int, path: String, timeout: Duration, tls: WitnessTLSClient?, headers: [(String, String)],
        peer: String, bodyLimit: BodyLimit, group: any EventLoopGroup
    ) async throws -> (status: Int, body: [UInt8]) {
        try await exchange(
            method: .GET, host: host, port: port, path: path, body: nil, timeout: timeout, tls: tls, headers: headers, peer: peer,
            bodyLimit: bodyLimit, group: group)
    }

    private static func exchange(
        method: HTTPMethod, host: String, port: Int, path: String, body: [UInt8]?, timeout: Duration, tls: WitnessTLSClient?,
        headers extra: [(String, String)], peer: String, bodyLimit: BodyLimit, group: any EventLoopGroup
    ) async throws -> (status: Int, body: [UInt8]) {
        let loop = group.next()
        let promise = loop.makePromise(of: (status: Int, body: [UInt8]).self)
        let limit = TimeAmount.nanoseconds(
            max(1, timeout.components.seconds * 1_000_000_000 + timeout.components.attoseconds / 1_000_000_000))
        let timer = loop.scheduleTask(in: limit) {
            promise.fail(WitnessExchangeError("no answer from \(peer) \(host):\(port) within \(timeout)"))
        }
        let connect = ClientBootstrap(group: loop)
            .connectTimeout(limit)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls {
                        try channel.pipeline.syncOperations.addHandler(
                            NIOSSLClientHandler(context: tls.context, serverHostname: tls.serverHostname))
                    }
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(
                        WitnessResponseCollector(promise: promise, peer: peer, bodyLimit: bodyLimit))
                }
            }
            .connect(host: host, port: port)
        connect.whenFailure { error in promise.fail(WitnessExchangeError("cannot connect to \(peer) \(host):\(port): \(error)")) }
        connect.whenSuccess { channel in
            var headers = HTTPHeaders()
            headers.add(name: "Host", value: host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)")
            for (name, value) in extra { headers.add(name: name, value: value) }
            headers.add(name: "Connection", value: "close")
            let head = HTTPRequestHead(version: .http1_1, method: method, uri: path, headers: headers)
            channel.write(HTTPClientRequestPart.head(head), promise: nil)
            if let body { channel.write(HTTPClientRequestPart.body(.byteBuffer(channel.allocator.buffer(bytes: body))), promise: nil) }
            channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
            promise.futureResult.whenComplete { _ in channel.close(promise: nil) }
        }
        defer { timer.cancel() }
        return try await promise.futureResult.get()
    }
}

final class WitnessResponseCollector: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart

    let promise: EventLoopPromise<(status: Int, body: [UInt8])>
    let peer: String
    let bodyLimit: WitnessHTTPClient.BodyLimit
    private var status = 0
    private var body: [UInt8] = []
    private var tooLarge = false

    init(
        promise: EventLoopPromise<(status: Int, body: [UInt8])>, peer: String = "the witness",
        bodyLimit: WitnessHTTPClient.BodyLimit = .refuse(WitnessMessage.maximumBodySize)
    ) {
        self.promise = promise
        self.peer = peer
        self.bodyLimit = bodyLimit
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            status = Int(head.status.code)
        case .body(var buffer):
            let room = bodyLimit.bytes - body.count
            if buffer.readableBytes > room {
                tooLarge = true
                if case .truncate = bodyLimit, room > 0 { body.append(contentsOf: buffer.readBytes(length: room) ?? []) }
            } else if !tooLarge {
                body.append(contentsOf: buffer.readBytes(length: buffer.readableBytes) ?? [])
            }
        case .end:
            if tooLarge, case .refuse(let limit) = bodyLimit {
                promise.fail(WitnessExchangeError("the answer of \(peer) is larger than \(limit) bytes"))
            } else {
                promise.succeed((status, body))
            }
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        promise.fail(WitnessExchangeError("\(peer) closed the connection without an answer"))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        promise.fail(WitnessExchangeError("HTTP error talking to \(peer): \(error)"))
        context.close(promise: nil)
    }
}
