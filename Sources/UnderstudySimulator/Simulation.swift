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
        public var faults: Int

        public var passed: Bool { violations.isEmpty }

        /// The command that replays this schedule.
        public var replayCommand: String { "swift run understudy simulate --seed \(seed) --servers \(servers)" }
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
                resources: [exec("web-ip", 0, .shutdown), exec("web-app", 1, .shutdown)]),
            GroupConfig(
                name: "db", servers: names.reversed(), failback: .auto, exclusive: .normal,
                resources: [exec("db-disk", 1, .reboot), exec("db-app", 0, .noneContinue)]),
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
        // (reactivate, fail over, then nothing), one watches db from every server (reactivate,
        // fail over, then stop the group).
        let monitors = [
            MonitorConfig(
                name: "web-watch", type: .pidw, target: "web-app", interval: .milliseconds(300), timeout: .seconds(1),
                recovery: MonitorRecovery(target: .group("web"), reactivations: 1, failovers: 1, finalAction: .none)),
            MonitorConfig(
                name: "db-watch", type: .psw, interval: .milliseconds(400), timeout: .seconds(1), retries: 1,
                recovery: MonitorRecovery(target: .group("db"), reactivations: 1, failovers: 1, finalAction: .stopGroup),
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
            ],
            networkPartition: count == 2
                ? [NetworkPartitionConfig(name: "pingnp1", kind: .ping(targets: ["192.0.2.254"]))]
                : [NetworkPartitionConfig(name: "majority1", kind: .majority)],
            groups: groups + perServer, monitors: monitors)
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

    /// - Parameter heartbeatSizeCheckInterval: measure every n-th heartbeat against the
    ///   configuration's heartbeat budget (1: every one).
    public static func run(
        seed: UInt64, servers count: Int = 3, faultWindow: Duration = .seconds(45), heartbeatSizeCheckInterval: Int = 1
    ) -> Result {
        let config = config(servers: count)
        let world = SimulatedCluster(config: config, seed: seed, scriptModel: scripts)
        world.heartbeatSizeCheckInterval = heartbeatSizeCheckInterval
        var random = SeededRandom(seed: seed ^ 0x5EED)
        let names = config.serverNames
        // Monitor errors: per server and monitor, failing until the given time.
        let failures = MonitorFailures()
        world.monitorModel = { server, monitor, now in
            (failures.until["\(server)/\(monitor)"].map { now < $0 } ?? false) ? .error("simulated failure") : .normal
        }

        // Sometimes one server's file lists the servers in another order (another hash):
        // the servers must still agree on one master and report the mismatch, not flood.
        if random.chance(0.2) {
            let odd = names[Int.random(in: 0..<names.count, using: &random)]
            var other = config
            other.servers = Array(config.servers.dropFirst()) + Array(config.servers.prefix(1))
            world.configOverrides[odd] = other
            world.at(.zero, "\(odd) runs a file that lists the servers as \(other.serverNames)") {}
        }
        let tickets = Tickets()
        // Servers boot within a few seconds of each other.
        for name in names {
            world.at(random.duration(.zero ... .seconds(4)), "boot \(name)") { world.boot(name) }
        }
        // Faults, one every 1–6 s, each undone later.
        var time: Duration = .seconds(8)
        var faults = 0
        while time < faultWindow {
            time += random.duration(.seconds(1) ... .seconds(6))
            faults += 1
            let victim = names[Int.random(in: 0..<names.count, using: &random)]
            let fault = Int.random(in: 0..<100, using: &random)
            let length = random.duration(.milliseconds(200) ... .seconds(10))
            switch fault {
            case 0..<15:
                world.at(time, "fault: crash \(victim)") { world.crash(victim) }
                world.at(time + length + .seconds(1), "fault end: reboot \(victim)") { world.boot(victim) }
            case 15..<30:
                world.at(time, "fault: freeze \(victim)") { world.freeze(victim, for: length) }
            case 30..<45:
                let shuffled = names.shuffled(using: &random)
                let cut = Int.random(in: 1..<names.count, using: &random)
                let sideA = Array(shuffled[..<cut])
                let sideB = Array(shuffled[cut...])
                // One-way links too: with ping resolution the server that a live peer cannot
                // hear is the cut-off side.
                let oneWay = random.chance(0.3)
                // The ping targets sit on one side of a cut; the other side no longer reaches them.
                let cutOff = oneWay ? [] : (random.chance(0.5) ? sideA : sideB)
                world.at(time, "fault: partition; ping targets lost by \(cutOff)") {
                    world.partition(sideA, sideB, oneWay: oneWay)
                    world.unreachablePingTargets.formUnion(cutOff)
                    // Two one-way cuts in opposite directions make a two-way cut: the targets
                    // are then on one side of it too (a split where both sides reach them
                    // leaves both running, a documented limit of ping resolution).
                    if count == 2, world.unreachablePingTargets.isEmpty,
                        world.blocked.contains([names[0], names[1]]), world.blocked.contains([names[1], names[0]])
                    {
                        world.unreachablePingTargets.formUnion(sideA)
                        world.note("ping targets now lost by \(sideA) (the one-way cuts add up to a two-way cut)")
                    }
                }
                world.at(time + length, "fault end: heal") {
                    world.heal()
                    world.unreachablePingTargets = []
                }
            case 45..<55:
                let loss = random.chance(0.5) ? 0.3 : 0.6
                let duplicate = random.chance(0.5) ? 0.2 : 0.0
                world.at(time, "fault: loss \(loss)") {
                    world.lossRate = loss
                    world.duplicateRate = duplicate
                    // Up to a second: a daemon's heartbeat may leave up to an interval (500 ms
                    // here) after its deadline, plus the up to 50 ms it was prepared ahead
                    // (ClusterDaemon heartbeatLoop), before the network adds its own delay.
                    world.delayRange = .milliseconds(1) ... .milliseconds(1_000)
                }
                world.at(time + length, "fault end: clean network") {
                    world.lossRate = 0
                    world.duplicateRate = 0
                    world.delayRange = .milliseconds(1) ... .milliseconds(5)
                }
            case 55..<65:
                world.at(time, "fault: SIGTERM \(victim)") {
                    world.command(.stopService(factor: .serverShutdown, lastAction: .none, then: .exitProcess), at: victim)
                }
                world.at(time + length + .seconds(3), "fault end: start \(victim)") { world.boot(victim) }
            case 65..<68:
                world.at(time, "fault: every server freezes") { world.freezeAll(for: length) }
            case 68..<70:
                // clpdown / clpdown -r: the server's groups fail over, then its OS stops; a
                // shut-down server is powered on again later.
                let reboot = random.chance(0.5)
                world.at(time, "operator: clpdown\(reboot ? " -r" : "") at \(victim)") {
                    world.command(
                        .stopService(
                            factor: .serverShutdown, lastAction: reboot ? .reboot : .halt, then: .os(reboot ? .reboot : .shutdown)),
                        at: victim)
                }
                if !reboot { world.at(time + length + .seconds(3), "power on \(victim)") { world.boot(victim) } }
            case 85..<87:
                // clpstdn while anything else may be going on; then power returns to the servers
                // at different times (the startup sync wait decides who counts).
                world.at(time, "operator: clpstdn at \(victim)") {
                    world.command(.beginClusterStop, at: victim)
                    for name in names {
                        world.command(.stopService(factor: .clusterShutdown, lastAction: .halt, then: .os(.shutdown)), at: name)
                    }
                }
                for name in names {
                    let on = time + .seconds(4) + random.duration(.zero ... .seconds(10))
                    world.at(on, "power returns to \(name)") { if world.engine(name) == nil { world.boot(name) } }
                }
            case 70..<75:
                world.at(time, "operator: clpcl -r \(victim)") {
                    world.command(.stopService(factor: .serverShutdown, lastAction: .none, then: .restart), at: victim)
                }
            case 75..<85:
                let monitor = random.chance(0.5) ? "web-watch" : "db-watch"
                world.at(time, "fault: monitor \(monitor) fails on \(victim)") {
                    failures.until["\(victim)/\(monitor)"] = time + length
                }
            default:
                // One command, or two or three on the same group at the same moment from
                // different servers (operators racing): each accepted one is followed to its
                // end like the CLI does (see `checkCommandsEnd`).
                let group = config.groups[Int.random(in: 0..<config.groups.count, using: &random)].name
                let racing = random.chance(0.4) ? Int.random(in: 2...min(3, names.count), using: &random) : 1
                for index in 0..<racing {
                    let origin = index == 0 ? victim : names[Int.random(in: 0..<names.count, using: &random)]
                    let target = names[Int.random(in: 0..<names.count, using: &random)]
                    let command: ClusterCommand
                    switch Int.random(in: 0..<4, using: &random) {
                    case 0: command = .startGroup(group, on: random.chance(0.5) ? target : nil)
                    case 1: command = .stopGroup(group)
                    default: command = .moveGroup(group, to: random.chance(0.5) ? target : nil)
                    }
                    world.at(time, "operator: \(command) at \(origin)") {
                        if let ticket = world.command(command, at: origin).ticket { tickets.accepted.append(ticket) }
                    }
                }
            }
        }
        // Quiet period: everything healed and up; then every wanted group must be placed.
        let quiet = time + .seconds(12)
        world.at(quiet, "quiet: heal everything") {
            world.heal()
            world.unreachablePingTargets = []
            world.lossRate = 0
            world.duplicateRate = 0
            world.delayRange = .milliseconds(1) ... .milliseconds(5)
            failures.until = [:]
            world.scriptModel = { _, _, random in (random.duration(.milliseconds(5) ... .milliseconds(300)), .success(asyncPID: nil)) }
            for name in names where world.engine(name) == nil { world.boot(name) }
            for name in names {
                if let engine = world.engine(name), engine.service == .stopped {
                    world.command(.startService, at: name)
                }
            }
        }
        world.run(until: quiet + .seconds(20))
        // A server whose stop was still under way at the quiet point (an ordered stop waits up
        // to its timeout, then the OS goes down) is down now: power it on as well, and give
        // the cluster the same time again.
        let late = names.filter { world.engine($0) == nil || world.engine($0)?.service == .stopped }
        if !late.isEmpty {
            world.at(world.now, "quiet: power on \(late), which went down after the quiet point") {
                for name in late where world.engine(name) == nil { world.boot(name) }
                for name in late where world.engine(name)?.service == .stopped { world.command(.startService, at: name) }
            }
            world.run(until: world.now + .seconds(20))
        }
        var violations = world.violations
        violations += checkLiveness(world)
        violations += checkCommandsEnd(world, tickets.accepted)
        violations += checkNoFlood(world)
        return Result(seed: seed, servers: count, violations: violations, trace: world.traceAtFirstViolation ?? world.trace, faults: faults)
    }

    /// I4: after the faults, there is one master that every server follows, and every group
    /// its directory wants is active on exactly one server, unless no server may take it.
    static func checkLiveness(_ world: SimulatedCluster) -> [String] {
        let config = world.config
        let now = world.now
        let running = config.serverNames.filter { world.engine($0)?.service == .running }
        let masters = Set(running.compactMap { world.engine($0)?.currentMaster(now: now) })
        guard masters.count == 1, let master = masters.first, let masterEngine = world.engine(master),
            let directory = masterEngine.directory
        else {
            return ["I4: after the faults the servers do not agree on one master: \(masters.sorted()) at \(now)"]
        }
        var problems: [String] = []
        for group in config.groups {
            let entry = directory.entries[group.name] ?? DirectoryEntry()
            let placement = world.placement(of: group.name)
            if placement.values.contains(where: { $0 == .offlineFailure || $0 == .onlineFailure }) { continue }
            if entry.wanted {
                let eligible = group.servers.filter { server in
                    guard let engine = world.engine(server), engine.service == .running else { return false }
                    return !engine.autoStartSuppressed && !entry.failedOn.contains(server)
                }
                if eligible.isEmpty || entry.finalActionOn != nil { continue }
                if placement.count != 1 || placement.values.first != .online {
                    problems.append("I4: group \(group.name) is wanted but placed as \(placement) at \(now) (directory \(entry))")
                }
            } else if !placement.isEmpty {
                problems.append("I4: group \(group.name) is not wanted but still held: \(placement) at \(now)")
            }
        }
        return problems
    }
}

extension Simulation {
    /// Every accepted group command has ended by the end of the schedule, as the CLI that
    /// follows it sees it: done, failed, or superseded by a later command or a master change.
    /// A command still pending would wait until its timeout.
    static func checkCommandsEnd(_ world: SimulatedCluster, _ tickets: [OperationTicket]) -> [String] {
        let now = world.now
        guard let master = world.config.serverNames.compactMap({ world.engine($0)?.currentMaster(now: now) }).first,
            let snapshot = world.engine(master)?.snapshot(now: now)
        else { return [] }
        return tickets.compactMap { ticket in
            guard ticket.verdict(in: snapshot) == .pending else { return nil }
            let line = snapshot.groups.first { $0.name == ticket.group }
            return
                "I4: the command \(ticket.kind.rawValue) of \(ticket.group) (to \(ticket.target ?? "-"), version \(ticket.version)) would still wait at \(now): \(line.map { "\($0.status.rawValue) on \($0.current ?? "none"), wanted \($0.wanted ?? false), assigned to \($0.assignedTo ?? "none"), operation \($0.operation ?? 0)" } ?? "no group"), directory \(snapshot.directoryVersion ?? 0)"
        }
    }

    /// No server writes one kind of log line without bound (a master leapfrog wrote
    /// hundreds a second): a schedule of a minute gives each at most a few dozen.
    static func checkNoFlood(_ world: SimulatedCluster) -> [String] {
        world.logCounts.filter { $0.value > 200 }.sorted { $0.key < $1.key }.map { key, count in
            "a log line repeats without bound: \(key) written \(count) times"
        }
    }
}

/// Accepted group commands of a schedule, in order.
final class Tickets {
    var accepted: [OperationTicket] = []
}

/// Which monitors fail where, changed by scheduled faults.
final class MonitorFailures {
    var until: [String: EngineTime] = [:]
}
