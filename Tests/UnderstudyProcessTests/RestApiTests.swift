import Foundation
import Testing
import UnderstudyModel
import UnderstudyTestSupport
import UnderstudyWeb

#if canImport(Glibc)
    import Glibc
#endif

/// Issue 16: the REST API /api/v1 of three real daemons on loopback, talked to with curl,
/// every response checked against the OpenAPI document the server publishes.
@Suite("Process: REST API")
struct RestApiTests {
    static let adminPassword = "adm1n-Pa55word-zq"
    static let viewerPassword = "v1ewer-Pa55word-zq"

    /// Sends requests and checks each answer against the OpenAPI document.
    final class Client: @unchecked Sendable {
        let base: String
        let checker: OpenAPIChecker
        var probe: HTTPProbe
        private(set) var exchanges = 0

        init(base: String, checker: OpenAPIChecker, probe: HTTPProbe) {
            self.base = base
            self.checker = checker
            self.probe = probe
        }

        @discardableResult
        func call(
            _ method: String, _ path: String, body: String? = nil, headers: [String: String] = [:], as probe: HTTPProbe? = nil,
            sourceLocation: SourceLocation = #_sourceLocation
        ) async throws -> HTTPExchange {
            let exchange = try await (probe ?? self.probe).request(method, base + path, body: body, headers: headers)
            exchanges += 1
            let json = exchange.json
            #expect(json != nil, "not JSON: \(exchange)", sourceLocation: sourceLocation)
            #expect(exchange.code != nil, "no result.code: \(exchange)", sourceLocation: sourceLocation)
            if let json {
                let pathOnly = String(("/api/v1" + path).split(separator: "?").first ?? "")
                for problem in checker.problems(method: method, path: pathOnly, status: exchange.status, body: json) {
                    Issue.record("OpenAPI: \(problem)", sourceLocation: sourceLocation)
                }
            }
            return exchange
        }
    }

    @Test(
        "every endpoint against three daemons: shapes, operations through the clp* path, refusals, sessions, throttle, allow-lists, events")
    func everyEndpoint() async throws {
        var spec = ClusterSpec(subnet: 170)
        spec.groups = [
            .simple("grp1"),
            GroupSpec(name: "slow", servers: ["node2", "node3"], resources: [ExecSpec(name: "slow-app", start: .waitForRelease)]),
        ]
        spec.monitors = """
              - name: genw1
                type: genw
                script: check.sh
                interval: 500ms
                timeout: 5s
                recovery: {target: local-server, final-action: none}

            """
        spec.apiPort = try FreePort.take()
        spec.web = """
                listen: heartbeat-addresses
                tls: false
                max-body-size: 4096
                client-addresses:
                  operator: [127.0.170.50, 127.0.170.51/32]
                  viewer: [127.0.170.0/24]

            """
        spec.clusterExtra = "  rexec-directory: rexec\n"
        try await withCluster(spec) { cluster in
            try cluster.write("#!/bin/sh\nexit 0\n", to: cluster.folder + "/check.sh", mode: 0o755)
            try FileManager.default.createDirectory(atPath: cluster.folder + "/rexec", withIntermediateDirectories: true)
            try cluster.write(
                "#!/bin/sh\necho \"$CLP_SERVER_LOCAL\" >> '\(cluster.folder)/rexec-ran.log'\n", to: cluster.folder + "/rexec/touch.sh",
                mode: 0o755)
            try await cluster.addWebUser("admin", role: "operator", password: Self.adminPassword)
            try await cluster.addWebUser("watcher", role: "viewer", password: Self.viewerPassword)
            let list = try await cluster.understudy(["user", "list", "--config", cluster.configPath])
            #expect(list.outputLines == ["admin\toperator", "watcher\tviewer"], "\(list)")
            let usersFile = try String(contentsOfFile: cluster.folder + "/users.yaml", encoding: .utf8)
            #expect(!usersFile.contains(Self.adminPassword) && usersFile.contains("pbkdf2-sha256$"))

            try cluster.start()
            try await cluster.waitUntilFormed()
            let base = "http://127.0.170.1:\(spec.httpPort)/api/v1"
            let scratch = cluster.folder
            let admin = HTTPProbe(scratch: scratch, user: "admin", password: Self.adminPassword, from: "127.0.170.50")
            let viewer = HTTPProbe(scratch: scratch, user: "watcher", password: Self.viewerPassword, from: "127.0.170.52")
            let anonymous = HTTPProbe(scratch: scratch, from: "127.0.170.50")

            // The document itself, without credentials.
            var document: JSONValue?
            _ = try await poll(every: .milliseconds(200), upTo: .seconds(10)) {
                let answer = try await anonymous.request("GET", base + "/openapi.json")
                document = answer.status == 200 ? answer.json : nil
                return document != nil
            }
            let checker = OpenAPIChecker(document: try #require(document, "GET /openapi.json"))
            #expect(document?["openapi"]?.stringValue?.hasPrefix("3.") == true)
            let api = Client(base: base, checker: checker, probe: admin)

            // 401: none, wrong password, unknown user; every answer JSON with result.
            var answer = try await api.call("GET", "/cluster", as: anonymous)
            #expect(answer.status == 401 && answer.code == 5, "\(answer)")
            #expect(answer.headers["www-authenticate"]?.hasPrefix("Basic") == true, "\(answer.headers)")
            var wrong = admin
            wrong.password = "not-the-password"
            answer = try await api.call("GET", "/cluster", as: wrong)
            #expect(answer.status == 401 && answer.message?.isEmpty == false, "\(answer)")

            // Status, in EXPRESSCLUSTER's shapes.
            answer = try await api.call("GET", "/cluster")
            #expect(answer.status == 200 && answer.code == 0 && answer.message == "", "\(answer)")
            #expect(answer.json?["cluster"]?["name"] == .string("ptest170"))
            #expect(answer.json?["cluster"]?["status"] == .string("Online"))
            answer = try await api.call("GET", "/servers")
            #expect(
                answer.json?["servers"]
                    == .array(["node1", "node2", "node3"].map { .object([("name", .string($0)), ("status", .string("Online"))]) }),
                "\(answer)")
            answer = try await api.call("GET", "/servers/node2")
            #expect(answer.json?["servers"] == .array([.object([("name", .string("node2")), ("status", .string("Online"))])]), "\(answer)")
            answer = try await api.call("GET", "/servers?select=name")
            #expect(answer.json?["servers"]?.serialized == #"[{"name":"node1"},{"name":"node2"},{"name":"node3"}]"#, "\(answer)")
            answer = try await api.call("GET", "/groups/grp1")
            #expect(
                answer.body.contains(
                    #""groups":[{"name":"grp1","status":"Online","current":"node1","resources":[{"name":"grp1-app","type":"exec","status":"Online","current":"node1","group":"grp1"}]}]"#
                ), "\(answer)")
            answer = try await api.call("GET", "/groups?select=name")
            #expect(answer.json?["groups"]?.serialized == #"[{"name":"grp1"},{"name":"slow"}]"#, "\(answer)")
            answer = try await api.call("GET", "/groups/grp1?select=resources")
            #expect(answer.json?["groups"]?.serialized.contains(#""resources":[{"name":"grp1-app""#) == true, "\(answer)")
            #expect(answer.json?["groups"]?.serialized.contains("status") == true, "resources keep their status: \(answer)")
            answer = try await api.call("GET", "/resources")
            #expect(
                answer.json?["resources"].map { if case .array(let items) = $0 { return items.count } else { return 0 } } == 2, "\(answer)")
            answer = try await api.call("GET", "/resources/grp1-app")
            #expect(
                answer.json?["resources"]?.serialized
                    == #"[{"name":"grp1-app","type":"exec","status":"Online","current":"node1","group":"grp1"}]"#, "\(answer)")
            answer = try await api.call("GET", "/monitors")
            #expect(answer.json?["monitors"]?.serialized.contains(#""name":"genw1","type":"genw""#) == true, "\(answer)")
            answer = try await api.call("GET", "/monitors/genw1?select=name")
            #expect(answer.json?["monitors"]?.serialized == #"[{"name":"genw1"}]"#, "\(answer)")
            // Every server answers for the cluster, and so does ports.api.
            answer = try await api.call("GET", "/groups/grp1", as: admin)
            let node3 = try await admin.request("GET", "http://127.0.170.3:\(spec.httpPort)/api/v1/groups/grp1")
            #expect(node3.status == 200 && node3.json?["groups"] == answer.json?["groups"], "\(node3)")
            let apiPort = try await admin.request("GET", "http://127.0.170.2:\(try #require(spec.apiPort))/api/v1/cluster")
            #expect(apiPort.status == 200 && apiPort.json?["cluster"]?["name"] == .string("ptest170"), "\(apiPort)")

            // 404, 405, 400.
            answer = try await api.call("GET", "/groups/nosuch")
            #expect(answer.status == 404 && answer.code == 7 && answer.message?.contains("nosuch") == true, "\(answer)")
            answer = try await admin.request("GET", base + "/nosuch/path")
            #expect(answer.status == 404 && answer.code == 7, "\(answer)")
            answer = try await admin.request("GET", "http://127.0.170.1:\(spec.httpPort)/nosuch")
            #expect(answer.status == 404 && answer.code == 7, "\(answer)")
            answer = try await admin.request("DELETE", base + "/groups/grp1")
            #expect(answer.status == 405 && answer.code == 2, "\(answer)")
            answer = try await api.call("GET", "/servers?select=bogus")
            #expect(answer.status == 400 && answer.code == 2, "\(answer)")
            answer = try await api.call("POST", "/groups/grp1/move", body: #"{"target": "node2""#)
            #expect(answer.status == 400 && answer.code == 2 && answer.message?.contains("JSON") == true, "\(answer)")
            answer = try await api.call("POST", "/groups/grp1/move", body: #"["node2"]"#)
            #expect(answer.status == 400, "\(answer)")
            answer = try await api.call("POST", "/groups/grp1/move", body: #"{"target": "nosuch"}"#)
            #expect(answer.status == 400 && answer.message?.contains("nosuch") == true, "\(answer)")
            answer = try await api.call("POST", "/groups/grp1/move", body: "{\"target\": \"" + String(repeating: "x", count: 5000) + "\"}")
            #expect(answer.status == 413 && answer.code == 8, "\(answer)")

            // 403: a viewer operating, an operator from an address on the view-only list, an
            // address on no list.
            answer = try await api.call("GET", "/groups", as: viewer)
            #expect(answer.status == 200, "\(answer)")
            answer = try await api.call("POST", "/groups/grp1/move", as: viewer)
            #expect(answer.status == 403 && answer.code == 6, "\(answer)")
            var demoted = admin
            demoted.from = "127.0.170.52"
            answer = try await api.call("GET", "/cluster", as: demoted)
            #expect(answer.status == 200, "\(answer)")
            answer = try await api.call("POST", "/cluster/suspend", as: demoted)
            #expect(answer.status == 403 && answer.code == 6, "\(answer)")
            var stranger = admin
            stranger.from = "127.0.171.9"
            answer = try await api.call("GET", "/cluster", as: stranger)
            #expect(answer.status == 403 && answer.message?.contains("127.0.171.9") == true, "\(answer)")
            // A browser page of another origin cannot use cached Basic credentials.
            answer = try await api.call("POST", "/cluster/suspend", headers: ["Origin": "http://evil.example"])
            #expect(answer.status == 403, "\(answer)")

            // A group in transition refuses, as clpgrp does (exit code 4 → result code 4, 409).
            try await cluster.waitForStatus("slow starting on node2", on: "node1") {
                $0.group(named: "slow")?.status == .onlinePending && $0.group(named: "slow")?.current == "node2"
            }
            answer = try await api.call("POST", "/groups/slow/move")
            #expect(answer.status == 409 && answer.code == 4 && answer.message?.isEmpty == false, "\(answer)")
            cluster.release("slow-app", "start")
            try await cluster.waitForStatus("slow online", on: "node1") { $0.group(named: "slow")?.status == .online }

            // Operations, with the live event stream watching: move grp1 (a JSON body without
            // a Content-Type, as a PowerShell client sends it).
            let events = try EventStreamCapture(
                url: "http://127.0.170.2:\(spec.httpPort)/api/v1/events", user: "admin", password: Self.adminPassword, from: "127.0.170.51",
                seconds: 8, folder: scratch)
            defer { events.stop() }
            try await Task.sleep(for: .seconds(1))
            answer = try await api.call("POST", "/groups/grp1/move", body: #"{"target": "node2"}"#)
            #expect(answer.status == 200 && answer.code == 0 && answer.message == "", "\(answer)")
            _ = try await poll(every: .milliseconds(100), upTo: .seconds(15)) {
                try await admin.request("GET", base + "/groups/grp1").json?["groups"]?.serialized.contains(
                    #""status":"Online","current":"node2""#) == true
            }
            let streamed = await events.wait()
            #expect(streamed.contains("event: status\ndata: {\"cluster\""), "\(streamed.prefix(2000))")
            #expect(
                streamed.contains(#""name":"grp1","status":"Online","current":"node2""#),
                "the move reached the stream: \(streamed.suffix(3000))")
            #expect(streamed.contains("event: alert\ndata: {"), "\(streamed.prefix(2000))")

            answer = try await api.call("POST", "/resources/grp1-app/stop")
            #expect(answer.status == 200 && answer.message == "", "\(answer)")
            try await cluster.waitForStatus("grp1-app offline", on: "node1") {
                $0.group(named: "grp1")?.resources.first?.status == .offline
            }
            answer = try await api.call("POST", "/resources/grp1-app/start", body: #"{"target": "node2"}"#)
            #expect(answer.status == 200 && answer.message == "", "\(answer)")
            try await cluster.waitForStatus("grp1-app online", on: "node1") {
                $0.group(named: "grp1")?.resources.first?.status == .online
            }

            answer = try await api.call("POST", "/monitors/genw1/suspend", body: #"{"target": "node2"}"#)
            #expect(answer.status == 200 && answer.message == "", "\(answer)")
            answer = try await api.call("GET", "/monitors/genw1")
            #expect(answer.body.contains(#"{"name":"node2","status":"Suspend"}"#), "\(answer)")
            answer = try await api.call("POST", "/monitors/genw1/resume", body: #"{"target": "node2"}"#)
            #expect(answer.status == 200, "\(answer)")
            answer = try await api.call("POST", "/monitors/genw1/dummy-failure/start", body: #"{"target": "node3"}"#)
            #expect(answer.status == 200, "\(answer)")
            try await cluster.waitForStatus("genw1 in error on node3", on: "node3") { $0.monitors?.first?.status == .error }
            answer = try await api.call("POST", "/monitors/genw1/dummy-failure/stop", body: #"{"target": "node3"}"#)
            #expect(answer.status == 200, "\(answer)")
            try await cluster.waitForStatus("genw1 normal on node3", on: "node3") { $0.monitors?.first?.status == .normal }

            answer = try await api.call("POST", "/cluster/suspend")
            #expect(answer.status == 200, "\(answer)")
            answer = try await api.call("GET", "/cluster")
            #expect(answer.json?["cluster"]?["status"] == .string("Suspend"), "\(answer)")
            answer = try await api.call("POST", "/cluster/resume")
            #expect(answer.status == 200, "\(answer)")

            answer = try await api.call("POST", "/scripts/run", body: #"{"script": "touch.sh", "target": "node3", "timeout": "30"}"#)
            #expect(answer.status == 200 && answer.message == "", "\(answer)")
            #expect((try? String(contentsOfFile: scratch + "/rexec-ran.log", encoding: .utf8)) == "node3\n")
            answer = try await api.call("POST", "/scripts/run", body: #"{"target": "node3"}"#)
            #expect(answer.status == 400, "\(answer)")

            // clptoratio: set here, taken by every server with its next heartbeat, reset.
            answer = try await api.call("GET", "/cluster/toratio")
            #expect(answer.status == 200 && answer.json?["cluster"]?["toratio"] == .number(1), "\(answer)")
            for bad in [
                #"{"ratio": 1, "time": "2h"}"#, #"{"ratio": 0}"#, #"{"time": "2h"}"#, #"{"ratio": 2, "time": "31d"}"#,
                #"{"ratio": 2, "time": 5}"#,
            ] {
                answer = try await api.call("POST", "/cluster/toratio/set", body: bad)
                #expect(answer.status == 400 && answer.code == 2 && answer.message?.isEmpty == false, "\(bad): \(answer)")
            }
            answer = try await api.call("POST", "/cluster/toratio/set", body: #"{"ratio": "3", "time": "2h"}"#)
            #expect(answer.status == 200 && answer.message == "", "\(answer)")
            _ = try await cluster.waitForStatus("ratio 3", on: "node3", timeout: .seconds(10)) { $0.timeoutRatio?.ratio == 3 }
            answer = try await api.call("GET", "/cluster/toratio")
            #expect(answer.json?["cluster"]?["toratio"] == .number(3) && answer.json?["cluster"]?["expires"] != nil, "\(answer)")
            answer = try await api.call("POST", "/cluster/toratio/reset")
            #expect(answer.status == 200, "\(answer)")
            _ = try await cluster.waitForStatus("ratio 1", on: "node3", timeout: .seconds(10)) { $0.timeoutRatio?.ratio == 1 }
            answer = try await api.call("POST", "/servers/node2/dummy-failure/start")
            #expect(answer.status == 501 && answer.code == 9 && answer.message?.isEmpty == false, "\(answer)")

            // Sessions: a cookie and the CSRF token of the login. The cookie is Secure, so
            // curl (like a browser) keeps it only for https or localhost: sent by hand here,
            // through the jar in the TLS test.
            let browser = HTTPProbe(scratch: scratch, from: "127.0.170.50")
            answer = try await api.call(
                "POST", "/login", body: #"{"username": "admin", "password": "\#(Self.adminPassword)"}"#, as: browser)
            #expect(answer.status == 200 && answer.json?["role"] == .string("operator"), "\(answer)")
            let cookie = answer.headers["set-cookie"] ?? ""
            #expect(cookie.contains("HttpOnly") && cookie.contains("Secure") && cookie.contains("SameSite=Strict"), "\(cookie)")
            let csrf = try #require(answer.json?["csrfToken"]?.stringValue)
            let session = ["Cookie": String(cookie.split(separator: ";").first ?? "")]
            answer = try await api.call("GET", "/groups", headers: session, as: browser)
            #expect(answer.status == 200, "\(answer)")
            answer = try await api.call("POST", "/groups/grp1/stop", headers: session, as: browser)
            #expect(answer.status == 403 && answer.message?.contains("CSRF") == true, "\(answer)")
            answer = try await api.call(
                "POST", "/groups/grp1/stop", headers: session.merging(["X-CSRF-Token": "forged"]) { a, _ in a }, as: browser)
            #expect(answer.status == 403, "\(answer)")
            answer = try await api.call(
                "POST", "/groups/grp1/stop", headers: session.merging(["X-CSRF-Token": csrf]) { a, _ in a }, as: browser)
            #expect(answer.status == 200 && answer.message == "", "\(answer)")
            try await cluster.waitForStatus("grp1 offline", on: "node1") { $0.group(named: "grp1")?.status == .offline }
            answer = try await api.call("POST", "/logout", headers: session.merging(["X-CSRF-Token": csrf]) { a, _ in a }, as: browser)
            #expect(answer.status == 200, "\(answer)")
            answer = try await api.call("GET", "/groups", headers: session, as: browser)
            #expect(answer.status == 401, "\(answer)")
            answer = try await api.call(
                "POST", "/login", body: #"{"username": "admin", "password": "wrong-one"}"#, as: browser)
            #expect(answer.status == 401 && answer.code == 5, "\(answer)")

            // Failed logins from one address: refused before any password check after five.
            var guesser = HTTPProbe(scratch: scratch, user: "admin", password: "guess", from: "127.0.170.60")
            for _ in 0..<5 {
                answer = try await api.call("GET", "/cluster", as: guesser)
                #expect(answer.status == 401, "\(answer)")
            }
            guesser.password = Self.adminPassword
            var typo = guesser
            typo.user = "Name-typed-as-Pa55word"
            typo.from = "127.0.170.61"
            answer = try await api.call("GET", "/cluster", as: typo)
            #expect(answer.status == 401, "\(answer)")
            answer = try await api.call("GET", "/cluster", as: guesser)
            #expect(answer.status == 429 && answer.code == 10 && answer.headers["retry-after"] != nil, "\(answer)")
            answer = try await api.call("GET", "/cluster")
            #expect(answer.status == 200, "other addresses are not throttled: \(answer)")

            // All groups, one server, the whole cluster (each start of slow is let through).
            cluster.release("slow-app", "start")
            answer = try await api.call("POST", "/groups/start", body: #"{"target": "node3"}"#)
            #expect(answer.status == 200, "\(answer)")
            try await cluster.waitForStatus("grp1 online on node3", on: "node1") {
                $0.group(named: "grp1")?.status == .online && $0.group(named: "grp1")?.current == "node3"
            }
            answer = try await api.call("POST", "/groups/stop")
            #expect(answer.status == 200, "\(answer)")
            try await cluster.waitForStatus("every group offline", on: "node1") { $0.groups.allSatisfy { $0.status == .offline } }
            try? FileManager.default.removeItem(atPath: cluster.releasePath("slow-app", "start"))

            answer = try await api.call("POST", "/servers/node3/stop")
            #expect(answer.status == 200, "\(answer)")
            try await cluster.waitForStatus("node3 stopped", on: "node3") { $0.service == "stopped" }
            answer = try await api.call("POST", "/servers/node3/start")
            #expect(answer.status == 200, "\(answer)")
            try await cluster.waitUntilFormed(group: nil)

            answer = try await api.call("POST", "/cluster/stop")
            #expect(answer.status == 200, "\(answer)")
            for server in cluster.servers {
                try await cluster.waitForStatus("\(server) stopped", on: server) { $0.service == "stopped" }
            }
            answer = try await api.call("GET", "/cluster")
            #expect(answer.json?["cluster"]?["status"] == .string("Offline"), "\(answer)")
            cluster.release("slow-app", "start")
            answer = try await api.call("POST", "/cluster/start")
            #expect(answer.status == 200, "\(answer)")
            try await cluster.waitUntilFormed(group: nil)
            try await cluster.waitForStatus("slow online", on: "node1") { $0.group(named: "slow")?.status == .online }

            // The WebManager's own routes, checked against the document like the rest.
            answer = try await api.call("GET", "/session")
            #expect(answer.json?["role"]?.stringValue == "operator", "\(answer)")
            answer = try await api.call("GET", "/status?server=node2")
            #expect(answer.json?["status"]?["localServer"]?.stringValue == "node2", "\(answer)")
            answer = try await api.call("GET", "/config")
            let running = answer.json?["yaml"]?.stringValue ?? ""
            #expect(running.contains("genw1"), "\(answer)")
            let edited = running.replacingOccurrences(of: "interval: 500ms", with: "interval: 600ms")
            let quoted = JSONValue.object([("yaml", .string(edited))]).serialized
            answer = try await api.call("POST", "/config/check", body: quoted)
            #expect(answer.json?["reflection"]?["method"]?.stringValue == "restartMonitors", "\(answer)")
            answer = try await api.call(
                "POST", "/config/check", body: JSONValue.object([("yaml", .string(running + "bogus: 1\n"))]).serialized)
            #expect(answer.status == 400 && (answer.json?["errors"]?.serialized ?? "").contains("bogus"), "\(answer)")
            answer = try await api.call("POST", "/config/apply", body: quoted, as: viewer)
            #expect(answer.status == 403, "\(answer)")

            answer = try await api.call("GET", "/alerts?scope=cluster&limit=2000")
            let everyServer = answer.json?["alerts"]?.serialized ?? ""
            for server in ["node1", "node2", "node3"] {
                #expect(everyServer.contains("\"server\":\"\(server)\""), "no alert of \(server) in the merged view")
            }
            #expect(answer.json?["unreachable"]?.serialized == "[]", "\(answer)")
            answer = try await api.call("GET", "/alerts?scope=everything")
            #expect(answer.status == 400, "\(answer)")

            answer = try await api.call("GET", "/alerts?limit=2000")
            let alerts = answer.json?["alerts"]?.serialized ?? ""
            #expect(alerts.contains(#""module":"apisv","id":1,"#), "operations are in the alert log")
            #expect(alerts.contains(#""module":"apisv","id":101,"#), "failed logins are in the alert log")
            #expect(alerts.contains(#""module":"apisv","id":102,"#), "the throttle is in the alert log")

            // Right after a start the cluster refuses a stop until it has a master (as clpstdn).
            try await cluster.waitForStatus("a master", on: "node1") { $0.master != nil && $0.syncDone }
            answer = try await api.call("POST", "/cluster/shutdown")
            #expect(answer.status == 200, "\(answer)")
            _ = try await poll(upTo: .seconds(20)) {
                ((try? String(contentsOfFile: cluster.osActionsPath, encoding: .utf8)) ?? "").split(separator: "\n").count >= 3
            }
            #expect((try? String(contentsOfFile: cluster.osActionsPath, encoding: .utf8)) == "shutdown\nshutdown\nshutdown\n")
            #expect(api.exchanges > 60)

            // No password ever reaches a log.
            for server in cluster.servers {
                for file in [cluster.logPath(of: server), cluster.stateDirectory(of: server) + "/alert.log"] {
                    let text = (try? String(contentsOfFile: file, encoding: .utf8)) ?? ""
                    #expect(!text.isEmpty, "\(file)")
                    for secret in [Self.adminPassword, Self.viewerPassword, "guess", "Name-typed-as-Pa55word"] {
                        #expect(!text.contains(secret), "\(file) holds a password")
                    }
                }
            }
        }
    }
}

/// `curl -N` on the event stream for a bounded time, output in a file.
final class EventStreamCapture: @unchecked Sendable {
    let process = Process()
    let output: String

    init(url: String, user: String, password: String, from: String, seconds: Int, folder: String) throws {
        output = folder + "/events-\(UUID().uuidString.prefix(8)).txt"
        _ = FileManager.default.createFile(atPath: output, contents: nil)
        process.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
        process.arguments = ["-sS", "-N", "--max-time", "\(seconds)", "--interface", from, "-u", "\(user):\(password)", "-o", output, url]
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
    }

    /// Waits for curl's own time limit (bounded), then returns what it received.
    func wait() async -> String {
        for _ in 0..<300 where process.isRunning {
            try? await Task.sleep(for: .milliseconds(100))
        }
        stop()
        return (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
    }

    func stop() {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }
}
