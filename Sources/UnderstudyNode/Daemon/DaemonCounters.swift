import UnderstudyEngine
import UnderstudyModel

/// What the daemon counts for `GET /metrics` and `clpperfc` (docs/metrics.md): plain values
/// on the daemon's actor, each updated by one line where the thing happens, read with the
/// status snapshot. Nothing here runs on a timer or does I/O.
struct DaemonCounters {
    /// The newest check of each monitor: how long it took.
    private(set) var lastCheck: [String: Duration] = [:]
    private var events: [EventKey: UInt64] = [:]
    private var recovery: [String: UInt64] = [:]
    private var failovers: [GroupName: UInt64] = [:]
    /// Failover activations under way here: when the first start order came.
    private var failoverStarted: [GroupName: EngineTime] = [:]
    private var lastFailover: [GroupName: Double] = [:]
    private var paths: [PathKey: PathState] = [:]
    private var destinationFailures: [String: UInt64] = [:]

    struct EventKey: Hashable {
        var module: String
        var id: Int
        var level: LogLevel
    }

    struct PathKey: Hashable {
        var server: ServerName
        var path: String
    }

    struct PathState {
        var heartbeats: UInt64 = 0
        var lastHeard: EngineTime = .zero
        var echoDelay: Duration?
    }

    /// Which recovery step each catalogue event is (`understudy_recovery_actions_total`). The
    /// master's side of a failover (rc 203) is not counted: the server that asked (rc 15) or
    /// whose activation failed (rc 201) did.
    static let recoveryKinds: [String: String] = {
        let steps: [(EventKind, String)] = [
            (.groupReactivating, "restart"), (.resourceReactivating, "restart"),
            (.failoverRequested, "failover"), (.activationFailover, "failover"),
            (.finalActionNone, "final_action"), (.stopRequested, "final_action"), (.activationFinalAction, "final_action"),
            (.deactivationFinalAction, "final_action"),
        ]
        return Dictionary(uniqueKeysWithValues: steps.map { ("\($0.0.module) \($0.0.id)", $0.1) })
    }()

    mutating func checked(_ checks: [MonitorCheck]) {
        for check in checks { lastCheck[check.monitor] = check.elapsed }
    }

    mutating func logged(_ entry: LogEntry) {
        events[EventKey(module: entry.module, id: entry.eventID, level: entry.level), default: 0] += 1
        if let step = Self.recoveryKinds["\(entry.module) \(entry.eventID)"] { recovery[step, default: 0] += 1 }
    }

    /// A resource run begins: the first start of a group as a failover target opens a failover.
    mutating func runStarted(_ run: ResourceRun, now: EngineTime) {
        guard run.operation == .start, run.context.event == .failover, failoverStarted[run.group] == nil else { return }
        failoverStarted[run.group] = now
        failovers[run.group, default: 0] += 1
    }

    /// A resource run ended and the group's local status is now `status`: an open failover
    /// ends when the group is Online here (its duration kept) or no longer starting.
    mutating func runFinished(group: GroupName, status: ActivationStatus, now: EngineTime) {
        guard let started = failoverStarted[group] else { return }
        switch status {
        case .onlinePending: return
        case .online: lastFailover[group] = seconds(now - started)
        default: break
        }
        failoverStarted[group] = nil
    }

    /// A heartbeat from `server` arrived on `path`; `echoed` is the send time of this
    /// server's own heartbeat it echoes (this boot only).
    mutating func heard(_ server: ServerName, path: String, at time: EngineTime, echoed: EngineTime?) {
        let key = PathKey(server: server, path: path)
        var state = paths[key] ?? PathState()
        state.heartbeats += 1
        state.lastHeard = time
        if let echoed, echoed <= time { state.echoDelay = time - echoed }
        paths[key] = state
    }

    /// An alert destination failed to deliver one alert (called by the alert router).
    mutating func alertDestinationFailed(_ destination: String) {
        destinationFailures[destination, default: 0] += 1
    }

    func line(fences: [GroupName: Int], stalls: UInt64, now: EngineTime) -> ClusterStatusSnapshot.CountersLine {
        return ClusterStatusSnapshot.CountersLine(
            events: events.sorted { ($0.key.module, $0.key.id) < ($1.key.module, $1.key.id) }.map {
                .init(module: $0.key.module, id: $0.key.id, level: $0.key.level.rawValue, count: $0.value)
            },
            recoveryActions: recovery, failovers: failovers, lastFailoverSeconds: lastFailover,
            fences: fences.mapValues { UInt64(max(0, $0)) }, stalls: stalls,
            paths: paths.sorted { ($0.key.server, $0.key.path) < ($1.key.server, $1.key.path) }.map {
                .init(
                    server: $0.key.server, path: $0.key.path, heartbeats: $0.value.heartbeats,
                    lastHeardSeconds: seconds(now - $0.value.lastHeard), echoDelaySeconds: $0.value.echoDelay.map(seconds))
            },
            alertDestinationFailures: destinationFailures)
    }

    /// The newest check's duration in whole milliseconds (`clpperfc -m`).
    func lastCheckMillis(_ monitor: String) -> Int64? {
        lastCheck[monitor].map { Int64($0.components.seconds) * 1000 + $0.components.attoseconds / 1_000_000_000_000_000 }
    }
}

private func seconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
}
