import Foundation
import Logging
import NIOCore
import UnderstudyEngine
import UnderstudyModel

#if canImport(Glibc)
    import Glibc
#endif

// Carrying out the Engine's actions: resource runs and fences, monitors and recovery
// scripts, the service's end, log entries and alerts.
extension ClusterDaemon {
    // MARK: - Actions

    func perform(_ actions: [EngineAction]) {
        lastTick = now()
        defer {
            leaseFile.write(expiry: engine.leaseExpiry(now: lastTick))
            wakeTickLoopIfDue()
            noticeLostPeers()
        }
        if let os = actions.lazy.compactMap(\.machineStop).first {
            // Nothing else of this step may run first (a resource run, a stop script): only
            // the state (the reboot count) is written, the log entries go out and the fences
            // of a lost partition start (SIGKILL, in the background: nothing here waits).
            for action in actions {
                switch action {
                case .persist(let state): persist(state)
                case .log(let entry): record(entry)
                case .fenceGroup(let group): fence(group)
                default: break
                }
            }
            stopMachine(os)
            return
        }
        // The state goes to the writer first: a heartbeat never announces a state that is not
        // on disk yet (`sendWhenDurable`).
        for case .persist(let state) in actions { persist(state) }
        // The heartbeat goes out before anything that could end the daemon (a farewell must
        // reach the peers before the sockets close).
        if actions.contains(.sendHeartbeatNow) {
            let stopping = actions.contains { if case .serviceStopped = $0 { return true } else { return false } }
            let heartbeat = heartbeatPayload(engine.makeHeartbeat(now: now()))
            let durable = lastPersistTicket
            if stopping {
                pendingFarewell = Task { await self.sendWhenDurable(heartbeat, after: durable) }
            } else {
                Task { await self.sendWhenDurable(heartbeat, after: durable) }
            }
        }
        for action in actions {
            switch action {
            case .runResource(let run):
                startRun(run)
            case .fenceGroup(let group):
                fence(group)
            case .probePingTargets(let probeID, let targets):
                // pingnp's targets and httpnp's witness, all at once; the view is the one of
                // the moment the Engine asked.
                let question = PartitionQuestion(targets: targets, timeout: engine.pingTimeout, view: engine.currentView(now: now()))
                let probes = partitionProbes
                Task {
                    let reachable = await PartitionResolvers.survives(question, probes: probes)
                    self.perform(self.engine.handle(.pingProbeFinished(probeID: probeID, reachable: reachable), now: self.now()))
                }
            case .sendHeartbeatNow:
                break
            case .sendHeartbeat(let heartbeat):
                let payload = heartbeatPayload(heartbeat)
                let durable = lastPersistTicket
                pendingFarewell = Task { await self.sendWhenDurable(payload, after: durable) }
            case .persist:
                // Written above, before any heartbeat.
                break
            case .serviceStopped(let then):
                serviceStopped(then)
            case .log(let entry):
                record(entry)
            case .startMonitor(let start):
                startMonitor(start)
            case .stopMonitor(let monitor, let run):
                monitorRunner.stop(monitor, run: run)
                if let watchdog = stallWatchdog, config.monitors.first(where: { $0.name == monitor })?.type == .userw {
                    watchdog.disarm()
                    stallWatchdog = nil
                    record(LogEntry(.kernelWatchdogDisarmed, "Kernel watchdog of \(monitor) disarmed."))
                }
            case .runRecoveryScript(let run):
                runRecoveryScript(run)
            case .powerOffUPS(let monitors):
                pendingPowerOff = Task { await self.powerOffUPS(monitors) }
            case .forceStop(let run):
                forceStop(run)
            case .stopMachineNow:
                // Handled before the loop.
                break
            }
        }
    }

    // MARK: - clprexec --script

    /// Runs `name` from the rexec folder: a plain file name, an executable regular file owned
    /// by the daemon's user and writable by nobody else (whoever may write it could run code
    /// as the daemon through any cluster member).
    func runRemoteScript(_ name: String, timeout: Duration, origin: ServerName) async -> CommandResult {
        let allowed = CharacterSet(charactersIn: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")
        guard !name.isEmpty, name.count <= 255, !name.hasPrefix("."), name.unicodeScalars.allSatisfy(allowed.contains) else {
            return CommandResult(
                .badUsage, "Script name \"\(name.prefix(80))\" must be a plain file name of \(config.cluster.rexecDirectory).")
        }
        let path = config.cluster.rexecDirectory + "/" + name
        var info = stat()
        guard lstat(path, &info) == 0 else {
            return CommandResult(.failed, "No script \(name) in \(config.cluster.rexecDirectory) on \(me).")
        }
        guard info.st_mode & S_IFMT == S_IFREG, info.st_mode & 0o100 != 0 else {
            return CommandResult(.failed, "\(path) on \(me) is not an executable regular file.")
        }
        guard info.st_uid == geteuid(), info.st_mode & 0o022 == 0 else {
            return CommandResult(
                .failed, "\(path) on \(me) must belong to the daemon's user and not be writable by group or others; not run.")
        }
        record(LogEntry(.remoteScriptRunning, "Running \(path) on request from \(origin)."))
        var variables = ["CLP_SERVER_LOCAL": me, "CLP_REQUEST_FROM": origin]
        variables["UNDERSTUDY_LEASE_FILE"] = paths.leasePath
        let environment = ScriptEnvironment.compose(base: ScriptEnvironment.base(), host: host, variables: variables)
        let log = RotatingLog(path: paths.stateDirectory + "/logs/rexec.log", rotateSize: Defaults.scriptLogRotateSize, logger: logger)
        let outcome = await scriptRunner.run(
            ScriptInvocation(
                executable: path, environment: environment, workingDirectory: config.cluster.rexecDirectory, timeout: timeout,
                log: ScriptLog(file: log, action: "rexec")))
        if outcome.isSuccess { return .ok("Script \(name) ran on \(me).") }
        record(LogEntry(.remoteScriptFailed, "Script \(path) requested by \(origin): \(outcome)."))
        return CommandResult(.failed, "Script \(name) on \(me): \(outcome).")
    }

    // MARK: - Monitors

    func startMonitor(_ start: MonitorStart) {
        guard var monitor = config.monitors.first(where: { $0.name == start.monitor }) else { return }
        monitor.timeout = monitor.timeout * max(start.timeoutRatio, 1)
        // userw needs no probe: the Engine sees this process's stalls itself; with softdog
        // the kernel watches too.
        guard monitor.type != .userw else {
            if monitor.string("method") == "softdog" { armStallWatchdog(monitor) }
            return
        }
        let probe = MonitorProbes.make(monitor, start: start, context: probeContext)
        monitorRunner.start(monitor, run: start.run, probe: probe)
    }

    func monitorsChecked(_ checks: [MonitorCheck]) {
        counters.checked(checks)
        let actions = engine.handle(.monitorsChecked(checks), now: now())
        if !actions.isEmpty { perform(actions) }
    }

    /// The recovery script of a monitor, with `CLP_ACTION`, `CLP_MONITORNAME` and the counters.
    func runRecoveryScript(_ run: RecoveryScriptRun) {
        var variables = [
            "CLP_ACTION": run.action.rawValue, "CLP_MONITORNAME": run.monitor,
            "CLP_RECOVERYCOUNT": String(run.counters.recoveryScripts), "CLP_RESTARTCOUNT": String(run.counters.reactivations),
            "CLP_FAILOVERCOUNT": String(run.counters.failovers),
        ]
        variables["CLP_SERVER_LOCAL"] = me
        let environment = ScriptEnvironment.compose(base: ScriptEnvironment.base(), host: host, variables: variables)
        let log = RotatingLog(
            path: paths.stateDirectory + "/logs/recovery-\(run.monitor).log", rotateSize: Defaults.scriptLogRotateSize, logger: logger)
        let folder = (run.script as NSString).deletingLastPathComponent
        let invocation = ScriptInvocation(
            executable: run.script, environment: environment, workingDirectory: folder.isEmpty ? nil : folder,
            timeout: run.timeout, log: ScriptLog(file: log, action: "recovery"))
        let runner = scriptRunner
        Task {
            let outcome = await runner.run(invocation)
            if !outcome.isSuccess {
                self.record(LogEntry(.recoveryScriptOutcome, "Recovery script \(run.script) of \(run.monitor): \(outcome)."))
            }
            self.perform(self.engine.handle(.recoveryScriptFinished(id: run.id, succeeded: outcome.isSuccess), now: self.now()))
        }
    }

    func startRun(_ run: ResourceRun) {
        guard let resource = config.resource(named: run.resource)?.resource else { return }
        let resources = resources
        let fencesBefore = fenceCounts[run.group, default: 0]
        counters.runStarted(run, now: now())
        // The state that says this server holds the group (persisted by the same step, before
        // this action) is on disk before the resource is touched.
        let written = stateWriter.latestTicket
        let writer = stateWriter
        Task {
            await writer.waitUntilWritten(written)
            let outcome = await resources.perform(run, resource: resource)
            self.runFinished(run, outcome, fencesBefore: fencesBefore)
        }
    }

    /// Fencing a group kills its processes and takes its addresses off this server at once (no
    /// scripts run; every driver's fence is idempotent).
    func fence(_ group: GroupName) {
        guard let groupConfig = config.group(named: group) else { return }
        fenceCounts[group, default: 0] += 1
        resources.fence(group: groupConfig, server: me)
    }

    /// A start that ends after its group was fenced may have mounted a disk or added an
    /// address the fence could not see yet: the Engine drops the run's result, and, unless
    /// the group has been started here again since, it is fenced again so that nothing the
    /// abandoned start did stays.
    ///
    /// Runs that finish while the actor is busy are handed to the Engine together, in one
    /// step (`EngineEvent.resourcesFinished`): the first one queues their delivery behind
    /// what the actor has to do already, and those that finish meanwhile join it. One run
    /// alone costs one actor hop more; hundreds of groups started at once cost a step per
    /// batch instead of a step — over every group — per run (which stalled the daemon for
    /// seconds with 1,000 groups, docs/benchmarks.md).
    func runFinished(_ run: ResourceRun, _ outcome: ResourceOutcome, fencesBefore: Int) {
        finishedRuns.append(FinishedRun(run: run, outcome: outcome, fencesBefore: fencesBefore))
        guard finishedRuns.count == 1 else { return }
        Task { self.deliverFinishedRuns() }
    }

    func deliverFinishedRuns() {
        let finished = finishedRuns
        finishedRuns = []
        guard let first = finished.first else { return }
        let event: EngineEvent =
            finished.count == 1
            ? .resourceFinished(runID: first.run.id, outcome: first.outcome)
            : .resourcesFinished(finished.map { ResourceCompletion(runID: $0.run.id, outcome: $0.outcome) })
        perform(engine.handle(event, now: now()))
        for entry in finished {
            let run = entry.run
            counters.runFinished(group: run.group, status: engine.localStatus(of: run.group), now: now())
            if run.operation == .start, fenceCounts[run.group, default: 0] != entry.fencesBefore,
                !engine.localStatus(of: run.group).holdsResources, let groupConfig = config.group(named: run.group)
            {
                logger.warning("resource \(run.resource) finished starting after group \(run.group) was fenced; fencing it again")
                resources.fence(group: groupConfig, server: me)
            }
        }
    }

    /// A run that finished, waiting for `deliverFinishedRuns`.
    struct FinishedRun {
        var run: ResourceRun
        var outcome: ResourceOutcome
        var fencesBefore: Int
    }

    func serviceStopped(_ then: AfterServiceStop) {
        // After the state of the stop (queued before it): a crash before this is written is
        // an abnormal stop.
        markCleanStop()
        switch then {
        case .stayStopped:
            break
        case .restart:
            markStarted()
            perform(engine.startService(now: now()))
            tellKeeper()
        case .exitProcess:
            Task {
                await self.pendingFarewell?.value
                await self.stateWriter.drain()
                self.requestExit()
            }
        case .os(let action):
            Task {
                await self.pendingFarewell?.value
                await self.pendingPowerOff?.value
                // The state (counters, the reboot count) and the clean-stop mark are on disk
                // before the OS goes down.
                await self.stateWriter.drain()
                self.armShutdownWatchdog()
                self.runOSCommand(action)
                self.requestExit()
            }
        }
    }

    /// UTC with milliseconds: failover steps are milliseconds apart.
    static func alertTimestamp(_ time: Date = Date()) -> String {
        UTCTimestamp.milliseconds(time)
    }

    func record(_ entry: LogEntry) {
        counters.logged(entry)
        for admitted in logLimiter.admit(entry, now: now()) { write(admitted) }
    }

    /// The alert log, the daemon's log, and the alert router (which queues and returns: no
    /// destination is ever awaited here).
    func write(_ entry: LogEntry) {
        alertRouter.submit(writeAlertLog(entry))
    }

    /// The alert log and the daemon's log only; the alert as destinations would get it.
    @discardableResult
    func writeAlertLog(_ entry: LogEntry, alertLogToo: Bool = true) -> AlertEvent {
        let time = Date()
        if alertLogToo {
            let line =
                "\(Self.alertTimestamp(time)) \(me) \(entry.level.rawValue) [\(entry.module) \(entry.eventID)] \(entry.message)"
            alertLog.appendLine(line)
            shareAlert(clusterAlerts.appendOwn(line))
            for subscriber in alertSubscribers.values { subscriber.yield(line) }
        }
        logToDaemonLog(entry)
        return AlertEvent(
            cluster: config.cluster.name, server: me, time: time, level: entry.level, module: entry.module, eventID: entry.eventID,
            message: entry.message)
    }

    func logToDaemonLog(_ entry: LogEntry) {
        switch entry.level {
        case .info: logger.info("[\(entry.module) \(entry.eventID)] \(entry.message)")
        case .warning: logger.warning("[\(entry.module) \(entry.eventID)] \(entry.message)")
        case .error: logger.error("[\(entry.module) \(entry.eventID)] \(entry.message)")
        }
    }
}
