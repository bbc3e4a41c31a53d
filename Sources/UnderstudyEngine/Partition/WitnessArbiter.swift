import UnderstudyModel

/// The decision rule of the witness server (`httpnp`) for one cluster: which server survives
/// a network partition. Pure: the witness (`understudy witness`) and the simulator feed it
/// requests and the witness's own uptime; it keeps no clock and does no I/O.
///
/// The rule:
/// - Every authenticated request (a resolution request or a witness heartbeat) records when
///   its server last contacted the witness.
/// - Until the witness has been up for longer than twice the longest heartbeat timeout any
///   request of the cluster carried (that timeout to learn who is alive, plus a grant's
///   lifetime for any grant it forgot in a restart to lapse), it answers `notYet` to every
///   resolution request; the server treats that as an unreachable witness, i.e. loses.
/// - A request whose view holds every server is no partition: granted (and whatever grant the
///   server held is dropped: its partition is over).
/// - A request with an incomplete view is granted only if it is compatible with every live
///   grant of another server (each sees the other); otherwise denied. A server that holds no
///   live grant, when no other server holds one either, is granted unless a server missing
///   from its view contacted the witness within the heartbeat timeout and the first server
///   (in `servers:` order) among the requester's view and those contacts is on the other
///   side: then the other side is the one to win, and this request is denied.
/// - A granted request records (or renews) the server's grant: its view, its time and its
///   lifetime (the request's heartbeat timeout). A grant lapses when its server has not asked
///   again within its lifetime; a denied or not-yet request drops the server's grant.
///
/// So live grants are always pairwise compatible: two servers that cannot see each other
/// never both hold one, and a server believes a grant only until its next request (every
/// heartbeat interval while a peer is missing), which comes before the grant lapses (the
/// daemon keeps interval + request timeout below the heartbeat timeout).
public struct WitnessArbiter: Sendable, Equatable {
    public enum Verdict: UInt8, Sendable, Equatable, CustomStringConvertible {
        case granted = 0
        case denied = 1
        /// The witness started too recently to know that no grant it forgot is still live.
        case notYet = 2

        public var description: String {
            switch self {
            case .granted: return "granted"
            case .denied: return "denied"
            case .notYet: return "not yet"
            }
        }
    }

    public struct Request: Sendable, Equatable {
        public var server: ServerName
        /// The cluster's servers in `servers:` order, as the requester's configuration has them.
        public var servers: [ServerName]
        /// The servers the requester sees (itself included).
        public var view: Set<ServerName>
        /// The requester's heartbeat timeout: how long contacts count and grants last.
        public var heartbeatTimeout: Duration

        public init(server: ServerName, servers: [ServerName], view: Set<ServerName>, heartbeatTimeout: Duration) {
            self.server = server
            self.servers = servers
            self.view = view.union([server])
            self.heartbeatTimeout = heartbeatTimeout
        }
    }

    public struct Grant: Sendable, Equatable {
        public var view: Set<ServerName>
        public var renewedAt: Duration
        public var lifetime: Duration
    }

    /// The cluster's servers in `servers:` order (the tie-break order), as the newest request
    /// said. Servers whose configurations disagree on the order may both be denied, never
    /// both granted: grants exclude each other whatever the order.
    public private(set) var servers: [ServerName] = []
    /// When each server last contacted the witness (witness uptime).
    public private(set) var lastContact: [ServerName: Duration] = [:]
    public private(set) var grants: [ServerName: Grant] = [:]
    /// The longest heartbeat timeout a request carried since the witness started.
    public private(set) var longestTimeout: Duration = .zero

    public init() {}

    /// The longest heartbeat timeout the witness accepts in a request (a larger one would let
    /// one request keep the witness in its start-up quiet period for long).
    public static let maximumHeartbeatTimeout: Duration = .seconds(3600)

    /// How long after its start the witness answers `notYet`.
    public var quietPeriod: Duration { longestTimeout * 2 }

    /// A heartbeat (or any authenticated contact) from `server`.
    public mutating func noteContact(_ server: ServerName, heartbeatTimeout: Duration, at now: Duration) {
        longestTimeout = max(longestTimeout, min(heartbeatTimeout, Self.maximumHeartbeatTimeout))
        lastContact[server] = now
    }

    /// Decides a resolution request received at `now` (witness uptime).
    public mutating func decide(_ request: Request, at now: Duration) -> Verdict {
        let me = request.server
        guard request.servers.contains(me), Set(request.servers).count == request.servers.count else { return .denied }
        servers = request.servers
        noteContact(me, heartbeatTimeout: request.heartbeatTimeout, at: now)
        grants = grants.filter { now - $0.value.renewedAt <= $0.value.lifetime }
        guard now > quietPeriod else {
            grants[me] = nil
            return .notYet
        }
        let view = request.view.intersection(servers)
        if servers.allSatisfy(view.contains) {
            grants[me] = nil
            return .granted
        }
        let others = grants.filter { $0.key != me }
        let conflicting = others.contains { !view.contains($0.key) || !$0.value.view.contains(me) }
        if conflicting {
            grants[me] = nil
            return .denied
        }
        if grants[me] == nil, others.isEmpty {
            let timeout = min(request.heartbeatTimeout, Self.maximumHeartbeatTimeout)
            let elsewhere = servers.filter { server in
                !view.contains(server) && (lastContact[server].map { now - $0 <= timeout } ?? false)
            }
            if !elsewhere.isEmpty {
                let alive = view.union(elsewhere)
                guard let first = servers.first(where: alive.contains), view.contains(first) else {
                    return .denied
                }
            }
        }
        grants[me] = Grant(view: view, renewedAt: now, lifetime: min(request.heartbeatTimeout, Self.maximumHeartbeatTimeout))
        return .granted
    }

    /// The servers holding a live grant at `now`.
    public func holders(at now: Duration) -> Set<ServerName> {
        Set(grants.filter { now - $0.value.renewedAt <= $0.value.lifetime }.keys)
    }
}
