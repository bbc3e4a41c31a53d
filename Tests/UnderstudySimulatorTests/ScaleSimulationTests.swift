import Testing
import UnderstudyEngine
import UnderstudyModel

@testable import UnderstudySimulator

/// Issue 19: a cluster of 32 servers and 1,000 groups (each a floating IP and an exec) forms,
/// places, fails over and fails back, with the invariants checked after every step and every
/// heartbeat datagram sized against the budget, which does not grow with the groups: the
/// groups' reports and the directory travel as deltas, inline or fetched
/// (HeartbeatStateSync.swift).
@Suite struct ScaleSimulationTests {
    /// `count` servers on the recommended timing (1 s / 5 s), majority resolution, `groups`
    /// groups spread over the servers (each prefers the next server in turn); every other
    /// group fails back automatically.
    static func config(servers count: Int, groups: Int) -> ClusterConfig {
        let names = (1...count).map { "node-\($0)" }
        let addresses = { (net: Int) in
            Dictionary(uniqueKeysWithValues: names.enumerated().map { ($0.element, "10.\(net).\($0.offset / 250).\($0.offset % 250 + 1)") })
        }
        let policy = { (name: String, settings: ResourceSettings) in
            ResourceConfig(
                name: name, activation: ActivationPolicy(retry: 0, failover: 1, finalAction: .none),
                deactivation: DeactivationPolicy(retry: 1, finalAction: .noneContinue), settings: settings)
        }
        let groupConfigs = (0..<groups).map { index in
            let order = Array(names[(index % count)...] + names[..<(index % count)])
            return GroupConfig(
                name: "service-\(index)", servers: order, failback: index.isMultiple(of: 2) ? .auto : .manual,
                resources: [
                    policy("service-\(index)-ip", .fip(FloatingIPSettings(address: "172.16.\(index / 250).\(index % 250 + 1)"))),
                    policy("service-\(index)-app", .exec(ExecSettings(start: "start.sh", stop: "stop.sh"))),
                ])
        }
        return ClusterConfig(
            cluster: ClusterSettings(
                name: "scale", secretFile: "/dev/null",
                timing: TimingSettings(heartbeatInterval: .seconds(1), heartbeatTimeout: .seconds(5), syncWait: .seconds(10)),
                networkPartitionAction: .none),
            servers: names.map { ServerConfig(name: $0) },
            heartbeats: [
                HeartbeatConfig(name: "lanhb1", kind: .lan(addresses: addresses(1))),
                HeartbeatConfig(name: "lanhb2", kind: .lan(addresses: addresses(2))),
            ],
            networkPartition: [NetworkPartitionConfig(name: "majority1", kind: .majority)],
            groups: groupConfigs, monitors: [])
    }

    static func holders(_ world: SimulatedCluster, _ groups: [GroupConfig]) -> [GroupName: [ServerName]] {
        Dictionary(uniqueKeysWithValues: groups.map { ($0.name, world.activeServers(of: $0.name)) })
    }

    @Test("32 servers, 1,000 groups: formed and placed; a crash fails over; a clean stop moves, its return fails back")
    func thirtyTwoServersThousandGroups() throws {
        let config = Self.config(servers: 32, groups: 1_000)
        let estimate = HeartbeatBudget.estimate(config)
        #expect(estimate.fits)
        let world = SimulatedCluster(config: config, seed: 19_032, heartbeatBudget: estimate.bytes)
        world.heartbeatSizeCheckInterval = 50
        world.lossRate = 0.01
        for name in config.serverNames { world.boot(name) }
        world.run(until: .seconds(40))
        var holders = Self.holders(world, config.groups)
        let unplaced = holders.filter { $0.value.count != 1 }
        #expect(unplaced.isEmpty, "not on exactly one server after the start: \(unplaced.prefix(5))")
        // Each group on the server it prefers.
        let misplaced = config.groups.filter { holders[$0.name] != [$0.servers[0]] }
        #expect(misplaced.isEmpty, "\(misplaced.prefix(5).map(\.name))")

        let victim = "node-7"
        let lost = config.groups.filter { holders[$0.name] == [victim] }
        #expect(lost.count >= 31)
        let crashAt = world.now
        world.crash(victim)
        world.run(until: crashAt + .seconds(25))
        holders = Self.holders(world, config.groups)
        for group in lost {
            #expect(holders[group.name]?.count == 1 && holders[group.name] != [victim], "\(group.name): \(holders[group.name] ?? [])")
        }
        // The survivors agree on one master and every one sees 31 servers.
        let masters = Set(config.serverNames.filter { $0 != victim }.compactMap { world.engine($0)?.currentMaster(now: world.now) })
        #expect(masters.count == 1, "\(masters)")

        // Back after a crash: no automatic start involving it (as the reference), so no
        // failback either; its groups stay where they went.
        world.boot(victim)
        world.run(until: world.now + .seconds(30))
        holders = Self.holders(world, config.groups)
        for group in lost {
            #expect(holders[group.name]?.count == 1 && holders[group.name] != [victim], "\(group.name): \(holders[group.name] ?? [])")
        }

        // A clean stop of another server moves its groups; its return fails the automatic
        // ones back.
        let leaver = "node-12"
        let moved = config.groups.filter { holders[$0.name] == [leaver] }
        #expect(moved.count >= 31)
        _ = world.command(.stopService(factor: .serverShutdown, lastAction: .none, then: .stayStopped), at: leaver)
        world.run(until: world.now + .seconds(30))
        holders = Self.holders(world, config.groups)
        for group in moved {
            #expect(holders[group.name]?.count == 1 && holders[group.name] != [leaver], "\(group.name): \(holders[group.name] ?? [])")
        }
        _ = world.command(.startService, at: leaver)
        world.run(until: world.now + .seconds(40))
        holders = Self.holders(world, config.groups)
        for group in moved {
            #expect(holders[group.name]?.count == 1, "\(group.name): \(holders[group.name] ?? [])")
            if group.failback == .auto {
                #expect(holders[group.name] == [leaver], "\(group.name) did not fail back: \(holders[group.name] ?? [])")
            }
        }
        let unplacedAtEnd = Self.holders(world, config.groups).filter { $0.value.count != 1 }
        #expect(unplacedAtEnd.isEmpty, "\(unplacedAtEnd.prefix(5))")
        #expect(world.violations.isEmpty, "\(world.violations.prefix(5))")
    }

    @Test("failure detection does not grow with the servers: a crash fails over as fast with 32 servers as with 3")
    func detectionIsFlat() {
        var times: [Int: Duration] = [:]
        for count in [3, 32] {
            let config = Self.config(servers: count, groups: 64)
            let world = SimulatedCluster(
                config: config, seed: 7_000 + UInt64(count), heartbeatBudget: HeartbeatBudget.estimate(config).bytes)
            for name in config.serverNames { world.boot(name) }
            world.run(until: .seconds(30))
            let victim = config.serverNames[1]
            let lost = config.groups.filter { world.activeServers(of: $0.name) == [victim] }.map(\.name)
            let crashAt = world.now
            world.crash(victim)
            var recovered: Duration?
            // Bounded: 30 s of simulated time in 100 ms steps.
            for _ in 0..<300 {
                world.run(for: .milliseconds(100))
                if lost.allSatisfy({ world.activeServers(of: $0).count == 1 }) {
                    recovered = world.now - crashAt
                    break
                }
            }
            #expect(world.violations.isEmpty, "\(count) servers: \(world.violations.prefix(3))")
            times[count] = recovered
        }
        guard let small = times[3], let large = times[32] else {
            Issue.record("no failover: \(times)")
            return
        }
        // Within the heartbeat timeout plus two intervals of each other.
        #expect(large - small < .seconds(2) && small - large < .seconds(2), "3 servers: \(small), 32 servers: \(large)")
        #expect(large < .seconds(9), "32 servers: \(large)")
    }
}
