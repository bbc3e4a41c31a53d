import Testing
import UnderstudyEngine
import UnderstudyModel
import UnderstudySimulator

/// Heartbeats must fit in one datagram (issue 13): the estimate of the largest heartbeat,
/// the refusal of a configuration whose heartbeats cannot fit, and the simulator's check of
/// every heartbeat against the estimate.
@Suite("Heartbeat budget")
struct HeartbeatBudgetTests {
    static func exec(groups count: Int, servers: Int = 2) -> ClusterConfig {
        let names = Cfg.names(servers)
        return Cfg.cluster(
            servers: servers, groups: (0..<count).map { Cfg.group("group-number-\($0)", servers: names) }, majority: false,
            pingTargets: ["192.0.2.254"])
    }

    @Test("300 exec groups on two servers are refused, naming the limit and the estimated size")
    func threeHundredGroupsAreRefused() throws {
        let estimate = HeartbeatBudget.estimate(Self.exec(groups: 300))
        #expect(!estimate.fits)
        #expect(estimate.bytes > HeartbeatBudget.datagramPayloadLimit)
        let problem = try #require(estimate.problem)
        #expect(problem.contains("\(estimate.bytes) bytes"))
        #expect(problem.contains("\(HeartbeatBudget.limit) bytes"))
        #expect(problem.contains("300 groups"))
    }

    @Test("small clusters fit; the limit keeps a 10 % margin below what a datagram carries")
    func smallClustersFit() {
        #expect(HeartbeatBudget.estimate(Self.exec(groups: 20)).fits)
        #expect(HeartbeatBudget.estimate(Simulation.config(servers: 5)).fits)
        #expect(HeartbeatBudget.limit == HeartbeatBudget.datagramPayloadLimit * 9 / 10)
    }

    @Test("the estimate grows with groups, servers and name lengths")
    func growsWithTheConfiguration() {
        let base = HeartbeatBudget.estimate(Self.exec(groups: 10)).bytes
        #expect(HeartbeatBudget.estimate(Self.exec(groups: 20)).bytes > base)
        #expect(HeartbeatBudget.estimate(Self.exec(groups: 10, servers: 5)).bytes > base)
        var longNames = Self.exec(groups: 10)
        longNames.groups = longNames.groups.map { group in
            var renamed = group
            renamed.name = group.name + String(repeating: "x", count: 40)
            return renamed
        }
        #expect(HeartbeatBudget.estimate(longNames).bytes > base)
    }

    @Test("every heartbeat of a busy schedule fits the estimate (each one measured)", arguments: [UInt64(11), 12, 13])
    func simulatedHeartbeatsFitTheEstimate(seed: UInt64) {
        let result = Simulation.run(seed: seed, servers: 3, heartbeatSizeCheckInterval: 1)
        #expect(result.passed, "\(result.violations.prefix(3).joined(separator: "\n"))")
    }

    @Test("the simulator's check catches a heartbeat larger than the estimate")
    func checkCatchesAnOversizeHeartbeat() {
        let config = Cfg.cluster(groups: [Cfg.group("g", servers: Cfg.names(3))])
        let world = SimulatedCluster.make(config)
        world.heartbeatBudget = 200
        world.heartbeatSizeCheckInterval = 1
        world.run(for: .seconds(2))
        #expect(world.violations.contains { $0.hasPrefix("heartbeat of s") && $0.contains("more than the 200 estimated") })
    }
}
