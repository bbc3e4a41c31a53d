import Testing
import UnderstudyEngine
import UnderstudyModel

/// The last check before a start (StartGuard.swift), on one Engine fed with heartbeats
/// written by the test: a server told to start a group waits while another server says it
/// holds the group, or while the server a replaced directory named as owner has not let go.
@Suite("Start guard")
struct StartGuardTests {
    /// One Engine (s2) and two peers (s1, the master, and s3) whose heartbeats the test
    /// writes: each echoes s2's newest heartbeat, so s2 counts both as connected.
    struct Bench {
        var engine: ServerEngine
        var now: Duration = .zero
        var firstSent: Duration?
        var lastSent: Duration = .zero
        var actions: [EngineAction] = []

        init() {
            let config = Cfg.cluster(groups: [Cfg.group("g", servers: ["s3", "s2", "s1"])], syncWait: .seconds(1))
            engine = ServerEngine(config: config, me: "s2", bootID: 2, configHash: "h")
            actions += engine.startService(now: now)
        }

        var instance: ServerInstance { engine.instance }

        /// The master's directory: version `version`, `g` owned by `owner`.
        func directory(version: UInt64, owner: ServerName?, ownerInstance: ServerInstance? = nil, term: UInt64 = 1) -> Directory {
            var entry = DirectoryEntry(wanted: true, owner: owner, generation: version)
            entry.ownerInstance = ownerInstance
            return Directory(epoch: Epoch(term: term, master: "s1"), version: version, startupDone: true, entries: ["g": entry])
        }

        func heartbeat(
            from peer: ServerName, directory: Directory?, epoch: Epoch?, applied: UInt64, g: ActivationStatus
        ) -> Heartbeat {
            Heartbeat(
                sender: peer, bootID: peer == "s1" ? 1 : 3, run: 1, sentAt: now, configHash: "h",
                priority: peer == "s1" ? 0 : 2, syncDone: true,
                hears: ["s2": HeardHeartbeat(bootID: 2, sentAt: lastSent, upSince: firstSent)], view: ["s1", "s2", "s3"],
                epoch: epoch, appliedVersion: applied, groups: ["g": GroupReport(status: g, generation: applied)],
                directory: directory)
        }

        /// 100 ms: s2 ticks and sends, then hears s3 and s1 (with `directory`).
        mutating func step(master directory: Directory, s3Epoch: Epoch?, s3Applied: UInt64, s3Holds: ActivationStatus) {
            now += .milliseconds(100)
            actions += engine.handle(.tick, now: now)
            lastSent = engine.makeHeartbeat(now: now).sentAt
            if firstSent == nil { firstSent = lastSent }
            let fromS3 = heartbeat(from: "s3", directory: nil, epoch: s3Epoch, applied: s3Applied, g: s3Holds)
            actions += engine.handle(.heartbeat(fromS3, path: "lanhb1"), now: now)
            let fromMaster = heartbeat(from: "s1", directory: directory, epoch: directory.epoch, applied: directory.version, g: .offline)
            actions += engine.handle(.heartbeat(fromMaster, path: "lanhb1"), now: now)
        }

        var startsOfG: Int {
            actions.filter {
                if case .runResource(let run) = $0 { return run.group == "g" && run.operation == .start } else { return false }
            }.count
        }

        func logged(_ module: String, _ id: Int) -> Bool {
            actions.contains { if case .log(let entry) = $0 { return entry.module == module && entry.eventID == id } else { return false } }
        }
    }

    @Test("told to start a group that a peer reports active, a server waits until the peer has stopped it")
    func waitsWhileAPeerHoldsTheGroup() {
        var bench = Bench()
        for _ in 0..<30 {
            let directory = bench.directory(version: 5, owner: "s2", ownerInstance: bench.instance)
            bench.step(master: directory, s3Epoch: directory.epoch, s3Applied: 5, s3Holds: .online)
        }
        #expect(bench.engine.directory?.entries["g"]?.owner == "s2", "s2 follows the master's directory")
        #expect(bench.startsOfG == 0)
        #expect(bench.logged("rc", 18))
        // s3 reports the group stopped: s2 starts it under the same assignment.
        let directory = bench.directory(version: 5, owner: "s2", ownerInstance: bench.instance)
        bench.step(master: directory, s3Epoch: directory.epoch, s3Applied: 5, s3Holds: .offline)
        #expect(bench.startsOfG == 1)
    }

    @Test("a directory that takes a group from another server: no start before that server follows it and let go")
    func waitsForTheReplacedOwner() {
        var bench = Bench()
        let before = bench.directory(version: 4, owner: "s3", ownerInstance: ServerInstance(boot: 3, run: 1))
        for _ in 0..<20 { bench.step(master: before, s3Epoch: before.epoch, s3Applied: 4, s3Holds: .online) }
        #expect(bench.engine.directory?.version == 4)
        // The next directory gives g to s2. s3's heartbeats say it no longer holds g, but s3
        // still follows the earlier version: what it does next is not known.
        let after = bench.directory(version: 6, owner: "s2", ownerInstance: bench.instance)
        for _ in 0..<10 { bench.step(master: after, s3Epoch: after.epoch, s3Applied: 4, s3Holds: .offline) }
        #expect(bench.engine.directory?.version == 6)
        #expect(bench.startsOfG == 0)
        #expect(bench.logged("rc", 18))
        // s3 has applied the change and does not hold g: the start goes ahead.
        bench.step(master: after, s3Epoch: after.epoch, s3Applied: 6, s3Holds: .offline)
        #expect(bench.startsOfG == 1)
    }

    @Test("a server that replaced its directory starts at once when the former owner follows none (it fenced)")
    func formerOwnerFollowingNoMasterHoldsNothing() {
        var bench = Bench()
        let before = bench.directory(version: 4, owner: "s3", ownerInstance: ServerInstance(boot: 3, run: 1))
        for _ in 0..<20 { bench.step(master: before, s3Epoch: before.epoch, s3Applied: 4, s3Holds: .online) }
        let after = bench.directory(version: 6, owner: "s2", ownerInstance: bench.instance)
        bench.step(master: after, s3Epoch: nil, s3Applied: 0, s3Holds: .offline)
        #expect(bench.startsOfG == 1)
    }
}
