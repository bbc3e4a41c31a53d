import UnderstudyModel

/// One group as this server runs it: its status and each resource's, the operation under way,
/// and what the recovery ladder and the stop order remember. Its transitions are methods here;
/// the engine decides when to make them and logs, emits and persists around them.
struct LocalGroup: Sendable, Equatable {
    /// This group's account in heartbeats.
    var report: GroupReport {
        GroupReport(
            status: status, resources: resourceStatus, generation: generation, activationFailedResource: activationFailedResource,
            operatorStopped: operatorStopped, monitorRequest: monitorRequest)
    }

    var status: ActivationStatus = .offline
    var resourceStatus: [ResourceName: ActivationStatus]
    var activationRetries: [ResourceName: Int] = [:]
    var deactivationRetries: [ResourceName: Int] = [:]
    var asyncPIDs: [ResourceName: Int32] = [:]
    /// Directory generation of the assignment being run.
    var generation: UInt64 = 0
    /// Newest generation this server has started (or tried to), so a failed assignment is
    /// not retried in a loop.
    var lastTriedGeneration: UInt64 = 0
    var activationFailedResource: ResourceName?
    var diskFailed = false
    var startEvent: ScriptEvent = .start
    var operation: LocalOperation?
    /// A stop asked for while a start was running: done as soon as the current run ends.
    var pendingStop: StopRequest?
    /// A stop held back until the group's `stop-after` groups have stopped.
    var waitingStop: WaitingStop?
    var finalActionDoneGeneration: UInt64?
    /// Some resources were stopped by `clprsc -t`: the group is not lost, only partly down.
    var operatorStopped = false
    /// `clprsc -s -f` / `-t -f`: the resources still to run one by one (ResourceCommands.swift).
    var resourceChain: ResourceChain?
    /// A monitor's recovery asked the master to fail the group over or stop it.
    var monitorRequest: MonitorRequest?
    var monitorRequestAt: EngineTime?

    init(resources: [ResourceName]) {
        resourceStatus = Dictionary(uniqueKeysWithValues: resources.map { ($0, .offline) })
    }

    var isBusy: Bool { operation != nil }

    // MARK: - Transitions (the engine logs and emits around them: LocalGroups.swift)

    /// A start of the assignment of `generation` begins: every trace of an earlier run goes.
    mutating func beginStart(event: ScriptEvent, generation: UInt64) {
        self.generation = generation
        lastTriedGeneration = generation
        activationFailedResource = nil
        diskFailed = false
        startEvent = event
        activationRetries = [:]
        deactivationRetries = [:]
        status = .onlinePending
        pendingStop = nil
        resourceChain = nil
        operatorStopped = false
        monitorRequest = nil
        monitorRequestAt = nil
    }

    /// The first resource at or after `index` of `order` that is not online yet.
    func nextToStart(in order: [ResourceName], from index: Int) -> Int? {
        var next = index
        while next < order.count, resourceStatus[order[next]] == .online { next += 1 }
        return next < order.count ? next : nil
    }

    /// Every resource is started (or failed and skipped): the group's status says which.
    mutating func finishStart() {
        operation = nil
        status = resourceStatus.values.contains(.onlineFailure) ? .onlineFailure : .online
    }

    /// The last resource at or before `index` of `order` that may hold anything and is in
    /// the stop's scope.
    func nextToStop(in order: [ResourceName], from index: Int, scope: Set<ResourceName>?) -> Int? {
        var next = index
        while next >= 0, resourceStatus[order[next]] == .offline || !(scope?.contains(order[next]) ?? true) { next -= 1 }
        return next >= 0 ? next : nil
    }

    /// Every resource is stopped, or stuck in Offline Failure: the group's status says which.
    mutating func finishStop() {
        operation = nil
        resourceChain = nil
        monitorRequest = nil
        monitorRequestAt = nil
        status = resourceStatus.values.contains(.offlineFailure) ? .offlineFailure : .offline
        asyncPIDs = [:]
        activationFailedResource = nil
    }

    /// A reactivation's stop is done and the group starts again here.
    mutating func beginRestart() {
        status = .onlinePending
        startEvent = .start
        activationRetries = [:]
        activationFailedResource = nil
    }

    /// A resource's run was launched: the operation now waits for it.
    mutating func launched(_ resource: ResourceName, _ operation: LocalOperation) {
        resourceStatus[resource] = {
            if case .stopping = operation { return .offlinePending }
            return .onlinePending
        }()
        self.operation = operation
    }

    /// A resource's start script succeeded (an asynchronous one left `asyncPID` running).
    mutating func resourceStarted(_ resource: ResourceName, asyncPID: Int32?) {
        resourceStatus[resource] = .online
        if let asyncPID { asyncPIDs[resource] = asyncPID }
    }

    /// A resource's stop script succeeded.
    mutating func resourceStopped(_ resource: ResourceName) {
        resourceStatus[resource] = .offline
        asyncPIDs[resource] = nil
    }

    /// The start failed at `resource`, retries used up: the group stays in Online Failure.
    mutating func activationFailed(_ resource: ResourceName) {
        operation = nil
        status = .onlineFailure
        activationFailedResource = resource
    }

    /// A stop is held back until the `stop-after` groups have stopped: the group shows as
    /// stopping meanwhile.
    mutating func holdStop(_ request: StopRequest, since: EngineTime) {
        waitingStop = WaitingStop(request: request, since: since, statusBefore: status)
        status = .offlinePending
    }

    /// The held stop goes ahead or is called off: the status before the wait comes back.
    mutating func endStopWait() {
        guard let waiting = waitingStop else { return }
        waitingStop = nil
        status = waiting.statusBefore
    }

    /// `clprsc -s/-t` of one resource ended.
    mutating func finishSingle(_ operation: ResourceOperation, _ resource: ResourceName, outcome: ResourceOutcome) {
        switch outcome {
        case .success(let pid):
            resourceStatus[resource] = operation == .start ? .online : .offline
            if operation == .start, let pid { asyncPIDs[resource] = pid }
            if operation == .stop { asyncPIDs[resource] = nil }
        case .failure:
            resourceStatus[resource] = operation == .start ? .onlineFailure : .offlineFailure
        }
        self.operation = nil
        status = LocalGroup.summarize(resourceStatus)
        // Resources stopped by the operator are not a lost group: nothing re-places it.
        operatorStopped = status != .online
    }

    /// A group's status from its resources' after single-resource operations.
    static func summarize(_ statuses: [ResourceName: ActivationStatus]) -> ActivationStatus {
        let values = Array(statuses.values)
        if values.contains(.offlineFailure) { return .offlineFailure }
        if values.contains(.onlineFailure) { return .onlineFailure }
        if values.allSatisfy({ $0 == .offline }) { return .offline }
        if values.allSatisfy({ $0 == .online }) { return .online }
        // Some resources up, some down after single-resource operations.
        return .onlineFailure
    }
}
