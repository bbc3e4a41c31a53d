import UnderstudyModel

// A server whose heartbeat address keeps sending datagrams that fail authentication is
// present: its machine and network work, it runs with another cluster key (a key file not
// copied) — or someone forges its address. Its heartbeats count for nothing, so membership
// cannot hear it; but judging it down would be wrong. With ping resolution both servers of a
// mismatched pair reach the ping targets, each would judge the other down and take its
// groups: an exec-only group would run twice (found by the documentation review; an
// address's ARP probe and ext4's MMP stop only the second fip and disk). So while such
// datagrams keep coming (within `presenceWindow`), the server is not confirmed down and the
// groups it may run are not placed elsewhere; this server says so once.
//
// The same holds for a server whose heartbeats authenticate but cannot be handed over: its
// state (reports, directory) travels as deltas, and a receiver that missed them fetches it
// over the control channel (HeartbeatStateSync.swift). While that fetch cannot answer — a
// one-way cut, a firewall that passes the heartbeat port but not the control port — the
// server is alive and what it runs is unknown. Treated as down, a server that had just
// started took every group at the end of its sync wait while its peer, whose heartbeats it
// received, ran them (found by simulator seed 23002612).
//
// The price: whoever can send datagrams from a server's address can hold back the failover of
// that server's groups (it cannot make anything run twice, nor stop anything). Failing safe is
// the right side for a cluster manager; the alert names the address.

extension ServerEngine {
    /// The Node reports such datagrams about once a second (`ClusterDaemon.checkKeyMismatch`):
    /// a presence lasts at least this long after the last report, whatever the timeout, so
    /// that a short timeout (the fast profile's 100 ms) does not let it lapse between reports.
    static let presenceReportWindow: Duration = .milliseconds(2500)

    /// How long a report of presence holds.
    var presenceWindow: Duration { max(membership.judgeTimeout, Self.presenceReportWindow) }

    /// The Node saw datagrams from these servers' heartbeat addresses that failed authentication.
    mutating func noteUnauthenticated(_ servers: [ServerName], now: EngineTime) {
        for server in servers where server != me && serverNames.contains(server) {
            unauthenticatedHeard[server] = now
            guard !membership.isUp(server, now: now), !loggedOnce.unauthenticated.contains(server) else { continue }
            loggedOnce.unauthenticated.insert(server)
            log(
                .peerUnauthenticated,
                "\(server) is present but its heartbeats fail authentication (another cluster key?): it is not judged down and its groups are not taken over while they keep coming. Give every server the same key file."
            )
        }
    }

    /// The Node received authenticated heartbeats from these servers whose state it could
    /// not complete (the fetch over the control channel has not answered).
    mutating func notePresentWithoutState(_ servers: [ServerName], now: EngineTime) {
        for server in servers where server != me && serverNames.contains(server) {
            heardWithoutState[server] = now
            guard !membership.isUp(server, now: now), !loggedOnce.withoutState.contains(server) else { continue }
            loggedOnce.withoutState.insert(server)
            log(
                .peerStateUnavailable,
                "\(server)'s heartbeats arrive but its state cannot be fetched over the control channel (a one-way cut, or the control port blocked?): it is not judged down and its groups are not taken over while they keep coming."
            )
        }
    }

    /// Datagrams that fail authentication came from the server's address within the
    /// presence window, and it is not heard up (authenticated) meanwhile.
    func isPresentUnauthenticated(_ server: ServerName, now: EngineTime) -> Bool {
        reportedLately(unauthenticatedHeard[server], server, now: now)
    }

    /// Heartbeats of the server arrive authenticated but wait for a state that cannot be
    /// fetched (within the presence window), and it is not heard up meanwhile.
    func isPresentWithoutState(_ server: ServerName, now: EngineTime) -> Bool {
        !isPresentUnauthenticated(server, now: now) && reportedLately(heardWithoutState[server], server, now: now)
    }

    /// The server sends now but is not heard: with another key, or without its state.
    func isSendingUnheard(_ server: ServerName, now: EngineTime) -> Bool {
        isPresentUnauthenticated(server, now: now) || reportedLately(heardWithoutState[server], server, now: now)
    }

    /// A report of the server's datagrams (`at`) within the presence window, and the server is
    /// not heard up meanwhile.
    private func reportedLately(_ at: EngineTime?, _ server: ServerName, now: EngineTime) -> Bool {
        guard let at, now - at < presenceWindow else { return false }
        return !membership.isUp(server, now: now)
    }

    /// The server may run groups that this one cannot know of: it sends now but is not
    /// heard, or it was seen with another key in this run and has not been heard
    /// (authenticated) since. The latter holds after its datagrams stop: with another key
    /// neither side hears the other's heartbeats, so neither can notice that the other no
    /// longer hears it (the one-way rule) nor bind the other by a lease, and silence proves
    /// nothing — a cut one way hides a server that still runs its groups (found by simulator
    /// seed 23006462: a server restarted with another key took a peer's groups over once a
    /// one-way cut hid the peer's datagrams). Its groups wait for it to be
    /// heard with the cluster's key, or for this server's service to restart.
    func isPresentUnheard(_ server: ServerName, now: EngineTime) -> Bool {
        if isSendingUnheard(server, now: now) { return true }
        return seenWithAnotherKeySinceHeard(server) && !membership.isUp(server, now: now)
    }

    /// Heartbeats of the server that wait for their state came after the last one handed
    /// over: what its report says may be out of date.
    func reportIsStale(_ server: ServerName) -> Bool {
        reportedSinceHeard(heardWithoutState[server], server)
    }

    /// Datagrams of the server failed authentication after its last authenticated heartbeat.
    func seenWithAnotherKeySinceHeard(_ server: ServerName) -> Bool {
        reportedSinceHeard(unauthenticatedHeard[server], server)
    }

    /// A report of the server's datagrams (`at`) is newer than its last heartbeat handed over.
    private func reportedSinceHeard(_ at: EngineTime?, _ server: ServerName) -> Bool {
        guard let at else { return false }
        guard let heard = membership.peers[server]?.lastHeard else { return true }
        return heard < at
    }

    /// Forgets a server seen with another key once it is heard (authenticated) after that, so
    /// that a later mismatch is said again; forgets a server without state once it stopped
    /// sending for the presence window. Not while the server is still heard up by its last
    /// authenticated heartbeat from before the mismatch: what it sends meanwhile is what keeps
    /// it from being judged down once that runs out (found by simulator seed 9900463: a server
    /// restarted with another key, then a short partition, and its peer confirmed it down).
    mutating func noteUnauthenticatedGone(now: EngineTime) {
        guard !unauthenticatedHeard.isEmpty || !heardWithoutState.isEmpty else { return }
        for server in unauthenticatedHeard.keys.sorted() {
            guard seenWithAnotherKeySinceHeard(server) else {
                unauthenticatedHeard[server] = nil
                loggedOnce.unauthenticated.remove(server)
                loggedOnce.silentWithAnotherKey.remove(server)
                continue
            }
            // Said once when its datagrams stop: the hold goes on, and why.
            guard !isPresentUnauthenticated(server, now: now), !membership.isUp(server, now: now),
                loggedOnce.silentWithAnotherKey.insert(server).inserted
            else { continue }
            log(
                .peerUnauthenticated,
                "\(server), seen with another cluster key, is silent now: it may still run its groups behind a one-way cut, so they stay held back until it is heard with the cluster's key. If it is really down, restart the cluster service here (clpcl -r)."
            )
        }
        let window = presenceWindow
        for (server, heard) in heardWithoutState.sorted(by: { $0.key < $1.key }) where now - heard >= window {
            heardWithoutState[server] = nil
            loggedOnce.withoutState.remove(server)
        }
    }

    /// A new run of the cluster service starts from what it hears anew.
    mutating func forgetUnheardPeers() {
        unauthenticatedHeard = [:]
        heardWithoutState = [:]
        loggedOnce.unauthenticated = []
        loggedOnce.silentWithAnotherKey = []
        loggedOnce.withoutState = []
    }
}
