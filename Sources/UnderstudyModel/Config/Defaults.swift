// Every default in one table; docs/configuration.md lists the same values.
// Values follow the CLUSTERPRO reference (`../shared/spec/clp-reference.md` §3–§6).

public enum Defaults {
    public static let heartbeatInterval: Duration = .seconds(3)
    public static let heartbeatTimeout: Duration = .seconds(90)
    public static let syncWait: Duration = .seconds(300)
    /// Longest wait of a group for its `stop-after` groups (reference: depend/deact timeout).
    public static let stopWaitTimeout: Duration = .seconds(1800)

    public static let controlPort = 29001
    public static let heartbeatPort = 29002
    public static let httpPort = 29003
    /// EXPRESSCLUSTER's RESTful API port (reference §3.3); used only when `ports.api` is set.
    public static let apiPort = 29009
    /// The users file of the web server, next to the configuration.
    public static let usersFileName = "users.yaml"
    public static let webSessionTimeout: Duration = .seconds(1800)
    public static let webMaxBodySize = 64 * 1024

    /// comhb line speed in bit/s.
    public static let serialSpeed = 19200
    /// The speeds a comhb line can be set to (the standard termios rates).
    public static let serialSpeeds = [1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200, 230400]

    public static let shutdownCommand = ["/sbin/shutdown", "-h", "now"]
    public static let rebootCommand = ["/sbin/shutdown", "-r", "now"]
    /// sysrq must be enabled first (`kernel.sysrq` may mask `c` and `b`).
    public static let panicCommand = ["/bin/sh", "-c", "echo 1 > /proc/sys/kernel/sysrq; echo c > /proc/sysrq-trigger"]
    public static let resetCommand = ["/bin/sh", "-c", "echo 1 > /proc/sys/kernel/sysrq; echo b > /proc/sysrq-trigger"]
    /// Loads softdog with a 1 s margin when no watchdog driver is there, sets the timeout to
    /// 1 s (wdctl closes with the magic character: not armed yet), then opens the device and
    /// holds it without ever writing: the watchdog fires a second later. If the shell ends
    /// anyway, the unexpected close leaves the watchdog running. It returns at once only when
    /// the device cannot be opened (no driver, or another process holds it).
    public static let keepaliveResetCommand = [
        "/bin/sh", "-c",
        "[ -e /dev/watchdog ] || { modprobe softdog soft_margin=1; sleep 1; }; wdctl --settimeout 1 /dev/watchdog >/dev/null 2>&1; exec 3>/dev/watchdog && exec sleep 120",
    ]
    public static let bmcPowerOffCommand = ["ipmitool", "-I", "open", "chassis", "power", "off"]
    public static let bmcResetCommand = ["ipmitool", "-I", "open", "chassis", "power", "reset"]
    public static let bmcPowerCycleCommand = ["ipmitool", "-I", "open", "chassis", "power", "cycle"]
    /// A diagnostic interrupt (NMI): the kernel panics on it with `kernel.unknown_nmi_panic=1`.
    public static let bmcNMICommand = ["ipmitool", "-I", "open", "chassis", "power", "diag"]

    public static let activationRetry = 0
    public static let activationFailover = 1
    public static let activationFinalAction: FinalAction = .none
    public static let deactivationRetry = 0
    public static let deactivationFinalAction: FinalAction = .shutdown

    /// Exec start/stop script timeout (reference: 1800 s).
    public static let scriptTimeout: Duration = .seconds(1800)
    public static let scriptLogRotateSize = 1_000_000

    public static let stateDirectory = "/var/lib/understudy"
    public static let runDirectory = "/run/understudy"
    /// `clprexec --script` runs scripts from this folder only.
    public static let rexecDirectory = "/etc/understudy/rexec"
    public static let configPath = "/etc/understudy/cluster.yaml"

    /// Alerts waiting per alert destination before the oldest is dropped.
    public static let alertQueue = 1000
    /// Alert-log records per file before rotation (reference: 10,000).
    public static let alertLogRecords = 10_000

    /// Forced stop (`fencing:`): one stop, all agents together.
    public static let fencingTimeout: Duration = .seconds(30)
    /// Forced stop: how often each server checks its agents (mode 0).
    public static let fencingCheckInterval: Duration = .seconds(60)
    /// Forced stop: how long a lower-ranked server waits before stopping a higher-ranked one.
    public static let fencingDelay: Duration = .seconds(5)
    /// Forced stop: after a failure, when to try again.
    public static let fencingRetryInterval: Duration = .seconds(30)
    /// IPMI over LAN (RMCP).
    public static let ipmiPort = 623

    /// Version reported in `CLP_VERSION_FULL`.
    public static let productVersion = "0.1.0-1"
    /// Install path reported in `CLP_PATH`.
    public static let installPath = "/opt/understudy"
}
