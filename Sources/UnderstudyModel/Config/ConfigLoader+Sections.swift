// The sections of cluster.yaml, one reader each. Each reader reports shape problems and builds
// what it can; an element that cannot be built (a resource without a type) is dropped and its
// name remembered, so references to it do not produce a second, confusing error.

import Yams

extension ConfigReader {
    static let rootKeys = ["cluster", "servers", "heartbeats", "network-partition", "groups", "monitors", "alerts", "fencing"]

    mutating func readRoot(_ root: Node) -> ClusterConfig? {
        guard let fields = mapping(root, path: "", allowed: Self.rootKeys) else { return nil }
        let cluster = required(fields, "cluster").flatMap { readCluster($0) }
        let servers = readServers(required(fields, "servers"))
        let heartbeats = readHeartbeats(present(fields, "heartbeats"))
        let partitions = readNetworkPartitions(present(fields, "network-partition"))
        let groups = readGroups(present(fields, "groups"), allServers: servers.map(\.name))
        if cluster == nil { sourceMap.clusterSettingsMissing = true }
        let settings = cluster ?? ClusterSettings(name: "", secretFile: "")
        let monitors = readMonitors(present(fields, "monitors"), groups: groups, timing: settings.timing)
        var config = ClusterConfig(
            cluster: settings, servers: servers, heartbeats: heartbeats, networkPartition: partitions,
            groups: groups, monitors: monitors)
        if let alerts = present(fields, "alerts") { config.alerts = readAlerts(alerts) }
        if let fencing = present(fields, "fencing") { config.fencing = readFencing(fencing) }
        return config
    }

    // MARK: cluster

    static let clusterKeys = [
        "name", "comment", "secret-file", "timing", "network-partition", "shutdown-monitor", "recovery", "ports",
        "os-commands", "rexec-directory", "rexec-clients", "web",
    ]

    mutating func readCluster(_ field: Field) -> ClusterSettings? {
        guard let fields = mapping(field.value, path: field.path, allowed: Self.clusterKeys) else { return nil }
        let name = string(required(fields, "name"))
        let secretFile = path(required(fields, "secret-file", hint: " (the file holding the cluster key)"))
        var settings = ClusterSettings(name: name ?? "", secretFile: secretFile ?? "")
        settings.comment = string(present(fields, "comment")) ?? ""

        if let timing = present(fields, "timing").flatMap({
            mapping($0.value, path: $0.path, allowed: ["heartbeat-interval", "heartbeat-timeout", "sync-wait", "monitor-delay-warning"])
        }) {
            if let value = duration(present(timing, "heartbeat-interval")) { settings.timing.heartbeatInterval = value }
            if let value = duration(present(timing, "heartbeat-timeout")) { settings.timing.heartbeatTimeout = value }
            if let value = duration(present(timing, "sync-wait")) { settings.timing.syncWait = value }
            if let value = int(present(timing, "monitor-delay-warning")) { settings.timing.monitorDelayWarning = value }
        }
        if let partition = present(fields, "network-partition").flatMap({
            mapping($0.value, path: $0.path, allowed: ["action"])
        }), let action = choice(present(partition, "action"), NetworkPartitionAction.self) {
            settings.networkPartitionAction = action
        }
        if let monitor = present(fields, "shutdown-monitor").flatMap({
            mapping($0.value, path: $0.path, allowed: ["method", "timeout"])
        }) {
            if let method = choice(present(monitor, "method"), ShutdownMonitorSettings.Method.self) {
                settings.shutdownMonitor.method = method
            }
            if let timeout = present(monitor, "timeout") {
                let text = peekScalar(timeout.value)
                if text == "heartbeat" {
                    settings.shutdownMonitor.timeout = .heartbeat
                } else if let text, case .valid(let value) = Duration.parseConfig(text) {
                    settings.shutdownMonitor.timeout = .duration(value)
                } else {
                    error(
                        "expected heartbeat or \(Self.durationExpectation), got \(describe(timeout.value))",
                        at: timeout.value, path: timeout.path)
                }
            }
        }
        if let recovery = present(fields, "recovery").flatMap({
            mapping(
                $0.value, path: $0.path,
                allowed: [
                    "max-reboots", "reboot-count-reset-after", "suppress-final-action-when-alone", "disable-monitor-recovery",
                    "process-failure-action",
                ])
        }) {
            if let value = int(present(recovery, "max-reboots")) { settings.recovery.maxReboots = value }
            if let value = duration(present(recovery, "reboot-count-reset-after")) { settings.recovery.rebootCountResetAfter = value }
            if let cases = choiceList(present(recovery, "suppress-final-action-when-alone"), RecoverySettings.SuppressCase.self) {
                settings.recovery.suppressFinalActionWhenAlone = Set(cases)
            }
            if let value = bool(present(recovery, "disable-monitor-recovery")) {
                settings.recovery.disableMonitorRecovery = value
            }
            if let value = choice(present(recovery, "process-failure-action"), NetworkPartitionAction.self) {
                settings.recovery.processFailureAction = value
            }
        }
        if let ports = present(fields, "ports").flatMap({
            mapping($0.value, path: $0.path, allowed: ["control", "heartbeat", "http", "api"])
        }) {
            if let value = int(present(ports, "control")) { settings.ports.control = value }
            if let value = int(present(ports, "heartbeat")) { settings.ports.heartbeat = value }
            if let value = int(present(ports, "http")) { settings.ports.http = value }
            if let value = int(present(ports, "api")) { settings.ports.api = value }
        }
        if let web = fields["web"] { settings.web = readWeb(web) }
        if let directory = path(present(fields, "rexec-directory")) { settings.rexecDirectory = directory }
        if let clients = present(fields, "rexec-clients") { settings.rexecClients = readRexecClients(clients) }
        if let commands = present(fields, "os-commands").flatMap({
            mapping($0.value, path: $0.path, allowed: OSCommands.keys)
        }) {
            for key in OSCommands.keys {
                if let value = command(present(commands, key)) { settings.osCommands[key] = value }
            }
        }
        guard name != nil, secretFile != nil else { return nil }
        return settings
    }

    static let webKeys = [
        "listen", "tls", "certificate", "key", "users-file", "session-timeout", "max-body-size", "client-addresses", "metrics",
    ]

    /// `cluster.web`: present (even empty) means the web server runs.
    mutating func readWeb(_ field: Field) -> WebSettings {
        var web = WebSettings(usersFile: resolve(Defaults.usersFileName))
        if isNull(field.value) { return web }
        guard let fields = mapping(field.value, path: field.path, allowed: Self.webKeys) else { return web }
        if let listen = present(fields, "listen") {
            if case .sequence = listen.value {
                if let addresses = stringList(listen, element: "an IP address") {
                    for (index, address) in addresses.enumerated() where !IPAddressSyntax.isIPAddress(address) {
                        error(
                            "\"\(Self.clip(address))\" is not an IP address", at: sequenceItem(listen.value, index),
                            path: "\(listen.path)[\(index)]")
                    }
                    web.listen = .addresses(addresses)
                }
            } else if let word = string(listen) {
                switch word {
                case "all": web.listen = .all
                case "heartbeat-addresses": web.listen = .heartbeatAddresses
                default:
                    error(
                        "expected all, heartbeat-addresses or a list of IP addresses, got \(describe(listen.value))", at: listen.value,
                        path: listen.path)
                }
            }
        }
        if let value = bool(present(fields, "tls")) { web.tls = value }
        web.certificate = path(present(fields, "certificate"))
        web.key = path(present(fields, "key"))
        if let value = path(present(fields, "users-file")) { web.usersFile = value }
        if let value = duration(present(fields, "session-timeout")) { web.sessionTimeout = value }
        if let value = int(present(fields, "max-body-size")) { web.maxBodySize = value }
        if let lists = present(fields, "client-addresses").flatMap({
            mapping($0.value, path: $0.path, allowed: WebRole.allCases.map(\.rawValue))
        }) {
            for role in WebRole.allCases {
                guard let list = present(lists, role.rawValue), let entries = stringList(list, element: "an address or CIDR") else {
                    continue
                }
                for (index, entry) in entries.enumerated() {
                    if let problem = IPAddressSyntax.problemWithAddress(entry, prefixRequired: false) {
                        error(problem, at: sequenceItem(list.value, index), path: "\(list.path)[\(index)]")
                    }
                }
                web.clientAddresses[role] = entries
            }
        }
        if let metrics = present(fields, "metrics").flatMap({ mapping($0.value, path: $0.path, allowed: ["unauthenticated-from"]) }),
            let list = present(metrics, "unauthenticated-from"), let entries = stringList(list, element: "an address or CIDR")
        {
            for (index, entry) in entries.enumerated() {
                if let problem = IPAddressSyntax.problemWithAddress(entry, prefixRequired: false) {
                    error(problem, at: sequenceItem(list.value, index), path: "\(list.path)[\(index)]")
                }
            }
            web.metricsUnauthenticatedFrom = entries
        }
        return web
    }

    func peekScalar(_ node: Node) -> String? {
        guard case .scalar(let scalar) = node else { return nil }
        return scalar.string
    }

    /// A command as a list of arguments; a relative program path with a slash is resolved
    /// like scripts, a bare name is left for PATH lookup.
    mutating func command(_ field: Field?) -> [String]? {
        guard let field, var words = stringList(field, element: "a command word") else { return nil }
        guard let program = words.first, !program.isEmpty else {
            error("expected a command and its arguments, got an empty list", at: field.value, path: field.path)
            return nil
        }
        if program.contains("/") { words[0] = resolve(program) }
        return words
    }

    /// A list of enum words.
    mutating func choiceList<Choice: RawRepresentable & CaseIterable>(_ field: Field?, _ type: Choice.Type)
        -> [Choice]? where Choice.RawValue == String
    {
        guard let field, let words = stringList(field) else { return nil }
        let allowed = Choice.allCases.map(\.rawValue)
        var values: [Choice] = []
        var failed = false
        for (index, word) in words.enumerated() {
            if let value = Choice(rawValue: word) {
                values.append(value)
            } else {
                let itemPath = "\(field.path)[\(index)]"
                let node = sequenceItem(field.value, index)
                error(
                    "expected one of \(allowed.listed); got \"\(Self.clip(word))\"\(Suggestion.didYouMean(word, in: allowed))",
                    at: node, path: itemPath)
                failed = true
            }
        }
        return failed ? nil : values
    }

    /// `host`, `port`, `tls`, `ca-file`, `server-name` of a witnesshb or httpnp entry.
    mutating func witnessEndpoint(_ fields: FieldSet) -> WitnessEndpoint? {
        let host = string(required(fields, "host"))
        let port = portOrDefault(fields)
        let tls = present(fields, "tls").map { bool($0) } ?? false
        let caFile = present(fields, "ca-file").flatMap { path($0) }
        let serverName = present(fields, "server-name").flatMap { string($0) }
        if tls == false {
            for key in ["ca-file", "server-name"] {
                if let field = present(fields, key) {
                    error("\(key) applies to HTTPS only: add tls: true, or remove it", at: field.keyNode, path: field.path)
                }
            }
        }
        guard let host, let port, let tls else { return nil }
        return WitnessEndpoint(host: host, port: port, tls: tls ? WitnessTLS(caFile: caFile, serverName: serverName) : nil)
    }

    /// `port:` when given (nil after an error), else the witness default.
    mutating func portOrDefault(_ fields: FieldSet) -> Int? {
        guard let field = present(fields, "port") else { return Defaults.witnessPort }
        return int(field)
    }

    func sequenceItem(_ node: Node, _ index: Int) -> Node? {
        guard case .sequence(let sequence) = node, sequence.indices.contains(index) else { return nil }
        return sequence[index]
    }

    // MARK: servers

    mutating func readServers(_ field: Field?) -> [ServerConfig] {
        var servers: [ServerConfig] = []
        for (node, itemPath) in items(field, of: "servers") {
            // `- node1` is short for `- name: node1`.
            if case .scalar(let scalar) = node, !isNull(node) {
                sourceMap.values[itemPath + ".name"] = sourceMap.values[itemPath]
                servers.append(ServerConfig(name: scalar.string))
                sourceMap.serverPaths.append(itemPath)
                continue
            }
            guard let fields = mapping(node, path: itemPath, allowed: ["name", "comment"]) else { continue }
            guard let name = string(required(fields, "name")) else { continue }
            servers.append(ServerConfig(name: name, comment: string(present(fields, "comment")) ?? ""))
            sourceMap.serverPaths.append(itemPath)
        }
        return servers
    }

    // MARK: heartbeats

    static let heartbeatTypeKeys: [String: [String]] = [
        "lanhb": ["addresses"], "diskhb": ["device"], "comhb": ["devices", "speed"], "witnesshb": Self.witnessKeys,
    ]
    static let heartbeatTypes = ["lanhb", "diskhb", "comhb", "witnesshb"]
    static let witnessKeys = ["host", "port", "tls", "ca-file", "server-name"]

    mutating func readHeartbeats(_ field: Field?) -> [HeartbeatConfig] {
        var heartbeats: [HeartbeatConfig] = []
        for (node, itemPath) in items(field, of: "heartbeats") {
            guard
                let (fields, name, type) = typedElement(
                    node, path: itemPath, kind: "heartbeat", types: Self.heartbeatTypes, typeKeys: Self.heartbeatTypeKeys)
            else { continue }
            let comment = string(present(fields, "comment")) ?? ""
            let kind: HeartbeatConfig.Kind?
            switch type {
            case "lanhb":
                kind = stringMap(required(fields, "addresses"), value: "IP address").map { .lan(addresses: $0) }
            case "diskhb":
                // Not resolved against the file's folder: a device is named by its absolute
                // path (the validator says so).
                kind = string(required(fields, "device")).map { .disk(device: $0) }
            case "comhb":
                let devices = stringMap(required(fields, "devices"), value: "serial device")
                let speed = present(fields, "speed").map { int($0) } ?? Defaults.serialSpeed
                kind = devices.flatMap { devices in speed.map { .serial(devices: devices, speed: $0) } }
            default:
                kind = witnessEndpoint(fields).map { .witness($0) }
            }
            guard let kind else {
                sourceMap.droppedNames.insert(name)
                continue
            }
            heartbeats.append(HeartbeatConfig(name: name, comment: comment, kind: kind))
            sourceMap.heartbeatPaths.append(itemPath)
        }
        return heartbeats
    }

    // MARK: network partition

    static let partitionTypeKeys: [String: [String]] = [
        "pingnp": ["targets", "timeout"], "majority": [], "httpnp": Self.witnessKeys,
    ]
    static let partitionTypes = ["pingnp", "majority", "httpnp"]

    mutating func readNetworkPartitions(_ field: Field?) -> [NetworkPartitionConfig] {
        var partitions: [NetworkPartitionConfig] = []
        for (node, itemPath) in items(field, of: "network-partition resolutions") {
            guard
                let (fields, name, type) = typedElement(
                    node, path: itemPath, kind: "network-partition", types: Self.partitionTypes,
                    typeKeys: Self.partitionTypeKeys)
            else { continue }
            let comment = string(present(fields, "comment")) ?? ""
            let kind: NetworkPartitionConfig.Kind?
            switch type {
            case "pingnp":
                kind = stringList(required(fields, "targets"), element: "an IP address").map { .ping(targets: $0) }
            case "majority":
                kind = .majority
            default:
                kind = witnessEndpoint(fields).map { .http($0) }
            }
            guard let kind else {
                sourceMap.droppedNames.insert(name)
                continue
            }
            var entry = NetworkPartitionConfig(name: name, comment: comment, kind: kind)
            if type == "pingnp", let timeout = duration(present(fields, "timeout")) { entry.pingTimeout = timeout }
            partitions.append(entry)
            sourceMap.networkPartitionPaths.append(itemPath)
        }
        return partitions
    }

    /// Reads an element with `name`, `type` and type-specific keys: picks the key set by type
    /// first, so a misspelt type gives one error instead of one per key.
    mutating func typedElement(
        _ node: Node, path: String, kind: String, types: [String], typeKeys: [String: [String]],
        commonKeys: [String] = ["name", "type", "comment"]
    ) -> (FieldSet, String, String)? {
        let type = peek(node, "type")
        let knownType = type.flatMap { types.contains($0) ? $0 : nil }
        let allKeys = commonKeys + typeKeys.values.flatMap { $0 }
        let allowed = knownType.map { commonKeys + (typeKeys[$0] ?? []) } ?? allKeys
        var foreign: [String: String] = [:]
        if let knownType {
            var owners: [String: [String]] = [:]
            for type in types where type != knownType {
                for key in typeKeys[type] ?? [] where !allowed.contains(key) {
                    owners[key, default: []].append(type)
                }
            }
            foreign = owners.mapValues { "\($0.listed) \(kind)s" }
        }
        let context = knownType.map { " for \($0) \(kind)s" } ?? ""
        guard
            let fields = mapping(
                node, path: path, allowed: allowed, context: context, foreignKeys: foreign)
        else { return nil }
        let name = string(required(fields, "name"))
        var typeName: String?
        if let typeField = required(fields, "type", hint: " (one of \(types.listed))"),
            let text = scalarText(typeField, expected: "a \(kind) type")
        {
            if knownType != nil {
                typeName = text
            } else {
                error(
                    "unknown \(kind) type \"\(Self.clip(text))\"\(Suggestion.didYouMean(text, in: types)); expected one of \(types.listed)",
                    at: typeField.value, path: typeField.path)
            }
        }
        guard let name else { return nil }
        guard let typeName else {
            sourceMap.droppedNames.insert(name)
            return nil
        }
        return (fields, name, typeName)
    }
}
