import UnderstudyModel

// `clptoratio`: heartbeat and monitor timeouts multiplied for a while. The setting travels in
// heartbeats and every server takes the newest. Safety does not depend on the servers
// agreeing at any moment: each says in its heartbeats the timeout it judges its peers by
// (`Heartbeat.judgeTimeout`), and a peer's lease counts on no more than that (Lease.swift).
// A judge raises its timeout at once; it lowers it for a peer only after the timeout it
// promised before has run out (`Membership.setJudgeTimeout`). After a restart it listens for
// the longest timeout it may have promised before judging anyone down (`listenTimeout`).

extension ServerEngine {
    /// The ratio in force here (1: the configured timeouts).
    public var timeoutRatio: Int { persistent.timeoutRatio?.ratio ?? 1 }

    /// The setting in force here, with its expiry (nil: never set).
    public var timeoutRatioSetting: TimeoutRatio? { persistent.timeoutRatio }

    /// How long a peer may be silent before this server judges it down.
    public var judgeTimeout: Duration { membership.judgeTimeout }

    /// `clptoratio -r/-i` on this server, or the Node's reset when a setting has expired.
    mutating func setTimeoutRatio(_ setting: TimeoutRatio, now: EngineTime) -> CommandResult {
        guard TimeoutRatio.allowedRatios.contains(setting.ratio) else {
            return CommandResult(.badUsage, "The timeout ratio must be 1 to 10000 (got \(setting.ratio)).")
        }
        guard setting.supersedes(persistent.timeoutRatio) else {
            return CommandResult(.failed, "A newer timeout ratio setting is already in force on \(me); clptoratio -s shows it.")
        }
        adoptTimeoutRatio(setting, from: nil, now: now)
        return .ok("Timeout ratio \(setting.ratio) set on \(me); the other servers take it with their next heartbeat.")
    }

    /// Takes a peer's setting when it is newer than this server's (and valid).
    mutating func noteTimeoutRatio(of heartbeat: Heartbeat, now: EngineTime) {
        guard let offered = heartbeat.timeoutRatio, TimeoutRatio.allowedRatios.contains(offered.ratio),
            offered.supersedes(persistent.timeoutRatio)
        else { return }
        adoptTimeoutRatio(offered, from: heartbeat.sender, now: now)
    }

    mutating func adoptTimeoutRatio(_ setting: TimeoutRatio, from sender: ServerName?, now: EngineTime) {
        let before = timeoutRatio
        persistent.timeoutRatio = setting
        persistDirty = true
        heartbeatDirty = true
        if setting.ratio > persistent.listenRatio ?? 1 {
            persistent.listenRatio = setting.ratio
        } else if setting.ratio < before {
            // The old timeout binds until a whole old timeout after the last heartbeat heard.
            let ends = now + timeout * before + interval
            timeoutLoweringEndsAt = max(timeoutLoweringEndsAt ?? ends, ends)
        }
        membership.setJudgeTimeout(timeout * setting.ratio, now: now)
        guard setting.ratio != before else { return }
        let source = sender.map { " (from \($0))" } ?? ""
        log(
            .timeoutRatioChanged,
            "Timeout ratio on \(me) is now \(setting.ratio)\(source): heartbeat timeout \((timeout * setting.ratio).shortDescription), monitor timeouts \(setting.ratio) times their own."
        )
        // Running probes get the new timeout; their schedule is kept.
        for monitor in config.monitors where monitor.type != .mtw && monitor.type != .mrw && monitor.type != .userw {
            guard let run = monitoring.monitors[monitor.name]?.run else { continue }
            emit(
                .startMonitor(MonitorStart(monitor: monitor.name, run: run, targetPID: targetPID(of: monitor), timeoutRatio: setting.ratio))
            )
        }
    }
}

extension ServerEngine {
    /// A lowered ratio no longer binds: the persisted listen ratio comes down.
    mutating func finishTimeoutLowering(now: EngineTime) {
        guard let ends = timeoutLoweringEndsAt, now >= ends else { return }
        timeoutLoweringEndsAt = nil
        let ratio = timeoutRatio
        if (persistent.listenRatio ?? 1) != ratio {
            persistent.listenRatio = ratio == 1 ? nil : ratio
            persistDirty = true
        }
    }
}

extension TimeoutRatio {
    /// The longest a ratio may last (the reference's 30 days).
    public static let longestTime: Int64 = 30 * 86_400_000

    /// A setting from what an operator typed (`clptoratio -r RATIO -t TIME`, the REST API's
    /// `{ratio, time}`): TIME is a number of minutes, hours or days (`90m`, `3h`, `4d`), at
    /// most 30 days, and absent with ratio 1 (a reset); nil TIME with a ratio above 1 lasts
    /// until reset. `now` is the Unix time in milliseconds. Returns the setting, or why not.
    public static func requested(ratio: Int, time: String?, now: Int64) -> Result<TimeoutRatio, TimeoutRatioError> {
        guard allowedRatios.contains(ratio) else {
            return .failure(TimeoutRatioError("the ratio must be an integer from 1 to 10000 (got \(ratio))"))
        }
        guard let time, !time.isEmpty else { return .success(TimeoutRatio(ratio: ratio, expiresAt: nil, setAt: now)) }
        guard ratio != 1 else {
            return .failure(TimeoutRatioError("ratio 1 resets the timeouts and takes no time"))
        }
        let unit = time.last.map(String.init) ?? ""
        let perUnit: Int64
        switch unit {
        case "m": perUnit = 60_000
        case "h": perUnit = 3_600_000
        case "d": perUnit = 86_400_000
        default:
            return .failure(TimeoutRatioError("time '\(time)' must be a number followed by m (minutes), h (hours) or d (days)"))
        }
        guard let count = Int64(time.dropLast()), count > 0, count <= longestTime / perUnit else {
            return .failure(TimeoutRatioError("time '\(time)' must be more than 0 and at most 30 days (30d, 720h, 43200m)"))
        }
        return .success(TimeoutRatio(ratio: ratio, expiresAt: now + count * perUnit, setAt: now))
    }
}

/// Why a requested timeout ratio was refused (a sentence for the operator).
public struct TimeoutRatioError: Error, Equatable, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}
