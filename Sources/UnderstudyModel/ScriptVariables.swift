// The script-variable contract (ARCHITECTURE.md §7): what start and stop scripts see.

/// `CLP_EVENT`
public enum ScriptEvent: String, Sendable, Codable, Equatable, CaseIterable {
    /// Cluster start, group start, move destination, same-server restart; normal stops.
    case start = "START"
    /// Start on a failover target, or stop on the failover source.
    case failover = "FAILOVER"
    /// Failback starts the group on a server that rejoined.
    case recover = "RECOVER"
}

/// `CLP_FACTOR` (stop scripts): the operation that caused the stop.
public enum StopFactor: String, Sendable, Codable, Equatable, CaseIterable {
    case clusterShutdown = "CLUSTERSHUTDOWN"
    case serverShutdown = "SERVERSHUTDOWN"
    case groupStop = "GROUPSTOP"
    case groupMove = "GROUPMOVE"
    case groupFailover = "GROUPFAILOVER"
    case groupRestart = "GROUPRESTART"
    case resourceRestart = "RESOURCERESTART"
    /// A single-resource stop: the variable is set but empty.
    case none = ""
}

/// `CLP_LASTACTION` (stop scripts): what the OS does after the cluster stops.
public enum LastAction: String, Sendable, Codable, Equatable {
    case halt = "HALT"
    case reboot = "REBOOT"
    case none = "NONE"
}

/// Everything the Engine decides about a script run; the Node adds the host facts
/// (`CLP_VERSION_FULL`, `CLP_PATH`, `CLP_OSNAME`, `CLP_OSVER`, `CLP_PID`).
public struct ScriptContext: Sendable, Codable, Equatable {
    public var event: ScriptEvent
    /// True on the first server of the group's policy (`CLP_SERVER=HOME`).
    public var isHomeServer: Bool
    /// False when a disk-type resource of the group failed (`CLP_DISK=FAILURE`).
    public var diskSucceeded: Bool
    /// 1-based position of this server in the group's policy.
    public var priority: Int
    public var groupName: String
    public var resourceName: String
    /// Stop scripts only.
    public var factor: StopFactor?
    public var lastAction: LastAction?

    public init(
        event: ScriptEvent, isHomeServer: Bool, diskSucceeded: Bool = true, priority: Int,
        groupName: String, resourceName: String, factor: StopFactor? = nil,
        lastAction: LastAction? = nil
    ) {
        self.event = event
        self.isHomeServer = isHomeServer
        self.diskSucceeded = diskSucceeded
        self.priority = priority
        self.groupName = groupName
        self.resourceName = resourceName
        self.factor = factor
        self.lastAction = lastAction
    }

    /// The `CLP_*` variables the Engine owns, exactly as scripts see them.
    public var environment: [String: String] {
        var env: [String: String] = [
            "CLP_EVENT": event.rawValue,
            "CLP_SERVER": isHomeServer ? "HOME" : "OTHER",
            "CLP_DISK": diskSucceeded ? "SUCCESS" : "FAILURE",
            "CLP_PRIORITY": String(priority),
            "CLP_GROUPNAME": groupName,
            "CLP_RESOURCENAME": resourceName,
        ]
        if let factor { env["CLP_FACTOR"] = factor.rawValue }
        if let lastAction { env["CLP_LASTACTION"] = lastAction.rawValue }
        return env
    }
}
