import Synchronization
import UnderstudyEngine
import UnderstudyModel

/// Seeded random fault schedules over a simulated cluster, with the invariants checked
/// after every step: I1 and I3 throughout, I4 (liveness) once the faults are over.
public enum Simulation {
    public struct Result: Sendable {
        public var seed: UInt64
        public var servers: Int
        public var violations: [String]
        /// The last lines of the world's trace (for a failing seed).
        public var trace: [String]
        /// What the schedule did: a schedule that injected nothing or checked no group proves
        /// nothing, and the tests say so.
        public var statistics: Statistics

        /// The variant's flags (`--witness`, `--fencing`), for the replay command.
        public var flags = ""

        public var passed: Bool { violations.isEmpty }

        /// The command that replays this schedule.
        public var replayCommand: String { "swift run understudy simulate --seed \(seed) --servers \(servers)\(flags)" }
    }

    /// The cluster every schedule runs: fast timings, majority resolution, three groups
    /// with different attributes and two exec resources each.
    /// Network-partition resolution of the simulated cluster: majority for three servers and
    /// more, ping targets (the usual two-server setup) for two.
    public static func config(servers count: Int) -> ClusterConfig {
        let names = (1...count).map { "s\($0)" }
        let exec = { (name: String, retry: Int, deactivationFinal: FinalAction) in
            ResourceConfig(
                name: name, activation: ActivationPolicy(retry: retry, failover: 1, finalAction: .none),
                deactivation: DeactivationPolicy(retry: 1, finalAction: deactivationFinal),
                settings: .exec(ExecSettings(start: "start.sh", stop: "stop.sh")))
        }
        let groups = [
            GroupConfig(
                name: "web", servers: names, failback: .manual,
                resources: [exec("web-ip", 0, .reset), exec("web-app", 1, .shutdown)]),
            GroupConfig(
                name: "db", servers: names.reversed(), failback: .auto, exclusive: .normal,
                resources: [exec("db-disk", 1, .reset), exec("db-app", 0, .noneContinue)]),
            GroupConfig(
                name: "batch", servers: Array(names.prefix(max(2, count - 1))), exclusive: .complete,
                resources: [exec("batch-app", 0, .noneContinue)]),
        ]
        // Per-server groups that stop only after the business groups (the UPS guide's pattern),
        // so ordered stops race with failovers, crashes and partitions too.
        let perServer = names.map { server in
            GroupConfig(
                name: "ac-\(server)", servers: [server], stopAfter: ["web", "db"], stopAfterWhen: [.clusterStop, .serverStop],
                stopAfterTimeout: .seconds(20), resources: [exec("ac-\(server)-app", 0, .noneContinue)])
        }
        let addresses = { (net: Int) in
            Dictionary(uniqueKeysWithValues: names.enumerated().map { ($0.element, "10.0.\(net).\($0.offset + 1)") })
        }
        // Monitors whose errors race with everything else: one follows web's application
        // (reactivate, fail over, then nothing), one watches db from every server (a recovery
        // script, reactivate, the script again and fail over, then stop the group).
        let monitors = [
            MonitorConfig(
                name: "web-watch", type: .pidw, target: "web-app", interval: .milliseconds(300), timeout: .seconds(1),
                recovery: MonitorRecovery(target: .group("web"), reactivations: 1, failovers: 1, finalAction: .none)),
            MonitorConfig(
                name: "db-watch", type: .psw, interval: .milliseconds(400), timeout: .seconds(1), retries: 1,
                recovery: MonitorRecovery(
                    target: .group("db"), script: "recover.sh", scriptCount: 1, runScriptBefore: [.failover],
                    reactivations: 1, failovers: 1, finalAction: .stopGroup),
                parameters: ["process-name": .string("db")]),
        ]
        return ClusterConfig(
            cluster: ClusterSettings(
                name: "sim", secretFile: "/dev/null",
                timing: TimingSettings(heartbeatInterval: .milliseconds(500), heartbeatTimeout: .seconds(3), syncWait: .seconds(6)),
                networkPartitionAction: .none),
            servers: names.map { ServerConfig(name: $0) },
            heartbeats: [
                HeartbeatConfig(name: "lanhb1", kind: .lan(addresses: addresses(1))),
                HeartbeatConfig(name: "lanhb2", kind: .lan(addresses: addresses(2))),
                // A shared disk: the path a LAN-only cut (`Fault.lanOnlyCut`) leaves.
                HeartbeatConfig(name: "diskhb1", kind: .disk(device: "/dev/disk/by-id/sim-heartbeat-part1")),
            ],
            networkPartition: count == 2
                ? [NetworkPartitionConfig(name: "pingnp1", kind: .ping(targets: ["192.0.2.254"]))]
                : [NetworkPartitionConfig(name: "majority1", kind: .majority)],
            groups: groups + perServer, monitors: monitors)
    }

    /// The configuration of a server count and its heartbeat budget, built once: every
    /// schedule of that count runs the same. `witness`: `httpnp` instead of the count's
    /// usual resolution.
    static func prepared(servers count: Int, witness: Bool = false, fencing: Bool = false) -> (ClusterConfig, Int) {
        let slot = (witness ? -count : count) + (fencing ? 10_000 : 0)
        if let known = preparedConfigs.withLock({ $0[slot] }) { return known }
        var config = config(servers: count)
        if fencing {
            // A script agent (the simulated world decides what it does): quick timings, so that
            // failures, retries and the delay all happen within a schedule.
            config.fencing = FencingConfig(
                agents: [FencingAgentConfig(name: "sim-fence", kind: .script(command: ["fence.sh"]))], timeout: .seconds(3),
                onFailure: .cancel, checkInterval: .zero, delay: .seconds(1), retryInterval: .seconds(2))
        }
        if witness {
            config.networkPartition = [
                NetworkPartitionConfig(name: "httpnp1", kind: .http(WitnessEndpoint(host: "192.0.2.200", port: 8780)))
            ]
        }
        let prepared = (config, HeartbeatBudget.estimate(config).bytes)
        preparedConfigs.withLock { $0[slot] = prepared }
        return prepared
    }

    private static let preparedConfigs = Mutex<[Int: (ClusterConfig, Int)]>([:])

    /// `clptoratio` from a generator of its own (the schedule's draws stay as they are): in a
    /// third of the runs operators raise, change and lower the ratio at random servers while
    /// the faults go on (each server judges by its own ratio until it hears the newest, so
    /// the servers disagree for a while: the leases must stay safe); back to 1 before the
    /// faults end, by a reset at one server or by the expiry every server makes alike.
    static func scheduleTimeoutRatios(_ world: SimulatedCluster, seed: UInt64, faultWindow: Duration) {
        var random = SeededRandom(seed: seed ^ 0x7042_A710)
        guard random.chance(0.35) else { return }
        let names = world.config.serverNames
        var at = random.duration(.seconds(8) ... .seconds(20))
        let end = faultWindow - .seconds(4)
        while at < end {
            let ratio = Int.random(in: 1...4, using: &random)
            let server = names[Int.random(in: 0..<names.count, using: &random)]
            let setting = TimeoutRatio(ratio: ratio, expiresAt: nil, setAt: at.inMilliseconds)
            world.at(at, "operator: clptoratio -r \(ratio) at \(server)") { world.command(.setTimeoutRatio(setting), at: server) }
            at += random.duration(.seconds(2) ... .seconds(12))
        }
        let reset = TimeoutRatio(ratio: 1, expiresAt: nil, setAt: end.inMilliseconds)
        if random.chance(0.5) {
            let server = names[Int.random(in: 0..<names.count, using: &random)]
            world.at(end, "operator: clptoratio -i at \(server)") { world.command(.setTimeoutRatio(reset), at: server) }
        } else {
            for server in names {
                world.at(end, "the timeout ratio expires at \(server)") { world.command(.setTimeoutRatio(reset), at: server) }
            }
        }
    }

    /// A server that comes back with another cluster key, from a generator of its own (the
    /// schedule's draws stay as they are): in a quarter of the runs, once or twice.
    static func scheduleKeyMismatches(_ schedule: inout Schedule, seed: UInt64, faultWindow: Duration) {
        var random = SeededRandom(seed: seed ^ 0x6B3E_7A11)
        guard random.chance(0.25) else { return }
        let names = schedule.names
        for _ in 0..<Int.random(in: 1...2, using: &random) {
            let at = random.duration(.seconds(8)...max(.seconds(9), faultWindow - .seconds(10)))
            let victim = names[Int.random(in: 0..<names.count, using: &random)]
            let length = random.duration(.seconds(2) ... .seconds(12))
            schedule.noteInjected(.keyMismatch)
            schedule.injectKeyMismatch(at: at, victim: victim, length: length, crash: random.chance(0.5))
        }
    }

    /// Forced stops: mostly quick and successful (half of them power cycles: the server boots
    /// again), some fail at once, some are slow: the agent reports failure at its timeout while
    /// the server goes off at some point anyway (a slow BMC).
    static func forcedStops(server: ServerName, target: ServerName, random: inout SeededRandom) -> ForcedStopBehaviour {
        let cycle = random.chance(0.5) ? random.duration(.seconds(2) ... .seconds(6)) : nil
        let draw = Double.random(in: 0..<1, using: &random)
        if draw < 0.8 {
            let after = random.duration(.milliseconds(50) ... .seconds(1))
            return ForcedStopBehaviour(reportAfter: after, succeeded: true, powerOffAfter: after, bootsAgainAfter: cycle)
        } else if draw < 0.9 {
            return ForcedStopBehaviour(
                reportAfter: random.duration(.milliseconds(100) ... .seconds(1)), succeeded: false, powerOffAfter: nil,
                bootsAgainAfter: nil)
        }
        return ForcedStopBehaviour(
            reportAfter: .seconds(3), succeeded: false, powerOffAfter: random.duration(.zero ... .seconds(5)), bootsAgainAfter: cycle)
    }

    /// Scripts: mostly quick, sometimes slow, a few fail, a few hang until their timeout.
    static func scripts(server: ServerName, run: ResourceRun, random: inout SeededRandom) -> (Duration, ResourceOutcome) {
        if random.chance(0.01) { return (.seconds(8), .failure(reason: "timed out")) }
        let duration =
            random.chance(0.2)
            ? random.duration(.milliseconds(500) ... .seconds(3)) : random.duration(.milliseconds(5) ... .milliseconds(300))
        if random.chance(0.04) { return (duration, .failure(reason: "exit code 1")) }
        return (duration, .success(asyncPID: nil))
    }

    /// - Parameter heartbeatSizeCheckInterval: every n-th heartbeat datagram is encoded and
    ///   sized against the configuration's heartbeat budget (see `SimulatedCluster.deliver`).
    /// - Parameter witness: the cluster resolves partitions with `httpnp` (a simulated witness
    ///   running the real decision rule): a side whose ping targets are lost cannot reach the
    ///   witness either, and the witness restarts and goes down now and then.
    /// - Parameter batchedCompletions: finished resource runs reach the Engine in batches after
    ///   a delay, as a busy daemon hands them over (`SimulatedCluster.batchesResourceCompletions`).
    /// - Parameter sparseTicks: each server ticks only when its Engine's `quietUntil` comes, as
    ///   the daemon's tick loop does (`SimulatedCluster.sparseTicks`).
    /// - Parameter keeperNotices: daemons also die alone (kill -9) now and then, and their
    ///   keepers tell the peers once they fenced (`SimulatedCluster.daemonDies`).
    public static func run(
        seed: UInt64, servers count: Int = 3, faultWindow: Duration = .seconds(45), heartbeatSizeCheckInterval: Int = 16,
        witness: Bool = false, fencing: Bool = false, batchedCompletions: Bool = false, sparseTicks: Bool = false,
        keeperNotices: Bool = false
    ) -> Result {
        let (config, budget) = prepared(servers: count, witness: witness, fencing: fencing)
        let world = SimulatedCluster(config: config, seed: seed, scriptModel: scripts, heartbeatBudget: budget)
        world.heartbeatSizeCheckInterval = heartbeatSizeCheckInterval
        world.batchesResourceCompletions = batchedCompletions
        world.sparseTicks = sparseTicks
        var schedule = Schedule(world: world, random: SeededRandom(seed: seed ^ 0x5EED))
        if fencing {
            world.forcedStopModel = forcedStops
            // A split of two servers where both still reach the ping targets: ping resolution
            // alone would leave both running (a documented limit); the forced stop settles it.
            schedule.bothSidesKeepTargets = count == 2
        }
        schedule.setUp()
        schedule.followTickets()
        // Faults, one every 1–6 s, each undone later (Faults.swift).
        var time: Duration = .seconds(8)
        while time < faultWindow {
            time += schedule.random.duration(.seconds(1) ... .seconds(6))
            schedule.inject(Fault.draw(&schedule.random, servers: count), at: time)
        }
        if witness {
            // Witness faults from a generator of their own (the schedule's draws stay as they are).
            var random = SeededRandom(seed: seed ^ 0x3171_4E55)
            var at: Duration = .seconds(8)
            while at < faultWindow {
                at += random.duration(.seconds(3) ... .seconds(15))
                if at >= faultWindow { break }
                if random.chance(0.7) {
                    world.at(at, "fault: witness restarts") { world.restartWitness() }
                } else {
                    let down = random.duration(.milliseconds(500) ... .seconds(8))
                    world.at(at, "fault: witness down") { world.witnessDown = true }
                    world.at(at + down, "fault end: witness up (restarted)") {
                        world.witnessDown = false
                        world.restartWitness()
                    }
                }
            }
        }
        if keeperNotices {
            // From a generator of its own (the schedule's draws stay as they are).
            var random = SeededRandom(seed: seed ^ 0xDEAD_0B17)
            var at: Duration = .seconds(8)
            while true {
                at += random.duration(.seconds(2) ... .seconds(12))
                if at >= faultWindow { break }
                let victim = world.config.serverNames[Int.random(in: 0..<count, using: &random)]
                let fenceTime = random.duration(.milliseconds(1) ... .milliseconds(80))
                let back = random.duration(.milliseconds(100) ... .seconds(8))
                world.at(at, "fault: the daemon of \(victim) dies (kill -9)") { world.daemonDies(victim, fenceTime: fenceTime) }
                world.at(at + back, "fault end: the daemon of \(victim) starts again") { world.boot(victim) }
            }
        }
        scheduleTimeoutRatios(world, seed: seed, faultWindow: faultWindow)
        scheduleKeyMismatches(&schedule, seed: seed, faultWindow: faultWindow)
        let quiet = time + .seconds(12)
        schedule.quiet(at: quiet)
        world.run(until: quiet + .seconds(20))
        schedule.powerOnLateServers()
        var violations = world.violations
        let liveness = checkLiveness(world)
        violations += liveness.problems
        violations += checkCommandsEnd(world, schedule.openTickets)
        violations += checkNoFlood(world)
        let runs = world.runLog
        var statistics = Statistics(
            faults: schedule.injected, livenessChecked: liveness.checked,
            starts: runs.filter { $0.run.operation == .start }.count,
            failoverStarts: runs.filter { $0.run.operation == .start && $0.run.context.event == .failover }.count,
            commandsAccepted: schedule.tickets.count)
        for (_, action) in world.osActions { statistics.osActions[action.rawValue, default: 0] += 1 }
        statistics.ticks = world.ticksDelivered
        statistics.quietTicks = world.quietTicksDelivered
        statistics.keeperNoticesTaken = world.logCounts.filter { $0.key.hasSuffix(" nm 83") }.values.reduce(0, +)
        var result = Result(
            seed: seed, servers: count, violations: violations, trace: world.traceAtFirstViolation ?? world.trace,
            statistics: statistics)
        result.flags =
            (witness ? " --witness" : "") + (fencing ? " --fencing" : "") + (batchedCompletions ? " --batched-completions" : "")
            + (sparseTicks ? " --sparse-ticks" : "") + (keeperNotices ? " --keeper-notices" : "")
        return result
    }
}

/// What one schedule did, summed over many by `+`.
public struct Statistics: Sendable, Equatable {
    /// Faults injected, by kind.
    public var faults: [Fault: Int] = [:]
    /// Groups whose placement I4 checked at the end (the others could not be placed: no
    /// eligible server, or left in failure for the operator).
    public var livenessChecked = 0
    /// Resource starts ordered, and how many of them were failovers (CLP_EVENT=FAILOVER).
    public var starts = 0
    public var failoverStarts = 0
    /// Group commands the cluster accepted (each followed to its end).
    public var commandsAccepted = 0
    /// OS actions the servers took (shutdown, reboot, reset, …), by name.
    public var osActions: [String: Int] = [:]
    /// Ticks delivered, and how many of them the Engines answered the short way (before
    /// their `quietUntil`, each checked against the full step).
    public var ticks = 0
    public var quietTicks = 0
    /// Keeper notices a server acted on (`nm 83`, with `keeperNotices`).
    public var keeperNoticesTaken = 0

    public init(
        faults: [Fault: Int] = [:], livenessChecked: Int = 0, starts: Int = 0, failoverStarts: Int = 0, commandsAccepted: Int = 0
    ) {
        self.faults = faults
        self.livenessChecked = livenessChecked
        self.starts = starts
        self.failoverStarts = failoverStarts
        self.commandsAccepted = commandsAccepted
    }

    public var faultCount: Int { faults.values.reduce(0, +) }

    public static func + (a: Statistics, b: Statistics) -> Statistics {
        var sum = Statistics(
            faults: a.faults.merging(b.faults, uniquingKeysWith: +), livenessChecked: a.livenessChecked + b.livenessChecked,
            starts: a.starts + b.starts, failoverStarts: a.failoverStarts + b.failoverStarts,
            commandsAccepted: a.commandsAccepted + b.commandsAccepted)
        sum.ticks = a.ticks + b.ticks
        sum.quietTicks = a.quietTicks + b.quietTicks
        sum.keeperNoticesTaken = a.keeperNoticesTaken + b.keeperNoticesTaken
        sum.osActions = a.osActions.merging(b.osActions, uniquingKeysWith: +)
        return sum
    }
}
