import UnderstudyModel

// A server whose heartbeat address keeps sending datagrams that fail authentication is
// present: its machine and network work, it runs with another cluster key (a key file not
// copied) — or someone forges its address. Its heartbeats count for nothing, so membership
// cannot hear it; but judging it down would be wrong. With ping resolution both servers of a
// mismatched pair reach the ping targets, each would judge the other down and take its
// groups: an exec-only group would run twice (found by the documentation review; an
// address's ARP probe and ext4's MMP stop only the second fip and disk). So while such
// datagrams keep coming (within the judge timeout), the server is not confirmed down and the
// groups it may run are not placed elsewhere; this server says so once.
//
// The price: whoever can send datagrams from a server's address can hold back the failover of
// that server's groups (it cannot make anything run twice, nor stop anything). Failing safe is
// the right side for a cluster manager; the alert names the address.

extension ServerEngine {
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

    /// Datagrams that fail authentication came from the server's address within the judge
    /// timeout, and it is not heard up (authenticated) meanwhile.
    func isPresentUnauthenticated(_ server: ServerName, now: EngineTime) -> Bool {
        guard let heard = unauthenticatedHeard[server], now - heard < membership.judgeTimeout else { return false }
        return !membership.isUp(server, now: now)
    }

    /// Forgets the ones that stopped sending for a judge timeout, so that a later mismatch is
    /// said again. Not while the server is still heard up by its last authenticated heartbeat:
    /// what it sends meanwhile is what keeps it from being judged down once that runs out
    /// (found by simulator seed 9900463: a server restarted with another key, then a short
    /// partition, and its peer confirmed it down).
    mutating func noteUnauthenticatedGone(now: EngineTime) {
        guard !unauthenticatedHeard.isEmpty else { return }
        for (server, heard) in unauthenticatedHeard.sorted(by: { $0.key < $1.key }) where now - heard >= membership.judgeTimeout {
            unauthenticatedHeard[server] = nil
            loggedOnce.unauthenticated.remove(server)
        }
    }
}
