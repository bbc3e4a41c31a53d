import Testing
import UnderstudyEngine
import UnderstudyModel

@testable import UnderstudySimulator

/// Forced stop (fencing) and servers with another cluster key, in the simulated cluster: a hung
/// server is powered off before its groups start elsewhere; a failing agent cancels the failover;
/// a two-server split where both sides reach the ping targets ends with exactly one server
/// stopped; a server whose heartbeats fail authentication is never judged down. The invariants
/// (I1: a group never runs on two servers; I3; I4 once the faults are over) are checked after
/// every step.
@Suite struct ForcedStopSimulationTests {
    func formed(fencing: Bool = true, seed: UInt64 = 11, configure: (SimulatedCluster) -> Void = { _ in }) -> SimulatedCluster {
        let (config, budget) = Simulation.prepared(servers: 2, fencing: fencing)
        let world = SimulatedCluster(config: config, seed: seed, heartbeatBudget: budget)
        configure(world)
        for name in config.serverNames { world.boot(name) }
        world.run(until: .seconds(30))
        return world
    }

    /// Where each group is active now.
    func holders(_ world: SimulatedCluster, _ group: GroupName) -> [ServerName] {
        world.placement(of: group).filter { $0.value.holdsResources }.keys.sorted()
    }

    /// Starts of `group`'s resources on `server` ordered after `time`.
    func starts(_ world: SimulatedCluster, _ group: GroupName, on server: ServerName, after time: EngineTime) -> [EngineTime] {
        world.runLog.filter { $0.server == server && $0.run.group == group && $0.run.operation == .start && $0.at > time }.map(\.at)
    }

    @Test("a hung server is powered off before its groups start on the survivor")
    func hungServerStopped() throws {
        let world = formed()
        #expect(holders(world, "db") == ["s2"], "db prefers s2 (its servers are reversed)")
        let frozeAt = world.now
        world.freeze("s2", for: .seconds(60))
        world.run(until: frozeAt + .seconds(20))
        #expect(world.violations.isEmpty, "\(world.violations)")
        let stops = world.forcedStopLog.filter { $0.target == "s2" }
        #expect(stops.count == 1, "one forced stop of s2: \(stops)")
        #expect(stops.first?.server == "s1")
        #expect(world.engine("s2") == nil, "s2 was powered off")
        let stoppedAt = try #require(stops.first?.at)
        let dbStarts = starts(world, "db", on: "s1", after: frozeAt)
        #expect(!dbStarts.isEmpty, "db failed over to s1")
        #expect(dbStarts.allSatisfy { $0 > stoppedAt }, "db started on s1 only after the forced stop of s2")
        #expect(holders(world, "db") == ["s1"])
    }

    @Test("every agent fails: the failover is cancelled, the stop is retried, nothing starts; the server returns and keeps its group")
    func failingAgentCancelsFailover() {
        let world = formed { world in
            world.forcedStopModel = { _, _, random in
                ForcedStopBehaviour(
                    reportAfter: random.duration(.milliseconds(100) ... .milliseconds(300)), succeeded: false, powerOffAfter: nil,
                    bootsAgainAfter: nil)
            }
        }
        let frozeAt = world.now
        world.freeze("s2", for: .seconds(20))
        world.run(until: frozeAt + .seconds(15))
        #expect(world.violations.isEmpty, "\(world.violations)")
        #expect(starts(world, "db", on: "s1", after: frozeAt).isEmpty, "db must not start on s1 while s2 may still run it")
        let attempts = world.forcedStopLog.filter { $0.target == "s2" }.count
        #expect(attempts >= 3, "retried every 2 s: \(attempts)")
        #expect(
            world.logCounts["s1 rc 433"] == 1,
            "the cancelled failover is said once: \(world.logCounts.filter { $0.key.hasPrefix("s1 rc") })")
        #expect((world.logCounts["s1 rc 413"] ?? 0) >= 3, "each failed attempt is said")
        // s2 resumes: it is heard again and the retries end.
        world.run(until: frozeAt + .seconds(40))
        let afterReturn = world.forcedStopLog.filter { $0.target == "s2" && $0.at > frozeAt + .seconds(22) }
        #expect(afterReturn.isEmpty, "no forced stop once s2 is heard again: \(afterReturn)")
        #expect(world.violations.isEmpty, "\(world.violations)")
        #expect(holders(world, "db").count == 1)
    }

    @Test("a dead server whose BMC died with it: nothing moves until the operator confirms it stopped (clpcl --confirm-stopped)")
    func operatorConfirmsStopped() {
        let world = formed { world in
            world.forcedStopModel = { _, _, _ in
                ForcedStopBehaviour(reportAfter: .milliseconds(200), succeeded: false, powerOffAfter: nil, bootsAgainAfter: nil)
            }
        }
        #expect(world.command(.confirmStopped("s2"), at: "s2").code != .success, "a server that is heard is not stopped")
        #expect(world.command(.confirmStopped("s2"), at: "s1").code == .failed, "s2 is up: nothing to confirm")
        let crashedAt = world.now
        world.crash("s2")
        world.run(until: crashedAt + .seconds(12))
        #expect(starts(world, "db", on: "s1", after: crashedAt).isEmpty, "db waits for a forced stop that never succeeds")
        let result = world.command(.confirmStopped("s2"), at: "s1")
        #expect(result.code == .success, "\(result)")
        let confirmedAt = world.now
        world.run(until: confirmedAt + .seconds(5))
        #expect(!starts(world, "db", on: "s1", after: confirmedAt).isEmpty, "db fails over once the operator confirmed")
        #expect(holders(world, "db") == ["s1"])
        #expect(world.violations.isEmpty, "\(world.violations)")
    }

    @Test("a suspended cluster powers nobody off (network maintenance); after the resume the lost server is stopped")
    func suspendedClusterStopsNobody() {
        let world = formed()
        #expect(world.command(.suspendCluster, at: "s1").code == .success)
        world.run(until: world.now + .seconds(1))
        let frozeAt = world.now
        world.freeze("s2", for: .seconds(60))
        world.run(until: frozeAt + .seconds(12))
        #expect(world.forcedStopLog.isEmpty, "no forced stop while suspended: \(world.forcedStopLog)")
        #expect(world.command(.resumeCluster, at: "s1").code == .success)
        world.run(until: world.now + .seconds(8))
        #expect(world.forcedStopLog.map(\.target) == ["s2"])
        #expect(holders(world, "db") == ["s1"])
        #expect(world.violations.isEmpty, "\(world.violations)")
    }

    @Test("a two-server split where both sides still reach the ping targets: exactly one server is stopped (the lower-ranked one)")
    func splitStopsExactlyOne() {
        let world = formed()
        let splitAt = world.now
        world.partition(["s1"], ["s2"])
        world.run(until: splitAt + .seconds(25))
        #expect(world.violations.isEmpty, "\(world.violations)")
        let stops = world.forcedStopLog.filter { $0.at > splitAt }
        #expect(stops.map(\.target) == ["s2"], "s1 stops s2 first; s2 waits its delay and is off before it ends: \(stops)")
        #expect(world.engine("s1") != nil && world.engine("s2") == nil)
        for group in ["web", "db"] { #expect(holders(world, group) == ["s1"], "\(group) runs on s1 alone") }
    }

    @Test("without fencing the same split leaves both servers running their own groups (what ping resolution cannot settle)")
    func splitWithoutFencing() {
        let world = formed(fencing: false)
        let splitAt = world.now
        world.partition(["s1"], ["s2"])
        world.run(until: splitAt + .seconds(25))
        #expect(world.forcedStopLog.isEmpty)
        #expect(world.engine("s1") != nil && world.engine("s2") != nil)
    }

    @Test("a server that boots with another cluster key is never judged down: no group starts twice, and it says so once")
    func keyMismatchFromBoot() {
        let world = formed(fencing: false, seed: 5) { $0.keyMismatch = ["s2"] }
        world.run(until: .seconds(40))
        #expect(world.violations.isEmpty, "\(world.violations)")
        for group in ["web", "db", "batch"] {
            #expect(holders(world, group).count <= 1, "\(group) runs at most once: \(holders(world, group))")
            #expect(holders(world, group).isEmpty, "\(group) may run on either server, which holds back while the other is present")
        }
        #expect(holders(world, "ac-s1") == ["s1"], "a group only s1 may run still starts")
        #expect(
            world.logCounts["s1 nm 12"] == 1 && world.logCounts["s2 nm 12"] == 1, "\(world.logCounts.filter { $0.key.contains("nm 12") })")
        // The key is fixed and s2 restarts: the groups are placed, once each.
        world.keyMismatch = []
        world.command(.stopService(factor: .serverShutdown, lastAction: .none, then: .exitProcess), at: "s2")
        world.run(until: .seconds(45))
        world.boot("s2")
        world.run(until: .seconds(80))
        #expect(world.violations.isEmpty, "\(world.violations)")
        for group in ["web", "db", "batch"] { #expect(holders(world, group).count == 1, "\(group): \(holders(world, group))") }
    }

    @Test("a holder that crashes and comes back with another key: its groups fail over once and it starts nothing")
    func keyMismatchAfterCrash() {
        let world = formed(fencing: false, seed: 6)
        #expect(holders(world, "db") == ["s2"])
        world.crash("s2")
        world.keyMismatch = ["s2"]
        world.run(until: .seconds(40))
        #expect(holders(world, "db") == ["s1"], "db failed over to s1")
        world.boot("s2")
        world.run(until: .seconds(70))
        #expect(world.violations.isEmpty, "\(world.violations)")
        #expect(holders(world, "db") == ["s1"], "db stays on s1")
        #expect(
            world.runLog.filter { $0.server == "s2" && $0.at > .seconds(40) && $0.run.operation == .start }.map(\.run.group).allSatisfy {
                $0 == "ac-s2"
            })
    }

    @Test("a server running with another key takes nothing over when a one-way cut then hides its peer (seed 23006462)")
    func keyMismatchThenOneWayCut() {
        let world = formed(fencing: false, seed: 6)
        #expect(holders(world, "db") == ["s2"])
        // s1 crashes and its key file is replaced. Its next run hears nothing from s2 (a cut
        // one way) and is stopped cleanly: it leaves nobody behind, and the run after that
        // starts groups automatically again.
        world.partition(["s2"], ["s1"], oneWay: true)
        world.crash("s1")
        world.keyFileReplaced = ["s1"]
        world.run(until: world.now + .seconds(1))
        world.boot("s1")
        world.run(until: world.now + .milliseconds(500))
        world.command(.stopService(factor: .serverShutdown, lastAction: .none, then: .exitProcess), at: "s1")
        world.heal()
        world.run(until: world.now + .seconds(1))
        world.boot("s1")
        world.run(until: world.now + .seconds(3))
        #expect(world.logCounts["s1 nm 12"] == 1, "s1 sees s2 present with another key")
        // s2's datagrams stop reaching s1; s2 still gets s1's (and cannot read them).
        let cutAt = world.now
        world.partition(["s2"], ["s1"], oneWay: true)
        world.run(until: cutAt + .seconds(30))
        #expect(world.violations.isEmpty, "\(world.violations)")
        #expect(holders(world, "db") == ["s2"], "s1 cannot tell a silent s2 from one hidden by the cut: db stays where it runs")
        #expect(world.logCounts["s1 nm 12"] == 2, "the hold is said again, once, when s2 falls silent")
        #expect(starts(world, "db", on: "s1", after: cutAt).isEmpty)
        // The key is fixed and s1 restarts: it hears s2 again; db has run once throughout.
        world.heal()
        world.keyFileReplaced = []
        world.command(.stopService(factor: .serverShutdown, lastAction: .none, then: .exitProcess), at: "s1")
        world.run(until: world.now + .seconds(2))
        world.boot("s1")
        world.run(until: world.now + .seconds(30))
        #expect(world.violations.isEmpty, "\(world.violations)")
        #expect(holders(world, "db") == ["s2"])
    }

    @Test("a server that boots behind a one-way cut hears its peer but cannot fetch its state: it takes nothing over (seed 23002612)")
    func heardWithoutStateTakesNothing() {
        let world = formed(fencing: false, seed: 6)
        #expect(holders(world, "db") == ["s2"])
        // s1's traffic stops reaching s2: s1 finds itself the cut-off side and fences; s2
        // takes its groups over. s1 is then restarted cleanly, still behind the cut.
        world.partition(["s1"], ["s2"], oneWay: true)
        world.run(until: world.now + .seconds(15))
        world.command(.stopService(factor: .serverShutdown, lastAction: .none, then: .exitProcess), at: "s1")
        world.run(until: world.now + .seconds(1))
        let bootAt = world.now
        world.boot("s1")
        // s2's heartbeats reach s1, but their state has to be fetched over the control
        // channel, which the cut breaks: s1 knows s2 is there, not what it runs.
        world.run(until: bootAt + .seconds(20))
        #expect(world.violations.isEmpty, "\(world.violations)")
        #expect(world.logCounts["s1 nm 13"] == 1, "\(world.logCounts.filter { $0.key.hasPrefix("s1 nm") })")
        for group in ["web", "db", "batch"] {
            #expect(holders(world, group) == ["s2"], "\(group) stays on s2")
            #expect(starts(world, group, on: "s1", after: bootAt).isEmpty)
        }
        world.heal()
        world.run(until: world.now + .seconds(20))
        #expect(world.violations.isEmpty, "\(world.violations)")
        for group in ["db", "batch"] { #expect(holders(world, group).count == 1, "\(group): \(holders(world, group))") }
    }

    @Test("a holder that reboots with another key before its loss is confirmed: its groups are held back, then run once the key is fixed")
    func keyMismatchQuickReboot() {
        let world = formed(fencing: false, seed: 6)
        #expect(holders(world, "db") == ["s2"])
        world.crash("s2")
        world.keyMismatch = ["s2"]
        world.run(until: .seconds(31))
        world.boot("s2")
        world.run(until: .seconds(60))
        #expect(world.violations.isEmpty, "\(world.violations)")
        // s1 cannot tell a rebooted s2 from one that still runs db under another key.
        #expect(holders(world, "db").isEmpty, "db is held back while s2 is present with another key")
        #expect(world.logCounts["s1 nm 12"] == 1)
        world.keyMismatch = []
        world.command(.stopService(factor: .serverShutdown, lastAction: .none, then: .exitProcess), at: "s2")
        world.run(until: .seconds(65))
        world.boot("s2")
        world.run(until: .seconds(100))
        #expect(world.violations.isEmpty, "\(world.violations)")
        #expect(holders(world, "db").count == 1)
    }

    @Test(
        "fencing regression seeds",
        arguments: [
            // A server restarted with another key, then a short partition: its peer confirmed it down.
            9_900_463,
            // A power-cycled server came back into a split where both sides reached the ping targets
            // and founded its own cluster (startup fencing).
            9_901_168,
            // A server that had heard every server founded while the first was still in its sync
            // wait; the first founded a moment later on the other's older report, and each started
            // every group when the other dropped out of its view under loss.
            24_109_313,
        ] as [UInt64])
    func regressionSeeds(seed: UInt64) {
        let result = Simulation.run(seed: seed, servers: 2, fencing: true)
        #expect(result.passed, "seed \(seed): \(result.violations)\n\(result.trace.suffix(40).joined(separator: "\n"))")
    }

    @Test("random two- and three-server schedules with fencing (agents that succeed, fail and are slow)", arguments: 0..<8)
    func randomSchedules(batch: Int) {
        for offset in 0..<8 {
            let seed = UInt64(8_100_000 + batch * 8 + offset)
            for servers in [2, 3] {
                let result = Simulation.run(seed: seed, servers: servers, fencing: true)
                #expect(
                    result.passed,
                    "seed \(seed), \(servers) servers: \(result.violations)\n\(result.trace.suffix(40).joined(separator: "\n"))")
            }
        }
    }
}
