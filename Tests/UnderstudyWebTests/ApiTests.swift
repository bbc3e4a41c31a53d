import Foundation
import Testing
import UnderstudyEngine
import UnderstudyModel
import UnderstudyNode
import UnderstudySimulator

@testable import UnderstudyWeb

/// A daemon that answers from a fixed snapshot and records the commands it gets.
actor FakeDaemon: DaemonPort {
    var snapshot: ClusterStatusSnapshot
    var commands: [(ClusterCommand, String?)] = []
    var answer = CommandResult.ok()
    var alerts: [LogEntry] = []

    init(snapshot: ClusterStatusSnapshot) { self.snapshot = snapshot }

    func request(_ request: LocalRequest) async -> LocalResponse {
        switch request {
        case .status: return .status(snapshot)
        case .whoami: return .identity(server: "node1", cluster: "c1", servers: ["node1", "node2"])
        case .command(let command, let target):
            commands.append((command, target))
            return .result(answer)
        case .configApply, .configCommit, .configPull, .logCommand, .logCollection:
            return .result(CommandResult(.failed, "not in this fake"))
        case .alerts(let target, _):
            return target == "node2" ? .result(CommandResult(.unreachable, "node2 does not answer")) : .alerts([])
        case .clusterAlerts:
            return .clusterAlerts([], notConnected: ["node2"])
        }
    }

    func recordAlert(_ entry: LogEntry) async { alerts.append(entry) }
    func alertLines() async -> AsyncStream<String> { AsyncStream { $0.finish() } }
    func setAnswer(_ result: CommandResult) { answer = result }
}

enum Fixture {
    static let snapshotJSON = """
        {"cluster":"c1","comment":"","localServer":"node1","master":"node1","service":"running","suspended":false,
         "isolated":false,"syncDone":true,"autoStartSuppressed":false,
         "servers":[{"name":"node1","comment":"","status":"Online","isLocal":true,"isMaster":true,"heartbeats":[],"networkPartition":[]},
                    {"name":"node2","comment":"","status":"Offline","isLocal":false,"isMaster":false,"heartbeats":[],"networkPartition":[]}],
         "groups":[{"name":"g1","comment":"","status":"Online","current":"node1","perServer":{"node1":"Online"},"failoverCount":0,
                    "resources":[{"name":"r1","type":"exec","comment":"","status":"Online","perServer":{"node1":"Online"}}]},
                   {"name":"g2","comment":"","status":"Offline","perServer":{},"failoverCount":0,
                    "resources":[{"name":"r2","type":"fip","comment":"","status":"Offline","perServer":{}}]}],
         "monitors":[{"name":"m1","type":"genw","comment":"","status":"Normal","perServer":{"node1":"Normal"},"detail":"",
                      "counters":{"recoveryScripts":0,"reactivations":0,"failovers":0,"finalActionDone":false},
                      "maxReactivations":0,"maxFailovers":0,"maxRecoveryScripts":0,"suspended":false,"dummyFailure":false}]}
        """

    static func snapshot() throws -> ClusterStatusSnapshot {
        try JSONDecoder().decode(ClusterStatusSnapshot.self, from: Data(snapshotJSON.utf8))
    }

    static func config() throws -> ClusterConfig {
        let yaml = """
            cluster:
              name: c1
              secret-file: /etc/understudy/test.key
              web: {tls: false, max-body-size: 1024}
            servers:
              - name: node1
              - name: node2
            heartbeats:
              - {name: lan1, type: lanhb, addresses: {node1: 10.0.0.1, node2: 10.0.0.2}}
            network-partition:
              - {name: np1, type: majority}
            groups:
              - name: g1
                resources:
                  - {name: r1, type: exec, start: /bin/true, stop: /bin/true}
              - name: g2
                resources:
                  - {name: r2, type: exec, start: /bin/true, stop: /bin/true}
            monitors:
              - {name: m1, type: genw, script: /bin/true, recovery: {target: local-server, final-action: none}}
            """
        return try ConfigLoader.loadWithWarnings(yaml: yaml, sourcePath: "/tmp/c1/cluster.yaml", checkFiles: false).config
    }
}

@Suite("Web: routes, shapes, requests")
struct ApiTests {
    @Test("paths and verbs as EXPRESSCLUSTER's")
    func routes() {
        let table: [(String, String, RouteMatch)] = [
            ("GET", "/api/v1/cluster", .route(.cluster)),
            ("GET", "/api/v1/cluster/", .route(.cluster)),
            ("GET", "/api/v1/groups/failover1", .route(.groups("failover1"))),
            ("GET", "/api/v1/groups/a%20b", .route(.groups("a b"))),
            ("POST", "/api/v1/groups/start", .route(.operation(.group(nil, .start)))),
            ("POST", "/api/v1/groups/g1/move", .route(.operation(.group("g1", .move)))),
            ("POST", "/api/v1/servers/s1/reboot", .route(.operation(.server("s1", .reboot)))),
            ("POST", "/api/v1/servers/s1/dummy-failure/start", .route(.operation(.serverDummyFailure("s1", start: true)))),
            ("POST", "/api/v1/monitors/m1/dummy-failure/stop", .route(.operation(.monitor("m1", .dummyFailureStop)))),
            ("POST", "/api/v1/cluster/toratio/set", .route(.operation(.toratioSet))),
            ("POST", "/api/v1/scripts/run", .route(.operation(.runScript))),
            ("GET", "/api/v1/openapi.json", .route(.openAPI)),
            ("POST", "/api/v1/cluster", .methodNotAllowed(allowed: "GET")),
            ("GET", "/api/v1/groups/g1/move", .methodNotAllowed(allowed: "POST")),
            ("GET", "/api/v1/nothing", .notFound),
            ("GET", "/api/v2/cluster", .notFound),
            ("POST", "/api/v1/cluster/explode", .notFound),
        ]
        for (method, path, expected) in table {
            #expect(ApiRoute.match(method: method, path: path) == expected, "\(method) \(path)")
        }
    }

    @Test("one-element lists, \"None\", select")
    func shapes() throws {
        let snapshot = try Fixture.snapshot()
        #expect(
            ApiShapes.groups(snapshot, name: "g2", select: nil).body.serialized.contains(
                #""groups":[{"name":"g2","status":"Offline","current":"None","resources":[{"name":"r2","type":"fip","status":"Offline","current":"None","group":"g2"}]}]"#
            ))
        #expect(
            ApiShapes.servers(snapshot, name: nil, select: "name").body["servers"]?.serialized == #"[{"name":"node1"},{"name":"node2"}]"#)
        #expect(
            ApiShapes.monitors(snapshot, name: "m1", select: nil).body["monitors"]?.serialized
                == #"[{"name":"m1","type":"genw","status":"Normal","servers":[{"name":"node1","status":"Normal"},{"name":"node2","status":"Unused"}]}]"#
        )
        #expect(ApiShapes.groups(snapshot, name: "nope", select: nil).status == 404)
        #expect(ApiShapes.groups(snapshot, name: nil, select: "bogus").status == 400)
        #expect(ApiShapes.clusterStatus(snapshot) == "Caution", "node2 is offline")
        #expect(ApiReply.ok().body.serialized == #"{"result":{"code":0,"message":""}}"#)
    }

    @Test("the event stream's status carries the alert destinations, so a counter that moves is a change")
    func statusCarriesAlertDestinations() throws {
        var snapshot = try Fixture.snapshot()
        #expect(ApiShapes.status(snapshot)["alertDestinations"]?.serialized == "[]")
        snapshot.alertDestinations = [
            .init(name: "chat", type: "webhook", failed: 2, retried: 2, dropped: 1, queued: 3, failing: true, lastError: "refused"),
            .init(name: "syslog", type: "syslog", delivered: 7),
        ]
        let shown = ApiShapes.status(snapshot)
        #expect(
            shown["alertDestinations"]?.serialized
                == #"[{"name":"chat","type":"webhook","failing":true,"delivered":0,"failed":2,"retried":2,"dropped":1,"queued":3,"lastError":"refused"},{"name":"syslog","type":"syslog","failing":false,"delivered":7,"failed":0,"retried":0,"dropped":0,"queued":0,"lastError":null}]"#
        )
        snapshot.alertDestinations?[0].failed = 3
        #expect(ApiShapes.status(snapshot) != shown, "one more failure must reach the event stream")
    }

    @Test("the OpenAPI document parses and names every route")
    func openAPI() {
        for path in WebManager.routePaths { #expect(OpenAPIDocument.json["paths"]?[path] != nil, "\(path)") }
        let paths = OpenAPIDocument.json["paths"]?.objectKeys ?? []
        #expect(paths.count > 30)
        // The WebManager's routes are served beside ApiRoute (WebManager.routes).
        #expect(OpenAPIDocument.json["paths"]?[MetricsExporter.path]?["get"] != nil)
        for path in paths where !WebManager.routePaths.contains(path) && path != MetricsExporter.path {
            let concrete = path.replacingOccurrences(of: "{name}", with: "x")
            let method = OpenAPIDocument.json["paths"]?[path]?["get"] != nil ? "GET" : "POST"
            #expect(ApiRoute.match(method: method, path: concrete) != .notFound, "\(path)")
        }
    }

    func api(
        _ daemon: FakeDaemon, throttleAddress: String = "10.0.0.9", adjust: (inout WebSettings) -> Void = { _ in }
    ) throws -> (WebAPI, Authenticator) {
        let config = try Fixture.config()
        var settings = try #require(config.cluster.web)
        adjust(&settings)
        let folder = FileManager.default.temporaryDirectory.path + "/webapi-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        try UsersFile.save(
            [
                WebUser(name: "op", role: .operator, password: try PasswordHash.make(password: "op-password", rounds: 100_000)),
                WebUser(name: "view", role: .viewer, password: try PasswordHash.make(password: "view-password", rounds: 100_000)),
            ], path: folder + "/users.yaml")
        let authenticator = Authenticator(usersPath: folder + "/users.yaml", sessionTimeout: .seconds(60), logger: .init(label: "t")) {
            await daemon.recordAlert($0)
        }
        let web = WebAPI(
            daemon: daemon, config: config, me: "node1", settings: settings, alertLogPath: folder + "/alert.log",
            feed: StatusFeed(daemon: daemon), authenticator: authenticator, extraRoutes: [])
        return (web, authenticator)
    }

    func request(_ method: String, _ path: String, user: String? = "op", password: String = "op-password", body: String = "") -> ApiRequest
    {
        var headers: [String: String] = [:]
        if let user { headers["authorization"] = "basic " + Data("\(user):\(password)".utf8).base64EncodedString() }
        let bytes = Array(body.utf8)
        return ApiRequest(method: method, path: path, query: [:], headers: headers, address: "10.0.0.9") { limit in
            guard bytes.count <= limit else { throw BodyTooLarge() }
            return bytes
        }
    }

    func reply(_ response: ApiResponse) -> (Int, JSONValue?) {
        if case .json(let value) = response.body { return (response.status, value) }
        return (response.status, nil)
    }

    @Test("operations become the clp* commands; refusals keep their message and code")
    func operations() async throws {
        let daemon = FakeDaemon(snapshot: try Fixture.snapshot())
        let (web, _) = try api(daemon)
        var (status, body) = reply(await web.respond(request("POST", "/api/v1/groups/g1/move", body: #"{"target":"node2"}"#)))
        #expect(status == 200 && body?.serialized == #"{"result":{"code":0,"message":""}}"#)
        (status, _) = reply(await web.respond(request("POST", "/api/v1/monitors/m1/suspend", body: #"{"target":"node2"}"#)))
        (status, _) = reply(await web.respond(request("POST", "/api/v1/resources/r1/start")))
        (status, _) = reply(await web.respond(request("POST", "/api/v1/servers/node2/shutdown")))
        (status, _) = reply(
            await web.respond(request("POST", "/api/v1/scripts/run", body: #"{"script":"/x/y/run.sh","target":"10.0.0.2"}"#)))
        let sent = await daemon.commands
        #expect(sent.count == 5)
        #expect(sent[0].0 == .moveGroup("g1", to: "node2") && sent[0].1 == nil)
        #expect(sent[1].0 == .monitor(.suspend, monitor: "m1", server: nil) && sent[1].1 == "node2")
        #expect(sent[2].0 == .startResource("r1") && sent[2].1 == nil)
        #expect(sent[3].0 == .stopService(factor: .serverShutdown, lastAction: .halt, then: .os(.shutdown)) && sent[3].1 == "node2")
        #expect(sent[4].0 == .runScript(name: "run.sh", timeoutSeconds: 180) && sent[4].1 == "10.0.0.2")
        #expect(await daemon.alerts.filter { $0.module == "apisv" && $0.eventID == 1 }.count == 5)

        await daemon.setAnswer(CommandResult(.inTransition, "Group g1 is in transition (Online Pending on node1); retry later."))
        (status, body) = reply(await web.respond(request("POST", "/api/v1/groups/g1/stop")))
        #expect(status == 409)
        #expect(body?.serialized == #"{"result":{"code":4,"message":"Group g1 is in transition (Online Pending on node1); retry later."}}"#)
    }

    @Test("bodies: JSON whatever the content type, malformed 400, oversized 413, unknown names 404, viewers 403")
    func bodies() async throws {
        let daemon = FakeDaemon(snapshot: try Fixture.snapshot())
        let (web, _) = try api(daemon)
        #expect(reply(await web.respond(request("POST", "/api/v1/groups/g1/move", body: "{target: node2}"))).0 == 400)
        #expect(reply(await web.respond(request("POST", "/api/v1/groups/g1/move", body: "\"node2\""))).0 == 400)
        #expect(reply(await web.respond(request("POST", "/api/v1/groups/g1/move", body: String(repeating: " ", count: 2000)))).0 == 413)
        #expect(reply(await web.respond(request("POST", "/api/v1/groups/g9/move"))).0 == 404)
        #expect(reply(await web.respond(request("POST", "/api/v1/scripts/run", body: #"{"script":"a","timeout":0}"#))).0 == 400)
        #expect(reply(await web.respond(request("POST", "/api/v1/groups/g1/move", user: "view", password: "view-password"))).0 == 403)
        #expect(reply(await web.respond(request("GET", "/api/v1/groups", user: "view", password: "view-password"))).0 == 200)
        #expect(reply(await web.respond(request("GET", "/api/v1/groups", user: nil))).0 == 401)
        #expect(await daemon.commands.isEmpty)

        // Random request bodies: always an envelope, never a crash.
        var generator = SeededRandom(seed: 99)
        for _ in 0..<200 {
            let length = Int.random(in: 0..<60, using: &generator)
            let text = String(
                (0..<length).map { _ in
                    Array("{}[]\":,target node2 0123\\u".utf8).randomElement(using: &generator).map { Character(UnicodeScalar($0)) } ?? " "
                })
            let (status, body) = reply(await web.respond(request("POST", "/api/v1/groups/g1/move", body: text)))
            #expect([200, 400, 409].contains(status), "\(text) → \(status)")
            #expect(body?["result"]?["code"] != nil)
        }
    }
}
