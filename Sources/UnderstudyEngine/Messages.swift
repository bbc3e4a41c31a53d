import UnderstudyModel

// What servers tell each other. The Node serializes these (JSON) inside authenticated
// datagrams and frames; the Engine only sees decoded, verified values.

public typealias ServerName = String
public typealias GroupName = String
public typealias ResourceName = String

/// A point in time on the local monotonic clock, as time since an arbitrary origin.
/// The Engine never reads a clock: every time is an argument.
public typealias EngineTime = Duration

/// Who is master and since which change of view. Orders and directories from an older
/// epoch are ignored (invariant I3).
public struct Epoch: Sendable, Codable, Hashable, Comparable, CustomStringConvertible {
    public var term: UInt64
    public var master: ServerName

    public init(term: UInt64, master: ServerName) {
        self.term = term
        self.master = master
    }

    public static func < (lhs: Epoch, rhs: Epoch) -> Bool {
        lhs.term != rhs.term ? lhs.term < rhs.term : lhs.master < rhs.master
    }

    public var description: String { "\(term)@\(master)" }
}

/// One run of a server's cluster service: the daemon's boot id and the count of service
/// starts within it (`clpcl -r` starts a new run in the same process).
public struct ServerInstance: Sendable, Codable, Hashable, CustomStringConvertible {
    public var boot: UInt64
    public var run: UInt64

    public init(boot: UInt64, run: UInt64) {
        self.boot = boot
        self.run = run
    }

    public var description: String { "\(boot).\(run)" }
}

/// One server's account of one of its groups, carried in every heartbeat.
public struct GroupReport: Sendable, Codable, Equatable {
    public var status: ActivationStatus
    public var resources: [ResourceName: ActivationStatus]
    /// Directory generation of the assignment this state belongs to.
    public var generation: UInt64
    /// Set when activation failed for good (after retries) in `generation`; the master
    /// decides between failover and the final action.
    public var activationFailedResource: ResourceName?
    /// Resources were stopped one by one by an operator (`clprsc -t`).
    public var operatorStopped: Bool
    /// A monitor's recovery asks the master to fail the group over or stop it.
    public var monitorRequest: MonitorRequest?

    public init(
        status: ActivationStatus, resources: [ResourceName: ActivationStatus] = [:],
        generation: UInt64 = 0, activationFailedResource: ResourceName? = nil, operatorStopped: Bool = false,
        monitorRequest: MonitorRequest? = nil
    ) {
        self.status = status
        self.resources = resources
        self.generation = generation
        self.activationFailedResource = activationFailedResource
        self.operatorStopped = operatorStopped
        self.monitorRequest = monitorRequest
    }
}

/// The master's placement decision for one group. Servers reconcile toward it: a server
/// starts a group only when it is the owner, and stops it when it is not.
public struct DirectoryEntry: Sendable, Codable, Equatable {
    /// The group should be running somewhere.
    public var wanted: Bool
    /// Where it runs or is starting. Nil while it is being moved or failed over (the old
    /// owner stops first) or when it is not wanted.
    public var owner: ServerName?
    /// Boot id of the owner when it was assigned: an owner that restarted since then lost
    /// the group (and must not start it from an old assignment).
    public var ownerInstance: ServerInstance?
    /// Bumped on every new assignment; lets servers tell a new order from one they already
    /// tried.
    public var generation: UInt64
    /// Directory version at which the owner last changed away from a server. The master
    /// reassigns only after every server has applied it.
    public var releasedAt: UInt64
    /// `CLP_EVENT` for the next start.
    public var startEvent: ScriptEvent
    /// Preferred destination of a move or start requested by an operator.
    public var preferredTarget: ServerName?
    /// `CLP_FACTOR` and `CLP_EVENT` for the stop of the current owner.
    public var stopFactor: StopFactor
    public var stopEvent: ScriptEvent
    /// Failovers caused by activation failures since the last operator start.
    public var failoverCount: Int
    /// Servers where activation failed in this episode; not chosen again.
    public var failedOn: [ServerName]
    /// Where the final action after activation failure must run, and which one.
    public var finalActionOn: ServerName?
    public var finalAction: FinalAction?
    /// The server (instance) a monitor failed the group over from: no automatic failback to
    /// it while it runs that instance.
    public var monitorFailedOn: [ServerName: ServerInstance]?
    /// Directory version of the newest operator command (start, stop, move) on the group:
    /// a command waiting for its own operation learns from it that a later one superseded it.
    public var operation: UInt64?
    /// The group is wanted but no server of its policy can take it now (all down, leaving,
    /// failed or suppressed); nil otherwise.
    public var unplaceable: Bool?

    public init(
        wanted: Bool = false, owner: ServerName? = nil, generation: UInt64 = 0,
        releasedAt: UInt64 = 0, startEvent: ScriptEvent = .start, preferredTarget: ServerName? = nil,
        stopFactor: StopFactor = .groupStop, stopEvent: ScriptEvent = .start, failoverCount: Int = 0,
        failedOn: [ServerName] = [], finalActionOn: ServerName? = nil, finalAction: FinalAction? = nil
    ) {
        self.wanted = wanted
        self.owner = owner
        self.ownerInstance = nil
        self.generation = generation
        self.releasedAt = releasedAt
        self.startEvent = startEvent
        self.preferredTarget = preferredTarget
        self.stopFactor = stopFactor
        self.stopEvent = stopEvent
        self.failoverCount = failoverCount
        self.failedOn = failedOn
        self.finalActionOn = finalActionOn
        self.finalAction = finalAction
    }
}

extension DirectoryEntry {
    /// Releases the group from its owner for a failover it asked for (activation failure,
    /// monitor error): the owner stops it (`GROUPFAILOVER`, `CLP_EVENT=FAILOVER`), then it
    /// starts elsewhere with `FAILOVER`, on `target` first when given.
    mutating func beginFailover(to target: ServerName?, releasedAt version: UInt64) {
        owner = nil
        ownerInstance = nil
        if let target { preferredTarget = target }
        startEvent = .failover
        stopFactor = .groupFailover
        stopEvent = .failover
        releasedAt = version
    }

    /// An operator's start or move is the operator's word: the failures of the episode before
    /// (servers where activation or a monitor failed, a final action taken) no longer count.
    mutating func forgetFailures() {
        failedOn = []
        monitorFailedOn = nil
        finalActionOn = nil
        finalAction = nil
    }

    /// Releases the group from its owner for a planned move (operator move or failback): the
    /// owner stops it (`GROUPMOVE`), then it starts on `target` with `startEvent`.
    mutating func beginMove(to target: ServerName, startEvent: ScriptEvent, releasedAt version: UInt64) {
        owner = nil
        ownerInstance = nil
        preferredTarget = target
        self.startEvent = startEvent
        stopFactor = .groupMove
        stopEvent = .start
        releasedAt = version
    }
}

/// Which directory: its master's epoch and its version. Ordered epoch first: a directory of
/// a later epoch was made by a master that took over from the newest directory it could see
/// (see `Directory.base`).
public struct DirectoryStamp: Sendable, Codable, Hashable, Comparable, CustomStringConvertible {
    public var epoch: Epoch
    public var version: UInt64

    public init(epoch: Epoch, version: UInt64) {
        self.epoch = epoch
        self.version = version
    }

    public static func < (lhs: DirectoryStamp, rhs: DirectoryStamp) -> Bool {
        lhs.epoch != rhs.epoch ? lhs.epoch < rhs.epoch : lhs.version < rhs.version
    }

    public var description: String { "\(epoch) v\(version)" }
}

/// The server (and its service run) that founded a cluster run's first directory.
public struct Founding: Sendable, Codable, Hashable {
    public var server: ServerName
    public var instance: ServerInstance

    public init(server: ServerName, instance: ServerInstance) {
        self.server = server
        self.instance = instance
    }
}

/// The master's placement table, replicated to every server in heartbeats.
public struct Directory: Sendable, Codable, Equatable {
    public var epoch: Epoch
    /// Grows with every change within the cluster's lifetime (across masters).
    public var version: UInt64
    /// The newest directory this one includes from before its epoch: what its master took
    /// over from, or superseded. A server gives up its own directory for a new master's only
    /// when this covers it (its stamp is not newer); otherwise it keeps its own and offers
    /// it, and the master takes it over first. So a decision some server knows is never
    /// dropped by a master change it took part in. Nil: a new cluster's first directory.
    public var base: DirectoryStamp?
    /// Who founded this cluster run's first directory (every later directory descends from
    /// it): epochs and versions compare only between directories of one founding (after a
    /// restart of the whole cluster they may start lower).
    public var founding: Founding?
    /// Startup synchronization is over and auto-start groups have been placed.
    public var startupDone: Bool
    public var suspended: Bool
    /// `clpcl -t -a` / `clpstdn` in progress: no failovers.
    public var clusterStopping: Bool
    public var entries: [GroupName: DirectoryEntry]
    /// Servers (with their boot id) on which an operator started a group after an abnormal
    /// stop: their automatic-start suspension is lifted.
    public var suppressionLifted: [ServerName: ServerInstance] = [:]

    public init(
        epoch: Epoch, version: UInt64 = 0, startupDone: Bool = false, suspended: Bool = false,
        clusterStopping: Bool = false, entries: [GroupName: DirectoryEntry] = [:]
    ) {
        self.epoch = epoch
        self.version = version
        self.startupDone = startupDone
        self.suspended = suspended
        self.clusterStopping = clusterStopping
        self.entries = entries
    }

    public var stamp: DirectoryStamp { DirectoryStamp(epoch: epoch, version: version) }

    /// Whether this directory includes everything `stamp` says: it is that directory or a
    /// later version of its epoch, or its master took over from it or from a later one.
    public func covers(_ stamp: DirectoryStamp) -> Bool {
        if epoch == stamp.epoch { return version >= stamp.version }
        return base.map { $0 >= stamp } ?? false
    }
}

/// `clptoratio`: the cluster's heartbeat and monitor timeouts multiplied for a while (a
/// maintenance window, a known slow period). Set on one server and carried in heartbeats;
/// every server takes the newest (by `setAt`). The Node turns the expiry (wall-clock time,
/// which the Engine never reads) into a reset when it has passed.
public struct TimeoutRatio: Sendable, Codable, Equatable {
    /// 1…10000; 1 is the configured timeouts.
    public var ratio: Int
    /// When the setting ends (Unix time in milliseconds); nil: until reset.
    public var expiresAt: Int64?
    /// When it was set (Unix time in milliseconds): the newest setting wins everywhere.
    public var setAt: Int64

    public static let allowedRatios = 1...10_000

    public init(ratio: Int, expiresAt: Int64? = nil, setAt: Int64) {
        self.ratio = ratio
        self.expiresAt = expiresAt
        self.setAt = setAt
    }

    /// Whether this setting replaces `current` (none counts as the oldest). Equal times: the
    /// smaller ratio wins, so two servers that set at the same millisecond still agree.
    public func supersedes(_ current: TimeoutRatio?) -> Bool {
        guard let current else { return true }
        if setAt != current.setAt { return setAt > current.setAt }
        if ratio != current.ratio { return ratio < current.ratio }
        return (expiresAt ?? .max) < (current.expiresAt ?? .max)
    }

    /// The reset a server makes when this setting has expired: the same on every server.
    public var expiry: TimeoutRatio? {
        expiresAt.map { TimeoutRatio(ratio: 1, expiresAt: nil, setAt: $0) }
    }
}

/// What a server says about itself every heartbeat interval, on every path.
public struct Heartbeat: Sendable, Codable, Equatable {
    public var sender: ServerName
    public var bootID: UInt64
    /// Service run within the boot (see `ServerInstance`).
    public var run: UInt64
    /// Sender's clock at sending; echoed back in `hears` so the sender learns which of its
    /// heartbeats its peers received (its lease).
    public var sentAt: EngineTime
    /// The identity of the sender's configuration: a hash of its canonical model
    /// (`CanonicalForm`) and of its scripts.
    public var configHash: String
    /// The version of the sender's configuration (`understudy config apply` counts them up;
    /// nil or 0: a file never distributed). A server that sees a higher one fetches it.
    public var configVersion: UInt64?
    /// The sender joined the running cluster with another configuration than its master's:
    /// it takes no part in placement (never master, never given a group) until it runs the
    /// master's. nil = no.
    public var configOutsider: Bool?
    /// The sender's position in its own `servers:` list (0 = first). The master is the
    /// joined server of the view with the lowest priority, ties broken by name: servers
    /// whose files list the servers in different orders still agree on one master. nil from
    /// a sender that does not say (its position in this server's list is used).
    public var priority: Int?
    /// The cluster service runs on the sender. False once it has left (graceful stop).
    public var serviceUp: Bool
    /// The sender is stopping its cluster service: no new groups for it.
    public var leaving: Bool
    /// The sender stopped abnormally last time: no automatic group start involving it.
    public var autoStartSuppressed: Bool
    /// The sender's startup synchronization wait is over.
    public var syncDone: Bool
    /// For each peer the sender hears: that peer's boot id and the `sentAt` of its newest
    /// heartbeat received.
    public var hears: [ServerName: HeardHeartbeat]
    /// Servers the sender considers connected (both directions), itself included.
    public var view: [ServerName]
    /// The sender wakes from a stall and asks its peers to answer at once (see
    /// StallsAndLease.swift).
    public var awaitingVouch: Bool
    /// The epoch the sender follows.
    public var epoch: Epoch?
    /// Newest directory version the sender has applied.
    public var appliedVersion: UInt64
    public var groups: [GroupName: GroupReport]
    /// Monitor statuses a peer cannot derive (anything but Normal while running and Offline
    /// while not); nil or missing = none.
    public var monitors: [String: MonitorStatus]?
    /// The master's directory; from another server, its own directory offered to a new
    /// master that does not cover it yet (see `Directory.base`).
    public var directory: Directory?
    /// The sender shuts the whole cluster down for a power failure of a UPS feeding shared
    /// storage: the master stops failovers (cluster stopping). nil = no.
    public var clusterStopRequested: Bool?
    /// Servers the sender left running when it last stopped cleanly and has not rejoined
    /// since: no cluster is founded without them (Survivors.swift). nil = none.
    public var waitsFor: [ServerName]?
    /// The sender's `clptoratio` setting (nil: none was ever set).
    public var timeoutRatio: TimeoutRatio?
    /// How long the sender lets a peer be silent before judging it down, now (the heartbeat
    /// timeout times its ratio). A peer's lease counts on no more than this from the echo in
    /// the same heartbeat (Lease.swift); nil: the receiver's own configured timeout.
    public var judgeTimeout: Duration?

    public var instance: ServerInstance { ServerInstance(boot: bootID, run: run) }

    /// Whether this heartbeat says what `other` says, apart from when each was sent and the
    /// send times each echoes: a keepalive that the Engine need not act on at once.
    public func saysTheSame(as other: Heartbeat) -> Bool {
        sender == other.sender && bootID == other.bootID && run == other.run && configHash == other.configHash
            && configVersion == other.configVersion && configOutsider == other.configOutsider
            && priority == other.priority && serviceUp == other.serviceUp && leaving == other.leaving
            && autoStartSuppressed == other.autoStartSuppressed && syncDone == other.syncDone
            && awaitingVouch == other.awaitingVouch && epoch == other.epoch && appliedVersion == other.appliedVersion
            && clusterStopRequested == other.clusterStopRequested && view == other.view && waitsFor == other.waitsFor
            && timeoutRatio == other.timeoutRatio && judgeTimeout == other.judgeTimeout
            && monitors == other.monitors && groups == other.groups && directory == other.directory
            && hears.count == other.hears.count
            && hears.allSatisfy { server, heard in
                guard let echoed = other.hears[server] else { return false }
                return heard.bootID == echoed.bootID && heard.upSince == echoed.upSince
            }
    }

    public init(
        sender: ServerName, bootID: UInt64, run: UInt64 = 0, sentAt: EngineTime, configHash: String, priority: Int? = nil,
        serviceUp: Bool = true, leaving: Bool = false, autoStartSuppressed: Bool = false,
        syncDone: Bool = false, hears: [ServerName: HeardHeartbeat] = [:], view: [ServerName] = [], awaitingVouch: Bool = false,
        epoch: Epoch? = nil, appliedVersion: UInt64 = 0, groups: [GroupName: GroupReport] = [:],
        monitors: [String: MonitorStatus]? = nil, directory: Directory? = nil, clusterStopRequested: Bool? = nil,
        waitsFor: [ServerName]? = nil, configVersion: UInt64? = nil, configOutsider: Bool? = nil,
        timeoutRatio: TimeoutRatio? = nil, judgeTimeout: Duration? = nil
    ) {
        self.timeoutRatio = timeoutRatio
        self.judgeTimeout = judgeTimeout
        self.configVersion = configVersion
        self.configOutsider = configOutsider
        self.clusterStopRequested = clusterStopRequested
        self.waitsFor = waitsFor
        self.monitors = monitors
        self.sender = sender
        self.bootID = bootID
        self.run = run
        self.sentAt = sentAt
        self.configHash = configHash
        self.priority = priority
        self.serviceUp = serviceUp
        self.leaving = leaving
        self.autoStartSuppressed = autoStartSuppressed
        self.syncDone = syncDone
        self.hears = hears
        self.view = view
        self.awaitingVouch = awaitingVouch
        self.epoch = epoch
        self.appliedVersion = appliedVersion
        self.groups = groups
        self.directory = directory
    }
}

public struct HeardHeartbeat: Sendable, Codable, Equatable {
    public var bootID: UInt64
    public var sentAt: EngineTime
    /// The peer's `sentAt` from which the sender has judged it up without a break. A server
    /// waking from a stall learns from it whether anyone declared it down meanwhile.
    public var upSince: EngineTime?

    public init(bootID: UInt64, sentAt: EngineTime, upSince: EngineTime? = nil) {
        self.bootID = bootID
        self.sentAt = sentAt
        self.upSince = upSince
    }
}
