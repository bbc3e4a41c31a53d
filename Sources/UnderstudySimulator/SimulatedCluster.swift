import Foundation
import UnderstudyEngine
import UnderstudyModel

/// A deterministic world for Engines: a simulated clock, a network that can lose, delay,
/// duplicate and partition heartbeats, servers that crash, freeze and restart, and scripts
/// that are slow, fail or hang. Nothing here reads a real clock or touches the machine.
public final class SimulatedCluster {
    /// How scripts behave: duration and result of one resource run.
    public typealias ScriptModel = (_ server: ServerName, _ run: ResourceRun, _ random: inout SeededRandom) -> (Duration, ResourceOutcome)

    /// A class so the world mutates servers in place (no copies of whole Engines).
    public final class Server {
        public let name: ServerName
        public var engine: ServerEngine?
        /// Bumped on every crash or restart: timers of an earlier life are ignored.
        var incarnation = 0
        /// `sparseTicks`: the tick timer's one valid event (`Event.sparseTick`) and its time.
        var tickToken = 0
        var nextTickAt: EngineTime = .zero
        var frozenUntil: EngineTime?
        /// When its Engine last handled an event: the daemon writes the lease file then
        /// (`hasValidLease`).
        var lastEventAt: EngineTime = .zero
        /// The state file's content (nil: never written). Kept as a value and put through the
        /// daemon's encoding when the server boots and reads it back: the same round trip as
        /// the daemon's, without encoding every write (most are overwritten unread).
        var persisted: PersistentState?
        /// The abnormal-stop marker of the state dir.
        var markerPresent = false
        var lastBootID: UInt64 = 0
        /// Each applied directory (epoch, version), to check that they never go backwards.
        var lastAdopted: (term: UInt64, version: UInt64, resets: Int)?
        /// Monitors the Engine started, with their run.
        var runningMonitors: [String: UInt64] = [:]
        /// What the Engine's actions left active on this server, by group (see Invariants.swift):
        /// a resource from the moment its start was ordered until a stop of it finished, the
        /// group was fenced or the server went down. I1 is judged on this, not on the Engine's
        /// own bookkeeping, so an Engine bug cannot hide its own violation.
        var activeResources: [GroupName: Set<ResourceName>] = [:]
        /// Resource runs ordered and not finished yet, by run id.
        var runsInFlight: [UInt64: ResourceRun] = [:]
        /// Runs that finished and wait for their daemon to hand them to the Engine together
        /// (`batchesResourceCompletions`).
        var finishedRuns: [ResourceCompletion] = []
        /// Its daemon's heartbeat state, as sender and as receiver (HeartbeatStateSync.swift).
        var outbox = HeartbeatOutbox()
        var inbox = HeartbeatInbox(fetchTimeout: .seconds(1))
        /// Senders of held heartbeats whose report to the Engine is scheduled.
        var withoutStateReports: Set<ServerName> = []

        init(name: ServerName) { self.name = name }
    }

    enum Event {
        case tick(ServerName, incarnation: Int)
        /// `sparseTicks`: the tick loop's wake-up; only the newest (`token`) counts.
        case sparseTick(ServerName, incarnation: Int, token: Int)
        case heartbeatTimer(ServerName, incarnation: Int)
        /// One heartbeat, shared by all its copies in flight (a heartbeat is large: events are
        /// copied as the queue reorders them).
        case deliver(SentHeartbeat, to: ServerName, path: String)
        /// A server asks a peer over the control channel for the state of its heartbeats.
        case stateRequest(from: ServerName, to: ServerName, incarnation: Int, since: UInt64, of: ServerInstance, path: String)
        /// The answer, back at the server that asked.
        case stateReply(SentHeartbeat, to: ServerName, incarnation: Int, path: String)
        /// Datagrams from `from` that fail authentication at `to` (another key): a targeted
        /// event, so a frozen receiver handles them only when it resumes, as its socket
        /// queues them (handed over untargeted, they ran a frozen Engine: seed 22200397).
        case unauthenticated(from: ServerName, to: ServerName)
        /// The daemon's report (about once a second) of senders whose heartbeats it held
        /// without their state (`EngineEvent.heartbeatsWithoutState`).
        case withoutState(from: ServerName, to: ServerName, incarnation: Int)
        case runDone(ServerName, incarnation: Int, runID: UInt64, outcome: ResourceOutcome)
        /// The daemon hands the runs that finished meanwhile to its Engine in one event.
        case deliverFinishedRuns(ServerName, incarnation: Int)
        case pingDone(ServerName, incarnation: Int, probeID: UInt64, reachable: Bool)
        case restart(ServerName)
        case action(String, () -> Void)
        case monitorCheck(ServerName, incarnation: Int, monitor: String, run: UInt64)
        case recoveryScriptDone(ServerName, incarnation: Int, id: UInt64)
        case forcedStopDone(ServerName, incarnation: Int, id: UInt64, succeeded: Bool)
        /// The keeper of `sender`'s dead daemon tells `to` that it fenced what that run held.
        case keeperNotice(sender: ServerName, instance: ServerInstance, to: ServerName)
    }

    struct Scheduled {
        var time: EngineTime
        var sequence: UInt64
        var event: Event
    }

    struct QueueKey {
        var time: EngineTime
        var sequence: UInt64
        var slot: Int
    }

    public let config: ClusterConfig
    public private(set) var now: EngineTime = .zero
    public private(set) var servers: [ServerName: Server] = [:]
    public var random: SeededRandom
    public var scriptModel: ScriptModel
    /// Network conditions.
    public var lossRate = 0.0
    public var duplicateRate = 0.0
    public var delayRange: ClosedRange<Duration> = .milliseconds(1) ... .milliseconds(5)
    /// Directed links that drop everything: (from, to).
    public var blocked: Set<[ServerName]> = []
    /// Directed links whose LAN paths (`lanhb`, and the control channel that runs over the
    /// LAN) drop everything while the disk and serial paths still carry heartbeats.
    public var lanCut: Set<[ServerName]> = []
    /// Servers that run a configuration of their own (a file that differs from the others':
    /// another hash, and whatever else the test changed in it).
    public var configOverrides: [ServerName: ClusterConfig] = [:]
    /// The configuration version each server runs (`applyConfiguration`); 0 when not listed.
    public var configVersions: [ServerName: UInt64] = [:]
    /// Every monitor check, when a test asks for them (`recordMonitorChecks`).
    public var recordMonitorChecks = false
    public private(set) var monitorChecks: [(server: ServerName, monitor: String, time: EngineTime)] = []
    /// How many log entries each server wrote, by "server module id" (floods show here).
    public private(set) var logCounts: [String: Int] = [:]
    /// Decides, for a test, whether a heartbeat reaches a peer (true) or is lost (false):
    /// losses that depend on what the heartbeat says (`from`, `to`, the heartbeat).
    public var heartbeatFilter: ((ServerName, ServerName, Heartbeat) -> Bool)?
    /// Servers whose pings to the `pingnp` targets get no answer (their uplink is cut). With
    /// `httpnp`, their questions to the witness get no answer either.
    public var unreachablePingTargets: Set<ServerName> = []
    /// The witness of `httpnp` (nil without one): the real decision rule, fed with the
    /// witness's uptime; `restartWitness` forgets everything, as a restarted witness does.
    public private(set) var witness: WitnessArbiter?
    public private(set) var witnessStartedAt: EngineTime = .zero
    /// The witness process is down: every question goes unanswered.
    public var witnessDown = false
    /// Bounded log of what happened, printed when an invariant breaks.
    public private(set) var trace: [String] = []
    public var traceLimit = 400
    public private(set) var violations: [String] = []
    var violatedKinds: Set<String> = []
    /// Servers' OS actions, as a test would see them recorded.
    public private(set) var osActions: [(ServerName, OSAction)] = []
    /// Power-off commands sent to UPSes (upsw monitors) after a power-failure shutdown.
    public private(set) var powerOffs: [(ServerName, [String])] = []
    /// Every resource run any server started, in order.
    public private(set) var runLog: [(server: ServerName, run: ResourceRun, at: EngineTime)] = []
    /// What a monitor's check finds on a server at the current time (default: Normal).
    public var monitorModel: (_ server: ServerName, _ monitor: String, _ now: EngineTime) -> MonitorResult = { _, _, _ in .normal }
    /// How long each check takes (reported with the result; the delay warning reads it).
    public var monitorElapsed: (_ server: ServerName, _ monitor: String) -> Duration = { _, _ in .milliseconds(1) }
    /// What a upsw monitor's UPS says about its power (nil: nothing, as other monitors).
    public var powerModel: (_ server: ServerName, _ monitor: String, _ now: EngineTime) -> PowerState? = { _, _, _ in nil }
    /// Whether a recovery script fails on a server at the current time (default: never).
    public var recoveryScriptFails: (_ server: ServerName, _ now: EngineTime) -> Bool = { _, _ in false }
    /// Servers whose state folder cannot be written now (full): their writes are lost, as the
    /// daemon logs and goes on.
    public var stateWritesFail: Set<ServerName> = []
    /// Servers that run with a cluster key of their own (each its own): heartbeats between one
    /// of them and any other server fail authentication; the receiver learns only that
    /// datagrams came from the sender's address (`EngineEvent.unauthenticatedHeartbeats`).
    public var keyMismatch: Set<ServerName> = []
    /// Servers whose key file holds another key than the cluster's: the daemon that boots
    /// next runs with it (`keyMismatch` from then), one that runs keeps the key it started
    /// with until it exits.
    public var keyFileReplaced: Set<ServerName> = []
    /// Servers in `keyMismatch` because they booted with a replaced key file.
    var bootedWithReplacedKey: Set<ServerName> = []
    /// What a forced stop of `target` ordered by `server` does: how long until the agent
    /// reports, whether it reports success, and when (after the order) the target's power goes
    /// off (nil: never), and whether it boots again (a power cycle) some seconds later.
    public var forcedStopModel: (_ server: ServerName, _ target: ServerName, _ random: inout SeededRandom) -> ForcedStopBehaviour = {
        _, _, random in
        let after = random.duration(.milliseconds(50) ... .seconds(1))
        return ForcedStopBehaviour(reportAfter: after, succeeded: true, powerOffAfter: after, bootsAgainAfter: nil)
    }
    /// Every forced stop ordered: by whom, of whom, when.
    public private(set) var forcedStopLog: [(server: ServerName, target: ServerName, at: EngineTime)] = []
    /// Every recovery script any server ran, in order.
    public private(set) var recoveryScriptLog: [(server: ServerName, run: RecoveryScriptRun, at: EngineTime)] = []

    /// Events by (time, sequence): ties keep insertion order. The heap holds plain keys; the
    /// events wait in `pending` (a heap moves its elements as it reorders them, and events
    /// carry strings and heartbeats that would be retained and released on every move).
    var queue = MinHeap<QueueKey> { a, b in a.time < b.time || (a.time == b.time && a.sequence < b.sequence) }
    var pending: [Event?] = []
    var freeSlots: [Int] = []
    var sequence: UInt64 = 0
    let tickInterval: Duration
    let paths: [String]
    /// The `lanhb` paths (what `lanCut` cuts).
    let lanPaths: Set<String>
    let serverNames: [ServerName]
    /// The largest heartbeat the configuration can produce (see `deliver(_:from:)`); a test
    /// may lower it to see the check catch a heartbeat.
    public var heartbeatBudget: Int
    /// Finished resource runs reach the Engine in batches, after a delay of up to
    /// `batchDelayRange` (the daemon's busy actor), as `EngineEvent.resourcesFinished`; off:
    /// each at once, alone (the trajectories of the recorded regression seeds).
    public var batchesResourceCompletions = false
    /// Every tick an Engine answers the short way (before its `quietUntil`) is checked against
    /// the full step on a copy; a difference is a violation (QuietTicks.swift).
    public var verifiesQuietTicks = true
    /// Each server ticks as the daemon's tick loop does: at the Engine's `quietUntil` (at
    /// least a tick period ahead, at most the daemon's housekeeping period), brought forward
    /// whenever a step brings `quietUntil` forward; off: every tick period (the trajectories
    /// of the recorded regression seeds). The heartbeat timer ticks every interval either way.
    public var sparseTicks = false
    /// The daemon's housekeeping period, which also wakes its tick loop.
    static let tickLoopHousekeeping: Duration = .seconds(1)
    /// Ticks delivered, and how many an Engine answered the short way.
    public private(set) var ticksDelivered = 0
    public private(set) var quietTicksDelivered = 0
    static let batchDelayRange: ClosedRange<Duration> = .zero ... .milliseconds(20)
    /// How many `resourcesFinished` events of more than one run were delivered.
    public private(set) var completionBatchesDelivered = 0
    /// Every n-th heartbeat is encoded and sized against the budget (1: every one).
    public var heartbeatSizeCheckInterval = 1
    var heartbeatsSent: UInt64 = 0
    /// On how many servers each group is active (see Invariants.swift).
    var activeHolders: [GroupName: Int] = [:]
    /// Called every `pollInterval` of simulated time while events run (an operator's CLI
    /// following its commands, see `Schedule.followTickets`).
    public var poll: (() -> Void)?
    public var pollInterval: Duration = .milliseconds(250)
    var lastPollAt: EngineTime = .zero
    /// `heartbeatBudget`: `HeartbeatBudget.estimate(config).bytes`, when the caller has it.
    public init(config: ClusterConfig, seed: UInt64, scriptModel: ScriptModel? = nil, heartbeatBudget: Int? = nil) {
        self.config = config
        self.random = SeededRandom(seed: seed)
        self.scriptModel = scriptModel ?? { _, _, _ in (.milliseconds(50), .success(asyncPID: nil)) }
        let interval = config.cluster.timing.heartbeatInterval
        // The Engine treats a longer gap between events as a stall of its server.
        self.tickInterval = ServerEngine.tickPeriod(interval: interval)
        self.paths = config.heartbeats.map(\.name)
        self.lanPaths = Set(config.heartbeats.filter { $0.typeName == "lanhb" }.map(\.name))
        self.serverNames = config.serverNames
        self.heartbeatBudget = heartbeatBudget ?? HeartbeatBudget.estimate(config).bytes
        for server in serverNames { servers[server] = Server(name: server) }
        if config.networkPartition.contains(where: { $0.typeName == "httpnp" }) { witness = WitnessArbiter() }
    }

    /// The witness restarts: it forgets every contact and grant and starts its quiet period.
    public func restartWitness() {
        guard witness != nil else { return }
        witness = WitnessArbiter()
        witnessStartedAt = now
        note("witness restarts")
    }

    /// What `name`'s partition probe finds: the ping targets (if any) answer and, with a
    /// witness, the witness grants survival; and how long the probe takes.
    func probe(_ name: ServerName, targets: [String]) -> (reachable: Bool, after: Duration) {
        let timeout = servers[name]?.engine?.pingTimeout ?? .seconds(1)
        let quick = { self.random.duration(.milliseconds(1) ... .milliseconds(30)) }
        guard var arbiter = witness else {
            let reachable = !unreachablePingTargets.contains(name)
            return (reachable, reachable ? quick() : timeout)
        }
        if witnessDown || unreachablePingTargets.contains(name) { return (false, timeout) }
        let view = Set(servers[name]?.engine?.currentView(now: now) ?? [name])
        let verdict = arbiter.decide(
            WitnessArbiter.Request(
                server: name, servers: serverNames, view: view, heartbeatTimeout: config.cluster.timing.heartbeatTimeout),
            at: now - witnessStartedAt)
        witness = arbiter
        if verdict != .granted { note("witness: \(name) (sees \(view.sorted())) \(verdict)") }
        return (verdict == .granted, quick())
    }

    // MARK: - Faults and operations

    /// Boots a server's daemon: a new Engine with the persisted state, then the service.
    public func boot(_ name: ServerName) {
        guard let server = servers[name], server.engine == nil else { return }
        // The daemon reads its key file as it starts.
        if keyFileReplaced.contains(name) {
            keyMismatch.insert(name)
            bootedWithReplacedKey.insert(name)
        } else if bootedWithReplacedKey.remove(name) != nil {
            keyMismatch.remove(name)
        }
        server.incarnation += 1
        server.lastBootID += 1
        let own = configOverrides[name]
        // Through the real encoding: what the daemon would read back.
        var persisted = PersistentState()
        if let written = server.persisted {
            do {
                let data = try Self.stateEncoder.encode(written)
                persisted = try JSONDecoder().decode(PersistentState.self, from: data)
            } catch {
                violate("the state file of \(name) does not encode and decode: \(error)")
            }
        }
        var engine = ServerEngine(
            config: own ?? config, me: name, bootID: server.lastBootID, configHash: Self.configHash(own ?? config),
            configVersion: configVersions[name] ?? 0, persisted: persisted, abnormalStop: server.markerPresent)
        server.markerPresent = true
        server.frozenUntil = nil
        server.lastAdopted = nil
        server.outbox = HeartbeatOutbox(measure: Self.measureDelta)
        server.inbox = HeartbeatInbox(fetchTimeout: Self.fetchTimeout(config.cluster.timing))
        server.withoutStateReports = []
        engine.verifiesQuietTicks = verifiesQuietTicks
        let actions = engine.startService(now: now)
        server.engine = engine
        note("\(name) boots (boot \(server.lastBootID))")
        perform(actions, on: name)
        if sparseTicks {
            scheduleSparseTick(name, at: now + tickInterval)
        } else {
            schedule(.tick(name, incarnation: server.incarnation), after: tickInterval)
        }
        schedule(.heartbeatTimer(name, incarnation: server.incarnation), after: .milliseconds(1))
    }

    /// The machine dies: every process with it.
    public func crash(_ name: ServerName) {
        guard let server = servers[name], server.engine != nil else { return }
        server.engine = nil
        server.incarnation += 1
        server.frozenUntil = nil
        server.runningMonitors = [:]
        wentDown(name)
        note("\(name) crashes")
    }

    /// The daemon dies without a goodbye (kill -9): its keeper fences what it held — at once
    /// here, like a crash — and then tells every peer it reaches on a LAN path that this run
    /// of the daemon died (KeeperNotices.swift), after `fenceTime`. The machine stays up; its
    /// daemon comes back with `boot`.
    public func daemonDies(_ name: ServerName, fenceTime: Duration) {
        guard let instance = servers[name]?.engine?.instance else { return }
        crash(name)
        note("\(name)'s daemon dies (run \(instance)); its keeper fences")
        schedule(
            .action("keeper of \(name) tells its peers", { [weak self] in self?.sendKeeperNotices(from: name, instance: instance) }),
            after: fenceTime)
    }

    /// One notice per LAN path and peer, lost, delayed or cut like a heartbeat.
    func sendKeeperNotices(from name: ServerName, instance: ServerInstance) {
        for peer in config.serverNames where peer != name {
            guard !blocked.contains([name, peer]), !lanCut.contains([name, peer]) else { continue }
            if keyMismatch.contains(name) || keyMismatch.contains(peer) { continue }
            for _ in lanPaths where !random.chance(lossRate) {
                schedule(.keeperNotice(sender: name, instance: instance, to: peer), after: random.duration(delayRange))
            }
        }
    }

    /// The whole server stops (VM pause) for `duration`, then goes on with stale state.
    public func freeze(_ name: ServerName, for duration: Duration) {
        guard let server = servers[name], server.engine != nil else { return }
        // A freeze during a freeze ends with the later one: events that came due meanwhile
        // wait for the end the server had when they came (`process`).
        server.frozenUntil = max(server.frozenUntil ?? now, now + duration)
        note("\(name) freezes for \(duration)")
    }

    /// The whole host stops (every server is a VM on it, or the hypervisor stalls them all)
    /// for `duration`.
    public func freezeAll(for duration: Duration) {
        for name in serverNames where servers[name]?.engine != nil {
            servers[name]?.frozenUntil = max(servers[name]?.frozenUntil ?? now, now + duration)
        }
        note("every server freezes for \(duration)")
    }

    public func partition(_ sideA: [ServerName], _ sideB: [ServerName], oneWay: Bool = false) {
        for a in sideA {
            for b in sideB {
                blocked.insert([a, b])
                if !oneWay { blocked.insert([b, a]) }
            }
        }
        note("partition \(sideA) \(oneWay ? "->" : "|") \(sideB)")
    }

    /// The LAN paths between the sides fail (both ways); a disk or serial path still
    /// carries heartbeats.
    public func cutLAN(_ sideA: [ServerName], _ sideB: [ServerName]) {
        for a in sideA {
            for b in sideB {
                lanCut.insert([a, b])
                lanCut.insert([b, a])
            }
        }
        note("LAN cut \(sideA) | \(sideB); \(paths.filter { !lanPaths.contains($0) }) still carry heartbeats")
    }

    public func heal() {
        blocked = []
        lanCut = []
        note("network healed")
    }

    /// Heals one direction only: `sideB` hears `sideA` again.
    public func heal(from sideA: [ServerName], to sideB: [ServerName]) {
        for a in sideA {
            for b in sideB { blocked.remove([a, b]) }
        }
        note("network healed from \(sideA) to \(sideB)")
    }

    /// An operator command at a server, forwarded the way the daemons forward it.
    @discardableResult
    public func command(_ command: ClusterCommand, at name: ServerName) -> CommandResult {
        guard servers[name]?.engine != nil, servers[name]?.frozenUntil == nil,
            let (disposition, actions) = servers[name]?.engine?.command(command, origin: name, now: now)
        else {
            return CommandResult(.unreachable, "\(name) is not reachable")
        }
        perform(actions, on: name)
        switch disposition {
        case .done(let result):
            note("\(name): \(command) -> \(result.code) \(result.message)")
            return result
        case .forward(let target):
            guard servers[target]?.frozenUntil == nil, !blocked.contains([name, target]), !lanCut.contains([name, target]),
                !keyMismatch.contains(name) && !keyMismatch.contains(target),
                let (forwarded, targetActions) = servers[target]?.engine?.command(command, origin: name, forwarded: true, now: now)
            else {
                return CommandResult(.unreachable, "\(target) is not reachable")
            }
            perform(targetActions, on: target)
            if case .done(let result) = forwarded {
                note("\(name)->\(target): \(command) -> \(result.code) \(result.message)")
                return result
            }
            return CommandResult(.inTransition, "forwarded twice")
        }
    }

    /// Phase 2 of `config apply` (or a fetched version) reaching one server: its Engine runs
    /// `new` from now on, and so does the server after a restart. False when the server is
    /// down or frozen, or its Engine refuses the configuration online (nothing changes then).
    @discardableResult
    public func applyConfiguration(_ new: ClusterConfig, version: UInt64, at name: ServerName) -> Bool {
        guard let engine = servers[name]?.engine, servers[name]?.frozenUntil == nil else { return false }
        if let refusal = engine.refusalToApply(new) {
            note("\(name): configuration version \(version) refused: \(refusal)")
            return false
        }
        guard let actions = servers[name]?.engine?.applyConfiguration(new, hash: Self.configHash(new), version: version, now: now)
        else { return false }
        configOverrides[name] = new
        configVersions[name] = version
        note("\(name): runs configuration version \(version)")
        perform(actions, on: name)
        return true
    }

    /// Runs something at a later simulated time.
    public func at(_ time: EngineTime, _ label: String, _ body: @escaping () -> Void) {
        push(Scheduled(time: time, sequence: nextSequence(), event: .action(label, body)))
    }

    // MARK: - Running

    /// Processes events until `time`, checking invariants after every event.
    public func run(until time: EngineTime) {
        while let first = queue.peek, first.time <= time, let item = popEarliest() {
            now = max(now, item.time)
            process(item)
            // An event for one server changes only that server: only its groups can newly
            // break I1 (actions, such as faults and commands, may change any server).
            if let target = target(of: item.event) { checkInvariants(touching: target) } else { checkInvariants() }
            if let poll, now - lastPollAt >= pollInterval {
                lastPollAt = now
                poll()
            }
        }
        now = max(now, time)
    }

    public func run(for duration: Duration) { run(until: now + duration) }

    func process(_ item: Scheduled) {
        if let target = target(of: item.event), let frozenUntil = servers[target]?.frozenUntil {
            if now < frozenUntil {
                push(Scheduled(time: frozenUntil, sequence: nextSequence(), event: item.event))
                return
            }
            servers[target]?.frozenUntil = nil
            note("\(target) resumes")
            // The resumed process looks at its clock first (its tick loop), whatever the
            // event: a stale event it would drop must not hide the stall from it.
            deliver(.tick, to: target)
        }
        switch item.event {
        case .tick(let name, let incarnation):
            guard servers[name]?.incarnation == incarnation else { return }
            deliver(.tick, to: name)
            schedule(.tick(name, incarnation: incarnation), after: tickInterval)
        case .sparseTick(let name, let incarnation, let token):
            guard servers[name]?.incarnation == incarnation, servers[name]?.tickToken == token else { return }
            // As the tick loop: asleep no more while this tick is handled.
            servers[name]?.nextTickAt = now
            deliver(.tick, to: name)
            guard let quietUntil = servers[name]?.engine?.quietUntil else { return }
            let regular = now + tickInterval
            scheduleSparseTick(name, at: min(max(regular, quietUntil), max(regular, now + Self.tickLoopHousekeeping)))
        case .heartbeatTimer(let name, let incarnation):
            guard servers[name]?.incarnation == incarnation else { return }
            // As the daemon does: look at the clock (and notice a stall) before speaking.
            deliver(.tick, to: name)
            sendHeartbeat(from: name)
            schedule(.heartbeatTimer(name, incarnation: incarnation), after: config.cluster.timing.heartbeatInterval)
        case .deliver(let sent, let name, let path):
            receive(sent.datagram, at: name, path: path)
        case .stateRequest(let requester, let name, let incarnation, let since, let instance, let path):
            // Answered by the sender's daemon as it is now (the reply: its last heartbeat).
            guard let server = servers[name], server.engine != nil,
                let reply = server.outbox.reply(since: since, of: instance), controlChannelCarries(from: name, to: requester)
            else { return }
            schedule(
                .stateReply(SentHeartbeat(reply), to: requester, incarnation: incarnation, path: path),
                after: random.duration(delayRange) * 2)
        case .stateReply(let sent, let name, let incarnation, let path):
            guard let server = servers[name], server.incarnation == incarnation, server.engine != nil else { return }
            if let heartbeat = server.inbox.receive(reply: sent.datagram, now: now) {
                deliver(.heartbeat(heartbeat, path: path), to: name)
            }
        case .runDone(let name, let incarnation, let runID, let outcome):
            guard servers[name]?.incarnation == incarnation else { return }
            runFinished(runID, outcome: outcome, on: name)
            guard batchesResourceCompletions else {
                deliver(.resourceFinished(runID: runID, outcome: outcome), to: name)
                return
            }
            // As the daemon does when its actor is busy: the first run queues the delivery,
            // those that finish before it join it.
            servers[name]?.finishedRuns.append(ResourceCompletion(runID: runID, outcome: outcome))
            if servers[name]?.finishedRuns.count == 1 {
                schedule(.deliverFinishedRuns(name, incarnation: incarnation), after: random.duration(Self.batchDelayRange))
            }
        case .deliverFinishedRuns(let name, let incarnation):
            guard servers[name]?.incarnation == incarnation, let finished = servers[name]?.finishedRuns, let first = finished.first
            else { return }
            servers[name]?.finishedRuns = []
            if finished.count > 1 { completionBatchesDelivered += 1 }
            deliver(
                finished.count == 1
                    ? .resourceFinished(runID: first.runID, outcome: first.outcome) : .resourcesFinished(finished), to: name)
        case .pingDone(let name, let incarnation, let probeID, let reachable):
            guard servers[name]?.incarnation == incarnation else { return }
            deliver(.pingProbeFinished(probeID: probeID, reachable: reachable), to: name)
        case .restart(let name):
            boot(name)
        case .monitorCheck(let name, let incarnation, let monitor, let run):
            guard servers[name]?.incarnation == incarnation, servers[name]?.runningMonitors[monitor] == run else { return }
            let result = monitorModel(name, monitor, now)
            if recordMonitorChecks { monitorChecks.append((name, monitor, now)) }
            let check = MonitorCheck(
                monitor: monitor, run: run, result: result, elapsed: monitorElapsed(name, monitor), power: powerModel(name, monitor, now))
            deliver(.monitorChecked(check), to: name)
            // The server's own configuration: an applied one changes the interval.
            if let interval = (configOverrides[name] ?? config).monitors.first(where: { $0.name == monitor })?.interval {
                schedule(.monitorCheck(name, incarnation: incarnation, monitor: monitor, run: run), after: interval)
            }
        case .recoveryScriptDone(let name, let incarnation, let id):
            guard servers[name]?.incarnation == incarnation else { return }
            deliver(.recoveryScriptFinished(id: id, succeeded: !recoveryScriptFails(name, now)), to: name)
        case .forcedStopDone(let name, let incarnation, let id, let succeeded):
            guard servers[name]?.incarnation == incarnation else { return }
            deliver(
                .forcedStopFinished(id: id, succeeded: succeeded, detail: succeeded ? "simulated agent" : "simulated failure"), to: name)
        case .keeperNotice(let sender, let instance, let name):
            guard servers[name]?.engine != nil else { return }
            deliver(.peerDaemonDied(server: sender, instance: instance), to: name)
        case .unauthenticated(let sender, let name):
            deliver(.unauthenticatedHeartbeats(from: [sender]), to: name)
        case .withoutState(let sender, let name, let incarnation):
            guard servers[name]?.incarnation == incarnation else { return }
            servers[name]?.withoutStateReports.remove(sender)
            deliver(.heartbeatsWithoutState(from: [sender]), to: name)
        case .action(let label, let body):
            if !label.isEmpty { note(label) }
            body()
        }
    }

    func target(of event: Event) -> ServerName? {
        switch event {
        case .tick(let name, _), .sparseTick(let name, _, _), .heartbeatTimer(let name, _), .runDone(let name, _, _, _),
            .deliverFinishedRuns(let name, _),
            .pingDone(let name, _, _, _),
            .monitorCheck(let name, _, _, _), .recoveryScriptDone(let name, _, _), .forcedStopDone(let name, _, _, _):
            return name
        case .deliver(_, let name, _), .stateRequest(_, let name, _, _, _, _), .stateReply(_, let name, _, _),
            .unauthenticated(_, let name), .withoutState(_, let name, _), .keeperNotice(_, _, let name):
            return name
        case .restart, .action: return nil
        }
    }

    func deliver(_ event: EngineEvent, to name: ServerName) {
        if case .tick = event, let engine = servers[name]?.engine {
            ticksDelivered += 1
            if engine.tickIsQuiet(now: now) { quietTicksDelivered += 1 }
        }
        guard let actions = servers[name]?.engine?.handle(event, now: now) else { return }
        if verifiesQuietTicks, let mismatches = servers[name]?.engine?.takeQuietTickMismatches(), let first = mismatches.first {
            violate("quiet tick: \(first) at \(now)")
        }
        if sparseTicks { wakeTickLoopIfDue(name) }
        perform(actions, on: name)
    }

    /// `sparseTicks`: the next wake-up of the server's tick loop at `time`; any earlier one is void.
    func scheduleSparseTick(_ name: ServerName, at time: EngineTime) {
        guard let server = servers[name] else { return }
        let token = server.tickToken + 1
        servers[name]?.tickToken = token
        servers[name]?.nextTickAt = time
        push(Scheduled(time: time, sequence: nextSequence(), event: .sparseTick(name, incarnation: server.incarnation, token: token)))
    }

    /// `sparseTicks`, after a step (the daemon's `wakeTickLoopIfDue`): a tick loop asleep past
    /// the Engine's new `quietUntil`, or past the next tick period when ticks are not quiet,
    /// wakes then instead.
    func wakeTickLoopIfDue(_ name: ServerName) {
        guard let server = servers[name], let quietUntil = server.engine?.quietUntil else { return }
        let due = max(quietUntil, now + tickInterval)
        guard due < server.nextTickAt else { return }
        scheduleSparseTick(name, at: due)
    }

    func sendHeartbeat(from name: ServerName, farewell: Bool = false) {
        guard let sends = servers[name]?.engine?.sendsHeartbeats, sends || farewell,
            let heartbeat = servers[name]?.engine?.makeHeartbeat(now: now)
        else { return }
        deliver(heartbeat, from: name)
    }

    /// Puts one heartbeat on the simulated network, to every peer on every path, as the
    /// daemon does: through its sender's outbox (HeartbeatStateSync.swift), as a datagram
    /// with its core, the number of its state and sometimes a delta of that state. Every
    /// datagram must fit in the largest heartbeat `HeartbeatBudget` estimates for the
    /// configuration (what `config check` and the daemon rely on): it is sized as it travels
    /// (`HeartbeatWire`), every `heartbeatSizeCheckInterval`-th one.
    func deliver(_ heartbeat: Heartbeat, from name: ServerName) {
        guard let server = servers[name] else { return }
        heartbeatsSent += 1
        let datagram = server.outbox.prepare(heartbeat)
        if heartbeatsSent % UInt64(max(1, heartbeatSizeCheckInterval)) == 0 {
            let limit = min(heartbeatBudget, HeartbeatBudget.datagramPayloadLimit)
            let inlineJSON = datagram.inline.map { WireJSON.encode($0) }
            let size = HeartbeatWire.encode(datagram, inlineJSON: inlineJSON).count
            if size > limit {
                violate(
                    "heartbeat of \(name) is \(size) bytes: more than the \(heartbeatBudget) estimated for the configuration or the \(HeartbeatBudget.datagramPayloadLimit) a datagram carries"
                )
            }
            if let inlineJSON, inlineJSON.count > HeartbeatOutbox.inlineLimit {
                violate("heartbeat of \(name) carries \(inlineJSON.count) bytes of state, more than \(HeartbeatOutbox.inlineLimit)")
            }
        }
        let sent = SentHeartbeat(datagram)
        for peer in config.serverNames where peer != name {
            guard !blocked.contains([name, peer]) else { continue }
            if let filter = heartbeatFilter, !filter(name, peer, heartbeat) { continue }
            if keyMismatch.contains(name) || keyMismatch.contains(peer) {
                // Fails authentication at the peer: it learns only that the address sends.
                if !random.chance(lossRate) {
                    schedule(.unauthenticated(from: name, to: peer), after: random.duration(delayRange))
                }
                continue
            }
            let lanIsCut = lanCut.contains([name, peer])
            for path in paths {
                if lanIsCut && lanPaths.contains(path) { continue }
                if random.chance(lossRate) { continue }
                let copies = random.chance(duplicateRate) ? 2 : 1
                for _ in 0..<copies {
                    schedule(.deliver(sent, to: peer, path: path), after: random.duration(delayRange))
                }
            }
        }
    }

    /// A datagram arrives at `name`: its daemon's inbox completes it with the sender's state
    /// and hands it to the Engine, or holds it and asks the sender for the state.
    func receive(_ datagram: HeartbeatDatagram, at name: ServerName, path: String) {
        guard let server = servers[name], server.engine != nil else { return }
        let sender = datagram.core.sender
        switch server.inbox.receive(datagram, now: now) {
        case .deliver(let heartbeat):
            deliver(.heartbeat(heartbeat, path: path), to: name)
        case .late:
            break
        case .held:
            noteHeldWithoutState(sender, at: name)
        case .fetch(let since, let instance):
            noteHeldWithoutState(sender, at: name)
            guard controlChannelCarries(from: name, to: sender) else { return }
            schedule(
                .stateRequest(from: name, to: sender, incarnation: server.incarnation, since: since, of: instance, path: path),
                after: random.duration(delayRange) * 2)
        }
    }

    /// As the daemon (`ClusterDaemon.noteHeldWithoutState`): a sender whose heartbeats wait
    /// for their state is present; the first such heartbeat since the last housekeeping is
    /// said at once, the others at the housekeeping (here: at the next whole second; no random
    /// draw, so that the other schedules' draws stay as they were).
    func noteHeldWithoutState(_ sender: ServerName, at name: ServerName) {
        guard let server = servers[name], server.withoutStateReports.insert(sender).inserted else { return }
        deliver(.heartbeatsWithoutState(from: [sender]), to: name)
        let nextSecond = Duration.seconds(Int(now / .seconds(1)) + 1)
        schedule(.withoutState(from: sender, to: name, incarnation: server.incarnation), after: nextSecond - now)
    }

    /// Whether a control-channel message from `name` reaches `peer` now: the control channel
    /// runs over the LAN (TCP on the interconnects), authenticated with the cluster key.
    func controlChannelCarries(from name: ServerName, to peer: ServerName) -> Bool {
        !blocked.contains([name, peer]) && !lanCut.contains([name, peer]) && !lanCut.contains([peer, name])
            && !keyMismatch.contains(name) && !keyMismatch.contains(peer) && !random.chance(lossRate)
    }

    /// A fetch not answered in this long is asked again: a few heartbeat intervals, at least
    /// what a loaded LAN takes.
    static func fetchTimeout(_ timing: TimingSettings) -> Duration {
        max(timing.heartbeatInterval * 2, .milliseconds(100))
    }

    /// The size of a delta as the daemon measures it (its JSON).
    static let measureDelta: @Sendable (StateDelta) -> Int = { WireJSON.encode($0).count }

    func perform(_ actions: [EngineAction], on name: ServerName) {
        servers[name]?.lastEventAt = now
        if let os = actions.lazy.compactMap(\.machineStop).first {
            // As the daemon does: only the state, the log and fences go out first, then the
            // machine is gone at once (a crash: the marker stays) and, for the actions that
            // restart it, boots again a few seconds later.
            for action in actions {
                switch action {
                case .persist, .log, .fenceGroup: perform([action], on: name)
                default: break
                }
            }
            note("\(name): stops the machine at once (\(os.rawValue))")
            osActions.append((name, os))
            crash(name)
            if os.restartsMachine { schedule(.restart(name), after: .seconds(5)) }
            return
        }
        for action in actions {
            switch action {
            case .runResource(let run):
                note(
                    "\(name): \(run.operation.rawValue) \(run.group)/\(run.resource) \(run.context.environment["CLP_EVENT"] ?? "") \(run.context.factor?.rawValue ?? "")"
                )
                runLog.append((name, run, now))
                runOrdered(run, on: name)
                let (duration, outcome) = scriptModel(name, run, &random)
                let incarnation = servers[name]?.incarnation ?? 0
                schedule(.runDone(name, incarnation: incarnation, runID: run.id, outcome: outcome), after: duration)
            case .fenceGroup(let group):
                note("\(name): fence \(group)")
                fenced(group, on: name)
            case .probePingTargets(let probeID, let targets):
                let (reachable, after) = probe(name, targets: targets)
                let incarnation = servers[name]?.incarnation ?? 0
                schedule(.pingDone(name, incarnation: incarnation, probeID: probeID, reachable: reachable), after: after)
            case .sendHeartbeat(let heartbeat):
                deliver(heartbeat, from: name)
            case .sendHeartbeatNow:
                let stopped = !(servers[name]?.engine?.sendsHeartbeats ?? false)
                sendHeartbeat(from: name, farewell: stopped)
            case .persist(let state):
                if stateWritesFail.contains(name) {
                    note("\(name): cannot write its state (state folder full)")
                } else {
                    servers[name]?.persisted = state
                }
            case .serviceStopped(let then):
                note("\(name): service stopped, then \(then)")
                switch then {
                case .stayStopped:
                    break
                case .restart:
                    if let more = servers[name]?.engine?.startService(now: now) {
                        perform(more, on: name)
                    }
                case .exitProcess:
                    servers[name]?.markerPresent = false
                    stopProcess(name)
                case .os(let os):
                    servers[name]?.markerPresent = false
                    osActions.append((name, os))
                    stopProcess(name)
                    if os == .reboot { schedule(.restart(name), after: .seconds(5)) }
                }
            case .stopMachineNow:
                // Handled before the loop.
                break
            case .forceStop(let run):
                forcedStopLog.append((name, run.server, now))
                let behaviour = forcedStopModel(name, run.server, &random)
                note(
                    "\(name): forced stop of \(run.server) (agent reports \(behaviour.succeeded ? "success" : "failure") after \(behaviour.reportAfter); power off \(behaviour.powerOffAfter.map { "after \($0)" } ?? "never"))"
                )
                let incarnation = servers[name]?.incarnation ?? 0
                // The power goes off before an agent that saw it go off reports (scheduled first:
                // at the same time, the earlier entry runs first).
                defer {
                    schedule(
                        .forcedStopDone(name, incarnation: incarnation, id: run.id, succeeded: behaviour.succeeded),
                        after: behaviour.reportAfter)
                }
                if let off = behaviour.powerOffAfter {
                    let target = run.server
                    let boots = behaviour.bootsAgainAfter
                    schedule(
                        .action(
                            "\(target) is powered off by its fencing agent",
                            { [weak self] in
                                guard let self, self.servers[target]?.engine != nil else { return }
                                self.crash(target)
                                if let boots { self.schedule(.restart(target), after: boots) }
                            }), after: off)
                }
            case .powerOffUPS(let monitors):
                powerOffs.append((name, monitors))
                note("\(name): power-off command to the UPS of \(monitors.joined(separator: ", "))")
            case .log(let entry):
                logCounts["\(name) \(entry.module) \(entry.eventID)", default: 0] += 1
                note("\(name) [\(entry.level.rawValue) \(entry.module) \(entry.eventID)] \(entry.message)")
            case .startMonitor(let start):
                servers[name]?.runningMonitors[start.monitor] = start.run
                let incarnation = servers[name]?.incarnation ?? 0
                let firstWait = (configOverrides[name] ?? config).monitors.first(where: { $0.name == start.monitor })?.firstWait ?? .zero
                schedule(
                    .monitorCheck(name, incarnation: incarnation, monitor: start.monitor, run: start.run),
                    after: max(firstWait, .milliseconds(1)))
            case .stopMonitor(let monitor, let run):
                if servers[name]?.runningMonitors[monitor] == run { servers[name]?.runningMonitors[monitor] = nil }
            case .runRecoveryScript(let run):
                note("\(name): recovery script \(run.monitor) \(run.action.rawValue)")
                recoveryScriptLog.append((name, run, now))
                let incarnation = servers[name]?.incarnation ?? 0
                schedule(.recoveryScriptDone(name, incarnation: incarnation, id: run.id), after: .milliseconds(20))
            }
        }
        trackAdoption(name)
    }

    func stopProcess(_ name: ServerName) {
        servers[name]?.engine = nil
        servers[name]?.runningMonitors = [:]
        servers[name]?.incarnation += 1
        wentDown(name)
    }

    func violate(_ message: String) {
        // Once per kind: the same violation at every later step adds nothing.
        let kind = message.range(of: " at ", options: .backwards).map { String(message[..<$0.lowerBound]) } ?? message
        guard violatedKinds.insert(kind).inserted else { return }
        violations.append(message)
        note("VIOLATION " + message)
        if traceAtFirstViolation == nil { traceAtFirstViolation = trace }
    }

    /// The trace as it was when the first invariant broke (what a failing seed prints).
    public private(set) var traceAtFirstViolation: [String]?

    func note(_ line: String) {
        trace.append("\(now.inMilliseconds)ms \(line)")
        if trace.count > traceLimit * 2 { trace.removeFirst(trace.count - traceLimit) }
    }

    // MARK: - Queue

    func schedule(_ event: Event, after delay: Duration) {
        push(Scheduled(time: now + delay, sequence: nextSequence(), event: event))
    }

    func nextSequence() -> UInt64 {
        sequence += 1
        return sequence
    }

    func push(_ item: Scheduled) {
        let slot: Int
        if let free = freeSlots.popLast() {
            slot = free
            pending[slot] = item.event
        } else {
            slot = pending.count
            pending.append(item.event)
        }
        queue.push(QueueKey(time: item.time, sequence: item.sequence, slot: slot))
    }

    func popEarliest() -> Scheduled? {
        guard let key = queue.pop(), let event = pending[key.slot] else { return nil }
        pending[key.slot] = nil
        freeSlots.append(key.slot)
        return Scheduled(time: key.time, sequence: key.sequence, event: event)
    }

    // MARK: - Looking at the world

    public func engine(_ name: ServerName) -> ServerEngine? { servers[name]?.engine }

    public func isFrozen(_ name: ServerName) -> Bool { servers[name]?.frozenUntil != nil }

    /// Monitors whose probe the Engine has running on a server.
    public func runningMonitors(on name: ServerName) -> [String] {
        (servers[name]?.runningMonitors.keys).map { $0.sorted() } ?? []
    }

    /// Servers (running, not frozen) where a group holds resources, with its status.
    public func placement(of group: GroupName) -> [ServerName: ActivationStatus] {
        var result: [ServerName: ActivationStatus] = [:]
        for name in config.serverNames {
            guard let engine = servers[name]?.engine, servers[name]?.frozenUntil == nil else { continue }
            let status = engine.localStatus(of: group)
            if status.holdsResources { result[name] = status }
        }
        return result
    }
}

extension SimulatedCluster {
    /// The daemon's encoding of its state file (StateStore: JSON with sorted keys).
    static let stateEncoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }()
}

/// A heartbeat on the simulated network (read-only once sent).
/// A datagram on the simulated network (shared by its copies to every peer and path).
final class SentHeartbeat {
    let datagram: HeartbeatDatagram
    init(_ datagram: HeartbeatDatagram) { self.datagram = datagram }
}

extension SimulatedCluster {
    /// A configuration's identity as the daemon computes it (the canonical model; no scripts
    /// in the simulator), hashed with FNV-1a: servers that run the same configuration agree.
    static func configHash(_ config: ClusterConfig) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in CanonicalForm.text(of: config).utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x100_0000_01b3
        }
        return String(hash, radix: 16)
    }
}

/// What one simulated forced stop does (`SimulatedCluster.forcedStopModel`).
public struct ForcedStopBehaviour: Sendable, Equatable {
    public var reportAfter: Duration
    public var succeeded: Bool
    public var powerOffAfter: Duration?
    public var bootsAgainAfter: Duration?

    public init(reportAfter: Duration, succeeded: Bool, powerOffAfter: Duration?, bootsAgainAfter: Duration?) {
        self.reportAfter = reportAfter
        self.succeeded = succeeded
        self.powerOffAfter = powerOffAfter
        self.bootsAgainAfter = bootsAgainAfter
    }
}
