import Testing
import UnderstudyEngine
import UnderstudyModel
import UnderstudySimulator

/// Scenarios 1 and 2: startup synchronization and placement by policy.
@Suite("Startup and placement")
struct StartupAndPlacementTests {
    // MARK: 1. Startup

    struct StartupCase: Sendable, CustomTestStringConvertible {
        var name: String
        /// Boot time of each server (absent = never booted within the scenario).
        var bootAt: [ServerName: Duration]
        var policy: [ServerName]
        var syncWait: Duration = Timing.syncWait
        /// Where the group must end up, with its CLP_SERVER and CLP_PRIORITY.
        var expectedServer: ServerName
        var expectedHome: String
        var expectedPriority: Int
        /// No start script may run before this time …
        var notBefore: Duration
        /// … and the group must be online by this time.
        var onlineBy: Duration
        var testDescription: String { name }
    }

    static let startupCases: [StartupCase] = [
        StartupCase(
            name: "all three boot at once: start on the home server once everybody joined",
            bootAt: ["s1": .zero, "s2": .zero, "s3": .zero], policy: ["s1", "s2", "s3"],
            expectedServer: "s1", expectedHome: "HOME", expectedPriority: 1,
            notBefore: .zero, onlineBy: .seconds(4)),
        StartupCase(
            name: "last server boots at 3 s (inside the sync wait): nothing starts before it joined",
            bootAt: ["s1": .zero, "s2": .zero, "s3": .seconds(3)], policy: ["s3", "s1", "s2"],
            expectedServer: "s3", expectedHome: "HOME", expectedPriority: 1,
            notBefore: .seconds(3), onlineBy: .seconds(7)),
        StartupCase(
            name: "home server boots after the sync wait: treated as down, group starts on priority 2",
            bootAt: ["s1": .zero, "s2": .zero, "s3": .seconds(8)], policy: ["s3", "s1", "s2"],
            expectedServer: "s1", expectedHome: "OTHER", expectedPriority: 2,
            notBefore: Timing.syncWait, onlineBy: .seconds(7)),
        StartupCase(
            name: "home server never boots: group starts on priority 2 once the wait expired",
            bootAt: ["s2": .zero, "s3": .zero], policy: ["s1", "s2", "s3"],
            expectedServer: "s2", expectedHome: "OTHER", expectedPriority: 2,
            notBefore: Timing.syncWait, onlineBy: .seconds(7)),
        StartupCase(
            name: "sync wait 0: a lone server starts its group at once",
            bootAt: ["s1": .zero], policy: ["s1", "s2", "s3"], syncWait: .zero,
            expectedServer: "s1", expectedHome: "HOME", expectedPriority: 1,
            notBefore: .zero, onlineBy: .seconds(2)),
    ]

    @Test("startup synchronization", arguments: startupCases)
    func startup(_ row: StartupCase) {
        // Sync-wait-0 row: one server of three has no majority, so that row runs without
        // partition resolution; the others keep it.
        let config = Cfg.cluster(
            groups: [Cfg.group("g", servers: row.policy)], syncWait: row.syncWait, majority: row.bootAt.count > 1)
        let world = SimulatedCluster.make(config, boot: [])
        for (server, time) in row.bootAt { world.at(time, "boot \(server)") { world.boot(server) } }
        world.run(until: row.onlineBy)

        #expect(world.where_("g") == ["\(row.expectedServer):Online"], "\(world.recentTrace)")
        let starts = world.runs(group: "g", .start)
        #expect(starts.count == 1)
        #expect(starts.allSatisfy { $0.at >= row.notBefore }, "started at \(starts.map(\.at)) before \(row.notBefore)")
        expectEnv(
            starts,
            [
                "CLP_EVENT": "START", "CLP_SERVER": row.expectedHome, "CLP_PRIORITY": "\(row.expectedPriority)",
                "CLP_DISK": "SUCCESS", "CLP_GROUPNAME": "g", "CLP_RESOURCENAME": "g-app",
            ])
        // Whatever boots later does not take the group away (failback is manual).
        world.run(until: row.onlineBy + .seconds(8))
        #expect(world.where_("g") == ["\(row.expectedServer):Online"])
        #expect(world.runs(group: "g").count == 1)
        #expect(world.violations.isEmpty, "\(world.violations)")
    }

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

    // MARK: 2. Placement by policy, dependency order

    struct OrderCase: Sendable, CustomTestStringConvertible {
        var name: String
        /// (name, type, depends) in file order.
        var resources: [(String, ResourceType, [String]?)]
        var startOrder: [String]
        var testDescription: String { name }
    }

    static let orderCases: [OrderCase] = [
        OrderCase(
            name: "default layers: fip/vip/ddns → volmgr → disk/nas → exec/vm",
            resources: [
                ("app", .exec, nil), ("data", .disk, nil), ("vg", .volmgr, nil), ("ip", .fip, nil),
                ("vm1", .vm, nil), ("share", .nas, nil), ("dns", .ddns, nil),
            ],
            startOrder: ["ip", "dns", "vg", "data", "share", "app", "vm1"]),
        OrderCase(
            name: "explicit depends overrides the layers",
            resources: [("web", .exec, ["db"]), ("db", .exec, ["ip"]), ("ip", .fip, [])],
            startOrder: ["ip", "db", "web"]),
        OrderCase(
            name: "explicit depends can put an exec before a fip",
            resources: [("ip", .fip, ["prep"]), ("prep", .exec, [])],
            startOrder: ["prep", "ip"]),
        OrderCase(
            name: "same layer keeps file order",
            resources: [("b", .exec, nil), ("a", .exec, nil), ("ip2", .vip, nil), ("ip1", .fip, nil)],
            startOrder: ["ip2", "ip1", "b", "a"]),
    ]

    @Test("resources start in dependency order and stop in reverse", arguments: orderCases)
    func dependencyOrder(_ row: OrderCase) {
        let resources = row.resources.map { Cfg.resource($0.0, $0.1, depends: $0.2) }
        let config = Cfg.cluster(groups: [Cfg.group("g", servers: ["s1", "s2", "s3"], resources: resources)])
        let world = SimulatedCluster.make(config)
        world.run(until: .seconds(6))
        #expect(world.where_("g") == ["s1:Online"])
        let starts = world.runs(group: "g", .start)
        #expect(starts.map(\.run.resource) == row.startOrder)
        // One script at a time: each run begins after the previous one finished.
        #expect(zip(starts, starts.dropFirst()).allSatisfy { $1.at - $0.at >= Timing.script })
        for entry in starts {
            expectEnv(
                [entry],
                [
                    "CLP_EVENT": "START", "CLP_SERVER": "HOME", "CLP_PRIORITY": "1", "CLP_DISK": "SUCCESS",
                    "CLP_GROUPNAME": "g", "CLP_RESOURCENAME": entry.run.resource,
                ])
            #expect(entry.run.context.factor == nil && entry.run.env["CLP_FACTOR"] == nil)
        }

        let stopAt = world.now
        #expect(world.command(.stopGroup("g"), at: "s2").code == .success)
        world.run(for: .seconds(3))
        let stops = world.runs(group: "g", .stop, since: stopAt)
        #expect(stops.map(\.run.resource) == Array(row.startOrder.reversed()))
        expectEnv(stops, ["CLP_FACTOR": "GROUPSTOP", "CLP_EVENT": "START", "CLP_SERVER": "HOME", "CLP_PRIORITY": "1"])
        #expect(world.where_("g").isEmpty)
        #expect(world.violations.isEmpty)
    }

    @Test("each group starts on the first server of its own policy")
    func policyOrder() {
        let config = Cfg.cluster(groups: [
            Cfg.group("a", servers: ["s1", "s2", "s3"]),
            Cfg.group("b", servers: ["s2", "s3", "s1"]),
            Cfg.group("c", servers: ["s3", "s1"]),
        ])
        let world = SimulatedCluster.make(config)
        world.run(until: .seconds(6))
        #expect(world.where_("a") == ["s1:Online"])
        #expect(world.where_("b") == ["s2:Online"])
        #expect(world.where_("c") == ["s3:Online"])
        for group in ["a", "b", "c"] {
            expectEnv(
                world.runs(group: group, .start),
                ["CLP_EVENT": "START", "CLP_SERVER": "HOME", "CLP_PRIORITY": "1", "CLP_GROUPNAME": group])
        }
        // Every server follows one master: the first server of the cluster.
        for server in ["s1", "s2", "s3"] {
            #expect(world.engine(server)?.currentMaster(now: world.now) == "s1")
        }
    }
}
