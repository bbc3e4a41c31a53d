import UnderstudyModel

/// Until when no other server can take this server's groups over, as far as this server can
/// prove it from its peers' echoes (`Membership`) and the partition rule (majority, or
/// `pingnp` through `PingResolver`): a pure function of what it knows and the time. The
/// Engine asks it only while it runs, is not cut off and does not hold after a stall
/// (`ServerEngine.leaseExpiry`).
enum Lease {
    static func expiry(
        me: ServerName, servers: [ServerName], membership: Membership, ping: PingResolver, lastSentAt: EngineTime,
        timeout: Duration, takeoverMargin: Duration, now: EngineTime
    ) -> EngineTime? {
        let peers = servers.filter { $0 != me }
        // Bound by no peer's echo: a peer that (re)joins listens a whole timeout before it
        // judges this server down (and before it agrees that it is down, see
        // `Planner.updateDownConfirmations`), and it hears this server's heartbeats meanwhile.
        let unboundLease = lastSentAt + timeout
        if membership.usesMajority {
            // The view keeps its quorum until enough leases have run out. An exact half
            // counts only once the lost peers are confirmed by a ping probe.
            let connected = peers.filter { membership.isConnected($0, now: now) }
            func holds(_ side: [ServerName]) -> Bool {
                let resolved = peers.allSatisfy { side.contains($0) || (!connected.contains($0) && ping.resolvedLoss(of: $0)) }
                return membership.quorum(with: side, exactHalf: resolved && !ping.awaitingVerdict)
            }
            guard holds(connected) else { return nil }
            var expiry = unboundLease
            for candidate in connected.compactMap({ membership.leaseFrom($0) }).sorted() where candidate < expiry {
                if !holds(connected.filter { (membership.leaseFrom($0) ?? .zero) > candidate }) {
                    expiry = candidate
                    break
                }
            }
            return expiry
        }
        // Without majority: a peer takes over only after a timeout of silence plus the
        // takeover margin; a lost peer binds this server until a ping probe started after
        // the loss reached a target (then the peer is the cut-off side and has fenced).
        // Without any resolution nothing binds a lost peer (documented as unsafe).
        // A peer not connected is bound by the last heartbeat of ours it is known to have
        // heard, also one from before it fell silent here and came back: it may have judged
        // us down from then (found by simulator seed 288003080), unless a probe showed it to
        // be the cut-off side while it was silent (it listens long when it comes back).
        var expiry = unboundLease
        for peer in peers {
            let bound =
                membership.isConnected(peer, now: now)
                ? membership.leaseFrom(peer).map { $0 + takeoverMargin }
                : takeoverDeadline(of: peer, membership: membership, ping: ping, takeoverMargin: takeoverMargin, now: now)
            if let bound { expiry = min(expiry, bound) }
        }
        return expiry > now ? expiry : nil
    }

    /// Without majority, the earliest time a peer this server is not connected to may take
    /// its groups over: one timeout and the takeover margin after the last heartbeat of ours
    /// it is known to have heard. nil when it cannot: it left cleanly, no ping resolution is
    /// configured (nothing binds a lost peer then), a probe showed it to be the cut-off side,
    /// or it never heard us. A peer still heard but not hearing us (one-way link) is alive
    /// and binds: our own probe does not resolve it.
    static func takeoverDeadline(
        of peer: ServerName, membership: Membership, ping: PingResolver, takeoverMargin: Duration, now: EngineTime
    ) -> EngineTime? {
        if membership.gaveUpItsGroups(peer) || !ping.isConfigured || ping.provenCutOff.contains(peer)
            || (ping.resolvedLoss(of: peer) && !membership.isUp(peer, now: now))
        {
            return nil
        }
        if let lease = membership.lastLeaseFrom(peer) { return lease + takeoverMargin }
        // Heard, but it has never heard us in its boot (a restarted peer behind a one-way cut):
        // once its grace to start listing us is over this server gives up as the cut-off side
        // (`peerThatCannotHearUs`), and it promises nothing beyond that (found by simulator seed
        // 25301081: a server frozen within that grace kept a lease past the moment the peer,
        // never hearing it, founded the cluster and started its groups).
        if membership.isUp(peer, now: now), let heardSince = membership.peers[peer]?.upSinceLocal {
            return heardSince + ServerEngine.rejoinGrace(timeout: membership.timeout)
        }
        return nil
    }
}
