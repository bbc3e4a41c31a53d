import UnderstudyModel

// `pingnp`: when a peer goes down (and every interval while any server is missing), this
// server pings the targets (typically the default gateway). A server that reaches none of
// them while it does not see every server is the loser of the partition: it fences its
// groups and runs the partition action. A survivor takes a lost peer's groups over only
// after a probe started after the loss succeeded, and one probe timeout later than without
// ping resolution, the time the loser needs to find out (see `takeoverMargin`).

/// The state of `pingnp` on this server: the probes, when each peer was lost, which losses a
/// probe has confirmed, and whether this server lost. The Engine asks it and tells it what
/// happened; it decides nothing about groups.
struct PingResolver: Sendable, Equatable {
    let targets: [String]
    /// How long one probe may take (`timeout` of `pingnp`); the Node enforces it.
    let timeout: Duration
    /// The probe under way.
    var probe: Probe?
    struct Probe: Sendable, Equatable {
        var id: UInt64
        var startedAt: EngineTime
    }
    var nextProbeID: UInt64 = 1
    /// Start time of the newest probe that reached a target: a lost peer is confirmed down
    /// only by a probe started after it was lost.
    var lastVerifiedProbeStart: EngineTime?
    var lastReachable: Bool?
    var lastProbeEnd: EngineTime = .zero
    /// The view at the last check, and when each server missing from it was lost.
    var lastView: Set<ServerName> = []
    var lostAt: [ServerName: EngineTime] = [:]
    /// A probe after a peer loss reached no target, or a live peer cannot hear this server:
    /// this server is the cut-off side.
    var lost = false
    /// Peers shown to be the cut-off side: lost, silent, and a probe started after the loss
    /// reached a target. Such a peer fences and listens a whole timeout and more when it comes
    /// back, so it does not bind this server's lease until it is connected again.
    var provenCutOff: Set<ServerName> = []

    /// `httpnp` is configured: the probe also asks the witness, and "reachable" means the
    /// targets answered (if any) and the witness granted survival.
    let witness: Bool

    init(targets: [String], timeout: Duration, witness: Bool = false) {
        self.targets = targets
        self.timeout = timeout
        self.witness = witness
    }

    var isConfigured: Bool { !targets.isEmpty || witness }

    /// A new run of the cluster service: what was lost and the probe in flight are forgotten
    /// (the verified probes and the last result stay).
    mutating func resetForNewRun() {
        lost = false
        probe = nil
        lastView = []
        lostAt = [:]
        provenCutOff = []
    }

    /// Notes who left the view (a loss, unless it left cleanly) and who is back.
    mutating func noteView(_ view: Set<ServerName>, leftCleanly: (ServerName) -> Bool, now: EngineTime) {
        for gone in lastView.subtracting(view) where !leftCleanly(gone) {
            lostAt[gone] = now
        }
        for back in view {
            lostAt[back] = nil
            provenCutOff.remove(back)
        }
        lastView = view
    }

    /// Start time of the newest probe, whatever it found (httpnp only).
    var lastProbeStart: EngineTime?

    /// A loss no probe started after it has checked yet. With a witness, a "no" comes back at
    /// once: a loss counts as checked by any probe started after it (else the loser would ask
    /// again and again without pause); it asks again every interval.
    var hasUnprobedLoss: Bool {
        let checked = witness ? lastProbeStart : lastVerifiedProbeStart
        return lostAt.values.contains { at in checked.map { $0 < at } ?? true }
    }

    /// Starts a probe; its id.
    mutating func startProbe(now: EngineTime) -> UInt64 {
        let id = nextProbeID
        nextProbeID += 1
        probe = Probe(id: id, startedAt: now)
        if witness { lastProbeStart = now }
        return id
    }

    /// What the probe asks, for log messages.
    var resolverText: String {
        switch (targets.isEmpty, witness) {
        case (true, _): return "The witness"
        case (false, true): return "Ping targets \(targets.joined(separator: ", ")) and the witness"
        case (false, false): return "Ping targets \(targets.joined(separator: ", "))"
        }
    }

    /// A lost server counts as down only once a probe started after the loss reached a
    /// target (always, without ping resolution).
    func confirms(_ server: ServerName) -> Bool {
        guard isConfigured else { return true }
        guard let lost = lostAt[server] else { return true }
        return lastVerifiedProbeStart.map { $0 >= lost } ?? false
    }

    /// This server noted the loss of the peer and a probe started after it reached a target.
    func resolvedLoss(of peer: ServerName) -> Bool {
        guard let lost = lostAt[peer], let verified = lastVerifiedProbeStart else { return false }
        return verified >= lost
    }

    /// A server was lost and no probe started since has reached a target.
    var awaitingVerdict: Bool { isConfigured && lostAt.keys.contains { !confirms($0) } }
}

extension ServerEngine {
    mutating func checkPingResolution(now: EngineTime) {
        // Also while leaving: a server stopping its groups slowly must still find out that it
        // is the cut-off side before the others take them over.
        guard ping.isConfigured, service != .stopped else { return }
        // A live peer that no longer hears this server (one-way link) judges it down and,
        // reaching the targets too, takes over: this server is the one cut off.
        if !ping.lost, let deaf = peerThatCannotHearUs(now: now) {
            ping.lost = true
            log(.partitionLost, "Network partition: \(me) hears \(deaf) but \(deaf) no longer hears \(me); stopping its groups at once.")
            loseThePartition(now: now)
        }
        // The one-way rule can come too late: the peer's heartbeats stop listing this server
        // only once its timeout has run out, and a cut the other way can keep those from
        // arriving while this server's probes still reach the targets (found by simulator
        // seed 286000465). The peer may take over one takeover margin after its timeout
        // (this server's lease from it, `Lease.expiry`): give the groups up before then.
        if !ping.lost, runner.holdsAnyGroup, let peer = peerThatMayTakeOver(now: now) {
            ping.lost = true
            log(
                .partitionLost,
                "Network partition: \(peer) has not echoed \(me) for about its heartbeat timeout and takeover margin and may take its groups over; stopping them at once."
            )
            loseThePartition(now: now)
        }
        let view = Set(view(now: now))
        let membership = membership
        ping.noteView(view, leftCleanly: membership.gaveUpItsGroups, now: now)
        for peer in ping.lostAt.keys where ping.resolvedLoss(of: peer) && !membership.isUp(peer, now: now) {
            ping.provenCutOff.insert(peer)
        }
        // Probe after a loss; every interval while a server is missing (it may be alive behind
        // a cut, even one that left cleanly and came back) or while cut off; otherwise now and
        // then, for the status.
        let incomplete = serverNames.contains { !view.contains($0) }
        let due =
            ping.hasUnprobedLoss || ((incomplete || ping.lost) && now - ping.lastProbeEnd >= interval)
            || now - ping.lastProbeEnd >= Self.statusProbeInterval
        guard due, ping.probe == nil else { return }
        let id = ping.startProbe(now: now)
        emit(.probePingTargets(probeID: id, targets: ping.targets))
    }

    /// Ping targets are checked at least this often for the status.
    static let statusProbeInterval: Duration = .seconds(10)

    mutating func pingProbeFinished(probeID: UInt64, reachable: Bool, now: EngineTime) {
        guard let probe = ping.probe, probe.id == probeID else { return }
        ping.probe = nil
        ping.lastProbeEnd = now
        if ping.lastReachable != reachable {
            log(
                reachable ? .connectivityRegained : .pingTargetsUnreachable,
                ping.witness
                    ? "\(ping.resolverText) \(reachable ? "grants" : "does not grant") \(me) survival (or cannot be reached)."
                    : "\(ping.resolverText) are \(reachable ? "reachable" : "unreachable") from \(me).")
        }
        ping.lastReachable = reachable
        if reachable {
            ping.lastVerifiedProbeStart = probe.startedAt
            if ping.lost, peerThatCannotHearUs(now: now) == nil {
                ping.lost = false
                startListening(now: now)
                heartbeatDirty = true
                log(
                    .connectivityRegained,
                    ping.witness
                        ? "\(ping.resolverText) grants \(me) survival again: rejoining the cluster."
                        : "\(me) reaches the ping targets again: rejoining the cluster.")
            }
            return
        }
        // Unreachable while some server is not connected: this server cannot prove it is not
        // the cut-off side, so it is the loser. (With every server connected there is no
        // partition: only the targets are gone.)
        let incomplete = serverNames.contains { !ping.lastView.contains($0) }
        guard incomplete, !ping.lost else { return }
        ping.lost = true
        log(
            .partitionLost,
            ping.witness
                ? "Network partition: \(me) does not see every server and \(ping.resolverText.lowercasedFirst) does not grant it survival; stopping its groups at once."
                : "Network partition: \(me) does not see every server and reaches no ping target; stopping its groups at once.")
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

    /// A peer not connected that may take this server's groups over within two ticks
    /// (`Lease.takeoverDeadline`): the fence then comes at least one tick before the
    /// earliest takeover, however the ticks fall.
    func peerThatMayTakeOver(now: EngineTime) -> ServerName? {
        serverNames.first { peer in
            guard peer != me, !membership.isConnected(peer, now: now),
                let deadline = Lease.takeoverDeadline(
                    of: peer, membership: membership, ping: ping, takeoverMargin: takeoverMargin, now: now)
            else { return false }
            return deadline <= now + tickPeriod * 2
        }
    }

    /// A server was lost and no probe started since has reached a target.
    var awaitingPingVerdict: Bool { ping.awaitingVerdict }

    /// With ping resolution, a lost peer counts as down only once a probe started after the
    /// loss reached a target.
    func pingConfirms(_ server: ServerName) -> Bool { ping.confirms(server) }
}

extension String {
    fileprivate var lowercasedFirst: String { prefix(1).lowercased() + dropFirst() }
}
