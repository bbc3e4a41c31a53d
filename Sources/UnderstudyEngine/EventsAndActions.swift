import UnderstudyModel

/// What happens to a server, as the Node observes it.
public enum EngineEvent: Sendable, Equatable {
    /// Periodic timer; also the moment the Engine notices its own stalls.
    case tick
    /// A verified heartbeat arrived on a path (received at the `now` passed along).
    case heartbeat(Heartbeat, path: String)
    /// A resource start or stop finished.
    case resourceFinished(runID: UInt64, outcome: ResourceOutcome)
    /// Several runs finished while the Node was busy (in the order they finished): one step
    /// for all of them. Starting hundreds of groups at once would otherwise run a full step —
    /// which looks at every group — per finished run, groups² in all, and hold back the
    /// heartbeats meanwhile.
    case resourcesFinished([ResourceCompletion])
    /// The ping probe of the partition resolution ended: did any target answer?
    case pingProbeFinished(probeID: UInt64, reachable: Bool)
    /// A monitor check finished (see MonitorMessages.swift).
    case monitorChecked(MonitorCheck)
    /// Several checks at once (what the Node's runner found in one wake).
    case monitorsChecked([MonitorCheck])
    /// A recovery script ended; `succeeded` is false on a non-zero exit or a timeout.
    case recoveryScriptFinished(id: UInt64, succeeded: Bool)
    /// Datagrams that failed authentication arrived from these configured servers' heartbeat
    /// addresses since the last report (the Node reports about once a second): each runs with
    /// another cluster key, or someone forges its address. It is present, but nothing it
    /// says can be trusted (see UnauthenticatedPeers.swift).
    case unauthenticatedHeartbeats(from: [ServerName])
    /// Authenticated heartbeats arrived from these servers since the last report, but none
    /// could be handed over: the sender's state (its reports, the directory) is not known here
    /// and fetching it over the control channel has not answered (a one-way cut, a firewall
    /// that lets the heartbeat port through but not the control port). The server is present;
    /// what it runs is unknown (see UnauthenticatedPeers.swift).
    case heartbeatsWithoutState(from: [ServerName])
    /// A forced stop (`EngineAction.forceStop`) ended: `succeeded` when an agent stopped the
    /// server; `detail` says what was done or why it failed (for the alert).
    case forcedStopFinished(id: UInt64, succeeded: Bool, detail: String)
    /// The keeper of a peer's daemon says that daemon (`instance` of `server`) died and that
    /// it fenced everything the daemon held on its server (KeeperNotices.swift).
    case peerDaemonDied(server: ServerName, instance: ServerInstance)
}

/// A forced stop of a lost server, for the Node to carry out through the `fencing:` agents
/// (within the configured timeout) and report with `EngineEvent.forcedStopFinished`.
public struct ForcedStopRun: Sendable, Equatable {
    public var id: UInt64
    public var server: ServerName

    public init(id: UInt64, server: ServerName) {
        self.id = id
        self.server = server
    }
}

/// One finished run of `EngineEvent.resourcesFinished`.
public struct ResourceCompletion: Sendable, Equatable {
    public var runID: UInt64
    public var outcome: ResourceOutcome

    public init(runID: UInt64, outcome: ResourceOutcome) {
        self.runID = runID
        self.outcome = outcome
    }
}

public enum ResourceOutcome: Sendable, Equatable {
    /// Done; `asyncPID` is the process an asynchronous start script left running.
    case success(asyncPID: Int32?)
    case failure(reason: String)
}

public enum ResourceOperation: String, Sendable, Codable, Equatable {
    case start
    case stop
}

/// One start or stop of one resource, for the Node to carry out and report back with
/// `EngineEvent.resourceFinished(runID:)`.
public struct ResourceRun: Sendable, Equatable {
    public var id: UInt64
    public var group: GroupName
    public var resource: ResourceName
    public var operation: ResourceOperation
    public var context: ScriptContext
    /// PID of the asynchronous start process, for `CLP_PID` in stop scripts.
    public var asyncPID: Int32?

    public init(
        id: UInt64, group: GroupName, resource: ResourceName, operation: ResourceOperation,
        context: ScriptContext, asyncPID: Int32? = nil
    ) {
        self.id = id
        self.group = group
        self.resource = resource
        self.operation = operation
        self.context = context
        self.asyncPID = asyncPID
    }
}

/// How the OS or the machine stops; the raw value is the `cluster.os-commands` key.
public enum OSAction: String, Sendable, Codable, Equatable, CaseIterable {
    case shutdown
    case reboot
    case panic
    case reset
    case keepaliveReset = "keepalive-reset"
    case bmcPowerOff = "bmc-power-off"
    case bmcReset = "bmc-reset"
    case bmcPowerCycle = "bmc-power-cycle"
    case bmcNMI = "bmc-nmi"

    /// Stops the machine at once (`EngineAction.stopMachineNow`), not after an orderly stop.
    public var isImmediate: Bool { self != .shutdown && self != .reboot }

    /// The machine comes back by itself afterwards (a panic reboots with `kernel.panic` set,
    /// as does an NMI that panics); only `shutdown` and `bmc-power-off` keep it off.
    public var restartsMachine: Bool { self != .shutdown && self != .bmcPowerOff }

    /// The OS action of a final action that stops the OS (nil for the others).
    public init?(_ action: FinalAction) {
        guard action.stopsOS, let value = OSAction(rawValue: action.rawValue) else { return nil }
        self = value
    }

    /// The OS action of a network-partition or process-failure action (nil for none and
    /// stop-service).
    public init?(_ action: NetworkPartitionAction) {
        guard let value = OSAction(rawValue: action.rawValue) else { return nil }
        self = value
    }
}

/// What the cluster service does once it has stopped.
public enum AfterServiceStop: Sendable, Equatable, Codable {
    /// Stay up; `clpcl -s` starts the service again.
    case stayStopped
    /// Start again at once (`clpcl -r`).
    case restart
    /// The daemon process exits (SIGTERM).
    case exitProcess
    /// Shut down or reboot the OS through the OS-control command.
    case os(OSAction)
}

/// An alert-log entry: a module (as in CLUSTERPRO: nm, rc, cl, …), an event id and a text.
public struct LogEntry: Sendable, Equatable {
    public var level: LogLevel
    public var module: String
    public var eventID: Int
    public var message: String

    public init(_ level: LogLevel, _ module: String, _ eventID: Int, _ message: String) {
        self.level = level
        self.module = module
        self.eventID = eventID
        self.message = message
    }

    /// An entry of a catalogued event (EventCatalogue.swift), at its usual level or `level`.
    public init(_ event: EventKind, level: LogLevel? = nil, _ message: String) {
        self.init(level ?? event.level, event.module, event.id, message)
    }
}

/// What the Engine asks the Node to do.
public enum EngineAction: Sendable, Equatable {
    case runResource(ResourceRun)
    /// Kill every process of the group at once (SIGKILL to every process group) without
    /// stop scripts: this server can no longer prove it may hold the group.
    case fenceGroup(GroupName)
    /// Send a heartbeat now instead of at the next interval (a change others must see fast).
    case sendHeartbeatNow
    /// Send exactly this heartbeat now: the last words of a service that stops without a
    /// farewell (built while it still ran, so peers keep counting its stuck groups).
    case sendHeartbeat(Heartbeat)
    /// Durable state changed: write it before acting further.
    case persist(PersistentState)
    /// Ping the targets of `pingnp` (each once, within `ServerEngine.pingTimeout`) and
    /// report with `EngineEvent.pingProbeFinished`.
    case probePingTargets(probeID: UInt64, targets: [String])
    /// The cluster service has stopped; do what was asked (`.os` runs the configured
    /// OS-control command).
    case serviceStopped(AfterServiceStop)
    /// Start checking a monitor (interval, timeout, first wait from its configuration) and
    /// report each check with `EngineEvent.monitorChecked`.
    case startMonitor(MonitorStart)
    /// Stop checking (abandon a check in flight).
    case stopMonitor(monitor: String, run: UInt64)
    case runRecoveryScript(RecoveryScriptRun)
    /// The cluster service stopped for a power failure: before the OS goes down, tell these
    /// upsw monitors' UPSes to cut the power after their delay and restore it when line power
    /// returns (the monitor's `power-off-command`). Comes right before `.serviceStopped(.os)`.
    case powerOffUPS(monitors: [String])
    /// Stop a lost server through the `fencing:` agents before its groups start elsewhere
    /// (ForcedStop.swift).
    case forceStop(ForcedStopRun)
    /// Stop this machine at once through the action's `cluster.os-commands` command (panic,
    /// reset, keepalive-reset, bmc-*): no stop scripts ran and no farewell goes out, so peers
    /// see a lost server and take over after its confirmation, as after a crash. The Engine
    /// has stopped (it sends no more heartbeats). Should the command return with the machine
    /// still up, the Node calls `machineStillRuns(after:now:)` (which fences every group
    /// here) and exits without clearing the abnormal-stop marker.
    case stopMachineNow(OSAction)
    case log(LogEntry)
}

extension EngineAction {
    /// The OS action of `.stopMachineNow` (nil for every other action).
    public var machineStop: OSAction? {
        if case .stopMachineNow(let os) = self { return os }
        return nil
    }
}

/// What survives a daemon restart (invariant I5).
public struct PersistentState: Sendable, Codable, Equatable {
    /// The newest directory this server knew: the master's placement table.
    public var directory: Directory?
    /// Groups this server held when it last wrote the state, with their generation.
    public var heldGroups: [GroupName: UInt64]
    /// Reboots caused by final actions (for `recovery.max-reboots`).
    public var rebootCount: Int
    /// How far each monitor's recovery ladder has gone on this server.
    public var monitorCounters: [String: MonitorCounters]
    /// The servers still running the cluster when this one last stopped cleanly (empty after
    /// a cluster stop). Until it has joined a cluster again, this server founds none without
    /// them (see Survivors.swift).
    public var leftBehind: [ServerName]
    /// The newest `clptoratio` setting this server knows (it outlives a restart until it
    /// expires or is reset).
    public var timeoutRatio: TimeoutRatio?
    /// The largest ratio this server may still have promised its peers (a lowered one binds
    /// for the old timeout): after a restart it listens that long before judging anyone
    /// down. nil: 1.
    public var listenRatio: Int?

    public init(
        directory: Directory? = nil, heldGroups: [GroupName: UInt64] = [:], rebootCount: Int = 0,
        monitorCounters: [String: MonitorCounters] = [:], leftBehind: [ServerName] = [], timeoutRatio: TimeoutRatio? = nil
    ) {
        self.timeoutRatio = timeoutRatio
        self.directory = directory
        self.heldGroups = heldGroups
        self.rebootCount = rebootCount
        self.monitorCounters = monitorCounters
        self.leftBehind = leftBehind
    }

    enum CodingKeys: String, CodingKey {
        case directory, heldGroups, rebootCount, monitorCounters, leftBehind, timeoutRatio, listenRatio
    }

    /// State files written before a key existed still load.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        directory = try container.decodeIfPresent(Directory.self, forKey: .directory)
        heldGroups = try container.decodeIfPresent([GroupName: UInt64].self, forKey: .heldGroups) ?? [:]
        rebootCount = try container.decodeIfPresent(Int.self, forKey: .rebootCount) ?? 0
        monitorCounters = try container.decodeIfPresent([String: MonitorCounters].self, forKey: .monitorCounters) ?? [:]
        leftBehind = try container.decodeIfPresent([ServerName].self, forKey: .leftBehind) ?? []
        timeoutRatio = try container.decodeIfPresent(TimeoutRatio.self, forKey: .timeoutRatio)
        listenRatio = try container.decodeIfPresent(Int.self, forKey: .listenRatio)
    }
}
