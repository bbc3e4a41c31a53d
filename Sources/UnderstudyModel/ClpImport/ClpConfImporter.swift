import Foundation

/// Something of a `clp.conf` that has no place in the converted YAML, with its path in the
/// reference's notation (`resource/md@md1`, `monitor/genw@genw1/parameters/foo`) and why.
public struct ClpUnmappedItem: Sendable, Equatable, CustomStringConvertible {
    public var path: String
    public var reason: String
    public var description: String { "\(path): \(reason)" }
}

/// A script the converted configuration names: where it is in the exported config folder
/// (relative to the folder of `clp.conf`) and where it goes (relative to the YAML's folder).
public struct ClpScriptCopy: Sendable, Equatable {
    public var source: String
    public var destination: String
    /// The clp.conf object it belongs to (`resource/exec@exec1`).
    public var owner: String
}

/// The outcome of a conversion.
public struct ClpImportResult: Sendable {
    /// The configuration, ready to be written as `cluster.yaml` (it ends with the unmapped
    /// items as comments).
    public var yaml: String
    /// Everything that was not converted, one item each.
    public var unmapped: [ClpUnmappedItem]
    /// What the converter chose where clp.conf leaves a choice (renamed objects, assumed
    /// values), one line each.
    public var notes: [String]
    /// Scripts to copy next to the YAML.
    public var scripts: [ClpScriptCopy]
}

/// Converts a CLUSTERPRO X / EXPRESSCLUSTER X `clp.conf` into Understudy's YAML. Pure: bytes
/// in, text and a report out; copying scripts and writing files is the caller's.
///
/// The mapping (clp.conf path → YAML key) is documented in docs/clusterpro-import.md.
public enum ClpConfImporter {
    public static func convert(_ data: Data, sourceName: String, date: Date = Date()) throws(ClpImportError) -> ClpImportResult {
        let root = try ClpXML.parse(data)
        guard root.name == "root" else {
            throw ClpImportError(line: root.line, "the root element is <\(root.name)>, not <root>: this is not a clp.conf file")
        }
        var converter = Converter(root: root)
        converter.run()
        return converter.result(sourceName: sourceName, date: date)
    }
}

// MARK: - The converter

private let resourceLayerTypes: Set<String> = ["fip", "vip", "exec", "disk", "nas", "volmgr"]

/// Resource types with a reason why they do not convert.
private let unsupportedResources: [String: String] = [
    "md": "mirror disk resource: Understudy has no data mirroring (use shared storage, or DRBD under a disk resource)",
    "hd": "hybrid disk resource: Understudy has no data mirroring",
    "vm": "virtual machine resource: Understudy's vm type is not run by the daemon yet; add it by hand when it is",
    "ddns": "dynamic DNS resource: Understudy's ddns type is not run by the daemon yet; add it by hand when it is",
    "awsvip": "AWS cloud resource: no Understudy equivalent", "awseip": "AWS cloud resource: no Understudy equivalent",
    "awsdns": "AWS cloud resource: no Understudy equivalent", "azurepp": "Azure cloud resource: no Understudy equivalent",
    "azuredns": "Azure cloud resource: no Understudy equivalent", "azurelb": "Azure cloud resource: no Understudy equivalent",
    "gcvip": "Google Cloud resource: no Understudy equivalent", "gcdns": "Google Cloud resource: no Understudy equivalent",
    "ocvip": "Oracle Cloud resource: no Understudy equivalent",
    "sd": "Windows-only resource (disk resource of EXPRESSCLUSTER for Windows)",
    "cifs": "Windows-only resource (CIFS share)", "regsync": "Windows-only resource (registry synchronisation)",
    "service": "Windows-only resource (Windows service)", "spool": "Windows-only resource (print spooler)",
    "script": "Windows-only resource (script resource)", "vcom": "Windows-only resource (virtual computer name)",
    "vvcom": "Windows-only resource (virtual computer name)",
]

private let unsupportedMonitors: [String: String] = [
    "mdw": "mirror disk monitor: Understudy has no data mirroring", "mdnw": "mirror disk connect monitor: Understudy has no data mirroring",
    "hdw": "hybrid disk monitor: Understudy has no data mirroring", "hdnw": "hybrid disk connect monitor: Understudy has no data mirroring",
    "bmcw": "BMC monitor: Understudy has no BMC support", "vmw": "virtual machine monitor: Understudy's vmw is not run yet",
    "ddnsw": "dynamic DNS monitor: Understudy's ddnsw is not run yet", "db2w": "no Understudy DB2 monitor",
    "sybasew": "no Understudy Sybase monitor", "odbcw": "no Understudy ODBC monitor", "sqlserverw": "Windows-only monitor (SQL Server)",
    "oraclew": "Oracle monitor: Understudy's oraclew is not run yet",
    "ftpw": "no Understudy FTP monitor", "smtpw": "no Understudy SMTP monitor", "pop3w": "no Understudy POP3 monitor",
    "imap4w": "no Understudy IMAP4 monitor", "tuxw": "no Understudy Tuxedo monitor", "wasw": "no Understudy WebSphere monitor",
    "wlsw": "no Understudy WebLogic monitor", "jraw": "no Understudy Java resource monitor",
    "sraw": "no Understudy system resource monitor",
    "psrw": "no Understudy process resource monitor", "lvmw": "no Understudy LVM mirror monitor",
    "servicew": "Windows-only monitor (Windows service)", "regsyncw": "Windows-only monitor", "spoolw": "Windows-only monitor",
    "sdw": "Windows-only monitor (disk resource of EXPRESSCLUSTER for Windows)", "cifsw": "Windows-only monitor",
    "vcomw": "Windows-only monitor",
    "vipw": "not needed: Understudy's vip resource advertises its route (RIP) itself",
    "httpw": "HTTP monitor: its parameters are not converted yet; add an httpw with url: by hand",
    "sambaw": "Samba monitor: its parameters are not converted yet; add a sambaw with share: by hand", "appliw": "Windows-only monitor",
    "mtw": "multi-target monitor: its member list is not converted yet",
]

/// One converted object: its YAML lines (indented for its place) and what it is.
private struct ConvertedResource {
    var name: String
    var type: String
    var lines: [String]
}

private struct ConvertedGroup {
    var name: String
    var lines: [String]
    var resources: [String]
}

private struct Converter {
    let root: ClpXMLElement
    var unmapped: [ClpUnmappedItem] = []
    var notes: [String] = []
    var scripts: [ClpScriptCopy] = []
    /// Leaf paths (and object prefixes) that were converted or reported.
    var consumed: Set<String> = []
    var consumedPrefixes: [String] = []

    var clusterLines: [String] = []
    var serverNames: [String] = []  // converted names, in priority order
    var serverOriginal: [String: String] = [:]  // converted → clp.conf name
    var heartbeatLines: [String] = []
    var npLines: [String] = []
    var groups: [ConvertedGroup] = []
    var resources: [String: ConvertedResource] = [:]  // by converted name
    var resourceGroup: [String: String] = [:]  // converted resource → converted group
    var monitorLines: [String] = []
    var asyncExecs: Set<String> = []
    var renamed: [String: String] = [:]

    init(root: ClpXMLElement) { self.root = root }

    // MARK: paths and consumption

    mutating func take(_ element: ClpXMLElement?, _ path: String) -> String? {
        consumed.insert(path)
        return element?.value.isEmpty == false ? element?.value : nil
    }

    /// The text at `relative` under `element` (whose path is `base`), marked converted.
    mutating func value(_ element: ClpXMLElement, _ base: String, _ relative: String) -> String? {
        take(element.element(at: relative), base + "/" + relative)
    }

    mutating func consumeAll(_ prefix: String) { consumedPrefixes.append(prefix) }

    mutating func report(_ path: String, _ reason: String) {
        unmapped.append(ClpUnmappedItem(path: path, reason: reason))
        consumeAll(path)
    }

    mutating func integer(_ element: ClpXMLElement, _ base: String, _ relative: String) -> Int? {
        guard let text = value(element, base, relative) else { return nil }
        guard let number = Int(text) else {
            unmapped.append(ClpUnmappedItem(path: base + "/" + relative, reason: "\"\(text)\" is not a whole number; left at the default"))
            return nil
        }
        return number
    }

    /// A name as Understudy accepts it (letters, digits, `_`, `-`, `.`; 63 at most).
    mutating func objectName(_ original: String, what: String) -> String {
        var name = String(
            original.unicodeScalars.map { scalar -> Character in
                let ok =
                    (scalar.isASCII && (CharacterSet.alphanumerics.contains(scalar))) || scalar == "_" || scalar == "-" || scalar == "."
                return ok ? Character(scalar) : "_"
            })
        while name.hasPrefix("-") || name.hasPrefix(".") { name = "_" + name.dropFirst() }
        if name.isEmpty { name = "unnamed" }
        if name.count > 63 { name = String(name.prefix(63)) }
        if name == "all-groups" || name == "local-server" { name += "-1" }
        if name != original && renamed[what + original] == nil {
            renamed[what + original] = name
            notes.append("renamed \(what) \"\(original)\" to \"\(name)\" (Understudy names hold letters, digits, _, - and . only)")
        }
        return name
    }

    mutating func serverName(_ original: String) -> String {
        let lower = original.lowercased()
        let name = String(
            lower.unicodeScalars.map {
                ($0.isASCII && CharacterSet.alphanumerics.contains($0)) || $0 == "-" || $0 == "." ? Character($0) : "-"
            })
        if name != original && renamed["server" + original] == nil {
            renamed["server" + original] = name
            notes.append("renamed server \"\(original)\" to \"\(name)\" (server names are lowercase host names)")
        }
        return name
    }

    // MARK: run

    mutating func run() {
        consumeAll("all")
        consumeAll("trekking")
        consumed.insert("webmgr/client/objectnumber")
        consumed.insert("cluster/uuid")
        convertCluster()
        convertServers()
        convertHeartbeats()
        convertNetworkPartition()
        convertResourcesAndGroups()
        convertMonitors()
        reportLeftovers()
    }

    /// The codes of final actions that stop the OS or the machine, shared by `act/action`,
    /// `deact/action` and `emergency/action`: 4 shut down, 5 reboot, 8 sysrq panic, 9
    /// keepalive reset, 11–14 BMC reset, power off, power cycle, NMI. 10 (keepalive panic)
    /// and 15 (I/O fencing) have no equivalent.
    static let osFinalActionCodes = [
        4: "shutdown", 5: "reboot", 8: "panic", 9: "keepalive-reset", 11: "bmc-reset", 12: "bmc-power-off", 13: "bmc-power-cycle",
        14: "bmc-nmi",
    ]

    // MARK: cluster

    mutating func convertCluster() {
        let base = "cluster"
        let cluster = root.child("cluster") ?? ClpXMLElement(name: "cluster")
        let name = value(cluster, base, "name").map { objectName($0, what: "cluster") } ?? "cluster"
        if cluster.string("name") == nil { notes.append("clp.conf has no cluster/name; the cluster is called \"cluster\"") }
        clusterLines.append("  name: \(name)")
        if let comment = value(cluster, base, "comment") { clusterLines.append("  comment: \(yamlScalar(comment))") }
        clusterLines.append("  secret-file: cluster.key                    # HMAC key: `understudy keygen cluster.key`")
        var timing: [String] = []
        let interval = integer(cluster, base, "heartbeat/interval")
        let timeout = integer(cluster, base, "heartbeat/timeout")
        if let interval { timing.append("    heartbeat-interval: \(milliseconds(interval))") }
        if let timeout { timing.append("    heartbeat-timeout: \(milliseconds(timeout))") }
        if !timing.isEmpty { clusterLines += ["  timing:"] + timing }
        if let action = integer(cluster, base, "networkpartition/npaction") {
            // 6 (keepalive panic) and 11 (I/O fencing) have no equivalent.
            let actions = [
                0: "none", 1: "stop-service", 2: "shutdown", 3: "reboot", 4: "panic", 5: "keepalive-reset", 7: "bmc-reset",
                8: "bmc-power-off", 9: "bmc-power-cycle", 10: "bmc-nmi",
            ]
            if let mapped = actions[action] {
                clusterLines += ["  network-partition:", "    action: \(mapped)"]
            } else {
                unmapped.append(
                    ClpUnmappedItem(
                        path: base + "/networkpartition/npaction",
                        reason:
                            "action \(action) (keepalive panic or I/O fencing) has no Understudy equivalent; the default, shutdown, applies"
                    ))
            }
        }
        var recovery: [String] = []
        var alone: [String] = []
        for (tag, word) in [("rscact", "activation"), ("rscdeact", "deactivation"), ("monitor", "monitor")]
        where integer(cluster, base, "survive/" + tag) == 1 {
            alone.append(word)
        }
        if !alone.isEmpty { recovery.append("    suppress-final-action-when-alone: [\(alone.joined(separator: ", "))]") }
        if let pm = root.child("pm") {
            var actions: Set<Int> = []
            for exec in pm.children where exec.name.hasPrefix("exec") {
                if let number = integer(exec, "pm/" + exec.name, "recover") { actions.insert(number) }
            }
            // 7 (keepalive panic) and 12 (I/O fencing) have no equivalent.
            let map = [
                2: "shutdown", 3: "reboot", 5: "panic", 6: "keepalive-reset", 8: "bmc-reset", 9: "bmc-power-off", 10: "bmc-power-cycle",
                11: "bmc-nmi",
            ]
            if let action = actions.first, actions.count == 1, let mapped = map[action] {
                recovery.append("    process-failure-action: \(mapped)")
            } else if !actions.isEmpty {
                unmapped.append(
                    ClpUnmappedItem(
                        path: "pm/exec*/recover",
                        reason:
                            "action \(actions.sorted()) (keepalive panic, I/O fencing, or different actions per process) has no Understudy equivalent; the default, shutdown, applies"
                    ))
            }
        }
        if !recovery.isEmpty { clusterLines += ["  recovery:"] + recovery }
        if let haltp = root.child("haltp") {
            let method = value(haltp, "haltp", "method")
            consumed.insert("haltp/action")
            if method?.lowercased() == "softdog" {
                clusterLines += ["  shutdown-monitor:", "    method: softdog"]
            } else if let method {
                report(
                    "haltp/method",
                    "shutdown monitoring by \(method) has no Understudy equivalent (Understudy arms softdog); shutdown-monitor left at none"
                )
            }
        }
        clusterLines.append("  ports: {control: 29001, heartbeat: 29002, http: 29003}   # CLUSTERPRO's defaults")
    }

    // MARK: servers

    /// Each server's devices: id → (type, info, extra info) and its element path.
    var devices: [String: [String: (type: String, info: String?, path: String)]] = [:]

    mutating func convertServers() {
        let servers = root.children(named: "server")
        let sorted = servers.enumerated().sorted { left, right in
            let l = Int(left.element.string("priority") ?? "") ?? Int.max
            let r = Int(right.element.string("priority") ?? "") ?? Int.max
            return (l, left.offset) < (r, right.offset)
        }.map(\.element)
        for server in sorted {
            guard let original = server.key else { continue }
            let base = "server@\(original)"
            consumed.insert(base + "/priority")
            let name = serverName(original)
            serverNames.append(name)
            serverOriginal[name] = original
            var table: [String: (type: String, info: String?, path: String)] = [:]
            for device in server.children(named: "device") {
                guard let id = device.key else { continue }
                let path = base + "/device@\(id)"
                table[id] = (device.string("type") ?? "", device.string("info") ?? device.string("disk/info"), path)
            }
            devices[name] = table
            if server.string("survive") == "1" {
                report(
                    base + "/survive",
                    "\"do not shut down when multiple activation is detected\" has no Understudy equivalent (Understudy prevents double activation instead)"
                )
            }
        }
        if serverNames.isEmpty {
            notes.append("clp.conf lists no servers; the YAML's servers: list is empty and will not pass config check")
        }
    }

    /// Marks a device of every server converted.
    mutating func useDevice(_ id: String) {
        for server in serverNames {
            if let device = devices[server]?[id] { consumeAll(device.path) }
        }
    }

    // MARK: heartbeats

    mutating func convertHeartbeats() {
        guard let section = root.child("heartbeat") else { return }
        let paths = section.children.filter { $0.name != "types" && $0.key != nil }.enumerated().sorted { left, right in
            let l = Int(left.element.string("priority") ?? "") ?? Int.max
            let r = Int(right.element.string("priority") ?? "") ?? Int.max
            return (l, left.offset) < (r, right.offset)
        }.map(\.element)
        for path in paths {
            guard let original = path.key else { continue }
            let base = "heartbeat/\(path.pathComponent)"
            consumed.insert(base + "/priority")
            let name = objectName(original, what: "heartbeat")
            let deviceID = value(path, base, "device")
            // The servers' devices of this path are converted with it, or explained by its line.
            if let deviceID { useDevice(deviceID) }
            func perServer() -> [(String, String)]? {
                guard let deviceID else { return nil }
                var result: [(String, String)] = []
                for server in serverNames {
                    guard let info = devices[server]?[deviceID]?.info else { return nil }
                    result.append((server, info))
                }
                return result
            }
            switch path.name {
            case "lanhb", "lankhb":
                guard let addresses = perServer() else {
                    report(
                        base,
                        "a LAN heartbeat needs an address for every server (server/device@\(deviceID ?? "?")/info); some server has none")
                    continue
                }
                useDevice(deviceID ?? "")
                if path.name == "lankhb" { notes.append("heartbeat \(original): kernel-mode LAN heartbeat converted to lanhb (UDP)") }
                heartbeatLines += [
                    "  - name: \(name)", "    type: lanhb",
                    "    addresses: {\(addresses.map { "\($0.0): \($0.1)" }.joined(separator: ", "))}",
                ]
            case "diskhb":
                guard let paths = perServer(), let first = paths.first?.1 else {
                    report(base, "a disk heartbeat needs its partition on every server (server/device@\(deviceID ?? "?")/info)")
                    continue
                }
                guard paths.allSatisfy({ $0.1 == first }) else {
                    report(
                        base,
                        "the partition has different paths on the servers (\(paths.map { "\($0.0): \($0.1)" }.joined(separator: ", "))); Understudy's diskhb needs one path on all, e.g. /dev/disk/by-id/…"
                    )
                    continue
                }
                useDevice(deviceID ?? "")
                heartbeatLines += ["  - name: \(name)", "    type: diskhb", "    device: \(yamlScalar(first))"]
                notes.append("heartbeat \(original): prepare \(first) once with `understudy diskhb init` before the first start")
            case "comhb":
                guard let ports = perServer(), ports.count == 2 else {
                    report(base, "a serial heartbeat needs a tty on exactly two servers")
                    continue
                }
                useDevice(deviceID ?? "")
                heartbeatLines += [
                    "  - name: \(name)", "    type: comhb",
                    "    devices: {\(ports.map { "\($0.0): \(yamlScalar($0.1))" }.joined(separator: ", "))}",
                ]
            case "witnesshb":
                guard let host = value(path, base, "host") else {
                    report(base, "a witness heartbeat without a host")
                    continue
                }
                if let deviceID { useDevice(deviceID) }
                heartbeatLines += ["  - name: \(name)", "    type: witnesshb", "    host: \(yamlScalar(host))"]
                if let port = integer(path, base, "port") { heartbeatLines.append("    port: \(port)") }
            case "bmchb":
                report(base, "BMC heartbeat: Understudy has no BMC support")
                if let deviceID { useDevice(deviceID) }
            default:
                report(base, "heartbeat type \(path.name) has no Understudy equivalent")
            }
        }
    }

    // MARK: network partition

    mutating func convertNetworkPartition() {
        guard let section = root.child("networkpartition") else { return }
        let entries = section.children.filter { $0.name != "types" && $0.key != nil }.enumerated().sorted { left, right in
            let l = Int(left.element.string("priority") ?? "") ?? Int.max
            let r = Int(right.element.string("priority") ?? "") ?? Int.max
            return (l, left.offset) < (r, right.offset)
        }.map(\.element)
        for entry in entries {
            guard let original = entry.key else { continue }
            let base = "networkpartition/\(entry.pathComponent)"
            consumed.insert(base + "/priority")
            let name = objectName(original, what: "network partition resource")
            let deviceID = value(entry, base, "device")
            if let deviceID { useDevice(deviceID) }
            switch entry.name {
            case "pingnp":
                var targets: [String] = []
                for group in entry.children(named: "grp") {
                    for list in group.children(named: "list") {
                        if let ip = value(list, "\(base)/\(group.pathComponent)/\(list.pathComponent)", "ip") { targets.append(ip) }
                    }
                }
                guard !targets.isEmpty else {
                    report(base, "a ping network partition resource without target addresses")
                    continue
                }
                if entry.children(named: "grp").count > 1 {
                    notes.append(
                        "network partition \(original): its \(entry.children(named: "grp").count) target groups were merged into one list (a server that reaches none of them loses)"
                    )
                }
                if let deviceID {
                    let users = serverNames.filter { devices[$0]?[deviceID]?.info == "1" }
                    if users.count != serverNames.count && !users.isEmpty {
                        notes.append(
                            "network partition \(original): clp.conf uses it on \(users.joined(separator: ", ")) only; Understudy uses it on every server"
                        )
                    }
                    useDevice(deviceID)
                }
                npLines += ["  - name: \(name)", "    type: pingnp", "    targets: [\(targets.joined(separator: ", "))]"]
            case "httpnp":
                guard let host = value(entry, base, "host") else {
                    report(base, "an HTTP network partition resource without a host")
                    continue
                }
                if let deviceID { useDevice(deviceID) }
                npLines += ["  - name: \(name)", "    type: httpnp", "    host: \(yamlScalar(host))"]
                if let port = integer(entry, base, "port") { npLines.append("    port: \(port)") }
            case "majonp", "majority":
                npLines += ["  - name: \(name)", "    type: majority"]
            case "disknp":
                report(base, "disk network partition resolution has no Understudy equivalent (use pingnp, majority or httpnp)")
                if let deviceID { useDevice(deviceID) }
            default:
                report(base, "network partition type \(entry.name) has no Understudy equivalent")
            }
        }
    }

    // MARK: resources and groups

    mutating func convertResourcesAndGroups() {
        let section = root.child("resource") ?? ClpXMLElement(name: "resource")
        var definitions: [String: ClpXMLElement] = [:]  // "type@name" → element
        for element in section.children where element.name != "types" {
            guard let key = element.key else { continue }
            definitions["\(element.name)@\(key)"] = element
        }
        var placed: Set<String> = []
        let groupElements = root.children(named: "group").enumerated().sorted { left, right in
            let l = Int(left.element.string("gid") ?? "") ?? Int.max
            let r = Int(right.element.string("gid") ?? "") ?? Int.max
            return (l, left.offset) < (r, right.offset)
        }.map(\.element)
        // Converted names of the groups first: stop-after refers to them.
        var groupNames: [String: String] = [:]
        for group in groupElements {
            if let key = group.key { groupNames[key] = objectName(key, what: "group") }
        }
        for group in groupElements {
            guard let original = group.key else { continue }
            let base = "group@\(original)"
            consumed.insert(base + "/gid")
            let members = group.children(named: "resource").compactMap(\.key)
            for member in members {
                consumed.insert(base + "/resource@" + member)
                placed.insert(member)
            }
            if let type = value(group, base, "type"), type != "failover" {
                let why =
                    type == "cluster"
                    ? "management group (WebManager's floating IP): Understudy's web server listens on each server's own addresses"
                    : "group type \(type) has no Understudy equivalent"
                report(base, why)
                for member in members { report("resource/\(member)", "member of \(base), which is not converted") }
                continue
            }
            let name = groupNames[original] ?? original
            var lines = ["  - name: \(name)"]
            if let comment = value(group, base, "comment") { lines.append("    comment: \(yamlScalar(comment))") }
            var policy: [(String, Int)] = []
            for entry in group.children(named: "policy") {
                guard let server = entry.key else { continue }
                policy.append((server, integer(entry, "\(base)/\(entry.pathComponent)", "order") ?? Int.max))
            }
            if !policy.isEmpty {
                lines.append("    servers: [\(policy.sorted { $0.1 < $1.1 }.map { serverName($0.0) }.joined(separator: ", "))]")
            }
            if integer(group, base, "start") == 0 { lines.append("    startup: manual") }
            if integer(group, base, "failover") == 0 { lines.append("    failover: manual") }
            if integer(group, base, "failback") == 1 { lines.append("    failback: auto") }
            switch integer(group, base, "exclusive") {
            case 1: lines.append("    exclusive: normal")
            case 2: lines.append("    exclusive: complete")
            default: break
            }
            if let act = group.element(at: "depend/act"), act.children.contains(where: { !$0.children.isEmpty || !$0.value.isEmpty }) {
                report(base + "/depend/act", "start wait (start after other groups) has no Understudy equivalent; groups start in parallel")
            }
            if let deact = group.element(at: "depend/deact") {
                let waitFor = deact.children(named: "depend").compactMap(\.key).filter { !$0.isEmpty }
                for other in waitFor { consumeAll("\(base)/depend/deact/depend@\(other)") }
                if !waitFor.isEmpty {
                    var when: [String] = []
                    if integer(deact, base + "/depend/deact", "cluster/use") != 0 { when.append("cluster-stop") }
                    if integer(deact, base + "/depend/deact", "server/use") == 1 { when.append("server-stop") }
                    if integer(deact, base + "/depend/deact", "other/use") == 1 { when.append("group-stop") }
                    lines += [
                        "    stop-after:", "      groups: [\(waitFor.map { groupNames[$0] ?? $0 }.joined(separator: ", "))]",
                        "      when: [\(when.joined(separator: ", "))]",
                    ]
                    if let timeout = integer(deact, base + "/depend/deact", "timeout") {
                        lines.append("      timeout: \(seconds(timeout))")
                    }
                }
            }
            var converted: [String] = []
            for member in members {
                let parts = member.split(separator: "@", maxSplits: 1).map(String.init)
                guard parts.count == 2 else {
                    report(base + "/resource@" + member, "not of the form type@name")
                    continue
                }
                guard let definition = definitions[member] else {
                    report(base + "/resource@" + member, "the group names a resource that resource/ does not define")
                    continue
                }
                if let resource = convertResource(definition, type: parts[0], group: original, groupName: name) {
                    resources[resource.name] = resource
                    resourceGroup[resource.name] = name
                    converted.append(resource.name)
                }
            }
            groups.append(ConvertedGroup(name: name, lines: lines, resources: converted))
        }
        for (key, element) in definitions.sorted(by: { $0.key < $1.key }) where !placed.contains(key) {
            report("resource/\(element.pathComponent)", "the resource belongs to no group")
        }
        for group in groups where group.resources.isEmpty {
            notes.append("group \(group.name) has no resource left after conversion; it is left out")
        }
        groups.removeAll { $0.resources.isEmpty }
    }

    /// The converted resource, or nil (reported) when it cannot be converted.
    mutating func convertResource(_ element: ClpXMLElement, type: String, group: String, groupName: String) -> ConvertedResource? {
        guard let original = element.key else { return nil }
        let base = "resource/\(element.pathComponent)"
        if let reason = unsupportedResources[type] {
            report(base, reason)
            return nil
        }
        guard resourceLayerTypes.contains(type) else {
            report(base, "resource type \(type) has no Understudy equivalent")
            return nil
        }
        let name = objectName(original, what: "resource")
        var lines = ["      - name: \(name)", "        type: \(type)"]
        if let comment = value(element, base, "comment") { lines.append("        comment: \(yamlScalar(comment))") }
        let depends = element.children(named: "depend").compactMap(\.key)
        for dependency in depends { consumed.insert(base + "/depend@" + dependency) }
        if !depends.isEmpty {
            let named = depends.filter { !$0.isEmpty }.map { objectName($0, what: "resource") }
            lines.append("        depends: [\(named.joined(separator: ", "))]")
        }
        var activation: [String] = []
        if let retry = integer(element, base, "act/retry") { activation.append("retry: \(retry)") }
        if let failover = integer(element, base, "act/fo") { activation.append("failover: \(failover)") }
        if let action = integer(element, base, "act/action") {
            let map = [0: "none-continue", 1: "none", 2: "stop-group", 3: "stop-cluster-service"].merging(
                Self.osFinalActionCodes, uniquingKeysWith: { $1 })
            if let mapped = map[action] {
                activation.append("final-action: \(mapped)")
            } else {
                unmapped.append(
                    ClpUnmappedItem(
                        path: base + "/act/action",
                        reason: "final action \(action) (keepalive panic or I/O fencing) has no Understudy equivalent; none applies"))
            }
        }
        if !activation.isEmpty { lines.append("        activation: {\(activation.joined(separator: ", "))}") }
        var deactivation: [String] = []
        if let retry = integer(element, base, "deact/retry") { deactivation.append("retry: \(retry)") }
        if let action = integer(element, base, "deact/action") {
            let map = [0: "none-continue", 1: "none"].merging(Self.osFinalActionCodes, uniquingKeysWith: { $1 })
            if let mapped = map[action] {
                deactivation.append("final-action: \(mapped)")
            } else {
                unmapped.append(
                    ClpUnmappedItem(
                        path: base + "/deact/action",
                        reason: "final action \(action) has no Understudy equivalent after a deactivation failure; shutdown applies"))
            }
        }
        if !deactivation.isEmpty { lines.append("        deactivation: {\(deactivation.joined(separator: ", "))}") }
        let parameters = base + "/parameters"
        func parameter(_ relative: String) -> String? { value(element, base, "parameters/" + relative) }
        switch type {
        case "fip", "vip":
            guard let address = parameter("ip") else {
                report(base, "a \(type) resource without parameters/ip")
                return nil
            }
            lines.append("        address: \(address)")
            if type == "fip" {
                if integer(element, base, "parameters/checklinkdown") == 1 || integer(element, base, "parameters/monmii") == 1 {
                    lines.append("        fail-on-link-down: true")
                }
                if integer(element, base, "parameters/forceact") == 1 { lines.append("        force: true") }
            }
            for server in element.children(named: "server") {
                report("\(base)/\(server.pathComponent)", "a per-server setting; Understudy's \(type) has one address for all servers")
            }
        case "exec":
            for (tag, key) in [("act", "start"), ("deact", "stop")] {
                guard let path = parameter("\(tag)/path") else { continue }
                if path.hasPrefix("/") {
                    lines.append("        \(key): \(yamlScalar(path))")
                } else {
                    let file = (path as NSString).lastPathComponent
                    let destination = "scripts/\(groupName)/\(name)/\(file)"
                    lines.append("        \(key): \(yamlScalar(destination))")
                    scripts.append(ClpScriptCopy(source: "scripts/\(group)/\(original)/\(path)", destination: destination, owner: base))
                }
            }
            if let timeout = integer(element, base, "act/timeout") { lines.append("        timeout: \(seconds(timeout))") }
            if let timeout = integer(element, base, "deact/timeout") { lines.append("        stop-timeout: \(seconds(timeout))") }
            if let log = parameter("userlog") { lines.append("        log: \(yamlScalar(log))") }
            consumed.insert(parameters + "/logrotate/use")
            if let size = integer(element, base, "parameters/logrotate/size") { lines.append("        log-rotate-size: \(size)") }
        case "disk":
            let diskType = parameter("disktype") ?? "disk"
            guard ["disk", "lvm", "raw"].contains(diskType) else {
                report(base, "disk type \(diskType) has no Understudy equivalent (disk, lvm and raw convert)")
                return nil
            }
            guard let device = parameter("device") ?? parameter("rawdevice") else {
                report(base, "a disk resource without parameters/device")
                return nil
            }
            let filesystem = diskType == "raw" ? "none" : (parameter("fs") ?? "")
            guard ["ext3", "ext4", "xfs", "btrfs", "none"].contains(filesystem) else {
                report(
                    base,
                    "file system \"\(filesystem)\" has no Understudy equivalent (ext3, ext4, xfs, btrfs and none convert; ZFS is a volmgr pool)"
                )
                return nil
            }
            let mountPoint = parameter("mount/point") ?? (filesystem == "none" ? "/mnt/\(name)" : "")
            guard !mountPoint.isEmpty else {
                report(base, "a disk resource without parameters/mount/point")
                return nil
            }
            lines += [
                "        device: \(yamlScalar(device))", "        filesystem: \(filesystem)",
                "        mount-point: \(yamlScalar(mountPoint))",
            ]
            if let options = parameter("mount/option") { lines.append("        mount-options: \(yamlScalar(options))") }
            if let timeout = integer(element, base, "parameters/mount/timeout") {
                lines.append("        mount-timeout: \(seconds(timeout))")
            }
            if let retry = integer(element, base, "parameters/mount/retry") { lines.append("        mount-retries: \(retry)") }
            if let action = integer(element, base, "parameters/mount/action") {
                lines.append("        fsck-on-mount-failure: \(action == 1)")
            }
            if let timing = integer(element, base, "parameters/fsck/timing") {
                lines.append("        fsck: \([0: "never", 1: "always"][timing] ?? "interval")")
            }
            if let interval = integer(element, base, "parameters/fsck/interval") { lines.append("        fsck-interval: \(interval)") }
            if let options = parameter("fsck/option") { lines.append("        fsck-options: \(yamlScalar(options))") }
            if let timeout = integer(element, base, "parameters/fsck/timeout") { lines.append("        fsck-timeout: \(seconds(timeout))") }
            if let timeout = integer(element, base, "parameters/umount/timeout") {
                lines.append("        unmount-timeout: \(seconds(timeout))")
            }
            if let retry = integer(element, base, "parameters/umount/retry") { lines.append("        unmount-retries: \(retry)") }
            if let interval = integer(element, base, "parameters/umount/interval") {
                lines.append("        unmount-interval: \(seconds(interval))")
            }
            if let action = parameter("umount/action") {
                lines.append("        unmount-busy-action: \(action.lowercased() == "none" ? "none" : "kill")")
            }
        case "nas":
            guard let server = parameter("server") ?? parameter("serverName"), let share = parameter("share") ?? parameter("sharename"),
                let mountPoint = parameter("mount/point")
            else {
                report(base, "a nas resource needs parameters/server, share and mount/point")
                return nil
            }
            lines += [
                "        server: \(yamlScalar(server))", "        share: \(yamlScalar(share))",
                "        mount-point: \(yamlScalar(mountPoint))",
            ]
            if let fs = parameter("fs"), fs == "nfs4" { lines.append("        filesystem: nfs4") }
            if let options = parameter("mount/option") { lines.append("        mount-options: \(yamlScalar(options))") }
        case "volmgr":
            let kind = (parameter("type") ?? "lvm").lowercased()
            let managers = ["lvm": "lvm", "zfspool": "zfs", "zfs": "zfs"]
            guard let manager = managers[kind] else {
                report(base, "volume manager \(kind) has no Understudy equivalent (lvm and zfspool convert)")
                return nil
            }
            guard let volume = parameter("devname") else {
                report(base, "a volmgr resource without parameters/devname")
                return nil
            }
            lines += ["        manager: \(manager)", "        volume: \(yamlScalar(volume))"]
        default:
            break
        }
        return ConvertedResource(name: name, type: type, lines: lines)
    }

    // MARK: monitors

    mutating func convertMonitors() {
        guard let section = root.child("monitor") else { return }
        let groupNames: Set<String> = Set(groups.map(\.name))
        for element in section.children where element.name != "types" {
            guard let original = element.key else { continue }
            let type = element.name
            let base = "monitor/\(element.pathComponent)"
            if let reason = unsupportedMonitors[type] {
                report(base, reason)
                continue
            }
            let supported: Set<String> = [
                "userw", "pidw", "psw", "genw", "ipw", "fipw", "miiw", "diskw", "volmgrw", "psqlw", "mysqlw", "mrw", "nfsw",
            ]
            guard supported.contains(type) else {
                report(base, "monitor type \(type) has no Understudy equivalent")
                continue
            }
            let name = objectName(original, what: "monitor")
            var lines = ["  - name: \(name)", "    type: \(type)"]
            if let comment = value(element, base, "comment") { lines.append("    comment: \(yamlScalar(comment))") }
            var target: String?
            if let targetName = value(element, base, "target") {
                let converted = objectName(targetName, what: "resource")
                guard resources[converted] != nil else {
                    report(base, "its target \(targetName) was not converted")
                    continue
                }
                target = converted
                lines.append("    target: \(converted)")
            }
            if let interval = integer(element, base, "polling/interval") { lines.append("    interval: \(seconds(interval))") }
            if let timeout = integer(element, base, "polling/timeout") { lines.append("    timeout: \(seconds(timeout))") }
            if let retries = integer(element, base, "polling/reconfirmation") { lines.append("    retries: \(retries)") }
            if let wait = integer(element, base, "firstmonwait") { lines.append("    first-wait: \(seconds(wait))") }
            let activeOnly: Set<String> = ["pidw", "fipw", "vipw"]
            if let timing = integer(element, base, "polling/timing"), !activeOnly.contains(type) {
                if timing == 1 {
                    if target != nil {
                        lines.append("    timing: active")
                    } else {
                        notes.append("monitor \(original): active-time monitoring without a target; it monitors always")
                    }
                }
            }
            var servers: [String] = []
            for server in element.element(at: "polling")?.children(named: "servers") ?? [] {
                if let original = value(server, "\(base)/polling/\(server.pathComponent)", "name") { servers.append(serverName(original)) }
            }
            if !servers.isEmpty { lines.append("    servers: [\(servers.joined(separator: ", "))]") }
            if integer(element, base, "emergency/timeout/notreconfirmation/use") == 1 { lines.append("    retry-on-timeout: false") }
            if integer(element, base, "emergency/timeout/notrecovery/use") == 1 { lines.append("    recover-on-timeout: false") }
            // Type-specific keys.
            func parameter(_ relative: String) -> String? { value(element, base, "parameters/" + relative) }
            var missing: String?
            switch type {
            case "userw":
                consumed.insert(base + "/parameters/usehb")
                if let method = parameter("method") {
                    if method.lowercased() == "softdog" {
                        lines.append("    method: softdog")
                    } else {
                        unmapped.append(
                            ClpUnmappedItem(
                                path: base + "/parameters/method",
                                reason: "\(method) has no Understudy equivalent; the user-space check runs without it"))
                    }
                }
            case "pidw":
                guard let target, resources[target]?.type == "exec" else {
                    missing = "target (an exec resource)"
                    break
                }
                asyncExecs.insert(target)
            case "psw":
                guard let process = parameter("processname") else {
                    missing = "parameters/processname"
                    break
                }
                lines.append("    process-name: \(yamlScalar(process))")
                if let count = integer(element, base, "parameters/processnum") { lines.append("    min-count: \(count)") }
            case "genw":
                guard let path = parameter("path") else {
                    missing = "parameters/path"
                    break
                }
                if path.hasPrefix("/") {
                    lines.append("    script: \(yamlScalar(path))")
                } else {
                    let destination = "scripts/monitor.s/\(name)/\((path as NSString).lastPathComponent)"
                    lines.append("    script: \(yamlScalar(destination))")
                    scripts.append(ClpScriptCopy(source: "scripts/monitor.s/\(original)/\(path)", destination: destination, owner: base))
                }
                if let sync = integer(element, base, "parameters/sync"), sync == 0 { lines.append("    mode: async") }
                if let normal = integer(element, base, "parameters/normal") { lines.append("    normal-value: \(normal)") }
                if let log = parameter("userlog") { lines.append("    log: \(yamlScalar(log))") }
                consumed.insert(base + "/parameters/logrotate/use")
                if let size = integer(element, base, "parameters/logrotate/size") { lines.append("    log-rotate-size: \(size)") }
            case "ipw":
                var targets: [String] = []
                for list in element.element(at: "parameters")?.children(named: "list") ?? [] {
                    if let ip = value(list, "\(base)/parameters/\(list.pathComponent)", "ip") { targets.append(ip) }
                }
                guard !targets.isEmpty else {
                    missing = "parameters/list@N/ip"
                    break
                }
                lines.append("    targets: [\(targets.joined(separator: ", "))]")
            case "fipw":
                if integer(element, base, "parameters/monmii") == 1 { lines.append("    monitor-link: true") }
            case "miiw":
                guard let interface = parameter("object") else {
                    missing = "parameters/object"
                    break
                }
                lines.append("    interface: \(yamlScalar(interface))")
                for server in element.children(named: "server") {
                    report(
                        "\(base)/\(server.pathComponent)",
                        "a per-server interface; Understudy's miiw watches one interface name on all servers")
                }
            case "diskw":
                guard let device = parameter("object") else {
                    missing = "parameters/object"
                    break
                }
                lines.append("    device: \(yamlScalar(device))")
                if let method = parameter("method") {
                    let key = method.lowercased().replacingOccurrences(of: " ", with: "")
                    let methods = [
                        "read": "read", "read(o_direct)": "read-direct", "tur": "tur", "tur(generic)": "tur", "tur(legacy)": "tur",
                        "write(file)": "write-file",
                    ]
                    if let mapped = methods[key] {
                        lines.append("    method: \(mapped)")
                    } else {
                        unmapped.append(
                            ClpUnmappedItem(
                                path: base + "/parameters/method",
                                reason: "method \(method) has no Understudy equivalent; read-direct applies"))
                    }
                }
                if let size = integer(element, base, "parameters/size") { lines.append("    size: \(size)") }
            case "volmgrw":
                guard let volume = parameter("devname") else {
                    missing = "parameters/devname"
                    break
                }
                var manager = "lvm"
                if let kind = parameter("type")?.lowercased(), kind.hasPrefix("zfs") { manager = "zfs" }
                lines += ["    manager: \(manager)", "    volume: \(yamlScalar(volume))"]
            case "psqlw", "mysqlw":
                guard let database = parameter("database") else {
                    missing = "parameters/database"
                    break
                }
                lines.append("    database: \(yamlScalar(database))")
                if let user = parameter("username") ?? parameter("user") { lines.append("    user: \(yamlScalar(user))") }
                if let port = integer(element, base, "parameters/port") { lines.append("    port: \(port)") }
                if let table = parameter("table") { lines.append("    table: \(yamlScalar(table))") }
                if let host = parameter("host") { lines.append("    host: \(yamlScalar(host))") }
                if let code = integer(element, base, "parameters/docreatedrop") {
                    // NEC's encoding: 3 = level 1 (select), 0 = level 2 (update/select), 1 = level 3 (create/drop).
                    if let level = [3: 1, 0: 2, 1: 3][code] {
                        lines.append("    level: \(level)")
                    } else {
                        unmapped.append(
                            ClpUnmappedItem(
                                path: base + "/parameters/docreatedrop",
                                reason: "monitor level \(code) has no Understudy equivalent; level 2 applies"))
                    }
                }
                if element.element(at: "parameters/password") != nil {
                    report(
                        base + "/parameters/password",
                        "passwords are stored encrypted in clp.conf; write the password to a file and set password-file")
                }
                if type == "mysqlw" && parameter("username") == nil && parameter("user") == nil { missing = "parameters/username" }
            default:
                break
            }
            if let missing {
                report(base, "required \(missing) is missing or unusable; the monitor is left out")
                continue
            }
            // Recovery.
            var recovery: [String] = []
            let relationType = value(element, base, "relation/type")?.lowercased()
            let relationName = value(element, base, "relation/name")
            var recoveryTarget: String?
            switch relationType {
            case "cls"?:
                recoveryTarget = "local-server"
            case "grp"?:
                if let relationName {
                    let converted = objectName(relationName, what: "group")
                    if groupNames.contains(converted) { recoveryTarget = converted }
                }
            case "rsc"?:
                if let relationName {
                    let converted = objectName(relationName, what: "resource")
                    if resources[converted] != nil { recoveryTarget = converted }
                }
            case "allgrp"?:
                recoveryTarget = "all-groups"
            default:
                if relationName == "All Groups" || relationName == "AllGroups" { recoveryTarget = "all-groups" }
            }
            if recoveryTarget == nil {
                if relationType != nil || relationName != nil {
                    report(
                        base,
                        "its recovery target (\(relationType ?? "?") \(relationName ?? "?")) was not converted; the monitor is left out")
                    continue
                }
                if target == nil && type != "userw" {
                    recoveryTarget = "local-server"
                    notes.append("monitor \(original): no recovery target in clp.conf; local-server assumed")
                }
            }
            if let recoveryTarget { recovery.append("target: \(recoveryTarget)") }
            let local = recoveryTarget == "local-server" || (recoveryTarget == nil && type == "userw")
            if let restart = integer(element, base, "emergency/threshold/restart"), !local { recovery.append("reactivations: \(restart)") }
            if let failover = integer(element, base, "emergency/threshold/fo"), !local { recovery.append("failovers: \(failover)") }
            if let action = integer(element, base, "emergency/action") {
                let map = [0: "none", 1: "none", 2: "stop-group", 3: "stop-cluster-service", 16: "stop-resource"].merging(
                    Self.osFinalActionCodes, uniquingKeysWith: { $1 })
                if var mapped = map[action] {
                    let resourceTarget = recoveryTarget.map { resources[$0] != nil } ?? (target != nil)
                    if (mapped == "stop-resource" && !resourceTarget) || (mapped == "stop-group" && local) {
                        unmapped.append(
                            ClpUnmappedItem(
                                path: base + "/emergency/action",
                                reason: "final action \(mapped) needs another recovery target; none applies"))
                        mapped = "none"
                    }
                    recovery.append("final-action: \(mapped)")
                } else {
                    unmapped.append(
                        ClpUnmappedItem(
                            path: base + "/emergency/action",
                            reason: "final action \(action) (keepalive panic or I/O fencing) has no Understudy equivalent; none applies"))
                }
            }
            if let path = value(element, base, "emergency/preaction/path") {
                // The script run before recovery steps (CLUSTERPRO: scripts/monitor.s/<monitor>/).
                let script: String
                if path.hasPrefix("/") {
                    script = path
                } else {
                    script = "scripts/monitor.s/\(name)/\((path as NSString).lastPathComponent)"
                    scripts.append(ClpScriptCopy(source: "scripts/monitor.s/\(original)/\(path)", destination: script, owner: base))
                }
                recovery.append("script: \(yamlScalar(script))")
                var before: [String] = []
                if integer(element, base, "emergency/preaction/userestart") == 1 { before.append("reactivation") }
                if integer(element, base, "emergency/preaction/usefailover") == 1 { before.append("failover") }
                if integer(element, base, "emergency/preaction/use") == 1 { before.append("final-action") }
                if !before.isEmpty { recovery.append("script-before: [\(before.joined(separator: ", "))]") }
                if let timeout = integer(element, base, "emergency/preaction/timeout") {
                    recovery.append("script-timeout: \(seconds(timeout))")
                }
            }
            if !recovery.isEmpty { lines.append("    recovery: {\(recovery.joined(separator: ", "))}") }
            monitorLines += lines
        }
    }

    // MARK: leftovers

    /// Every leaf with a value that no rule converted, one line each.
    mutating func reportLeftovers() {
        var leftovers: [(String, ClpXMLElement)] = []
        func walk(_ element: ClpXMLElement, _ path: String) {
            for child in element.children {
                let childPath = path.isEmpty ? child.pathComponent : path + "/" + child.pathComponent
                if child.children.isEmpty {
                    if child.name == "types" { continue }
                    if child.value.isEmpty && child.key == nil { continue }
                    leftovers.append((childPath, child))
                } else {
                    walk(child, childPath)
                }
            }
        }
        walk(root, "")
        var reportedDevices: Set<String> = []
        for (path, element) in leftovers {
            if consumed.contains(path) { continue }
            if consumedPrefixes.contains(where: { path == $0 || path.hasPrefix($0 + "/") }) { continue }
            let reason: String
            if path.hasPrefix("server@"), let range = path.range(of: #"^server@[^/]+/device@[^/]+"#, options: .regularExpression) {
                // One line per device, not per element of it.
                let device = String(path[range])
                guard reportedDevices.insert(device).inserted else { continue }
                let parts = device.split(separator: "/").map { String($0.split(separator: "@", maxSplits: 1).last ?? "") }
                let info = root.child("server", key: parts[0])?.child("device", key: parts[1])
                let kind = info?.string("type") ?? "?"
                let why =
                    kind == "mdc"
                    ? "mirror disk connect: Understudy has no data mirroring"
                    : "a server device (\(kind)) that no converted heartbeat or network partition resource uses"
                unmapped.append(ClpUnmappedItem(path: device + (info?.string("info").map { " = \($0)" } ?? ""), reason: why))
                continue
            }
            if path.hasPrefix("webmgr/") || path.hasPrefix("webalert/") || path.hasPrefix("alertservice/") {
                reason = "WebManager/alert setting: configure Understudy's web server and alerts: in the YAML (docs/configuration.md)"
            } else if path.hasPrefix("messages/") || path.hasPrefix("cluster/messages") || path.hasPrefix("cluster/mail")
                || path.hasPrefix("cluster/trap")
            {
                reason = "alert destination setting: write an alerts: section by hand (docs/configuration.md#alerts)"
            } else {
                reason = "no Understudy equivalent known to this converter"
            }
            let shown = element.value.isEmpty ? "" : " = \(element.value)"
            unmapped.append(ClpUnmappedItem(path: path + shown, reason: reason))
        }
    }

    // MARK: output

    func result(sourceName: String, date: Date) -> ClpImportResult {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withFullDate]
        var lines = [
            "# Converted from \(sourceName) by `understudy config import` on \(formatter.string(from: date)).",
            "# Review it, then check it with `understudy config check`. What did not convert is listed at the end.",
            "",
            "cluster:",
        ]
        lines += clusterLines
        lines +=
            ["", "servers:"]
            + serverNames.map { name in
                serverOriginal[name] == name
                    ? "  - name: \(name)" : "  - name: \(name)           # \(serverOriginal[name] ?? name) in clp.conf"
            }
        if !heartbeatLines.isEmpty { lines += ["", "heartbeats:"] + heartbeatLines }
        if !npLines.isEmpty { lines += ["", "network-partition:"] + npLines }
        if !groups.isEmpty {
            lines += ["", "groups:"]
            for group in groups {
                lines += group.lines + ["    resources:"]
                for name in group.resources {
                    guard var resource = resources[name] else { continue }
                    if resource.type == "exec" && asyncExecs.contains(name) {
                        resource.lines.insert("        start-mode: async                 # a pidw watches it", at: 2)
                    }
                    lines += resource.lines
                }
            }
        }
        if !monitorLines.isEmpty { lines += ["", "monitors:"] + monitorLines }
        if !notes.isEmpty {
            lines += ["", "# Choices the converter made:"] + notes.map { "#   \($0)" }
        }
        if unmapped.isEmpty {
            lines += ["", "# Everything in \(sourceName) was converted."]
        } else {
            lines += ["", "# Not converted (\(unmapped.count)), as clp.conf path: reason:"] + unmapped.map { "#   \($0)" }
        }
        return ClpImportResult(yaml: lines.joined(separator: "\n") + "\n", unmapped: unmapped, notes: notes, scripts: scripts)
    }
}

// MARK: - Formatting

/// A YAML scalar: plain when it cannot be misread, else double-quoted.
private func yamlScalar(_ text: String) -> String {
    let plain = text.range(of: #"^[A-Za-z0-9_/][A-Za-z0-9_./=,+-]*$"#, options: .regularExpression) != nil
    let reserved = ["true", "false", "yes", "no", "on", "off", "null", "y", "n"].contains(text.lowercased())
    if plain && !reserved && Double(text) == nil && Int(text) == nil { return text }
    var escaped = ""
    for scalar in text.unicodeScalars {
        switch scalar {
        case "\\": escaped += "\\\\"
        case "\"": escaped += "\\\""
        case "\n": escaped += "\\n"
        case "\t": escaped += "\\t"
        default:
            if scalar.value < 0x20 { escaped += String(format: "\\x%02X", scalar.value) } else { escaped.unicodeScalars.append(scalar) }
        }
    }
    return "\"\(escaped)\""
}

private func milliseconds(_ value: Int) -> String { value % 1000 == 0 ? "\(value / 1000)s" : "\(value)ms" }
private func seconds(_ value: Int) -> String { "\(value)s" }
