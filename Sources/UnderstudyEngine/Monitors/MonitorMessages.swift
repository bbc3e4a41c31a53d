import UnderstudyModel

// What passes between the Engine and the Node's monitor runner. The Node runs the probes
// (interval, timeout, first wait, nice) and reports every check; the Engine decides what a
// result means (retries, status, delay warning) and what to do about an error (the recovery
// ladder). mtw, mrw and userw need no probe: the Engine computes them.

/// The outcome of one check.
public enum MonitorResult: Sendable, Equatable, Codable {
    case normal
    /// Works, but something is off (Caution): a database still starting, a partial answer.
    case warning(String)
    case error(String)
    /// The probe did not finish within the monitor's timeout and was abandoned.
    case timeout
}

/// What a UPS says about its power (upsw, from NUT's `ups.status`).
public enum PowerState: String, Sendable, Equatable, Codable {
    /// On line power (`OL`).
    case online
    /// On battery (`OB`): shut down once it lasts longer than the grace time.
    case onBattery
    /// Battery low (`LB`) or a forced shutdown ordered by the UPS system (`FSD`): shut down now.
    case lowBattery
}

/// One check the Node ran, reported with `EngineEvent.monitorChecked`.
public struct MonitorCheck: Sendable, Equatable {
    public var monitor: String
    /// The run given in `MonitorStart`; results of an older run are ignored.
    public var run: UInt64
    public var result: MonitorResult
    /// How long the check took (for the delay warning).
    public var elapsed: Duration
    /// upsw: the UPS's power state; nil when the check could not tell (upsd unreachable).
    public var power: PowerState?

    public init(monitor: String, run: UInt64, result: MonitorResult, elapsed: Duration, power: PowerState? = nil) {
        self.monitor = monitor
        self.run = run
        self.result = result
        self.elapsed = elapsed
        self.power = power
    }
}

/// Start checking a monitor (`EngineAction.startMonitor`).
public struct MonitorStart: Sendable, Equatable {
    public var monitor: String
    public var run: UInt64
    /// pidw: the process the target exec resource's asynchronous start script left running.
    public var targetPID: Int32?
    /// `clptoratio`: the monitor's timeout is this many times its configured one. A running
    /// monitor is started again with the same run when the ratio changes (the Node keeps its
    /// schedule and replaces its probe).
    public var timeoutRatio: Int

    public init(monitor: String, run: UInt64, targetPID: Int32? = nil, timeoutRatio: Int = 1) {
        self.monitor = monitor
        self.run = run
        self.targetPID = targetPID
        self.timeoutRatio = timeoutRatio
    }
}

/// `CLP_ACTION` of a recovery script: which step of the ladder it comes before.
public enum RecoveryAction: String, Sendable, Codable, Equatable {
    case recovery = "RECOVERY"
    case restart = "RESTART"
    case failover = "FAILOVER"
    case finalAction = "FINALACTION"
}

/// How far a monitor's recovery ladder has gone on this server. Persisted: a daemon restart
/// must not hand a crash-looping service a fresh set of reactivations.
public struct MonitorCounters: Sendable, Codable, Equatable {
    public var recoveryScripts: Int
    public var reactivations: Int
    public var failovers: Int
    public var finalActionDone: Bool

    public init(recoveryScripts: Int = 0, reactivations: Int = 0, failovers: Int = 0, finalActionDone: Bool = false) {
        self.recoveryScripts = recoveryScripts
        self.reactivations = reactivations
        self.failovers = failovers
        self.finalActionDone = finalActionDone
    }

    public var isZero: Bool { self == MonitorCounters() }
}

/// Run a monitor's recovery script (`EngineAction.runRecoveryScript`); report with
/// `EngineEvent.recoveryScriptFinished`.
public struct RecoveryScriptRun: Sendable, Equatable {
    public var id: UInt64
    public var monitor: String
    public var script: String
    public var action: RecoveryAction
    /// The counters including the step about to be taken (`CLP_RECOVERYCOUNT`,
    /// `CLP_RESTARTCOUNT`, `CLP_FAILOVERCOUNT`).
    public var counters: MonitorCounters
    public var timeout: Duration

    public init(
        id: UInt64, monitor: String, script: String, action: RecoveryAction, counters: MonitorCounters, timeout: Duration
    ) {
        self.id = id
        self.monitor = monitor
        self.script = script
        self.action = action
        self.counters = counters
        self.timeout = timeout
    }
}

/// What a server asks the master to do with a group it runs, after a monitor error.
public enum MonitorRequest: String, Sendable, Codable, Equatable, CaseIterable {
    /// Move the group to another server (the ladder's failover step).
    case failover
    /// Stop the group and leave it stopped (final action `stop-group`).
    case stop
}

/// Operator control of monitors (`clpmonctrl`).
public enum MonitorControl: String, Sendable, Codable, Equatable {
    case suspend
    case resume
    case clearCounters = "clear"
    /// Make the monitor report an error as if its check had failed (tests the recovery).
    case dummyFailureOn = "dummy-failure-on"
    case dummyFailureOff = "dummy-failure-off"
}
