import UnderstudyModel

// `pingnp`: when a peer goes down (and every interval while any server is missing), this
// server pings the targets (typically the default gateway). A server that reaches none of
// them while it does not see every server is the loser of the partition: it fences its
// groups and runs the partition action. A survivor takes a lost peer's groups over only
// after a probe started after the loss succeeded, and one probe timeout later than without
// ping resolution, the time the loser needs to find out (see `takeoverMargin`).

extension ServerEngine {
    mutating func checkPingResolution(now: EngineTime) {
        // Also while leaving: a server stopping its groups slowly must still find out that it
        // is the cut-off side before the others take them over.
        guard !pingTargets.isEmpty, service != .stopped else { return }
        // A live peer that no longer hears this server (one-way link) judges it down and,
        // reaching the targets too, takes over: this server is the one cut off.
        if !pingLost, let deaf = peerThatCannotHearUs(now: now) {
            pingLost = true
            log(.partitionLost, "Network partition: \(me) hears \(deaf) but \(deaf) no longer hears \(me); stopping its groups at once.")
            loseThePartition(now: now)
        }
        let view = Set(membership.view(now: now))
        for lost in lastView.subtracting(view) where !leftCleanly(lost) {
            lostAt[lost] = now
        }
        for back in view { lostAt[back] = nil }
        lastView = view
        let unprobedLoss = lostAt.values.contains { at in lastVerifiedProbeStart.map { $0 < at } ?? true }
        // Probe after a loss; every interval while a server is missing (it may be alive behind
        // a cut, even one that left cleanly and came back) or while cut off; otherwise now and
        // then, for the status.
        let incomplete = serverNames.contains { !view.contains($0) }
        let due =
            unprobedLoss || ((incomplete || pingLost) && now - lastProbeEnd >= interval)
            || now - lastProbeEnd >= Self.statusProbeInterval
        guard due, pingProbe == nil else { return }
        let id = nextProbeID
        nextProbeID += 1
        pingProbe = (id, now)
        emit(.probePingTargets(probeID: id, targets: pingTargets))
    }

    /// Ping targets are checked at least this often for the status.
    static let statusProbeInterval: Duration = .seconds(10)

    mutating func pingProbeFinished(probeID: UInt64, reachable: Bool, now: EngineTime) {
        guard let probe = pingProbe, probe.id == probeID else { return }
        pingProbe = nil
        lastProbeEnd = now
        if lastPingReachable != reachable {
            log(
                reachable ? .connectivityRegained : .pingTargetsUnreachable,
                "Ping targets \(pingTargets.joined(separator: ", ")) are \(reachable ? "reachable" : "unreachable") from \(me).")
        }
        lastPingReachable = reachable
        if reachable {
            lastVerifiedProbeStart = probe.startedAt
            if pingLost, peerThatCannotHearUs(now: now) == nil {
                pingLost = false
                startListening(now: now)
                heartbeatDirty = true
                log(.connectivityRegained, "\(me) reaches the ping targets again: rejoining the cluster.")
            }
            return
        }
        // Unreachable while some server is not connected: this server cannot prove it is not
        // the cut-off side, so it is the loser. (With every server connected there is no
        // partition: only the targets are gone.)
        let incomplete = serverNames.contains { !lastView.contains($0) }
        guard incomplete, !pingLost else { return }
        pingLost = true
        log(.partitionLost, "Network partition: \(me) does not see every server and reaches no ping target; stopping its groups at once.")
        loseThePartition(now: now)
    }

    /// A peer this server still hears whose newest heartbeat does not list this server: it
    /// judges us down (its own timeout ran out). A peer that came back less than
    /// `rejoinGrace` ago gets that long to start hearing us. (A cut in both directions is
    /// not this: the last heartbeat that got through listed us.)
    func peerThatCannotHearUs(now: EngineTime) -> ServerName? {
        serverNames.first { peer in
            guard peer != me, membership.isUp(peer, now: now), let state = membership.peers[peer], !state.listsUs,
                !(state.report?.leaving ?? false)
            else { return false }
            return state.upSinceLocal.map { now - $0 >= rejoinGrace } ?? false
        }
    }

    /// A server was lost and no probe started since has reached a target.
    var awaitingPingVerdict: Bool {
        !pingTargets.isEmpty && lostAt.keys.contains { !pingConfirms($0) }
    }

    /// A peer whose last heartbeat said it left: not a loss to resolve.
    func leftCleanly(_ server: ServerName) -> Bool {
        membership.peers[server]?.report.map { !$0.serviceUp } ?? false
    }

    /// With ping resolution, a lost peer counts as down only once a probe started after the
    /// loss reached a target.
    func pingConfirms(_ server: ServerName) -> Bool {
        guard !pingTargets.isEmpty else { return true }
        guard let lost = lostAt[server] else { return true }
        return lastVerifiedProbeStart.map { $0 >= lost } ?? false
    }
}
