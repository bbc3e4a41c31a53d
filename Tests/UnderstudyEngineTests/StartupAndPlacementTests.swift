import Testing
import UnderstudyEngine
import UnderstudyModel
import UnderstudySimulator

/// Scenarios 1 and 2: startup synchronization and placement by policy.
@Suite("Startup and placement")
struct StartupAndPlacementTests {
    // MARK: 1. Startup

    // The startup table is data: Scenarios/startup-*.yaml.

    @Test("sync wait 0 starts at once; a sync wait holds the same lone server until it expires")
    func syncWaitZeroVersusWait() {
        func firstStart(syncWait: Duration) -> EngineTime? {
            let config = Cfg.cluster(groups: [Cfg.group("g", servers: ["s1", "s2"])], syncWait: syncWait, majority: false)
            let world = SimulatedCluster.make(config, boot: ["s1"])
            world.run(until: .seconds(10))
            return world.runs(group: "g", .start).first?.at
        }
        let immediate = firstStart(syncWait: .zero)
        let waited = firstStart(syncWait: Timing.syncWait)
        #expect(immediate != nil && immediate! < .seconds(2))
        #expect(waited != nil && waited! >= Timing.syncWait)
    }

    @Test("startup manual: the group stays offline until an operator starts it")
    func manualStartup() {
        let config = Cfg.cluster(groups: [
            Cfg.group("auto", servers: ["s1", "s2", "s3"]),
            Cfg.group("manual", servers: ["s2", "s1", "s3"], startup: .manual),
        ])
        let world = SimulatedCluster.make(config)
        world.run(until: .seconds(12))
        #expect(world.where_("auto") == ["s1:Online"])
        #expect(world.where_("manual").isEmpty)
        #expect(world.runs(group: "manual").isEmpty)

        let result = world.command(.startGroup("manual", on: nil), at: "s3")
        #expect(result.code == .success, "\(result.message)")
        world.run(for: .seconds(2))
        // Without a server named, the group starts where the command was given (s3 is in
        // its policy), as clpgrp -s does.
        #expect(world.where_("manual") == ["s3:Online"])
        expectEnv(world.runs(group: "manual", .start), ["CLP_EVENT": "START", "CLP_SERVER": "OTHER", "CLP_PRIORITY": "3"])
        #expect(world.violations.isEmpty)
    }

    @Test("finished runs handed to the Engine in batches: every group starts once and ends where it does when they come one by one")
    func batchedCompletions() {
        let groups = (1...60).map { index in
            Cfg.group(
                "g\(index)", servers: index % 2 == 0 ? ["s1", "s2", "s3"] : ["s2", "s3", "s1"],
                resources: [Cfg.resource("g\(index)-ip", .fip), Cfg.exec("g\(index)-app")])
        }
        func outcome(batched: Bool) -> (placements: [String], starts: Int) {
            let world = SimulatedCluster.make(Cfg.cluster(groups: groups))
            world.batchesResourceCompletions = batched
            world.run(until: .seconds(12))
            #expect(world.violations.isEmpty, "\(world.violations)")
            #expect((world.completionBatchesDelivered > 0) == batched, "batches delivered: \(world.completionBatchesDelivered)")
            return (groups.map { world.where_($0.name).joined(separator: ",") }, world.runs(.start).count)
        }
        let oneByOne = outcome(batched: false)
        let batched = outcome(batched: true)
        #expect(batched.placements.allSatisfy { $0.hasSuffix(":Online") && !$0.contains(",") }, "\(batched.placements)")
        #expect(batched.placements == oneByOne.placements)
        #expect(batched.starts == oneByOne.starts && batched.starts == 120, "each resource started once: \(batched.starts)")
    }

    // MARK: 2. Placement by policy, dependency order

    // The dependency-order table is data: Scenarios/order-*.yaml. What data cannot say: one
    // script at a time, each run beginning after the previous one finished.
    @Test("resources start one at a time")
    func oneScriptAtATime() {
        let resources = [
            Cfg.resource("app", .exec), Cfg.resource("data", .disk), Cfg.resource("vg", .volmgr), Cfg.resource("ip", .fip),
        ]
        let world = SimulatedCluster.make(Cfg.cluster(groups: [Cfg.group("g", servers: ["s1", "s2", "s3"], resources: resources)]))
        world.run(until: .seconds(6))
        let starts = world.runs(group: "g", .start)
        #expect(starts.count == 4)
        #expect(zip(starts, starts.dropFirst()).allSatisfy { $1.at - $0.at >= Timing.script })
        #expect(starts.allSatisfy { $0.run.context.factor == nil && $0.run.env["CLP_FACTOR"] == nil })
    }
}
