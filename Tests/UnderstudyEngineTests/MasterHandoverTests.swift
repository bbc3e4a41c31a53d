import Testing
import UnderstudyEngine
import UnderstudyModel
import UnderstudySimulator

/// A master hand-over while the old master still decides: the decision must not be lost,
/// and no group may start on a second server because of it (issue 13, simulator seed
/// 701469, replayed here step by step so that it does not depend on random timings).
@Suite("Master hand-over")
struct MasterHandoverTests {
    /// s1 wakes from a freeze, joins with s2's directory and takes over as master, while s2
    /// (which does not hear s1's new heartbeats yet) finishes a move and assigns `db` to s3.
    /// s1 hears s3 only from before s3 started `db`. When s2 then hears s1, s1's directory
    /// does not include s2's last decision: s2 keeps its own and offers it, s1 takes it over,
    /// and `db` stays on s3 alone. Either s1 learns the decision from s2's heartbeats as
    /// master (it takes it over at once), or, when those are lost, s2 declines s1's directory
    /// and offers its own.
    @Test(
        "a new master takes over the old master's last decision; the group never runs twice",
        arguments: [false, true])
    func newMasterAdoptsTheOldMastersLastDecision(s1MissesTheDecision: Bool) throws {
        let config = Cfg.cluster(groups: [Cfg.group("db", servers: ["s3", "s2", "s1"])])
        // db's stop on s2 is slow, so s2 decides after s1 has taken over.
        let world = SimulatedCluster(config: config, seed: 1) { server, run, _ in
            (server == "s2" && run.group == "db" && run.operation == .stop ? .milliseconds(1_500) : Timing.script, .success(asyncPID: nil))
        }
        for name in config.serverNames { world.boot(name) }
        try #require(world.runUntil(limit: .seconds(15)) { world.where_("db") == ["s3:Online"] } != nil, "\(world.recentTrace)")

        // s1 freezes; s2 becomes master and moves db to itself.
        let frozenAt = world.now
        world.freeze("s1", for: .seconds(6))
        let s2Leads = world.runUntil(limit: .seconds(6)) {
            let epoch = world.engine("s2")?.directory?.epoch
            return epoch?.master == "s2" && world.engine("s3")?.directory?.epoch == epoch
        }
        try #require(s2Leads != nil, "\(world.recentTrace)")
        #expect(world.command(.moveGroup("db", to: "s2"), at: "s2").code == .success)
        try #require(world.runUntil(limit: .seconds(2)) { world.where_("db") == ["s2:Online"] } != nil, "\(world.recentTrace)")

        // Half a second before s1 wakes, s2 starts moving db back to s3 (its stop takes 1.5 s).
        world.run(until: frozenAt + .milliseconds(5_500))
        #expect(world.command(.moveGroup("db", to: "s3"), at: "s2").code == .success)

        // s2 hears s1 only until s1 hears it again (so s2 never counts s1 as connected, as
        // when s1's later heartbeats are lost); s3 never hears s1; s1 hears s3 only while s3
        // does not hold db.
        var s2HearsS1 = false
        world.heartbeatFilter = { from, to, heartbeat in
            switch (from, to) {
            case ("s1", "s2"): return s2HearsS1 || heartbeat.hears["s2"] == nil || heartbeat.awaitingVouch
            case ("s1", "s3"): return false
            case ("s3", "s1"): return !(heartbeat.groups["db"]?.status.holdsResources ?? false)
            case ("s2", "s1"):
                // In the second case s1 gets s2's directory only once s2 follows s1 as master
                // (its offer).
                return !s1MissesTheDecision || heartbeat.directory?.entries["db"]?.owner != "s3"
                    || world.engine("s2")?.currentMaster(now: world.now) == "s1"
            default: return true
            }
        }
        // s1 joins with s2's directory and takes over.
        let s1Leads = world.runUntil(limit: .seconds(4)) { world.engine("s1")?.directory?.epoch.master == "s1" }
        try #require(s1Leads != nil, "\(world.recentTrace)")
        // s2 finishes the stop and assigns db to s3, which starts it.
        let s3Starts = world.runUntil(limit: .seconds(5)) { world.engine("s3")?.localStatus(of: "db").holdsResources ?? false }
        try #require(s3Starts != nil, "\(world.recentTrace)")
        // Now s2 hears s1 (and s1 still hears s3 only from before s3 started db).
        s2HearsS1 = true
        world.run(for: .seconds(10))
        world.heartbeatFilter = nil
        world.run(for: .seconds(10))

        #expect(world.violations.isEmpty, "\(world.violations.joined(separator: "\n"))\n\(world.recentTrace)")
        #expect(world.where_("db") == ["s3:Online"], "\(world.recentTrace)")
        #expect(world.runs(group: "db", on: "s2", .start, since: s3Starts ?? .zero).isEmpty, "\(world.recentTrace)")
        #expect(world.engine("s1")?.directory?.entries["db"]?.owner == "s3")
        if s1MissesTheDecision {
            #expect(world.trace.contains { $0.contains("s2 [INFO nm 11]") }, "s2 offers its directory\n\(world.recentTrace)")
        }
    }
}
