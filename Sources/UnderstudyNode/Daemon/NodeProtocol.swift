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
}

public enum LocalResponse: Codable, Sendable {
    case status(ClusterStatusSnapshot)
    case result(CommandResult)
    case identity(server: ServerName, cluster: String, servers: [ServerName])
}

/// A request between daemons.
public enum PeerRequest: Codable, Sendable {
    case command(ClusterCommand, origin: ServerName, forwarded: Bool)
    case status
}

public enum PeerResponse: Codable, Sendable {
    case result(CommandResult)
    case status(ClusterStatusSnapshot)
}
