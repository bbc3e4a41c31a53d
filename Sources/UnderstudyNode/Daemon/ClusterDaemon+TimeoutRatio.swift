import Foundation
import UnderstudyEngine
import UnderstudyModel

extension ClusterDaemon {
    /// Unix time in milliseconds: `clptoratio` settings are stamped and end in wall-clock
    /// time, the same on every server (the Engine never reads a clock).
    public nonisolated static func unixMilliseconds(_ date: Date = Date()) -> Int64 {
        Int64((date.timeIntervalSince1970 * 1000).rounded(.down))
    }

    /// At every tick: a setting whose time has passed becomes ratio 1, stamped with its
    /// expiry so that every server makes the same reset.
    func expireTimeoutRatioIfDue() {
        guard let setting = engine.timeoutRatioSetting, let ends = setting.expiresAt, setting.ratio != 1,
            Self.unixMilliseconds() >= ends, let reset = setting.expiry
        else { return }
        let (_, actions) = engine.command(.setTimeoutRatio(reset), origin: me, now: now())
        perform(actions)
    }
}
