import UnderstudyModel

// The recovery ladder (reference §6.1, ARCHITECTURE.md §6). Each time a monitor's error is
// confirmed (after its retries) it climbs one step:
//   recovery script alone (`script-count` times, CLP_ACTION=RECOVERY)
//   → reactivate the target on this server (`reactivations` times)
//   → fail the target's group(s) over (`failovers` times; the master moves them)
//   → the final action, once.
// Optionally the recovery script runs before a step too (CLP_ACTION=RESTART, FAILOVER,
// FINALACTION). The counters are per server and persisted; they reset after the monitor has
// been Normal for `reset-counters-after`, or with `clpmonctrl -c`.
//
// Recovery is skipped (logged once per episode) when the target is not active here or is in
// transition (starting, stopping, restarting, a failover already asked for): a recovery never
// races with another operation on the same group, so monitors cannot cause a double start.

extension ServerEngine {
    /// How long a failover or stop asked of the master may stay unanswered before the ladder
    /// treats it as declined and goes on.
    var monitorRequestExpiry: Duration { timeout + interval * 4 + takeoverMargin }

    mutating func recover(_ monitor: MonitorConfig, now: EngineTime) {
        guard let local = monitoring.monitors[monitor.name], local.pendingScript == nil else { return }
        if config.cluster.recovery.disableMonitorRecovery {
            skipRecovery(monitor, .recoveryDisabled, "recovery after monitor errors is disabled for the cluster")
            return
        }
        guard service == .running, !isolated else {
            skipRecovery(monitor, .recoveryNotRun, "the cluster service on \(me) is not running normally")
            return
        }
        let recovery = monitor.recovery
        let groups: [GroupName]
        switch recoveryGroups(of: recovery.target, now: now) {
        case .inactive(let reason):
            skipRecovery(monitor, .recoveryNotRun, reason)
            return
        case .busy(let group):
            skipRecovery(monitor, .recoveryGroupBusy, "group \(group) is in transition")
            return
        case .groups(let found):
            groups = found
        }
        var counters = persistent.monitorCounters[monitor.name] ?? MonitorCounters()
        let step: RecoveryStep
        if recovery.script != nil && counters.recoveryScripts < recovery.scriptCount {
            step = .script
            counters.recoveryScripts += 1
        } else if recovery.target != .localServer && counters.reactivations < recovery.reactivations {
            step = .reactivate
            counters.reactivations += 1
        } else if recovery.target != .localServer && counters.failovers < recovery.failovers && canFailOver(groups, now: now) {
            step = .failover
            counters.failovers += 1
        } else if !counters.finalActionDone {
            if recovery.target != .localServer && counters.failovers < recovery.failovers {
                log(.noFailoverTarget, "No other server can take over for \(monitor.name) now: going on to the final action.")
            }
            step = .finalAction
            counters.finalActionDone = true
        } else {
            skipRecovery(monitor, .recoveryExhausted, "every recovery step has been taken (clpmonctrl -c clears the counters)")
            return
        }
        persistent.monitorCounters[monitor.name] = counters
        persistDirty = true
        log(
            .recoveryStep,
            "Recovery of \(monitor.name) on \(me): \(describe(step, recovery, counters)) (target \(recovery.target.configText))."
        )
        if let script = recovery.script,
            step == .script || step.scriptStep.map({ recovery.runScriptBefore.contains($0) }) == true
        {
            let id = monitoring.nextScriptRun
            monitoring.nextScriptRun += 1
            monitoring.monitors[monitor.name]?.pendingScript = PendingRecoveryScript(id: id, step: step)
            emit(
                .runRecoveryScript(
                    RecoveryScriptRun(
                        id: id, monitor: monitor.name, script: script, action: step.scriptAction, counters: counters,
                        timeout: recovery.scriptTimeout)))
            return
        }
        perform(step, for: monitor, groups: groups, now: now)
    }

    func describe(_ step: RecoveryStep, _ recovery: MonitorRecovery, _ counters: MonitorCounters) -> String {
        switch step {
        case .script: return "recovery script (\(counters.recoveryScripts)/\(recovery.scriptCount))"
        case .reactivate: return "reactivation (\(counters.reactivations)/\(recovery.reactivations))"
        case .failover: return "failover (\(counters.failovers)/\(recovery.failovers))"
        case .finalAction: return "final action \(recovery.finalAction.rawValue)"
        }
    }

    /// The recovery script ended (successfully or not): take the step it came before.
    mutating func recoveryScriptFinished(id: UInt64, succeeded: Bool, now: EngineTime) {
        guard let monitor = config.monitors.first(where: { monitoring.monitors[$0.name]?.pendingScript?.id == id }),
            let pending = monitoring.monitors[monitor.name]?.pendingScript
        else { return }
        monitoring.monitors[monitor.name]?.pendingScript = nil
        if !succeeded {
            log(
                .recoveryScriptFailedContinuing,
                "The recovery script of \(monitor.name) failed on \(me); going on with the \(pending.step.rawValue).")
        }
        guard pending.step != .script else { return }
        guard service == .running, !isolated, case .groups(let groups) = recoveryGroups(of: monitor.recovery.target, now: now)
        else {
            skipRecovery(monitor, .recoveryNotRun, "its target changed while the recovery script ran")
            return
        }
        perform(pending.step, for: monitor, groups: groups, now: now)
    }

    mutating func perform(_ step: RecoveryStep, for monitor: MonitorConfig, groups: [GroupName], now: EngineTime) {
        switch step {
        case .script:
            break
        case .reactivate:
            if case .resource(let resource) = monitor.recovery.target, let group = groups.first {
                restartResource(resource, group: group, now: now)
            } else {
                for group in groups { restartGroup(group, now: now) }
            }
        case .failover:
            for group in groups { askMaster(.failover, group: group, now: now) }
        case .finalAction:
            monitorFinalAction(monitor, groups: groups, now: now)
        }
    }

    mutating func monitorFinalAction(_ monitor: MonitorConfig, groups: [GroupName], now: EngineTime) {
        let action = monitor.recovery.finalAction
        switch action {
        case .none, .noneContinue:
            log(.finalActionNone, "Final action of \(monitor.name) on \(me): no operation.")
        case .stopResource:
            guard case .resource(let resource) = monitor.recovery.target, let group = groups.first else { return }
            startSingle(.stop, resource: resource, group: group)
        case .stopGroup:
            for group in groups { askMaster(.stop, group: group, now: now) }
        case .stopClusterService:
            beginLeaving(factor: .serverShutdown, lastAction: .none, then: .stayStopped, now: now)
        case .shutdown, .reboot, .panic, .reset, .keepaliveReset, .bmcPowerOff, .bmcReset, .bmcPowerCycle, .bmcNMI:
            osFinalAction(action, suppressCase: .monitor, now: now)
        }
    }

    // MARK: - Targets

    enum RecoveryGroups {
        case groups([GroupName])
        case inactive(String)
        case busy(GroupName)
    }

    /// The groups a recovery acts on, when all of them are active here and none is in
    /// transition.
    func recoveryGroups(of target: MonitorRecovery.Target, now: EngineTime) -> RecoveryGroups {
        let candidates: [GroupName]
        switch target {
        case .localServer:
            return .groups([])
        case .resource(let resource):
            guard let group = config.resource(named: resource)?.group.name, let local = runner.locals[group] else {
                return .inactive("resource \(resource) is unknown")
            }
            let status = local.resourceStatus[resource]
            guard isActive(local) || local.isBusy, status == .online || status == .onlineFailure || local.isBusy else {
                return .inactive("resource \(resource) is not active on \(me)")
            }
            candidates = [group]
        case .group(let group):
            guard let local = runner.locals[group], isActive(local) || local.isBusy else {
                return .inactive("group \(group) is not active on \(me)")
            }
            candidates = [group]
        case .allGroups:
            candidates = config.groups.map(\.name).filter { name in
                runner.locals[name].map { isActive($0) || $0.isBusy } ?? false
            }
            if candidates.isEmpty { return .inactive("no group is active on \(me)") }
        }
        for group in candidates {
            guard let local = runner.locals[group] else { continue }
            if local.isBusy || isStopping(local) { return .busy(group) }
            if local.monitorRequest != nil, let asked = local.monitorRequestAt, now - asked < monitorRequestExpiry {
                return .busy(group)
            }
        }
        return .groups(candidates)
    }

    func isActive(_ local: LocalGroup) -> Bool { local.status == .online || local.status == .onlineFailure }

    /// Another server of each group's policy is connected and not leaving.
    func canFailOver(_ groups: [GroupName], now: EngineTime) -> Bool {
        guard !groups.isEmpty, let dir = directory, !dir.suspended, !dir.clusterStopping else { return false }
        let view = view(now: now)
        return groups.allSatisfy { name in
            guard let group = config.group(named: name) else { return false }
            return group.servers.contains { $0 != me && view.contains($0) && !isLeaving($0, now: now) }
        }
    }

    mutating func skipRecovery(_ monitor: MonitorConfig, _ event: EventKind, _ reason: String) {
        guard monitoring.monitors[monitor.name]?.skipLogged == false else { return }
        monitoring.monitors[monitor.name]?.skipLogged = true
        log(event, "Recovery for \(monitor.name) on \(me) is not run: \(reason).")
    }

    // MARK: - Steps

    /// Stops and starts a group on this server (CLP_FACTOR=GROUPRESTART, CLP_EVENT=START).
    mutating func restartGroup(_ group: GroupName, now: EngineTime) {
        log(.groupReactivating, "Reactivating group \(group) on \(me).")
        beginStop(group, StopRequest(factor: .groupRestart, event: .start, lastAction: .none, thenRestart: true), now: now)
    }

    /// Stops and starts a resource and the resources that depend on it
    /// (CLP_FACTOR=RESOURCERESTART).
    mutating func restartResource(_ resource: ResourceName, group: GroupName, now: EngineTime) {
        guard let config = config.group(named: group) else { return }
        var scope: Set<ResourceName> = [resource]
        var grew = true
        while grew {
            grew = false
            for candidate in config.resources where !scope.contains(candidate.name) {
                if DependencyOrder.dependencies(of: candidate, in: config).contains(where: scope.contains) {
                    scope.insert(candidate.name)
                    grew = true
                }
            }
        }
        log(.resourceReactivating, "Reactivating resource \(resource) on \(me) (with \(scope.count - 1) dependent resources).")
        beginStop(
            group,
            StopRequest(factor: .resourceRestart, event: .start, lastAction: .none, scope: scope, thenRestart: true),
            now: now)
    }

    /// Asks the master (in this server's heartbeats) to fail a group over or to stop it.
    mutating func askMaster(_ request: MonitorRequest, group: GroupName, now: EngineTime) {
        runner.locals[group]?.monitorRequest = request
        runner.locals[group]?.monitorRequestAt = now
        log(
            request == .failover ? .failoverRequested : .stopRequested,
            "\(me) asks to \(request == .failover ? "fail over" : "stop") group \(group).")
        heartbeatDirty = true
    }

    // MARK: - Operator control

    mutating func monitorCommand(_ control: MonitorControl, monitor name: String?, now: EngineTime) -> CommandResult {
        let names: [String]
        if let name {
            guard let monitor = config.monitors.first(where: { $0.name == name }) else {
                return CommandResult(.badUsage, "Unknown monitor \(name).")
            }
            guard monitor.runs(on: me) else { return CommandResult(.failed, "Monitor \(name) does not run on \(me).") }
            // A suspension of an active monitor lasts while its target is online (reconcileMonitors):
            // with the target offline here there is nothing to suspend, and saying "done" would mislead.
            if control == .suspend, monitor.timing == .active, !targetAllowsRunning(monitor) {
                let target = monitor.target ?? ""
                return CommandResult(.failed, "Monitor \(name) is not running on \(me): its target \(target) is not online here.")
            }
            names = [name]
        } else {
            names = config.monitors.filter { $0.runs(on: me) }.map(\.name)
        }
        for name in names {
            switch control {
            case .suspend:
                guard monitoring.monitors[name]?.suspended == false, let monitor = monitoring.configs[name],
                    monitor.timing != .active || targetAllowsRunning(monitor)
                else { continue }
                monitoring.monitors[name]?.suspended = true
                log(.monitorSuspended, "Monitor \(name) suspended on \(me).")
            case .resume:
                guard monitoring.monitors[name]?.suspended == true else { continue }
                monitoring.monitors[name]?.suspended = false
                if monitoring.monitors[name]?.status == .suspend { monitoring.monitors[name]?.status = .offline }
                log(.monitorResumed, "Monitor \(name) resumed on \(me).")
            case .clearCounters:
                if persistent.monitorCounters.removeValue(forKey: name) != nil { persistDirty = true }
                monitoring.monitors[name]?.skipLogged = false
                log(.recoveryCountersReset, "Recovery counters of \(name) cleared on \(me).")
            case .dummyFailureOn:
                monitoring.monitors[name]?.dummyFailure = true
                log(.dummyFailureOn, "Dummy failure of \(name) enabled on \(me).")
                if let monitor = config.monitors.first(where: { $0.name == name }), monitor.type == .mrw || monitor.type == .mtw,
                    monitoring.monitors[name]?.run != nil
                {
                    apply(.error("dummy failure"), to: monitor, now: now)
                }
            case .dummyFailureOff:
                monitoring.monitors[name]?.dummyFailure = false
                log(.dummyFailureOff, "Dummy failure of \(name) disabled on \(me).")
                if let monitor = config.monitors.first(where: { $0.name == name }), monitor.type == .mrw || monitor.type == .mtw,
                    monitoring.monitors[name]?.run != nil, monitoring.monitors[name]?.externalError == nil
                {
                    var forced = monitor
                    forced.retries = 0
                    apply(.normal, to: forced, now: now)
                }
            }
        }
        heartbeatDirty = true
        reconcileMonitors(now: now)
        return .ok()
    }

    /// `clprexec --notice / --clear`: an error reported from outside to an mrw monitor.
    mutating func externalNotice(
        monitor name: String?, category: String, keyword: String?, clear: Bool, now: EngineTime
    ) -> CommandResult {
        let matching = config.monitors.filter { monitor in
            guard monitor.type == .mrw, monitor.runs(on: me) else { return false }
            if let name, monitor.name != name { return false }
            guard (monitor.string("category") ?? "NIC") == category else { return false }
            if let expected = monitor.string("keyword"), !expected.isEmpty { return keyword == expected }
            return true
        }
        guard !matching.isEmpty else {
            return CommandResult(
                .failed,
                "No mrw monitor on \(me) takes category \(category)\(keyword.map { " with keyword \($0)" } ?? "")\(name.map { " under the name \($0)" } ?? "")."
            )
        }
        for monitor in matching {
            let detail = "external error (category \(category)\(keyword.map { ", keyword \($0)" } ?? ""))"
            monitoring.monitors[monitor.name]?.externalError = clear ? nil : detail
            log(
                clear ? .externalErrorCleared : .externalErrorReported,
                "\(clear ? "Cleared external error" : "External error reported") for \(monitor.name) on \(me).")
            guard monitoring.monitors[monitor.name]?.run != nil else { continue }
            var forced = monitor
            forced.retries = 0
            apply(clear ? .normal : .error(detail), to: forced, now: now)
        }
        return .ok("\(clear ? "Cleared" : "Reported") on \(matching.map(\.name).joined(separator: ", ")).")
    }
}
