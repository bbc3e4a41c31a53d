import UnderstudyModel

/// Everything `clpstat` and the API show, as one server knows it.
public struct ClusterStatusSnapshot: Sendable, Codable, Equatable {
    public struct HeartbeatLine: Sendable, Codable, Equatable {
        public var name: String
        public var type: String
        public var comment: String
        public var status: HeartbeatStatus
    }

    public struct ServerLine: Sendable, Codable, Equatable {
        public var name: String
        public var comment: String
        public var status: ServerStatus
        public var isLocal: Bool
        public var isMaster: Bool
        public var heartbeats: [HeartbeatLine]
        public var networkPartition: [HeartbeatLine]
        /// Filled in by the daemon for each peer: the LAN heartbeat path (its name) and the
        /// peer's address on it that this server's control channel uses to reach the peer now
        /// (see `ControlPathTable` in the daemon). Nil for the local server, and from the Engine.
        public var controlPath: String? = nil
        public var controlAddress: String? = nil
    }

    public struct ResourceLine: Sendable, Codable, Equatable {
        public var name: String
        public var type: String
        public var comment: String
        public var status: ActivationStatus
        /// Status on every server that reported it.
        public var perServer: [ServerName: ActivationStatus]
    }

    public struct GroupLine: Sendable, Codable, Equatable {
        public var name: String
        public var comment: String
        public var status: ActivationStatus
        /// The server the group runs on (or is starting, stopping, failed on); nil = None.
        public var current: ServerName?
        public var perServer: [ServerName: ActivationStatus]
        public var resources: [ResourceLine]
        public var failoverCount: Int
        /// What the directory this server follows says: whether the group should run, where
        /// it goes (its owner, or the destination of a start, move or failover in progress),
        /// and the version of the newest operator command on it (see `OperationTicket`).
        public var wanted: Bool?
        public var assignedTo: ServerName?
        public var operation: UInt64?
        /// Wanted, but no server of its policy can take it now.
        public var unplaceable: Bool?
    }

    public struct MonitorLine: Sendable, Codable, Equatable {
        public var name: String
        public var type: String
        public var comment: String
        /// Status on the local server.
        public var status: MonitorStatus
        /// Status on every server (Unused where it does not run).
        public var perServer: [ServerName: MonitorStatus]
        /// Newest error or warning text on the local server.
        public var detail: String
        /// Recovery counters on the local server, with the configured maxima.
        public var counters: MonitorCounters
        public var maxReactivations: Int
        public var maxFailovers: Int
        public var maxRecoveryScripts: Int
        public var suspended: Bool
        public var dummyFailure: Bool
        /// Filled in by the daemon: how long the newest check on the local server took, in
        /// milliseconds (nil: none finished here since the daemon started). `clpperfc -m`.
        public var lastCheckMillis: Int64? = nil
    }

    public var cluster: String
    public var comment: String
    /// The configuration file the daemon runs.
    public var configPath: String?
    public var localServer: ServerName
    public var master: ServerName?
    /// `running`, `stopping`, `stopped`.
    public var service: String
    public var suspended: Bool
    public var isolated: Bool
    public var syncDone: Bool
    public var autoStartSuppressed: Bool
    public var epoch: Epoch?
    /// Version of the directory this server follows (nil: it follows none), and what it
    /// includes from earlier epochs (see `Directory.base`).
    public var directoryVersion: UInt64?
    public var directoryBase: DirectoryStamp?
    public var directoryFounding: Founding?
    /// Servers heard with a configuration other than this server's (nil when none): the
    /// files differ; one file must be distributed to every server.
    public var configurationMismatch: [ConfigurationMismatch]?
    /// This server's configuration: its version, hash, and whether it joined as an outsider
    /// (nil from older daemons).
    public var configuration: ConfigurationLine?

    public struct ConfigurationMismatch: Sendable, Codable, Equatable {
        public var server: ServerName
        /// The first 12 characters of each configuration's hash.
        public var theirs: String
        public var ours: String
        /// The versions (nil: 0, never distributed).
        public var theirVersion: UInt64?
        public var ourVersion: UInt64?
        /// The server takes no part in placement: it joined with another configuration than
        /// its master's, or runs another than the master's (seen from the master).
        public var excluded: Bool?
    }

    public struct ConfigurationLine: Sendable, Codable, Equatable {
        public var version: UInt64
        /// The first 12 characters of the hash.
        public var hash: String
        /// This server joined with another configuration than its master's and takes no part
        /// in placement until it runs the cluster's.
        public var outsider: Bool
        /// The master runs another configuration than this server (nil: no master, or the same).
        public var masterDiffers: Bool?

        public init(version: UInt64, hash: String, outsider: Bool, masterDiffers: Bool? = nil) {
            self.version = version
            self.hash = hash
            self.outsider = outsider
            self.masterDiffers = masterDiffers
        }
    }
    public var servers: [ServerLine]
    public var groups: [GroupLine]
    public var monitors: [MonitorLine]?
    /// Filled in by the daemon: how late its timed work runs.
    public var runtime: RuntimeLine?
    /// Filled in by the daemon: what each heartbeat path and the control channel received
    /// and dropped (wrong key, garbage, replays …), by reason.
    public var transport: [TransportLine]?
    /// `clptoratio`: the setting in force here and the ratio each server up says it uses
    /// (nil from older daemons).
    public var timeoutRatio: TimeoutRatioLine? = nil
    /// Forced stop (`fencing:`; nil without): the agents, this server's forced stops (as
    /// master) and, filled in by the daemon, its checks of the agents (StatusFencing.swift).
    public var fencing: FencingLine? = nil
    /// Servers present whose heartbeats fail authentication (another cluster key; nil: none).
    public var unauthenticatedServers: [ServerName]? = nil
    /// Servers present whose heartbeats arrive but whose state cannot be fetched over the
    /// control channel (a one-way cut, the control port blocked; nm 13; nil: none).
    public var withoutStateServers: [ServerName]? = nil

    public struct TimeoutRatioLine: Sendable, Codable, Equatable {
        /// The ratio in force on this server (1: none).
        public var ratio: Int
        /// When it ends (Unix milliseconds; nil: until reset) and when it was set.
        public var expiresAt: Int64?
        public var setAt: Int64?
        /// The heartbeat timeout this server judges its peers by now.
        public var heartbeatTimeoutMilliseconds: Int64
        /// Every server up (this one included) and the ratio it says it uses.
        public var perServer: [ServerName: Int]
    }
    /// Filled in by the daemon: its event, failover, fence, stall and heartbeat counters
    /// (`GET /metrics`, see StatusCounters.swift).
    public var counters: CountersLine? = nil

    /// Filled in by the daemon: each alert destination's deliveries, failures and drops.
    public var alertDestinations: [AlertDestinationLine]?

    /// One alert destination as the alert router counts it (since the daemon started).
    public struct AlertDestinationLine: Sendable, Codable, Equatable {
        public var name: String
        public var type: String
        /// Alerts it took.
        public var delivered: UInt64
        /// Alerts given up after every attempt.
        public var failed: UInt64
        /// Attempts that failed and were tried again.
        public var retried: UInt64
        /// Alerts dropped because its queue was full (the oldest go first).
        public var dropped: UInt64
        /// Alerts waiting now.
        public var queued: Int
        /// Since its last alert was given up, until one goes through.
        public var failing: Bool
        /// Why its last attempt failed (nil once one succeeds).
        public var lastError: String?

        public init(
            name: String, type: String, delivered: UInt64 = 0, failed: UInt64 = 0, retried: UInt64 = 0, dropped: UInt64 = 0,
            queued: Int = 0, failing: Bool = false, lastError: String? = nil
        ) {
            self.name = name
            self.type = type
            self.delivered = delivered
            self.failed = failed
            self.retried = retried
            self.dropped = dropped
            self.queued = queued
            self.failing = failing
            self.lastError = lastError
        }
    }

    /// Lateness of timed work against its schedule over the last minute, in microseconds.
    public struct RuntimeLine: Sendable, Codable, Equatable {
        public var monitorChecks: UInt64
        public var monitorLatenessP50: Int64
        public var monitorLatenessP99: Int64
        public var monitorLatenessMax: Int64
        public var heartbeats: UInt64
        public var heartbeatLatenessP50: Int64
        public var heartbeatLatenessP99: Int64
        public var heartbeatLatenessMax: Int64
        /// How late the daemon woke to prepare each heartbeat (it prepares them ahead; only
        /// a wake later than that lead delays the heartbeat itself).
        public var heartbeatPreparationLatenessP99: Int64?
        public var heartbeatPreparationLatenessMax: Int64?
        /// Heartbeats of the last minute that left more than 10 ms late, for comparing with
        /// what else was late on the machine at the same moment (the benchmark does).
        public var lateHeartbeats: [LateEvent]?

        /// One late event: its deadline on the machine's `CLOCK_MONOTONIC` and how late it was.
        public struct LateEvent: Sendable, Codable, Equatable {
            public var deadlineMonotonicNanos: Int64
            public var latenessMicros: Int64

            public init(deadlineMonotonicNanos: Int64, latenessMicros: Int64) {
                self.deadlineMonotonicNanos = deadlineMonotonicNanos
                self.latenessMicros = latenessMicros
            }
        }

        public init(
            monitorChecks: UInt64, monitorLatenessP50: Int64, monitorLatenessP99: Int64, monitorLatenessMax: Int64,
            heartbeats: UInt64, heartbeatLatenessP50: Int64, heartbeatLatenessP99: Int64, heartbeatLatenessMax: Int64,
            heartbeatPreparationLatenessP99: Int64? = nil, heartbeatPreparationLatenessMax: Int64? = nil
        ) {
            self.heartbeatPreparationLatenessP99 = heartbeatPreparationLatenessP99
            self.heartbeatPreparationLatenessMax = heartbeatPreparationLatenessMax
            self.monitorChecks = monitorChecks
            self.monitorLatenessP50 = monitorLatenessP50
            self.monitorLatenessP99 = monitorLatenessP99
            self.monitorLatenessMax = monitorLatenessMax
            self.heartbeats = heartbeats
            self.heartbeatLatenessP50 = heartbeatLatenessP50
            self.heartbeatLatenessP99 = heartbeatLatenessP99
            self.heartbeatLatenessMax = heartbeatLatenessMax
        }
    }

    public struct TransportLine: Sendable, Codable, Equatable {
        public var name: String
        public var accepted: UInt64
        public var dropped: [String: UInt64]
        /// Heartbeat paths: datagrams written, and sends that failed (nil on the control line).
        public var sent: UInt64?
        public var sendFailures: UInt64?

        public init(name: String, accepted: UInt64, dropped: [String: UInt64], sent: UInt64? = nil, sendFailures: UInt64? = nil) {
            self.name = name
            self.accepted = accepted
            self.dropped = dropped
            self.sent = sent
            self.sendFailures = sendFailures
        }
    }
}

extension ServerEngine {
    /// Whether `server`'s heartbeats were heard on `path` within the timeout (false while the
    /// service is stopped). A pure read, for the daemon's choice of control-channel path.
    public func heartbeatPathIsUp(_ path: String, of server: ServerName, now: EngineTime) -> Bool {
        service != .stopped && membership.pathIsUp(path, server: server, now: now)
    }

    public func snapshot(now: EngineTime) -> ClusterStatusSnapshot {
        let running = service != .stopped
        let master = currentMaster(now: now)
        var servers: [ClusterStatusSnapshot.ServerLine] = []
        for server in config.servers {
            let isMe = server.name == me
            let up = running && membership.isUp(server.name, now: now)
            let status: ServerStatus = up ? (isMe && isolated ? .caution : .online) : (running ? .offline : (isMe ? .offline : .unknown))
            let heartbeats = config.heartbeats.map { heartbeat -> ClusterStatusSnapshot.HeartbeatLine in
                let pathStatus: HeartbeatStatus
                if !running {
                    pathStatus = .unknown
                } else if !Self.heartbeat(heartbeat, covers: server.name) {
                    pathStatus = .unused
                } else if isMe {
                    pathStatus = .normal
                } else {
                    pathStatus = membership.pathIsUp(heartbeat.name, server: server.name, now: now) ? .normal : .error
                }
                return .init(
                    name: heartbeat.name, type: heartbeat.typeName,
                    comment: heartbeat.comment.isEmpty ? Self.defaultComment(heartbeat) : heartbeat.comment, status: pathStatus)
            }
            let partition = config.networkPartition.map { np -> ClusterStatusSnapshot.HeartbeatLine in
                let npStatus: HeartbeatStatus
                switch np.kind {
                case _ where !running: npStatus = .unknown
                case .majority: npStatus = hasQuorum(now: now) ? .normal : .error
                case .ping: npStatus = lastPingReachable.map { $0 ? .normal : .error } ?? .unknown
                case .http: npStatus = .unknown
                }
                return .init(
                    name: np.name, type: np.typeName, comment: np.comment.isEmpty ? Self.defaultComment(np) : np.comment,
                    status: isMe ? npStatus : .unknown)
            }
            servers.append(
                .init(
                    name: server.name, comment: server.comment, status: status, isLocal: isMe,
                    isMaster: master == server.name, heartbeats: heartbeats, networkPartition: partition))
        }
        var groups: [ClusterStatusSnapshot.GroupLine] = []
        for group in config.groups {
            var perServer: [ServerName: ActivationStatus] = [:]
            var resourcePerServer: [ResourceName: [ServerName: ActivationStatus]] = [:]
            for server in serverNames {
                let report: GroupReport?
                if server == me {
                    report = runner.locals[group.name]?.report
                } else if running && membership.isUp(server, now: now) {
                    report = membership.peers[server]?.report?.groups[group.name]
                } else {
                    report = nil
                }
                guard let report else { continue }
                perServer[server] = report.status
                for (resource, status) in report.resources { resourcePerServer[resource, default: [:]][server] = status }
            }
            // The current server: the one holding the group, preferring one in transition or
            // online over a stale failure report.
            let holders = serverNames.filter { perServer[$0]?.holdsResources ?? false }
            let current = holders.first { perServer[$0] != .offlineFailure } ?? holders.first
            let status = current.flatMap { perServer[$0] } ?? .offline
            let resources = group.resources.map { resource -> ClusterStatusSnapshot.ResourceLine in
                let statuses = resourcePerServer[resource.name] ?? [:]
                let resourceStatus = current.flatMap { statuses[$0] } ?? .offline
                return .init(
                    name: resource.name, type: resource.type.rawValue, comment: resource.comment, status: resourceStatus,
                    perServer: statuses)
            }
            let entry = directory?.entries[group.name]
            groups.append(
                .init(
                    name: group.name, comment: group.comment, status: status, current: current, perServer: perServer,
                    resources: resources, failoverCount: entry?.failoverCount ?? 0, wanted: directory.map { _ in entry?.wanted ?? false },
                    assignedTo: entry.flatMap { $0.wanted ? $0.owner ?? $0.preferredTarget : nil }, operation: entry?.operation,
                    unplaceable: entry?.unplaceable))
        }
        let serviceName: String
        switch service {
        case .running: serviceName = "running"
        case .leaving: serviceName = "stopping"
        case .stopped: serviceName = "stopped"
        }
        return ClusterStatusSnapshot(
            cluster: config.cluster.name, comment: config.cluster.comment,
            configPath: config.sourcePath.isEmpty ? nil : config.sourcePath, localServer: me, master: master,
            service: serviceName, suspended: directory?.suspended ?? false, isolated: isolated, syncDone: syncDone,
            autoStartSuppressed: autoStartSuppressed, epoch: directory?.epoch, directoryVersion: directory?.version,
            directoryBase: directory?.base, directoryFounding: directory?.founding,
            configurationMismatch: configurationMismatches(now: now), configuration: configurationLine(now: now), servers: servers,
            groups: groups, monitors: monitorLines(now: now), runtime: nil, transport: nil,
            timeoutRatio: timeoutRatioLine(now: now), fencing: fencingLine(now: now),
            unauthenticatedServers: unauthenticatedLine(now: now), withoutStateServers: withoutStateLine(now: now))
    }

    func timeoutRatioLine(now: EngineTime) -> ClusterStatusSnapshot.TimeoutRatioLine {
        var perServer: [ServerName: Int] = [me: timeoutRatio]
        for server in serverNames where server != me {
            guard let report = membership.report(of: server, now: now) else { continue }
            perServer[server] = report.timeoutRatio?.ratio ?? 1
        }
        let timeout = judgeTimeout.components
        return .init(
            ratio: timeoutRatio, expiresAt: persistent.timeoutRatio?.expiresAt, setAt: persistent.timeoutRatio?.setAt,
            heartbeatTimeoutMilliseconds: timeout.seconds * 1000 + timeout.attoseconds / 1_000_000_000_000_000, perServer: perServer)
    }

    /// Peers that run a configuration whose hash differs from this server's (nil: none).
    func configurationMismatches(now: EngineTime) -> [ClusterStatusSnapshot.ConfigurationMismatch]? {
        guard service != .stopped else { return nil }
        let master = currentMaster(now: now)
        let found = serverNames.compactMap { server -> ClusterStatusSnapshot.ConfigurationMismatch? in
            guard server != me, let report = membership.report(of: server, now: now), report.configHash != configHash else { return nil }
            // Seen from the master (or by the server's own word) it takes no part in placement.
            let excluded = report.configOutsider == true || master == me
            return .init(
                server: server, theirs: String(report.configHash.prefix(12)), ours: String(configHash.prefix(12)),
                theirVersion: report.configVersion, ourVersion: configVersion == 0 ? nil : configVersion, excluded: excluded ? true : nil)
        }
        return found.isEmpty ? nil : found
    }

    /// This server's configuration line of the status.
    func configurationLine(now: EngineTime) -> ClusterStatusSnapshot.ConfigurationLine {
        let master = service == .stopped ? nil : currentMaster(now: now)
        let masterDiffers = master.flatMap { $0 == me ? nil : configuration(of: $0).map { $0.hash != configHash } }
        return .init(
            version: configVersion, hash: String(configHash.prefix(12)), outsider: configOutsider,
            masterDiffers: masterDiffers == true ? true : nil)
    }

    func monitorLines(now: EngineTime) -> [ClusterStatusSnapshot.MonitorLine] {
        config.monitors.map { monitor in
            var perServer: [ServerName: MonitorStatus] = [:]
            for server in serverNames { perServer[server] = monitorStatus(monitor, on: server, now: now) }
            let local = monitoring.monitors[monitor.name]
            return .init(
                name: monitor.name, type: monitor.type.rawValue, comment: monitor.comment,
                status: perServer[me] ?? .unused, perServer: perServer, detail: local?.detail ?? "",
                counters: persistent.monitorCounters[monitor.name] ?? MonitorCounters(),
                maxReactivations: monitor.recovery.reactivations, maxFailovers: monitor.recovery.failovers,
                maxRecoveryScripts: monitor.recovery.scriptCount, suspended: local?.suspended ?? false,
                dummyFailure: local?.dummyFailure ?? false)
        }
    }

    static func heartbeat(_ heartbeat: HeartbeatConfig, covers server: ServerName) -> Bool {
        switch heartbeat.kind {
        case .lan(let addresses): return addresses[server] != nil
        case .serial(let devices, _): return devices[server] != nil
        case .disk, .witness: return true
        }
    }

    static func defaultComment(_ heartbeat: HeartbeatConfig) -> String {
        switch heartbeat.kind {
        case .lan: return "LAN Heartbeat"
        case .disk: return "DISK Heartbeat"
        case .serial: return "COM Heartbeat"
        case .witness: return "Witness Heartbeat"
        }
    }

    static func defaultComment(_ np: NetworkPartitionConfig) -> String {
        switch np.kind {
        case .ping: return "ping resolution"
        case .majority: return "majority resolution"
        case .http: return "http resolution"
        }
    }
}
