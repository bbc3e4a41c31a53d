import Testing
import UnderstudyEngine
import UnderstudyModel

@testable import UnderstudySimulator

/// The I1 checker judges what the Engines' actions did (runs ordered and finished, fences),
/// not what an Engine says it holds: an Engine whose bookkeeping disagrees with its actions
/// cannot hide its own violation. These tests feed the checker action streams such an Engine
/// would emit and show it objects, while every Engine's own account looks clean.
@Suite("I1 checker")
struct InvariantCheckerTests {
    /// A three-server cluster of the simulator's configuration, run until `web` is Online on
    /// one server (and nowhere else).
    static func settledWorld() -> (SimulatedCluster, owner: ServerName, other: ServerName) {
        let world = SimulatedCluster(config: Simulation.config(servers: 3), seed: 1)
        for server in ["s1", "s2", "s3"] { world.boot(server) }
        var owner: ServerName?
        var time: EngineTime = .zero
        while owner == nil, time < .seconds(60) {
            time += .milliseconds(500)
            world.run(until: time)
            let online = world.serverNames.filter { world.engine($0)?.localStatus(of: "web") == .online }
            if online.count == 1 { owner = online.first }
        }
        let found = owner ?? "none"
        return (world, found, world.serverNames.first { $0 != found } ?? "s1")
    }

    static func run(_ id: UInt64, _ operation: ResourceOperation, _ resource: ResourceName) -> ResourceRun {
        ResourceRun(
            id: id, group: "web", resource: resource, operation: operation,
            context: ScriptContext(event: .start, isHomeServer: false, priority: 1, groupName: "web", resourceName: resource))
    }

    @Test("a start on a second server is a violation although that server's Engine says it holds nothing")
    func startElsewhere() {
        let (world, owner, other) = Self.settledWorld()
        #expect(owner != "none", "web never came online")
        #expect(world.violations.isEmpty, "\(world.violations)")
        #expect(world.activeServers(of: "web") == [owner])
        // An Engine that orders a start and forgets it did (its status of web stays Offline).
        world.runOrdered(Self.run(9_000_001, .start, "web-ip"), on: other)
        #expect(world.engine(other)?.localStatus(of: "web") == .offline)
        world.checkInvariants()
        #expect(world.violations.contains { $0.hasPrefix("I1: group web is active on") }, "\(world.violations)")
    }

    @Test("a stop that failed leaves the resource active; only a finished stop or a fence takes it away")
    func stopThatFailedStillCounts() {
        let (world, owner, other) = Self.settledWorld()
        #expect(owner != "none", "web never came online")
        // The owner stops web-ip, but the stop fails: web-app and web-ip may both still run.
        world.runOrdered(Self.run(9_000_002, .stop, "web-ip"), on: owner)
        world.runFinished(9_000_002, outcome: .failure(reason: "exit code 1"), on: owner)
        world.runOrdered(Self.run(9_000_003, .start, "web-ip"), on: other)
        world.checkInvariants()
        // Active on both running servers, and both hold a valid lease.
        #expect(
            world.violations.contains { $0.hasPrefix("I1: group web is active on \([owner, other].sorted().joined(separator: " and "))") })
        #expect(world.violations.contains { $0.hasPrefix("I1: group web is active with a valid lease") }, "\(world.violations)")

        // A fence on the old owner clears it: the same start elsewhere is then no violation.
        let (clean, cleanOwner, cleanOther) = Self.settledWorld()
        clean.fenced("web", on: cleanOwner)
        clean.runOrdered(Self.run(9_000_004, .start, "web-ip"), on: cleanOther)
        clean.checkInvariants()
        #expect(clean.violations.isEmpty, "\(clean.violations)")
    }

    @Test("the end of a stop that a fence interrupted does not take away a later start")
    func stopEndAfterFence() {
        let (world, owner, _) = Self.settledWorld()
        #expect(owner != "none", "web never came online")
        world.runOrdered(Self.run(9_000_005, .stop, "web-app"), on: owner)
        world.fenced("web", on: owner)
        world.runOrdered(Self.run(9_000_006, .start, "web-app"), on: owner)
        // The Engine hears of the interrupted stop only now.
        world.runFinished(9_000_005, outcome: .success(asyncPID: nil), on: owner)
        #expect(world.activeServers(of: "web") == [owner])
    }
}
