import Testing
import UnderstudyEngine
import UnderstudyModel
import UnderstudySimulator

/// Scenarios 10–12: partitions with majority resolution, freezes, abnormal stop, determinism.
@Suite("Partitions, freezes, abnormal stop, determinism")
struct PartitionAndRecoveryTests {
    static let faultAt: Duration = .milliseconds(10_003)

    // MARK: 10. Partitions

    struct PartitionCase: Sendable, CustomTestStringConvertible {
        var name: String
        var servers = 3
        var policy: [ServerName]
        var sideA: [ServerName]
        var sideB: [ServerName]
        var oneWay = false
        var action: NetworkPartitionAction = .none
        /// The server holding the group that ends up on the losing side.
        var loser: ServerName
        var target: ServerName
        var expectedOS: [String] = []
        /// Ping targets (all reachable): an exact half needs them to survive.
        var pingTargets: [String] = []
        var testDescription: String { name }

    }

    static let partitionCases: [PartitionCase] = [
        PartitionCase(
            name: "master s1 alone against s2+s3", policy: ["s1", "s2", "s3"], sideA: ["s1"], sideB: ["s2", "s3"],
            loser: "s1", target: "s2"),
        PartitionCase(
            name: "non-master s3 alone against s1+s2", policy: ["s3", "s1", "s2"], sideA: ["s3"], sideB: ["s1", "s2"],
            loser: "s3", target: "s1"),
        PartitionCase(
            name: "one-way: s1 cannot send to s2+s3", policy: ["s1", "s2", "s3"], sideA: ["s1"], sideB: ["s2", "s3"],
            oneWay: true, loser: "s1", target: "s2"),
        PartitionCase(
            name: "one-way: s3 cannot send to s1+s2", policy: ["s3", "s2", "s1"], sideA: ["s3"], sideB: ["s1", "s2"],
            oneWay: true, loser: "s3", target: "s2"),
        PartitionCase(
            name: "one-way: s2 cannot hear s1+s3", policy: ["s2", "s3", "s1"], sideA: ["s1", "s3"], sideB: ["s2"],
            oneWay: true, loser: "s2", target: "s3"),
        PartitionCase(
            name: "one-way: s2 cannot hear s1+s3, partition action stop-service", policy: ["s2", "s3", "s1"],
            sideA: ["s1", "s3"], sideB: ["s2"], oneWay: true, action: .stopService, loser: "s2", target: "s3"),
        PartitionCase(
            name: "s2 alone, partition action shutdown", policy: ["s2", "s3", "s1"], sideA: ["s2"], sideB: ["s1", "s3"],
            action: .shutdown, loser: "s2", target: "s3", expectedOS: ["s2:shutdown"]),
        PartitionCase(
            name: "four servers split 2|2 with ping targets: the half without s1 loses", servers: 4, policy: ["s3", "s4", "s1", "s2"],
            sideA: ["s1", "s2"], sideB: ["s3", "s4"], loser: "s3", target: "s1", pingTargets: ["192.0.2.254"]),
    ]

    @Test("majority resolution: the minority fences before the majority takes over", arguments: partitionCases)
    func partition(_ row: PartitionCase) {
        let config = Cfg.cluster(
            servers: row.servers, groups: [Cfg.group("g", servers: row.policy, resources: [Cfg.resource("ip", .fip), Cfg.exec("app")])],
            pingTargets: row.pingTargets, partitionAction: row.action)
        let world = SimulatedCluster.make(config)
        world.run(until: Self.faultAt)
        #expect(world.where_("g") == ["\(row.loser):Online"])
        world.partition(row.sideA, row.sideB, oneWay: row.oneWay)

        // Run until the majority starts the group; at that moment the loser holds nothing.
        let takeover = world.runUntil(limit: .seconds(10)) { !world.runs(group: "g", on: row.target, .start, since: Self.faultAt).isEmpty }
        #expect(world.placement(of: "g")[row.loser] == nil)
        if row.action == .none { #expect(world.engine(row.loser)?.isolated == true) }
        let fences = world.fenceTimes(row.loser, "g").filter { $0.ms >= Self.faultAt }
        #expect(!fences.isEmpty, "no fenceGroup on \(row.loser)")
        // Fencing runs no stop script on the loser.
        #expect(world.runs(on: row.loser, since: Self.faultAt).isEmpty)
        #expect(takeover != nil)
        if let fence = fences.first, let start = world.runs(group: "g", on: row.target, .start, since: Self.faultAt).first {
            #expect(fence.ms < start.at, "fenced at \(fence) ms, taken over at \(start.at)")
            // The survivors waited at least the heartbeat timeout, unless the loser told
            // them it left (partition action stop-service/shutdown: farewell heartbeat).
            if row.action == .none { #expect(start.at >= Self.faultAt + Timing.timeout) }
        }
        world.run(for: .seconds(4))
        #expect(world.where_("g") == ["\(row.target):Online"])
        let priority = row.policy.firstIndex(of: row.target)! + 1
        let starts = world.runs(group: "g", .start, since: Self.faultAt)
        #expect(!starts.isEmpty)
        expectEnv(starts, ["CLP_EVENT": "FAILOVER", "CLP_SERVER": priority == 1 ? "HOME" : "OTHER", "CLP_PRIORITY": "\(priority)"])
        #expect(world.osActionList == row.expectedOS)

        // After the heal the loser rejoins and nothing moves (failback manual).
        world.heal()
        for server in Cfg.names(row.servers) where world.engine(server)?.service != .running {
            world.boot(server)
            world.command(.startService, at: server)
        }
        world.run(for: .seconds(8))
        #expect(world.engine(row.loser)?.isolated == false)
        #expect(world.where_("g") == ["\(row.target):Online"])
        #expect(world.runs(group: "g", .stop, since: Self.faultAt).isEmpty)
        let masters = Set(Cfg.names(row.servers).compactMap { world.engine($0)?.currentMaster(now: world.now) })
        #expect(masters == ["s1"])
        #expect(world.violations.isEmpty, "\(world.violations)\n\(world.traceAtFirstViolation?.suffix(40).joined(separator: "\n") ?? "")")
    }

    // MARK: 10. Freezes

    struct FreezeCase: Sendable, CustomTestStringConvertible {
        var victim: ServerName
        var length: Duration
        /// Offset of the freeze start from `faultAt` (the phase against ticks and heartbeats).
        var offset: Duration
        var takenOver: Bool
        var testDescription: String { "freeze \(victim) for \(length) at +\(offset)" }
    }

    static let freezeCases: [FreezeCase] =
        [Duration.zero, .milliseconds(60), .milliseconds(130), .milliseconds(190), .milliseconds(260), .milliseconds(370)].flatMap {
            [
                FreezeCase(victim: "s1", length: .seconds(6), offset: $0, takenOver: true),
                FreezeCase(victim: "s2", length: .seconds(6), offset: $0, takenOver: true),
            ]
        } + [
            FreezeCase(victim: "s1", length: .seconds(2), offset: .zero, takenOver: false),
            FreezeCase(victim: "s2", length: .seconds(2), offset: .milliseconds(130), takenOver: false),
        ]

    @Test("a frozen server gives up its groups on resume before doing anything else", arguments: freezeCases)
    func freeze(_ row: FreezeCase) {
        // g and h run on the victim; g fails over to `next`, h to the remaining server.
        let others = ["s1", "s2", "s3"].filter { $0 != row.victim }
        let config = Cfg.cluster(groups: [
            Cfg.group("g", servers: [row.victim] + others, resources: [Cfg.resource("ip", .fip), Cfg.exec("app")]),
            Cfg.group("h", servers: [row.victim] + others.reversed()),
        ])
        let world = SimulatedCluster.make(config)
        let freezeAt = Self.faultAt + row.offset
        world.run(until: freezeAt)
        #expect(world.where_("g") == ["\(row.victim):Online"])
        world.freeze(row.victim, for: row.length)
        let resumeAt = freezeAt + row.length
        world.run(until: resumeAt - .milliseconds(1))

        guard row.takenOver else {
            world.run(until: resumeAt + .seconds(6))
            #expect(world.where_("g") == ["\(row.victim):Online"])
            #expect(world.where_("h") == ["\(row.victim):Online"])
            #expect(world.runs(since: freezeAt).isEmpty)
            #expect(world.fenceTimes(row.victim, "g").isEmpty)
            #expect(world.violations.isEmpty, "\(world.violations)")
            return
        }
        // While it is frozen the others take its groups over.
        #expect(world.where_("g") == ["\(others[0]):Online"], "\(world.recentTrace)")
        #expect(world.where_("h") == ["\(others[1]):Online"])
        expectEnv(world.runs(group: "g", .start, since: freezeAt), ["CLP_EVENT": "FAILOVER", "CLP_PRIORITY": "2"])
        // On resume it acts on nothing until a peer says it declared it down (one round
        // trip), then fences (no stop scripts run there).
        world.run(until: resumeAt + .milliseconds(300))
        let fences = world.fenceTimes(row.victim, "g").filter { $0.ms >= freezeAt }
        #expect(fences.first.map { $0.ms >= resumeAt && $0.ms <= resumeAt + .milliseconds(50) } == true, "fences \(fences)")
        #expect(world.runs(on: row.victim, .stop, since: freezeAt).isEmpty)
        #expect(world.runs(on: row.victim, until: resumeAt + .milliseconds(60)).allSatisfy { $0.at < freezeAt })
        #expect(world.trace.contains { $0.contains("\(row.victim) [WARN nm 31]") && $0.contains("did not run") })
        #expect(world.trace.contains { $0.contains("\(row.victim) [ERROR nm 30]") && $0.contains("declared it down") })
        #expect(world.violations.isEmpty, "\(world.violations)\n\(world.traceAtFirstViolation?.suffix(30).joined(separator: "\n") ?? "")")

        // Once it has rejoined, nothing moves back (failback manual).
        world.run(until: resumeAt + .seconds(6))
        #expect(world.where_("g") == ["\(others[0]):Online"])
        #expect(world.where_("h") == ["\(others[1]):Online"])
        #expect(world.runs(since: resumeAt).isEmpty)
        #expect(world.violations.isEmpty, "\(world.violations)")
    }

    @Test("an exact half without ping targets has no quorum: both halves fence (documented outcome)")
    func exactHalfWithoutPing() {
        let config = Cfg.cluster(
            servers: 4, groups: [Cfg.group("g", servers: ["s1", "s2", "s3", "s4"], resources: [Cfg.exec("app")])])
        let world = SimulatedCluster.make(config)
        world.run(until: Self.faultAt)
        #expect(world.where_("g") == ["s1:Online"])
        world.partition(["s1", "s2"], ["s3", "s4"])
        world.run(for: .seconds(8))
        #expect(world.where_("g").isEmpty)
        #expect(Cfg.names(4).allSatisfy { world.engine($0)?.isolated == true })
        #expect(world.runs(group: "g", .start, since: Self.faultAt).isEmpty)
        #expect(world.violations.isEmpty, "\(world.violations)")
    }

    /// The checker itself: without any partition resolution (documented as unsafe) a cut
    /// link makes both servers run the group, and the simulator's I1 check must say so —
    /// otherwise 1,200 green schedules would prove nothing.
    @Test("the simulator's I1 check catches a split brain of an unsafe configuration")
    func invariantCheckCatchesSplitBrain() {
        let config = Cfg.cluster(
            servers: 2, groups: [Cfg.group("g", servers: ["s1", "s2"], resources: [Cfg.exec("app")])], majority: false)
        let world = SimulatedCluster.make(config)
        world.run(until: Self.faultAt)
        #expect(world.where_("g") == ["s1:Online"])
        #expect(world.violations.isEmpty, "\(world.violations)")
        world.partition(["s1"], ["s2"])
        world.run(for: .seconds(8))
        #expect(Set(world.where_("g")) == ["s1:Online", "s2:Online"])
        #expect(world.violations.contains { $0.hasPrefix("I1: group g is active on s1 and s2") }, "\(world.violations)")
        #expect(world.violations.contains { $0.hasPrefix("I1: group g is active with a valid lease on s1 and s2") }, "\(world.violations)")
    }

    struct HostStallCase: Sendable, CustomTestStringConvertible {
        var length: Duration
        var majority: Bool
        var testDescription: String { "every server stalls \(length) (\(majority ? "majority" : "pingnp"))" }
    }

    static let hostStallCases: [HostStallCase] = [.milliseconds(900), .seconds(2), .seconds(4), .seconds(30)].flatMap {
        [HostStallCase(length: $0, majority: true), HostStallCase(length: $0, majority: false)]
    }

    @Test("a stall of the whole host (every server at once) fails nothing over", arguments: hostStallCases)
    func hostStall(_ row: HostStallCase) {
        let servers = row.majority ? 3 : 2
        let config = Cfg.cluster(
            servers: servers,
            groups: [
                Cfg.group("g", servers: Cfg.names(servers), resources: [Cfg.resource("ip", .fip), Cfg.exec("app")]),
                Cfg.group("h", servers: Cfg.names(servers).reversed(), resources: [Cfg.exec("app2")]),
            ], majority: row.majority, pingTargets: row.majority ? [] : ["192.0.2.254"])
        let world = SimulatedCluster.make(config)
        world.run(until: Self.faultAt)
        let before = (world.where_("g"), world.where_("h"))
        #expect(before.0 == ["s1:Online"])
        world.freezeAll(for: row.length)
        world.run(for: row.length + .seconds(8))
        #expect(world.where_("g") == before.0)
        #expect(world.where_("h") == before.1)
        #expect(world.runs(since: Self.faultAt).isEmpty)
        #expect(Cfg.names(servers).allSatisfy { world.fenceTimes($0, "g").allSatisfy { $0.ms < Self.faultAt } })
        #expect(Cfg.names(servers).allSatisfy { !(world.engine($0)?.isHoldingAfterStall ?? true) })
        // Each server counted its stall (understudy_stalls_total).
        #expect(Cfg.names(servers).allSatisfy { (world.engine($0)?.stallCount ?? 0) >= 1 })
        if row.length > Timing.timeout {
            #expect(world.trace.contains { $0.contains("[INFO nm 32]") })
        }
        #expect(world.violations.isEmpty, "\(world.violations)\n\(world.recentTrace)")
    }

    // MARK: 11. Abnormal stop

    @Test("a crashed and rebooted server is not chosen automatically until a clean restart")
    func abnormalStop() {
        let config = Cfg.cluster(groups: [
            Cfg.group("g", servers: ["s1", "s2"], failback: .auto, resources: [Cfg.resource("ip", .fip), Cfg.exec("app")])
        ])
        let world = SimulatedCluster.make(config)
        world.run(until: Self.faultAt)
        #expect(world.where_("g") == ["s1:Online"])
        world.crash("s1")
        world.run(for: .seconds(6))
        #expect(world.where_("g") == ["s2:Online"])

        // s1 comes back after a crash: it kills leftovers of what it held and stays out of
        // automatic placement (even failback: auto leaves the group on s2).
        let rebootAt = world.now
        world.boot("s1")
        world.run(for: .seconds(8))
        #expect(world.engine("s1")?.autoStartSuppressed == true)
        #expect(world.fenceTimes("s1", "g").contains { $0.ms >= rebootAt })
        #expect(world.where_("g") == ["s2:Online"])
        #expect(world.runs(group: "g", since: rebootAt).isEmpty)

        // s2 crashes: s1 is the only server of the policy left, but suppressed.
        let crash2 = world.now
        world.crash("s2")
        world.run(for: .seconds(8))
        #expect(world.where_("g").isEmpty)
        #expect(world.runs(group: "g", since: crash2).isEmpty)

        // A clean restart of s1's service (clpcl -r) lifts the suppression.
        let restartAt = world.now
        #expect(world.command(.stopService(factor: .serverShutdown, lastAction: .none, then: .restart), at: "s1").code == .success)
        world.run(for: .seconds(8))
        #expect(world.engine("s1")?.autoStartSuppressed == false)
        #expect(world.where_("g") == ["s1:Online"], "\(world.recentTrace)")
        expectEnv(world.runs(group: "g", .start, since: restartAt), ["CLP_SERVER": "HOME", "CLP_PRIORITY": "1"])
        #expect(world.violations.isEmpty, "\(world.violations)")
    }

    @Test("an operator start on a suppressed server is allowed and lifts the suppression there")
    func operatorStartOnSuppressedServer() {
        let config = Cfg.cluster(groups: [Cfg.group("g", servers: ["s1", "s2"])])
        let world = SimulatedCluster.make(config)
        world.run(until: Self.faultAt)
        world.crash("s1")
        world.run(for: .seconds(6))
        world.boot("s1")
        world.run(for: .seconds(6))
        #expect(world.engine("s1")?.autoStartSuppressed == true)
        #expect(world.command(.stopGroup("g"), at: "s1").code == .success)
        world.run(for: .seconds(2))
        #expect(world.where_("g").isEmpty)
        #expect(world.command(.startGroup("g", on: "s1"), at: "s1").code == .success)
        world.run(for: .seconds(3))
        #expect(world.where_("g") == ["s1:Online"])
        #expect(world.engine("s1")?.autoStartSuppressed == false)
        #expect(world.violations.isEmpty)
    }

    // MARK: 12. Determinism

    /// A busy schedule on a lossy, jittery network: crash, partition, freeze, commands.
    static func busyWorld(seed: UInt64) -> SimulatedCluster {
        let config = Cfg.cluster(groups: [
            Cfg.group("a", servers: ["s1", "s2", "s3"], resources: [Cfg.resource("ip", .fip), Cfg.exec("app")]),
            Cfg.group("b", servers: ["s2", "s3", "s1"], failback: .auto),
            Cfg.group("c", servers: ["s3", "s1"], exclusive: .normal),
        ])
        let world = SimulatedCluster(config: config, seed: seed) { _, _, random in
            // Script durations drawn from the world's seeded generator.
            (random.duration(.milliseconds(20) ... .milliseconds(200)), .success(asyncPID: nil))
        }
        world.lossRate = 0.1
        world.delayRange = .milliseconds(1) ... .milliseconds(80)
        for (index, name) in ["s1", "s2", "s3"].enumerated() {
            world.at(.milliseconds(Int64(index) * 700), "boot \(name)") { world.boot(name) }
        }
        world.at(.seconds(10), "crash s2") { world.crash("s2") }
        world.at(.seconds(16), "boot s2") { world.boot("s2") }
        world.at(.seconds(22), "partition") { world.partition(["s3"], ["s1", "s2"]) }
        world.at(.seconds(28), "heal") { world.heal() }
        world.at(.seconds(34), "freeze s1") { world.freeze("s1", for: .seconds(5)) }
        world.at(.seconds(44), "move a") { world.command(.moveGroup("a", to: nil), at: "s2") }
        world.run(until: .seconds(55))
        return world
    }

    @Test("the same seed gives the same runs, twice", arguments: [UInt64(7), 12345])
    func determinism(seed: UInt64) {
        let first = Self.busyWorld(seed: seed)
        let second = Self.busyWorld(seed: seed)
        #expect(first.runLog.count > 10)
        #expect(first.runLog.count == second.runLog.count)
        for (a, b) in zip(first.runLog, second.runLog) {
            #expect(a.server == b.server && a.run == b.run && a.at == b.at, "\(stepString(a)) at \(a.at) vs \(stepString(b)) at \(b.at)")
            if a.server != b.server || a.run != b.run || a.at != b.at { break }
        }
        // The whole trace (every action and log line) matches too.
        if let index = zip(first.trace, second.trace).enumerated().first(where: { $0.element.0 != $0.element.1 })?.offset {
            let context = { (trace: [String]) in trace[max(0, index - 2)...min(index + 2, trace.count - 1)].joined(separator: "\n") }
            Issue.record("traces differ at line \(index):\n\(context(first.trace))\n---\n\(context(second.trace))")
        }
        #expect(first.trace.count == second.trace.count)
        #expect(first.osActionList == second.osActionList)
        #expect(first.violations.isEmpty, "\(first.violations)")
    }

    @Test("fencing emits its actions in a deterministic order (config order)")
    func fenceOrder() {
        let names = ["g1", "g2", "g3", "g4", "g5", "g6"]
        func fences() -> [String] {
            let config = Cfg.cluster(groups: names.map { Cfg.group($0, servers: ["s1", "s2", "s3"]) })
            let world = SimulatedCluster.make(config, seed: 3)
            world.run(until: Self.faultAt)
            world.freeze("s1", for: .seconds(5))
            world.run(for: .seconds(6))
            return world.trace.compactMap { line in line.range(of: "s1: fence ").map { String(line[$0.upperBound...]) } }
        }
        let first = fences()
        #expect(Set(first) == Set(names))
        #expect(first == names)
        #expect(fences() == names)
        #expect(fences() == names)
    }
}
