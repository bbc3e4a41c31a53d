import Foundation
import UnderstudyEngine
import UnderstudyModel

// What travels on the local socket (CLI ↔ daemon) and on the control channel (daemon ↔
// daemon). JSON inside length-prefixed frames; the control channel authenticates every
// frame, the local socket is protected by its file mode (0600).

/// A request from the CLI to the local daemon.
public enum LocalRequest: Codable, Sendable {
    /// Status as `target` (default: this server) knows it.
    case status(target: ServerName?)
    /// An operator command, executed at `target` (default: this server; the Engine
    /// forwards group operations to the master itself).
    case command(ClusterCommand, target: ServerName?)
    /// Names of the servers, and this server's own name.
    case whoami
    /// `understudy config apply FILE [--dry-run] [--prepare-only]`, `clpcfctrl --push`: the
    /// reflection method of a new configuration and, unless `dryRun`, the two-phase apply
    /// from this server (ClusterDaemon+Configuration.swift).
    case configApply(ConfigBundle, dryRun: Bool, prepareOnly: Bool)
    /// `understudy config commit VERSION`: phase 2 of an apply stored with `--prepare-only`.
    case configCommit(version: UInt64)
    /// `clpcfctrl --pull`: the configuration this server runs.
    case configPull
    /// The newest `limit` lines of `target`'s alert log (the WebManager's merged alert view).
    case alerts(target: ServerName, limit: Int)
    /// `clplogcmd`: an event of the caller's, module `logcmd` (ClusterDaemon+Alerts.swift).
    case logCommand(LogCommandRequest)
    /// The cluster alert log as this server holds it (every server's entries, exchanged
    /// between the servers): the newest `limit`, of `origin` only if given.
    case clusterAlerts(limit: Int, origin: ServerName?)
    /// `clplogcc`: one step of a log collection at `target` (LogCollection.swift).
    case logCollection(LogCollectionStep, target: ServerName)
}

/// `clplogcmd -m MESSAGE [-i ID] [-l LEVEL] [--alert] [--syslog] [--mail] [--trap]`.
public struct LogCommandRequest: Codable, Sendable, Equatable {
    public var message: String
    public var id: Int
    public var level: LogLevel
    /// Nil (no destination flag): the alert log and the routes, like any event. Otherwise
    /// exactly these outputs: `alert` (the alert log) and destination types (`syslog`,
    /// `mail`, `snmp`), whatever the routes say.
    public var outputs: [String]?

    public init(message: String, id: Int = 1, level: LogLevel = .info, outputs: [String]? = nil) {
        self.message = message
        self.id = id
        self.level = level
        self.outputs = outputs
    }
}

public enum LocalResponse: Codable, Sendable {
    case status(ClusterStatusSnapshot)
    case result(CommandResult)
    case identity(server: ServerName, cluster: String, servers: [ServerName])
    case configApply(ConfigApplyReport)
    case configuration(ConfigBundle, version: UInt64, hash: String)
    case alerts([String])
    /// The newest entries, oldest first, and the servers not connected now (their entries are
    /// those written until this server last heard them).
    case clusterAlerts([ReplicatedAlert], notConnected: [ServerName])
    case logCollection(LogCollectionAnswer)
}

/// A request between daemons.
public enum PeerRequest: Codable, Sendable {
    case command(ClusterCommand, origin: ServerName, forwarded: Bool)
    case status
    /// Phase 1 of an apply: check the configuration against what runs here and store it as
    /// pending.
    case configPrepare(PendingConfiguration)
    /// Phase 2: switch to the pending configuration of this version and hash.
    case configCommit(version: UInt64, hash: String)
    /// The apply was abandoned before any server switched: drop the pending version.
    case configAbort(version: UInt64)
    /// The configuration the peer runs (a server that sees a newer version fetches it).
    case configFetch
    /// The newest lines of the peer's alert log.
    case alerts(limit: Int)
    /// What the asking server holds of the cluster alert log: the peer answers with what it
    /// holds beyond that (`alertEntries`).
    case alertSync(AlertSyncSummary)
    /// New entries of the sender's, sent as they are written.
    case alertPush([ReplicatedAlert])
    /// A step of a log collection (`clplogcc`) on the peer.
    case logCollection(LogCollectionStep)
    /// The state of the answering server's heartbeats from number `since` of its run
    /// `of` (HeartbeatStateSync.swift).
    case heartbeatState(since: UInt64, of: ServerInstance)
}

public enum PeerResponse: Codable, Sendable {
    case result(CommandResult)
    case status(ClusterStatusSnapshot)
    case configuration(ConfigBundle, version: UInt64, hash: String)
    case alerts([String])
    /// Cluster alert-log entries the asker lacks; `more`: ask again for the rest.
    case alertEntries([ReplicatedAlert], more: Bool)
    case logCollection(LogCollectionAnswer)
    /// Its last heartbeat with the state delta (`HeartbeatWire` bytes, base64).
    case heartbeatState(String)
}
