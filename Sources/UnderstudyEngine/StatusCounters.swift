import UnderstudyModel

extension ClusterStatusSnapshot {
    /// What the daemon counted since it started, for `GET /metrics` (docs/metrics.md). Every
    /// count is of something that happened on this server; a restart of the daemon starts
    /// them from zero (Prometheus's `rate()` and `increase()` handle such resets).
    public struct CountersLine: Sendable, Codable, Equatable {
        /// Alert-log events written by this server, by catalogue entry.
        public var events: [EventCount]
        /// Recovery steps taken by this server, by kind (`restart`, `failover`, `final_action`).
        public var recoveryActions: [String: UInt64]
        /// Groups this server started as a failover target (`CLP_EVENT=FAILOVER`).
        public var failovers: [GroupName: UInt64]
        /// Of those, the seconds from the first start order to the group being Online here, of
        /// the newest failover of each group that reached Online.
        public var lastFailoverSeconds: [GroupName: Double]
        /// Times each group was fenced on this server (killed and unplumbed without scripts).
        public var fences: [GroupName: UInt64]
        /// Stalls of this process (gaps between events longer than two tick periods).
        public var stalls: UInt64
        /// Per peer and heartbeat path: seconds since its newest heartbeat arrived on the path
        /// (at the time of the snapshot), and the echo delay of that heartbeat (see `PathLine`).
        public var paths: [PathLine]
        /// Failures of each alert destination (syslog, mail, trap …) since the start; empty
        /// until the alert router reports them.
        public var alertDestinationFailures: [String: UInt64]

        public init(
            events: [EventCount] = [], recoveryActions: [String: UInt64] = [:], failovers: [GroupName: UInt64] = [:],
            lastFailoverSeconds: [GroupName: Double] = [:], fences: [GroupName: UInt64] = [:], stalls: UInt64 = 0,
            paths: [PathLine] = [], alertDestinationFailures: [String: UInt64] = [:]
        ) {
            self.events = events
            self.recoveryActions = recoveryActions
            self.failovers = failovers
            self.lastFailoverSeconds = lastFailoverSeconds
            self.fences = fences
            self.stalls = stalls
            self.paths = paths
            self.alertDestinationFailures = alertDestinationFailures
        }
    }

    public struct EventCount: Sendable, Codable, Equatable {
        public var module: String
        public var id: Int
        public var level: String
        public var count: UInt64

        public init(module: String, id: Int, level: String, count: UInt64) {
            self.module = module
            self.id = id
            self.level = level
            self.count = count
        }
    }

    /// One peer on one heartbeat path, as this server hears it.
    public struct PathLine: Sendable, Codable, Equatable {
        public var server: ServerName
        public var path: String
        public var heartbeats: UInt64
        /// Seconds since the newest heartbeat from `server` arrived on `path`.
        public var lastHeardSeconds: Double
        /// The newest heartbeat's arrival minus the send time of this server's own heartbeat
        /// that it echoed: the round trip plus the time the peer held the echo until its next
        /// heartbeat (at most one interval). Nil until a heartbeat echoed this boot.
        public var echoDelaySeconds: Double?

        public init(server: ServerName, path: String, heartbeats: UInt64, lastHeardSeconds: Double, echoDelaySeconds: Double?) {
            self.server = server
            self.path = path
            self.heartbeats = heartbeats
            self.lastHeardSeconds = lastHeardSeconds
            self.echoDelaySeconds = echoDelaySeconds
        }
    }
}
