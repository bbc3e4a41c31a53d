// The `alerts:` section: where alerts go beside the alert log (which always gets every event),
// which events go where, and how hard a destination is tried. Read by ConfigLoader+Alerts.swift,
// checked against the event catalogue there; the daemon's AlertRouter carries it out.

/// Every alert destination and the routing table.
public struct AlertSettings: Sendable, Equatable {
    public var destinations: [AlertDestinationConfig]
    /// First match wins. Nil: the default table, every event to every syslog destination.
    public var routes: [AlertRoute]?
    public var retry: AlertRetry
    /// Alerts waiting per destination; when full the oldest is dropped (and counted).
    public var queue: Int
    /// Records per alert-log file (alert.log and each server's part of the cluster alert log)
    /// before it rotates to `.1`; the reference keeps 10,000.
    public var logRecords: Int

    public init(
        destinations: [AlertDestinationConfig] = [], routes: [AlertRoute]? = nil, retry: AlertRetry = AlertRetry(),
        queue: Int = Defaults.alertQueue, logRecords: Int = Defaults.alertLogRecords
    ) {
        self.destinations = destinations
        self.routes = routes
        self.retry = retry
        self.queue = queue
        self.logRecords = logRecords
    }

    /// What runs without an `alerts:` section: alert log and the local syslog (reference §7.2:
    /// alert log and syslog for nearly every event).
    public static let implicit = AlertSettings(
        destinations: [AlertDestinationConfig(name: "syslog", kind: .syslog(SyslogDestinationSettings()))])

    /// The routes in force: the written ones, or every event to every syslog destination.
    public var effectiveRoutes: [AlertRoute] {
        if let routes { return routes }
        let syslog = destinations.filter { $0.kind.typeName == "syslog" }.map(\.name)
        return syslog.isEmpty ? [] : [AlertRoute(match: AlertMatch(), to: syslog)]
    }

    /// The destinations an event goes to (first matching route), in route order.
    public func destinations(module: String, id: Int, level: LogLevel) -> [String] {
        effectiveRoutes.first { $0.match.matches(module: module, id: id, level: level) }?.to ?? []
    }

    public func destination(named name: String) -> AlertDestinationConfig? { destinations.first { $0.name == name } }
}

/// One destination: a name routes refer to, and its type's settings.
public struct AlertDestinationConfig: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        case syslog(SyslogDestinationSettings)
        case mail(MailDestinationSettings)
        case snmp(SNMPDestinationSettings)
        case webhook(WebhookDestinationSettings)
        case command(CommandDestinationSettings)

        /// The word of `type:` (and of the destination registry in the daemon).
        public var typeName: String {
            switch self {
            case .syslog: "syslog"
            case .mail: "mail"
            case .snmp: "snmp"
            case .webhook: "webhook"
            case .command: "command"
            }
        }

        public static let typeNames = ["syslog", "mail", "snmp", "webhook", "command"]
    }

    public var name: String
    public var kind: Kind

    public init(name: String, kind: Kind) {
        self.name = name
        self.kind = kind
    }
}

/// RFC 5424 to the local socket (or native journal fields when journald listens), and
/// optionally to a remote server over UDP or TCP (RFC 6587 octet counting).
public struct SyslogDestinationSettings: Sendable, Equatable {
    public enum Transport: String, Sendable, Equatable, CaseIterable {
        case udp
        case tcp
    }

    public struct Remote: Sendable, Equatable {
        public var address: String
        public var port: Int
        public var transport: Transport

        public init(address: String, port: Int = 514, transport: Transport = .udp) {
            self.address = address
            self.port = port
            self.transport = transport
        }
    }

    /// APP-NAME (and SYSLOG_IDENTIFIER): `understudy`, or `clusterpro` for existing filters.
    public var tag: String
    /// Facility name (`daemon`, `local0` … `local7`, `user`, …).
    public var facility: String
    /// The local syslog socket (datagram); nil sends nothing locally.
    public var socket: String?
    /// journald's native socket, used instead of `socket` when it exists; nil: never.
    public var journalSocket: String?
    public var remote: Remote?

    public init(
        tag: String = "understudy", facility: String = "daemon", socket: String? = "/dev/log",
        journalSocket: String? = "/run/systemd/journal/socket", remote: Remote? = nil
    ) {
        self.tag = tag
        self.facility = facility
        self.socket = socket
        self.journalSocket = journalSocket
        self.remote = remote
    }

    /// Facility codes of RFC 5424 §6.2.1 by name.
    public static let facilities: [String: Int] = [
        "kern": 0, "user": 1, "mail": 2, "daemon": 3, "auth": 4, "syslog": 5, "lpr": 6, "news": 7, "uucp": 8, "cron": 9,
        "authpriv": 10, "ftp": 11, "local0": 16, "local1": 17, "local2": 18, "local3": 19, "local4": 20, "local5": 21,
        "local6": 22, "local7": 23,
    ]
}

/// SMTP with optional STARTTLS and authentication (the mail sender reads these).
public struct MailDestinationSettings: Sendable, Equatable {
    /// How the connection to the relay is protected.
    public enum Security: String, Sendable, Equatable, CaseIterable {
        /// No TLS (a relay on the same host or a trusted network); no password is sent.
        case none
        /// A plain connection upgraded with STARTTLS; a relay that does not offer it is an error.
        case starttls
        /// TLS from the first byte (port 465).
        case tls
    }

    public var address: String
    public var port: Int
    public var security: Security
    /// Whether the relay's certificate is checked (against `caFile`, or the system's CAs).
    public var verifyCertificate: Bool
    public var caFile: String?
    public var user: String?
    /// The password's file (its first line); required with `user`.
    public var passwordFile: String?
    public var timeout: Duration
    public var from: String
    public var to: [String]

    /// `starttls: true` is the older spelling of `security: starttls`.
    public var starttls: Bool { security == .starttls }

    public init(
        address: String, port: Int = 25, security: Security = .none, verifyCertificate: Bool = true, caFile: String? = nil,
        user: String? = nil, passwordFile: String? = nil, timeout: Duration = .seconds(30), from: String, to: [String]
    ) {
        self.address = address
        self.port = port
        self.security = security
        self.verifyCertificate = verifyCertificate
        self.caFile = caFile
        self.user = user
        self.passwordFile = passwordFile
        self.timeout = timeout
        self.from = from
        self.to = to
    }
}

/// SNMP traps to managers (the trap sender reads these).
public struct SNMPDestinationSettings: Sendable, Equatable {
    public enum Version: String, Sendable, Equatable, CaseIterable {
        case v1 = "1"
        case v2c = "2c"
    }

    public struct Manager: Sendable, Equatable {
        public var host: String
        public var port: Int

        public init(host: String, port: Int = 162) {
            self.host = host
            self.port = port
        }
    }

    public var managers: [Manager]
    public var community: String
    public var version: Version

    public init(managers: [Manager], community: String = "public", version: Version = .v2c) {
        self.managers = managers
        self.community = community
        self.version = version
    }
}

/// A JSON POST, signed with HMAC-SHA256 of the body under the secret file's key.
public struct WebhookDestinationSettings: Sendable, Equatable {
    public var url: String
    /// Nil: no signature header.
    public var secretFile: String?
    /// PEM certificates that may sign an HTTPS receiver's certificate; nil: the system's.
    public var caFile: String?
    public var timeout: Duration

    public init(url: String, secretFile: String? = nil, caFile: String? = nil, timeout: Duration = .seconds(5)) {
        self.url = url
        self.secretFile = secretFile
        self.caFile = caFile
        self.timeout = timeout
    }
}

/// An external program run per alert with the event in `CLP_EVENT_*` and Pacemaker's
/// `CRM_alert_*` variables.
public struct CommandDestinationSettings: Sendable, Equatable {
    public var path: String
    public var arguments: [String]
    public var timeout: Duration
    /// `CRM_alert_recipient` (Pacemaker's configured recipient); empty when not given.
    public var recipient: String

    public init(path: String, arguments: [String] = [], timeout: Duration = .seconds(30), recipient: String = "") {
        self.path = path
        self.arguments = arguments
        self.timeout = timeout
        self.recipient = recipient
    }
}

/// Which events a route takes; every given key must match, an empty match takes all.
public struct AlertMatch: Sendable, Equatable {
    public var module: String?
    public var id: Int?
    /// The lowest level taken: `warning` takes warnings and errors.
    public var level: LogLevel?

    public init(module: String? = nil, id: Int? = nil, level: LogLevel? = nil) {
        self.module = module
        self.id = id
        self.level = level
    }

    public func matches(module: String, id: Int, level: LogLevel) -> Bool {
        if let wanted = self.module, wanted != module { return false }
        if let wanted = self.id, wanted != id { return false }
        if let wanted = self.level, level.severityRank < wanted.severityRank { return false }
        return true
    }
}

public struct AlertRoute: Sendable, Equatable {
    public var match: AlertMatch
    public var to: [String]

    public init(match: AlertMatch, to: [String]) {
        self.match = match
        self.to = to
    }
}

/// Attempts per alert and the waits between them (doubling from `backoff` up to `maxBackoff`).
public struct AlertRetry: Sendable, Equatable {
    public var attempts: Int
    public var backoff: Duration
    public var maxBackoff: Duration

    public init(attempts: Int = 5, backoff: Duration = .seconds(1), maxBackoff: Duration = .seconds(60)) {
        self.attempts = attempts
        self.backoff = backoff
        self.maxBackoff = maxBackoff
    }

    /// The wait after failed attempt `attempt` (1-based).
    public func delay(after attempt: Int) -> Duration {
        var wait = backoff
        for _ in 1..<max(1, attempt) {
            wait = wait * 2
            if wait >= maxBackoff { return maxBackoff }
        }
        return min(wait, maxBackoff)
    }
}

extension LogLevel {
    /// info 0 < warning 1 < error 2.
    public var severityRank: Int {
        switch self {
        case .info: 0
        case .warning: 1
        case .error: 2
        }
    }

    /// The words of the configuration (`info`, `warning`, `error`).
    public var configWord: String {
        switch self {
        case .info: "info"
        case .warning: "warning"
        case .error: "error"
        }
    }

    /// A level word as people write it: INFO, WARN, WARNING, ERR, ERROR in any case.
    public init?(word: String) {
        switch word.lowercased() {
        case "info", "information": self = .info
        case "warn", "warning": self = .warning
        case "err", "error": self = .error
        default: return nil
        }
    }
}
