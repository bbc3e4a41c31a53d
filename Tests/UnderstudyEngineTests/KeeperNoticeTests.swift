import Testing
import UnderstudyEngine
import UnderstudyModel
import UnderstudySimulator

/// The keeper of a dead daemon tells the peers once it fenced what the daemon held
/// (KeeperNotices.swift): they fail its groups over at once instead of after a timeout.
@Suite("Keeper notices")
struct KeeperNoticeTests {
    static let config = Cfg.cluster(groups: [Cfg.group("g", servers: ["s1", "s2", "s3"])])

    @Test("the daemon holding a group dies: its group runs on the next server well within the heartbeat timeout")
    func failsOverAtOnce() throws {
        let world = SimulatedCluster.make(Self.config)
        world.runUntil(limit: .seconds(10)) { world.where_("g") == ["s1:Online"] }
        let died = world.now
        world.daemonDies("s1", fenceTime: .milliseconds(20))
        let online = try #require(world.runUntil(limit: .seconds(10)) { world.where_("g") == ["s2:Online"] })
        // Fence, notice, a step, the start script (50 ms): far below the 3 s timeout.
        #expect(online - died < .milliseconds(500), "\(world.recentTrace)")
        #expect(world.logCounts["s2 nm 83"] == 1 && world.logCounts["s3 nm 83"] == 1, "\(world.recentTrace)")
        // The daemon comes back: s1 is up again, and the group stays where it is.
        world.boot("s1")
        world.run(for: .seconds(8))
        #expect(world.where_("g") == ["s2:Online"], "\(world.recentTrace)")
        #expect(world.engine("s1")?.directory != nil)
        #expect(world.violations.isEmpty, "\(world.violations)")
    }

    static let pair: ClusterConfig = {
        do {
            return try ConfigLoader.load(
                yaml: """
                    cluster: {name: c, secret-file: /etc/understudy/test.key, timing: {heartbeat-interval: 500ms, heartbeat-timeout: 3s, sync-wait: 5s}}
                    servers: [{name: s1}, {name: s2}]
                    heartbeats: [{name: lan1, type: lanhb, addresses: {s1: 10.0.0.1, s2: 10.0.0.2}}]
                    """, sourcePath: "keeper.yaml")
        } catch {
            fatalError("the test's configuration does not load: \(error)")
        }
    }()

    static func heartbeat(run: UInt64, sentAt: EngineTime, echo: EngineTime) -> Heartbeat {
        Heartbeat(
            sender: "s2", bootID: 12, run: run, sentAt: sentAt, configHash: "h", priority: 1, syncDone: true,
            hears: ["s1": HeardHeartbeat(bootID: 1, sentAt: echo, upSince: .zero)], view: ["s1", "s2"])
    }

    static func logs(_ actions: [EngineAction]) -> [String] {
        actions.compactMap { action in
            if case .log(let entry) = action { return "\(entry.module) \(entry.eventID): \(entry.message)" }
            return nil
        }
    }

    @Test("a notice of another run changes nothing; a late heartbeat of the dead run does not bring it back")
    func onlyForTheRunLastHeard() {
        var s1 = ServerEngine(config: Self.pair, me: "s1", bootID: 1, configHash: "h")
        _ = s1.startService(now: .zero)
        var now: EngineTime = .milliseconds(500)
        var logs: [String] = []
        for _ in 0..<4 {
            let mine = s1.makeHeartbeat(now: now)
            logs += Self.logs(s1.handle(.heartbeat(Self.heartbeat(run: 2, sentAt: now, echo: mine.sentAt), path: "lan1"), now: now))
            now += .milliseconds(500)
        }
        #expect(logs.contains { $0.hasPrefix("nm 1:") }, "\(logs)")
        // Another boot, an earlier run: ignored.
        for stale in [ServerInstance(boot: 11, run: 2), ServerInstance(boot: 12, run: 1)] {
            let logs = Self.logs(s1.handle(.peerDaemonDied(server: "s2", instance: stale), now: now))
            #expect(!logs.contains { $0.hasPrefix("nm 83:") }, "\(logs)")
        }
        #expect(s1.snapshot(now: now).servers.first { $0.name == "s2" }?.status == .online)
        // Its own run: down at once, well before its timeout.
        let died = Self.logs(s1.handle(.peerDaemonDied(server: "s2", instance: ServerInstance(boot: 12, run: 2)), now: now))
        #expect(died.contains { $0.hasPrefix("nm 83:") }, "\(died)")
        #expect(s1.snapshot(now: now).servers.first { $0.name == "s2" }?.status != .online)
        // A heartbeat of that run still on its way: not up again.
        let late = Self.logs(s1.handle(.heartbeat(Self.heartbeat(run: 2, sentAt: now, echo: now), path: "lan1"), now: now))
        #expect(!late.contains { $0.hasPrefix("nm 1:") }, "\(late)")
        #expect(s1.snapshot(now: now).servers.first { $0.name == "s2" }?.status != .online)
    }
}
