/// Turns the LAN paths' send counters into two log lines per episode: when this server's
/// heartbeats on a path start failing to leave (a firewall rule's EPERM, no route, a name that
/// no longer resolves) and when they leave again. The socket never throws at the heartbeat
/// loop, so without this the only trace would be a counter; the peers would just stop hearing
/// this server on that path.
struct HeartbeatSendWatch {
    enum Report: Equatable {
        /// `failed` sends failed since the last look, `sent` went out; `detail` is the newest error.
        case failing(path: String, detail: String, failed: UInt64, sent: UInt64)
        /// Sends leave again; `failed` failed in all while the path was failing.
        case recovered(path: String, failed: UInt64)
    }

    private struct Seen {
        var sent: UInt64
        var failures: UInt64
        /// Failures counted since the episode began; nil while sends work.
        var episode: UInt64?
    }

    private var seen: [String: Seen] = [:]

    /// Called about once a second per path. Paths without `lastSendFailure` (diskhb, comhb,
    /// witnesshb report their device or witness themselves) are never reported as failing.
    mutating func observe(path: String, counters: TransportCounters) -> Report? {
        guard var entry = seen[path] else {
            seen[path] = Seen(sent: counters.sent, failures: counters.sendFailures, episode: nil)
            if counters.sendFailures > 0, let detail = counters.lastSendFailure {
                seen[path]?.episode = counters.sendFailures
                return .failing(path: path, detail: detail, failed: counters.sendFailures, sent: counters.sent)
            }
            return nil
        }
        // A path opened again starts its counters from zero.
        if counters.sent < entry.sent || counters.sendFailures < entry.failures {
            entry.sent = 0
            entry.failures = 0
        }
        let failed = counters.sendFailures - entry.failures
        let sent = counters.sent - entry.sent
        entry.sent = counters.sent
        entry.failures = counters.sendFailures
        defer { seen[path] = entry }
        if let episode = entry.episode {
            entry.episode = episode + failed
            guard failed == 0, sent > 0 else { return nil }
            entry.episode = nil
            return .recovered(path: path, failed: episode)
        }
        guard failed > 0, let detail = counters.lastSendFailure else { return nil }
        entry.episode = failed
        return .failing(path: path, detail: detail, failed: failed, sent: sent)
    }
}
