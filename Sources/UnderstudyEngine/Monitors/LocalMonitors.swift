import UnderstudyModel

// Which monitors run on this server, and what their checks mean.
//
// A monitor runs while the cluster service runs here (not isolated, not holding after a
// stall, not suspended) and, with `timing: active`, while its target resource is online here
// and its group is not stopping. The Engine starts and stops the Node's probe with a run id;
// results of an older run are ignored, so a check that raced with a stop never counts.
// Active monitors of a group stop before its first stop script runs.

/// One monitor as this server runs it.
struct LocalMonitor: Sendable, Equatable {
    /// The probe run in progress; nil when the monitor is not running here.
    var run: UInt64?
    var status: MonitorStatus = .offline
    /// Failed checks in a row since the last Normal one or the last recovery step.
    var failures = 0
    var suspended = false
    var dummyFailure = false
    /// Text of the newest error or warning.
    var detail = ""
    /// When the monitor turned Normal (for resetting the counters).
    var normalSince: EngineTime?
    /// The newest check was slower than the delay-warning share of the timeout.
    var delayed = false
    /// A recovery script runs before this step of the ladder.
    var pendingScript: PendingRecoveryScript?
    /// "Recovery skipped" was logged in this error episode.
    var skipLogged = false
    /// mrw: the external error reported with `clprexec --notice`, until `--clear`.
    var externalError: String?
    /// upsw: since when the UPS has been on battery (nil while on line power).
    var onBatterySince: EngineTime?

    /// What one check's result did to the monitor (`take`).
    enum CheckOutcome: Sendable, Equatable {
        /// Normal or warning (Caution); the status before.
        case fine(before: MonitorStatus)
        /// A failed check within the retries: this many used.
        case retrying(failures: Int, detail: String)
        /// The retries are used up: Error. `recovers`: the recovery ladder takes its next
        /// step (not for a timeout with `recover-on-timeout: false`).
        case failed(before: MonitorStatus, detail: String, recovers: Bool)
    }

    /// Takes one check's result: the status, the detail and the failures in a row. Another
    /// `retries + 1` failures are needed after an error before the next recovery step.
    mutating func take(_ result: MonitorResult, of monitor: MonitorConfig, now: EngineTime) -> CheckOutcome {
        let before = status
        switch result {
        case .normal, .warning:
            failures = 0
            skipLogged = false
            if case .warning(let text) = result {
                status = .caution
                detail = text
            } else {
                status = .normal
                detail = ""
            }
            if normalSince == nil { normalSince = now }
            return .fine(before: before)
        case .error, .timeout:
            let isTimeout = result == .timeout
            let text: String
            if case .error(let given) = result { text = given } else { text = "no answer within \(monitor.timeout.shortDescription)" }
            normalSince = nil
            failures += 1
            if isTimeout && !monitor.retryOnTimeout { failures = max(failures, monitor.retries + 1) }
            guard failures > monitor.retries else { return .retrying(failures: failures, detail: text) }
            failures = 0
            status = .error
            detail = text
            return .failed(before: before, detail: text, recovers: !(isTimeout && !monitor.recoverOnTimeout))
        }
    }
}

/// A recovery script in flight, and the step that follows it.
struct PendingRecoveryScript: Sendable, Equatable {
    var id: UInt64
    var step: RecoveryStep
}

/// The steps of the recovery ladder, in order.
enum RecoveryStep: String, Sendable, Equatable {
    /// The recovery script alone (`CLP_ACTION=RECOVERY`), `script-count` times.
    case script
    case reactivate
    case failover
    case finalAction = "final action"

    var scriptAction: RecoveryAction {
        switch self {
        case .script: return .recovery
        case .reactivate: return .restart
        case .failover: return .failover
        case .finalAction: return .finalAction
        }
    }

    var scriptStep: MonitorRecovery.ScriptStep? {
        switch self {
        case .script: return nil
        case .reactivate: return .reactivation
        case .failover: return .failover
        case .finalAction: return .finalAction
        }
    }
}

extension MonitorType {
    /// Types the Engine computes itself: the Node runs no probe for them.
    public var isComputedByEngine: Bool { self == .mtw || self == .mrw || self == .userw }
}

extension ServerEngine {
    // MARK: - Starting and stopping

    /// Starts the monitors that should run now and stops the others.
    mutating func reconcileMonitors(now: EngineTime) {
        guard !stalls.isHolding else { return }
        // As CLUSTERPRO: a suspended cluster (`clpcl --suspend`) does not monitor; its groups
        // keep running, and monitoring starts again on resume. Monitors that would run show
        // Suspend meanwhile.
        let clusterSuspended = directory?.suspended == true
        for monitor in config.monitors {
            guard let local = monitoring.monitors[monitor.name] else { continue }
            let couldRun = service == .running && !isolated && targetAllowsRunning(monitor)
            let shouldRun = !local.suspended && !clusterSuspended && couldRun
            if shouldRun, local.run == nil {
                guard let run = monitoring.start(monitor, now: now) else { continue }
                log(.monitorStarted, "Monitor \(monitor.name) started on \(me).")
                if monitor.type != .mtw && monitor.type != .mrw {
                    emit(
                        .startMonitor(
                            MonitorStart(monitor: monitor.name, run: run, targetPID: targetPID(of: monitor), timeoutRatio: timeoutRatio)))
                }
                heartbeatDirty = true
            } else if !shouldRun, local.run != nil {
                stopMonitor(monitor, now: now)
                if clusterSuspended && couldRun { monitoring.monitors[monitor.name]?.status = .suspend }
            } else if !shouldRun, clusterSuspended, couldRun, local.status != .suspend {
                monitoring.monitors[monitor.name]?.status = .suspend
                heartbeatDirty = true
            } else if !shouldRun, local.suspended, monitor.timing == .active, !targetAllowsRunning(monitor) {
                // As CLUSTERPRO: suspending an active monitor lasts while its target stays
                // online here. Once the target stops the monitor is Offline, and it runs again
                // when the target starts (after a restart, a move back, a failover), so a
                // suspension forgotten after maintenance never leaves a service unwatched.
                monitoring.monitors[monitor.name]?.suspended = false
                monitoring.monitors[monitor.name]?.status = .offline
                let target = monitor.target ?? ""
                log(.monitorResumed, "Monitor \(monitor.name) is no longer suspended on \(me): its target \(target) is not online here.")
                heartbeatDirty = true
            } else if !shouldRun, local.suspended, local.status != .suspend {
                monitoring.monitors[monitor.name]?.status = .suspend
                heartbeatDirty = true
            }
        }
        updateAggregates(now: now)
    }

    /// Stops the active monitors watching resources of a group, before its stop scripts run.
    mutating func stopMonitors(watching group: GroupName, now: EngineTime) {
        for monitor in config.monitors where monitor.timing == .active && monitoring.monitors[monitor.name]?.run != nil {
            guard let target = monitor.target, config.resource(named: target)?.group.name == group else { continue }
            stopMonitor(monitor, now: now)
        }
    }

    mutating func stopMonitor(_ monitor: MonitorConfig, now: EngineTime) {
        guard let run = monitoring.stop(monitor.name) else { return }
        if monitor.type != .mtw && monitor.type != .mrw {
            emit(.stopMonitor(monitor: monitor.name, run: run))
        }
        log(.monitorStopped, "Monitor \(monitor.name) stopped on \(me).")
        heartbeatDirty = true
    }

    /// `timing: always` runs whenever the service does; `active` while the target resource
    /// is online here and its group is not stopping (a stop still waiting for its `stop-after`
    /// groups has not begun: the group still serves).
    func targetAllowsRunning(_ monitor: MonitorConfig) -> Bool {
        guard monitor.timing == .active else { return true }
        guard let target = monitor.target, let group = config.resource(named: target)?.group.name,
            let local = runner.locals[group]
        else { return false }
        return local.resourceStatus[target] == .online && !isDeactivating(local)
    }

    func targetPID(of monitor: MonitorConfig) -> Int32? {
        guard monitor.type == .pidw, let target = monitor.target,
            let group = config.resource(named: target)?.group.name
        else { return nil }
        return runner.locals[group]?.asyncPIDs[target]
    }

    // MARK: - Checks

    mutating func monitorChecked(_ check: MonitorCheck, now: EngineTime) {
        guard let monitor = monitoring.configs[check.monitor],
            var local = monitoring.monitors[check.monitor], local.run == check.run, !local.suspended
        else { return }
        if let power = check.power {
            powerChanged(power, monitor: monitor, now: now)
            // A power shutdown may have stopped the monitor meanwhile.
            guard let current = monitoring.monitors[check.monitor], current.run == check.run else { return }
            local = current
        }
        let timeout = monitor.timeout * timeoutRatio
        let threshold = timeout * config.cluster.timing.monitorDelayWarning / 100
        let delayed = check.result != .timeout && check.elapsed > threshold
        // The usual case — Normal again, nothing pending — changes nothing: no bookkeeping.
        if check.result == .normal, !delayed, !local.delayed, !local.dummyFailure, local.status == .normal, local.failures == 0,
            local.normalSince != nil, persistent.monitorCounters[check.monitor] == nil
        {
            return
        }
        if delayed && !local.delayed {
            log(
                .monitorDelayed,
                "Monitor \(monitor.name) on \(me) is delayed: the check took \(check.elapsed.shortDescription) (timeout \(timeout.shortDescription))."
            )
        }
        local.delayed = delayed
        monitoring.monitors[check.monitor] = local
        let result = local.dummyFailure ? MonitorResult.error("dummy failure") : check.result
        apply(result, to: monitor, now: now)
    }

    /// Turns a result into a status (`LocalMonitor.take`) and, once the retries are used up,
    /// into a recovery step.
    mutating func apply(_ result: MonitorResult, to monitor: MonitorConfig, now: EngineTime) {
        guard var local = monitoring.monitors[monitor.name] else { return }
        let outcome = local.take(result, of: monitor, now: now)
        monitoring.monitors[monitor.name] = local
        let before: MonitorStatus
        switch outcome {
        case .fine(let previous):
            before = previous
            if case .warning(let detail) = result {
                if before != .caution { log(.monitorWarning, "Monitor \(monitor.name) on \(me) warns: \(detail)") }
            } else {
                if before == .error { log(.monitorNormal, "Monitor \(monitor.name) on \(me) returned to normal.") }
                if before == .caution { log(.monitorWarningCleared, "Monitor \(monitor.name) on \(me) returned from warning to normal.") }
            }
            resetCountersIfNormalLongEnough(monitor, now: now)
        case .retrying(let failures, let detail):
            log(.monitorCheckRetry, "Monitor \(monitor.name) on \(me): check failed (\(detail)); retry \(failures)/\(monitor.retries).")
            return
        case .failed(let previous, let detail, let recovers):
            before = previous
            if before != .error { log(.monitorError, "Monitor \(monitor.name) on \(me) detected an error: \(detail)") }
            if recovers {
                recover(monitor, now: now)
            } else {
                log(.recoveryNotOnTimeout, "Recovery for \(monitor.name) is not run: the error was a timeout (recover-on-timeout: false).")
            }
        }
        if monitoring.monitors[monitor.name]?.status != before {
            heartbeatDirty = true
            updateAggregates(now: now)
        }
    }

    mutating func resetCountersIfNormalLongEnough(_ monitor: MonitorConfig, now: EngineTime) {
        guard let since = monitoring.monitors[monitor.name]?.normalSince,
            let counters = persistent.monitorCounters[monitor.name], !counters.isZero,
            now - since >= monitor.recovery.resetCountersAfter
        else { return }
        persistent.monitorCounters[monitor.name] = nil
        persistDirty = true
        log(
            .recoveryCountersReset,
            "Recovery counters of \(monitor.name) on \(me) reset: normal for \(monitor.recovery.resetCountersAfter.shortDescription).")
    }

    // MARK: - Computed monitors

    /// mtw: error when enough of its monitors are in error here (threshold 0 = all),
    /// caution when some are.
    mutating func updateAggregates(now: EngineTime) {
        for monitor in config.monitors where monitor.type == .mtw {
            guard let local = monitoring.monitors[monitor.name], local.run != nil else { continue }
            let members = monitor.list("monitors") ?? []
            let statuses = members.compactMap { monitoring.monitors[$0]?.status }
            let errors = statuses.filter { $0 == .error }.count
            let threshold = monitor.int("threshold") ?? 0
            let needed = threshold == 0 ? max(members.count, 1) : threshold
            let result: MonitorResult
            if errors >= needed {
                let failing = members.filter { monitoring.monitors[$0]?.status == .error }
                result = .error("\(failing.joined(separator: ", ")) in error")
            } else if errors > 0 {
                result = .warning("\(errors) of \(members.count) monitors in error")
            } else {
                result = .normal
            }
            // An aggregate decides on every change, not every interval: one result per change.
            let unchanged =
                (result == .normal && local.status == .normal) || (local.status == .error && errors >= needed)
                || (local.status == .caution && errors > 0 && errors < needed)
            if unchanged { continue }
            // Its members already waited for their retries.
            var forced = monitor
            forced.retries = 0
            apply(local.dummyFailure ? .error("dummy failure") : result, to: forced, now: now)
        }
    }

    /// userw: a stall of this process longer than the monitor's timeout is an error of the
    /// monitor (the Engine sees every gap between events).
    mutating func observeUserSpaceStall(gap: Duration, now: EngineTime) {
        for monitor in config.monitors where monitor.type == .userw {
            guard let local = monitoring.monitors[monitor.name], local.run != nil else { continue }
            if gap > monitor.timeout * timeoutRatio {
                var forced = monitor
                forced.retries = 0
                apply(.error("this server did not run for \(gap.shortDescription)"), to: forced, now: now)
            } else if local.status == .error, gap <= monitor.interval {
                apply(.normal, to: monitor, now: now)
            } else if local.dummyFailure {
                apply(.error("dummy failure"), to: monitor, now: now)
            }
        }
    }

    // MARK: - Status for others

    /// Statuses peers cannot derive (everything but Normal while running and Offline while
    /// not): carried in heartbeats.
    func monitorExceptions() -> [String: MonitorStatus] {
        var exceptions: [String: MonitorStatus] = [:]
        for (name, local) in monitoring.monitors where local.status != .normal && local.status != .offline {
            exceptions[name] = local.status
        }
        return exceptions
    }

    /// Status of a monitor on a server as this server knows it.
    func monitorStatus(_ monitor: MonitorConfig, on server: ServerName, now: EngineTime) -> MonitorStatus {
        guard monitor.runs(on: server) else { return .unused }
        if server == me { return service == .stopped ? .offline : monitoring.monitors[monitor.name]?.status ?? .unknown }
        guard service != .stopped, membership.isUp(server, now: now), let report = membership.peers[server]?.report,
            report.serviceUp
        else { return .unknown }
        if let status = report.monitors?[monitor.name] { return status }
        if monitor.timing == .active {
            guard let target = monitor.target, let group = config.resource(named: target)?.group.name,
                report.groups[group]?.resources[target] == .online
            else { return .offline }
        }
        return .normal
    }
}

/// The monitors of this server: their state, their configuration and the run ids the Node's
/// probes and recovery scripts are started with.
struct Monitoring: Sendable, Equatable {
    /// Monitors that run on this server, by name.
    var monitors: [String: LocalMonitor] = [:]
    /// Their configuration, by name.
    var configs: [String: MonitorConfig]
    /// The userw monitors here (they judge this process's own stalls).
    var userSpace: [MonitorConfig]
    /// Id of the next probe run.
    var nextRun: UInt64 = 1
    /// Id of the next recovery script run.
    var nextScriptRun: UInt64 = 1
    /// A stall userw must judge once the hold after it is over.
    var pendingUserSpaceStall: Duration?

    /// Starts a monitor's run: a new run id, its counters reset; engine-computed monitors are
    /// Normal at once (mrw Error while an external error stands), probes Unknown until their
    /// first check. Nil when the monitor does not run on this server.
    mutating func start(_ monitor: MonitorConfig, now: EngineTime) -> UInt64? {
        guard var local = monitors[monitor.name] else { return nil }
        let run = nextRun
        nextRun += 1
        local.run = run
        local.failures = 0
        local.delayed = false
        local.skipLogged = false
        local.status = monitor.type.isComputedByEngine ? .normal : .unknown
        local.normalSince = monitor.type.isComputedByEngine ? now : nil
        if monitor.type == .mrw, let error = local.externalError {
            local.status = .error
            local.detail = error
            local.normalSince = nil
        }
        monitors[monitor.name] = local
        return run
    }

    /// Ends a monitor's run; returns the run that ended (nil: it was not running). A recovery
    /// script still running belongs to the episode that just ended.
    mutating func stop(_ name: String) -> UInt64? {
        guard var local = monitors[name], let run = local.run else { return nil }
        local.run = nil
        local.failures = 0
        local.delayed = false
        local.status = local.suspended ? .suspend : .offline
        local.pendingScript = nil
        monitors[name] = local
        return run
    }

    init(config: ClusterConfig, me: ServerName) {
        var configs: [String: MonitorConfig] = [:]
        for monitor in config.monitors where monitor.runs(on: me) {
            monitors[monitor.name] = LocalMonitor()
            configs[monitor.name] = monitor
        }
        self.configs = configs
        self.userSpace = config.monitors.filter { $0.type == .userw && $0.runs(on: me) }
    }
}
