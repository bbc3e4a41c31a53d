import Testing
import UnderstudyEngine
import UnderstudyModel
import UnderstudySimulator

/// Scenarios 7–9: activation failure thresholds and final actions, deactivation failure,
/// cluster service stop.
@Suite("Failures, final actions, service stop")
struct FailureAndShutdownTests {
    /// A group of a floating IP and an exec resource `app` that carries the policies.
    static func failingGroup(
        _ name: String = "g", servers: [ServerName] = ["s1", "s2", "s3"], retry: Int = 0, failover: Int = 1,
        final: FinalAction = .none, stopRetry: Int = 0, stopFinal: FinalAction = .none
    ) -> GroupConfig {
        Cfg.group(
            name, servers: servers,
            resources: [
                Cfg.resource("\(name)-ip", .fip),
                Cfg.exec("\(name)-app", retry: retry, failover: failover, final: final, stopRetry: stopRetry, stopFinal: stopFinal),
            ])
    }

    /// Start of `app` fails on the given servers.
    static func startFails(on servers: Set<ServerName>, resource: ResourceName = "g-app") -> (ServerName, ResourceRun) -> Bool {
        { server, run in servers.contains(server) && run.resource == resource && run.operation == .start }
    }

    // MARK: 7. Activation failure: retry → failover → final action

    struct ActivationCase: Sendable, CustomTestStringConvertible {
        var name: String
        var retry: Int
        var failover: Int
        var final: FinalAction
        var failOn: Set<ServerName>
        /// Start attempts of `app` per server.
        var attempts: [ServerName: Int]
        var placement: [String]
        var testDescription: String { name }
    }

    static let activationCases: [ActivationCase] = [
        ActivationCase(
            name: "retry 2, failover 0, final none: three tries on s1, then Online Failure stays",
            retry: 2, failover: 0, final: .none, failOn: ["s1"], attempts: ["s1": 3], placement: ["s1:Online Failure"]),
        ActivationCase(
            name: "retry 1, failover 1: two tries on s1, then failover to s2",
            retry: 1, failover: 1, final: .none, failOn: ["s1"], attempts: ["s1": 2, "s2": 1], placement: ["s2:Online"]),
        ActivationCase(
            name: "failover 2: s1 and s2 fail, s3 runs it",
            retry: 0, failover: 2, final: .none, failOn: ["s1", "s2"], attempts: ["s1": 1, "s2": 1, "s3": 1], placement: ["s3:Online"]),
        ActivationCase(
            name: "failover 1 used up: final none on s2 leaves Online Failure there",
            retry: 0, failover: 1, final: .none, failOn: ["s1", "s2", "s3"], attempts: ["s1": 1, "s2": 1], placement: ["s2:Online Failure"]),
        ActivationCase(
            name: "failover 1 used up: final stop-group takes the group offline for good",
            retry: 0, failover: 1, final: .stopGroup, failOn: ["s1", "s2", "s3"], attempts: ["s1": 1, "s2": 1], placement: []),
        ActivationCase(
            name: "failover 0, final stop-group: offline right after the retries on s1",
            retry: 1, failover: 0, final: .stopGroup, failOn: ["s1"], attempts: ["s1": 2], placement: []),
    ]

    @Test("activation failure thresholds", arguments: activationCases)
    func activationFailure(_ row: ActivationCase) {
        let config = Cfg.cluster(groups: [Self.failingGroup(retry: row.retry, failover: row.failover, final: row.final)])
        let world = SimulatedCluster.make(config, fails: Self.startFails(on: row.failOn))
        world.run(until: .seconds(25))

        #expect(world.where_("g") == row.placement, "\(world.recentTrace)")
        var attempts: [ServerName: Int] = [:]
        for entry in world.runs(group: "g", .start) where entry.run.resource == "g-app" { attempts[entry.server, default: 0] += 1 }
        #expect(attempts == row.attempts)

        // Retries run on the same server with the same event; each server's first try tells
        // whether it is the home server or a failover target.
        let order = ["s1", "s2", "s3"]
        for (index, server) in order.enumerated() where attempts[server] != nil {
            expectEnv(
                world.runs(group: "g", on: server, .start),
                [
                    "CLP_EVENT": index == 0 ? "START" : "FAILOVER", "CLP_SERVER": index == 0 ? "HOME" : "OTHER",
                    "CLP_PRIORITY": "\(index + 1)", "CLP_DISK": "SUCCESS",
                ])
        }
        // A server the group failed over from stopped it with GROUPFAILOVER / FAILOVER, in
        // reverse order, before the next server started it.
        let tried = order.filter { attempts[$0] != nil }
        for (server, next) in zip(tried, tried.dropFirst()) {
            let stops = world.runs(group: "g", on: server, .stop)
            #expect(stops.map(\.run.resource) == ["g-app", "g-ip"])
            expectEnv(stops, ["CLP_FACTOR": "GROUPFAILOVER", "CLP_EVENT": "FAILOVER"])
            let nextStart = world.runs(group: "g", on: next, .start).first
            #expect(nextStart != nil && stops.allSatisfy { $0.at + Timing.script <= nextStart!.at })
        }
        if row.final == .stopGroup, let last = tried.last {
            let stops = world.runs(group: "g", on: last, .stop)
            #expect(stops.map(\.run.resource) == ["g-app", "g-ip"])
            expectEnv(stops, ["CLP_FACTOR": "GROUPSTOP", "CLP_EVENT": "START"])
            // Not restarted anywhere.
            let settled = world.now
            world.run(for: .seconds(15))
            #expect(world.runs(group: "g", since: settled).isEmpty)
            #expect(world.where_("g").isEmpty)
        }
        #expect(world.violations.isEmpty, "\(world.violations)")
    }

    @Test("CLP_DISK=FAILURE after a disk-type resource failed, SUCCESS again on the next server")
    func diskVariable() {
        let group = Cfg.group(
            "g", servers: ["s1", "s2", "s3"],
            resources: [
                Cfg.resource("ip", .fip),
                ResourceConfig(
                    name: "data", activation: ActivationPolicy(retry: 1, failover: 1, finalAction: .none),
                    deactivation: DeactivationPolicy(retry: 0, finalAction: .none),
                    settings: .disk(DiskSettings(device: "/dev/sdb1", filesystem: "ext4", mountPoint: "/mnt"))),
                Cfg.exec("app"),
            ])
        let world = SimulatedCluster.make(Cfg.cluster(groups: [group])) { server, run in
            server == "s1" && run.resource == "data" && run.operation == .start
        }
        world.run(until: .seconds(10))
        #expect(world.where_("g") == ["s2:Online"])
        #expect(
            world.steps(group: "g") == [
                "s1 start g/ip", "s1 start g/data", "s1 start g/data", "s1 stop g/data", "s1 stop g/ip",
                "s2 start g/ip", "s2 start g/data", "s2 start g/app",
            ])
        let disk = world.runs(group: "g").map { $0.run.env["CLP_DISK"] ?? "?" }
        #expect(disk == ["SUCCESS", "SUCCESS", "FAILURE", "FAILURE", "FAILURE", "SUCCESS", "SUCCESS", "SUCCESS"])
    }

    // MARK: 7. Final actions that stop the OS

    struct OSCase: Sendable, CustomTestStringConvertible {
        var name: String
        var final: FinalAction
        var suppress: Set<RecoverySettings.SuppressCase> = []
        /// Servers booted (s1 is where activation fails).
        var booted: [ServerName]
        var servers = 3
        var expectedOS: [String]
        var testDescription: String { name }
    }

    static let osCases: [OSCase] = [
        OSCase(name: "shutdown", final: .shutdown, booted: ["s1", "s2", "s3"], expectedOS: ["s1:shutdown"]),
        OSCase(name: "reboot", final: .reboot, booted: ["s1", "s2", "s3"], expectedOS: ["s1:reboot"]),
        OSCase(
            name: "shutdown, alone, suppressed for activation: skipped", final: .shutdown, suppress: [.activation],
            booted: ["s1"], servers: 2, expectedOS: []),
        OSCase(
            name: "reboot, alone, suppressed for activation: skipped", final: .reboot, suppress: [.activation, .monitor],
            booted: ["s1"], servers: 2, expectedOS: []),
        OSCase(name: "shutdown, alone, no suppression", final: .shutdown, booted: ["s1"], servers: 2, expectedOS: ["s1:shutdown"]),
        OSCase(
            name: "shutdown, alone, suppressed for deactivation only", final: .shutdown, suppress: [.deactivation],
            booted: ["s1"], servers: 2, expectedOS: ["s1:shutdown"]),
        OSCase(
            name: "shutdown, suppressed but not alone", final: .shutdown, suppress: [.activation], booted: ["s1", "s2"],
            servers: 2, expectedOS: ["s1:shutdown"]),
    ]

    @Test("activation final action shutdown/reboot", arguments: osCases)
    func osFinalAction(_ row: OSCase) {
        let names = Cfg.names(row.servers)
        let config = Cfg.cluster(
            servers: row.servers,
            groups: [
                Self.failingGroup(servers: names, failover: 0, final: row.final),
                Cfg.group("other", servers: names),
            ],
            majority: false, recovery: RecoverySettings(suppressFinalActionWhenAlone: row.suppress))
        let world = SimulatedCluster.make(config, boot: row.booted, fails: Self.startFails(on: ["s1"]))
        let osAt = world.runUntil(limit: .seconds(12)) { !world.osActions.isEmpty }
        world.run(until: .seconds(12))
        #expect(world.osActionList == row.expectedOS, "\(world.recentTrace)")

        guard let osAt else {
            // Suppressed: the group stays in Online Failure on a running s1.
            #expect(world.where_("g") == ["s1:Online Failure"])
            #expect(world.where_("other") == ["s1:Online"])
            #expect(world.engine("s1")?.service == .running)
            #expect(world.runs(on: "s1", .stop).isEmpty)
            return
        }
        // The service stopped every group first, with CLP_LASTACTION telling the OS action.
        let stops = world.runs(on: "s1", .stop)
        #expect(Set(stops.map(\.run.group)) == ["g", "other"])
        expectEnv(stops, ["CLP_FACTOR": "SERVERSHUTDOWN", "CLP_LASTACTION": row.final == .reboot ? "REBOOT" : "HALT"])
        #expect(stops.allSatisfy { $0.at + Timing.script <= osAt }, "OS action at \(osAt) before the stops \(stops.map(\.at)) ended")
        if row.booted.count > 1 {
            // The other servers take the groups over.
            #expect(world.where_("g") == ["s2:Online"])
            #expect(world.where_("other") == ["s2:Online"])
            expectEnv(world.runs(group: "other", on: "s2", .start), ["CLP_EVENT": "FAILOVER"])
        }
        if row.final == .reboot {
            // The simulated machine comes back 5 s later.
            #expect(world.engine("s1")?.service == .running)
        } else {
            #expect(world.engine("s1") == nil)
        }
        #expect(world.violations.isEmpty, "\(world.violations)")
    }

    struct RebootLimitCase: Sendable, CustomTestStringConvertible {
        var maxReboots: Int
        var expectedReboots: Int
        var testDescription: String { "max-reboots \(maxReboots)" }
    }

    @Test(
        "max-reboots limits reboots caused by final actions",
        arguments: [
            RebootLimitCase(maxReboots: 1, expectedReboots: 1), RebootLimitCase(maxReboots: 2, expectedReboots: 2),
            RebootLimitCase(maxReboots: 0, expectedReboots: 4),
        ])
    func rebootLimit(_ row: RebootLimitCase) {
        // One server alone: every boot starts the group, which fails and reboots the machine.
        let config = Cfg.cluster(
            servers: 1, groups: [Self.failingGroup(servers: ["s1"], failover: 0, final: .reboot)], majority: false,
            recovery: RecoverySettings(maxReboots: row.maxReboots))
        let world = SimulatedCluster.make(config, fails: Self.startFails(on: ["s1"]))
        // Each cycle: ~1 s to found the cluster and fail, 5 s of reboot.
        world.run(until: .seconds(26))
        #expect(world.osActionList == Array(repeating: "s1:reboot", count: row.expectedReboots), "\(world.recentTrace)")
        if row.maxReboots > 0 {
            // Limit reached: s1 stays up with the group in Online Failure.
            #expect(world.engine("s1")?.service == .running)
            #expect(world.where_("g") == ["s1:Online Failure"])
        }
    }

    // MARK: 8. Deactivation failure

    struct DeactivationCase: Sendable, CustomTestStringConvertible {
        var name: String
        var stopRetry: Int
        var stopFinal: FinalAction
        /// How many stop attempts of `app` fail (Int.max = all).
        var failures: Int
        var stopAttempts: ClosedRange<Int>
        var expectedPlacement: [String]
        var expectedOS: [String] = []
        var testDescription: String { name }
    }

    static let deactivationCases: [DeactivationCase] = [
        DeactivationCase(
            name: "retry 1, fails always, final none: stuck in Offline Failure on s2, not moved",
            stopRetry: 1, stopFinal: .none, failures: .max, stopAttempts: 2...2, expectedPlacement: ["s2:Offline Failure"]),
        DeactivationCase(
            name: "retry 2, fails always, final none: three tries", stopRetry: 2, stopFinal: .none, failures: .max,
            stopAttempts: 3...3, expectedPlacement: ["s2:Offline Failure"]),
        DeactivationCase(
            name: "retry 1, fails once: the retry succeeds and the move completes", stopRetry: 1, stopFinal: .none,
            failures: 1, stopAttempts: 2...2, expectedPlacement: ["s3:Online"]),
        DeactivationCase(
            name: "retry 0, fails always, final stop-cluster-service: stuck, not moved", stopRetry: 0,
            stopFinal: .stopClusterService, failures: .max, stopAttempts: 1...1, expectedPlacement: ["s2:Offline Failure"]),
        DeactivationCase(
            name: "retry 0, fails always, final shutdown: the OS stops, then the group moves on", stopRetry: 0,
            stopFinal: .shutdown, failures: .max, stopAttempts: 1...2, expectedPlacement: ["s3:Online"], expectedOS: ["s2:shutdown"]),
    ]

    @Test("deactivation failure during a move", arguments: deactivationCases)
    func deactivationFailure(_ row: DeactivationCase) {
        let config = Cfg.cluster(groups: [
            Self.failingGroup(servers: ["s2", "s1", "s3"], stopRetry: row.stopRetry, stopFinal: row.stopFinal)
        ])
        let failures = Counter()
        let world = SimulatedCluster.make(config) { _, run in
            guard run.resource == "g-app", run.operation == .stop else { return false }
            return failures.next() <= row.failures
        }
        world.run(until: .seconds(8))
        #expect(world.where_("g") == ["s2:Online"])
        let t = world.now
        #expect(world.command(.moveGroup("g", to: "s3"), at: "s1").code == .success)
        world.run(for: .seconds(15))

        #expect(world.where_("g") == row.expectedPlacement, "\(world.recentTrace)")
        // (With a shutdown final action the leaving service tries the stuck stop once more,
        // with CLP_LASTACTION=HALT, before the OS goes down.)
        #expect(row.stopAttempts.contains(world.runs(group: "g", on: "s2", .stop, since: t).filter { $0.run.resource == "g-app" }.count))
        #expect(world.osActionList == row.expectedOS)
        if row.expectedPlacement.first?.hasSuffix("Offline Failure") == true {
            // I1: a group that may still hold resources is never started elsewhere.
            #expect(world.runs(group: "g", .start, since: t).isEmpty)
            // Nor does an operator's move take it away while it is stuck.
            world.command(.moveGroup("g", to: "s1"), at: "s1")
            world.run(for: .seconds(5))
            #expect(world.where_("g") == row.expectedPlacement)
            #expect(world.runs(group: "g", .start, since: t).isEmpty)
        }
        #expect(world.violations.isEmpty, "\(world.violations)")
    }

    @Test("deactivation failure while the cluster service stops: the stuck group is not taken elsewhere")
    func deactivationFailureOnServiceStop() {
        let config = Cfg.cluster(groups: [Self.failingGroup(servers: ["s2", "s1", "s3"], stopRetry: 0, stopFinal: .none)])
        let world = SimulatedCluster.make(config) { server, run in
            server == "s2" && run.resource == "g-app" && run.operation == .stop
        }
        world.run(until: .seconds(8))
        let t = world.now
        #expect(world.command(.stopService(factor: .serverShutdown, lastAction: .none, then: .exitProcess), at: "s2").code == .success)
        world.run(for: .seconds(15))
        #expect(world.runs(group: "g", .start, since: t).isEmpty, "started elsewhere although s2 may still hold it")
        #expect(world.violations.isEmpty, "\(world.violations)")
    }

    // MARK: 9. Cluster service stop

    struct ServiceStopCase: Sendable, CustomTestStringConvertible {
        var name: String
        var victim: ServerName
        var policy: [ServerName]
        var target: ServerName
        var testDescription: String { name }
    }

    @Test(
        "stopping one server's service fails its groups over (SERVERSHUTDOWN)",
        arguments: [
            ServiceStopCase(name: "non-master s2", victim: "s2", policy: ["s2", "s3", "s1"], target: "s3"),
            ServiceStopCase(name: "master s1", victim: "s1", policy: ["s1", "s2", "s3"], target: "s2"),
        ])
    func serviceStop(_ row: ServiceStopCase) {
        let config = Cfg.cluster(groups: [
            Cfg.group("g", servers: row.policy, resources: [Cfg.resource("ip", .fip), Cfg.exec("app")]),
            Cfg.group("bystander", servers: ["s3", "s2", "s1"].filter { $0 != row.victim } + [row.victim]),
        ])
        let world = SimulatedCluster.make(config)
        world.run(until: .seconds(8))
        #expect(world.where_("g") == ["\(row.victim):Online"])
        let bystander = world.where_("bystander")
        let t = world.now
        let result = world.command(.stopService(factor: .serverShutdown, lastAction: .none, then: .exitProcess), at: row.victim)
        #expect(result.code == .success)
        world.run(for: .seconds(6))

        let stops = world.runs(on: row.victim, .stop, since: t)
        #expect(stops.map(\.run.resource) == ["app", "ip"])
        expectEnv(stops, ["CLP_FACTOR": "SERVERSHUTDOWN", "CLP_LASTACTION": "NONE", "CLP_SERVER": "HOME", "CLP_PRIORITY": "1"])
        #expect(world.engine(row.victim) == nil)
        #expect(world.where_("g") == ["\(row.target):Online"], "\(world.recentTrace)")
        let starts = world.runs(group: "g", .start, since: t)
        #expect(starts.servers == [row.target, row.target])
        expectEnv(starts, ["CLP_EVENT": "FAILOVER", "CLP_SERVER": "OTHER", "CLP_PRIORITY": "2"])
        #expect(starts.allSatisfy { $0.run.env["CLP_LASTACTION"] == nil && $0.run.env["CLP_FACTOR"] == nil })
        // A clean leave needs no heartbeat timeout: the takeover is quick.
        #expect(starts[0].at < t + Timing.timeout)
        // Groups elsewhere are untouched.
        #expect(world.where_("bystander") == bystander)
        #expect(world.runs(group: "bystander", since: t).isEmpty)
        #expect(world.violations.isEmpty)
    }

    @Test("service stop while a group is starting: the running script finishes, then the group stops")
    func serviceStopDuringStart() {
        let config = Cfg.cluster(groups: [
            Cfg.group("g", servers: ["s2", "s1", "s3"], startup: .manual, resources: [Cfg.resource("ip", .fip), Cfg.exec("app")])
        ])
        let world = SimulatedCluster.make(config)
        world.run(until: .seconds(8))
        let t = world.now
        #expect(world.command(.startGroup("g", on: "s2"), at: "s1").code == .success)
        world.run(for: .milliseconds(30))
        #expect(world.placement(of: "g")["s2"] == .onlinePending)
        #expect(world.command(.stopService(factor: .serverShutdown, lastAction: .none, then: .exitProcess), at: "s2").code == .success)
        world.run(for: .seconds(5))
        // Never two scripts of one group at once: ip's start ends, then ip stops; app never starts there.
        #expect(world.steps(group: "g", on: "s2", since: t) == ["s2 start g/ip", "s2 stop g/ip"])
        let ip = world.runs(group: "g", on: "s2", since: t)
        if ip.count == 2 { #expect(ip[1].at >= ip[0].at + Timing.script) }
        expectEnv(world.runs(group: "g", on: "s2", .stop, since: t), ["CLP_FACTOR": "SERVERSHUTDOWN", "CLP_LASTACTION": "NONE"])
        #expect(world.where_("g") == ["s1:Online"])
        expectEnv(world.runs(group: "g", on: "s1", .start, since: t), ["CLP_EVENT": "FAILOVER", "CLP_PRIORITY": "2"])
        #expect(world.violations.isEmpty)
    }

    @Test("cluster stop: CLUSTERSHUTDOWN everywhere and no failover")
    func clusterStop() {
        let config = Cfg.cluster(groups: [
            Cfg.group("a", servers: ["s1", "s2", "s3"], resources: [Cfg.resource("ip", .fip), Cfg.exec("app")]),
            Cfg.group("b", servers: ["s2", "s3", "s1"]),
            Cfg.group("c", servers: ["s3", "s1", "s2"]),
        ])
        let world = SimulatedCluster.make(config)
        world.run(until: .seconds(8))
        let t = world.now
        #expect(world.command(.beginClusterStop, at: "s2").code == .success)
        world.run(for: .milliseconds(100))
        for server in ["s1", "s2", "s3"] {
            let result = world.command(.stopService(factor: .clusterShutdown, lastAction: .none, then: .exitProcess), at: server)
            #expect(result.code == .success, "\(server): \(result.message)")
            world.run(for: .milliseconds(20))
        }
        world.run(for: .seconds(10))

        #expect(world.runs(.start, since: t).isEmpty, "a group was failed over during the cluster stop: \(world.steps(since: t))")
        let stops = world.runs(.stop, since: t)
        #expect(Set(stops.map { "\($0.server) \($0.run.group)" }) == ["s1 a", "s2 b", "s3 c"])
        #expect(world.steps(group: "a", since: t) == ["s1 stop a/app", "s1 stop a/ip"])
        expectEnv(stops, ["CLP_FACTOR": "CLUSTERSHUTDOWN", "CLP_LASTACTION": "NONE", "CLP_EVENT": "START"])
        for group in ["a", "b", "c"] { #expect(world.where_(group).isEmpty) }
        for server in ["s1", "s2", "s3"] { #expect(world.engine(server) == nil) }
        #expect(world.violations.isEmpty)
    }
}
