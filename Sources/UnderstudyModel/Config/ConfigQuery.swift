/// `clpcfget -e PATH` / `-g PATH`: questions about the configuration in the element paths of
/// CLUSTERPRO's clp.conf (`/root/monitor/types`, `/root/monitor/genw@name/target` …), the
/// subset EXPRESSCLUSTER's Prometheus exporters and scripts ask (integration-contracts §2,
/// docs/commands.md). A path that names nothing here answers nothing (exit 0): the exporters
/// ask for mirror disks (`/root/resource/md`), which Understudy does not have, and then for a
/// parameter of the empty name.
public enum ConfigQuery {
    public struct BadPath: Error, CustomStringConvertible {
        public var description: String
    }

    /// One element of a path: `genw@mon1` is element `genw` named `mon1`.
    struct Step: Equatable {
        var element: String
        var name: String?
    }

    static func steps(_ path: String) throws(BadPath) -> [Step] {
        var trimmed = Substring(path)
        if trimmed.count > 1, trimmed.hasSuffix("/") { trimmed = trimmed.dropLast() }
        let parts = trimmed.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count >= 2, parts[0].isEmpty, parts[1] == "root" else {
            throw BadPath(description: "\(path.prefix(200)): a path starts with /root (as /root/monitor/types)")
        }
        guard !parts.dropFirst(2).contains(where: \.isEmpty) else {
            throw BadPath(description: "\(path.prefix(200)): empty element in the path")
        }
        return parts.dropFirst(2).map { part in
            guard let at = part.firstIndex(of: "@") else { return Step(element: String(part), name: nil) }
            return Step(element: String(part[..<at]), name: String(part[part.index(after: at)...]))
        }
    }

    /// `-e PATH`: the names of the elements at PATH, one per line (clp.conf's `name`
    /// attributes), in configuration order.
    public static func enumerate(_ path: String, in config: ClusterConfig) throws(BadPath) -> [String] {
        let steps = try steps(path)
        guard steps.allSatisfy({ $0.name == nil }) else { return [] }
        let elements = steps.map(\.element)
        if elements == ["server"] { return config.serverNames }
        if elements == ["group"] { return config.groups.map(\.name) }
        guard elements.count == 2 else { return [] }
        switch (elements[0], elements[1]) {
        case ("monitor", "types"): return unique(config.monitors.map(\.type.rawValue))
        case ("monitor", let type): return config.monitors.filter { $0.type.rawValue == type }.map(\.name)
        case ("resource", "types"): return unique(resources(config).map(\.type.rawValue))
        case ("resource", let type): return resources(config).filter { $0.type.rawValue == type }.map(\.name)
        case ("heartbeat", "types"): return unique(config.heartbeats.map(\.typeName))
        case ("heartbeat", let type): return config.heartbeats.filter { $0.typeName == type }.map(\.name)
        default: return []
        }
    }

    /// `-g PATH`: the value of the element at PATH (nothing when the configuration has no
    /// such element or Understudy does not model it).
    public static func get(_ path: String, in config: ClusterConfig) throws(BadPath) -> String? {
        let steps = try steps(path)
        let e = steps.map(\.element)
        let n = steps.map(\.name)
        switch e.count {
        case 2:
            switch (e[0], e[1], n[0], n[1]) {
            case ("cluster", "name", nil, nil): return config.cluster.name
            case ("cluster", "comment", nil, nil): return config.cluster.comment
            case ("server", "priority", let server?, nil): return config.serverNames.firstIndex(of: server).map(String.init)
            case ("server", "comment", let server?, nil): return config.server(named: server)?.comment
            case ("group", "comment", let group?, nil): return config.group(named: group)?.comment
            default: return nil
            }
        case 3:
            switch (e[0], e[1], e[2], n[0], n[1], n[2]) {
            case ("cluster", "heartbeat", "interval", nil, nil, nil): return millis(config.cluster.timing.heartbeatInterval)
            case ("cluster", "heartbeat", "timeout", nil, nil, nil): return millis(config.cluster.timing.heartbeatTimeout)
            case ("monitor", let type, "comment", nil, let name?, nil): return monitor(type, name, in: config)?.comment
            case ("monitor", let type, "target", nil, let name?, nil): return monitor(type, name, in: config)?.target
            case ("resource", let type, "comment", nil, let name?, nil):
                return resources(config).first { $0.name == name && $0.type.rawValue == type }?.comment
            default: return nil
            }
        case 4:
            guard e[0] == "monitor", e[2] == "polling", n[0] == nil, let name = n[1], n[2] == nil, n[3] == nil,
                let monitor = monitor(e[1], name, in: config)
            else { return nil }
            switch e[3] {
            case "interval": return String(monitor.interval.components.seconds)
            case "timeout": return String(monitor.timeout.components.seconds)
            case "retry": return String(monitor.retries)
            default: return nil
            }
        default:
            return nil
        }
    }

    static func monitor(_ type: String, _ name: String, in config: ClusterConfig) -> MonitorConfig? {
        config.monitors.first { $0.name == name && $0.type.rawValue == type }
    }

    /// clp.conf keeps heartbeat times in milliseconds.
    static func millis(_ duration: Duration) -> String {
        String(duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000)
    }

    static func resources(_ config: ClusterConfig) -> [ResourceConfig] { config.groups.flatMap(\.resources) }

    static func unique(_ names: [String]) -> [String] {
        var seen: Set<String> = []
        return names.filter { seen.insert($0).inserted }
    }
}
