import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import UnderstudyEngine
import UnderstudyModel
import UnderstudyNode

public struct WebStartError: Error, CustomStringConvertible {
    public var description: String
    init(_ description: String) { self.description = description }
}

/// The request context: Hummingbird's, plus the client's address.
struct WebRequestContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    let clientAddress: String?

    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        clientAddress = source.channel.remoteAddress?.ipAddress
    }
}

struct WebResponder: HTTPResponder {
    typealias Context = WebRequestContext
    let api: WebAPI
    let executor: WebExecutor

    /// The WebManager's files (GET and HEAD); anything else outside `/api/v1` is 404.
    func page(_ request: Request) -> Response {
        var fields = HTTPFields()
        for (name, value) in WebManager.securityHeaders {
            if let field = HTTPField.Name(name) { fields[field] = value }
        }
        if let nosniff = HTTPField.Name("X-Content-Type-Options") { fields[nosniff] = "nosniff" }
        guard request.method == .get || request.method == .head, let asset = WebManager.asset(request.uri.path) else {
            // As every error of this server: JSON with `result`.
            let reply = ApiReply.error(.notFound, "No such path: \(request.method.rawValue) \(request.uri.path.prefix(200)).")
            fields[.contentType] = "application/json; charset=utf-8"
            return Response(
                status: .notFound, headers: fields, body: .init(byteBuffer: ByteBuffer(string: reply.body.serialized + "\n")))
        }
        fields[.contentType] = asset.contentType
        // Always revalidated: a new binary's page replaces the old one at once.
        fields[.cacheControl] = "no-cache"
        if request.method == .head { return Response(status: .ok, headers: fields) }
        return Response(status: .ok, headers: fields, body: .init(byteBuffer: ByteBuffer(bytes: asset.bytes)))
    }

    func respond(to request: Request, context: WebRequestContext) async throws -> Response {
        if !request.uri.path.hasPrefix(ApiRoute.prefix) && request.uri.path != MetricsExporter.path { return page(request) }
        var query: [String: String] = [:]
        for (key, value) in request.uri.queryParameters { query[String(key)] = String(value).removingPercentEncoding ?? String(value) }
        var headers: [String: String] = [:]
        for field in request.headers { headers[field.name.canonicalName] = field.value }
        let body = request.body
        let apiRequest = ApiRequest(
            method: request.method.rawValue, path: request.uri.path, query: query, headers: headers, address: context.clientAddress
        ) { limit in
            do {
                let buffer = try await body.collect(upTo: limit)
                return Array(buffer.readableBytesView)
            } catch let error as HTTPError where error.status == .contentTooLarge {
                throw BodyTooLarge()
            }
        }
        let api = self.api
        let answer = await withTaskExecutorPreference(executor) { await api.respond(apiRequest) }
        var fields = HTTPFields()
        for (name, value) in answer.headers {
            if let field = HTTPField.Name(name) { fields.append(HTTPField(name: field, value: value)) }
        }
        fields[.cacheControl] = fields[.cacheControl] ?? "no-store"
        if let nosniff = HTTPField.Name("X-Content-Type-Options") { fields[nosniff] = "nosniff" }
        let status = HTTPResponse.Status(code: answer.status)
        switch answer.body {
        case .json(let value):
            fields[.contentType] = "application/json; charset=utf-8"
            if request.method == .head { return Response(status: status, headers: fields) }
            return Response(status: status, headers: fields, body: .init(byteBuffer: ByteBuffer(string: value.serialized + "\n")))
        case .text(let text, let contentType):
            fields[.contentType] = contentType
            if request.method == .head { return Response(status: status, headers: fields) }
            return Response(status: status, headers: fields, body: .init(byteBuffer: ByteBuffer(string: text)))
        case .eventStream(let makeStream):
            return Response(
                status: status, headers: fields,
                body: ResponseBody { writer in
                    // Ends when the client goes (a write fails) or the server stops (the
                    // task is cancelled); either ends the stream and so its producers.
                    for await chunk in makeStream() {
                        try await writer.write(ByteBuffer(string: chunk))
                    }
                    try await writer.finish(nil)
                })
        }
    }
}

/// The daemon's web server: `/api/v1` on `ports.http` (and `ports.api`), on every listen
/// address, over TLS unless `web.tls: false`.
///
/// It cannot delay heartbeats: its sockets live on an event-loop thread of its own (not the
/// heartbeat loop's), password hashing runs on a thread of its own, status reads are
/// coalesced to at most ten snapshots a second whatever the load, and operations take the
/// same short actor calls as the `clp*` commands.
public final class WebServer: Sendable {
    let settings: WebSettings
    let config: ClusterConfig
    let me: ServerName
    let logger: Logger
    let daemon: any DaemonPort
    let tls: TLSConfiguration?
    let api: WebAPI
    let feed: StatusFeed
    let endpoints: [(host: String, port: Int)]
    let executor = WebExecutor()
    static let retryDelay: Duration = .seconds(5)

    /// Checks the settings, certificate and key before anything listens.
    public init(
        daemon: any DaemonPort, config: ClusterConfig, server me: ServerName, alertLogPath: String, logger: Logger,
        extraRoutes: [ExtraRoute] = []
    ) throws {
        guard let settings = config.cluster.web else { throw WebStartError("cluster.web is not configured") }
        self.settings = settings
        self.config = config
        self.me = me
        self.logger = logger
        self.daemon = daemon
        if settings.tls {
            guard let certificate = settings.certificate, let key = settings.key else {
                throw WebStartError("cluster.web.tls is true but certificate or key is missing")
            }
            do {
                tls = try TLSContexts.serverConfiguration(certificateFile: certificate, keyFile: key)
            } catch {
                throw WebStartError(error.reason)
            }
        } else {
            tls = nil
        }
        let hosts: [String]
        switch settings.listen {
        case .all: hosts = ["0.0.0.0"]
        case .addresses(let list): hosts = list
        case .heartbeatAddresses:
            hosts = config.heartbeats.compactMap { heartbeat -> String? in
                guard case .lan(let addresses) = heartbeat.kind else { return nil }
                return addresses[me]
            }
            guard !hosts.isEmpty else { throw WebStartError("web.listen is heartbeat-addresses but \(me) has no lanhb address") }
        }
        let ports = [config.cluster.ports.http] + (config.cluster.ports.api.map { [$0] } ?? [])
        endpoints = hosts.flatMap { host in ports.map { (host, $0) } }
        feed = StatusFeed(daemon: daemon)
        let alert: @Sendable (LogEntry) async -> Void = { entry in await daemon.recordAlert(entry) }
        let authenticator = Authenticator(
            usersPath: settings.usersFile, sessionTimeout: settings.sessionTimeout, logger: logger, alert: alert)
        api = WebAPI(
            daemon: daemon, config: config, me: me, settings: settings, alertLogPath: alertLogPath, feed: feed,
            authenticator: authenticator, extraRoutes: WebManager.routes(daemon: daemon, configPath: config.sourcePath) + extraRoutes,
            executor: executor)
    }

    /// Serves until the task is cancelled. An endpoint that cannot listen is reported and
    /// tried again every 5 s.
    public func run() async {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        await withTaskGroup(of: Void.self) { tasks in
            tasks.addTask(executorPreference: self.executor) { await self.feed.run() }
            for endpoint in endpoints {
                tasks.addTask { await self.serve(host: endpoint.host, port: endpoint.port, group: group) }
            }
            await tasks.waitForAll()
        }
        try? await group.shutdownGracefully()
    }

    func serve(host: String, port: Int, group: MultiThreadedEventLoopGroup) async {
        let scheme = tls == nil ? "http" : "https"
        // Hummingbird's own lines: what matters is said as alerts (webmgr 1, 21); its
        // "Waiting on child channel: CancellationError" at every daemon stop is not an error.
        // Shown with --log-level debug or trace.
        var frameworkLogger = logger
        if frameworkLogger.logLevel > .debug { frameworkLogger.logLevel = .critical }
        var failures = 0
        while !Task.isCancelled {
            let server: HTTPServerBuilder
            do {
                server = try tls.map { try .tls(.http1(), tlsConfiguration: $0) } ?? .http1()
            } catch {
                await daemon.recordAlert(LogEntry(.webListenFailed, "The web server cannot use TLS: \(error)."))
                return
            }
            let daemon = self.daemon
            let application = Application(
                responder: WebResponder(api: api, executor: executor), server: server,
                configuration: ApplicationConfiguration(address: .hostname(host, port: port), serverName: nil, reuseAddress: true),
                onServerRunning: { channel in
                    let bound = channel.localAddress?.port ?? port
                    await daemon.recordAlert(LogEntry(.webListening, "The web server listens on \(scheme)://\(host):\(bound)/api/v1."))
                },
                eventLoopGroupProvider: .shared(group), logger: frameworkLogger)
            do {
                try await application.run()
                if Task.isCancelled { return }
            } catch {
                if Task.isCancelled { return }
                failures += 1
                // Said once, then every tenth time: a port held for hours must not flood the log.
                if failures == 1 || failures % 10 == 0 {
                    await daemon.recordAlert(
                        LogEntry(.webListenFailed, "The web server cannot listen on \(host):\(port): \(error); retrying every 5 s."))
                }
            }
            try? await Task.sleep(for: Self.retryDelay)
        }
    }
}
