import Testing
import UnderstudyEngine
import UnderstudyModel
import UnderstudySimulator

/// Final actions and partition actions that stop the machine at once (panic, reset,
/// keepalive-reset, bmc-*): no group stop, no stop script, no farewell; the peers take over as
/// after a crash. The simulator treats the action as a crash of the machine (and boots it
/// again 5 s later for the actions that restart it).
@Suite("Immediate OS actions")
struct ImmediateOSActionTests {
    static let immediate: [FinalAction] = FinalAction.immediate

    @Test("every immediate final action maps to an immediate OS action of the same name")
    func mapping() throws {
        #expect(
            Self.immediate.map(\.rawValue) == [
                "panic", "reset", "keepalive-reset", "bmc-power-off", "bmc-reset", "bmc-power-cycle", "bmc-nmi",
            ])
        for action in FinalAction.allCases {
            let os = OSAction(action)
            #expect((os != nil) == action.stopsOS, "\(action)")
            #expect((os?.isImmediate ?? false) == action.isImmediate, "\(action)")
        }
        for action in NetworkPartitionAction.allCases {
            #expect((OSAction(action)?.isImmediate ?? false) == action.isImmediate, "\(action)")
        }
        #expect(OSAction.bmcPowerOff.restartsMachine == false)
        #expect(OSAction.reset.restartsMachine)
        #expect(OSAction.shutdown.isImmediate == false)
    }

    @Test("activation final action: the machine stops at once, no stop script, the peer takes over after the timeout", arguments: immediate)
    func activation(_ action: FinalAction) throws {
        let names = Cfg.names(2)
        let config = Cfg.cluster(
            servers: 2,
            groups: [
                FailureAndShutdownTests.failingGroup(servers: names, failover: 0, final: action),
                Cfg.group("other", servers: names),
            ],
            majority: false)
        let world = SimulatedCluster.make(config, fails: FailureAndShutdownTests.startFails(on: ["s1"]))
        let osAt = try #require(world.runUntil(limit: .seconds(12)) { !world.osActions.isEmpty }, "\(world.recentTrace)")
        #expect(world.osActionList == ["s1:\(action.rawValue)"])
        // Nothing was stopped: no stop script ran on s1 (the orderly shutdown stops both groups).
        #expect(world.runs(on: "s1", .stop).isEmpty, "\(world.recentTrace)")
        #expect(world.engine("s1") == nil)
        world.run(for: .seconds(10))
        // No farewell: s2 takes "other" over only after the heartbeat timeout.
        let takeover = try #require(world.runs(group: "other", on: "s2", .start).first, "\(world.recentTrace)")
        #expect(takeover.at >= osAt + Timing.timeout, "taken over at \(takeover.at), machine stopped at \(osAt)")
        #expect(world.where_("other") == ["s2:Online"])
        #expect(world.where_("g") == ["s2:Online"])
        // The actions that restart the machine boot it again (it rejoins without groups).
        if OSAction(action)?.restartsMachine == true {
            #expect(world.engine("s1")?.service == .running)
        } else {
            #expect(world.engine("s1") == nil)
        }
        #expect(world.violations.isEmpty, "\(world.violations)")
    }

    @Test("suppressed when alone, as shutdown is; taken when the case is not listed")
    func suppression() {
        let config = { (suppress: Set<RecoverySettings.SuppressCase>) in
            Cfg.cluster(
                servers: 2, groups: [FailureAndShutdownTests.failingGroup(servers: ["s1", "s2"], failover: 0, final: .reset)],
                majority: false, recovery: RecoverySettings(suppressFinalActionWhenAlone: suppress))
        }
        let suppressed = SimulatedCluster.make(config([.activation]), boot: ["s1"], fails: FailureAndShutdownTests.startFails(on: ["s1"]))
        suppressed.run(until: .seconds(12))
        #expect(suppressed.osActions.isEmpty)
        #expect(suppressed.engine("s1")?.service == .running)
        #expect(suppressed.where_("g") == ["s1:Online Failure"])

        let taken = SimulatedCluster.make(config([.deactivation]), boot: ["s1"], fails: FailureAndShutdownTests.startFails(on: ["s1"]))
        taken.run(until: .seconds(12))
        #expect(taken.osActionList.first == "s1:reset")
    }

    struct RebootLimitCase: Sendable, CustomTestStringConvertible {
        var maxReboots: Int
        var expected: [String]
        var testDescription: String { "max-reboots \(maxReboots)" }
    }

    @Test(
        "max-reboots counts immediate actions; after a reset the server comes back as after a crash (no automatic start)",
        arguments: [
            RebootLimitCase(maxReboots: 1, expected: ["s1:reset"]), RebootLimitCase(maxReboots: 0, expected: ["s1:reset", "s1:reset"]),
        ])
    func rebootLimit(_ row: RebootLimitCase) throws {
        let config = Cfg.cluster(
            servers: 1, groups: [FailureAndShutdownTests.failingGroup(servers: ["s1"], failover: 0, final: .reset)], majority: false,
            recovery: RecoverySettings(maxReboots: row.maxReboots))
        let world = SimulatedCluster.make(config, fails: FailureAndShutdownTests.startFails(on: ["s1"]))
        world.run(until: .seconds(12))
        #expect(world.osActionList == ["s1:reset"], "\(world.recentTrace)")
        // Back after the reset, but the running marker stayed: no automatic start.
        #expect(world.engine("s1")?.service == .running)
        #expect(world.where_("g").isEmpty, "\(world.recentTrace)")
        // The operator starts the group again: it fails again; the count of the first reset
        // survived the reset and decides.
        #expect(world.command(.startGroup("g", on: "s1"), at: "s1").code == .success)
        world.run(for: .seconds(3))
        #expect(world.osActionList == row.expected, "\(world.recentTrace)")
        if row.maxReboots > 0 {
            #expect(world.engine("s1")?.service == .running)
            #expect(world.where_("g") == ["s1:Online Failure"])
        }
    }

    @Test("deactivation final action reset during a move: s2 resets without retrying the stop, s3 takes the group after the timeout")
    func deactivation() throws {
        let config = Cfg.cluster(groups: [
            FailureAndShutdownTests.failingGroup(servers: ["s2", "s1", "s3"], stopRetry: 0, stopFinal: .reset)
        ])
        let world = SimulatedCluster.make(config) { server, run in
            server == "s2" && run.resource == "g-app" && run.operation == .stop
        }
        world.run(until: .seconds(8))
        #expect(world.where_("g") == ["s2:Online"])
        let t = world.now
        #expect(world.command(.moveGroup("g", to: "s3"), at: "s1").code == .success)
        let osAt = try #require(world.runUntil(limit: .seconds(5)) { !world.osActions.isEmpty }, "\(world.recentTrace)")
        #expect(world.osActionList == ["s2:reset"])
        // One failed stop of g-app, then nothing more on s2 (g-ip is never stopped: no script).
        let stops = world.runs(group: "g", on: "s2", .stop, since: t)
        #expect(stops.map(\.run.resource) == ["g-app"], "\(world.recentTrace)")
        world.run(for: .seconds(15))
        #expect(world.where_("g") == ["s3:Online"], "\(world.recentTrace)")
        let start = try #require(world.runs(group: "g", on: "s3", .start, since: t).first)
        #expect(start.at >= osAt + Timing.timeout)
        #expect(world.violations.isEmpty, "\(world.violations)")
    }

    @Test("monitor final action panic: no stop script, the group fails over after the timeout")
    func monitor() throws {
        let world = MonitorFinalActionTests.world(servers: 3, finalAction: .panic)
        let osAt = try #require(world.runUntil(limit: .seconds(12)) { !world.osActions.isEmpty }, "\(world.recentTrace)")
        #expect(world.osActionList == ["s1:panic"])
        #expect(world.runs(on: "s1", .stop).isEmpty)
        world.run(for: .seconds(8))
        #expect(world.where_("g") == ["s2:Online"], "\(world.recentTrace)")
        let start = try #require(world.runs(group: "g", on: "s2", .start).first)
        #expect(start.at >= osAt + Timing.timeout)
        #expect(world.violations.isEmpty, "\(world.violations)")
    }

    @Test("monitor final action bmc-power-off suppressed when alone and the monitor case is listed")
    func monitorSuppressed() {
        let world = MonitorFinalActionTests.world(servers: 1, finalAction: .bmcPowerOff, suppress: [.monitor])
        world.run(until: .seconds(12))
        #expect(world.osActions.isEmpty)
        #expect(world.engine("s1")?.service == .running)
    }

    @Test("network partition action reset: the loser fences its groups, runs no stop script and resets; the majority takes over")
    func partition() throws {
        let faultAt = EngineTime.milliseconds(10_003)
        let config = Cfg.cluster(
            groups: [Cfg.group("g", servers: ["s1", "s2", "s3"], resources: [Cfg.resource("ip", .fip), Cfg.exec("app")])],
            partitionAction: .reset)
        let world = SimulatedCluster.make(config)
        world.run(until: faultAt)
        #expect(world.where_("g") == ["s1:Online"])
        world.partition(["s1"], ["s2", "s3"])
        let takeover = try #require(
            world.runUntil(limit: .seconds(10)) { !world.runs(group: "g", on: "s2", .start, since: faultAt).isEmpty },
            "\(world.recentTrace)")
        #expect(world.osActionList == ["s1:reset"])
        let fences = world.fenceTimes("s1", "g").filter { $0.ms >= faultAt }
        let fence = try #require(fences.first, "no fence on s1")
        #expect(fence.ms < takeover)
        #expect(world.runs(on: "s1", since: faultAt).isEmpty, "a script ran on the loser")
        #expect(takeover >= faultAt + Timing.timeout)
        world.heal()
        world.run(for: .seconds(10))
        #expect(world.where_("g") == ["s2:Online"])
        #expect(world.engine("s1")?.service == .running)
        #expect(world.violations.isEmpty, "\(world.violations)")
    }
}
