// Monitor resources: one shared runner (interval, timeout, retries, recovery) plus a small set
// of type-specific parameters. The parameters stay a dictionary of typed values checked against
// a per-type schema table, so adding a monitor type is one table entry and one probe file.

/// A typed value of a type-specific monitor parameter.
public enum ConfigValue: Sendable, Equatable, CustomStringConvertible {
    case string(String)
    case int(Int)
    case bool(Bool)
    case duration(Duration)
    case list([String])

    public var stringValue: String? {
        if case .string(let value) = self { return value }
        return nil
    }
    public var intValue: Int? {
        if case .int(let value) = self { return value }
        return nil
    }
    public var boolValue: Bool? {
        if case .bool(let value) = self { return value }
        return nil
    }
    public var durationValue: Duration? {
        if case .duration(let value) = self { return value }
        return nil
    }
    public var listValue: [String]? {
        if case .list(let value) = self { return value }
        return nil
    }

    /// The value as the config file would write it.
    public var description: String {
        switch self {
        case .string(let value): return value
        case .int(let value): return String(value)
        case .bool(let value): return value ? "true" : "false"
        case .duration(let value): return value.configText
        case .list(let values): return "[" + values.joined(separator: ", ") + "]"
        }
    }
}

/// Monitor types, named as in CLUSTERPRO.
public enum MonitorType: String, Sendable, Equatable, CaseIterable {
    /// User-space stall of the server itself.
    case userw
    /// The process started by an asynchronous exec resource.
    case pidw
    /// Processes by name.
    case psw
    /// A custom script.
    case genw
    /// Several other monitors together (multi-target).
    case mtw
    /// Errors reported from outside (`clprexec`), external-link monitor.
    case mrw
    /// ICMP echo to a list of addresses.
    case ipw
    /// A floating IP resource's address.
    case fipw
    /// NIC link state.
    case miiw
    /// Disk I/O.
    case diskw
    /// Volume manager object (LVM volume group, ZFS pool).
    case volmgrw
    case psqlw
    case mysqlw
    case httpw
    case nfsw
    case sambaw
    case oraclew
    /// A virtual machine resource's VM.
    case vmw
    /// Dynamic DNS registration of a ddns resource.
    case ddnsw
    /// A virtual IP resource (RIP advertisement).
    case vipw
    /// A UPS, through Network UPS Tools' upsd: power events shut servers down in order.
    case upsw

    /// The resource type a monitor of this type must target; nil when any or none.
    public var requiredTargetType: ResourceType? {
        switch self {
        case .pidw: return .exec
        case .fipw: return .fip
        case .vipw: return .vip
        case .ddnsw: return .ddns
        case .vmw: return .vm
        default: return nil
        }
    }

    /// Types that watch something that exists only while their target resource is active, so
    /// they always run with `timing: active`.
    public var monitorsOnlyWhileActive: Bool { requiredTargetType != nil }

    public var defaultTiming: MonitorConfig.Timing { monitorsOnlyWhileActive ? .active : .always }

    /// Reference §6.1: diskw (since 3.1.3-1) and volmgrw (since 3.3.5-1) retry once.
    public var defaultRetries: Int {
        switch self {
        case .diskw, .volmgrw: return 1
        default: return Defaults.monitorRetries
        }
    }

    /// The type-specific parameters this type accepts.
    public var parameterSpecs: [MonitorParameterSpec] { MonitorParameterSpec.table[self] ?? [] }

    public func parameterSpec(_ key: String) -> MonitorParameterSpec? {
        parameterSpecs.first { $0.key == key }
    }

    /// Every parameter that has a default, with that default.
    public var defaultParameters: [String: ConfigValue] {
        var values: [String: ConfigValue] = [:]
        for spec in parameterSpecs {
            if let value = spec.defaultValue { values[spec.key] = value }
        }
        return values
    }
}

/// One allowed type-specific key of a monitor type.
public struct MonitorParameterSpec: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        case string
        /// A file path; relative paths are resolved against the config file's folder.
        case path
        /// A host name or IP address.
        case host
        /// An `http://` or `https://` URL.
        case url
        case int(ClosedRange<Int>)
        /// A TCP/UDP port, 1–65535.
        case port
        case bool
        /// A duration greater than zero.
        case duration
        /// One of a fixed set of words.
        case choice([String])
        /// One of a fixed set of numbers.
        case intChoice([Int])
        /// A non-empty list of IP addresses.
        case ipList
        /// A non-empty list of monitor names.
        case monitorList

        /// How the config file writes such a value, for messages and docs.
        public var summary: String {
            switch self {
            case .string: return "string"
            case .path: return "path"
            case .host: return "host name or IP address"
            case .url: return "http(s) URL"
            case .int(let range): return "integer \(range.lowerBound)–\(range.upperBound)"
            case .port: return "port 1–65535"
            case .bool: return "true | false"
            case .duration: return "duration"
            case .choice(let words): return words.joined(separator: " | ")
            case .intChoice(let numbers): return numbers.map(String.init).joined(separator: " | ")
            case .ipList: return "list of IP addresses"
            case .monitorList: return "list of monitor names"
            }
        }
    }

    public var key: String
    public var kind: Kind
    public var isRequired: Bool
    /// Filled in by the loader when the file leaves the key out.
    public var defaultValue: ConfigValue?
    /// One line for docs and `--help`.
    public var summary: String

    public init(
        _ key: String, _ kind: Kind, required: Bool = false, default defaultValue: ConfigValue? = nil,
        _ summary: String
    ) {
        self.key = key
        self.kind = kind
        self.isRequired = required
        self.defaultValue = defaultValue
        self.summary = summary
    }

    /// The per-type schema. Names follow the reference (§6.3), in kebab-case; defaults marked
    /// [I] in the reference are our choices and are listed in docs/configuration.md.
    static let table: [MonitorType: [MonitorParameterSpec]] = {
        let databaseLevel = MonitorParameterSpec(
            "level", .intChoice([1, 2, 3]), default: .int(2),
            "1 = select, 2 = update and select, 3 = create/drop a table each time")
        return [
            .userw: [
                MonitorParameterSpec(
                    "method", .choice(["none", "softdog"]), default: .string("none"),
                    "none = detect the stall in user space only; softdog = also arm the kernel softdog")
            ],
            .pidw: [],
            .psw: [
                MonitorParameterSpec("process-name", .string, required: true, "process name to look for"),
                MonitorParameterSpec(
                    "min-count", .int(1...9_999), default: .int(1), "fewest processes that count as normal"),
            ],
            .genw: [
                MonitorParameterSpec("script", .path, required: true, "script or command to run"),
                MonitorParameterSpec(
                    "mode", .choice(["sync", "async"]), default: .string("sync"),
                    "sync = compare the exit code; async = the started process must stay alive"),
                MonitorParameterSpec(
                    "normal-value", .int(0...255), default: .int(0), "exit code meaning normal (sync)"),
                MonitorParameterSpec("log", .path, "file for the script's output"),
                MonitorParameterSpec(
                    "log-rotate-size", .int(0...Int(Int32.max)), default: .int(Defaults.scriptLogRotateSize),
                    "rotate the log past this many bytes; 0 = never"),
            ],
            .mtw: [
                MonitorParameterSpec("monitors", .monitorList, required: true, "monitors watched together"),
                MonitorParameterSpec(
                    "threshold", .int(0...9_999), default: .int(0),
                    "how many of them in error make this monitor an error; 0 = all"),
            ],
            .mrw: [
                MonitorParameterSpec(
                    "category", .string, default: .string("NIC"), "category the external report must carry"),
                MonitorParameterSpec("keyword", .string, "keyword the external report must carry"),
            ],
            .ipw: [
                MonitorParameterSpec("targets", .ipList, required: true, "addresses to ping; error when none answers")
            ],
            .fipw: [
                MonitorParameterSpec(
                    "monitor-link", .bool, default: .bool(false), "also treat NIC link down as an error")
            ],
            .miiw: [
                MonitorParameterSpec("interface", .string, required: true, "network interface, e.g. eth0")
            ],
            .diskw: [
                MonitorParameterSpec("device", .path, required: true, "block device (or file for write-file)"),
                MonitorParameterSpec(
                    "method", .choice(["read-direct", "read", "write-file", "tur"]),
                    default: .string("read-direct"), "how to probe the disk"),
                MonitorParameterSpec(
                    "size", .int(1...1_048_576), default: .int(512), "bytes per read or write"),
                MonitorParameterSpec(
                    "disk-full-is-error", .bool, default: .bool(true), "treat a full disk as an error (write-file)"),
            ],
            .volmgrw: [
                MonitorParameterSpec("manager", .choice(["lvm", "zfs"]), required: true, "volume manager"),
                MonitorParameterSpec("volume", .string, required: true, "volume group or pool name"),
            ],
            .psqlw: [
                MonitorParameterSpec("host", .host, default: .string("127.0.0.1"), "database server"),
                MonitorParameterSpec("port", .port, default: .int(5432), "database port"),
                MonitorParameterSpec("database", .string, required: true, "database name"),
                MonitorParameterSpec("user", .string, default: .string("postgres"), "user name"),
                MonitorParameterSpec("password-file", .path, "file holding the password"),
                MonitorParameterSpec("table", .string, default: .string("psqlwatch"), "monitor table"),
                databaseLevel,
            ],
            .mysqlw: [
                MonitorParameterSpec("host", .host, default: .string("127.0.0.1"), "database server"),
                MonitorParameterSpec("port", .port, default: .int(3306), "database port"),
                MonitorParameterSpec("database", .string, required: true, "database name"),
                MonitorParameterSpec("user", .string, required: true, "user name"),
                MonitorParameterSpec("password-file", .path, "file holding the password"),
                MonitorParameterSpec("table", .string, default: .string("mysqlwatch"), "monitor table"),
                databaseLevel,
            ],
            .oraclew: [
                MonitorParameterSpec("connect-string", .string, required: true, "Oracle connect string"),
                MonitorParameterSpec("user", .string, default: .string("sys"), "user name"),
                MonitorParameterSpec("password-file", .path, "file holding the password"),
                MonitorParameterSpec("table", .string, default: .string("orawatch"), "monitor table"),
                MonitorParameterSpec(
                    "level", .intChoice([0, 1, 2, 3]), default: .int(2),
                    "0 = instance status only, 1 = select, 2 = update and select, 3 = create/drop"),
                MonitorParameterSpec(
                    "method", .choice(["listener-and-instance", "listener", "instance"]),
                    default: .string("listener-and-instance"), "what to check"),
            ],
            .upsw: [
                MonitorParameterSpec("ups", .string, required: true, "the UPS's name in upsd (as in ups.conf)"),
                MonitorParameterSpec("host", .host, default: .string("127.0.0.1"), "the upsd server"),
                MonitorParameterSpec("port", .port, default: .int(3493), "upsd's port"),
                MonitorParameterSpec(
                    "feeds", .choice(["servers", "cluster"]), default: .string("servers"),
                    "servers = it feeds the servers this monitor runs on (they shut down as with clpdown); cluster = it feeds shared storage (the cluster shuts down as with clpstdn)"
                ),
                MonitorParameterSpec(
                    "on-battery-grace", .duration, default: .duration(.seconds(60)),
                    "on battery this long means shut down; line power back sooner means nothing"),
                MonitorParameterSpec(
                    "power-off-command", .string, default: .string("shutdown.return"),
                    "NUT instant command sent once the cluster service stopped for a power failure (power off after the UPS's delay, on again when line power returns); none = send nothing"
                ),
                MonitorParameterSpec("user", .string, "upsd user allowed to run the instant command (upsd.users)"),
                MonitorParameterSpec("password-file", .path, "file holding that user's password"),
            ],
            .httpw: [
                MonitorParameterSpec("url", .url, required: true, "URL to fetch"),
                MonitorParameterSpec(
                    "expected-status", .int(100...599), default: .int(200), "HTTP status meaning normal"),
                MonitorParameterSpec("body-match", .string, "text the response body must contain"),
            ],
            .nfsw: [
                MonitorParameterSpec("host", .host, default: .string("127.0.0.1"), "NFS server"),
                MonitorParameterSpec(
                    "share", .string,
                    "exported directory that must be there: in mountd's export list (3) or the pseudo file system (4)"),
                MonitorParameterSpec(
                    "version", .intChoice([3, 4]), default: .int(4),
                    "3 = nfsd and mountd v3 through the portmapper; 4 = nfsd v4 on `port`"),
                MonitorParameterSpec("port", .port, default: .int(2049), "nfsd's TCP port (version 4)"),
            ],
            .sambaw: [
                MonitorParameterSpec("host", .host, default: .string("127.0.0.1"), "SMB server"),
                MonitorParameterSpec("port", .port, default: .int(139), "SMB port"),
                MonitorParameterSpec("share", .string, required: true, "share name"),
                MonitorParameterSpec("user", .string, "user name; none = guest (anonymous) session"),
                MonitorParameterSpec("password-file", .path, "file holding the user's password"),
            ],
            .vmw: [],
            .ddnsw: [],
            .vipw: [],
        ]
    }()
}

public struct MonitorConfig: Sendable, Equatable {
    public enum Timing: String, Sendable, Equatable, CaseIterable {
        /// From cluster start to cluster stop.
        case always
        /// Only while the target resource is active on this server.
        case active
    }

    public var name: String
    public var type: MonitorType
    public var comment: String
    /// The monitored resource; required for `timing: active` and for pidw/fipw/vipw/ddnsw/vmw.
    public var target: String?
    public var interval: Duration
    public var timeout: Duration
    /// Extra checks after a failed one before the monitor reports an error.
    public var retries: Int
    /// Wait after the monitor starts before the first check.
    public var firstWait: Duration
    public var timing: Timing
    /// Servers that run this monitor; nil = all servers.
    public var servers: [String]?
    /// Scheduling priority of the probe process (-20…19).
    public var nice: Int
    public var recovery: MonitorRecovery
    /// A check that timed out is retried like any failed check (`false`: error at once).
    public var retryOnTimeout: Bool
    /// An error found by a timeout starts the recovery (`false`: alert only).
    public var recoverOnTimeout: Bool
    /// Type-specific parameters, checked against `type.parameterSpecs`; the loader fills in
    /// the defaults, so every key with a default is present.
    public var parameters: [String: ConfigValue]

    public init(
        name: String,
        type: MonitorType,
        comment: String = "",
        target: String? = nil,
        interval: Duration = Defaults.monitorInterval,
        timeout: Duration = Defaults.monitorTimeout,
        retries: Int? = nil,
        firstWait: Duration = Defaults.monitorFirstWait,
        timing: Timing? = nil,
        servers: [String]? = nil,
        nice: Int = Defaults.monitorNice,
        recovery: MonitorRecovery,
        retryOnTimeout: Bool = true,
        recoverOnTimeout: Bool = true,
        parameters: [String: ConfigValue] = [:]
    ) {
        self.name = name
        self.type = type
        self.comment = comment
        self.target = target
        self.interval = interval
        self.timeout = timeout
        self.retries = retries ?? type.defaultRetries
        self.firstWait = firstWait
        self.timing = timing ?? type.defaultTiming
        self.servers = servers
        self.nice = nice
        self.recovery = recovery
        self.retryOnTimeout = retryOnTimeout
        self.recoverOnTimeout = recoverOnTimeout
        self.parameters = parameters
    }

    /// True when the given server runs this monitor.
    public func runs(on server: String) -> Bool { servers?.contains(server) ?? true }

    /// The parameter's value, or its schema default when the dictionary lacks it.
    public func parameter(_ key: String) -> ConfigValue? {
        parameters[key] ?? type.parameterSpec(key)?.defaultValue
    }
    public func string(_ key: String) -> String? { parameter(key)?.stringValue }
    public func int(_ key: String) -> Int? { parameter(key)?.intValue }
    public func bool(_ key: String) -> Bool? { parameter(key)?.boolValue }
    public func duration(_ key: String) -> Duration? { parameter(key)?.durationValue }
    public func list(_ key: String) -> [String]? { parameter(key)?.listValue }
}

/// What a monitor does when it finds an error (after its retries), in this order: run the
/// recovery script `scriptCount` times, reactivate the target up to `reactivations` times, fail
/// it over up to `failovers` times, then the final action.
public struct MonitorRecovery: Sendable, Equatable {
    public enum Target: Sendable, Equatable, Hashable {
        case resource(String)
        case group(String)
        /// Every group active on the server that found the error.
        case allGroups
        /// The server itself: only the final action applies.
        case localServer

        /// The resource, when the target is one.
        public var resourceName: String? {
            if case .resource(let name) = self { return name }
            return nil
        }

        /// As the config file writes it.
        public var configText: String {
            switch self {
            case .resource(let name), .group(let name): return name
            case .allGroups: return "all-groups"
            case .localServer: return "local-server"
            }
        }
    }

    /// Recovery steps before which the recovery script also runs (`CLP_ACTION` tells which).
    public enum ScriptStep: String, Sendable, Equatable, Hashable, CaseIterable {
        case reactivation
        case failover
        case finalAction = "final-action"
    }

    public var target: Target
    /// Recovery script (absolute path); nil = none.
    public var script: String?
    /// How many times the recovery script alone is the recovery (`CLP_ACTION=RECOVERY`) before
    /// reactivation starts.
    public var scriptCount: Int
    public var runScriptBefore: Set<ScriptStep>
    public var scriptTimeout: Duration
    public var reactivations: Int
    public var failovers: Int
    public var finalAction: FinalAction
    /// The counters go back to zero once the monitor has been Normal this long.
    public var resetCountersAfter: Duration

    public init(
        target: Target,
        script: String? = nil,
        scriptCount: Int = Defaults.monitorRecoveryScriptCount,
        runScriptBefore: Set<ScriptStep> = [],
        scriptTimeout: Duration = Defaults.monitorRecoveryScriptTimeout,
        reactivations: Int = Defaults.monitorReactivations,
        failovers: Int = Defaults.monitorFailovers,
        finalAction: FinalAction = Defaults.monitorFinalAction,
        resetCountersAfter: Duration = Defaults.monitorCounterReset
    ) {
        self.target = target
        self.script = script
        self.scriptCount = scriptCount
        self.runScriptBefore = runScriptBefore
        self.scriptTimeout = scriptTimeout
        self.reactivations = reactivations
        self.failovers = failovers
        self.finalAction = finalAction
        self.resetCountersAfter = resetCountersAfter
    }
}
