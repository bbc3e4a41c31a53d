import NIOCore

// Outside clients of the control channel: hosts that are not cluster servers (a vSphere host,
// a monitoring server) and send `clprexec` requests. Each client has a key of its own; it
// names itself in every frame (the sender name, as members do) and its frames verify under
// its key only, never the cluster key, so the cluster key never leaves the servers and one
// client is revoked by removing it (or replacing its key) without touching the others.
//
// The wire format is the members' (ControlChannel.swift): the sender name chooses the key.
// A connection whose first verified frame names a client speaks for that client alone, and its
// responses are sealed under the client's key. Its requests go to `clientHandler`, never to the
// members' handler, which decides what the client may ask for; a refusal there is counted as
// `clientDenied`. What the server cannot verify is refused before any handler runs:
//
// | frame | counted as | reported |
// |---|---|---|
// | names a client, does not verify under its key (wrong key, replayed from another connection) | `clientBadMAC` | yes |
// | names neither a client nor a member (when the members are known), does not verify | `badSender` | yes |
// | names a member, does not verify | `badMAC` (as before) | no |
// | verified client, request not allowed | `clientDenied` | yes |

/// Who may talk to a control server besides the members (whose frames verify under the
/// cluster key), and what handles the outside clients' requests.
public struct ControlAccess: Sendable {
    /// Each outside client's key, by the name it sends.
    public var clients: [String: ClusterKey]
    /// The members' names. When known, a frame that does not verify and names no member and no
    /// client is counted as `badSender` (an unknown outside client) rather than `badMAC`.
    public var members: Set<String>?
    /// Answers a verified client's request. Without one, every client request is denied.
    public var clientHandler: (@Sendable (ControlRequest) async -> ControlClientAnswer)?
    /// Told of every refused outside request (wrong client key, unknown sender, denied
    /// request), from the connection's task: it must return quickly.
    public var onRefusal: (@Sendable (ControlRefusal) -> Void)?

    public init(
        clients: [String: ClusterKey] = [:], members: Set<String>? = nil,
        clientHandler: (@Sendable (ControlRequest) async -> ControlClientAnswer)? = nil,
        onRefusal: (@Sendable (ControlRefusal) -> Void)? = nil
    ) {
        self.clients = clients
        self.members = members
        self.clientHandler = clientHandler
        self.onRefusal = onRefusal
    }
}

/// The answer to an outside client's request: the response payload, and whether it is a
/// refusal of a request the client is not allowed to make (counted as `clientDenied`).
public struct ControlClientAnswer: Sendable, Equatable {
    public var payload: [UInt8]
    public var denied: Bool

    public init(payload: [UInt8], denied: Bool) {
        self.payload = payload
        self.denied = denied
    }
}

/// A refused outside request, for the alert log.
public struct ControlRefusal: Sendable, Equatable {
    /// `clientBadMAC`, `badSender` or `clientDenied`.
    public var reason: ControlDropReason
    /// The sender name the frame carried (valid name characters only), or "" when it had none.
    public var sender: String
    public var remoteAddress: SocketAddress?

    public init(reason: ControlDropReason, sender: String, remoteAddress: SocketAddress?) {
        self.reason = reason
        self.sender = sender
        self.remoteAddress = remoteAddress
    }

    /// The remote IP address without the port, or "unknown".
    public var sourceAddress: String { remoteAddress?.ipAddress ?? "unknown" }
}

extension ControlServerState {
    static func answerClient(_ request: ControlRequest, access: ControlAccess) async -> ControlClientAnswer {
        guard let handler = access.clientHandler else { return ControlClientAnswer(payload: [], denied: true) }
        return await handler(request)
    }
}

extension ControlSession {
    /// The sender name of a request frame body, when it has a valid one ("" otherwise); only
    /// for reporting a refused frame, whose name is unauthenticated.
    static func senderName(in body: [UInt8]) -> String {
        guard body.count > 10 else { return "" }
        let length = Int(body[9])
        guard length >= 1, 10 + length <= body.count else { return "" }
        let name = body[10..<(10 + length)]
        return NodeName.isValid(utf8: name) ? String(decoding: name, as: UTF8.self) : ""
    }
}
