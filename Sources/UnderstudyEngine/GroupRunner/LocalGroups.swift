import UnderstudyModel

/// Why and how a group stops on this server.
struct StopRequest: Sendable, Equatable {
    var factor: StopFactor
    var event: ScriptEvent
    var lastAction: LastAction
    /// Only these resources (a resource reactivation); nil = the whole group.
    var scope: Set<ResourceName>? = nil
    /// Start again on this server once stopped (a monitor's reactivation).
    var thenRestart = false
    /// Stop now even if `stop-after` groups still run (their wait timed out).
    var ignoreStopWait = false
}

enum LocalOperation: Sendable, Equatable {
    /// Starting resources in activation order; `index` is the resource being started.
    case starting(event: ScriptEvent, index: Int, runID: UInt64)
    /// Stopping in reverse order; `index` is the resource being stopped.
    case stopping(StopRequest, index: Int, runID: UInt64)
    /// `clprsc -s/-t` of one resource.
    case single(ResourceOperation, ResourceName, runID: UInt64)
}

/// This server's groups (GroupRunner box of the architecture): each group's local state and
/// the resource runs the Node is carrying out for them, by run id.
struct GroupRunner: Sendable, Equatable {
    var locals: [GroupName: LocalGroup] = [:]
    /// The groups in configuration order.
    var groupNames: [GroupName]
    /// The same sorted by name (held stops are released in this order).
    var groupNamesSorted: [GroupName]
    /// Resources of each group in activation order.
    var activationOrder: [GroupName: [ResourceName]]
    private(set) var runs: [UInt64: RunningRun] = [:]
    private(set) var nextRunID: UInt64 = 1

    init(config: ClusterConfig) {
        var order: [GroupName: [ResourceName]] = [:]
        for group in config.groups {
            order[group.name] = DependencyOrder.activationOrder(of: group)
            locals[group.name] = LocalGroup(resources: group.resources.map(\.name))
        }
        self.activationOrder = order
        self.groupNames = config.groups.map(\.name)
        self.groupNamesSorted = groupNames.sorted()
    }

    /// Records a run the Node is asked to carry out; returns its id.
    mutating func newRun(_ run: RunningRun) -> UInt64 {
        let id = nextRunID
        nextRunID += 1
        runs[id] = run
        return id
    }

    /// The run the Node reports finished, no longer in flight (nil: unknown, or forgotten by
    /// a fence).
    mutating func finishRun(_ id: UInt64) -> RunningRun? { runs.removeValue(forKey: id) }

    /// A fence killed every run in flight: their ends, if reported, are ignored.
    mutating func forgetRuns() { runs = [:] }

    /// What this server tells the others of its groups (in every heartbeat).
    func reports() -> [GroupName: GroupReport] { locals.mapValues(\.report) }

    /// A group holds resources here, or scripts of one run.
    var holdsAnyGroup: Bool { locals.values.contains { $0.status.holdsResources || $0.isBusy } }
}

extension ServerEngine {
    // MARK: - Reconciling toward the directory

    /// Starts what the directory assigns here and stops what it no longer does.
    mutating func reconcileLocalGroups(now: EngineTime) {
        guard let directory else { return }
        if autoStartSuppressed, directory.suppressionLifted[me] == instance {
            autoStartSuppressed = false
            heartbeatDirty = true
            log(.autoStartSuppressionLifted, "Automatic group start is no longer suspended on \(me) (an operator started a group here).")
        }
        // By name, in configuration order (a whole `GroupConfig` would be copied per group and step).
        for name in runner.groupNames {
            guard let local = runner.locals[name] else { continue }
            let entry = directory.entries[name] ?? DirectoryEntry()
            let assignedHere = entry.wanted && entry.owner == me && entry.ownerInstance == instance
            if local.status.holdsResources || local.isBusy {
                if assignedHere, service == .running, local.waitingStop?.request.factor == .groupStop {
                    cancelStopWait(name)
                } else if !assignedHere && !isStopping(local) && local.status != .offlineFailure {
                    beginStop(
                        name,
                        StopRequest(factor: entry.stopFactor, event: entry.stopEvent, lastAction: .none),
                        now: now)
                } else if assignedHere, entry.finalActionOn == me, let action = entry.finalAction,
                    local.status == .onlineFailure, local.operation == nil,
                    local.finalActionDoneGeneration != local.generation
                {
                    runner.locals[name]?.finalActionDoneGeneration = local.generation
                    applyActivationFinalAction(action, group: name, now: now)
                }
            } else if assignedHere, service == .running, entry.generation > local.lastTriedGeneration {
                if let reason = startBlocker(name, now: now) {
                    if loggedOnce.startWaits.insert(name).inserted {
                        log(.groupStartWaiting, "Group \(name) waits to start on \(me): \(reason).")
                    }
                    continue
                }
                loggedOnce.startWaits.remove(name)
                beginStart(name, event: entry.startEvent, generation: entry.generation, now: now)
            }
        }
    }

    /// Stopping, or about to: a stop runs, is queued behind a start, or waits for its
    /// `stop-after` groups.
    func isStopping(_ local: LocalGroup) -> Bool {
        local.waitingStop != nil || isDeactivating(local)
    }

    /// Its stop scripts run or are next (not merely waiting for `stop-after` groups).
    func isDeactivating(_ local: LocalGroup) -> Bool {
        if local.pendingStop != nil { return true }
        if case .stopping = local.operation { return true }
        return false
    }

    // MARK: - Start

    mutating func beginStart(_ group: GroupName, event: ScriptEvent, generation: UInt64, now: EngineTime) {
        guard var local = runner.locals[group] else { return }
        local.beginStart(event: event, generation: generation)
        runner.locals[group] = local
        log(.groupStarting, "Activating group \(group) on \(me) (CLP_EVENT=\(event.rawValue)).")
        heartbeatDirty = true
        persistDirty = true
        continueStart(group, from: 0, now: now)
    }

    /// Starts the next resource at or after `index` that is not online yet.
    mutating func continueStart(_ group: GroupName, from index: Int, now: EngineTime) {
        guard var local = runner.locals[group], let order = runner.activationOrder[group] else { return }
        if let request = local.pendingStop {
            local.pendingStop = nil
            local.operation = nil
            runner.locals[group] = local
            beginStop(group, request, now: now)
            return
        }
        guard let next = local.nextToStart(in: order, from: index) else {
            local.finishStart()
            runner.locals[group] = local
            log(
                .groupStarted, level: local.status == .onlineFailure ? .warning : .info,
                "Group \(group) is \(local.status.rawValue) on \(me).")
            heartbeatDirty = true
            persistDirty = true
            return
        }
        let resource = order[next]
        let runID = launch(group: group, resource: resource, operation: .start, event: local.startEvent, stop: nil)
        local.launched(resource, .starting(event: local.startEvent, index: next, runID: runID))
        runner.locals[group] = local
    }

    // MARK: - Stop

    mutating func beginStop(_ group: GroupName, _ request: StopRequest, now: EngineTime) {
        guard var local = runner.locals[group] else { return }
        switch local.operation {
        case .starting, .single:
            // Let the running script finish; then stop (never two runs at once in a group).
            local.pendingStop = request
            runner.locals[group] = local
            return
        case .stopping(let current, _, _):
            // A reactivation's stop becomes the real stop once it is done.
            if current.thenRestart && !request.thenRestart {
                local.pendingStop = request
                runner.locals[group] = local
            }
            return
        case nil:
            break
        }
        guard local.status.holdsResources else { return }
        if holdStopForWaits(group, request, now: now) { return }
        local.waitingStop = nil
        local.status = .offlinePending
        local.deactivationRetries = [:]
        runner.locals[group] = local
        stopMonitors(watching: group, now: now)
        log(.groupStopping, "Stopping group \(group) on \(me) (CLP_FACTOR=\(request.factor.rawValue)).")
        heartbeatDirty = true
        let order = runner.activationOrder[group] ?? []
        continueStop(group, request, from: order.count - 1, now: now)
    }

    /// Stops the next resource at or before `index` that may hold anything.
    mutating func continueStop(_ group: GroupName, _ request: StopRequest, from index: Int, now: EngineTime) {
        guard var local = runner.locals[group], let order = runner.activationOrder[group] else { return }
        let next = local.nextToStop(in: order, from: index, scope: request.scope)
        if next == nil, request.thenRestart, !local.resourceStatus.values.contains(.offlineFailure) {
            finishReactivationStop(group, local, now: now)
            return
        }
        guard let next else {
            local.finishStop()
            runner.locals[group] = local
            log(
                local.status == .offlineFailure ? .groupStopFailed : .groupStopped, "Group \(group) is \(local.status.rawValue) on \(me).")
            heartbeatDirty = true
            persistDirty = true
            return
        }
        let resource = order[next]
        let runID = launch(group: group, resource: resource, operation: .stop, event: request.event, stop: request)
        local.launched(resource, .stopping(request, index: next, runID: runID))
        runner.locals[group] = local
    }

    /// The stop of a reactivation is done: start again here, unless a real stop came
    /// meanwhile or the group is no longer assigned here.
    mutating func finishReactivationStop(_ group: GroupName, _ stopped: LocalGroup, now: EngineTime) {
        var local = stopped
        local.operation = nil
        let entry = directory?.entries[group]
        let stillHere = entry.map { $0.wanted && $0.owner == me && $0.ownerInstance == instance } ?? false
        if let request = local.pendingStop
            ?? (stillHere && service == .running
                ? nil
                : StopRequest(
                    factor: entry?.stopFactor ?? .groupStop, event: entry?.stopEvent ?? .start, lastAction: .none))
        {
            local.pendingStop = nil
            runner.locals[group] = local
            beginStop(group, request, now: now)
            return
        }
        local.beginRestart()
        runner.locals[group] = local
        log(.groupRestarting, "Starting group \(group) again on \(me) (reactivation).")
        heartbeatDirty = true
        continueStart(group, from: 0, now: now)
    }

    // MARK: - Runs

    mutating func launch(
        group: GroupName, resource: ResourceName, operation: ResourceOperation, event: ScriptEvent,
        stop: StopRequest?
    ) -> UInt64 {
        let runID = runner.newRun(RunningRun(group: group, resource: resource, operation: operation))
        let policy = config.group(named: group)?.servers ?? []
        let position = policy.firstIndex(of: me).map { $0 + 1 } ?? 0
        let context = ScriptContext(
            event: event, isHomeServer: policy.first == me, diskSucceeded: !(runner.locals[group]?.diskFailed ?? false),
            priority: position, groupName: group, resourceName: resource, factor: stop?.factor,
            lastAction: stop?.lastAction)
        emit(
            .runResource(
                ResourceRun(
                    id: runID, group: group, resource: resource, operation: operation, context: context,
                    asyncPID: operation == .stop ? runner.locals[group]?.asyncPIDs[resource] : nil)))
        return runID
    }

    mutating func resourceFinished(runID: UInt64, outcome: ResourceOutcome, now: EngineTime) {
        guard let run = runner.finishRun(runID), var local = runner.locals[run.group] else { return }
        guard let resourceConfig = config.resource(named: run.resource)?.resource else { return }
        switch local.operation {
        case .starting(let event, let index, let current) where current == runID:
            switch outcome {
            case .success(let pid):
                local.resourceStarted(run.resource, asyncPID: pid)
                runner.locals[run.group] = local
                log(.resourceActivated, "Resource \(run.resource) activated on \(me).")
                continueStart(run.group, from: index + 1, now: now)
            case .failure(let reason):
                let used = local.activationRetries[run.resource, default: 0]
                if resourceConfig.type.isDiskType { local.diskFailed = true }
                log(.resourceActivationFailed, "Activating resource \(run.resource) on \(me) failed: \(reason)")
                if used < resourceConfig.activation.retry, local.pendingStop == nil {
                    local.activationRetries[run.resource] = used + 1
                    local.resourceStatus[run.resource] = .offline
                    runner.locals[run.group] = local
                    log(
                        .resourceActivationRetry, "Retrying activation of \(run.resource) (\(used + 1)/\(resourceConfig.activation.retry))."
                    )
                    continueStart(run.group, from: index, now: now)
                    return
                }
                local.resourceStatus[run.resource] = .onlineFailure
                if local.pendingStop != nil {
                    runner.locals[run.group] = local
                    continueStart(run.group, from: index, now: now)
                    return
                }
                _ = event
                local.activationFailed(run.resource)
                runner.locals[run.group] = local
                log(.groupActivationFailed, "Group \(run.group) failed to activate on \(me) (resource \(run.resource)).")
                heartbeatDirty = true
                persistDirty = true
            }
        case .stopping(let request, let index, let current) where current == runID:
            switch outcome {
            case .success:
                local.resourceStopped(run.resource)
                runner.locals[run.group] = local
                log(.resourceDeactivated, "Resource \(run.resource) stopped on \(me).")
                continueStop(run.group, request, from: index - 1, now: now)
            case .failure(let reason):
                log(.resourceDeactivationFailed, "Stopping resource \(run.resource) on \(me) failed: \(reason)")
                let used = local.deactivationRetries[run.resource, default: 0]
                if used < resourceConfig.deactivation.retry {
                    local.deactivationRetries[run.resource] = used + 1
                    local.resourceStatus[run.resource] = .onlineFailure
                    runner.locals[run.group] = local
                    continueStop(run.group, request, from: index, now: now)
                    return
                }
                local.resourceStatus[run.resource] = .offlineFailure
                runner.locals[run.group] = local
                applyDeactivationFinalAction(
                    resourceConfig.deactivation.finalAction, group: run.group, request: request, index: index, now: now)
            }
        case .single(let operation, let resource, let current) where current == runID && resource == run.resource:
            if case .failure(let reason) = outcome {
                log(
                    operation == .start ? .resourceStartFailed : .resourceStopFailed,
                    "\(operation == .start ? "Starting" : "Stopping") resource \(resource) on \(me) failed: \(reason)")
            }
            local.finishSingle(operation, resource, outcome: outcome)
            runner.locals[run.group] = local
            heartbeatDirty = true
            persistDirty = true
            continueResourceChain(run.group, finished: resource, operation: operation, outcome: outcome)
            if let request = local.pendingStop {
                runner.locals[run.group]?.pendingStop = nil
                beginStop(run.group, request, now: now)
            }
        default:
            // A run of an operation that was abandoned (fenced): nothing to do.
            break
        }
    }

    // MARK: - Final actions

    mutating func applyActivationFinalAction(_ action: FinalAction, group: GroupName, now: EngineTime) {
        log(.activationFinalAction, "Final action after activation failure of group \(group) on \(me): \(action.rawValue).")
        switch action {
        case .none, .stopGroup:
            // none: the group stays in Online Failure; stop-group: the master has withdrawn it.
            break
        case .noneContinue:
            guard var local = runner.locals[group], let failed = local.activationFailedResource,
                let index = runner.activationOrder[group]?.firstIndex(of: failed)
            else { return }
            local.status = .onlinePending
            runner.locals[group] = local
            continueStartSkippingFailures(group, from: index + 1, now: now)
        case .stopResource:
            guard let failed = runner.locals[group]?.activationFailedResource else { return }
            startSingle(.stop, resource: failed, group: group)
        case .stopClusterService:
            beginLeaving(factor: .serverShutdown, lastAction: .none, then: .stayStopped, now: now)
        case .shutdown, .reboot, .panic, .reset, .keepaliveReset, .bmcPowerOff, .bmcReset, .bmcPowerCycle, .bmcNMI:
            osFinalAction(action, suppressCase: .activation, now: now)
        }
    }

    /// `none-continue`: go on with the next resources; failed ones stay in Online Failure.
    mutating func continueStartSkippingFailures(_ group: GroupName, from index: Int, now: EngineTime) {
        continueStart(group, from: index, now: now)
    }

    mutating func applyDeactivationFinalAction(
        _ action: FinalAction, group: GroupName, request: StopRequest, index: Int, now: EngineTime
    ) {
        log(.deactivationFinalAction, "Final action after deactivation failure of group \(group) on \(me): \(action.rawValue).")
        switch action {
        case .noneContinue, .stopResource, .stopGroup:
            continueStop(group, request, from: index - 1, now: now)
        case .none, .stopClusterService:
            // Stuck in Offline Failure: nothing else may take the group (invariant I1).
            guard var local = runner.locals[group] else { return }
            local.operation = nil
            local.status = .offlineFailure
            runner.locals[group] = local
            heartbeatDirty = true
            persistDirty = true
        case .shutdown, .reboot, .panic, .reset, .keepaliveReset, .bmcPowerOff, .bmcReset, .bmcPowerCycle, .bmcNMI:
            guard var local = runner.locals[group] else { return }
            local.operation = nil
            local.status = .offlineFailure
            runner.locals[group] = local
            heartbeatDirty = true
            osFinalAction(action, suppressCase: .deactivation, now: now)
        }
    }

    /// A final action that stops the OS (shutdown, reboot) or the machine (panic, reset,
    /// keepalive-reset, bmc-*): skipped when this server is alone and the configuration says
    /// so, or when the reboot limit is reached; each one that runs counts as a reboot.
    mutating func osFinalAction(_ action: FinalAction, suppressCase: RecoverySettings.SuppressCase, now: EngineTime) {
        let othersAlive = serverNames.contains { $0 != me && membership.isUp($0, now: now) }
        if !othersAlive && config.cluster.recovery.suppressFinalActionWhenAlone.contains(suppressCase) {
            log(.finalActionSuppressed, "Final action \(action.rawValue) suppressed: no other server is alive.")
            return
        }
        let limit = config.cluster.recovery.maxReboots
        if limit > 0 && persistent.rebootCount >= limit {
            log(.finalActionRebootLimit, "Final action \(action.rawValue) skipped: the reboot limit (\(limit)) is reached.")
            return
        }
        guard let os = OSAction(action) else { return }
        persistent.rebootCount += 1
        persistDirty = true
        if os.isImmediate {
            stopMachineAtOnce(os, reason: "final action", now: now)
            return
        }
        beginLeaving(factor: .serverShutdown, lastAction: os == .reboot ? .reboot : .halt, then: .os(os), now: now)
    }

    /// Panic, reset, keepalive-reset and the BMC actions: the machine stops at once. No group
    /// is stopped (its stop scripts might hang on the very device that failed) and no
    /// farewell goes out — a farewell says "left cleanly, holds nothing", false while the
    /// resources still run. The Engine stops here: no heartbeat, no event handled, so the
    /// peers see a lost server and take its groups over after confirming the loss (the
    /// heartbeat timeout, NP resolution, the takeover margin and any forced stop), exactly as
    /// after a crash. The Node runs the command before anything else of this step except
    /// persisting (the reboot count) and logging.
    mutating func stopMachineAtOnce(_ os: OSAction, reason: String, now: EngineTime) {
        guard service != .stopped else { return }
        log(
            .machineStopNow,
            "Stopping \(me) at once (\(reason)): \(os.rawValue), without stop scripts; the other servers take its groups over once they confirm its loss."
        )
        service = .stopped
        heartbeatDirty = false
        emit(.stopMachineNow(os))
    }

    /// The Node ran the command of an immediate action (`EngineAction.stopMachineNow`) and
    /// the OS still runs (the command failed, or a BMC is slow): every group here is fenced
    /// at once, and the Node exits without clearing the abnormal-stop marker, so the keeper
    /// and the peers treat this server as crashed.
    public mutating func machineStillRuns(after os: OSAction, now: EngineTime) -> [EngineAction] {
        quietUntil = min(quietUntil, now)
        log(
            .machineStillRuns,
            "The OS of \(me) still runs after \(os.rawValue): fencing every group here; the daemon exits as after a crash (the abnormal-stop marker stays)."
        )
        fenceAll(reason: "the OS still runs after \(os.rawValue)")
        return step(now: now)
    }

    /// A helper process of the daemon failed for good (`recovery.process-failure-action`) and
    /// the action stops the machine at once.
    public mutating func stopMachineNow(_ os: OSAction, reason: String, now: EngineTime) -> [EngineAction] {
        stopMachineAtOnce(os, reason: reason, now: now)
        return step(now: now)
    }

    /// `recovery.reboot-count-reset-after`: a server that has run that long with no monitor
    /// in error and no group failed may again reboot by final actions (`max-reboots` counts
    /// reboots of one outage, not of the server's life).
    mutating func resetRebootCountIfHealthy(now: EngineTime) {
        let resetAfter = config.cluster.recovery.rebootCountResetAfter
        guard persistent.rebootCount > 0, resetAfter > .zero, service == .running else {
            healthySince = nil
            return
        }
        let unhealthy =
            monitoring.monitors.values.contains { $0.status == .error }
            || runner.locals.values.contains { $0.status == .onlineFailure || $0.status == .offlineFailure }
        guard !unhealthy else {
            healthySince = nil
            return
        }
        guard let since = healthySince else {
            healthySince = now
            return
        }
        guard now - since >= resetAfter else { return }
        log(
            .rebootCountReset,
            "Reboot count of \(me) reset (was \(persistent.rebootCount)): it ran \(resetAfter.shortDescription) without errors.")
        persistent.rebootCount = 0
        persistDirty = true
        healthySince = nil
    }

    /// `clpregctrl --get` / `--clear`: the count of reboots by final actions on this server
    /// (`max-reboots` stops them at its limit), cleared by an operator once the cause is fixed.
    mutating func rebootCount(clear: Bool) -> CommandResult {
        let count = persistent.rebootCount
        guard clear else { return .ok("count : \(count)") }
        if count > 0 {
            persistent.rebootCount = 0
            persistDirty = true
            log(.rebootCountReset, "Reboot count of \(me) cleared by an operator (was \(count)) (clpregctrl --clear).")
        }
        return .ok("count : 0")
    }

    // MARK: - Single resources

    mutating func startSingle(_ operation: ResourceOperation, resource: ResourceName, group: GroupName) {
        guard var local = runner.locals[group] else { return }
        let event: ScriptEvent = .start
        let stop = operation == .stop ? StopRequest(factor: .none, event: .start, lastAction: .none) : nil
        let runID = launch(group: group, resource: resource, operation: operation, event: event, stop: stop)
        local.resourceStatus[resource] = operation == .start ? .onlinePending : .offlinePending
        local.operation = .single(operation, resource, runID: runID)
        local.status = operation == .start ? .onlinePending : .offlinePending
        runner.locals[group] = local
        heartbeatDirty = true
    }

    // MARK: - Fencing and leaving

    /// Gives up every group at once: the Node kills their processes without stop scripts.
    mutating func fenceAll(reason: String) {
        // In configuration order: same events in, same actions out.
        for group in config.groups {
            let name = group.name
            guard let local = runner.locals[name], local.status.holdsResources || local.isBusy else { continue }
            emit(.fenceGroup(name))
            var fenced = local
            fenced.status = .offline
            fenced.operation = nil
            fenced.pendingStop = nil
            fenced.waitingStop = nil
            fenced.asyncPIDs = [:]
            fenced.activationFailedResource = nil
            for resource in fenced.resourceStatus.keys { fenced.resourceStatus[resource] = .offline }
            runner.locals[name] = fenced
            log(.groupFenced, "Group \(name) fenced on \(me) (\(reason)).")
        }
        runner.forgetRuns()
        heartbeatDirty = true
        persistDirty = true
    }

    mutating func beginLeaving(factor: StopFactor, lastAction: LastAction, then: AfterServiceStop, now: EngineTime) {
        if case .leaving = service { return }
        guard service == .running else { return }
        service = .leaving(factor: factor, lastAction: lastAction, then: then)
        leavingSince = now
        // Monitors stop before the resources they watch.
        reconcileMonitors(now: now)
        log(.serviceStopping, "Cluster service stopping on \(me) (CLP_FACTOR=\(factor.rawValue), CLP_LASTACTION=\(lastAction.rawValue)).")
        heartbeatDirty = true
        for group in config.groups {
            guard let local = runner.locals[group.name], local.status.holdsResources || local.isBusy else { continue }
            // A group stuck in Offline Failure already had its stop and final action.
            if local.status == .offlineFailure && !local.isBusy { continue }
            beginStop(group.name, StopRequest(factor: factor, event: .start, lastAction: lastAction), now: now)
        }
    }

    mutating func finishLeavingIfDone(now: EngineTime) {
        guard case .leaving(let factor, _, let then) = service else { return }
        let busy = runner.locals.values.contains {
            $0.isBusy || ($0.status.holdsResources && $0.status != .offlineFailure && $0.status != .onlineFailure)
        }
        guard !busy else { return }
        let stuck = runner.locals.values.contains { $0.status.holdsResources }
        // A leaving master stays until every connected server has its last directory (the
        // releases of the groups it just stopped), so its successor places them; at most a
        // heartbeat timeout from the start of the stop (a server that does not follow it,
        // such as one with another configuration, must not keep it from stopping). Without
        // the last directory the successor still fails the groups over: this server's
        // farewell tells it that it holds nothing any more.
        if isMaster(now: now), let version = directory?.version, now - (leavingSince ?? now) < timeout {
            let lagging = view(now: now).contains { $0 != me && appliedVersion(of: $0, now: now) < version }
            if lagging { return }
        }
        if case .os = then, stuck {
            // Last words while still running: peers keep the stuck group on this server until
            // they see the machine go down.
            emit(.sendHeartbeat(makeHeartbeat(now: now)))
        }
        recordLeftBehind(factor: factor, now: now)
        service = .stopped
        // A clean restart (`clpcl -r`) is the operator's word that this server may take
        // groups automatically again after an abnormal stop.
        if then == .restart { autoStartSuppressed = false }
        syncDone = false
        directory = nil
        majority.lost = false
        ping.lost = false
        // A farewell heartbeat tells peers at once that this server left (serviceUp=false).
        // Not when the OS goes down with a group stuck in failure: its resources end with
        // the machine, which the others see as a server loss (timeout, then takeover).
        if case .os = then, stuck {
            log(.serviceStopped, level: .warning, "Leaving without a farewell: a group is stuck in failure; the OS stop ends it.")
        } else {
            emit(.sendHeartbeatNow)
        }
        persistDirty = true
        log(.serviceStopped, "Cluster service stopped on \(me).")
        if case .os = then, !powerFailureMonitors.isEmpty { emit(.powerOffUPS(monitors: powerFailureMonitors)) }
        emit(.serviceStopped(then))
    }
}
