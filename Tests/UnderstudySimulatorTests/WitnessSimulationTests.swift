import Testing
import UnderstudyEngine
import UnderstudyModel

@testable import UnderstudySimulator

/// httpnp against the simulated witness (the real `WitnessArbiter`): partitions where both
/// sides reach the witness, the witness down, the witness restarted during a partition, and
/// random schedules with witness restarts and outages. The invariants (I1: a group never runs
/// on two servers; I3; I4 once the faults are over) are checked after every step.
@Suite struct WitnessSimulationTests {
    func formed(seed: UInt64 = 7) -> SimulatedCluster {
        let (config, budget) = Simulation.prepared(servers: 2, witness: true)
        let world = SimulatedCluster(config: config, seed: seed, heartbeatBudget: budget)
        for name in config.serverNames { world.boot(name) }
        world.run(until: .seconds(30))
        return world
    }

    func isolated(_ world: SimulatedCluster) -> [String] {
        ["s1", "s2"].filter { world.engine($0)?.isolated == true }
    }

    @Test("a partition where both sides reach the witness: exactly one side is cut off, nothing runs twice")
    func bothReach() {
        let world = formed()
        #expect(world.witness != nil)
        world.partition(["s1"], ["s2"])
        world.run(until: .seconds(60))
        #expect(world.violations.isEmpty, "\(world.violations)")
        #expect(isolated(world).count == 1, "one side lost: \(isolated(world))")
        world.heal()
        world.run(until: .seconds(80))
        #expect(isolated(world).isEmpty)
        #expect(world.violations.isEmpty, "\(world.violations)")
    }

    @Test("the witness down during a partition: both sides are cut off")
    func witnessDown() {
        let world = formed()
        world.witnessDown = true
        world.partition(["s1"], ["s2"])
        world.run(until: .seconds(60))
        #expect(world.violations.isEmpty, "\(world.violations)")
        #expect(isolated(world) == ["s1", "s2"])
    }

    @Test("the witness restarted during a partition: never two winners; one side wins again")
    func restartDuringPartition() {
        let world = formed()
        world.partition(["s1"], ["s2"])
        world.run(until: .seconds(45))
        #expect(isolated(world).count == 1)
        world.restartWitness()
        world.run(until: .seconds(47))
        #expect(isolated(world).count == 2, "the winner's next question gets not yet: it fences too")
        world.run(until: .seconds(75))
        #expect(isolated(world).count == 1, "after the quiet period one side is granted again")
        #expect(world.violations.isEmpty, "\(world.violations)")
    }

    @Test(
        "witness regression seeds",
        arguments: [
            // A server restarted during a partition founded with the one beside it and started
            // every group before its first probe came back denied; the server alone on the other
            // side had the witness's grant and ran them too.
            (24_415_432, 3)
        ] as [(UInt64, Int)])
    func regressionSeeds(seed: UInt64, servers: Int) {
        let result = Simulation.run(seed: seed, servers: servers, witness: true)
        #expect(result.passed, "seed \(seed): \(result.violations)\n\(result.trace.suffix(40).joined(separator: "\n"))")
    }

    @Test("random two- and three-server schedules with httpnp, witness restarts and outages", arguments: 0..<10)
    func randomSchedules(batch: Int) {
        for offset in 0..<10 {
            let seed = UInt64(7_000_000 + batch * 10 + offset)
            for servers in [2, 3] {
                let result = Simulation.run(seed: seed, servers: servers, witness: true)
                #expect(
                    result.passed,
                    "seed \(seed), \(servers) servers: \(result.violations)\n\(result.trace.suffix(40).joined(separator: "\n"))")
                #expect(result.statistics.faults.values.reduce(0, +) > 0)
            }
        }
    }
}
