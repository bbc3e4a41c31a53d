import UnderstudyEngine
import UnderstudyModel

/// The `clpstat` layouts (reference §2.1), from a status snapshot.
enum StatusRendering {
    static let rule = " " + String(repeating: "=", count: 69)

    static func banner(_ title: String) -> String {
        let text = "  \(title)  "
        let total = 69
        let left = max(2, (total - text.count) / 2)
        let right = max(2, total - text.count - left)
        return " " + String(repeating: "=", count: left) + text + String(repeating: "=", count: right)
    }

    /// `name ......: value   comment`, names padded with dots (first level) or spaces.
    static func line(indent: Int, name: String, dotted: Bool, width: Int, long: Bool, value: String, comment: String) -> String {
        var shown = name
        if !long && shown.count > width { shown = String(shown.prefix(width)) }
        let padding = max(1, width - shown.count + 1)
        let filler = dotted ? " " + String(repeating: ".", count: max(0, padding - 1)) : String(repeating: " ", count: padding)
        let valueColumn = value.padding(toLength: max(value.count, 17), withPad: " ", startingAt: 0)
        let text = String(repeating: " ", count: indent) + shown + filler + ": " + valueColumn + comment
        return text.trimmingTrailingSpaces()
    }

    /// `clpstat -m`: every monitor's status on every server.
    static func monitors(_ snapshot: ClusterStatusSnapshot, long: Bool) -> String {
        let monitors = snapshot.monitors ?? []
        let width = long ? max(14, (monitors.map(\.name) + snapshot.servers.map(\.name)).map(\.count).max() ?? 14) + 2 : 14
        var out: [String] = [banner("MONITOR RESOURCE STATUS"), "  Cluster : \(snapshot.cluster)", "  <monitor>"]
        for monitor in monitors {
            let overall = overallStatus(monitor)
            out.append(
                line(
                    indent: 4, name: monitor.name, dotted: true, width: width, long: long, value: overall.rawValue,
                    comment: monitor.comment.isEmpty ? monitor.type : monitor.comment))
            for server in snapshot.servers {
                let status = monitor.perServer[server.name] ?? .unknown
                out.append(
                    line(indent: 6, name: server.name, dotted: false, width: width - 2, long: long, value: status.rawValue, comment: ""))
            }
        }
        out.append(rule)
        return out.joined(separator: "\n")
    }

    /// One status for a monitor over all servers: Error if any server has an error, Caution
    /// if any warns, Normal if any runs it normally, else what the servers say.
    static func overallStatus(_ monitor: ClusterStatusSnapshot.MonitorLine) -> MonitorStatus {
        let statuses = Set(monitor.perServer.values)
        for candidate: MonitorStatus in [.error, .caution, .normal, .suspend, .offline, .unknown] where statuses.contains(candidate) {
            return candidate
        }
        return .unused
    }

    /// `clpmonctrl -v`: recovery counters of this server, one line per monitor. Scripts written
    /// for CLUSTERPRO find the monitors with `grep Resource | awk '{print $3}'` (clp_exporter
    /// does): only those lines contain "Resource", and the name is their third field.
    static func counters(_ snapshot: ClusterStatusSnapshot, monitor: String?) -> String {
        let lines = (snapshot.monitors ?? []).filter { monitor == nil || $0.name == monitor }
        let width = max(12, lines.map(\.name.count).max() ?? 0)
        var out = ["Server : \(snapshot.localServer)"]
        for line in lines {
            let counters = line.counters
            let fields = [
                "Monitor Resource: " + line.name.padding(toLength: width, withPad: " ", startingAt: 0),
                "Status: " + line.status.rawValue.padding(toLength: 8, withPad: " ", startingAt: 0),
                "Script: \(counters.recoveryScripts)/\(line.maxRecoveryScripts)",
                "Reactivation: \(counters.reactivations)/\(line.maxReactivations)",
                "Failover: \(counters.failovers)/\(line.maxFailovers)",
                "FinalAction: " + (counters.finalActionDone ? "done" : "-") + (line.dummyFailure ? "  (dummy failure)" : ""),
            ]
            out.append(fields.joined(separator: "  "))
        }
        return out.joined(separator: "\n")
    }

    /// Appended to the comment of the heartbeat path a peer's control channel uses.
    static let controlMark = "[control]"

    static func cluster(_ snapshot: ClusterStatusSnapshot, long: Bool) -> String {
        let width =
            long
            ? max(
                14,
                (snapshot.servers.map(\.name) + snapshot.groups.flatMap { [$0.name] + $0.resources.map(\.name) }).map(\.count).max() ?? 14)
                + 2 : 14
        var out: [String] = [banner("CLUSTER STATUS"), "  Cluster : \(snapshot.cluster)", "  <server>"]
        for server in snapshot.servers {
            let mark = server.isLocal ? " *" : "  "
            out.append(
                line(
                    indent: 2, name: mark + server.name, dotted: true, width: width + 2, long: long, value: server.status.rawValue,
                    comment: server.comment))
            for heartbeat in server.heartbeats {
                // The path the control channel (commands, status) takes to this peer now.
                let control = heartbeat.name == server.controlPath ? " " + controlMark : ""
                out.append(
                    line(
                        indent: 6, name: heartbeat.name, dotted: false, width: width - 2, long: long, value: heartbeat.status.rawValue,
                        comment: heartbeat.comment + control))
            }
            for np in server.networkPartition {
                out.append(
                    line(
                        indent: 6, name: np.name, dotted: false, width: width - 2, long: long, value: np.status.rawValue,
                        comment: np.comment))
            }
        }
        out.append("  <group>")
        for group in snapshot.groups {
            out.append(
                line(
                    indent: 4, name: group.name, dotted: true, width: width, long: long, value: group.status.rawValue,
                    comment: group.comment))
            out.append(
                line(indent: 6, name: "current", dotted: false, width: width - 2, long: long, value: group.current ?? "None", comment: ""))
            for resource in group.resources {
                out.append(
                    line(
                        indent: 6, name: resource.name, dotted: false, width: width - 2, long: long, value: resource.status.rawValue,
                        comment: resource.comment))
            }
        }
        out.append("  <monitor>")
        for monitor in snapshot.monitors ?? [] {
            out.append(
                line(
                    indent: 4, name: monitor.name, dotted: true, width: width, long: long, value: monitor.status.rawValue,
                    comment: monitor.comment))
        }
        out.append(rule)
        var notes: [String] = []
        if snapshot.service != "running" { notes.append("The cluster service on \(snapshot.localServer) is \(snapshot.service).") }
        if snapshot.suspended { notes.append("The cluster is suspended.") }
        if snapshot.isolated { notes.append("\(snapshot.localServer) is isolated from the majority of the servers.") }
        if !snapshot.syncDone && snapshot.service == "running" { notes.append("Waiting for all servers to start (sync wait).") }
        if let line = snapshot.configuration, line.outsider {
            notes.append(
                "\(snapshot.localServer) runs another configuration (version \(line.version), hash \(line.hash)) than the master: it takes no part in placement until it runs the cluster's (understudy config apply, or clpcfctrl --push, from a server that runs it)."
            )
        }
        for mismatch in snapshot.configurationMismatch ?? [] {
            let versions =
                "version \(mismatch.theirVersion ?? 0), hash \(mismatch.theirs); here version \(mismatch.ourVersion ?? 0), hash \(mismatch.ours)"
            let part = mismatch.excluded == true ? "; it takes no part in placement" : ""
            notes.append(
                "\(mismatch.server) runs a different configuration (\(versions))\(part); apply one with understudy config apply / clpcfctrl --push."
            )
        }
        for server in snapshot.unauthenticatedServers ?? [] {
            notes.append(
                "\(server) is present but its heartbeats fail authentication (another cluster key?): it is never judged down and its groups are not taken over; give every server the same key file."
            )
        }
        for server in snapshot.withoutStateServers ?? [] {
            notes.append(
                "\(server)'s heartbeats arrive but its state cannot be fetched over the control channel (a one-way cut, or its control port blocked?): it is never judged down and its groups are not taken over."
            )
        }
        if snapshot.autoStartSuppressed {
            notes.append("Automatic group start is suspended on \(snapshot.localServer) after an abnormal stop (clpcl -r lifts it).")
        }
        return (out + alertDestinations(snapshot) + notes.map { "  (\($0))" }).joined(separator: "\n")
    }

    /// The alert router's counters of the server asked (since its daemon started).
    static func alertDestinations(_ snapshot: ClusterStatusSnapshot) -> [String] {
        guard let lines = snapshot.alertDestinations, !lines.isEmpty else { return [] }
        return ["  Alert destinations of \(snapshot.localServer):"]
            + lines.map { line in
                var text =
                    "    \(line.name) (\(line.type)): delivered \(line.delivered), failed \(line.failed), retried \(line.retried), dropped \(line.dropped), queued \(line.queued)"
                if line.failing { text += "; FAILING" + (line.lastError.map { ": \($0)" } ?? "") }
                return text
            }
    }

    /// `clpstat -g`: `serverN [o] : grp[o] …` per server; o online, p pending, e failure,
    /// x offline.
    static func groupMap(_ snapshot: ClusterStatusSnapshot) -> String {
        var out: [String] = [banner("GROUPMAP INFORMATION"), "  Cluster : \(snapshot.cluster)"]
        for (index, server) in snapshot.servers.enumerated() {
            out.append("  \(server.isLocal ? "*" : " ")server\(index) : \(server.name)")
        }
        out.append("  " + String(repeating: "-", count: 67))
        for (index, server) in snapshot.servers.enumerated() {
            let serverMark = server.status == .online ? "o" : (server.status == .caution ? "e" : "x")
            let groups = snapshot.groups.compactMap { group -> String? in
                guard let status = group.perServer[server.name], status.holdsResources else { return nil }
                return "\(group.name)[\(mark(status))]"
            }
            out.append("   server\(index) [\(serverMark)] : " + groups.joined(separator: " "))
        }
        out.append("  " + String(repeating: "-", count: 67))
        return out.joined(separator: "\n")
    }

    static func mark(_ status: ActivationStatus) -> String {
        switch status {
        case .online: return "o"
        case .onlinePending, .offlinePending: return "p"
        case .onlineFailure, .offlineFailure: return "e"
        case .offline: return "x"
        case .unknown: return "-"
        }
    }

    /// `    SERVER                        : value` for each server that has a value, in order.
    static func perServer(_ values: [String: String], servers: [String]) -> [String] {
        servers.compactMap { server in values[server].map { "    \(server.padding(toLength: 30, withPad: " ", startingAt: 0)): \($0)" } }
    }

    /// The parts of the configuration `clpstat` shows: `-i` all of them, `--cl`, `--sv`,
    /// `--hb`, `--np`, `--grp`, `--rsc`, `--mon`, `--xcl` one each.
    enum ConfigSection: CaseIterable {
        case cluster, servers, heartbeats, networkPartition, groups, resources, monitors, exclusive, fencing
    }

    /// `clpstat -i` and the configuration views: the configuration as the daemon runs it;
    /// `name` keeps only that object; `detail` lists every setting of each object.
    static func configuration(
        _ config: ClusterConfig, sections: Set<ConfigSection> = Set(ConfigSection.allCases), name: String? = nil, detail: Bool = false
    ) -> String {
        var out: [String] = [banner("CLUSTER INFORMATION")]
        func wanted(_ objectName: String) -> Bool { name == nil || name == objectName }
        if sections.contains(.cluster) {
            out.append("  [Cluster Name: \(config.cluster.name)]")
            if detail {
                out += ConfigDetail.lines(of: config.cluster)
            } else {
                out.append("    Comment                       : \(config.cluster.comment)")
                let timing = config.cluster.timing
                out.append("    Heartbeat Interval            : \(timing.heartbeatInterval.configText)")
                out.append("    Heartbeat Timeout             : \(timing.heartbeatTimeout.configText)")
                out.append("    Server Sync Wait Time         : \(timing.syncWait.configText)")
                out.append("    Action at NP Occurrence       : \(config.cluster.networkPartitionAction.rawValue)")
                out.append(
                    "    Ports (control/hb/http)       : \(config.cluster.ports.control)/\(config.cluster.ports.heartbeat)/\(config.cluster.ports.http)"
                )
            }
        }
        if sections.contains(.servers) {
            for (index, server) in config.servers.enumerated() where wanted(server.name) {
                out.append("  [Server\(index) : \(server.name)]")
                if detail {
                    out += ConfigDetail.lines(of: server)
                } else {
                    out.append("    Comment                       : \(server.comment)")
                }
            }
        }
        if sections.contains(.heartbeats) {
            for (index, heartbeat) in config.heartbeats.enumerated() where wanted(heartbeat.name) {
                out.append("  [HB\(index) : \(heartbeat.name)]")
                out.append("    Type                          : \(heartbeat.typeName)")
                if detail {
                    out += ConfigDetail.lines(of: heartbeat)
                    continue
                }
                switch heartbeat.kind {
                case .lan(let addresses):
                    out += perServer(addresses, servers: config.serverNames)
                case .disk(let device):
                    out.append("    Device                        : \(device)")
                case .serial(let devices, let speed):
                    out += perServer(devices, servers: config.serverNames)
                    out.append("    Speed                         : \(speed)")
                case .witness(let endpoint):
                    out.append("    Witness                       : \(endpoint.displayText)")
                }
            }
        }
        if sections.contains(.networkPartition) {
            for (index, np) in config.networkPartition.enumerated() where wanted(np.name) {
                out.append("  [NP\(index) : \(np.name)]")
                out.append("    Type                          : \(np.typeName)")
                if detail {
                    out += ConfigDetail.lines(of: np)
                } else if case .http(let endpoint) = np.kind {
                    out.append("    Witness                       : \(endpoint.displayText)")
                }
            }
        }
        if sections.contains(.groups) {
            for (index, group) in config.groups.enumerated() where wanted(group.name) {
                out.append("  [Group\(index) : \(group.name)]")
                if detail {
                    var copy = group
                    copy.resources = []
                    out += ConfigDetail.lines(of: copy)
                    out.append("    Resources                     : \(group.resources.map(\.name).joined(separator: ", "))")
                    continue
                }
                out.append("    Comment                       : \(group.comment)")
                out.append("    Startup Servers               : \(group.servers.joined(separator: ", "))")
                out.append("    Startup Attribute             : \(group.startup.rawValue)")
                out.append("    Failover Attribute            : \(group.failover.rawValue)")
                out.append("    Failback Attribute            : \(group.failback.rawValue)")
                out.append("    Exclusive Attribute           : \(group.exclusive.rawValue)")
                out.append("    Resources                     : \(group.resources.map(\.name).joined(separator: ", "))")
            }
        }
        if sections.contains(.resources) {
            var resourceIndex = 0
            for group in config.groups {
                for resource in group.resources {
                    defer { resourceIndex += 1 }
                    guard wanted(resource.name) else { continue }
                    out.append("  [Resource\(resourceIndex) : \(resource.name)]")
                    out.append("    Type                          : \(resource.type.rawValue)")
                    out.append("    Group                         : \(group.name)")
                    if detail {
                        out += ConfigDetail.lines(of: resource)
                        continue
                    }
                    out.append("    Comment                       : \(resource.comment)")
                    out.append("    Retry Count at Activation     : \(resource.activation.retry)")
                    out.append("    Failover Threshold            : \(resource.activation.failover)")
                    out.append("    Final Action at Activation    : \(resource.activation.finalAction.rawValue)")
                    out.append("    Retry Count at Deactivation   : \(resource.deactivation.retry)")
                    out.append("    Final Action at Deactivation  : \(resource.deactivation.finalAction.rawValue)")
                    if case .exec(let exec) = resource.settings {
                        out.append("    Start Script                  : \(exec.start ?? "-") (\(exec.startMode.rawValue))")
                        out.append("    Stop Script                   : \(exec.stop ?? "-") (\(exec.stopMode.rawValue))")
                        out.append("    Timeout                       : \(exec.timeout.configText)")
                    }
                }
            }
        }
        if sections.contains(.monitors) {
            for (index, monitor) in config.monitors.enumerated() where wanted(monitor.name) {
                out.append("  [Monitor\(index) : \(monitor.name)]")
                out.append("    Type                          : \(monitor.type.rawValue)")
                if detail { out += ConfigDetail.lines(of: monitor) }
            }
        }
        if sections.contains(.exclusive) {
            // Groups sharing an exclusive attribute other than off never run on one server together.
            let levels = Array(Set(config.groups.map(\.exclusive.rawValue))).filter { $0 != "none" }.sorted()
            for (index, level) in levels.enumerated() where wanted(level) {
                out.append("  [Exclusive Rule\(index) : \(level)]")
                let groups = config.groups.filter { $0.exclusive.rawValue == level }.map(\.name)
                out.append("    Groups                        : \(groups.joined(separator: ", "))")
            }
        }
        if sections.contains(.fencing), let fencing = config.fencing, name == nil {
            // Forced stop (`clpstat -i` only; `clpstat -f` shows its state).
            out.append("  [Fencing]")
            out.append("    Timeout                       : \(fencing.timeout.configText)")
            out.append("    On Failure                    : \(fencing.onFailure.rawValue)")
            out.append("    Delay                         : \(fencing.delay.configText)")
            out.append("    Check Interval                : \(fencing.checkInterval.configText)")
            out.append("    Retry Interval                : \(fencing.retryInterval.configText)")
            for (index, agent) in fencing.agents.enumerated() {
                out.append("  [Fencing Agent\(index) : \(agent.name)]")
                out.append("    Type                          : \(agent.typeName)")
                if detail {
                    out += ConfigDetail.lines(of: agent)
                    continue
                }
                switch agent.kind {
                case .ipmi(let ipmi):
                    out.append("    Action                        : \(ipmi.action.rawValue)")
                    for server in config.serverNames {
                        guard let bmc = ipmi.bmcs[server] else { continue }
                        out.append(
                            "    BMC of \(server.padding(toLength: 23, withPad: " ", startingAt: 0)): \(bmc.address):\(bmc.port) as \(bmc.user)"
                        )
                    }
                case .script(let command):
                    out.append("    Command                       : \(command.joined(separator: " "))")
                }
            }
        }
        out.append(rule)
        return out.joined(separator: "\n")
    }
}

extension String {
    func trimmingTrailingSpaces() -> String {
        var copy = self
        while copy.last == " " { copy.removeLast() }
        return copy
    }
}
