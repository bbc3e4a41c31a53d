// Checks the meaning of a config: names, references between sections, ranges, cycles, the
// heartbeat and partition set-up. Works on the typed model, so configs built in code (tests,
// the simulator) get the same checks; the source map, when there is one, points at lines.

import Foundation

public enum ConfigValidator {
    /// Every problem in the config; an empty result or only warnings means it can be used.
    /// `checkFiles: false` skips the warnings about files missing on this machine.
    public static func validate(
        _ config: ClusterConfig, sourceMap: ConfigSourceMap = ConfigSourceMap(), file: String? = nil,
        checkFiles: Bool = true
    ) -> [ConfigDiagnostic] {
        var validator = Validator(
            config: config, sourceMap: sourceMap, file: file ?? config.sourcePath, checkFiles: checkFiles)
        validator.run()
        return ConfigDiagnostic.sorted(validator.diagnostics)
    }

    /// Final actions allowed after an activation failure (reference §5.2).
    public static let activationFinalActions: [FinalAction] =
        [
            .none, .noneContinue, .stopGroup, .stopClusterService, .shutdown, .reboot,
        ] + FinalAction.immediate
    /// Deactivation failure: stopping the group or the cluster service would need the very
    /// deactivation that failed (reference §5.2).
    public static let deactivationFinalActions: [FinalAction] = [.none, .noneContinue, .shutdown, .reboot] + FinalAction.immediate
    /// Monitor errors (reference §6.1).
    public static let monitorFinalActions: [FinalAction] =
        [
            .none, .stopResource, .stopGroup, .stopClusterService, .shutdown, .reboot,
        ] + FinalAction.immediate
    /// Counts of retries, failovers and reactivations: 0–99 as in CLUSTERPRO.
    public static let countRange = 0...99
    /// File systems a disk resource can mount.
    /// File systems a disk resource can mount (`none`: a raw device, nothing is mounted).
    /// ZFS datasets are a `volmgr` pool's business: the pool mounts them.
    public static let diskFilesystems = ["ext3", "ext4", "xfs", "btrfs", "none"]
    /// File systems a nas resource can mount.
    public static let nasFilesystems = ["nfs", "nfs4"]
    /// Recovery target words that cannot be group or resource names.
    public static let reservedNames = ["all-groups", "local-server"]
}

extension GroupConfig {
    /// The resources `resource` starts after: its `depends:` list, or, without one, every
    /// resource of the group in a lower default layer (fip/vip/ddns, volmgr, disk/nas, exec/vm).
    public func effectiveDependencies(of resource: ResourceConfig) -> [String] {
        if let depends = resource.depends { return depends }
        return resources.filter { $0.type.defaultLayer < resource.type.defaultLayer }.map(\.name)
    }
}

struct Validator {
    let config: ClusterConfig
    let sourceMap: ConfigSourceMap
    let file: String
    let checkFiles: Bool
    var diagnostics: [ConfigDiagnostic] = []

    init(config: ClusterConfig, sourceMap: ConfigSourceMap, file: String, checkFiles: Bool) {
        self.config = config
        self.sourceMap = sourceMap
        self.file = file
        self.checkFiles = checkFiles
    }

    // MARK: Reporting

    mutating func error(_ message: String, at path: String, atKey: Bool = false) {
        report(.error, message, at: path, atKey: atKey)
    }

    mutating func warning(_ message: String, at path: String, atKey: Bool = false) {
        report(.warning, message, at: path, atKey: atKey)
    }

    mutating func report(_ severity: ConfigDiagnostic.Severity, _ message: String, at path: String, atKey: Bool) {
        let position = sourceMap.position(of: path, preferKey: atKey)
        diagnostics.append(
            ConfigDiagnostic(
                severity: severity, file: file, line: position?.line ?? 0, column: position?.column ?? 0,
                keyPath: path, message: message))
    }

    /// " at line 12" when the source map knows where `path` is.
    func lineNote(_ path: String) -> String {
        sourceMap.values[path].map { " at line \($0.line)" } ?? ""
    }

    func isKnownOrDropped(_ name: String, in names: [String]) -> Bool {
        names.contains(name) || sourceMap.droppedNames.contains(name)
    }

    mutating func run() {
        if !sourceMap.clusterSettingsMissing { checkCluster() }
        checkServers()
        checkRexecClients()
        checkHeartbeats()
        checkNetworkPartitions()
        checkGroups()
        checkResources()
        checkMonitors()
        checkAlerts()
        checkFencing()
    }

    // MARK: Shared checks

    mutating func checkCount(_ value: Int, at path: String, range: ClosedRange<Int> = ConfigValidator.countRange) {
        if value < 0 {
            error("must not be negative, got \(value)", at: path)
        } else if !range.contains(value) {
            error("must be at most \(range.upperBound), got \(value)", at: path)
        }
    }

    mutating func checkPositive(_ duration: Duration, at path: String) {
        if duration <= .zero { error("must be greater than zero, got \(duration.configText)", at: path) }
    }

    mutating func checkNotNegative(_ duration: Duration, at path: String) {
        if duration < .zero { error("must not be negative, got \(duration.configText)", at: path) }
    }

    mutating func checkPort(_ port: Int, at path: String) {
        if !(1...65_535).contains(port) { error("port must be from 1 to 65535, got \(port)", at: path) }
    }

    mutating func checkObjectName(_ name: String, at path: String) {
        if let problem = NameSyntax.problemWithObjectName(name) { error(problem, at: path) }
    }

    mutating func checkHost(_ host: String, at path: String) {
        if !NameSyntax.isHost(host) {
            error("\"\(ConfigReader.clip(host))\" is not a valid host name or IP address", at: path)
        }
    }

    /// Reports every name that appears twice, at the second place, naming the first.
    mutating func checkDuplicates(_ names: [(name: String, path: String)], what: String) {
        var first: [String: String] = [:]
        for (name, path) in names where !name.isEmpty {
            if let firstPath = first[name] {
                error("duplicate \(what) name \"\(name)\"; first defined\(lineNote(firstPath)) (\(firstPath))", at: path)
            } else {
                first[name] = path
            }
        }
    }

    mutating func checkFileExists(_ path: String, at keyPath: String, what: String, executable: Bool = false) {
        guard checkFiles else { return }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            warning("\(what) \(path) does not exist on this machine", at: keyPath)
            return
        }
        if isDirectory.boolValue {
            warning("\(what) \(path) is a directory", at: keyPath)
        } else if executable, !FileManager.default.isExecutableFile(atPath: path) {
            warning("\(what) \(path) is not executable", at: keyPath)
        }
    }

    /// Names that take part in a cycle, each cycle once, as `a → b → a`, reported at the first
    /// member in declaration order. Iterative, so a huge file cannot exhaust the stack.
    static func cycles(order: [String], edges: [String: [String]]) -> [[String]] {
        // Tarjan's strongly connected components.
        var index: [String: Int] = [:]
        var lowLink: [String: Int] = [:]
        var onStack: Set<String> = []
        var stack: [String] = []
        var components: [[String]] = []
        var counter = 0
        for root in order where index[root] == nil {
            var work: [(node: String, next: Int)] = [(root, 0)]
            index[root] = counter
            lowLink[root] = counter
            counter += 1
            stack.append(root)
            onStack.insert(root)
            while let (node, next) = work.last {
                let successors = edges[node] ?? []
                if next < successors.count {
                    work[work.count - 1].next += 1
                    let successor = successors[next]
                    if index[successor] == nil {
                        index[successor] = counter
                        lowLink[successor] = counter
                        counter += 1
                        stack.append(successor)
                        onStack.insert(successor)
                        work.append((successor, 0))
                    } else if onStack.contains(successor) {
                        lowLink[node] = min(lowLink[node] ?? 0, index[successor] ?? 0)
                    }
                    continue
                }
                work.removeLast()
                if let parent = work.last {
                    lowLink[parent.node] = min(lowLink[parent.node] ?? 0, lowLink[node] ?? 0)
                }
                if lowLink[node] == index[node] {
                    var component: [String] = []
                    while let member = stack.popLast() {
                        onStack.remove(member)
                        component.append(member)
                        if member == node { break }
                    }
                    if component.count > 1 { components.append(component) }
                }
            }
        }
        // Turn each component into one concrete loop starting at its first declared member.
        let position = Dictionary(order.enumerated().map { ($1, $0) }, uniquingKeysWith: { first, _ in first })
        return components.map { component in
            let members = Set(component)
            let start = component.min { (position[$0] ?? 0) < (position[$1] ?? 0) } ?? component[0]
            var previous: [String: String] = [:]
            var queue = [start]
            var head = 0
            var closing: String?
            search: while head < queue.count {
                let node = queue[head]
                head += 1
                for successor in edges[node] ?? [] where members.contains(successor) {
                    if successor == start {
                        closing = node
                        break search
                    }
                    if previous[successor] == nil {
                        previous[successor] = node
                        queue.append(successor)
                    }
                }
            }
            var path = [start]
            var node = closing
            while let current = node, current != start {
                path.insert(current, at: 1)
                node = previous[current]
            }
            return path + [start]
        }.sorted { (position[$0[0]] ?? 0) < (position[$1[0]] ?? 0) }
    }

    // MARK: cluster

    mutating func checkCluster() {
        let cluster = config.cluster
        checkObjectName(cluster.name, at: "cluster.name")
        if cluster.secretFile.isEmpty {
            error("missing required key (the file holding the cluster key)", at: "cluster.secret-file")
        } else if checkFiles {
            var isDirectory: ObjCBool = false
            if !FileManager.default.fileExists(atPath: cluster.secretFile, isDirectory: &isDirectory) {
                warning(
                    "secret file \(cluster.secretFile) does not exist on this machine; the daemon will not start without it",
                    at: "cluster.secret-file")
            } else if isDirectory.boolValue {
                warning("secret file \(cluster.secretFile) is a directory", at: "cluster.secret-file")
            } else if let attributes = try? FileManager.default.attributesOfItem(atPath: cluster.secretFile),
                let permissions = (attributes[.posixPermissions] as? NSNumber)?.intValue, permissions & 0o077 != 0
            {
                warning(
                    "secret file \(cluster.secretFile) is readable by other users (mode \(String(permissions, radix: 8))); use chmod 600",
                    at: "cluster.secret-file")
            }
        }
        let timing = cluster.timing
        checkPositive(timing.heartbeatInterval, at: "cluster.timing.heartbeat-interval")
        if timing.heartbeatInterval > .zero, timing.heartbeatTimeout <= timing.heartbeatInterval {
            error(
                "must be greater than heartbeat-interval (\(timing.heartbeatInterval.configText)), got \(timing.heartbeatTimeout.configText)",
                at: "cluster.timing.heartbeat-timeout")
        }
        if timing.heartbeatInterval > .zero, timing.heartbeatTimeout > timing.heartbeatInterval,
            timing.heartbeatTimeout < timing.heartbeatInterval * 3
        {
            warning(
                "less than three heartbeat intervals (\(timing.heartbeatInterval.configText)): two lost heartbeats in a row make a server down; see docs/operations.md, profiles",
                at: "cluster.timing.heartbeat-timeout")
        }
        checkNotNegative(timing.syncWait, at: "cluster.timing.sync-wait")
        if !(1...100).contains(timing.monitorDelayWarning) {
            error(
                "monitor-delay-warning is a percentage of the monitor timeout from 1 to 100, got \(timing.monitorDelayWarning)",
                at: "cluster.timing.monitor-delay-warning")
        }
        if case .duration(let timeout) = cluster.shutdownMonitor.timeout {
            checkPositive(timeout, at: "cluster.shutdown-monitor.timeout")
        }
        if cluster.recovery.maxReboots < 0 {
            error("must not be negative, got \(cluster.recovery.maxReboots)", at: "cluster.recovery.max-reboots")
        }
        let ports = cluster.ports
        checkPort(ports.control, at: "cluster.ports.control")
        checkPort(ports.heartbeat, at: "cluster.ports.heartbeat")
        checkPort(ports.http, at: "cluster.ports.http")
        if ports.control == ports.http {
            error("control and http are both TCP ports and must differ, both are \(ports.http)", at: "cluster.ports.http")
        }
        if let api = ports.api {
            checkPort(api, at: "cluster.ports.api")
            if api == ports.control || api == ports.http {
                error("api must differ from the control and http ports (TCP), got \(api)", at: "cluster.ports.api")
            }
        }
        if let web = cluster.web { checkWeb(web) }
        for key in OSCommands.keys where cluster.osCommands[key]?.first?.isEmpty ?? true {
            error("expected a command and its arguments, got an empty list", at: "cluster.os-commands.\(key)")
        }
    }

    mutating func checkWeb(_ web: WebSettings) {
        if web.tls {
            if web.certificate == nil {
                error(
                    "HTTPS needs a certificate (PEM file); set certificate and key, or tls: false for plain HTTP", at: "cluster.web",
                    atKey: true)
            }
            if web.key == nil {
                error(
                    "HTTPS needs the certificate's private key (PEM file); set key, or tls: false for plain HTTP", at: "cluster.web",
                    atKey: true)
            }
        }
        checkPositive(web.sessionTimeout, at: "cluster.web.session-timeout")
        if !(1024...(16 * 1024 * 1024)).contains(web.maxBodySize) {
            error("must be from 1024 to 16777216 bytes, got \(web.maxBodySize)", at: "cluster.web.max-body-size")
        }
    }

    // MARK: servers

    mutating func checkServers() {
        if config.servers.isEmpty {
            error("needs at least one server", at: "servers")
        }
        var names: [(String, String)] = []
        for (index, server) in config.servers.enumerated() {
            let path = sourceMap.serverPath(index) + ".name"
            names.append((server.name, path))
            if !NameSyntax.isLowercaseHostname(server.name) {
                let lowercased = server.name.lowercased()
                let hint = NameSyntax.isLowercaseHostname(lowercased) ? "; write \"\(lowercased)\"" : ""
                error(
                    "server name \"\(ConfigReader.clip(server.name))\" is not a lowercase host name (a–z, 0–9 and '-', labels joined by dots)\(hint)",
                    at: path)
            }
        }
        checkDuplicates(names, what: "server")
    }

    var serverNames: [String] { config.servers.map(\.name) }

    mutating func checkServerReference(_ name: String, at path: String, atKey: Bool = false, context: String) {
        // With no servers at all, that is the one problem worth reporting.
        guard !serverNames.isEmpty, !isKnownOrDropped(name, in: serverNames) else { return }
        error(
            "unknown server \"\(ConfigReader.clip(name))\" in \(context)\(Suggestion.didYouMean(name, in: serverNames)); servers are: \(serverNames.listed)",
            at: path, atKey: atKey)
    }

    // MARK: heartbeats

    mutating func checkHeartbeats() {
        var names: [(String, String)] = []
        var lanPaths = 0
        for (index, heartbeat) in config.heartbeats.enumerated() {
            let base = sourceMap.heartbeatPath(index)
            names.append((heartbeat.name, base + ".name"))
            checkObjectName(heartbeat.name, at: base + ".name")
            switch heartbeat.kind {
            case .lan(let addresses):
                lanPaths += 1
                checkServerMap(addresses, at: base + ".addresses", context: "a lanhb address")
                var seen: [String: String] = [:]
                for server in serverNames {
                    guard let address = addresses[server] else { continue }
                    let path = base + ".addresses." + server
                    if let problem = IPAddressSyntax.problemWithAddress(address, prefixRequired: false) {
                        error(problem, at: path)
                    } else if address.contains("/") {
                        error("a heartbeat address takes no prefix length, got \"\(address)\"", at: path)
                    } else if let other = seen[address] {
                        error("address \(address) is also given for server \(other); each server needs its own", at: path)
                    }
                    seen[address] = server
                }
                for server in serverNames where addresses[server] == nil {
                    error(
                        "lanhb path \(heartbeat.name) has no address for server \(server); every server needs one on each lanhb path",
                        at: base + ".addresses")
                }
            case .disk(let device):
                if device.isEmpty {
                    error("missing required key", at: base + ".device")
                } else {
                    checkAbsolute(device, at: base + ".device")
                }
            case .serial(let devices, let speed):
                checkServerMap(devices, at: base + ".devices", context: "a comhb device")
                for server in devices.keys.sorted() { checkAbsolute(devices[server] ?? "", at: base + ".devices." + server) }
                if devices.count != 2 {
                    error(
                        "a comhb line joins exactly two servers (a null-modem cable), got \(devices.count); use one comhb entry per cable",
                        at: base + ".devices")
                }
                if !Defaults.serialSpeeds.contains(speed) {
                    error(
                        "unsupported line speed \(speed); expected one of \(Defaults.serialSpeeds.map(String.init).joined(separator: ", "))",
                        at: base + ".speed")
                }
            case .witness(let endpoint):
                checkWitness(endpoint, at: base)
            }
        }
        checkDuplicates(names, what: "heartbeat")
        if serverNames.count >= 2 {
            if lanPaths == 0 {
                error("at least one lanhb heartbeat is needed when there are two or more servers", at: "heartbeats")
            } else if lanPaths == 1 {
                warning(
                    "only one lanhb path: one network fault will look like a server failure; add a second path (a dedicated interconnect and the public LAN)",
                    at: "heartbeats")
            }
        }
    }

    mutating func checkWitness(_ endpoint: WitnessEndpoint, at base: String) {
        checkHost(endpoint.host, at: base + ".host")
        checkPort(endpoint.port, at: base + ".port")
        if checkFiles, let caFile = endpoint.tls?.caFile, !FileManager.default.isReadableFile(atPath: caFile) {
            warning(
                "cannot read the certificate file \(caFile) on this machine; the witness path stays down without it",
                at: base + ".ca-file")
        }
        if let name = endpoint.tls?.serverName, name.isEmpty || name.contains(where: { $0.isWhitespace }) {
            error("expected a host name as it appears in the witness's certificate, got \"\(name)\"", at: base + ".server-name")
        }
    }

    /// Server names used as map keys in a heartbeat must be servers of the cluster.
    mutating func checkServerMap(_ map: [String: String], at path: String, context: String) {
        for server in map.keys.sorted() {
            checkServerReference(server, at: path + "." + server, atKey: true, context: context)
        }
    }

    // MARK: network partition

    mutating func checkNetworkPartitions() {
        var names: [(String, String)] = []
        for (index, partition) in config.networkPartition.enumerated() {
            let base = sourceMap.networkPartitionPath(index)
            names.append((partition.name, base + ".name"))
            checkObjectName(partition.name, at: base + ".name")
            switch partition.kind {
            case .ping(let targets):
                if targets.isEmpty { error("needs at least one target address", at: base + ".targets") }
                for (targetIndex, target) in targets.enumerated() {
                    checkPlainIP(target, at: "\(base).targets[\(targetIndex)]")
                }
                if partition.pingTimeout < .milliseconds(10) || partition.pingTimeout > .seconds(30) {
                    error("must be from 10ms to 30s, got \(partition.pingTimeout.configText)", at: base + ".timeout")
                }
            case .majority:
                if serverNames.count == 2, !config.networkPartition.contains(where: { $0.typeName == "pingnp" }) {
                    warning(
                        "with two servers neither side of a partition holds a majority, so both stop; add a pingnp (then the side of the first server survives if it reaches a target)",
                        at: base + ".type")
                }
            case .http(let endpoint):
                checkWitness(endpoint, at: base)
            }
        }
        checkDuplicates(names, what: "network-partition")
        if config.networkPartition.isEmpty, serverNames.count >= 2 {
            warning(
                "no network-partition resolution: a network partition will leave both sides running (add pingnp, httpnp or majority)",
                at: "network-partition")
        }
    }

    mutating func checkPlainIP(_ address: String, at path: String) {
        if !IPAddressSyntax.isIPAddress(address) {
            error("\"\(ConfigReader.clip(address))\" is not a valid IPv4 or IPv6 address", at: path)
        }
    }

    // MARK: groups

    var groupNames: [String] { config.groups.map(\.name) }

    mutating func checkGroups() {
        var names: [(String, String)] = []
        var edges: [String: [String]] = [:]
        for (index, group) in config.groups.enumerated() {
            let base = sourceMap.groupPath(index)
            names.append((group.name, base + ".name"))
            checkObjectName(group.name, at: base + ".name")
            if ConfigValidator.reservedNames.contains(group.name) {
                error("\"\(group.name)\" is reserved for monitor recovery targets; choose another name", at: base + ".name")
            }
            if group.servers.isEmpty, !serverNames.isEmpty {
                error("a group needs at least one server to run on", at: base + ".servers")
            }
            var seenServers: Set<String> = []
            for (serverIndex, server) in group.servers.enumerated() {
                let path = "\(base).servers[\(serverIndex)]"
                checkServerReference(server, at: path, context: "the group's servers")
                if !seenServers.insert(server).inserted {
                    error("server \(server) is listed twice", at: path)
                }
            }
            if group.resources.isEmpty {
                error("a group needs at least one resource", at: base + ".resources")
            }
            if group.exclusive != .none, group.resources.contains(where: { $0.type == .vm }) {
                error("groups with a vm resource cannot be exclusive (reference §4.1)", at: base + ".exclusive")
            }
            let stopAfterList = sourceMap.keys["\(base).stop-after.groups"] != nil ? "\(base).stop-after.groups" : "\(base).stop-after"
            if group.stopAfterTimeout <= .zero {
                error("the stop wait's timeout must be longer than zero", at: base + ".stop-after.timeout")
            }
            for (afterIndex, other) in group.stopAfter.enumerated() {
                let path = "\(stopAfterList)[\(afterIndex)]"
                if other == group.name {
                    error("a group cannot stop after itself", at: path)
                } else if !isKnownOrDropped(other, in: groupNames) {
                    error(
                        "unknown group \"\(ConfigReader.clip(other))\"\(Suggestion.didYouMean(other, in: groupNames)); groups are: \(groupNames.listed)",
                        at: path)
                }
            }
            edges[group.name] = group.stopAfter.filter { $0 != group.name }
        }
        checkDuplicates(names, what: "group")
        for cycle in Validator.cycles(order: groupNames, edges: edges) {
            guard let index = config.groups.firstIndex(where: { $0.name == cycle[0] }) else { continue }
            error(
                "stop-after cycle: \(cycle.joined(separator: " → ")); no group could stop first",
                at: sourceMap.groupPath(index) + ".stop-after")
        }
    }

    // MARK: resources

    mutating func checkResources() {
        var names: [(String, String)] = []
        var owningGroup: [String: String] = [:]
        for group in config.groups {
            for resource in group.resources where owningGroup[resource.name] == nil {
                owningGroup[resource.name] = group.name
            }
        }
        for (groupIndex, group) in config.groups.enumerated() {
            let members = group.resources.map(\.name)
            let memberSet = Set(members)
            var edges: [String: [String]] = [:]
            for (resourceIndex, resource) in group.resources.enumerated() {
                let base = sourceMap.resourcePath(group: groupIndex, resource: resourceIndex)
                names.append((resource.name, base + ".name"))
                checkObjectName(resource.name, at: base + ".name")
                if ConfigValidator.reservedNames.contains(resource.name) {
                    error(
                        "\"\(resource.name)\" is reserved for monitor recovery targets; choose another name",
                        at: base + ".name")
                }
                for (dependIndex, dependency) in (resource.depends ?? []).enumerated() {
                    let path = "\(base).depends[\(dependIndex)]"
                    if dependency == resource.name {
                        error("a resource cannot depend on itself", at: path)
                    } else if memberSet.contains(dependency) || sourceMap.droppedNames.contains(dependency) {
                        continue
                    } else if let owner = owningGroup[dependency] {
                        error(
                            "resource \(dependency) is in group \(owner); depends may only name resources of group \(group.name)",
                            at: path)
                    } else {
                        error(
                            "unknown resource \"\(ConfigReader.clip(dependency))\"\(Suggestion.didYouMean(dependency, in: members)); resources of group \(group.name) are: \(members.listed)",
                            at: path)
                    }
                }
                edges[resource.name] = group.effectiveDependencies(of: resource).filter {
                    $0 != resource.name && memberSet.contains($0)
                }
                checkPolicies(resource, at: base)
                checkSettings(resource, at: base)
            }
            for cycle in Validator.cycles(order: members, edges: edges) {
                guard let index = group.resources.firstIndex(where: { $0.name == cycle[0] }) else { continue }
                let base = sourceMap.resourcePath(group: groupIndex, resource: index)
                let path = group.resources[index].depends == nil ? base : base + ".depends"
                error(
                    "dependency cycle: \(cycle.joined(separator: " → ")) (resources without depends follow the type order fip/vip/ddns → volmgr → disk/nas → exec/vm)",
                    at: path)
            }
        }
        checkDuplicates(names, what: "resource")
        checkSharedStorageOwners()
    }

    /// A device, mount point or volume group belongs to one resource: two resources on it
    /// could run on two servers at once, the very thing a cluster must prevent.
    mutating func checkSharedStorageOwners() {
        var devices: [(name: String, path: String)] = []
        var mountPoints: [(name: String, path: String)] = []
        var volumes: [(name: String, path: String)] = []
        for (groupIndex, group) in config.groups.enumerated() {
            for (resourceIndex, resource) in group.resources.enumerated() {
                let base = sourceMap.resourcePath(group: groupIndex, resource: resourceIndex)
                switch resource.settings {
                case .disk(let disk):
                    devices.append((disk.device, base + ".device"))
                    if !disk.isRaw { mountPoints.append((disk.mountPoint, base + ".mount-point")) }
                case .nas(let nas): mountPoints.append((nas.mountPoint, base + ".mount-point"))
                case .volmgr(let volume): volumes.append((volume.manager.rawValue + ":" + volume.volume, base + ".volume"))
                default: break
                }
            }
        }
        for (entries, what) in [(devices, "device"), (mountPoints, "mount point"), (volumes, "volume")] {
            var first: [String: String] = [:]
            for (name, path) in entries {
                if let firstPath = first[name] {
                    error(
                        "\(what) \(name) is already used by another resource\(lineNote(firstPath)) (\(firstPath)); one resource per \(what)",
                        at: path)
                } else {
                    first[name] = path
                }
            }
        }
    }

    mutating func checkFinalAction(_ action: FinalAction, allowed: [FinalAction], at path: String, context: String) {
        guard !allowed.contains(action) else { return }
        error(
            "final action \(action.rawValue) is not allowed \(context); expected one of \(allowed.map(\.rawValue).listed)",
            at: path)
    }

    mutating func checkPolicies(_ resource: ResourceConfig, at base: String) {
        checkCount(resource.activation.retry, at: base + ".activation.retry")
        checkCount(resource.activation.failover, at: base + ".activation.failover")
        checkFinalAction(
            resource.activation.finalAction, allowed: ConfigValidator.activationFinalActions,
            at: base + ".activation.final-action", context: "after an activation failure")
        checkCount(resource.deactivation.retry, at: base + ".deactivation.retry")
        checkFinalAction(
            resource.deactivation.finalAction, allowed: ConfigValidator.deactivationFinalActions,
            at: base + ".deactivation.final-action",
            context: "after a deactivation failure (stopping the group needs the deactivation that failed)")
        if resource.deactivation.finalAction == .none || resource.deactivation.finalAction == .noneContinue {
            warning(
                "final action \(resource.deactivation.finalAction.rawValue) leaves the group in deactivation failure until someone intervenes; not for production",
                at: base + ".deactivation.final-action")
        }
    }

    mutating func checkSettings(_ resource: ResourceConfig, at base: String) {
        switch resource.settings {
        case .exec(let exec):
            checkPositive(exec.timeout, at: base + ".timeout")
            checkPositive(exec.stopTimeout, at: base + ".stop-timeout")
            if exec.logRotateSize < 0 {
                error("must not be negative, got \(exec.logRotateSize)", at: base + ".log-rotate-size")
            }
            if exec.start == nil, exec.stop == nil {
                warning("exec resource \(resource.name) has neither a start nor a stop script and does nothing", at: base)
            }
            if let start = exec.start { checkFileExists(start, at: base + ".start", what: "start script", executable: true) }
            if let stop = exec.stop { checkFileExists(stop, at: base + ".stop", what: "stop script", executable: true) }
        case .fip(let fip):
            if let problem = IPAddressSyntax.problemWithAddress(fip.address, prefixRequired: false) {
                error(problem, at: base + ".address")
            }
            checkInterface(fip.interface, at: base + ".interface")
            if let count = fip.announceCount, !(1...100).contains(count) {
                error("must be from 1 to 100, got \(count)", at: base + ".announce-count")
            }
            if let interval = fip.announceInterval, interval < .milliseconds(10) || interval > .seconds(10) {
                error("must be from 10ms to 10s, got \(interval.configText)", at: base + ".announce-interval")
            }
            if let wait = fip.probeWait, wait < .milliseconds(20) || wait > .seconds(10) {
                error("must be from 20ms to 10s (force: true skips the probe), got \(wait.configText)", at: base + ".probe-wait")
            }
        case .vip(let vip):
            if let problem = IPAddressSyntax.problemWithAddress(vip.address, prefixRequired: false) {
                error(problem, at: base + ".address")
            }
            checkInterface(vip.interface, at: base + ".interface")
            if vip.ripInterval < .seconds(1) || vip.ripInterval > .seconds(3600) {
                error("must be from 1s to 1h, got \(vip.ripInterval.configText)", at: base + ".rip-interval")
            }
            if !(1...15).contains(vip.ripMetric) {
                error("RIP metrics are 1 to 15 (16 means unreachable), got \(vip.ripMetric)", at: base + ".rip-metric")
            }
            let isV6 = vip.address.contains(":")
            if let version = vip.ripVersion, (version == .ng) != isV6 {
                error(
                    isV6
                        ? "an IPv6 address is advertised with RIPng: use rip-version: ng"
                        : "RIPng carries IPv6 only; use rip-version 1 or 2",
                    at: base + ".rip-version")
            }
            if let destination = vip.ripDestination,
                IPAddressSyntax.problemWithAddress(destination, prefixRequired: false) != nil
                    || destination.contains("/")
            {
                error("expected an IP address without prefix, got \"\(destination)\"", at: base + ".rip-destination")
            }
        case .disk(let disk):
            if disk.filesystem == "zfs" {
                error(
                    "a ZFS pool is a volmgr resource (manager: zfs): importing the pool mounts its datasets",
                    at: base + ".filesystem")
            } else if !ConfigValidator.diskFilesystems.contains(disk.filesystem) {
                error(
                    "unknown file system \"\(ConfigReader.clip(disk.filesystem))\"\(Suggestion.didYouMean(disk.filesystem, in: ConfigValidator.diskFilesystems)); expected one of \(ConfigValidator.diskFilesystems.listed)",
                    at: base + ".filesystem")
            }
            checkDevice(disk.device, at: base + ".device")
            checkMount(disk.mount, at: base)
            if !(1...9999).contains(disk.fsckInterval) {
                error("must be from 1 to 9999 mounts, got \(disk.fsckInterval)", at: base + ".fsck-interval")
            }
            checkTimeout(disk.fsckTimeout, at: base + ".fsck-timeout")
        case .nas(let nas):
            checkHost(nas.server, at: base + ".server")
            checkAbsolute(nas.share, at: base + ".share")
            checkMount(nas.mount, at: base)
            if !ConfigValidator.nasFilesystems.contains(nas.filesystem) {
                error(
                    "expected one of \(ConfigValidator.nasFilesystems.listed), got \"\(ConfigReader.clip(nas.filesystem))\"",
                    at: base + ".filesystem")
            }
        case .volmgr(let volume):
            checkNotEmpty(volume.volume, at: base + ".volume")
            if volume.manager == .lvm, volume.volume.contains("/") {
                error(
                    "expected a volume group name (e.g. vg_data), got \"\(ConfigReader.clip(volume.volume))\"",
                    at: base + ".volume")
            }
            for (value, key) in [(volume.activationRetries, "activation-retries"), (volume.deactivationRetries, "deactivation-retries")]
            where !ConfigValidator.countRange.contains(value) {
                error("must be from 0 to 99, got \(value)", at: base + "." + key)
            }
        case .vm(let vm):
            checkNotEmpty(vm.vmName, at: base + ".vm-name")
        case .ddns(let ddns):
            if !NameSyntax.isLowercaseHostname(ddns.hostname.lowercased()) {
                error("\"\(ConfigReader.clip(ddns.hostname))\" is not a valid host name", at: base + ".hostname")
            }
            checkHost(ddns.server, at: base + ".server")
            if ddns.ttl < 0 { error("must not be negative, got \(ddns.ttl)", at: base + ".ttl") }
        }
    }

    mutating func checkInterface(_ interface: String?, at path: String) {
        guard let interface else { return }
        if interface.isEmpty || interface.count > 15 || interface.contains(where: { $0.isWhitespace || $0 == "/" }) {
            error("\"\(ConfigReader.clip(interface))\" is not a network interface name", at: path)
        }
    }

    /// A device path (absolute), `UUID=…` or `LABEL=…` with something after the `=`.
    mutating func checkDevice(_ device: String, at keyPath: String) {
        for prefix in ["UUID=", "LABEL="] where device.hasPrefix(prefix) {
            if device.count == prefix.count { error("\(prefix) needs a value, e.g. \(prefix)data", at: keyPath) }
            return
        }
        checkAbsolute(device, at: keyPath)
    }

    mutating func checkMount(_ mount: MountSettings, at base: String) {
        checkAbsolute(mount.mountPoint, at: base + ".mount-point")
        if mount.mountPoint == "/" { error("the root file system cannot be a cluster mount point", at: base + ".mount-point") }
        checkNotEmpty(mount.options, at: base + ".mount-options")
        if mount.options.contains(where: \.isWhitespace) {
            error("mount options are one comma-separated word, e.g. rw,noatime", at: base + ".mount-options")
        }
        checkTimeout(mount.mountTimeout, at: base + ".mount-timeout")
        checkTimeout(mount.unmountTimeout, at: base + ".unmount-timeout")
        for (value, key) in [(mount.mountRetries, "mount-retries"), (mount.unmountRetries, "unmount-retries")]
        where !ConfigValidator.countRange.contains(value) {
            error("must be from 0 to 99, got \(value)", at: base + "." + key)
        }
        if mount.unmountInterval < .zero || mount.unmountInterval > .seconds(3600) {
            error("must be from 0s to 1h, got \(mount.unmountInterval.configText)", at: base + ".unmount-interval")
        }
    }

    /// A command's time limit: from 1 s to a day.
    mutating func checkTimeout(_ timeout: Duration, at keyPath: String) {
        if timeout < .seconds(1) || timeout > .seconds(86400) {
            error("must be from 1s to 24h, got \(timeout.configText)", at: keyPath)
        }
    }

    mutating func checkAbsolute(_ path: String, at keyPath: String) {
        if !path.hasPrefix("/") { error("expected an absolute path, got \"\(ConfigReader.clip(path))\"", at: keyPath) }
    }

    mutating func checkNotEmpty(_ text: String, at keyPath: String) {
        if text.trimmingWhitespace().isEmpty { error("must not be empty", at: keyPath) }
    }

    // MARK: monitors

    mutating func checkMonitors() {
        var names: [(String, String)] = []
        let monitorNames = config.monitors.map(\.name)
        var mtwEdges: [String: [String]] = [:]
        for (index, monitor) in config.monitors.enumerated() {
            let base = sourceMap.monitorPath(index)
            names.append((monitor.name, base + ".name"))
            checkObjectName(monitor.name, at: base + ".name")
            checkPositive(monitor.interval, at: base + ".interval")
            checkPositive(monitor.timeout, at: base + ".timeout")
            checkCount(monitor.retries, at: base + ".retries", range: 0...999)
            checkNotNegative(monitor.firstWait, at: base + ".first-wait")
            if !(-20...19).contains(monitor.nice) {
                error("nice must be from -20 to 19, got \(monitor.nice)", at: base + ".nice")
            }
            checkMonitorTarget(monitor, at: base)
            if let servers = monitor.servers {
                if servers.isEmpty { error("the monitor runs on no server; leave servers out to run it on all", at: base + ".servers") }
                for (serverIndex, server) in servers.enumerated() {
                    checkServerReference(server, at: "\(base).servers[\(serverIndex)]", context: "the monitor's servers")
                }
            }
            checkRecovery(monitor, at: base)
            checkParameters(monitor, at: base, monitorNames: monitorNames)
            if monitor.type == .mtw { mtwEdges[monitor.name] = monitor.list("monitors") ?? [] }
            if monitor.type == .upsw { checkUPSMonitor(monitor, at: base) }
        }
        checkDuplicates(names, what: "monitor")
        for cycle in Validator.cycles(order: monitorNames, edges: mtwEdges) {
            guard let index = config.monitors.firstIndex(where: { $0.name == cycle[0] }) else { continue }
            error("mtw cycle: \(cycle.joined(separator: " → "))", at: sourceMap.monitorPath(index) + ".monitors")
        }
    }

    mutating func checkMonitorTarget(_ monitor: MonitorConfig, at base: String) {
        let type = monitor.type
        guard let target = monitor.target else {
            if let required = type.requiredTargetType {
                error("missing required key (the \(required.rawValue) resource a \(type.rawValue) monitor watches)", at: base + ".target")
            } else if monitor.timing == .active {
                error("timing active needs target: (the resource whose activity starts the monitor)", at: base + ".timing")
            }
            return
        }
        if type.monitorsOnlyWhileActive, monitor.timing == .always {
            error("\(type.rawValue) monitors watch their target only while it is active; timing must be active", at: base + ".timing")
        }
        guard let (_, resource) = config.resource(named: target) else {
            if !sourceMap.droppedNames.contains(target) {
                let resourceNames = config.groups.flatMap { $0.resources.map(\.name) }
                error(
                    "unknown resource \"\(ConfigReader.clip(target))\"\(Suggestion.didYouMean(target, in: resourceNames)); resources are: \(resourceNames.listed)",
                    at: base + ".target")
            }
            return
        }
        if let required = type.requiredTargetType, resource.type != required {
            error(
                "a \(type.rawValue) monitor watches a \(required.rawValue) resource, but \(target) has type \(resource.type.rawValue)",
                at: base + ".target")
        } else if type == .pidw, case .exec(let exec) = resource.settings, exec.startMode != .async {
            error(
                "pidw watches the process of an asynchronous start script, but \(target) has start-mode sync; set start-mode: async on \(target)",
                at: base + ".target")
        }
    }

    /// upsw: names that go into upsd protocol lines, and credentials for the power-off command.
    mutating func checkUPSMonitor(_ monitor: MonitorConfig, at base: String) {
        for key in ["ups", "power-off-command", "user"] {
            guard let value = monitor.string(key) else { continue }
            if !Self.isNUTWord(value) {
                error(
                    "\"\(ConfigReader.clip(value))\" is not a NUT name (letters, digits, '.', '_', '-', at most 64)", at: "\(base).\(key)")
            }
        }
        if monitor.string("power-off-command") != "none", monitor.string("user") == nil || monitor.string("password-file") == nil {
            error(
                "the power-off command needs user and password-file (upsd runs instant commands only for a user of upsd.users with instcmds); or set power-off-command: none",
                at: base + ".power-off-command")
        }
        if let grace = monitor.duration("on-battery-grace") { checkNotNegative(grace, at: base + ".on-battery-grace") }
    }

    /// A UPS, command or user name as NUT writes them: nothing that could split a protocol line.
    static func isNUTWord(_ text: String) -> Bool {
        !text.isEmpty && text.count <= 64
            && text.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "." || $0 == "_" || $0 == "-") }
    }

    /// Plain SQL identifiers only: the name goes into SQL text.
    static func isSQLIdentifier(_ name: String) -> Bool {
        guard let first = name.first, name.count <= 63, first.isASCII, first.isLetter || first == "_" else { return false }
        return name.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }
    }

    mutating func checkRecovery(_ monitor: MonitorConfig, at base: String) {
        let recovery = monitor.recovery
        let path = base + ".recovery"
        switch recovery.target {
        case .group(let name):
            if !isKnownOrDropped(name, in: groupNames) {
                error("unknown group \"\(ConfigReader.clip(name))\"; groups are: \(groupNames.listed)", at: path + ".target")
            }
        case .resource(let name):
            if config.resource(named: name) == nil, !sourceMap.droppedNames.contains(name) {
                error("unknown resource \"\(ConfigReader.clip(name))\"", at: path + ".target")
            }
        case .allGroups, .localServer:
            break
        }
        checkCount(recovery.scriptCount, at: path + ".script-count")
        checkCount(recovery.reactivations, at: path + ".reactivations")
        checkCount(recovery.failovers, at: path + ".failovers")
        checkPositive(recovery.scriptTimeout, at: path + ".script-timeout")
        checkNotNegative(recovery.resetCountersAfter, at: path + ".reset-counters-after")
        checkFinalAction(
            recovery.finalAction, allowed: ConfigValidator.monitorFinalActions, at: path + ".final-action",
            context: "for a monitor")
        if recovery.finalAction == .stopResource, recovery.target.resourceName == nil {
            error(
                "final action stop-resource needs a resource as recovery target, not \(recovery.target.configText)",
                at: path + ".final-action")
        }
        if recovery.finalAction == .stopGroup, recovery.target == .localServer || recovery.target == .allGroups {
            error(
                "final action stop-group needs a group or resource as recovery target, not \(recovery.target.configText)",
                at: path + ".final-action")
        }
        if let script = recovery.script {
            checkFileExists(script, at: path + ".script", what: "recovery script", executable: true)
        } else if recovery.scriptCount > 0 || !recovery.runScriptBefore.isEmpty {
            error("script-count and script-before need script: (the recovery script to run)", at: path + ".script")
        }
        if recovery.target == .localServer {
            for (key, value) in [("reactivations", recovery.reactivations), ("failovers", recovery.failovers)]
            where value > 0 && sourceMap.values[path + "." + key] != nil {
                warning("\(key) does nothing when the recovery target is local-server; only the final action runs", at: path + "." + key)
            }
        }
    }

    mutating func checkParameters(_ monitor: MonitorConfig, at base: String, monitorNames: [String]) {
        let specs = monitor.type.parameterSpecs
        for key in monitor.parameters.keys.sorted() where monitor.type.parameterSpec(key) == nil {
            let suggestion = Suggestion.didYouMean(key, in: specs.map(\.key))
            error("unknown key \"\(key)\" for \(monitor.type.rawValue) monitors\(suggestion)", at: base + "." + key)
        }
        for spec in specs {
            let path = base + "." + spec.key
            guard let value = monitor.parameters[spec.key] ?? spec.defaultValue else {
                if spec.isRequired { error("missing required key (\(spec.summary))", at: path) }
                continue
            }
            checkParameter(value, spec, at: path, monitor: monitor, monitorNames: monitorNames)
        }
    }

    mutating func checkParameter(
        _ value: ConfigValue, _ spec: MonitorParameterSpec, at path: String, monitor: MonitorConfig, monitorNames: [String]
    ) {
        func wrongKind() -> String { "expected \(spec.kind.summary), got \(value)" }
        switch spec.kind {
        case .string:
            guard let text = value.stringValue else { return error(wrongKind(), at: path) }
            if spec.isRequired { checkNotEmpty(text, at: path) }
            if spec.key == "table", !Self.isSQLIdentifier(text) {
                error(
                    "a monitor table name is letters, digits and underscores (not starting with a digit), at most 63; got \"\(ConfigReader.clip(text))\"",
                    at: path)
            }
        case .path:
            guard let text = value.stringValue else { return error(wrongKind(), at: path) }
            checkNotEmpty(text, at: path)
            if spec.key == "script", !text.isEmpty {
                checkFileExists(text, at: path, what: "monitor script", executable: true)
            }
        case .host:
            guard let text = value.stringValue else { return error(wrongKind(), at: path) }
            checkHost(text, at: path)
        case .url:
            guard let text = value.stringValue else { return error(wrongKind(), at: path) }
            checkURL(text, at: path)
        case .int(let range):
            guard let number = value.intValue else { return error(wrongKind(), at: path) }
            if !range.contains(number) {
                error(
                    number < 0 && range.lowerBound >= 0
                        ? "must not be negative, got \(number)"
                        : "must be from \(range.lowerBound) to \(range.upperBound), got \(number)", at: path)
            }
        case .port:
            guard let number = value.intValue else { return error(wrongKind(), at: path) }
            checkPort(number, at: path)
        case .bool:
            if value.boolValue == nil { error(wrongKind(), at: path) }
        case .duration:
            guard let duration = value.durationValue else { return error(wrongKind(), at: path) }
            checkPositive(duration, at: path)
        case .choice(let words):
            guard let text = value.stringValue else { return error(wrongKind(), at: path) }
            if !words.contains(text) {
                error(
                    "expected one of \(words.listed); got \"\(ConfigReader.clip(text))\"\(Suggestion.didYouMean(text, in: words))",
                    at: path)
            }
        case .intChoice(let numbers):
            guard let number = value.intValue else { return error(wrongKind(), at: path) }
            if !numbers.contains(number) {
                error("expected one of \(numbers.map(String.init).listed); got \(number)", at: path)
            }
        case .ipList:
            guard let list = value.listValue else { return error(wrongKind(), at: path) }
            if list.isEmpty { error("needs at least one address", at: path) }
            for (index, address) in list.enumerated() { checkPlainIP(address, at: "\(path)[\(index)]") }
        case .monitorList:
            guard let list = value.listValue else { return error(wrongKind(), at: path) }
            if list.isEmpty { error("needs at least one monitor", at: path) }
            for (index, name) in list.enumerated() {
                let itemPath = "\(path)[\(index)]"
                if name == monitor.name {
                    error("an mtw monitor cannot watch itself", at: itemPath)
                } else if !isKnownOrDropped(name, in: monitorNames) {
                    error(
                        "unknown monitor \"\(ConfigReader.clip(name))\"\(Suggestion.didYouMean(name, in: monitorNames)); monitors are: \(monitorNames.listed)",
                        at: itemPath)
                }
            }
        }
    }

    mutating func checkURL(_ text: String, at path: String) {
        guard let components = URLComponents(string: text),
            let scheme = components.scheme?.lowercased(), scheme == "http" || scheme == "https",
            let host = components.host, !host.isEmpty
        else {
            return error("expected an http:// or https:// URL with a host, got \"\(ConfigReader.clip(text))\"", at: path)
        }
        if let port = components.port { checkPort(port, at: path) }
    }
}
