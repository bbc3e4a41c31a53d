import Testing
import UnderstudyEngine
import UnderstudyModel

/// Who founds a cluster when no server has joined one: the first server of the view, once its
/// startup sync is over; the others wait for it (simulator seed 24109313: two founded).
@Suite("Founding a cluster")
struct FoundingTests {
    /// Three servers; s3 never comes.
    static let config: ClusterConfig = {
        do {
            return try ConfigLoader.load(
                yaml: """
                    cluster: {name: c, secret-file: /etc/understudy/test.key, timing: {heartbeat-interval: 500ms, heartbeat-timeout: 3s, sync-wait: 5s}}
                    servers: [{name: s1}, {name: s2}, {name: s3}]
                    heartbeats: [{name: lan1, type: lanhb, addresses: {s1: 10.0.0.1, s2: 10.0.0.2, s3: 10.0.0.3}}]
                    """, sourcePath: "founding.yaml")
        } catch {
            fatalError("the test's configuration does not load: \(error)")
        }
    }()

    /// A heartbeat of `sender` that hears `peer`'s heartbeat sent at `echo`.
    static func heartbeat(
        from sender: ServerName, priority: Int, to peer: ServerName, sentAt: EngineTime, echo: EngineTime, syncDone: Bool
    ) -> Heartbeat {
        Heartbeat(
            sender: sender, bootID: sender == "s1" ? 11 : 12, run: 1, sentAt: sentAt, configHash: "h", priority: priority,
            syncDone: syncDone, hears: [peer: HeardHeartbeat(bootID: 1, sentAt: echo, upSince: .zero)], view: [peer, sender])
    }

    /// A heartbeat of `sender` that hears nobody (a one-way or lossy link: it does not hear `me`).
    static func deaf(from sender: ServerName, priority: Int, sentAt: EngineTime) -> Heartbeat {
        Heartbeat(
            sender: sender, bootID: 12, run: 1, sentAt: sentAt, configHash: "h", priority: priority, syncDone: true, hears: [:],
            view: [sender])
    }

    /// `me` (boot 1) runs from time zero and hears `peer` every half second from `from` until
    /// `until`, with the peer's sync over or not.
    static func run(
        _ engine: inout ServerEngine, peer: ServerName, priority: Int, from: EngineTime, until: EngineTime, peerSyncDone: Bool
    ) -> [String] {
        var logs: [String] = []
        var now = from
        while now <= until {
            let mine = engine.makeHeartbeat(now: now)
            let actions = engine.handle(
                .heartbeat(
                    Self.heartbeat(from: peer, priority: priority, to: engine.me, sentAt: now, echo: mine.sentAt, syncDone: peerSyncDone),
                    path: "lan1"), now: now)
            logs += actions.compactMap { action in
                if case .log(let entry) = action { return entry.message }
                return nil
            }
            for step in 1...4 {
                for action in engine.handle(.tick, now: now + .milliseconds(100 * step)) {
                    if case .log(let entry) = action { logs.append(entry.message) }
                }
            }
            now += .milliseconds(500)
        }
        return logs
    }

    @Test("a server whose sync is over does not found while the first server of its view is still in its sync wait")
    func waitsForTheFirstServer() {
        var s2 = ServerEngine(config: Self.config, me: "s2", bootID: 1, configHash: "h")
        _ = s2.startService(now: .zero)
        // s1 started later: its sync wait runs on after s2's has expired.
        let logs = Self.run(&s2, peer: "s1", priority: 0, from: .milliseconds(500), until: .seconds(7), peerSyncDone: false)
        #expect(logs.contains { $0.contains("Sync wait expired") }, "\(logs)")
        #expect(s2.currentMaster(now: .seconds(7)) == nil, "\(logs)")
        #expect(s2.directory == nil)
        // s1's sync is over: s1 founds, s2 follows it.
        _ = Self.run(&s2, peer: "s1", priority: 0, from: .milliseconds(7_500), until: .seconds(8), peerSyncDone: true)
        #expect(s2.currentMaster(now: .seconds(8)) == "s1")
        #expect(s2.directory == nil, "s2 founded nothing of its own")
    }

    /// Simulator seed 23000596: under heavy loss a peer dropped out of the view for a moment and
    /// this server founded alone at once; the peer founded too.
    @Test("no server founds while a server it hears is out of its view; once that one is silent past the timeout, it does")
    func notWhileAHeardServerIsOutOfView() {
        var s1 = ServerEngine(config: Self.config, me: "s1", bootID: 1, configHash: "h")
        _ = s1.startService(now: .zero)
        var now: EngineTime = .milliseconds(500)
        // s2 is heard throughout the sync wait and past it, but never hears s1.
        while now <= .seconds(7) {
            _ = s1.makeHeartbeat(now: now)
            _ = s1.handle(.heartbeat(Self.deaf(from: "s2", priority: 1, sentAt: now), path: "lan1"), now: now)
            for step in 1...4 { _ = s1.handle(.tick, now: now + .milliseconds(100 * step)) }
            now += .milliseconds(500)
        }
        #expect(s1.currentMaster(now: now) == nil)
        #expect(s1.directory == nil)
        // s2 falls silent: past the heartbeat timeout (3 s) it is down and s1 founds.
        while now <= .seconds(12) {
            _ = s1.handle(.tick, now: now)
            now += .milliseconds(100)
        }
        #expect(s1.currentMaster(now: now) == "s1")
        #expect(s1.directory?.epoch.master == "s1")
    }

    @Test("a server in its sync wait ends it when a connected server's is over, and founds if it is the first")
    func endsItsWaitWithAPeers() {
        var s1 = ServerEngine(config: Self.config, me: "s1", bootID: 1, configHash: "h")
        _ = s1.startService(now: .zero)
        let waiting = Self.run(&s1, peer: "s2", priority: 1, from: .milliseconds(500), until: .seconds(2), peerSyncDone: false)
        #expect(!waiting.contains { $0.contains("Sync wait") }, "\(waiting)")
        let logs = Self.run(&s1, peer: "s2", priority: 1, from: .milliseconds(2_500), until: .seconds(4), peerSyncDone: true)
        #expect(logs.contains("Sync wait over: s2 has ended its own; treating s3 as down."), "\(logs)")
        #expect(s1.currentMaster(now: .seconds(4)) == "s1", "\(logs)")
        #expect(s1.directory?.epoch.master == "s1")
    }
}
