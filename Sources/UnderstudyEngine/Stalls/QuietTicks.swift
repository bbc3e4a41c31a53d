import UnderstudyModel

// Quiet ticks. Most ticks of a settled cluster change nothing: every peer is heard in time,
// every group is where it should be, nothing waits for a deadline. After each full step the
// Engine works out until when that stays so at the least (`quietUntil`): the earliest time
// at which anything it watches could turn (a peer's silence reaching the timeout, an echo's
// lease running out, a grace or a listening period ending, a counter's reset, the next
// status probe). A tick before then only notes the time; the Node may sleep until then.
//
// Safe by construction: whatever the Engine cannot bound cheaply (a group starting or
// stopping, a lost or returning peer, a hold, a forced stop, a lowered timeout, …) makes
// `quietUntil` the step's own time, and every tick after it runs a full step as before.
// Waking earlier than `quietUntil` is always allowed. The simulator checks the promise: with
// `verifiesQuietTicks` a tick that takes the short way also runs the full step on a copy,
// and any difference (an action, a changed state) is recorded in `quietTickMismatches`, which
// the simulator's invariants report.

extension ServerEngine {
    /// A tick at `now` before `quietUntil`, with nothing pending: the full step would change
    /// nothing.
    public func tickIsQuiet(now: EngineTime) -> Bool {
        now < quietUntil && pendingActions.isEmpty && !heartbeatDirty && !persistDirty && !stalls.isHolding
    }

    /// A monitor's check. One that changed the monitor's state (a new normal spell its
    /// counters reset after, an error, …) ends the quiet: the next tick works out anew until
    /// when ticks are quiet. Most checks change nothing.
    mutating func checkMonitor(_ check: MonitorCheck, now: EngineTime) {
        let before = monitoring.monitors[check.monitor]
        monitorChecked(check, now: now)
        if monitoring.monitors[check.monitor] != before { quietUntil = min(quietUntil, now) }
    }

    /// The earliest time after `now` at which a tick could change anything, as far as a
    /// settled state lets the Engine tell; `now` itself when the state is not settled (every
    /// later tick then runs the full step).
    func quietDeadline(now: EngineTime) -> EngineTime {
        guard service == .running, pendingActions.isEmpty, !heartbeatDirty, !persistDirty, !stalls.isHolding, syncDone,
            !isolated, !configOutsider, monitoring.pendingUserSpaceStall == nil, timeoutLoweringEndsAt == nil,
            unauthenticatedHeard.isEmpty, heardWithoutState.isEmpty, forcedStops.records.isEmpty, priorClaims.isEmpty,
            !clusterStopRequested,
            powerFailureMonitors.isEmpty, placement.clusterStopQuietSince == nil, placement.downConfirmedAt.isEmpty,
            !ping.awaitingVerdict, !ping.lost, !ping.hasUnprobedLoss, ping.lostAt.isEmpty, runner.runs.isEmpty,
            let directory, !directory.clusterStopping
        else { return now }
        // A settled state lasts at most a timeout here (the Node ticks anyway).
        var until = now + timeout
        func due(_ time: EngineTime?) {
            guard let time, time > now else { return }
            until = min(until, time)
        }
        // Listening after a (re)start or a cut: the thresholds of founding and placement.
        due(listeningSince + interval * 2)
        due(listeningSince + listenTimeout)
        if listenFully { due(listeningSince + rejoinListen) }
        // Every peer connected, listing us, not returning from a departure; each turns when
        // its silence reaches the timeout (or a promised floor), when its echo's lease runs
        // out, and when its grace and listening periods end.
        let credit = membership.stallCredit
        for peer in serverNames where peer != me {
            guard let state = membership.peers[peer], membership.isConnected(peer, now: now), state.listsUs,
                !state.returningFromDeparture, state.downUntilHeardAfter == nil, let heard = state.lastHeard
            else { return now }
            due(heard + membership.judgeTimeout + (credit - state.creditAtHeard))
            if let floor = state.timeoutFloor { due(floor.heard + floor.timeout + (credit - floor.creditAtHeard)) }
            due(state.echoedLease)
            due(state.upSinceLocal.map { $0 + rejoinGrace })
            due(state.listeningSinceLocal.map { $0 + timeout })
            for heardOnPath in membership.paths[peer]?.lastHeard.values ?? [:].values {
                due(heardOnPath + membership.judgeTimeout)
            }
        }
        // Status probes of the partition resolution come every `statusProbeInterval`.
        if !ping.targets.isEmpty || ping.witness, ping.probe == nil {
            due(ping.lastProbeEnd + Self.statusProbeInterval)
        }
        // Groups: none starting, stopping, waiting or asked by a monitor.
        for local in runner.locals.values {
            guard local.operation == nil, local.pendingStop == nil, local.waitingStop == nil, local.monitorRequest == nil
            else { return now }
        }
        // Monitors: no recovery script waiting, no UPS on battery; counters reset after a
        // normal spell.
        for (name, local) in monitoring.monitors {
            guard local.pendingScript == nil, local.onBatterySince == nil else { return now }
            if let since = local.normalSince, let counters = persistent.monitorCounters[name], !counters.isZero,
                let config = monitoring.configs[name]
            {
                due(since + config.recovery.resetCountersAfter)
            }
        }
        if let since = healthySince { due(since + config.cluster.recovery.rebootCountResetAfter) }
        // A stall that outlasts this server's lease must be noticed (`noticeStall`): the Node
        // is expected to deliver an event before the lease runs out.
        due(leaseExpiry(now: now))
        return until
    }

    /// The differences `verifiesQuietTicks` found since the last call.
    public mutating func takeQuietTickMismatches() -> [String] {
        guard !quietTickMismatches.isEmpty else { return [] }
        defer { quietTickMismatches = [] }
        return quietTickMismatches
    }

    /// `verifiesQuietTicks`: the full step on a copy must agree with the short way.
    mutating func verifyQuietTick(now: EngineTime) {
        var quiet = self
        quiet.stalls.lastEventAt = now
        var full = self
        let actions = full.step(now: now)
        // What only the full step keeps up to date: its memo and its own promise.
        full.viewMemo = quiet.viewMemo
        full.quietUntil = quiet.quietUntil
        guard !actions.isEmpty || full != quiet else { return }
        var differences: [String] = []
        for (mine, theirs) in zip(Mirror(reflecting: quiet).children, Mirror(reflecting: full).children) {
            let a = String(describing: mine.value)
            let b = String(describing: theirs.value)
            if a != b { differences.append("\(mine.label ?? "?"): \(a.prefix(300)) → \(b.prefix(300))") }
        }
        quietTickMismatches.append(
            "\(me) at \(now): a quiet tick (quiet until \(quietUntil)) differs from the full step: actions \(actions.map { "\($0)".prefix(200) }); \(differences.joined(separator: "; "))"
        )
    }
}
