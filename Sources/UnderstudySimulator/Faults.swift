import UnderstudyEngine
import UnderstudyModel

/// The faults a random schedule draws from, each with its weight: how often it is drawn
/// relative to the others (`table`). Each is injected at a time and undone later by
/// `Schedule.inject`.
public enum Fault: String, CaseIterable, Sendable, Comparable {
    /// The machine dies; it boots again later.
    case crash
    /// One server stops (VM pause) and goes on with stale state.
    case freeze
    /// Every server stops at once (the host or hypervisor stalls).
    case hostFreeze
    /// A two-way split into two sides; the ping targets are lost by one side. Heals either at
    /// once or one direction first (the case the rejoin grace exists for).
    case partition
    /// One side stops hearing the other, which still hears it.
    case oneWayCut
    /// Two servers stop hearing each other while both still hear the rest: a non-transitive
    /// partition (three servers or more).
    case partialPartition
    /// The LAN paths between two sides fail (and with them the control channel), while the
    /// disk heartbeat still flows; one side may lose the ping targets too. Every server is
    /// still heard: nothing may fail over or be fenced because of it.
    case lanOnlyCut
    /// Heartbeats lost, delayed by up to a second and duplicated.
    case lossyNetwork
    /// SIGTERM to the daemon; it is started again later.
    case serviceStop
    /// `clpcl -r` at a server: its service stops and starts again.
    case serviceRestart
    /// `clpdown` / `clpdown -r`: the server's groups fail over, then its OS stops.
    case serverShutdown
    /// `clpstdn`, then power returns to the servers at different times.
    case clusterShutdown
    /// A monitor reports errors on a server for a while.
    case monitorError
    /// A monitor's recovery script fails on a server for a while.
    case recoveryScriptFailure
    /// One to three group commands (start, stop, move) at once from different servers.
    case groupCommands
    /// `clprsc -t` of a resource, `clprsc -s` later.
    case resourceCommands
    /// `clpcl --suspend`, `clpcl --resume` later (from any server).
    case suspendResume
    /// The state folder cannot be written for a while (a full disk): the daemon logs it and
    /// goes on; a crash then restarts it from an older state.
    case stateWriteFailure
    /// A server comes back (restarted cleanly, or after a crash) with another cluster key: its
    /// heartbeats and the others' fail authentication at each other, though every address
    /// still sends. Later the operator fixes the key file and restarts it.
    case keyMismatch

    /// Weights: crashes, freezes, splits, network trouble, monitor errors and commands are
    /// common; whole-cluster events rare.
    public static let table: [(fault: Fault, weight: Int)] = [
        (.crash, 14), (.freeze, 14), (.hostFreeze, 3),
        (.partition, 10), (.oneWayCut, 5), (.partialPartition, 4), (.lanOnlyCut, 5), (.lossyNetwork, 9),
        (.serviceStop, 9), (.serviceRestart, 4), (.serverShutdown, 2), (.clusterShutdown, 2),
        (.monitorError, 8), (.recoveryScriptFailure, 2),
        (.groupCommands, 10), (.resourceCommands, 3), (.suspendResume, 3), (.stateWriteFailure, 3),
    ]

    static let totalWeight = table.reduce(0) { $0 + $1.weight }

    /// One fault, by weight. A partial partition needs three servers: with two it is a
    /// partition.
    static func draw(_ random: inout SeededRandom, servers: Int) -> Fault {
        var pick = Int.random(in: 0..<totalWeight, using: &random)
        for (fault, weight) in table {
            if pick < weight { return fault == .partialPartition && servers < 3 ? .partition : fault }
            pick -= weight
        }
        return .crash
    }

    public static func < (a: Fault, b: Fault) -> Bool { a.rawValue < b.rawValue }
}

/// The schedule of one simulation: what it injects, and when, into its world.
struct Schedule {
    let world: SimulatedCluster
    var random: SeededRandom
    let names: [ServerName]
    let failures = MonitorFailures()
    private let accepted = Tickets()
    private(set) var injected: [Fault: Int] = [:]
    /// A two-way split of two servers sometimes leaves both sides reaching the ping targets
    /// (with fencing: the forced stop, not ping resolution, settles it).
    var bothSidesKeepTargets = false

    mutating func noteInjected(_ fault: Fault) { injected[fault, default: 0] += 1 }

    var tickets: [OperationTicket] { accepted.list }
    /// Accepted commands whose end a CLI following them has not seen yet.
    var openTickets: [OperationTicket] { accepted.open }

    /// Follows every accepted command as its CLI does (`clpgrp` waits for the ticket): every
    /// quarter second, with the master's status; a command counts as ended once the CLI would
    /// have returned (done, failed, superseded or lost), even if later events change the group.
    func followTickets() {
        let accepted = accepted
        let world = world
        world.poll = {
            guard accepted.ended.count < accepted.list.count else { return }
            let now = world.now
            guard let master = world.config.serverNames.compactMap({ world.engine($0)?.currentMaster(now: now) }).first,
                let snapshot = world.engine(master)?.snapshot(now: now)
            else { return }
            for index in accepted.list.indices where !accepted.ended.contains(index) {
                if accepted.list[index].verdict(in: snapshot) != .pending { accepted.ended.insert(index) }
            }
        }
    }

    init(world: SimulatedCluster, random: SeededRandom) {
        self.world = world
        self.random = random
        self.names = world.config.serverNames
    }

    mutating func any(_ names: [ServerName]) -> ServerName { names[Int.random(in: 0..<names.count, using: &random)] }

    /// Monitor errors and recovery-script failures as the faults set them; sometimes one
    /// server runs a file that differs from the others'; servers boot within seconds.
    mutating func setUp() {
        let failures = failures
        world.monitorModel = { server, monitor, now in
            (failures.until["\(server)/\(monitor)"].map { now < $0 } ?? false) ? .error("simulated failure") : .normal
        }
        world.recoveryScriptFails = { server, now in failures.until["\(server)/recovery-script"].map { now < $0 } ?? false }
        // One server's file lists the servers in another order (another hash): the servers
        // must still agree on one master and report the mismatch, not flood.
        if random.chance(0.2) {
            let odd = any(names)
            var other = world.config
            other.servers = Array(world.config.servers.dropFirst()) + Array(world.config.servers.prefix(1))
            world.configOverrides[odd] = other
            world.at(.zero, "\(odd) runs a file that lists the servers as \(other.serverNames)") {}
        }
        for name in names {
            world.at(random.duration(.zero ... .seconds(4)), "boot \(name)") { [world] in world.boot(name) }
        }
    }

    mutating func inject(_ fault: Fault, at time: EngineTime) {
        injected[fault, default: 0] += 1
        let world = world
        let names = names
        let victim = any(names)
        let length = random.duration(.milliseconds(200) ... .seconds(10))
        switch fault {
        case .crash:
            world.at(time, "fault: crash \(victim)") { world.crash(victim) }
            world.at(time + length + .seconds(1), "fault end: reboot \(victim)") { world.boot(victim) }
        case .freeze:
            world.at(time, "fault: freeze \(victim)") { world.freeze(victim, for: length) }
        case .hostFreeze:
            world.at(time, "fault: every server freezes") { world.freezeAll(for: length) }
        case .partition, .oneWayCut:
            let shuffled = names.shuffled(using: &random)
            let cut = Int.random(in: 1..<names.count, using: &random)
            let (sideA, sideB) = (Array(shuffled[..<cut]), Array(shuffled[cut...]))
            let oneWay = fault == .oneWayCut
            // The ping targets sit on one side of a cut; the other side no longer reaches them.
            // (One-way: the server that a live peer cannot hear is the cut-off side.)
            var cutOff = oneWay ? [] : (random.chance(0.5) ? sideA : sideB)
            if bothSidesKeepTargets && !oneWay && random.chance(0.5) { cutOff = [] }
            let count = names.count
            let bothKeepTargets = !oneWay && cutOff.isEmpty
            world.at(time, "fault: partition; ping targets lost by \(cutOff)") {
                world.partition(sideA, sideB, oneWay: oneWay)
                world.unreachablePingTargets.formUnion(cutOff)
                // Two one-way cuts in opposite directions make a two-way cut: the targets
                // are then on one side of it too (a split where both sides reach them
                // leaves both running, a documented limit of ping resolution).
                if count == 2, !bothKeepTargets, world.unreachablePingTargets.isEmpty,
                    world.blocked.contains([names[0], names[1]]), world.blocked.contains([names[1], names[0]])
                {
                    world.unreachablePingTargets.formUnion(sideA)
                    world.note("ping targets now lost by \(sideA) (the one-way cuts add up to a two-way cut)")
                }
            }
            if !oneWay && random.chance(0.5) {
                // One direction comes back first: B hears A again, A still not B.
                let gap = random.duration(.milliseconds(100) ... .seconds(3))
                world.at(time + length, "fault end: \(sideA) -> \(sideB) heals first") { world.heal(from: sideA, to: sideB) }
                world.at(time + length + gap, "fault end: heal") {
                    world.heal()
                    world.unreachablePingTargets = []
                }
            } else {
                world.at(time + length, "fault end: heal") {
                    world.heal()
                    world.unreachablePingTargets = []
                }
            }
        case .lanOnlyCut:
            let shuffled = names.shuffled(using: &random)
            let cut = Int.random(in: 1..<names.count, using: &random)
            let (sideA, sideB) = (Array(shuffled[..<cut]), Array(shuffled[cut...]))
            let cutOff = random.chance(0.5) ? (random.chance(0.5) ? sideA : sideB) : []
            world.at(time, "fault: LAN cut between \(sideA) and \(sideB) (the disk heartbeat flows); ping targets lost by \(cutOff)") {
                world.cutLAN(sideA, sideB)
                world.unreachablePingTargets.formUnion(cutOff)
            }
            world.at(time + length, "fault end: LAN back") {
                world.lanCut = []
                // A partition under way keeps its own side without targets (its heal clears
                // them): giving them back would leave both sides of it reaching the targets.
                if world.blocked.isEmpty { world.unreachablePingTargets.subtract(cutOff) }
            }
        case .partialPartition:
            let pair = Array(names.shuffled(using: &random).prefix(2))
            world.at(time, "fault: \(pair[0]) and \(pair[1]) stop hearing each other") {
                world.partition([pair[0]], [pair[1]])
            }
            world.at(time + length, "fault end: heal") { world.heal() }
        case .lossyNetwork:
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
        case .serviceStop:
            world.at(time, "fault: SIGTERM \(victim)") {
                world.command(.stopService(factor: .serverShutdown, lastAction: .none, then: .exitProcess), at: victim)
            }
            world.at(time + length + .seconds(3), "fault end: start \(victim)") { world.boot(victim) }
        case .serviceRestart:
            world.at(time, "operator: clpcl -r \(victim)") {
                world.command(.stopService(factor: .serverShutdown, lastAction: .none, then: .restart), at: victim)
            }
        case .serverShutdown:
            // A shut-down server is powered on again later.
            let reboot = random.chance(0.5)
            world.at(time, "operator: clpdown\(reboot ? " -r" : "") at \(victim)") {
                world.command(
                    .stopService(
                        factor: .serverShutdown, lastAction: reboot ? .reboot : .halt, then: .os(reboot ? .reboot : .shutdown)),
                    at: victim)
            }
            if !reboot { world.at(time + length + .seconds(3), "power on \(victim)") { world.boot(victim) } }
        case .clusterShutdown:
            // While anything else may be going on; power returns to the servers at different
            // times (the startup sync wait decides who counts).
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
        case .monitorError:
            let monitor = random.chance(0.5) ? "web-watch" : "db-watch"
            let failures = failures
            world.at(time, "fault: monitor \(monitor) fails on \(victim)") { failures.until["\(victim)/\(monitor)"] = time + length }
        case .recoveryScriptFailure:
            // With a db-watch error at the same time, so the script runs.
            let failures = failures
            world.at(time, "fault: recovery scripts and db-watch fail on \(victim)") {
                failures.until["\(victim)/recovery-script"] = time + length
                failures.until["\(victim)/db-watch"] = time + length
            }
        case .groupCommands:
            // One command, or two or three on the same group at the same moment from different
            // servers (operators racing): each accepted one is followed to its end like the
            // CLI does (see `checkCommandsEnd`).
            let groups = world.config.groups
            let group = groups[Int.random(in: 0..<groups.count, using: &random)].name
            let racing = random.chance(0.4) ? Int.random(in: 2...min(3, names.count), using: &random) : 1
            for index in 0..<racing {
                let origin = index == 0 ? victim : any(names)
                let target = any(names)
                let command: ClusterCommand
                switch Int.random(in: 0..<4, using: &random) {
                case 0: command = .startGroup(group, on: random.chance(0.5) ? target : nil)
                case 1: command = .stopGroup(group)
                default: command = .moveGroup(group, to: random.chance(0.5) ? target : nil)
                }
                let accepted = accepted
                world.at(time, "operator: \(command) at \(origin)") {
                    if let ticket = world.command(command, at: origin).ticket { accepted.list.append(ticket) }
                }
            }
        case .resourceCommands:
            let resources = world.config.groups.flatMap { $0.resources.map(\.name) }
            let resource = resources[Int.random(in: 0..<resources.count, using: &random)]
            world.at(time, "operator: clprsc -t \(resource) at \(victim)") { world.command(.stopResource(resource), at: victim) }
            let origin = any(names)
            world.at(time + length, "operator: clprsc -s \(resource) at \(origin)") {
                world.command(.startResource(resource), at: origin)
            }
        case .suspendResume:
            let origin = any(names)
            world.at(time, "operator: clpcl --suspend at \(victim)") { world.command(.suspendCluster, at: victim) }
            world.at(time + length, "operator: clpcl --resume at \(origin)") { world.command(.resumeCluster, at: origin) }
        case .keyMismatch:
            injectKeyMismatch(at: time, victim: victim, length: length, crash: random.chance(0.5))
        case .stateWriteFailure:
            world.at(time, "fault: the state folder of \(victim) is full") { world.stateWritesFail.insert(victim) }
            if random.chance(0.5) {
                world.at(time + length / 2, "fault: crash \(victim) while its state folder is full") { world.crash(victim) }
                world.at(time + length / 2 + .seconds(1), "fault end: reboot \(victim)") { world.boot(victim) }
            }
            world.at(time + length, "fault end: the state folder of \(victim) has room") { world.stateWritesFail.remove(victim) }
        }
    }

    /// A key mismatch (`Fault.keyMismatch`); drawn by `Simulation.scheduleKeyMismatches` from a
    /// generator of its own, so that the fault table's draws (and the regression seeds'
    /// schedules) stay as they were.
    func injectKeyMismatch(at time: EngineTime, victim: ServerName, length: Duration, crash: Bool) {
        let world = world
        // The key file changes at once; a daemon reads it when it starts and keeps that key
        // until it exits (`SimulatedCluster.boot`): a daemon stopping slowly still speaks with
        // the key it started with, and whatever boots the server next takes the file's key.
        if crash {
            world.at(time, "fault: crash \(victim); it boots with another cluster key") {
                world.crash(victim)
                world.keyFileReplaced.insert(victim)
            }
            bootWhenDown(victim, from: time + .seconds(1), "fault: \(victim) boots (another key)")
        } else {
            world.at(time, "fault: clpcl -r \(victim) after its key file was replaced by another") {
                world.keyFileReplaced.insert(victim)
                world.command(.stopService(factor: .serverShutdown, lastAction: .none, then: .exitProcess), at: victim)
            }
            bootWhenDown(victim, from: time + .seconds(1), "fault: \(victim) starts (another key)")
        }
        world.at(time + .seconds(1) + length, "fault end: the key file of \(victim) is fixed; it restarts") {
            world.keyFileReplaced.remove(victim)
            world.command(.stopService(factor: .serverShutdown, lastAction: .none, then: .exitProcess), at: victim)
        }
        bootWhenDown(victim, from: time + .seconds(2) + length, "fault end: \(victim) starts (the cluster's key)")
    }

    /// Boots the server once it is down: its ordered stop may take a while (tries every second
    /// for ten seconds; `boot` does nothing to a server that runs).
    func bootWhenDown(_ name: ServerName, from time: EngineTime, _ label: String) {
        let world = world
        for attempt in 0..<10 {
            world.at(time + .seconds(attempt), attempt == 0 ? label : "") { world.boot(name) }
        }
    }

    /// Everything healed and up, scripts quick and successful, stopped services started, the
    /// cluster resumed: then every wanted group must be placed (I4).
    func quiet(at quiet: EngineTime) {
        let world = world
        let names = names
        let failures = failures
        world.at(quiet, "quiet: heal everything") {
            world.heal()
            world.keyMismatch = []
            world.keyFileReplaced = []
            world.bootedWithReplacedKey = []
            world.unreachablePingTargets = []
            world.lossRate = 0
            world.duplicateRate = 0
            world.delayRange = .milliseconds(1) ... .milliseconds(5)
            world.stateWritesFail = []
            failures.until = [:]
            world.scriptModel = { _, _, random in (random.duration(.milliseconds(5) ... .milliseconds(300)), .success(asyncPID: nil)) }
            for name in names where world.engine(name) == nil { world.boot(name) }
            for name in names {
                if let engine = world.engine(name), engine.service == .stopped {
                    world.command(.startService, at: name)
                }
            }
        }
        // A suspension whose resume was lost (its server was down) is resumed by the operator,
        // who tries again while the cluster has no master yet (seed 9961041: the one try came
        // while the servers were still choosing theirs, and the cluster stayed suspended).
        for attempt in 0..<5 {
            world.at(quiet + .seconds(10 + 2 * attempt), attempt == 0 ? "quiet: clpcl --resume if still suspended" : "") {
                guard names.contains(where: { world.engine($0)?.directory?.suspended == true }),
                    let origin = names.first(where: { world.engine($0)?.service == .running })
                else { return }
                world.command(.resumeCluster, at: origin)
            }
        }
    }

    /// A server whose stop was still under way at the quiet point (an ordered stop waits up
    /// to its timeout, then the OS goes down) is down now: power it on as well, and give the
    /// cluster the same time again.
    func powerOnLateServers() {
        let world = world
        let late = names.filter { world.engine($0) == nil || world.engine($0)?.service == .stopped }
        guard !late.isEmpty else { return }
        world.at(world.now, "quiet: power on \(late), which went down after the quiet point") {
            for name in late where world.engine(name) == nil { world.boot(name) }
            for name in late where world.engine(name)?.service == .stopped { world.command(.startService, at: name) }
        }
        world.run(until: world.now + .seconds(20))
    }
}

/// Accepted group commands of a schedule, in order.
/// The tickets of accepted commands, and which of them a CLI following it would have seen end.
final class Tickets {
    var list: [OperationTicket] = []
    var ended: Set<Int> = []

    var open: [OperationTicket] { list.indices.filter { !ended.contains($0) }.map { list[$0] } }
}

/// Which monitors (and recovery scripts) fail where, changed by scheduled faults.
final class MonitorFailures {
    var until: [String: EngineTime] = [:]
}
