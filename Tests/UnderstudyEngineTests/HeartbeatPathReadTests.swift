import Testing
import UnderstudyEngine
import UnderstudyModel

/// `ServerEngine.heartbeatPathIsUp`: the per-path liveness the daemon reads to choose the
/// control channel's path (a pure read of what the snapshot's heartbeat lines show).
@Suite("Heartbeat path liveness read")
struct HeartbeatPathReadTests {
    static func heartbeat(sentAt: EngineTime) -> Heartbeat {
        Heartbeat(
            sender: "s2", bootID: 9, run: 1, sentAt: sentAt, configHash: "h", priority: 1, syncDone: true,
            hears: ["s1": HeardHeartbeat(bootID: 1, sentAt: .zero, upSince: .zero)], view: ["s1", "s2"],
            groups: [:])
    }

    @Test("up only on the path heartbeats arrive on, down a timeout later, false while the service is stopped; as the snapshot shows")
    func pathLiveness() throws {
        let config = try ConfigLoader.load(
            yaml: """
                cluster: {name: c, secret-file: /etc/understudy/test.key, timing: {heartbeat-interval: 500ms, heartbeat-timeout: 3s}}
                servers: [{name: s1}, {name: s2}]
                heartbeats:
                  - {name: lan1, type: lanhb, addresses: {s1: 10.0.0.1, s2: 10.0.0.2}}
                  - {name: lan2, type: lanhb, addresses: {s1: 10.1.0.1, s2: 10.1.0.2}}
                """, sourcePath: "paths.yaml")
        var engine = ServerEngine(config: config, me: "s1", bootID: 1, configHash: "h")
        #expect(!engine.heartbeatPathIsUp("lan1", of: "s2", now: .zero), "stopped service: nothing is up")
        _ = engine.startService(now: .zero)
        #expect(!engine.heartbeatPathIsUp("lan1", of: "s2", now: .zero))
        _ = engine.handle(.heartbeat(Self.heartbeat(sentAt: .milliseconds(100)), path: "lan2"), now: .milliseconds(100))
        #expect(engine.heartbeatPathIsUp("lan2", of: "s2", now: .milliseconds(200)))
        #expect(!engine.heartbeatPathIsUp("lan1", of: "s2", now: .milliseconds(200)))
        #expect(!engine.heartbeatPathIsUp("nope", of: "s2", now: .milliseconds(200)))
        let lines = try #require(engine.snapshot(now: .milliseconds(200)).servers.first { $0.name == "s2" }).heartbeats
        #expect(lines.map(\.status) == [.error, .normal])
        #expect(engine.snapshot(now: .milliseconds(200)).servers.allSatisfy { $0.controlPath == nil }, "the daemon fills it in")
        #expect(!engine.heartbeatPathIsUp("lan2", of: "s2", now: .milliseconds(3_100)), "a timeout after the last one")
    }
}
