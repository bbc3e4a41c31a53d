import Foundation
import Logging
import UnderstudyEngine
import UnderstudyModel
import UnderstudyNode

/// A request as the API sees it (the HTTP server adapts to it).
public struct ApiRequest: Sendable {
    public var method: String
    public var path: String
    public var query: [String: String]
    /// Header names in lower case.
    public var headers: [String: String]
    /// The client's IP address.
    public var address: String?
    /// Reads the body, at most `limit` bytes (throws `BodyTooLarge` beyond).
    public var readBody: @Sendable (_ limit: Int) async throws -> [UInt8]

    public init(
        method: String, path: String, query: [String: String], headers: [String: String], address: String?,
        readBody: @escaping @Sendable (Int) async throws -> [UInt8]
    ) {
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers
        self.address = address
        self.readBody = readBody
    }
}

public struct BodyTooLarge: Error {
    public init() {}
}

public struct ApiResponse: Error, Sendable {
    public enum Body: Sendable {
        case json(JSONValue)
        /// Server-Sent Events: the chunks to write, made when the response is written; the
        /// stream's producers stop when its consumer does.
        case eventStream(@Sendable () -> AsyncStream<String>)
        /// Plain text (`GET /metrics`).
        case text(String, contentType: String)
    }
    public var status: Int
    public var headers: [(String, String)]
    public var body: Body

    init(_ reply: ApiReply, headers: [(String, String)] = []) {
        status = reply.status
        self.headers = headers
        body = .json(reply.body)
    }

    init(status: Int, headers: [(String, String)], body: Body) {
        self.status = status
        self.headers = headers
        self.body = body
    }
}

/// A handler registered by another part of the daemon (e.g. configuration endpoints), under
/// `/api/v1/…`, for users of at least `role`.
public struct ExtraRoute: Sendable {
    public var method: String
    public var path: String
    public var role: WebRole
    public var handler: @Sendable (_ request: ApiRequest, _ body: JSONValue, _ user: Principal) async -> ApiReply

    public init(
        method: String, path: String, role: WebRole,
        handler: @escaping @Sendable (ApiRequest, JSONValue, Principal) async -> ApiReply
    ) {
        self.method = method
        self.path = path
        self.role = role
        self.handler = handler
    }
}

/// `/api/v1`: authentication, authorisation, then the route. Every answer, errors included,
/// is JSON with `result: {code, message}` (the event stream aside).
public struct WebAPI: Sendable {
    let daemon: any DaemonPort
    let runner: OperationRunner
    let feed: StatusFeed
    let authenticator: Authenticator
    let policy: AccessPolicy
    let settings: WebSettings
    let alertLogPath: String
    let extraRoutes: [ExtraRoute]
    /// Keepalive comments on the event stream (proxies close silent connections).
    let keepalive: Duration
    /// Where the event stream's producers run (off the cooperative pool).
    let executor: any TaskExecutor

    init(
        daemon: any DaemonPort, config: ClusterConfig, me: ServerName, settings: WebSettings, alertLogPath: String,
        feed: StatusFeed, authenticator: Authenticator, extraRoutes: [ExtraRoute], keepalive: Duration = .seconds(15),
        executor: any TaskExecutor = WebExecutor()
    ) {
        self.executor = executor
        self.daemon = daemon
        runner = OperationRunner(daemon: daemon, config: config, me: me)
        self.feed = feed
        self.authenticator = authenticator
        policy = AccessPolicy(settings.clientAddresses)
        self.settings = settings
        self.alertLogPath = alertLogPath
        self.extraRoutes = extraRoutes
        self.keepalive = keepalive
    }

    static let basicChallenge = ("WWW-Authenticate", "Basic realm=\"Understudy\", charset=\"UTF-8\"")

    public func respond(_ request: ApiRequest) async -> ApiResponse {
        if request.path == MetricsExporter.path { return await metrics(request) }
        let route: ApiRoute?
        var extra: ExtraRoute?
        switch ApiRoute.match(method: request.method, path: request.path) {
        case .route(let matched): route = matched
        case .methodNotAllowed(let allowed):
            return ApiResponse(
                ApiReply(status: 405, body: ApiReply.error(.badRequest, "\(request.method) is not allowed here; use \(allowed).").body),
                headers: [("Allow", allowed)])
        case .notFound:
            extra = extraRoutes.first { $0.method == request.method && $0.path == request.path }
            if extra == nil, let other = extraRoutes.first(where: { $0.path == request.path }) {
                return ApiResponse(
                    ApiReply(
                        status: 405, body: ApiReply.error(.badRequest, "\(request.method) is not allowed here; use \(other.method).").body),
                    headers: [("Allow", other.method)])
            }
            guard extra != nil else {
                return ApiResponse(.error(.notFound, "No such path: \(request.method) \(request.path.prefix(200))."))
            }
            route = nil
        }
        if route == .openAPI { return ApiResponse(ApiReply(status: 200, body: OpenAPIDocument.json)) }
        let address = request.address ?? "unknown"
        if route == .login { return await login(request, address: address) }

        // Who is it?
        var principal: Principal
        switch await identify(request, address: address) {
        case .success(let found): principal = found
        case .failure(let response): return response
        }
        guard let role = policy.effectiveRole(user: principal.role, address: request.address) else {
            return ApiResponse(.error(.forbidden, "Client address \(address) is not allowed for user \(principal.user)."))
        }
        principal.role = role
        let isPost = request.method == "POST"
        if isPost {
            if let refusal = crossSiteRefusal(request, principal: principal) { return ApiResponse(refusal) }
        }
        let body: JSONValue
        if isPost {
            switch await readJSON(request) {
            case .success(let value): body = value
            case .failure(let reply): return ApiResponse(reply)
            }
        } else {
            body = .null
        }
        if let extra {
            guard principal.role >= extra.role else { return ApiResponse(Self.roleRefusal(principal)) }
            return ApiResponse(await extra.handler(request, body, principal))
        }
        guard let route else { return ApiResponse(.error(.notFound, "No such path.")) }
        return await respond(route, request: request, body: body, principal: principal, address: address)
    }

    func respond(_ route: ApiRoute, request: ApiRequest, body: JSONValue, principal: Principal, address: String) async -> ApiResponse {
        let select = request.query["select"]
        switch route {
        case .openAPI, .login:
            return ApiResponse(.error(.notFound, "No such path."))
        case .logout:
            if let id = principal.sessionID { await authenticator.closeSession(id) }
            return ApiResponse(.ok(), headers: [("Set-Cookie", SessionStore.clearingCookie)])
        case .cluster, .servers, .groups, .resources, .monitors, .toratio:
            guard let snapshot = await feed.current() else {
                return ApiResponse(.error(.unreachable, "The daemon did not answer with its status."))
            }
            switch route {
            case .cluster: return ApiResponse(.ok(ApiShapes.cluster(snapshot)))
            case .toratio: return ApiResponse(.ok(ApiShapes.toratio(snapshot)))
            case .servers(let name): return ApiResponse(ApiShapes.servers(snapshot, name: name, select: select))
            case .groups(let name): return ApiResponse(ApiShapes.groups(snapshot, name: name, select: select))
            case .resources(let name): return ApiResponse(ApiShapes.resources(snapshot, name: name, select: select))
            case .monitors(let name): return ApiResponse(ApiShapes.monitors(snapshot, name: name, select: select))
            default: return ApiResponse(.error(.notFound, "No such path."))
            }
        case .alerts:
            var limit = 500
            if let text = request.query["limit"] {
                guard let value = Int(text), (1...10_000).contains(value) else {
                    return ApiResponse(.error(.badRequest, "limit must be a whole number from 1 to 10000."))
                }
                limit = value
            }
            switch request.query["scope"] ?? "server" {
            case "server":
                let entries = AlertLogReader.read(path: alertLogPath, limit: limit)
                return ApiResponse(.ok([("alerts", .array(entries.map(\.json)))]))
            case "cluster":
                // The cluster alert log as this server holds it (every server's entries,
                // exchanged between the servers): servers not connected now are named.
                guard
                    case .clusterAlerts(let replicated, let notConnected) = await daemon.request(.clusterAlerts(limit: limit, origin: nil))
                else { return ApiResponse(.error(.failed, "The daemon did not answer with the alert log.")) }
                let entries = replicated.compactMap { AlertLogReader.parse($0.line) }
                return ApiResponse(
                    .ok([("alerts", .array(entries.map(\.json))), ("unreachable", .array(notConnected.map { JSONValue.string($0) }))]))
            default:
                return ApiResponse(.error(.badRequest, "scope must be server or cluster."))
            }
        case .events:
            return events()
        case .operation(let operation):
            guard principal.role == .operator else { return ApiResponse(Self.roleRefusal(principal)) }
            let reply = await runner.run(operation, body: body)
            // A read after an operation shows it (not a snapshot taken before it).
            await feed.invalidate()
            let outcome = reply.code == 0 ? "accepted" : "refused: \(reply.body["result"]?["message"]?.stringValue ?? "")"
            await daemon.recordAlert(
                LogEntry(.webOperation, "User \(principal.user) from \(address): POST \(request.path.prefix(200)): \(outcome.prefix(300))"))
            return ApiResponse(reply)
        }
    }

    static func roleRefusal(_ principal: Principal) -> ApiReply {
        .error(.forbidden, "User \(principal.user) may only view (role viewer, or an address on the view-only list).")
    }

    // MARK: - Authentication

    func identify(_ request: ApiRequest, address: String) async -> Result<Principal, ApiResponse> {
        if let header = request.headers["authorization"] {
            guard let (user, password) = Self.basicCredentials(header) else {
                return .failure(
                    ApiResponse(.error(.unauthenticated, "The Authorization header is not HTTP Basic."), headers: [Self.basicChallenge]))
            }
            switch await authenticator.check(user: user, password: password, address: address) {
            case .accepted(let principal): return .success(principal)
            case .rejected:
                return .failure(ApiResponse(.error(.unauthenticated, "Wrong user name or password."), headers: [Self.basicChallenge]))
            case .throttled(let seconds):
                return .failure(
                    ApiResponse(
                        .error(.tooManyAttempts, "Too many failed logins from \(address); try again in \(seconds) s."),
                        headers: [("Retry-After", "\(seconds)")]))
            }
        }
        if let cookie = request.headers["cookie"], let id = SessionStore.sessionID(fromCookieHeader: cookie) {
            guard let principal = await authenticator.session(id) else {
                return .failure(
                    ApiResponse(
                        .error(.unauthenticated, "The session expired or is unknown; log in again."),
                        headers: [("Set-Cookie", SessionStore.clearingCookie)]))
            }
            return .success(principal)
        }
        // The WebManager's own requests get no Basic challenge: a browser would answer it with
        // its password dialog instead of letting the page show its login form.
        let challenge = request.headers["x-requested-with"] == nil ? [Self.basicChallenge] : []
        return .failure(ApiResponse(.error(.unauthenticated, "Log in: HTTP Basic or a session."), headers: challenge))
    }

    /// `Basic base64(user:password)`, the scheme in any case.
    static func basicCredentials(_ header: String) -> (String, String)? {
        let parts = header.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "basic",
            let data = Data(base64Encoded: parts[1].trimmingCharacters(in: .whitespaces)),
            let text = String(data: data, encoding: .utf8), let colon = text.firstIndex(of: ":")
        else { return nil }
        return (String(text[..<colon]), String(text[text.index(after: colon)...]))
    }

    /// A POST of a session needs its CSRF token; a POST with HTTP Basic from a browser page
    /// of another origin is refused (browsers resend cached Basic credentials by themselves).
    func crossSiteRefusal(_ request: ApiRequest, principal: Principal) -> ApiReply? {
        if let token = principal.csrfToken {
            guard let sent = request.headers["x-csrf-token"],
                PasswordHash.constantTimeEqual(Array(sent.utf8), Array(token.utf8))
            else {
                return .error(.forbidden, "Missing or wrong X-CSRF-Token header (the token comes with the login).")
            }
            return nil
        }
        if let origin = request.headers["origin"], origin != "null" {
            let host = request.headers["host"] ?? ""
            let originHost = origin.split(separator: "/", omittingEmptySubsequences: true).dropFirst().first.map(String.init) ?? ""
            if originHost.lowercased() != host.lowercased() {
                return .error(.forbidden, "Cross-site request refused (Origin \(origin.prefix(100)) is not this server).")
            }
        }
        return nil
    }

    func login(_ request: ApiRequest, address: String) async -> ApiResponse {
        let body: JSONValue
        switch await readJSON(request) {
        case .success(let value): body = value
        case .failure(let reply): return ApiResponse(reply)
        }
        guard let user = (body["username"] ?? body["user"])?.stringValue, let password = body["password"]?.stringValue else {
            return ApiResponse(.error(.badRequest, "Log in with {\"username\": …, \"password\": …}."))
        }
        switch await authenticator.check(user: user, password: password, address: address) {
        case .rejected:
            return ApiResponse(.error(.unauthenticated, "Wrong user name or password."))
        case .throttled(let seconds):
            return ApiResponse(
                .error(.tooManyAttempts, "Too many failed logins from \(address); try again in \(seconds) s."),
                headers: [("Retry-After", "\(seconds)")])
        case .accepted(let principal):
            guard let role = policy.effectiveRole(user: principal.role, address: request.address) else {
                return ApiResponse(.error(.forbidden, "Client address \(address) is not allowed for user \(principal.user)."))
            }
            let session = await authenticator.openSession(for: Principal(user: principal.user, role: role))
            let timeout = await authenticator.sessionTimeout
            return ApiResponse(
                .ok([
                    ("user", .string(principal.user)), ("role", .string(role.rawValue)), ("csrfToken", .string(session.csrf)),
                    ("sessionTimeout", .int(Int(timeout.components.seconds))),
                ]), headers: [("Set-Cookie", SessionStore.cookie(id: session.id, maxAge: timeout * 48))])
        }
    }

    // MARK: - Bodies

    /// The body as JSON whatever the Content-Type says (EXPRESSCLUSTER clients send JSON as
    /// form data); empty is null.
    func readJSON(_ request: ApiRequest) async -> Result<JSONValue, ApiReply> {
        let limit = settings.maxBodySize
        if let length = request.headers["content-length"].flatMap({ Int($0) }), length > limit {
            return .failure(.error(.tooLarge, "The request body is \(length) bytes; at most \(limit) are accepted."))
        }
        let bytes: [UInt8]
        do {
            bytes = try await request.readBody(limit)
        } catch is BodyTooLarge {
            return .failure(.error(.tooLarge, "The request body is larger than \(limit) bytes."))
        } catch {
            return .failure(.error(.badRequest, "The request body could not be read."))
        }
        if bytes.allSatisfy({ [0x20, 0x09, 0x0a, 0x0d].contains($0) }) { return .success(.null) }
        do {
            return .success(try JSONValue.parse(bytes))
        } catch {
            return .failure(.error(.badRequest, "Malformed JSON in the request body: \(error.description)."))
        }
    }

    // MARK: - Events

    /// `text/event-stream`: `status` events (the whole status, now and on every change) and
    /// `alert` events (each new alert-log line), with a keepalive comment every 15 s.
    func events() -> ApiResponse {
        let feed = self.feed
        let daemon = self.daemon
        let keepalive = self.keepalive
        let executor = self.executor
        return ApiResponse(
            status: 200,
            headers: [("Content-Type", "text/event-stream"), ("Cache-Control", "no-cache"), ("X-Accel-Buffering", "no")],
            body: .eventStream {
                let (chunks, sink) = AsyncStream<String>.makeStream(bufferingPolicy: .bufferingNewest(256))
                sink.yield("retry: 2000\n\n")
                let producers = Task(executorPreference: executor) {
                    await withTaskGroup(of: Void.self) { tasks in
                        tasks.addTask {
                            if let snapshot = await feed.current() {
                                sink.yield("event: status\ndata: \(ApiShapes.status(snapshot).serialized)\n\n")
                            }
                            for await status in await feed.subscribe() {
                                sink.yield("event: status\ndata: \(status.serialized)\n\n")
                            }
                        }
                        tasks.addTask {
                            for await line in await daemon.alertLines() {
                                guard let entry = AlertLogReader.parse(line) else { continue }
                                sink.yield("event: alert\ndata: \(entry.json.serialized)\n\n")
                            }
                        }
                        tasks.addTask {
                            while !Task.isCancelled {
                                try? await Task.sleep(for: keepalive)
                                sink.yield(": keepalive\n\n")
                            }
                        }
                        await tasks.waitForAll()
                    }
                }
                sink.onTermination = { _ in producers.cancel() }
                return chunks
            })
    }
}
