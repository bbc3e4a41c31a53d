import UnderstudyEngine

/// Keeps a message that repeats from flooding the alert log and the journal (a loop in a
/// bad situation must not write thousands of lines a second). Within each window, an event
/// id (`[module id]`) may write `perEvent` lines and one exact message `perMessage` lines;
/// the rest are counted, and when the window ends one line says how many were left out.
/// The first lines of anything always get through, so a real event is never hidden: only
/// its repetitions are.
struct LogRateLimiter: Sendable {
    struct Key: Hashable, Sendable {
        var module: String
        var eventID: Int
    }

    let window: Duration
    let perEvent: Int
    let perMessage: Int
    private var windowStart: Duration?
    private var eventCounts: [Key: Int] = [:]
    private var messageCounts: [String: Int] = [:]
    /// Left out in this window, per event id, with the last message left out.
    private var suppressed: [Key: (count: Int, last: LogEntry)] = [:]

    /// - Parameter objects: how many groups, resources, monitors and servers the cluster has:
    ///   an event that fires once per object (a failover of every group) must get through.
    init(window: Duration = .seconds(60), objects: Int, perMessage: Int = 10) {
        self.window = window
        self.perEvent = max(100, 4 * objects)
        self.perMessage = perMessage
    }

    /// What to write for `entry` at `now` (a monotonic time): the entry itself unless it is
    /// left out, preceded by the summaries of the window that just ended.
    mutating func admit(_ entry: LogEntry, now: Duration) -> [LogEntry] {
        var out = rollWindow(now: now)
        let key = Key(module: entry.module, eventID: entry.eventID)
        let events = eventCounts[key, default: 0] + 1
        let messages = messageCounts[entry.message, default: 0] + 1
        eventCounts[key] = events
        messageCounts[entry.message] = messages
        if events > perEvent || messages > perMessage {
            let count = (suppressed[key]?.count ?? 0) + 1
            suppressed[key] = (count, entry)
        } else {
            out.append(entry)
        }
        return out
    }

    /// Summaries of a window that is over (called by `admit`, and by the daemon's tick so
    /// that a flood that stopped is still summed up).
    mutating func rollWindow(now: Duration) -> [LogEntry] {
        guard let start = windowStart, now - start < window else {
            let summaries = summaries()
            windowStart = now
            eventCounts = [:]
            messageCounts = [:]
            suppressed = [:]
            return summaries
        }
        return []
    }

    private func summaries() -> [LogEntry] {
        suppressed.sorted { ($0.key.module, $0.key.eventID) < ($1.key.module, $1.key.eventID) }.map { key, value in
            LogEntry(
                value.last.level, key.module, key.eventID,
                "\(value.count) more messages like this were left out in the last \(window.components.seconds) s (last: \(value.last.message))"
            )
        }
    }
}
