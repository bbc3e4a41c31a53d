import Testing
import UnderstudyEngine
import UnderstudyModel
import UnderstudySimulator

/// `clprsc -s -f` / `-t -f` (a resource with what it depends on, or with what depends on it)
/// and `clprsc --reset` (the group's activation-failover counter).
@Suite("clprsc -f and the failover counter")
struct ResourceCommandTests {
    /// Group `g` on s1, s2, s3: `g-a` ← `g-b` ← `g-c` (c depends on b, b on a), and `g-d`
    /// depending on nothing.
    static func chainGroup() -> GroupConfig {
        Cfg.group(
            "g", servers: ["s1", "s2", "s3"],
            resources: [
                Cfg.exec("g-a"), Cfg.exec("g-b", depends: ["g-a"]), Cfg.exec("g-c", depends: ["g-b"]), Cfg.exec("g-d"),
            ])
    }

    static func statuses(_ world: SimulatedCluster, on server: ServerName = "s1") -> [String: ActivationStatus] {
        let line = world.engine(server)?.snapshot(now: world.now).groups.first { $0.name == "g" }
        return Dictionary(uniqueKeysWithValues: (line?.resources ?? []).map { ($0.name, $0.status) })
    }

    @Test("-t -f stops the dependants first, in reverse order; -s -f starts the dependencies first, in order; without -f both are refused")
    func chains() {
        let world = SimulatedCluster.make(Cfg.cluster(groups: [Self.chainGroup()]))
        world.run(until: .seconds(8))
        #expect(world.where_("g") == ["s1:Online"])

        // Without -f: refused, naming the dependant and the way out.
        let refusedStop = world.command(.stopResource("g-a"), at: "s2")
        #expect(refusedStop.code == .failed, "\(refusedStop)")
        #expect(refusedStop.message.contains("g-b") && refusedStop.message.contains("clprsc -t g-a -f"), "\(refusedStop)")

        var t = world.now
        let stop = world.command(.stopResourceWithDependents("g-a"), at: "s3")
        #expect(stop.code == .success, "\(stop)")
        #expect(stop.message.contains("g-c, g-b, g-a"), "\(stop)")
        world.run(for: .seconds(3))
        #expect(
            world.runs(group: "g", since: t).map { "\($0.run.operation) \($0.server) \($0.run.resource)" } == [
                "stop s1 g-c", "stop s1 g-b", "stop s1 g-a",
            ])
        #expect(Self.statuses(world) == ["g-a": .offline, "g-b": .offline, "g-c": .offline, "g-d": .online])
        // The statuses reach the other servers.
        #expect(Self.statuses(world, on: "s3") == Self.statuses(world))

        let refusedStart = world.command(.startResource("g-c"), at: "s2")
        #expect(refusedStart.code == .failed, "\(refusedStart)")
        #expect(refusedStart.message.contains("g-b") && refusedStart.message.contains("clprsc -s g-c -f"), "\(refusedStart)")
        #expect(world.runs(group: "g", since: world.now).isEmpty)

        // -s -f of the middle one starts only what it needs.
        t = world.now
        #expect(world.command(.startResourceWithDependencies("g-b"), at: "s2").code == .success)
        world.run(for: .seconds(3))
        #expect(
            world.runs(group: "g", since: t).map { "\($0.run.operation) \($0.server) \($0.run.resource)" } == [
                "start s1 g-a", "start s1 g-b",
            ])
        #expect(Self.statuses(world) == ["g-a": .online, "g-b": .online, "g-c": .offline, "g-d": .online])

        // Dependencies already online are not run again.
        t = world.now
        #expect(world.command(.startResourceWithDependencies("g-c"), at: "s1").code == .success)
        world.run(for: .seconds(3))
        #expect(world.runs(group: "g", since: t).map(\.run.resource) == ["g-c"])
        #expect(Self.statuses(world).values.allSatisfy { $0 == .online })
        #expect(world.engine("s1")?.isStoppedByOperator("g") == false)
        #expect(world.where_("g") == ["s1:Online"])

        // -t -f of a resource nothing depends on stops only it.
        t = world.now
        #expect(world.command(.stopResourceWithDependents("g-c"), at: "s1").code == .success)
        world.run(for: .seconds(2))
        #expect(world.runs(group: "g", since: t).map(\.run.resource) == ["g-c"])
        #expect(world.violations.isEmpty, "\(world.violations)")
    }

    @Test("-s -f: a dependency that fails to start ends the chain; what depends on it is not started")
    func chainStopsAtFailure() {
        let world = SimulatedCluster.make(Cfg.cluster(groups: [Self.chainGroup()]))
        world.run(until: .seconds(8))
        #expect(world.command(.stopResourceWithDependents("g-a"), at: "s1").code == .success)
        world.run(for: .seconds(3))
        #expect(Self.statuses(world)["g-a"] == .offline)

        world.scriptModel = Scripts.model { _, run in run.resource == "g-b" && run.operation == .start }
        let t = world.now
        #expect(world.command(.startResourceWithDependencies("g-c"), at: "s2").code == .success)
        world.run(for: .seconds(3))
        #expect(world.runs(group: "g", since: t).map(\.run.resource) == ["g-a", "g-b"])
        #expect(Self.statuses(world) == ["g-a": .online, "g-b": .onlineFailure, "g-c": .offline, "g-d": .online])
        // The group is idle again: a later command is taken.
        world.scriptModel = Scripts.model()
        #expect(world.command(.startResourceWithDependencies("g-c"), at: "s2").code == .success)
        world.run(for: .seconds(3))
        #expect(Self.statuses(world).values.allSatisfy { $0 == .online }, "\(Self.statuses(world))")
        #expect(world.violations.isEmpty, "\(world.violations)")
    }

    static func failoverCount(_ world: SimulatedCluster, on server: ServerName) -> Int? {
        world.engine(server)?.snapshot(now: world.now).groups.first { $0.name == "g" }?.failoverCount
    }

    /// g-app (failover 1) fails to start on s1: the group fails over to s2 (count 1/1). Then
    /// it fails on s3 too, and the group is moved there: without a reset the count is used up
    /// (Online Failure on s3); after `--reset` it fails over once more (to s1, which works now).
    @Test(
        "--reset sets the group's failover counter to 0 through the master; the next activation failure fails over again",
        arguments: [false, true])
    func resetCounter(reset: Bool) {
        let config = Cfg.cluster(groups: [
            Cfg.group("g", servers: ["s1", "s2", "s3"], resources: [Cfg.resource("g-ip", .fip), Cfg.exec("g-app", failover: 1)])
        ])
        let world = SimulatedCluster.make(config) { server, run in server == "s1" && run.resource == "g-app" && run.operation == .start }
        world.run(until: .seconds(15))
        #expect(world.where_("g") == ["s2:Online"])
        #expect(["s1", "s2", "s3"].map { Self.failoverCount(world, on: $0) } == [1, 1, 1])

        world.scriptModel = Scripts.model { server, run in server == "s3" && run.resource == "g-app" && run.operation == .start }
        if reset {
            let result = world.command(.resetFailoverCount("g-app"), at: "s3")
            #expect(result.code == .success && result.message.contains("from 1 to 0"), "\(result)")
            world.run(for: .seconds(1))
            #expect(["s1", "s2", "s3"].map { Self.failoverCount(world, on: $0) } == [0, 0, 0])
            // Nothing moved.
            #expect(world.where_("g") == ["s2:Online"])
            let again = world.command(.resetFailoverCount("g-ip"), at: "s2")
            #expect(again.code == .success && again.message.contains("already 0"), "\(again)")
        }
        #expect(world.command(.moveGroup("g", to: "s3"), at: "s1").code == .success)
        world.run(for: .seconds(8))
        if reset {
            #expect(world.where_("g") == ["s1:Online"], "\(world.recentTrace)")
            #expect(["s1", "s2", "s3"].map { Self.failoverCount(world, on: $0) } == [1, 1, 1])
        } else {
            #expect(world.where_("g") == ["s3:Online Failure"], "\(world.recentTrace)")
        }
        #expect(world.violations.isEmpty, "\(world.violations)")
    }

    @Test("--reset is refused (code 4) while the group moves, and names an unknown resource (code 2)")
    func resetRefusals() {
        let config = Cfg.cluster(groups: [Cfg.group("g", servers: ["s1", "s2", "s3"], resources: [Cfg.exec("g-app", failover: 1)])])
        let world = SimulatedCluster.make(config)
        world.run(until: .seconds(8))
        #expect(world.command(.moveGroup("g", to: "s2"), at: "s1").code == .success)
        let busy = world.command(.resetFailoverCount("g-app"), at: "s3")
        #expect(busy.code == .inTransition && busy.message.contains("g"), "\(busy)")
        world.run(for: .seconds(3))
        #expect(world.where_("g") == ["s2:Online"])
        #expect(world.command(.resetFailoverCount("g-app"), at: "s3").code == .success)
        let unknown = world.command(.resetFailoverCount("nosuch"), at: "s1")
        #expect(unknown.code == .badUsage && unknown.message.contains("nosuch"), "\(unknown)")
        #expect(world.violations.isEmpty, "\(world.violations)")
    }
}
