import Foundation
import UnderstudyEngine
import UnderstudyModel

extension ClusterDaemon {
    /// About once a second: a configured server whose heartbeat address sends datagrams that
    /// fail authentication runs with another cluster key (an operator's mistake: a key file not
    /// copied), or someone forges its address. Its heartbeats count for nothing, so it is not
    /// heard; this says why, once per server, as an error (`lanhb 13`), instead of leaving the
    /// operator with a silent peer and a drop counter.
    func checkKeyMismatch() {
        let now = ContinuousClock.now
        guard now - lastKeyMismatchCheck >= .seconds(1) else { return }
        lastKeyMismatchCheck = now
        var present: Set<ServerName> = []
        defer {
            // The Engine keeps such a server from being judged down (UnauthenticatedPeers.swift).
            if !present.isEmpty { perform(engine.handle(.unauthenticatedHeartbeats(from: present.sorted()), now: self.now())) }
            // So it does a server whose heartbeats authenticate but waited for a state fetch
            // (a one-way cut, the control port blocked): present, what it runs unknown.
            if !heldWithoutState.isEmpty {
                let held = heldWithoutState.sorted()
                heldWithoutState = []
                perform(engine.handle(.heartbeatsWithoutState(from: held), now: self.now()))
            }
        }
        for transport in transports {
            for (address, count) in transport.counters.badMACSources {
                let key = transport.path + "|" + address
                let previous = badMACSeen[key] ?? 0
                badMACSeen[key] = count
                guard count > previous, let server = Self.server(withHeartbeatAddress: address, in: config), server != me else {
                    continue
                }
                present.insert(server)
                guard !keyMismatchReported.contains(server) else { continue }
                keyMismatchReported.insert(server)
                record(
                    LogEntry(
                        .heartbeatKeyMismatch,
                        "Heartbeats from \(server)'s address \(address) on \(transport.path) fail authentication: \(server) runs with another cluster key (or its address is forged). They count for nothing, so \(server) is not heard: give every server the same key file."
                    ))
            }
        }
    }

    /// The server whose LAN heartbeat address is `address`, if any.
    static func server(withHeartbeatAddress address: String, in config: ClusterConfig) -> ServerName? {
        for heartbeat in config.heartbeats {
            guard case .lan(let addresses) = heartbeat.kind else { continue }
            if let match = addresses.first(where: { $0.value == address }) { return match.key }
        }
        return nil
    }
}
