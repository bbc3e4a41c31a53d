import Testing
import UnderstudyEngine
import UnderstudyModel

@testable import UnderstudySimulator

/// A cut of the LAN paths alone, with the disk heartbeat still flowing (`Fault.lanOnlyCut`),
/// must not fail anything over: every server is still heard. The same cut of every path
/// (a partition) does, which shows the check can fail.
@Suite struct LanOnlyCutTests {
    /// Two servers formed with their groups placed, then `cut` for 30 s (ten heartbeat
    /// timeouts), s1 losing the ping targets (its uplink went with its LAN). Returns the
    /// resource runs during the cut and the world.
    func runCut(_ cut: (SimulatedCluster) -> Void) -> (runsDuringCut: Int, world: SimulatedCluster) {
        let (config, budget) = Simulation.prepared(servers: 2)
        #expect(config.heartbeats.contains { $0.typeName == "diskhb" }, "the simulated cluster has a disk heartbeat")
        let world = SimulatedCluster(config: config, seed: 42, heartbeatBudget: budget)
        for name in config.serverNames { world.boot(name) }
        world.run(until: .seconds(30))
        let before = world.runLog.count
        cut(world)
        world.unreachablePingTargets = ["s1"]
        world.run(until: .seconds(60))
        return (world.runLog.count - before, world)
    }

    @Test("LAN cut, disk heartbeat flowing: both servers stay up, nothing fails over or is fenced, invariants hold")
    func lanOnly() {
        let (runs, world) = runCut { $0.cutLAN(["s1"], ["s2"]) }
        #expect(world.violations.isEmpty, "\(world.violations)")
        #expect(runs == 0, "resource runs while only the LAN was cut: \(world.runLog.suffix(runs).map { "\($0.server) \($0.run.operation) \($0.run.resource)" })")
        for name in ["s1", "s2"] {
            let engine = world.engine(name)
            let snapshot = engine?.snapshot(now: world.now)
            #expect(snapshot?.servers.allSatisfy { $0.status == .online } == true, "\(name): \(snapshot?.servers.map(\.status) ?? [])")
            #expect(snapshot?.servers.first { $0.name != name }?.heartbeats.first { $0.name == "lanhb1" }?.status == .error)
            #expect(snapshot?.servers.first { $0.name != name }?.heartbeats.first { $0.name == "diskhb1" }?.status == .normal)
            #expect(engine?.isolated == false, "\(name) is not cut off")
        }
    }

    @Test("the same cut of every path (the disk too): groups move or are fenced")
    func everyPath() {
        let (runs, world) = runCut { $0.partition(["s1"], ["s2"]) }
        #expect(world.violations.isEmpty, "\(world.violations)")
        #expect(runs > 0, "a partition with s1 cut off from the ping targets moves or fences its groups")
    }
}
