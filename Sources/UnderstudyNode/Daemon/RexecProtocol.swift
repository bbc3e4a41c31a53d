import UnderstudyEngine
import UnderstudyModel

/// What an outside client (`clprexec --client NAME --key-file FILE -h SERVER`) asks a server
/// for over the control channel (ControlClients.swift). A restricted set, separate from the
/// members' `PeerRequest`: a client can never reach the members' requests. The answer is a
/// `CommandResult`.
public enum RexecRequest: Codable, Sendable, Equatable {
    /// `clprexec --failover GROUP`: the group moves to the next server of its policy (the
    /// server asked forwards it to the master).
    case failover(group: String)
    /// `clprexec --script FILE`: run FILE of the server's rexec folder, at most this long.
    case script(name: String, timeoutSeconds: Int)
    /// `clprexec --notice` / `--clear`: an external error for the server's mrw monitors.
    case notice(monitor: String?, category: String, keyword: String?, clear: Bool)

    /// The word of `cluster.rexec-clients[].allow` that permits it.
    public var permission: RexecClient.Request {
        switch self {
        case .failover: return .failover
        case .script: return .script
        case .notice: return .notice
        }
    }

    /// The longest script run a client may ask for (the CLI's `-w`).
    public static let maximumScriptSeconds = 86_400
}

/// The decision about an outside client's request, before anything runs (pure: tested alone).
public enum RexecAuthorization: Equatable, Sendable {
    case allowed(RexecRequest)
    case denied(CommandResult)

    /// Whether `client` (by name, as authenticated) may make the request in `payload`, under
    /// the configured clients `clients`, on server `server`.
    public static func decide(client: String, payload: [UInt8], clients: [RexecClient], server: String) -> RexecAuthorization {
        guard let entry = clients.first(where: { $0.name == client }) else {
            return .denied(CommandResult(.failed, "Client \(client) is not in cluster.rexec-clients of \(server); request refused."))
        }
        let request: RexecRequest
        do {
            request = try WireJSON.decode(RexecRequest.self, from: payload)
        } catch {
            return .denied(CommandResult(.badUsage, "Unreadable request from client \(client); refused."))
        }
        guard entry.allow.contains(request.permission) else {
            let allowed = entry.allow.sorted().map(\.rawValue).joined(separator: ", ")
            return .denied(
                CommandResult(
                    .failed,
                    "Client \(client) may not send \(request.permission.rawValue) requests to \(server) (allowed: \(allowed)); request refused."
                ))
        }
        if case .script(_, let seconds) = request, !(1...RexecRequest.maximumScriptSeconds).contains(seconds) {
            return .denied(
                CommandResult(.badUsage, "A script may run 1 to \(RexecRequest.maximumScriptSeconds) seconds, not \(seconds); refused."))
        }
        return .allowed(request)
    }
}
