import Testing
import UnderstudyEngine
import UnderstudyModel
import UnderstudySimulator

/// Servers that stopped cleanly while another kept the cluster running do not found a
/// cluster of their own when they come back without hearing it (simulator seed 30006579).
@Suite("Servers left running")
struct SurvivorTests {
    static let config = Cfg.cluster(groups: [Cfg.group("g", servers: ["s2", "s1", "s3"])], syncWait: .seconds(2))

    /// s1 and s3 stop cleanly; s2 keeps `g` alone (servers that left do not count against
    /// its majority). A partition then hides s2, and s1 and s3 start again.
    static func partitionedReturn() -> SimulatedCluster {
        let world = SimulatedCluster.make(config)
        world.runUntil(limit: .seconds(10)) { world.where_("g") == ["s2:Online"] }
        for server in ["s1", "s3"] {
            world.command(.stopService(factor: .serverShutdown, lastAction: .none, then: .exitProcess), at: server)
        }
        world.run(for: .seconds(5))
        world.partition(["s2"], ["s1", "s3"])
        world.boot("s1")
        world.boot("s3")
        world.run(for: .seconds(10))
        return world
    }

    @Test("two of three come back behind a partition: they found nothing while s2 still runs the group")
    func noFoundingWithoutTheServerLeftRunning() {
        let world = Self.partitionedReturn()
        #expect(world.where_("g") == ["s2:Online"], "\(world.recentTrace)")
        #expect(world.engine("s1")?.directory == nil && world.engine("s3")?.directory == nil)
        #expect(world.logCounts["s1 nm 8"] == 1 && world.logCounts["s3 nm 8"] == 1)
        #expect(world.violations.isEmpty, "\(world.violations)")

        // The partition heals: they join s2's cluster; the group never moved.
        world.heal()
        world.run(for: .seconds(6))
        #expect(world.engine("s1")?.directory != nil && world.engine("s3")?.directory != nil)
        #expect(world.where_("g") == ["s2:Online"])
        #expect(world.runs(group: "g", .start).count == 1, "\(world.recentTrace)")
        let masters = Set(Cfg.names(3).compactMap { world.engine($0)?.currentMaster(now: world.now) })
        #expect(masters == ["s1"])
        #expect(world.violations.isEmpty, "\(world.violations)")
    }

    @Test("a server coming back to the one left running joins it; the group keeps running, nothing is fenced")
    func comingBackDoesNotUnseatTheSurvivor() {
        let world = SimulatedCluster.make(Self.config)
        world.runUntil(limit: .seconds(10)) { world.where_("g") == ["s2:Online"] }
        for server in ["s1", "s3"] {
            world.command(.stopService(factor: .serverShutdown, lastAction: .none, then: .exitProcess), at: server)
        }
        world.run(for: .seconds(5))
        let back = world.now
        world.boot("s1")
        world.run(for: .seconds(6))
        world.boot("s3")
        world.run(for: .seconds(6))
        #expect(world.where_("g") == ["s2:Online"], "\(world.recentTrace)")
        #expect(world.fenceTimes("s2", "g").isEmpty, "\(world.recentTrace)")
        #expect(world.runs(group: "g", since: back).isEmpty, "\(world.recentTrace)")
        #expect(world.engine("s1")?.directory != nil && world.engine("s3")?.directory != nil)
        #expect(world.violations.isEmpty, "\(world.violations)")
    }

    @Test("s2 is down for good: after clpcl --forget s2 on both, they found the cluster and start the group")
    func forgetLetsThemFound() {
        let world = Self.partitionedReturn()
        world.crash("s2")
        world.run(for: .seconds(5))
        #expect(world.where_("g").isEmpty)
        for server in ["s1", "s3"] {
            #expect(world.command(.forgetLeftBehind("s2"), at: server).code == .success)
        }
        world.run(for: .seconds(8))
        #expect(world.where_("g") == ["s1:Online"], "\(world.recentTrace)")
        #expect(world.logCounts["s1 nm 9"] == 1)
        #expect(world.violations.isEmpty, "\(world.violations)")
    }

    /// Seed 25003013: s3 started while a cluster stop was under way and got no stop order; s1
    /// and s2 stopped for it and recorded nobody left running. s3 alone counted them out of its
    /// majority and ran the groups; s1 and s2 came back behind a partition, two of three, and
    /// ran them too.
    @Test("a server that runs on through a cluster stop does not count the stopped servers out of its majority")
    func serverRunningOnThroughAClusterStop() {
        let world = SimulatedCluster.make(Self.config)
        world.runUntil(limit: .seconds(10)) { world.where_("g") == ["s2:Online"] }
        world.command(.stopService(factor: .serverShutdown, lastAction: .none, then: .exitProcess), at: "s3")
        world.run(for: .seconds(1))
        world.boot("s3")
        world.runUntil(limit: .seconds(5)) { world.engine("s3")?.directory != nil }
        // The stop order reaches s1 and s2 only (s3 was down when it was given, say).
        world.command(.beginClusterStop, at: "s1")
        for server in ["s1", "s2"] {
            world.command(.stopService(factor: .clusterShutdown, lastAction: .none, then: .exitProcess), at: server)
        }
        world.run(for: .seconds(10))
        #expect(world.engine("s1") == nil && world.engine("s2") == nil, "\(world.recentTrace)")
        // One of three: s3 runs nothing, not even on an operator's order (the old code counted
        // s1 and s2 out, held one of one and started g).
        #expect(world.command(.startGroup("g", on: nil), at: "s3").code != .success)
        world.run(for: .seconds(3))
        #expect(world.where_("g").isEmpty, "\(world.recentTrace)")
        world.partition(["s3"], ["s1", "s2"])
        world.boot("s1")
        world.boot("s2")
        world.run(for: .seconds(10))
        #expect(world.where_("g") == ["s2:Online"], "\(world.recentTrace)")
        world.heal()
        world.run(for: .seconds(8))
        #expect(world.violations.isEmpty, "\(world.violations)")
    }

    @Test("after a cluster stop nobody is left running: the servers found the cluster again without waiting")
    func clusterStopLeavesNobodyBehind() {
        let world = SimulatedCluster.make(Self.config)
        world.runUntil(limit: .seconds(10)) { world.where_("g") == ["s2:Online"] }
        world.command(.beginClusterStop, at: "s1")
        for server in Cfg.names(3) {
            world.command(.stopService(factor: .clusterShutdown, lastAction: .none, then: .exitProcess), at: server)
        }
        world.run(for: .seconds(5))
        // s2 stays off; s1 and s3 start and found the cluster after the sync wait.
        world.boot("s1")
        world.boot("s3")
        world.run(for: .seconds(8))
        #expect(world.where_("g") == ["s1:Online"], "\(world.recentTrace)")
        #expect(world.logCounts["s1 nm 8"] == nil)
    }
}
