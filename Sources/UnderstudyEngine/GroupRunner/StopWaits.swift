import UnderstudyModel

// Ordered stop (reference: group stop wait, depend/deact). A group with `stop-after` stops
// only once the groups it names have stopped — on the occasions its `when` lists — or once
// its timeout has passed. Meanwhile it stays up, shown as Offline Pending (stopping); at a
// group stop its monitors keep running (at a cluster or server stop every monitor has
// stopped first, as always). Groups without waits stop in parallel, as before.

/// A stop held back until the `stop-after` groups have stopped.
struct WaitingStop: Sendable, Equatable {
    var request: StopRequest
    var since: EngineTime
    /// The status before the wait, restored if the stop is called off.
    var statusBefore: ActivationStatus
}

extension StopFactor {
    /// The stop-wait occasion a stop belongs to; nil for stops that never wait (moves,
    /// failovers, restarts).
    var stopWaitOccasion: GroupConfig.StopWaitOccasion? {
        switch self {
        case .clusterShutdown: return .clusterStop
        case .serverShutdown: return .serverStop
        case .groupStop: return .groupStop
        case .groupMove, .groupFailover, .groupRestart, .resourceRestart, .none: return nil
        }
    }
}

extension ServerEngine {
    /// The `stop-after` groups of `group` still to be waited for before a stop with `factor`.
    func groupsToAwait(before group: GroupName, factor: StopFactor, now: EngineTime) -> [GroupName] {
        guard let occasion = factor.stopWaitOccasion, let config = config.group(named: group), !config.stopAfter.isEmpty,
            config.stopAfterWhen.contains(occasion)
        else { return [] }
        return config.stopAfter.filter { other in
            let here = runner.locals[other].map { $0.isBusy || Self.isRunningOrMoving($0.status) } ?? false
            switch occasion {
            case .serverStop:
                return here
            case .clusterStop:
                return here || runsOnAPeer(other, now: now)
            case .groupStop:
                // Only groups being stopped too (no longer wanted), wherever they run.
                let beingStopped = directory?.entries[other].map { !$0.wanted } ?? false
                return beingStopped && (here || runsOnAPeer(other, now: now))
            }
        }
    }

    /// Starting, online or stopping — not failed in place: a group stuck in a failure is not
    /// waited for (it would hold every waiting group until the timeout).
    static func isRunningOrMoving(_ status: ActivationStatus) -> Bool {
        switch status {
        case .online, .onlinePending, .offlinePending: return true
        case .offline, .onlineFailure, .offlineFailure, .unknown: return false
        }
    }

    func runsOnAPeer(_ group: GroupName, now: EngineTime) -> Bool {
        view(now: now).contains { peer in
            guard peer != me, let status = membership.report(of: peer, now: now)?.groups[group]?.status else { return false }
            return Self.isRunningOrMoving(status)
        }
    }

    /// Holds a stop back when `stop-after` groups still run; returns true when it did.
    mutating func holdStopForWaits(_ group: GroupName, _ request: StopRequest, now: EngineTime) -> Bool {
        guard var local = runner.locals[group], request.scope == nil, !request.thenRestart, !request.ignoreStopWait else { return false }
        let awaited = groupsToAwait(before: group, factor: request.factor, now: now)
        guard !awaited.isEmpty else { return false }
        if let waiting = local.waitingStop {
            local.waitingStop?.request = request
            if waiting.request.factor != request.factor {
                log(
                    .groupStopWaiting,
                    "Group \(group) on \(me) now stops for \(request.factor.rawValue); still waiting for \(awaited.joined(separator: ", "))."
                )
            }
        } else {
            let timeout = config.group(named: group)?.stopAfterTimeout ?? Defaults.stopWaitTimeout
            local.holdStop(request, since: now)
            log(
                .groupStopWaiting,
                "Group \(group) on \(me) waits for \(awaited.joined(separator: ", ")) to stop before it stops (at most \(timeout.shortDescription))."
            )
            heartbeatDirty = true
        }
        runner.locals[group] = local
        return true
    }

    /// Stops held back whose groups have stopped (or whose wait timed out) go ahead.
    mutating func releaseStopWaits(now: EngineTime) {
        for name in runner.groupNamesSorted {
            guard let local = runner.locals[name], let waiting = local.waitingStop else { continue }
            let awaited = groupsToAwait(before: name, factor: waiting.request.factor, now: now)
            let timeout = config.group(named: name)?.stopAfterTimeout ?? Defaults.stopWaitTimeout
            var request = waiting.request
            if awaited.isEmpty {
                log(.groupStopWaitOver, "Group \(name) on \(me): the groups it waits for have stopped; stopping it.")
            } else if now - waiting.since >= timeout {
                log(
                    .groupStopWaitTimedOut,
                    "Group \(name) on \(me): \(awaited.joined(separator: ", ")) still not stopped after \(timeout.shortDescription); stopping it anyway."
                )
                request.ignoreStopWait = true
            } else {
                continue
            }
            runner.locals[name]?.endStopWait()
            beginStop(name, request, now: now)
        }
    }

    /// The directory wants a group here again while its stop waits (`clpgrp -t` then `-s`):
    /// the stop is called off.
    mutating func cancelStopWait(_ group: GroupName) {
        guard runner.locals[group]?.waitingStop != nil else { return }
        runner.locals[group]?.endStopWait()
        heartbeatDirty = true
        log(.groupStopCancelled, "Group \(group) on \(me) no longer stops: it is wanted here again.")
    }
}
