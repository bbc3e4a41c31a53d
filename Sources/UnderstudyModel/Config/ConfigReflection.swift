import Foundation

/// How a configuration change reaches the running cluster (reference §9, "reflection
/// methods"), weakest first. A change needs the strongest method of its parts.
public enum ReflectionMethod: Int, Sendable, Codable, Comparable, CaseIterable {
    /// The running cluster takes the new value as it is: comments, scripts, group attributes,
    /// recovery and OS settings, new groups (offline until started).
    case uploadOnly = 0
    /// The changed monitors are stopped and started again with their new settings (the
    /// reference's "suspend/resume"); nothing else is touched.
    case restartMonitors = 1
    /// The affected groups must be stopped on every server first (resources added, removed or
    /// changed, a group removed); applied online once they are stopped.
    case stopStartGroups = 2
    /// The cluster service must stop on every server and start with the new file (servers,
    /// heartbeat paths, network partition resolution, heartbeat timing, ports, cluster name,
    /// key file).
    case restartService = 3
    /// The servers must be rebooted. Kept for the reference's vocabulary; no setting of
    /// this version needs it.
    case reboot = 4

    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.rawValue < rhs.rawValue }

    /// The name shown to operators.
    public var title: String {
        switch self {
        case .uploadOnly: return "upload only"
        case .restartMonitors: return "suspend and resume the changed monitors"
        case .stopStartGroups: return "stop and start the affected groups"
        case .restartService: return "stop and start the cluster service"
        case .reboot: return "shut down and reboot the cluster"
        }
    }

    /// Whether `understudy config apply` can apply it to the running cluster.
    /// `stopStartGroups` only while the groups are stopped everywhere.
    public var appliesOnline: Bool { self <= .stopStartGroups }
}

/// One change between the running configuration and a new one.
public struct ConfigChange: Sendable, Codable, Equatable {
    /// Where: `monitors.web-http.interval`, `groups.web.resources.vip1`, `servers`.
    public var path: String
    /// What changed, for people: `interval: 3s → 1s`, `group web added`.
    public var text: String
    public var method: ReflectionMethod
    /// Groups that must be stopped first (`stopStartGroups`).
    public var groups: [String]
    /// Monitors started again (`restartMonitors`).
    public var monitors: [String]

    public init(path: String, text: String, method: ReflectionMethod, groups: [String] = [], monitors: [String] = []) {
        self.path = path
        self.text = text
        self.method = method
        self.groups = groups
        self.monitors = monitors
    }
}

/// Every change from the running configuration to a new one and the reflection method the
/// whole needs (the strongest of its changes). Codable for the WebManager and the API.
public struct ReflectionReport: Sendable, Codable, Equatable {
    public var changes: [ConfigChange]
    public var method: ReflectionMethod
    /// Groups that must be stopped on every server before the change can be applied.
    public var groupsToStop: [String]
    /// Monitors that restart with new settings.
    public var monitorsToRestart: [String]

    public init(changes: [ConfigChange]) {
        self.changes = changes
        self.method = changes.map(\.method).max() ?? .uploadOnly
        var groups: [String] = []
        var monitors: [String] = []
        for change in changes {
            for group in change.groups where !groups.contains(group) { groups.append(group) }
            for monitor in change.monitors where !monitors.contains(monitor) { monitors.append(monitor) }
        }
        self.groupsToStop = groups
        self.monitorsToRestart = monitors
    }

    public var isEmpty: Bool { changes.isEmpty }

    /// One line: the method and why.
    public var summary: String {
        guard !changes.isEmpty else { return "No change." }
        let strongest = changes.filter { $0.method == method }.map(\.text)
        let shown = strongest.prefix(3).joined(separator: "; ") + (strongest.count > 3 ? "; …" : "")
        var line = "Reflection method: \(method.title) (\(shown))"
        if method == .stopStartGroups { line += "; groups to stop first: " + groupsToStop.joined(separator: ", ") }
        return line + "."
    }

    /// The changes, one per line, with their methods.
    public var lines: [String] {
        changes.map { "\($0.text) [\($0.method.title)]" }
    }
}

/// Compares two configurations (reference §9): which changes, and how each reaches the running
/// cluster. Pure; the daemon, the CLI and the WebManager show its result before applying.
public enum ConfigReflection {
    /// - Parameter changedScripts: files of the configuration's `scripts/` folder whose content
    ///   differs (added, removed or changed), relative to the folder.
    public static func compare(running: ClusterConfig, new: ClusterConfig, changedScripts: [String] = []) -> ReflectionReport {
        let folderOld = folder(of: running)
        let folderNew = folder(of: new)
        var changes: [ConfigChange] = []
        changes += clusterChanges(running, new, folders: (folderOld, folderNew))
        changes += serverChanges(running, new)
        changes += namedChanges(
            "heartbeats", running.heartbeats, new.heartbeats, name: \.name, folders: (folderOld, folderNew)
        ) { path, _, difference in
            ConfigChange(
                path: path, text: "\(path)\(difference.map { ": " + describe($0) } ?? "")",
                method: difference?.path == "comment" ? .uploadOnly : .restartService)
        }
        changes += namedChanges(
            "network-partition", running.networkPartition, new.networkPartition, name: \.name, folders: (folderOld, folderNew)
        ) { path, _, difference in
            ConfigChange(
                path: path, text: "\(path)\(difference.map { ": " + describe($0) } ?? "")",
                method: difference?.path == "comment" ? .uploadOnly : .restartService)
        }
        changes += groupChanges(running, new, folders: (folderOld, folderNew))
        changes += namedChanges("monitors", running.monitors, new.monitors, name: \.name, folders: (folderOld, folderNew)) {
            path, name, difference in
            guard let difference else {
                let added = new.monitors.contains { $0.name == name }
                return ConfigChange(
                    path: path, text: "monitor \(name) \(added ? "added" : "removed")", method: .restartMonitors, monitors: [name])
            }
            if difference.path == "comment" {
                return ConfigChange(path: path, text: "monitor \(name): " + describe(difference), method: .uploadOnly)
            }
            return ConfigChange(
                path: path + "." + difference.path, text: "monitor \(name): " + describe(difference), method: .restartMonitors,
                monitors: [name])
        }
        // The daemon's alert router takes new destinations and routes at once (queues and
        // counters of destinations that stay are kept).
        for difference in differences(running.alerts, new.alerts, folders: (folderOld, folderNew)) {
            changes.append(ConfigChange(path: "alerts." + difference.path, text: "alerts " + describe(difference), method: .uploadOnly))
        }
        changes += fencingChanges(running.fencing, new.fencing, folders: (folderOld, folderNew))
        for script in changedScripts.sorted() {
            changes.append(ConfigChange(path: "scripts/" + script, text: "script \(script) changed", method: .uploadOnly))
        }
        return ReflectionReport(changes: changes)
    }

    static func folder(of config: ClusterConfig) -> String? {
        config.sourcePath.isEmpty ? nil : (config.sourcePath as NSString).deletingLastPathComponent
    }

    static func describe(_ difference: CanonicalForm.Difference) -> String {
        let path = difference.path.isEmpty ? "" : difference.path + ": "
        return path + shorten(difference.before) + " → " + shorten(difference.after)
    }

    static func shorten(_ text: String) -> String {
        let pretty = prettyDuration(text) ?? text
        return pretty.count > 60 ? String(pretty.prefix(57)) + "…" : pretty
    }

    /// `3s0as` → `3s`, `0s500000000000000000as` → `500ms` (the canonical form of a Duration).
    static func prettyDuration(_ text: String) -> String? {
        guard text.hasSuffix("as"), let split = text.firstIndex(of: "s"),
            let seconds = Int64(text[..<split]), let attoseconds = Int64(text[text.index(after: split)...].dropLast(2))
        else { return nil }
        let milliseconds = (Duration.seconds(seconds) + Duration(secondsComponent: 0, attosecondsComponent: attoseconds)).inMilliseconds
        return milliseconds % 1000 == 0 ? "\(milliseconds / 1000)s" : "\(milliseconds)ms"
    }

    // MARK: - Sections

    static func clusterChanges(_ old: ClusterConfig, _ new: ClusterConfig, folders: (String?, String?)) -> [ConfigChange] {
        // Everything the daemon reads where it uses it (the Engine's and the daemon's
        // configuration are replaced together) is upload only; what was bound when the
        // service started (sockets, the key, the failure detector's timing) needs a restart.
        let needsRestart = ["name", "secretFile", "ports", "timing.heartbeatInterval", "timing.heartbeatTimeout"]
        var changes: [ConfigChange] = []
        let differences = differences(old.cluster, new.cluster, folders: folders)
        for difference in differences {
            let restart = needsRestart.contains { difference.path == $0 || difference.path.hasPrefix($0 + ".") }
            changes.append(
                ConfigChange(
                    path: "cluster." + difference.path, text: "cluster " + describe(difference),
                    method: restart ? .restartService : .uploadOnly))
        }
        return changes
    }

    /// `fencing:` is read by the master when it forces a stop, and by each server when it
    /// checks its agents, from the configuration it runs: every change is upload only (the
    /// reference: turning forced stop on is upload only).
    static func fencingChanges(_ old: FencingConfig?, _ new: FencingConfig?, folders: (String?, String?)) -> [ConfigChange] {
        switch (old, new) {
        case (nil, nil):
            return []
        case (nil, let added?):
            let names = added.agents.map(\.name).joined(separator: ", ")
            return [ConfigChange(path: "fencing", text: "fencing added (agents: \(names))", method: .uploadOnly)]
        case (_?, nil):
            return [ConfigChange(path: "fencing", text: "fencing removed", method: .uploadOnly)]
        case (let before?, let after?):
            var settingsBefore = before
            var settingsAfter = after
            settingsBefore.agents = []
            settingsAfter.agents = []
            var changes = differences(settingsBefore, settingsAfter, folders: folders).map { difference in
                ConfigChange(path: "fencing." + difference.path, text: "fencing " + describe(difference), method: .uploadOnly)
            }
            for agent in after.agents where !before.agents.contains(where: { $0.name == agent.name }) {
                changes.append(
                    ConfigChange(path: "fencing.agents.\(agent.name)", text: "fencing agent \(agent.name) added", method: .uploadOnly))
            }
            for agent in before.agents where !after.agents.contains(where: { $0.name == agent.name }) {
                changes.append(
                    ConfigChange(path: "fencing.agents.\(agent.name)", text: "fencing agent \(agent.name) removed", method: .uploadOnly))
            }
            for agent in after.agents {
                guard let previous = before.agents.first(where: { $0.name == agent.name }) else { continue }
                changes += fencingAgentChanges(previous, agent, folders: folders)
            }
            // Agents are tried in order.
            let orderBefore = before.agents.map(\.name).filter { name in after.agents.contains { $0.name == name } }
            let orderAfter = after.agents.map(\.name).filter { name in before.agents.contains { $0.name == name } }
            if orderBefore != orderAfter {
                changes.append(ConfigChange(path: "fencing.agents", text: "fencing agents reordered", method: .uploadOnly))
            }
            return changes
        }
    }

    /// One agent's changes; an IPMI agent's BMCs one server and one field at a time (a whole
    /// map in one line would be cut off before the server that changed).
    static func fencingAgentChanges(_ before: FencingAgentConfig, _ after: FencingAgentConfig, folders: (String?, String?))
        -> [ConfigChange]
    {
        let base = "fencing.agents.\(after.name)"
        func change(_ path: String, _ text: String) -> ConfigChange {
            ConfigChange(path: path, text: "fencing agent \(after.name): " + text, method: .uploadOnly)
        }
        guard case .ipmi(let old) = before.kind, case .ipmi(let new) = after.kind else {
            return differences(before, after, folders: folders).map { change(base + "." + $0.path, describe($0)) }
        }
        var outer = (before, after)
        outer.0.kind = .ipmi(IPMIAgent(action: old.action, interface: old.interface, bmcs: [:]))
        outer.1.kind = .ipmi(IPMIAgent(action: new.action, interface: new.interface, bmcs: [:]))
        var changes = differences(outer.0, outer.1, folders: folders).map { change(base + "." + $0.path, describe($0)) }
        for server in Set(old.bmcs.keys).union(new.bmcs.keys).sorted() {
            let path = base + ".bmc." + server
            switch (old.bmcs[server], new.bmcs[server]) {
            case (nil, _?): changes.append(change(path, "BMC of \(server) added"))
            case (_?, nil): changes.append(change(path, "BMC of \(server) removed"))
            case (let first?, let second?):
                changes += differences(first, second, folders: folders).map {
                    change(path + "." + $0.path, "BMC of \(server) " + describe($0))
                }
            case (nil, nil): break
            }
        }
        return changes
    }

    static func serverChanges(_ old: ClusterConfig, _ new: ClusterConfig) -> [ConfigChange] {
        if old.serverNames != new.serverNames {
            return [
                ConfigChange(
                    path: "servers",
                    text: "servers: \(old.serverNames.joined(separator: ", ")) → \(new.serverNames.joined(separator: ", "))",
                    method: .restartService)
            ]
        }
        return zip(old.servers, new.servers).compactMap { before, after in
            guard before.comment != after.comment else { return nil }
            return ConfigChange(path: "servers.\(after.name).comment", text: "server \(after.name): comment changed", method: .uploadOnly)
        }
    }

    static func groupChanges(_ old: ClusterConfig, _ new: ClusterConfig, folders: (String?, String?)) -> [ConfigChange] {
        var changes: [ConfigChange] = []
        for group in new.groups where old.group(named: group.name) == nil {
            changes.append(
                ConfigChange(path: "groups.\(group.name)", text: "group \(group.name) added (offline until started)", method: .uploadOnly))
        }
        for group in old.groups where new.group(named: group.name) == nil {
            changes.append(
                ConfigChange(
                    path: "groups.\(group.name)", text: "group \(group.name) removed", method: .stopStartGroups, groups: [group.name]))
        }
        for after in new.groups {
            guard let before = old.group(named: after.name) else { continue }
            let name = after.name
            var attributesBefore = before
            var attributesAfter = after
            attributesBefore.resources = []
            attributesAfter.resources = []
            for difference in differences(attributesBefore, attributesAfter, folders: folders) {
                // A server taken out of the policy may be running the group.
                let removedServer =
                    difference.path == "servers" && before.servers.contains { !after.servers.contains($0) }
                changes.append(
                    ConfigChange(
                        path: "groups.\(name).\(difference.path)", text: "group \(name): " + describe(difference),
                        method: removedServer ? .stopStartGroups : .uploadOnly, groups: removedServer ? [name] : []))
            }
            changes += namedChanges(
                "groups.\(name).resources", before.resources, after.resources, name: \.name, folders: folders
            ) { path, resource, difference in
                guard let difference else {
                    let added = after.resources.contains { $0.name == resource }
                    return ConfigChange(
                        path: path, text: "group \(name): resource \(resource) \(added ? "added" : "removed")", method: .stopStartGroups,
                        groups: [name])
                }
                if difference.path == "comment" {
                    return ConfigChange(path: path + ".comment", text: "resource \(resource): comment changed", method: .uploadOnly)
                }
                return ConfigChange(
                    path: path + "." + difference.path, text: "resource \(resource): " + describe(difference), method: .stopStartGroups,
                    groups: [name])
            }
            // Activation order follows list order where `depends:` leaves it to the type.
            let orderBefore = before.resources.map(\.name).filter { name in after.resources.contains { $0.name == name } }
            let orderAfter = after.resources.map(\.name).filter { name in before.resources.contains { $0.name == name } }
            if orderBefore != orderAfter {
                changes.append(
                    ConfigChange(
                        path: "groups.\(name).resources", text: "group \(name): resources reordered", method: .stopStartGroups,
                        groups: [name]))
            }
        }
        return changes
    }

    /// Differences of two values whose strings may hold paths of their configuration's folder.
    static func differences(_ old: Any, _ new: Any, folders: (String?, String?)) -> [CanonicalForm.Difference] {
        // Compared in each one's own folder: a configuration moved to another folder with its
        // scripts is the same configuration.
        let differences = CanonicalForm.differences(old, new, folder: folders.0)
        guard folders.0 != folders.1 else { return differences }
        return differences.filter { difference in
            CanonicalForm.render(value(at: difference.path, in: old) ?? "", folder: folders.0)
                != CanonicalForm.render(value(at: difference.path, in: new) ?? "", folder: folders.1)
        }
    }

    static func value(at path: String, in root: Any) -> Any? {
        var current: Any = root
        for label in path.split(separator: ".") where !label.isEmpty {
            let mirror = Mirror(reflecting: current)
            if let child = mirror.children.first(where: { $0.label == String(label) }) {
                current = child.value
            } else if mirror.displayStyle == .enum, let payload = mirror.children.first {
                current = payload.value
            } else {
                return nil
            }
        }
        return current
    }

    /// Changes of a list of named things: added and removed ones (`difference` nil), and one
    /// change per differing field of each kept one.
    static func namedChanges<Item>(
        _ section: String, _ old: [Item], _ new: [Item], name: (Item) -> String, folders: (String?, String?),
        make: (_ path: String, _ name: String, _ difference: CanonicalForm.Difference?) -> ConfigChange
    ) -> [ConfigChange] {
        var changes: [ConfigChange] = []
        let oldNames = old.map(name)
        let newNames = new.map(name)
        for item in new where !oldNames.contains(name(item)) { changes.append(make("\(section).\(name(item))", name(item), nil)) }
        for item in old where !newNames.contains(name(item)) { changes.append(make("\(section).\(name(item))", name(item), nil)) }
        for after in new {
            guard let before = old.first(where: { name($0) == name(after) }) else { continue }
            for difference in differences(before, after, folders: folders) {
                changes.append(make("\(section).\(name(after))", name(after), difference))
            }
        }
        return changes
    }
}
