import Foundation
import Testing
import UnderstudyEngine
import UnderstudyModel

@testable import UnderstudyWeb

/// `GET /metrics`: the text from a status snapshot, and who may read it.
@Suite("Web: Prometheus metrics")
struct MetricsTests {
    static func snapshot() throws -> ClusterStatusSnapshot {
        var snapshot = try Fixture.snapshot()
        snapshot.monitors?[0].lastCheckMillis = 1234
        snapshot.transport = [.init(name: "lan1", accepted: 42, dropped: ["replay": 3, "bad-mac": 1])]
        snapshot.runtime = .init(
            monitorChecks: 10, monitorLatenessP50: 100, monitorLatenessP99: 900, monitorLatenessMax: 2000, heartbeats: 300,
            heartbeatLatenessP50: 50, heartbeatLatenessP99: 400, heartbeatLatenessMax: 1500)
        snapshot.counters = .init(
            events: [.init(module: "rc", id: 60, level: "WARN", count: 2)], recoveryActions: ["restart": 1],
            failovers: ["g1": 2], lastFailoverSeconds: ["g1": 0.75], fences: ["g2": 1], stalls: 4,
            paths: [.init(server: "node2", path: "lan1", heartbeats: 99, lastHeardSeconds: 0.1, echoDelaySeconds: 0.2)])
        return snapshot
    }

    /// The sample lines of a text, without comments.
    static func samples(_ text: String) -> Set<String> {
        Set(text.split(separator: "\n").map(String.init).filter { !$0.hasPrefix("#") })
    }

    @Test("every family has HELP and TYPE; one-hot states; values from the snapshot and its counters")
    func rendering() throws {
        let text = MetricsExporter.render(try Self.snapshot(), version: "9.9")
        let samples = Self.samples(text)
        let expected = [
            #"understudy_info{cluster="c1",server="node1",version="9.9"} 1.0"#,
            #"understudy_server_up{server="node1"} 1.0"#,
            #"understudy_server_up{server="node2"} 0.0"#,
            #"understudy_server_master{server="node1"} 1.0"#,
            #"understudy_group_state{group="g1",server="node1",state="online"} 1.0"#,
            #"understudy_group_state{group="g1",server="node1",state="offline"} 0.0"#,
            #"understudy_group_state{group="g1",server="node2",state="unknown"} 1.0"#,
            #"understudy_group_state{group="g1",server="node2",state="online"} 0.0"#,
            #"understudy_group_state{group="g2",server="node1",state="online_pending"} 0.0"#,
            #"understudy_failovers_total{group="g1"} 2"#,
            #"understudy_failovers_total{group="g2"} 0"#,
            #"understudy_failover_last_duration_seconds{group="g1"} 0.75"#,
            #"understudy_group_fences_total{group="g2"} 1"#,
            #"understudy_monitor_status{monitor="m1",type="genw",status="normal"} 1.0"#,
            #"understudy_monitor_status{monitor="m1",type="genw",status="error"} 0.0"#,
            #"understudy_monitor_check_duration_seconds{monitor="m1",type="genw"} 1.234"#,
            #"understudy_monitor_recovery_steps{monitor="m1",step="reactivation"} 0.0"#,
            #"understudy_heartbeat_lateness_seconds{stat="p99"} 0.0004"#,
            #"understudy_transport_accepted_total{path="lan1"} 42"#,
            #"understudy_transport_dropped_total{path="lan1",reason="replay"} 3"#,
            #"understudy_stalls_total 4"#,
            #"understudy_heartbeats_received_total{server="node2",path="lan1"} 99"#,
            #"understudy_heartbeat_echo_delay_seconds{server="node2",path="lan1"} 0.2"#,
            #"understudy_recovery_actions_total{action="restart"} 1"#,
            #"understudy_recovery_actions_total{action="final_action"} 0"#,
            #"understudy_events_total{module="rc",event="60",level="WARN"} 2"#,
        ]
        for line in expected { #expect(samples.contains(line), "missing \(line) in:\n\(text)") }
        // Exactly one state per group and server.
        let ones = samples.filter { $0.hasPrefix("understudy_group_state{group=\"g1\",server=\"node1\"") && $0.hasSuffix(" 1.0") }
        #expect(ones.count == 1)
        // Every family named by a sample has its HELP and TYPE.
        let families = Set(samples.compactMap { $0.split(whereSeparator: { $0 == "{" || $0 == " " }).first.map(String.init) })
        for family in families {
            #expect(text.contains("# HELP \(family) "), "\(family)")
            #expect(text.contains("# TYPE \(family) "), "\(family)")
        }
        // No alert router yet: the family has no series.
        #expect(!text.contains("understudy_alert_destination_failures_total{"))
    }

    @Test("a snapshot without the daemon's counters (an older peer) still renders")
    func withoutCounters() throws {
        let text = MetricsExporter.render(try Fixture.snapshot())
        #expect(text.contains(#"understudy_group_state{group="g2",server="node1",state="unknown"} 1.0"#))
        #expect(!text.contains("understudy_stalls_total"))
    }

    @Test("docs/metrics.md has a row for every family the exporter writes")
    func documented() throws {
        var snapshot = try Self.snapshot()
        snapshot.counters?.alertDestinationFailures = ["mail": 1]
        let text = MetricsExporter.render(snapshot)
        let families = text.split(separator: "\n").filter { $0.hasPrefix("# TYPE ") }.compactMap {
            $0.split(separator: " ").dropFirst(2).first
        }
        #expect(families.count >= 24)
        var root = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { root.deleteLastPathComponent() }
        let doc = try String(contentsOf: root.appendingPathComponent("docs/metrics.md"), encoding: .utf8)
        for family in families { #expect(doc.contains("| `\(family)` |"), "\(family) is not in docs/metrics.md") }
    }
}

extension ApiTests {
    func metricsRequest(user: String?, password: String = "", address: String, method: String = "GET") -> ApiRequest {
        var headers: [String: String] = [:]
        if let user { headers["authorization"] = "Basic " + Data("\(user):\(password)".utf8).base64EncodedString() }
        return ApiRequest(method: method, path: "/metrics", query: [:], headers: headers, address: address) { _ in [] }
    }

    @Test("GET /metrics: a login (viewer suffices) or an address of unauthenticated-from; other methods 405")
    func metricsAccess() async throws {
        let daemon = FakeDaemon(snapshot: try MetricsTests.snapshot())
        let (web, _) = try api(daemon) { $0.metricsUnauthenticatedFrom = ["10.0.5.0/24"] }
        let anonymous = await web.respond(metricsRequest(user: nil, address: "10.0.0.9"))
        #expect(anonymous.status == 401)
        #expect(anonymous.headers.contains { $0.0 == "WWW-Authenticate" })
        let wrong = await web.respond(metricsRequest(user: "view", password: "nope", address: "10.0.0.9"))
        #expect(wrong.status == 401)
        for answer in [
            await web.respond(metricsRequest(user: "view", password: "view-password", address: "10.0.0.9")),
            await web.respond(metricsRequest(user: nil, address: "10.0.5.77")),
        ] {
            #expect(answer.status == 200)
            guard case .text(let text, let type) = answer.body else {
                Issue.record("not text: \(answer.body)")
                continue
            }
            #expect(type.hasPrefix("text/plain; version=0.0.4"))
            #expect(text.contains(#"understudy_stalls_total 4"#))
        }
        let post = await web.respond(metricsRequest(user: nil, address: "10.0.5.77", method: "POST"))
        #expect(post.status == 405 && post.headers.contains { $0 == ("Allow", "GET") })
    }
}
