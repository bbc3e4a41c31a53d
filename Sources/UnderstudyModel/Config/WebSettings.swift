// The management plane's settings (`cluster.web`): where the HTTP server listens, TLS, the
// users file, sessions and client-address allow-lists per role. The web server runs only
// when `cluster.web` is present; `cluster.ports.http` (29003) is its port and
// `cluster.ports.api` (29009, optional) a second port for EXPRESSCLUSTER API clients.

/// What a user may do: `operator` operates and views, `viewer` only views (EXPRESSCLUSTER's
/// operate and view-only users, reference §3.7 `ip@` / `ipro@`).
public enum WebRole: String, Sendable, Equatable, Hashable, CaseIterable, Codable, Comparable {
    case viewer
    case `operator`

    public static func < (a: WebRole, b: WebRole) -> Bool { a == .viewer && b == .operator }
}

public struct WebSettings: Sendable, Equatable {
    public enum Listen: Sendable, Equatable {
        /// Every address of the host (0.0.0.0).
        case all
        /// Each of this server's LAN heartbeat addresses (several servers on one host).
        case heartbeatAddresses
        /// These addresses.
        case addresses([String])
    }

    public var listen: Listen
    /// HTTPS with `certificate` and `key`; plain HTTP only when this is false.
    public var tls: Bool
    /// PEM files, resolved against the configuration's folder.
    public var certificate: String?
    public var key: String?
    /// The users and their password hashes (`understudy user …`).
    public var usersFile: String
    /// A UI session ends after this long without a request.
    public var sessionTimeout: Duration
    /// Request bodies above this many bytes are refused (413).
    public var maxBodySize: Int
    /// Client addresses (CIDR or single addresses) allowed per role; a role without a list
    /// admits every address. An operator from an address only the viewer list admits is a
    /// viewer for that request.
    public var clientAddresses: [WebRole: [String]]
    /// `metrics.unauthenticated-from`: addresses (or CIDRs) that may read `GET /metrics`
    /// without credentials (a Prometheus server); from anywhere else it needs a login.
    public var metricsUnauthenticatedFrom: [String] = []

    public init(
        listen: Listen = .all, tls: Bool = true, certificate: String? = nil, key: String? = nil, usersFile: String,
        sessionTimeout: Duration = Defaults.webSessionTimeout, maxBodySize: Int = Defaults.webMaxBodySize,
        clientAddresses: [WebRole: [String]] = [:]
    ) {
        self.listen = listen
        self.tls = tls
        self.certificate = certificate
        self.key = key
        self.usersFile = usersFile
        self.sessionTimeout = sessionTimeout
        self.maxBodySize = maxBodySize
        self.clientAddresses = clientAddresses
    }
}
