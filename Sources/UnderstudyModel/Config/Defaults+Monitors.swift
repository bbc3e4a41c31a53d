// Defaults the config loader adds to the table in Defaults.swift: monitors and the keys that
// table does not cover. Values follow reference §6.1; those marked [I] there are our choices
// and docs/configuration.md lists them all.

extension Defaults {
    public static let monitorInterval: Duration = .seconds(60)
    public static let monitorTimeout: Duration = .seconds(120)
    /// diskw and volmgrw default to 1 (see `MonitorType.defaultRetries`).
    public static let monitorRetries = 0
    public static let monitorFirstWait: Duration = .zero
    public static let monitorNice = 0
    public static let monitorReactivations = 3
    public static let monitorFailovers = 1
    public static let monitorFinalAction: FinalAction = .none
    public static let monitorRecoveryScriptCount = 0
    public static let monitorRecoveryScriptTimeout: Duration = .seconds(5)
    /// Recovery counters reset after the monitor has been Normal this long [I]: long enough
    /// that a service crashing every few minutes runs out of reactivations instead of
    /// restarting forever.
    public static let monitorCounterReset: Duration = .seconds(600)
    /// A check that took longer than this share of its timeout is logged as delayed (§3.1).
    public static let monitorDelayWarningPercent = 80

    /// witnesshb and httpnp: the witness server's HTTP port.
    public static let witnessPort = 80
    /// disk and nas resources (reference §5.3: `mount/*`, `umount/*`, `fsck/*`).
    public static let mountOptions = "rw"
    public static let mountTimeout: Duration = .seconds(180)
    public static let mountRetries = 3
    public static let unmountTimeout: Duration = .seconds(120)
    public static let unmountRetries = 3
    public static let unmountInterval: Duration = .seconds(5)
    public static let fsckInterval = 10
    public static let fsckOptions = "-y"
    public static let fsckTimeout: Duration = .seconds(7200)
    /// volmgr: activation and deactivation retries (since 3.1.5-1).
    public static let volumeRetries = 5
    /// `pingnp`: one probe's wait for an answer.
    public static let pingTimeout: Duration = .seconds(1)
    /// `vip`: RIP advertisement every 30 s with metric 1 (routers time a route out after
    /// 180 s without one; a clean stop withdraws it at once with metric 16).
    public static let vipRIPInterval: Duration = .seconds(30)
    public static let vipRIPMetric = 1
}
