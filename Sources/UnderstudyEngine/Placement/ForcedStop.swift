import UnderstudyModel

// Forced stop (CLUSTERPRO "forced stop", Pacemaker's STONITH): with `fencing:` configured, the
// master stops a lost server through the agents before its groups start elsewhere. Leases and
// the keeper already make a live server let go of its groups, but a server that hangs (a
// kernel stuck in I/O, a paused VM about to resume) cannot be trusted to: powered off, it
// holds nothing, whatever its state.
//
// When every connected server agrees that a server is down (`downConfirmedAt`), the master
// orders a forced stop of it; its groups count as gone (`ClusterFacts.isGone`) only once the
// stop succeeded. If it fails, failover is cancelled (`on-failure: cancel`, CLUSTERPRO rc 433)
// and the stop is tried again every `retry-interval`; with `on-failure: failover` the groups
// go after the usual takeover margin. In a two-server split both sides want to stop the other:
// the lower-ranked server waits `delay` before stopping a higher-ranked one, so the higher one
// wins the race and only one server is stopped.
//
// Every server an agent covers is stopped once confirmed down, also one never heard in this
// service run (startup fencing, as Pacemaker's default): a server that boots while a partition
// hides a running peer must not found a cluster and start that peer's groups (found by
// simulator seed 9901168: a server power-cycled by its peer came back into a split where both
// sides reached the ping targets, founded its own cluster after the sync wait and started
// everything a second time). A server that is simply off is "stopped" again at no cost; one
// whose BMC cannot be reached keeps the groups it may run waiting (`on-failure: cancel`).

/// One forced stop, for one loss of a server.
public struct ForcedStopRecord: Sendable, Equatable, Codable {
    public enum Phase: Sendable, Equatable, Codable {
        /// Waiting before the first attempt (the lower-ranked server's delay).
        case delayed(until: EngineTime)
        case running(id: UInt64, since: EngineTime)
        case stopped(at: EngineTime)
        /// Every agent failed (or timed out); tried again at `retryAt` (nil: not again, the
        /// groups go after the margin: `on-failure: failover`).
        case failed(at: EngineTime, retryAt: EngineTime?)
    }
    public var server: ServerName
    /// The loss this stop is for (`PlacementMemory.downConfirmedAt`).
    public var confirmedAt: EngineTime
    public var phase: Phase
    public var attempts: Int
    /// What the last attempt did or why it failed (from the Node).
    public var detail: String

    public init(server: ServerName, confirmedAt: EngineTime, phase: Phase, attempts: Int = 0, detail: String = "") {
        self.server = server
        self.confirmedAt = confirmedAt
        self.phase = phase
        self.attempts = attempts
        self.detail = detail
    }
}

/// What placement needs to know of forced stops: per server that needs one, whether its
/// current loss is settled.
public enum ForcedStopVerdict: Sendable, Equatable {
    /// Not stopped yet (waiting, running, or failed with failover cancelled).
    case pending
    case stopped
    /// Failed, and `on-failure: failover` lets the groups go after the margin.
    case gaveUp
}

struct ForcedStops: Sendable, Equatable {
    var records: [ServerName: ForcedStopRecord] = [:]
    var lastID: UInt64 = 0
}

extension ServerEngine {
    /// A server that the agents could stop (see the top).
    func needsForcedStop(_ server: ServerName) -> Bool {
        guard let fencing = config.fencing, server != me else { return false }
        return fencing.covers(server)
    }

    /// For `ClusterFacts`: the servers that need a forced stop, with the verdict for their
    /// current loss.
    func forcedStopVerdicts() -> [ServerName: ForcedStopVerdict] {
        guard config.fencing != nil else { return [:] }
        var verdicts: [ServerName: ForcedStopVerdict] = [:]
        for server in serverNames where needsForcedStop(server) {
            guard let confirmed = placement.downConfirmedAt[server], let record = forcedStops.records[server],
                record.confirmedAt == confirmed
            else {
                verdicts[server] = .pending
                continue
            }
            switch record.phase {
            case .stopped: verdicts[server] = .stopped
            case .failed(_, retryAt: nil): verdicts[server] = .gaveUp
            default: verdicts[server] = .pending
            }
        }
        return verdicts
    }

    /// As master, after each decision: start, delay or retry the forced stops of confirmed losses.
    mutating func driveForcedStops(now: EngineTime) {
        guard let fencing = config.fencing else { return }
        // A server heard again (its loss forgotten) needs no stop; one in flight still reports.
        for (server, record) in forcedStops.records where placement.downConfirmedAt[server] != record.confirmedAt {
            if case .running = record.phase { continue }
            forcedStops.records[server] = nil
        }
        // Suspended (`clpcl --suspend`: nothing fails over, often for network maintenance that
        // cuts heartbeats) or stopping the whole cluster: nobody is powered off meanwhile; a loss
        // still confirmed afterwards gets its stop then.
        if directory?.suspended == true || directory?.clusterStopping == true { return }
        for (server, confirmed) in placement.downConfirmedAt.sorted(by: { $0.key < $1.key }) where needsForcedStop(server) {
            guard var record = forcedStops.records[server], record.confirmedAt == confirmed else {
                // A new loss. The lower-ranked side of a split waits, so that only one is stopped.
                let ranksAbove = membership.rank(of: server) < membership.rank(of: me)
                let delay = ranksAbove ? fencing.delay : .zero
                forcedStops.records[server] = ForcedStopRecord(server: server, confirmedAt: confirmed, phase: .delayed(until: now + delay))
                if delay > .zero {
                    log(
                        .forcedStopDelayed,
                        "Server \(server) is down: \(me) waits \(delay.shortDescription) before stopping it (\(server) ranks above \(me); in a split it stops \(me) first)."
                    )
                } else {
                    startForcedStop(server, now: now)
                }
                continue
            }
            switch record.phase {
            case .delayed(let until) where now >= until:
                startForcedStop(server, now: now)
            case .failed(_, let retryAt?) where now >= retryAt:
                startForcedStop(server, now: now)
            case .running(_, let since) where now - since > fencing.timeout + Self.forcedStopReportSlack:
                // The Node bounds every stop by the timeout: no answer long after it means the
                // report was lost; count it as failed.
                record.detail = "no result within \(fencing.timeout.shortDescription)"
                forcedStops.records[server] = record
                forcedStopFailed(server, now: now)
            default:
                break
            }
        }
    }

    /// How long past the configured timeout the Engine waits for the Node's report.
    static var forcedStopReportSlack: Duration { .seconds(5) }

    mutating func startForcedStop(_ server: ServerName, now: EngineTime) {
        guard var record = forcedStops.records[server] else { return }
        forcedStops.lastID += 1
        record.phase = .running(id: forcedStops.lastID, since: now)
        record.attempts += 1
        forcedStops.records[server] = record
        emit(.forceStop(ForcedStopRun(id: forcedStops.lastID, server: server)))
        log(
            .forcedStopStarted,
            record.attempts == 1
                ? "Stopping server \(server) through its fencing agents before its groups fail over (forced stop)."
                : "Stopping server \(server) through its fencing agents again (attempt \(record.attempts)).")
    }

    mutating func forcedStopFinished(id: UInt64, succeeded: Bool, detail: String, now: EngineTime) {
        guard
            let server = forcedStops.records.first(where: {
                if case .running(let running, _) = $0.value.phase { return running == id }
                return false
            })?.key, var record = forcedStops.records[server]
        else { return }
        record.detail = detail
        forcedStops.records[server] = record
        if succeeded {
            record.phase = .stopped(at: now)
            forcedStops.records[server] = record
            log(.forcedStopSucceeded, "Server \(server) was stopped (\(detail)): its groups fail over.")
            heartbeatDirty = true
        } else {
            forcedStopFailed(server, now: now)
        }
    }

    mutating func forcedStopFailed(_ server: ServerName, now: EngineTime) {
        guard let fencing = config.fencing, var record = forcedStops.records[server] else { return }
        let retryAt: EngineTime? = fencing.onFailure == .cancel ? now + fencing.retryInterval : nil
        record.phase = .failed(at: now, retryAt: retryAt)
        forcedStops.records[server] = record
        log(.forcedStopFailed, "Forced stop of server \(server) failed: \(record.detail).")
        guard record.attempts == 1 else { return }
        if retryAt != nil {
            log(
                .failoverCancelledByForcedStop,
                "Failover of \(server)'s groups is cancelled: \(server) could not be stopped, and it may still run them. The forced stop is tried again every \(fencing.retryInterval.shortDescription); check the agent (clpstat -f)."
            )
        } else {
            log(
                .failoverCancelledByForcedStop, level: .warning,
                "\(server) could not be stopped; its groups fail over anyway (fencing on-failure: failover).")
        }
    }

    /// `clpcl --confirm-stopped SERVER` at the master: the operator has made sure a lost
    /// server is off (pulled its power, or its BMC died with it and no agent can reach it);
    /// its current loss counts as stopped and its groups fail over. Refused unless every
    /// connected server agrees it is down: a server that is heard is not off.
    mutating func confirmStopped(_ server: ServerName, now: EngineTime) -> CommandResult {
        guard serverNames.contains(server) else { return CommandResult(.badUsage, "Unknown server \(server).") }
        guard server != me else { return CommandResult(.badUsage, "\(me) is the master and runs: it is not stopped.") }
        guard config.fencing != nil, needsForcedStop(server) else {
            return CommandResult(.failed, "No fencing agent covers \(server): its groups do not wait for a forced stop.")
        }
        guard let confirmed = placement.downConfirmedAt[server] else {
            return CommandResult(
                .failed,
                "\(server) is not confirmed down by every connected server (it is heard, or the confirmation is still pending); nothing to confirm."
            )
        }
        var record = forcedStops.records[server] ?? ForcedStopRecord(server: server, confirmedAt: confirmed, phase: .delayed(until: now))
        if record.confirmedAt == confirmed, case .stopped = record.phase {
            return .ok("\(server) is already known to be stopped.")
        }
        record.confirmedAt = confirmed
        record.phase = .stopped(at: now)
        record.detail = "confirmed stopped by the operator (clpcl --confirm-stopped)"
        forcedStops.records[server] = record
        log(.forcedStopSucceeded, "The operator confirmed that server \(server) is stopped: its groups fail over.")
        heartbeatDirty = true
        return .ok("\(server) is taken as stopped; its groups fail over.")
    }

    /// The forced stops this master knows, for status (`clpstat -f`).
    public var forcedStopRecords: [ForcedStopRecord] {
        forcedStops.records.values.sorted { $0.server < $1.server }
    }
}
