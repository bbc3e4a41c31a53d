import Testing
import UnderstudyEngine
import UnderstudyModel
import UnderstudySimulator

/// Heartbeats must fit in one datagram: the estimate of the largest heartbeat (its core and
/// the largest inline state delta), which grows with the servers and never with the groups,
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

    /// `count` servers, each named with 63 characters (the longest host name label).
    static func longNames(servers count: Int) -> ClusterConfig {
        var config = exec(groups: 1, servers: count)
        let rename = { (name: String) in name + String(repeating: "x", count: 63 - name.count) }
        config.servers = config.servers.map { server in
            var renamed = server
            renamed.name = rename(server.name)
            return renamed
        }
        config.groups = config.groups.map { group in
            var renamed = group
            renamed.servers = group.servers.map(rename)
            return renamed
        }
        return config
    }

    @Test("1,000 groups on 32 servers fit: the estimate does not grow with the groups")
    func groupsDoNotCount() {
        let small = HeartbeatBudget.estimate(Self.exec(groups: 10, servers: 32))
        let large = HeartbeatBudget.estimate(Self.exec(groups: 1_000, servers: 32))
        #expect(large.fits)
        #expect(large.bytes == small.bytes)
        #expect(large.bytes < HeartbeatOutbox.inlineLimit + 4_096, "\(large.bytes) bytes")
    }

    @Test("too many servers with long names are refused, naming the limit and the estimated size")
    func tooManyServersAreRefused() throws {
        let estimate = HeartbeatBudget.estimate(Self.longNames(servers: 300))
        #expect(!estimate.fits)
        let problem = try #require(estimate.problem)
        #expect(problem.contains("\(estimate.bytes) bytes"))
        #expect(problem.contains("\(HeartbeatBudget.limit) bytes"))
        #expect(problem.contains("300 servers"))
        #expect(HeartbeatBudget.estimate(Self.longNames(servers: 64)).fits)
    }

    @Test("the estimate grows with servers and the length of their names; the limit keeps a 10 % margin")
    func growsWithTheServers() {
        let base = HeartbeatBudget.estimate(Self.exec(groups: 10)).bytes
        #expect(HeartbeatBudget.estimate(Self.exec(groups: 10, servers: 5)).bytes > base)
        #expect(HeartbeatBudget.estimate(Self.longNames(servers: 2)).bytes > base)
        #expect(HeartbeatBudget.limit == HeartbeatBudget.datagramPayloadLimit * 9 / 10)
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
