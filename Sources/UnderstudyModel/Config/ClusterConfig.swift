// The cluster configuration as typed values. `ConfigLoader` builds these from YAML and
// `ConfigValidator` checks them; everything past loading (Engine, Node, CLI) reads only these.

/// A whole cluster definition: one YAML file.
public struct ClusterConfig: Sendable, Equatable {
    /// Path of the file this was loaded from ("" when built in code).
    public var sourcePath: String
    public var cluster: ClusterSettings
    /// Order is priority: the first alive server is the master.
    public var servers: [ServerConfig]
    public var heartbeats: [HeartbeatConfig]
    public var networkPartition: [NetworkPartitionConfig]
    public var groups: [GroupConfig]
    public var monitors: [MonitorConfig]
    /// Alert destinations and routing (`alerts:`); `AlertSettings.implicit` when absent.
    public var alerts: AlertSettings = .implicit
    /// Forced stop of lost servers (`fencing:`); nil: none.
    public var fencing: FencingConfig?

    public init(
        sourcePath: String = "",
        cluster: ClusterSettings,
        servers: [ServerConfig],
        heartbeats: [HeartbeatConfig] = [],
        networkPartition: [NetworkPartitionConfig] = [],
        groups: [GroupConfig] = [],
        monitors: [MonitorConfig] = []
    ) {
        self.sourcePath = sourcePath
        self.cluster = cluster
        self.servers = servers
        self.heartbeats = heartbeats
        self.networkPartition = networkPartition
        self.groups = groups
        self.monitors = monitors
    }

    public var serverNames: [String] { servers.map(\.name) }

    public func server(named name: String) -> ServerConfig? { servers.first { $0.name == name } }
    public func group(named name: String) -> GroupConfig? { groups.first { $0.name == name } }

    /// The group a resource belongs to, with the resource.
    public func resource(named name: String) -> (group: GroupConfig, resource: ResourceConfig)? {
        for group in groups {
            if let resource = group.resources.first(where: { $0.name == name }) {
                return (group, resource)
            }
        }
        return nil
    }
}

public struct ClusterSettings: Sendable, Equatable {
    public var name: String
    public var comment: String
    /// File holding the cluster key (HMAC-SHA256 for every heartbeat and control frame).
    public var secretFile: String
    public var timing: TimingSettings
    public var networkPartitionAction: NetworkPartitionAction
    public var shutdownMonitor: ShutdownMonitorSettings
    public var recovery: RecoverySettings
    public var ports: PortSettings
    /// The web server (REST API, sessions); nil: none runs.
    public var web: WebSettings?
    public var osCommands: OSCommands
    /// The only folder `clprexec --script` may run scripts from.
    public var rexecDirectory: String = Defaults.rexecDirectory
    /// Hosts outside the cluster that may send `clprexec` requests (RexecClients.swift).
    public var rexecClients: [RexecClient] = []

    public init(
        name: String,
        comment: String = "",
        secretFile: String,
        timing: TimingSettings = TimingSettings(),
        networkPartitionAction: NetworkPartitionAction = .shutdown,
        shutdownMonitor: ShutdownMonitorSettings = ShutdownMonitorSettings(),
        recovery: RecoverySettings = RecoverySettings(),
        ports: PortSettings = PortSettings(),
        osCommands: OSCommands = OSCommands()
    ) {
        self.name = name
        self.comment = comment
        self.secretFile = secretFile
        self.timing = timing
        self.networkPartitionAction = networkPartitionAction
        self.shutdownMonitor = shutdownMonitor
        self.recovery = recovery
        self.ports = ports
        self.osCommands = osCommands
    }
}

public struct TimingSettings: Sendable, Equatable {
    public var heartbeatInterval: Duration
    public var heartbeatTimeout: Duration
    /// Startup wait for all servers before auto-start groups start; zero skips it.
    public var syncWait: Duration
    /// A monitor check slower than this percentage of its timeout is logged as delayed.
    public var monitorDelayWarning: Int

    public init(
        heartbeatInterval: Duration = Defaults.heartbeatInterval,
        heartbeatTimeout: Duration = Defaults.heartbeatTimeout,
        syncWait: Duration = Defaults.syncWait,
        monitorDelayWarning: Int = Defaults.monitorDelayWarningPercent
    ) {
        self.heartbeatInterval = heartbeatInterval
        self.heartbeatTimeout = heartbeatTimeout
        self.syncWait = syncWait
        self.monitorDelayWarning = monitorDelayWarning
    }
}

/// What the losing side of a network partition (and a server whose helper process keeps
/// failing) does. `shutdown`/`reboot` stop the OS in order; the others stop the machine at
/// once (see `FinalAction.isImmediate`).
public enum NetworkPartitionAction: String, Sendable, Equatable, CaseIterable {
    case none
    case stopService = "stop-service"
    case shutdown
    case reboot
    case panic
    case reset
    case keepaliveReset = "keepalive-reset"
    case bmcPowerOff = "bmc-power-off"
    case bmcReset = "bmc-reset"
    case bmcPowerCycle = "bmc-power-cycle"
    case bmcNMI = "bmc-nmi"

    /// Stops the machine at once through `cluster.os-commands` (no orderly stop).
    public var isImmediate: Bool { FinalAction(rawValue: rawValue)?.isImmediate ?? false }
}

public struct ShutdownMonitorSettings: Sendable, Equatable {
    public enum Method: String, Sendable, Equatable, CaseIterable {
        case softdog
        case none
    }
    public enum Timeout: Sendable, Equatable {
        /// Use the heartbeat timeout.
        case heartbeat
        case duration(Duration)
    }
    public var method: Method
    public var timeout: Timeout

    public init(method: Method = .none, timeout: Timeout = .heartbeat) {
        self.method = method
        self.timeout = timeout
    }
}

public struct RecoverySettings: Sendable, Equatable {
    public enum SuppressCase: String, Sendable, Equatable, CaseIterable {
        case activation
        case deactivation
        case monitor
    }
    /// Limit of OS reboots caused by final actions; 0 = unlimited.
    public var maxReboots: Int
    /// The reboot count goes back to 0 after the server has run this long with no monitor in
    /// error and no group failed; zero = never (only `clpregctrl --clear`).
    public var rebootCountResetAfter: Duration
    /// Final actions that stop the OS are skipped in these cases when no other server is alive.
    public var suppressFinalActionWhenAlone: Set<SuppressCase>
    /// Cluster-wide switch: monitors detect but do not recover.
    public var disableMonitorRecovery: Bool
    /// What a server does when a helper process of the daemon (the keeper) keeps dying or
    /// cannot be started (reference §3.6; the reference's default shuts the OS down).
    public var processFailureAction: NetworkPartitionAction

    public init(
        maxReboots: Int = 0,
        rebootCountResetAfter: Duration = .zero,
        suppressFinalActionWhenAlone: Set<SuppressCase> = [],
        disableMonitorRecovery: Bool = false,
        processFailureAction: NetworkPartitionAction = .shutdown
    ) {
        self.maxReboots = maxReboots
        self.rebootCountResetAfter = rebootCountResetAfter
        self.suppressFinalActionWhenAlone = suppressFinalActionWhenAlone
        self.disableMonitorRecovery = disableMonitorRecovery
        self.processFailureAction = processFailureAction
    }
}

public struct PortSettings: Sendable, Equatable {
    public var control: Int
    public var heartbeat: Int
    public var http: Int
    /// A second port of the web server for EXPRESSCLUSTER API clients (29009); nil: none.
    public var api: Int?

    public init(
        control: Int = Defaults.controlPort, heartbeat: Int = Defaults.heartbeatPort,
        http: Int = Defaults.httpPort, api: Int? = nil
    ) {
        self.control = control
        self.heartbeat = heartbeat
        self.http = http
        self.api = api
    }
}

/// How final actions stop the OS or the machine. Replaceable so tests record instead of
/// shutting down. The keys are the action names (`FinalAction` raw values).
public struct OSCommands: Sendable, Equatable {
    public var shutdown: [String]
    public var reboot: [String]
    /// Kernel panic through sysrq `c` (a crash dump when kdump is set up).
    public var panic: [String] = Defaults.panicCommand
    /// Immediate reboot through sysrq `b` (no sync, no unmount).
    public var reset: [String] = Defaults.resetCommand
    /// Reset by the kernel watchdog: arm it with a short timeout and stop feeding it.
    public var keepaliveReset: [String] = Defaults.keepaliveResetCommand
    /// This server's own BMC (`ipmitool -I open`, /dev/ipmi0).
    public var bmcPowerOff: [String] = Defaults.bmcPowerOffCommand
    public var bmcReset: [String] = Defaults.bmcResetCommand
    public var bmcPowerCycle: [String] = Defaults.bmcPowerCycleCommand
    public var bmcNMI: [String] = Defaults.bmcNMICommand

    /// The keys of `cluster.os-commands`, in documentation order.
    public static let keys = [
        "shutdown", "reboot", "panic", "reset", "keepalive-reset", "bmc-power-off", "bmc-reset", "bmc-power-cycle", "bmc-nmi",
    ]

    public init(
        shutdown: [String] = Defaults.shutdownCommand, reboot: [String] = Defaults.rebootCommand
    ) {
        self.shutdown = shutdown
        self.reboot = reboot
    }

    /// The command of a key of `keys` (nil for any other name).
    public subscript(key: String) -> [String]? {
        get {
            switch key {
            case "shutdown": return shutdown
            case "reboot": return reboot
            case "panic": return panic
            case "reset": return reset
            case "keepalive-reset": return keepaliveReset
            case "bmc-power-off": return bmcPowerOff
            case "bmc-reset": return bmcReset
            case "bmc-power-cycle": return bmcPowerCycle
            case "bmc-nmi": return bmcNMI
            default: return nil
            }
        }
        set {
            guard let newValue else { return }
            switch key {
            case "shutdown": shutdown = newValue
            case "reboot": reboot = newValue
            case "panic": panic = newValue
            case "reset": reset = newValue
            case "keepalive-reset": keepaliveReset = newValue
            case "bmc-power-off": bmcPowerOff = newValue
            case "bmc-reset": bmcReset = newValue
            case "bmc-power-cycle": bmcPowerCycle = newValue
            case "bmc-nmi": bmcNMI = newValue
            default: break
            }
        }
    }
}

public struct ServerConfig: Sendable, Equatable {
    public var name: String
    public var comment: String

    public init(name: String, comment: String = "") {
        self.name = name
        self.comment = comment
    }
}

public struct HeartbeatConfig: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        /// UDP heartbeat; one address per server.
        case lan(addresses: [String: String])
        /// A slot per server on a shared block device (prepared by `understudy diskhb init`).
        case disk(device: String)
        /// Serial line (a null-modem cable) between two servers; one device per server and
        /// the line speed in bit/s.
        case serial(devices: [String: String], speed: Int)
        /// HTTP witness server.
        case witness(WitnessEndpoint)
    }
    public var name: String
    public var comment: String
    public var kind: Kind

    public init(name: String, comment: String = "", kind: Kind) {
        self.name = name
        self.comment = comment
        self.kind = kind
    }

    /// The CLUSTERPRO type name (`lanhb`, `diskhb`, `comhb`, `witnesshb`).
    public var typeName: String {
        switch kind {
        case .lan: return "lanhb"
        case .disk: return "diskhb"
        case .serial: return "comhb"
        case .witness: return "witnesshb"
        }
    }
}

/// Where a witness server listens (`witnesshb`, `httpnp`), and how it is reached.
public struct WitnessEndpoint: Sendable, Equatable {
    public var host: String
    public var port: Int
    /// HTTPS when set; plain HTTP when nil (requests are authenticated either way).
    public var tls: WitnessTLS?

    public init(host: String, port: Int, tls: WitnessTLS? = nil) {
        self.host = host
        self.port = port
        self.tls = tls
    }

    /// `host:port`, `[v6]:port`, with `https://` in front when TLS is on.
    public var displayText: String {
        (tls == nil ? "" : "https://") + (host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)")
    }
}

/// How a server checks the witness's certificate.
public struct WitnessTLS: Sendable, Equatable {
    /// PEM file of the certificates that may sign the witness's certificate (the certificate
    /// itself when it is self-signed); nil: the system's trust store.
    public var caFile: String?
    /// The name the certificate must carry; nil: `host` (a name, or an IP address SAN).
    public var serverName: String?

    public init(caFile: String? = nil, serverName: String? = nil) {
        self.caFile = caFile
        self.serverName = serverName
    }
}

public struct NetworkPartitionConfig: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        /// Ping targets; a server that reaches none of them loses.
        case ping(targets: [String])
        /// The side holding more than half of the servers survives.
        case majority
        /// HTTP witness.
        case http(WitnessEndpoint)
    }
    public var name: String
    public var comment: String
    public var kind: Kind
    /// `pingnp`: how long one probe waits for an answer. The other side waits this long
    /// (plus an interval) before taking over, the time a cut-off server needs to find out.
    public var pingTimeout: Duration

    public init(name: String, comment: String = "", kind: Kind, pingTimeout: Duration = Defaults.pingTimeout) {
        self.name = name
        self.comment = comment
        self.kind = kind
        self.pingTimeout = pingTimeout
    }

    public var typeName: String {
        switch kind {
        case .ping: return "pingnp"
        case .majority: return "majority"
        case .http: return "httpnp"
        }
    }
}

public struct GroupConfig: Sendable, Equatable {
    public enum Startup: String, Sendable, Equatable, CaseIterable { case auto, manual }
    public enum Failover: String, Sendable, Equatable, CaseIterable { case auto, manual }
    public enum Failback: String, Sendable, Equatable, CaseIterable { case manual, auto }
    public enum Exclusive: String, Sendable, Equatable, CaseIterable { case none, normal, complete }
    /// When a group waits for its `stop-after` groups (reference: depend/deact cluster, server,
    /// other).
    public enum StopWaitOccasion: String, Sendable, Equatable, CaseIterable {
        /// The whole cluster stops (`clpstdn`, `clpcl -t -a`): waits for the groups anywhere.
        case clusterStop = "cluster-stop"
        /// This server's cluster service stops (`clpdown`, `clpcl -t`): waits for the groups on
        /// this server (they stop here and fail over).
        case serverStop = "server-stop"
        /// The group is stopped by `clpgrp -t`: waits for the groups being stopped with it.
        case groupStop = "group-stop"
    }

    public var name: String
    public var comment: String
    /// Failover policy, highest priority first. The loader fills in every server in cluster
    /// order when the file leaves it out.
    public var servers: [String]
    public var startup: Startup
    public var failover: Failover
    public var failback: Failback
    public var exclusive: Exclusive
    /// Groups that must have stopped before this one stops (ordered stop) …
    public var stopAfter: [String]
    /// … on these occasions (default: cluster stop, as the reference) …
    public var stopAfterWhen: [StopWaitOccasion]
    /// … waiting at most this long, then stopping anyway (default 30 min, as the reference).
    public var stopAfterTimeout: Duration
    public var resources: [ResourceConfig]

    public init(
        name: String,
        comment: String = "",
        servers: [String],
        startup: Startup = .auto,
        failover: Failover = .auto,
        failback: Failback = .manual,
        exclusive: Exclusive = .none,
        stopAfter: [String] = [],
        stopAfterWhen: [StopWaitOccasion] = [.clusterStop],
        stopAfterTimeout: Duration = Defaults.stopWaitTimeout,
        resources: [ResourceConfig] = []
    ) {
        self.name = name
        self.comment = comment
        self.servers = servers
        self.startup = startup
        self.failover = failover
        self.failback = failback
        self.exclusive = exclusive
        self.stopAfter = stopAfter
        self.stopAfterWhen = stopAfterWhen
        self.stopAfterTimeout = stopAfterTimeout
        self.resources = resources
    }
}

/// What happens after activation or deactivation fails for good.
public enum FinalAction: String, Sendable, Codable, Equatable, CaseIterable {
    /// No operation; leave the group in failure (do not activate the next resource).
    case none
    /// No operation, but go on activating the next resource.
    case noneContinue = "none-continue"
    case stopGroup = "stop-group"
    case stopResource = "stop-resource"
    case stopClusterService = "stop-cluster-service"
    /// Stop the cluster service and shut the OS down.
    case shutdown
    /// Stop the cluster service and reboot the OS.
    case reboot
    /// Kernel panic through sysrq, at once: no stop scripts, no orderly stop.
    case panic
    /// Immediate reboot through sysrq.
    case reset
    /// Reset by the kernel watchdog (armed with a short timeout and no longer fed).
    case keepaliveReset = "keepalive-reset"
    /// This server's BMC powers it off, resets it, power-cycles it or sends it an NMI.
    case bmcPowerOff = "bmc-power-off"
    case bmcReset = "bmc-reset"
    case bmcPowerCycle = "bmc-power-cycle"
    case bmcNMI = "bmc-nmi"

    /// True when the action ends in the OS (or the machine) stopping.
    public var stopsOS: Bool { self == .shutdown || self == .reboot || isImmediate }

    /// Stops the machine at once through `cluster.os-commands`, without the orderly stop of
    /// the groups (no stop scripts, no farewell): peers see a lost server.
    public var isImmediate: Bool {
        switch self {
        case .panic, .reset, .keepaliveReset, .bmcPowerOff, .bmcReset, .bmcPowerCycle, .bmcNMI: return true
        case .none, .noneContinue, .stopGroup, .stopResource, .stopClusterService, .shutdown, .reboot: return false
        }
    }

    /// The immediate actions, in documentation order.
    public static let immediate: [FinalAction] = allCases.filter(\.isImmediate)
}

public struct ActivationPolicy: Sendable, Equatable {
    /// Retries on the same server.
    public var retry: Int
    /// Failovers to other servers before the final action.
    public var failover: Int
    public var finalAction: FinalAction

    public init(
        retry: Int = Defaults.activationRetry, failover: Int = Defaults.activationFailover,
        finalAction: FinalAction = Defaults.activationFinalAction
    ) {
        self.retry = retry
        self.failover = failover
        self.finalAction = finalAction
    }
}

public struct DeactivationPolicy: Sendable, Equatable {
    public var retry: Int
    public var finalAction: FinalAction

    public init(
        retry: Int = Defaults.deactivationRetry,
        finalAction: FinalAction = Defaults.deactivationFinalAction
    ) {
        self.retry = retry
        self.finalAction = finalAction
    }
}

public struct ResourceConfig: Sendable, Equatable {
    public var name: String
    public var comment: String
    /// Explicit dependencies; nil = the default dependency order by type.
    public var depends: [String]?
    public var activation: ActivationPolicy
    public var deactivation: DeactivationPolicy
    public var settings: ResourceSettings

    public init(
        name: String,
        comment: String = "",
        depends: [String]? = nil,
        activation: ActivationPolicy = ActivationPolicy(),
        deactivation: DeactivationPolicy = DeactivationPolicy(),
        settings: ResourceSettings
    ) {
        self.name = name
        self.comment = comment
        self.depends = depends
        self.activation = activation
        self.deactivation = deactivation
        self.settings = settings
    }

    public var type: ResourceType { settings.type }
}

public enum ResourceType: String, Sendable, Equatable, CaseIterable {
    case fip, vip, ddns, volmgr, disk, nas, exec, vm

    /// Default dependency layer: a resource depends on every resource of a lower layer in its
    /// group unless `depends:` says otherwise (fip/vip/ddns, then volmgr, then disk/nas, then
    /// exec/vm).
    public var defaultLayer: Int {
        switch self {
        case .fip, .vip, .ddns: return 0
        case .volmgr: return 1
        case .disk, .nas: return 2
        case .exec, .vm: return 3
        }
    }

    /// Disk-type resources set `CLP_DISK=FAILURE` when they fail.
    public var isDiskType: Bool { self == .disk || self == .nas || self == .volmgr }
}

public enum ResourceSettings: Sendable, Equatable {
    case exec(ExecSettings)
    case fip(FloatingIPSettings)
    case vip(VirtualIPSettings)
    case disk(DiskSettings)
    case nas(NASSettings)
    case volmgr(VolumeManagerSettings)
    case vm(VirtualMachineSettings)
    case ddns(DynamicDNSSettings)

    public var type: ResourceType {
        switch self {
        case .exec: return .exec
        case .fip: return .fip
        case .vip: return .vip
        case .disk: return .disk
        case .nas: return .nas
        case .volmgr: return .volmgr
        case .vm: return .vm
        case .ddns: return .ddns
        }
    }
}

public struct ExecSettings: Sendable, Equatable {
    public enum Mode: String, Sendable, Equatable, CaseIterable { case sync, async }
    /// Start script, resolved to an absolute path by the loader (relative paths are relative
    /// to the config file's folder). Nil = nothing to run at start.
    public var start: String?
    public var stop: String?
    public var startMode: Mode
    public var stopMode: Mode
    /// Start script timeout.
    public var timeout: Duration
    /// Stop script timeout.
    public var stopTimeout: Duration
    /// Script output log; nil = `<state-dir>/logs/<resource>.log`.
    public var log: String?
    /// Rotate the log when it grows past this many bytes.
    public var logRotateSize: Int

    public init(
        start: String? = nil,
        stop: String? = nil,
        startMode: Mode = .sync,
        stopMode: Mode = .sync,
        timeout: Duration = Defaults.scriptTimeout,
        stopTimeout: Duration = Defaults.scriptTimeout,
        log: String? = nil,
        logRotateSize: Int = Defaults.scriptLogRotateSize
    ) {
        self.start = start
        self.stop = stop
        self.startMode = startMode
        self.stopMode = stopMode
        self.timeout = timeout
        self.stopTimeout = stopTimeout
        self.log = log
        self.logRotateSize = logRotateSize
    }
}

public struct FloatingIPSettings: Sendable, Equatable {
    /// Address with prefix length, e.g. `192.168.0.12/24` or `fd00::12/64`.
    public var address: String
    public var interface: String?
    public var failOnLinkDown: Bool
    public var force: Bool
    /// Gratuitous ARPs / unsolicited neighbour advertisements after activation (nil: 3).
    public var announceCount: Int?
    /// Time between two announcements (nil: 100 ms).
    public var announceInterval: Duration?
    /// How long the in-use probe waits for an answer (nil: 200 ms).
    public var probeWait: Duration?

    public init(
        address: String, interface: String? = nil, failOnLinkDown: Bool = false, force: Bool = false, announceCount: Int? = nil,
        announceInterval: Duration? = nil, probeWait: Duration? = nil
    ) {
        self.address = address
        self.interface = interface
        self.failOnLinkDown = failOnLinkDown
        self.force = force
        self.announceCount = announceCount
        self.announceInterval = announceInterval
        self.probeWait = probeWait
    }
}

/// A virtual IP (`vip`): an address of its own network, reachable from other subnets
/// because the server holding it advertises a route to it with RIP.
public struct VirtualIPSettings: Sendable, Equatable {
    public enum RIPVersion: String, Sendable, Equatable, CaseIterable {
        case v1 = "1"
        case v2 = "2"
        case ng
    }

    /// Address with optional prefix length (default /32, IPv6 /128): the route advertised.
    public var address: String
    /// The NIC the address is added to and RIP is sent on; default: the interface holding
    /// the server's first heartbeat address.
    public var interface: String?
    /// RIP version; default 2 for IPv4, `ng` for IPv6.
    public var ripVersion: RIPVersion?
    /// Time between two advertisements.
    public var ripInterval: Duration
    /// Metric of the advertised route (1–15).
    public var ripMetric: Int
    /// Where advertisements go; default: 224.0.0.9 (RIPv2), the interface's broadcast
    /// address (RIPv1), ff02::9 (RIPng).
    public var ripDestination: String?
    /// Start even when the address answers a ping already.
    public var force: Bool

    public init(
        address: String, interface: String? = nil, ripVersion: RIPVersion? = nil, ripInterval: Duration = Defaults.vipRIPInterval,
        ripMetric: Int = Defaults.vipRIPMetric, ripDestination: String? = nil, force: Bool = false
    ) {
        self.address = address
        self.interface = interface
        self.ripVersion = ripVersion
        self.ripInterval = ripInterval
        self.ripMetric = ripMetric
        self.ripDestination = ripDestination
        self.force = force
    }
}

/// How a file system is mounted and unmounted: what `disk` and `nas` share (reference §5.3,
/// CLUSTERPRO `mount/*` and `umount/*`).
public struct MountSettings: Sendable, Equatable {
    /// What to do with the processes that keep a mount point busy before each unmount retry.
    public enum BusyAction: String, Sendable, Equatable, CaseIterable {
        /// SIGTERM, then SIGKILL to every process using the file system (CLUSTERPRO `kill`).
        case kill
        /// Leave them; the unmount retries and then fails (deactivation failure).
        case none
    }

    public var mountPoint: String
    public var options: String
    /// One mount attempt's limit (`mount/timeout`).
    public var mountTimeout: Duration
    /// Attempts after the first failed mount (`mount/retry`).
    public var mountRetries: Int
    /// One unmount attempt's limit (`umount/timeout`).
    public var unmountTimeout: Duration
    /// Attempts after the first failed unmount (`umount/retry`).
    public var unmountRetries: Int
    /// Wait between two unmount attempts (`umount/interval`).
    public var unmountInterval: Duration
    public var busyAction: BusyAction

    public init(
        mountPoint: String, options: String = Defaults.mountOptions, mountTimeout: Duration = Defaults.mountTimeout,
        mountRetries: Int = Defaults.mountRetries, unmountTimeout: Duration = Defaults.unmountTimeout,
        unmountRetries: Int = Defaults.unmountRetries, unmountInterval: Duration = Defaults.unmountInterval,
        busyAction: BusyAction = .kill
    ) {
        self.mountPoint = mountPoint
        self.options = options
        self.mountTimeout = mountTimeout
        self.mountRetries = mountRetries
        self.unmountTimeout = unmountTimeout
        self.unmountRetries = unmountRetries
        self.unmountInterval = unmountInterval
        self.busyAction = busyAction
    }
}

/// A file system on a shared disk (`disk`), mounted on the one server that runs the group.
public struct DiskSettings: Sendable, Equatable {
    /// When the file system is checked before it is mounted (`fsck/timing`).
    public enum FsckTiming: String, Sendable, Equatable, CaseIterable {
        case never, always
        /// Every `fsckInterval`-th mount by this server (the reference's default).
        case interval
    }

    /// A device path, `UUID=…` or `LABEL=…`.
    public var device: String
    /// `ext3`, `ext4`, `xfs`, `btrfs`, or `none` (a raw device: nothing is mounted).
    public var filesystem: String
    public var mount: MountSettings
    public var fsck: FsckTiming
    public var fsckInterval: Int
    public var fsckOptions: String
    public var fsckTimeout: Duration
    /// After a failed mount, check the file system before the next attempt (`mount/action`).
    public var fsckOnMountFailure: Bool
    /// xfs: run `xfs_repair` after a failed mount (off by default, as the reference).
    public var xfsRepairOnMountFailure: Bool
    public var xfsRepairOptions: String

    public init(
        device: String, filesystem: String, mountPoint: String, mountOptions: String = Defaults.mountOptions,
        fsck: FsckTiming = .interval, fsckInterval: Int = Defaults.fsckInterval, fsckOptions: String = Defaults.fsckOptions,
        fsckTimeout: Duration = Defaults.fsckTimeout, fsckOnMountFailure: Bool = true, xfsRepairOnMountFailure: Bool = false,
        xfsRepairOptions: String = ""
    ) {
        self.device = device
        self.filesystem = filesystem
        self.mount = MountSettings(mountPoint: mountPoint, options: mountOptions)
        self.fsck = fsck
        self.fsckInterval = fsckInterval
        self.fsckOptions = fsckOptions
        self.fsckTimeout = fsckTimeout
        self.fsckOnMountFailure = fsckOnMountFailure
        self.xfsRepairOnMountFailure = xfsRepairOnMountFailure
        self.xfsRepairOptions = xfsRepairOptions
    }

    public var mountPoint: String { mount.mountPoint }
    public var mountOptions: String { mount.options }
    /// A raw device: activation only checks it; nothing is mounted.
    public var isRaw: Bool { filesystem == "none" }
}

/// An NFS share mounted as a client (`nas`).
public struct NASSettings: Sendable, Equatable {
    public var server: String
    public var share: String
    public var mount: MountSettings
    /// `nfs` or `nfs4`.
    public var filesystem: String
    /// Check the server with ICMP echo before mounting (the reference's ping check).
    public var pingServer: Bool

    public init(
        server: String, share: String, mountPoint: String, mountOptions: String = Defaults.mountOptions,
        filesystem: String = "nfs", pingServer: Bool = true
    ) {
        self.server = server
        self.share = share
        self.mount = MountSettings(mountPoint: mountPoint, options: mountOptions)
        self.filesystem = filesystem
        self.pingServer = pingServer
    }

    public var mountPoint: String { mount.mountPoint }
    public var mountOptions: String { mount.options }
}

/// A volume group (LVM) or pool (ZFS) imported on the one server that runs the group.
public struct VolumeManagerSettings: Sendable, Equatable {
    public enum Manager: String, Sendable, Equatable, CaseIterable { case lvm, zfs }
    public var manager: Manager
    public var volume: String
    /// Attempts after a failed activation / deactivation (reference default 5, since 3.1.5-1).
    public var activationRetries: Int
    public var deactivationRetries: Int
    /// Take the volume group even when another host's tag is on it (LVM), import a pool last
    /// used by another host (ZFS `-f`). Only for a peer known to be down.
    public var forceImport: Bool

    public init(
        manager: Manager, volume: String, activationRetries: Int = Defaults.volumeRetries,
        deactivationRetries: Int = Defaults.volumeRetries, forceImport: Bool = false
    ) {
        self.manager = manager
        self.volume = volume
        self.activationRetries = activationRetries
        self.deactivationRetries = deactivationRetries
        self.forceImport = forceImport
    }
}

public struct VirtualMachineSettings: Sendable, Equatable {
    public enum Hypervisor: String, Sendable, Equatable, CaseIterable { case kvm }
    public var hypervisor: Hypervisor
    public var vmName: String

    public init(hypervisor: Hypervisor = .kvm, vmName: String) {
        self.hypervisor = hypervisor
        self.vmName = vmName
    }
}

public struct DynamicDNSSettings: Sendable, Equatable {
    public var hostname: String
    public var server: String
    public var ttl: Int
    public var keyFile: String?

    public init(hostname: String, server: String, ttl: Int = 0, keyFile: String? = nil) {
        self.hostname = hostname
        self.server = server
        self.ttl = ttl
        self.keyFile = keyFile
    }
}
