// `alerts:` — destinations, routes, retry and queue (AlertSettings.swift). Shape and meaning
// are checked here together (names, addresses, ports, event ids against the catalogue); files
// that must exist on this machine are checked by the validator (ConfigValidator+Alerts.swift).

import Yams

extension ConfigReader {
    static let alertKeys = ["destinations", "routes", "retry", "queue", "log-records"]
    static let alertDestinationKeys: [String: [String]] = [
        "syslog": ["tag", "facility", "socket", "journal-socket", "remote"],
        "mail": ["smtp", "from", "to"],
        "snmp": ["managers", "community", "version"],
        "webhook": ["url", "secret-file", "ca-file", "timeout"],
        "command": ["path", "arguments", "timeout", "recipient"],
    ]

    mutating func readAlerts(_ field: Field) -> AlertSettings {
        var settings = AlertSettings()
        guard let fields = mapping(field.value, path: field.path, allowed: Self.alertKeys) else { return settings }
        for (node, itemPath) in items(present(fields, "destinations"), of: "alert destinations") {
            if let destination = readAlertDestination(node, path: itemPath) { settings.destinations.append(destination) }
        }
        var seen: [String: String] = [:]
        for (index, destination) in settings.destinations.enumerated() {
            let path = "\(field.path).destinations[\(index)].name"
            if let first = seen[destination.name] {
                report(
                    .error, "duplicate alert destination name \"\(destination.name)\"; first defined at \(first)",
                    at: sourceMap.values[path], path: path)
            } else {
                seen[destination.name] = path
            }
        }
        if let routes = present(fields, "routes") {
            let known = settings.destinations.map(\.name)
            if case .sequence(let sequence) = routes.value, sequence.isEmpty {
                settings.routes = []
            } else {
                let read = items(routes, of: "routes").compactMap { readAlertRoute($0.node, path: $0.path, known: known) }
                settings.routes = read
            }
        }
        if let retry = present(fields, "retry").flatMap({
            mapping($0.value, path: $0.path, allowed: ["attempts", "backoff", "max-backoff"])
        }) {
            if let field = present(retry, "attempts"), let value = int(field) {
                if (1...100).contains(value) {
                    settings.retry.attempts = value
                } else {
                    error("attempts must be from 1 to 100, got \(value)", at: field.value, path: field.path)
                }
            }
            if let field = present(retry, "backoff"), let value = positiveDuration(field) { settings.retry.backoff = value }
            if let field = present(retry, "max-backoff"), let value = positiveDuration(field) { settings.retry.maxBackoff = value }
            if settings.retry.maxBackoff < settings.retry.backoff, let field = present(retry, "max-backoff") {
                error("max-backoff must not be shorter than backoff", at: field.value, path: field.path)
            }
        }
        if let field = present(fields, "queue"), let value = int(field) {
            if (1...100_000).contains(value) {
                settings.queue = value
            } else {
                error("queue must be from 1 to 100000 alerts, got \(value)", at: field.value, path: field.path)
            }
        }
        if let field = present(fields, "log-records"), let value = int(field) {
            if (100...1_000_000).contains(value) {
                settings.logRecords = value
            } else {
                error("log-records must be from 100 to 1000000, got \(value)", at: field.value, path: field.path)
            }
        }
        return settings
    }

    private mutating func positiveDuration(_ field: Field) -> Duration? {
        guard let value = duration(field) else { return nil }
        guard value > .zero else {
            error("must be greater than zero", at: field.value, path: field.path)
            return nil
        }
        return value
    }

    // MARK: Destinations

    private mutating func readAlertDestination(_ node: Node, path: String) -> AlertDestinationConfig? {
        let type = peek(node, "type")
        let typeKeys = type.flatMap { Self.alertDestinationKeys[$0] } ?? []
        var foreign: [String: String] = [:]
        for (other, keys) in Self.alertDestinationKeys where other != type {
            for key in keys where !typeKeys.contains(key) { foreign[key] = "type \(other)" }
        }
        guard
            let fields = mapping(
                node, path: path, allowed: ["name", "type", "comment"] + typeKeys,
                context: type.map { " for an alert destination of type \($0)" } ?? "", foreignKeys: foreign)
        else { return nil }
        let name = string(required(fields, "name"))
        if let name, let field = fields["name"], let problem = NameSyntax.problemWithObjectName(name) {
            error(problem, at: field.value, path: field.path)
        }
        guard let typeField = required(fields, "type", hint: " (one of \(AlertDestinationConfig.Kind.typeNames.listed))"),
            let typeWord = string(typeField)
        else { return nil }
        let kind: AlertDestinationConfig.Kind?
        switch typeWord {
        case "syslog": kind = readSyslog(fields)
        case "mail": kind = readMail(fields)
        case "snmp": kind = readSNMP(fields)
        case "webhook": kind = readWebhook(fields)
        case "command": kind = readCommandDestination(fields)
        default:
            let names = AlertDestinationConfig.Kind.typeNames
            error(
                "unknown alert destination type \"\(Self.clip(typeWord))\"; expected one of \(names.listed)\(Suggestion.didYouMean(typeWord, in: names))",
                at: typeField.value, path: typeField.path)
            kind = nil
        }
        guard let name, let kind else { return nil }
        return AlertDestinationConfig(name: name, kind: kind)
    }

    private mutating func readSyslog(_ fields: FieldSet) -> AlertDestinationConfig.Kind? {
        var settings = SyslogDestinationSettings()
        if let field = present(fields, "tag"), let tag = string(field) {
            // RFC 5424 APP-NAME: 1–48 printable US-ASCII characters, no spaces.
            if tag.isEmpty || tag.count > 48 || !tag.unicodeScalars.allSatisfy({ $0.value > 32 && $0.value < 127 }) {
                error(
                    "a syslog tag is 1 to 48 printable ASCII characters without spaces, got \(describe(field.value))", at: field.value,
                    path: field.path)
            } else {
                settings.tag = tag
            }
        }
        if let field = present(fields, "facility"), let word = string(field) {
            let names = SyslogDestinationSettings.facilities.keys.sorted()
            if SyslogDestinationSettings.facilities[word] == nil {
                error(
                    "unknown syslog facility \"\(Self.clip(word))\"; expected one of \(names.listed)\(Suggestion.didYouMean(word, in: names))",
                    at: field.value, path: field.path)
            } else {
                settings.facility = word
            }
        }
        if let field = fields["socket"] { settings.socket = isNull(field.value) ? nil : path(field) }
        if let field = fields["journal-socket"] { settings.journalSocket = isNull(field.value) ? nil : path(field) }
        if let remote = present(fields, "remote").flatMap({
            mapping($0.value, path: $0.path, allowed: ["address", "port", "protocol"])
        }) {
            let address = hostValue(required(remote, "address"))
            let port = portValue(present(remote, "port")) ?? 514
            let transport = present(remote, "protocol").flatMap { choice($0, SyslogDestinationSettings.Transport.self) } ?? .udp
            if let address { settings.remote = .init(address: address, port: port, transport: transport) }
        }
        return .syslog(settings)
    }

    private mutating func readMail(_ fields: FieldSet) -> AlertDestinationConfig.Kind? {
        guard
            let smtp = required(fields, "smtp").flatMap({
                mapping(
                    $0.value, path: $0.path,
                    allowed: [
                        "address", "port", "security", "starttls", "verify-certificate", "ca-file", "user", "password-file", "timeout",
                    ])
            })
        else { return nil }
        let address = hostValue(required(smtp, "address"))
        var security = MailDestinationSettings.Security.none
        if let field = present(smtp, "security"), let text = string(field) {
            if let chosen = MailDestinationSettings.Security(rawValue: text) {
                security = chosen
            } else {
                error("must be none, starttls or tls (got \(text))", at: field.value, path: field.path)
            }
            if let both = present(smtp, "starttls") { error("give security or starttls, not both", at: both.keyNode, path: both.path) }
        } else if present(smtp, "starttls").flatMap({ bool($0) }) == true {
            security = .starttls
        }
        let port = portValue(present(smtp, "port")) ?? (security == .tls ? 465 : 25)
        let verifyCertificate = present(smtp, "verify-certificate").flatMap { bool($0) } ?? true
        let caFile = present(smtp, "ca-file").flatMap { path($0) }
        let user = present(smtp, "user").flatMap { string($0) }
        let passwordFile = present(smtp, "password-file").flatMap { path($0) }
        if user != nil, passwordFile == nil, let field = smtp["user"] {
            error("user needs password-file (the file holding the SMTP password)", at: field.keyNode, path: smtp.path("password-file"))
        }
        if user == nil, let field = present(smtp, "password-file") {
            error("password-file needs user", at: field.keyNode, path: field.path)
        }
        let timeout = present(smtp, "timeout").flatMap { positiveDuration($0) } ?? .seconds(30)
        let from = mailAddress(required(fields, "from"))
        var recipients: [String] = []
        if let field = required(fields, "to") {
            // One address may be written without a list.
            if case .scalar = field.value, let single = mailAddress(field) {
                recipients = [single]
            } else if let list = stringList(field, element: "a mail address") {
                for (index, text) in list.enumerated() {
                    if let problem = Self.mailAddressProblem(text) {
                        error(problem, at: sequenceItem(field.value, index), path: "\(field.path)[\(index)]")
                    } else {
                        recipients.append(text)
                    }
                }
                if list.isEmpty { error("needs at least one recipient", at: field.value, path: field.path) }
            }
        }
        guard let address, let from, !recipients.isEmpty else { return nil }
        return .mail(
            MailDestinationSettings(
                address: address, port: port, security: security, verifyCertificate: verifyCertificate, caFile: caFile, user: user,
                passwordFile: passwordFile, timeout: timeout, from: from, to: recipients))
    }

    private mutating func readSNMP(_ fields: FieldSet) -> AlertDestinationConfig.Kind? {
        var managers: [SNMPDestinationSettings.Manager] = []
        if let field = required(fields, "managers"), let list = stringList(field, element: "a manager address (host or host:port)") {
            if list.isEmpty { error("needs at least one manager", at: field.value, path: field.path) }
            for (index, text) in list.enumerated() {
                if let manager = Self.parseManager(text) {
                    managers.append(manager)
                } else {
                    error(
                        "\"\(Self.clip(text))\" is not a manager address: write an IP address or host name, optionally with :port (1–65535); IPv6 with a port as [addr]:port",
                        at: sequenceItem(field.value, index), path: "\(field.path)[\(index)]")
                }
            }
        }
        let community = present(fields, "community").flatMap { string($0) } ?? "public"
        if let field = present(fields, "community"), community.isEmpty || community.utf8.count > 255 {
            error("a community is 1 to 255 bytes", at: field.value, path: field.path)
        }
        var version = SNMPDestinationSettings.Version.v2c
        if let field = present(fields, "version") {
            // `version: 1` and `version: 2c` as people write them; v1 and v2c too.
            let text = peekScalar(field.value)?.lowercased()
            switch text {
            case "1", "v1": version = .v1
            case "2c", "v2c": version = .v2c
            default: error("expected 1 or 2c, got \(describe(field.value))", at: field.value, path: field.path)
            }
        }
        guard !managers.isEmpty else { return nil }
        return .snmp(SNMPDestinationSettings(managers: managers, community: community, version: version))
    }

    private mutating func readWebhook(_ fields: FieldSet) -> AlertDestinationConfig.Kind? {
        var url: String?
        if let field = required(fields, "url"), let text = string(field) {
            if let problem = WebhookURL.problem(text) {
                error(problem, at: field.value, path: field.path)
            } else {
                url = text
            }
        }
        let secretFile = present(fields, "secret-file").flatMap { path($0) }
        let caFile = present(fields, "ca-file").flatMap { path($0) }
        if let url, caFile != nil, !url.lowercased().hasPrefix("https:"), let field = fields["ca-file"] {
            error("ca-file applies to https URLs only", at: field.keyNode, path: field.path)
        }
        let timeout = present(fields, "timeout").flatMap { positiveDuration($0) } ?? .seconds(5)
        guard let url else { return nil }
        return .webhook(WebhookDestinationSettings(url: url, secretFile: secretFile, caFile: caFile, timeout: timeout))
    }

    private mutating func readCommandDestination(_ fields: FieldSet) -> AlertDestinationConfig.Kind? {
        let program = path(required(fields, "path", hint: " (the program to run for each alert)"))
        let arguments = stringList(present(fields, "arguments"), element: "an argument") ?? []
        let timeout = present(fields, "timeout").flatMap { positiveDuration($0) } ?? .seconds(30)
        let recipient = present(fields, "recipient").flatMap { string($0) } ?? ""
        guard let program else { return nil }
        return .command(CommandDestinationSettings(path: program, arguments: arguments, timeout: timeout, recipient: recipient))
    }

    // MARK: Routes

    private mutating func readAlertRoute(_ node: Node, path: String, known: [String]) -> AlertRoute? {
        guard let fields = mapping(node, path: path, allowed: ["match", "to", "comment"]) else { return nil }
        var match = AlertMatch()
        var valid = true
        if let matchField = required(fields, "match", hint: " (write match: {} for every event)") {
            if let matchFields = mapping(matchField.value, path: matchField.path, allowed: ["module", "id", "level"]) {
                match.module = present(matchFields, "module").flatMap { string($0) }
                if let field = present(matchFields, "id") { match.id = int(field) }
                if let field = present(matchFields, "level"), let word = string(field) {
                    if let level = LogLevel(word: word) {
                        match.level = level
                    } else {
                        error("expected info, warning or error, got \(describe(field.value))", at: field.value, path: field.path)
                        valid = false
                    }
                }
                valid = checkCatalogued(match, fields: matchFields) && valid
            } else {
                valid = false
            }
        }
        var targets: [String] = []
        if let field = required(fields, "to", hint: " (the destination names; [] sends to none)"),
            let names = stringList(field, element: "a destination name")
        {
            for (index, name) in names.enumerated() {
                if known.contains(name) || sourceMap.droppedNames.contains(name) {
                    targets.append(name)
                } else {
                    let hint = known.isEmpty ? "; alerts.destinations defines none" : "; destinations: \(known.listed)"
                    error(
                        "unknown alert destination \"\(Self.clip(name))\"\(Suggestion.didYouMean(name, in: known).isEmpty ? hint : Suggestion.didYouMean(name, in: known))",
                        at: sequenceItem(field.value, index), path: "\(field.path)[\(index)]")
                    valid = false
                }
            }
        } else {
            valid = false
        }
        return valid ? AlertRoute(match: match, to: targets) : nil
    }

    /// A route's module and id must name catalogued events (any id of `logcmd`, whose ids are
    /// the caller's); an id needs its module.
    private mutating func checkCatalogued(_ match: AlertMatch, fields: FieldSet) -> Bool {
        let modules = EventKind.modules
        if let module = match.module, !modules.contains(module), let field = fields["module"] {
            error(
                "unknown event module \"\(Self.clip(module))\"\(Suggestion.didYouMean(module, in: modules).isEmpty ? "; modules: \(modules.listed)" : Suggestion.didYouMean(module, in: modules))",
                at: field.value, path: field.path)
            return false
        }
        guard let id = match.id, let field = fields["id"] else { return true }
        guard let module = match.module else {
            error("an event id needs its module (ids are numbered per module): add module:", at: field.keyNode, path: field.path)
            return false
        }
        if module == EventKind.logCommand.module { return true }
        if !EventKind.all.contains(where: { $0.module == module && $0.id == id }) {
            let ids = EventKind.all.filter { $0.module == module }.map { String($0.id) }
            error("no event \(module) \(id) in the catalogue; \(module) events: \(ids.listed)", at: field.value, path: field.path)
            return false
        }
        return true
    }

    // MARK: Values

    private mutating func hostValue(_ field: Field?) -> String? {
        guard let field, let text = string(field) else { return nil }
        guard NameSyntax.isHost(text) else {
            error("\"\(Self.clip(text))\" is not a valid host name or IP address", at: field.value, path: field.path)
            return nil
        }
        return text
    }

    private mutating func portValue(_ field: Field?) -> Int? {
        guard let field, let value = int(field) else { return nil }
        guard (1...65_535).contains(value) else {
            error("port must be from 1 to 65535, got \(value)", at: field.value, path: field.path)
            return nil
        }
        return value
    }

    private mutating func mailAddress(_ field: Field?) -> String? {
        guard let field, let text = string(field) else { return nil }
        if let problem = Self.mailAddressProblem(text) {
            error(problem, at: field.value, path: field.path)
            return nil
        }
        return text
    }

    /// A plain `local@domain` address (no display names, no spaces or angle brackets: they
    /// would let a value inject SMTP commands or headers).
    static func mailAddressProblem(_ text: String) -> String? {
        let parts = text.split(separator: "@", omittingEmptySubsequences: false)
        let forbidden = text.unicodeScalars.contains { $0.value <= 32 || $0.value >= 127 || "<>()[],;:\"\\".unicodeScalars.contains($0) }
        guard parts.count == 2, !parts[0].isEmpty,
            NameSyntax.isHost(String(parts[1]).lowercased()) || IPAddressSyntax.isIPAddress(String(parts[1])), !forbidden
        else {
            return "\"\(clip(text))\" is not a mail address (write local@domain, without a display name)"
        }
        return nil
    }

    /// `host`, `host:port`, `[v6]:port` or a bare IPv6 address.
    static func parseManager(_ text: String) -> SNMPDestinationSettings.Manager? {
        if IPAddressSyntax.isIPv6(text) { return .init(host: text) }
        var host = text
        var port = 162
        if text.hasPrefix("["), let close = text.firstIndex(of: "]") {
            host = String(text[text.index(after: text.startIndex)..<close])
            let rest = text[text.index(after: close)...]
            guard IPAddressSyntax.isIPv6(host) else { return nil }
            if !rest.isEmpty {
                guard rest.hasPrefix(":"), let value = Int(rest.dropFirst()) else { return nil }
                port = value
            }
        } else if let colon = text.lastIndex(of: ":") {
            host = String(text[..<colon])
            guard let value = Int(text[text.index(after: colon)...]) else { return nil }
            port = value
        }
        guard (1...65_535).contains(port), IPAddressSyntax.isIPAddress(host) || NameSyntax.isHost(host) else { return nil }
        return .init(host: host, port: port)
    }
}

/// The parts of a webhook URL the sender needs, and what is wrong with one.
public struct WebhookURL: Sendable, Equatable {
    public var secure: Bool
    public var host: String
    public var port: Int
    /// Path and query, at least `/`.
    public var target: String

    public init?(_ text: String) {
        guard WebhookURL.problem(text) == nil else { return nil }
        let lower = text.lowercased()
        secure = lower.hasPrefix("https://")
        let rest = text.dropFirst(secure ? 8 : 7)
        let authorityEnd = rest.firstIndex { $0 == "/" || $0 == "?" } ?? rest.endIndex
        let authority = String(rest[..<authorityEnd])
        let tail = String(rest[authorityEnd...])
        target = tail.isEmpty ? "/" : (tail.hasPrefix("?") ? "/" + tail : tail)
        var hostPart = authority
        var port = secure ? 443 : 80
        if authority.hasPrefix("["), let close = authority.firstIndex(of: "]") {
            hostPart = String(authority[authority.index(after: authority.startIndex)..<close])
            let after = authority[authority.index(after: close)...]
            if after.hasPrefix(":"), let value = Int(after.dropFirst()) { port = value }
        } else if let colon = authority.lastIndex(of: ":") {
            hostPart = String(authority[..<colon])
            port = Int(authority[authority.index(after: colon)...]) ?? port
        }
        host = hostPart
        self.port = port
    }

    /// Nil when `text` is an http(s) URL with a host, an optional port 1–65535, no user
    /// info, no fragment and no whitespace or control characters.
    public static func problem(_ text: String) -> String? {
        let lower = text.lowercased()
        guard lower.hasPrefix("http://") || lower.hasPrefix("https://") else {
            return "\"\(ConfigReader.clip(text))\" is not an http:// or https:// URL"
        }
        if text.unicodeScalars.contains(where: { $0.value <= 32 || $0.value == 127 }) {
            return "a URL must not contain spaces or control characters"
        }
        let rest = text.dropFirst(lower.hasPrefix("https://") ? 8 : 7)
        let authorityEnd = rest.firstIndex { $0 == "/" || $0 == "?" || $0 == "#" } ?? rest.endIndex
        let authority = String(rest[..<authorityEnd])
        if authority.contains("@") { return "a webhook URL must not carry a user or password; use secret-file" }
        if text.contains("#") { return "a webhook URL must not have a #fragment" }
        var host = authority
        if authority.hasPrefix("["), let close = authority.firstIndex(of: "]") {
            host = String(authority[authority.index(after: authority.startIndex)..<close])
            let after = authority[authority.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":"), let port = Int(after.dropFirst()), (1...65_535).contains(port) else {
                    return "\"\(ConfigReader.clip(text))\" has an invalid port (1–65535)"
                }
            }
            if !IPAddressSyntax.isIPv6(host) { return "\"\(ConfigReader.clip(host))\" is not an IPv6 address" }
            return nil
        }
        if let colon = authority.lastIndex(of: ":") {
            host = String(authority[..<colon])
            guard let port = Int(authority[authority.index(after: colon)...]), (1...65_535).contains(port) else {
                return "\"\(ConfigReader.clip(text))\" has an invalid port (1–65535)"
            }
        }
        guard !host.isEmpty, NameSyntax.isHost(host.lowercased()) else {
            return "\"\(ConfigReader.clip(text))\" has no valid host name or IP address"
        }
        return nil
    }
}
