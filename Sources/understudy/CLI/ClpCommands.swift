import ArgumentParser
import Foundation
import UnderstudyEngine
import UnderstudyModel
import UnderstudyNode

// The clp* commands. Each is a subcommand of `understudy` and, through a symlink named
// after it, a command of its own (`understudy install-aliases DIR`). `-h` names a server as
// in CLUSTERPRO, so help is `--help` only.

private let defaultWait: Duration = .seconds(3600)

struct ClpStat: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "clpstat", abstract: "Show the cluster status.",
        discussion: "Without options: the cluster status (servers, heartbeats, groups, resources).", helpNames: [.long])

    @Flag(name: .customShort("s"), help: "Cluster status (the default).") var summary = false
    @Flag(name: .customShort("g"), help: "Group map: which groups run on which server.") var groupMap = false
    @Flag(name: .customShort("i"), help: "The whole configuration, as the daemon runs it.") var information = false
    @Flag(name: .customShort("m"), help: "Monitor status on every server.") var monitors = false
    @Flag(name: .customShort("n"), help: "Heartbeat status: every server's view of every heartbeat path.") var heartbeatMatrix = false
    @Flag(name: .customShort("p"), help: "Network-partition resolution status: every server's view.") var partitionMatrix = false
    @Flag(
        name: [.customShort("f"), .customLong("fnc")],
        help: "Forced stop (fencing): the agents, each server's checks of them, the master's forced stops.")
    var fencing = false
    @Flag(name: .customLong("cl"), help: "Cluster properties of the running configuration.") var clusterView = false
    @Flag(name: .customLong("sv"), help: "Server properties (of the server NAME, if given).") var serverView = false
    @Flag(name: .customLong("hb"), help: "Heartbeat paths (the path NAME, if given).") var heartbeatView = false
    @Flag(name: .customLong("np"), help: "Network-partition resolvers (NAME, if given).") var partitionView = false
    @Flag(name: .customLong("grp"), help: "Groups (the group NAME, if given).") var groupView = false
    @Flag(name: .customLong("rsc"), help: "Group resources (the resource NAME, if given).") var resourceView = false
    @Flag(name: .customLong("mon"), help: "Monitors (the monitor NAME, if given).") var monitorView = false
    @Flag(name: .customLong("xcl"), help: "Exclusive rules: the groups of each exclusive attribute.") var exclusiveView = false
    @Flag(name: .long, help: "With -i or a configuration view: every setting of each object.") var detail = false
    @Argument(help: ArgumentHelp("The object a configuration view shows (all when omitted).", valueName: "name")) var name: String?
    @Flag(name: .long, help: "Only what this server knows, without asking others.") var local = false
    @Flag(name: .long, help: "Do not shorten long names.") var long = false
    @Flag(name: .long, help: "Machine-readable status (JSON) for scripts.") var json = false
    @Option(name: .customShort("h"), help: ArgumentHelp("Ask this server instead of the local one.", valueName: "server")) var server:
        String?
    @OptionGroup var daemon: DaemonOptions

    var sections: Set<StatusRendering.ConfigSection> {
        var chosen: Set<StatusRendering.ConfigSection> = []
        if clusterView { chosen.insert(.cluster) }
        if serverView { chosen.insert(.servers) }
        if heartbeatView { chosen.insert(.heartbeats) }
        if partitionView { chosen.insert(.networkPartition) }
        if groupView { chosen.insert(.groups) }
        if resourceView { chosen.insert(.resources) }
        if monitorView { chosen.insert(.monitors) }
        if exclusiveView { chosen.insert(.exclusive) }
        return chosen
    }

    func validate() throws {
        let views = sections.count + (information ? 1 : 0)
        let modes = [summary, groupMap, monitors, heartbeatMatrix, partitionMatrix, fencing].filter { $0 }.count + (views > 0 ? 1 : 0)
        guard modes <= 1, views <= 1 else {
            throw ValidationError("Give one of -s, -g, -m, -n, -p, -f, -i or one configuration view.")
        }
        if name != nil && (views == 0 || information || clusterView) {
            throw ValidationError("A name goes with --sv, --hb, --np, --grp, --rsc, --mon or --xcl.")
        }
        if detail && views == 0 { throw ValidationError("--detail goes with -i or a configuration view.") }
    }

    func run() async throws {
        let client = DaemonClient(daemon)
        if information || !sections.isEmpty {
            try await showConfiguration(client)
            return
        }
        if heartbeatMatrix || partitionMatrix || fencing {
            try await showMatrix(client, kind: heartbeatMatrix ? .heartbeats : .networkPartition)
            return
        }
        let snapshot = try await client.status(of: local ? nil : server)
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try encoder.encode(snapshot), as: UTF8.self))
        } else if groupMap {
            print(StatusRendering.groupMap(snapshot))
        } else if monitors {
            print(StatusRendering.monitors(snapshot, long: long))
        } else {
            print(StatusRendering.cluster(snapshot, long: long))
        }
    }

    /// `-i` and the configuration views: the configuration the daemon runs (not the file on
    /// disk, which may have been edited since), from the daemon asked (`-h`: that server's).
    func showConfiguration(_ client: DaemonClient) async throws {
        let (bundle, version, hash): (ConfigBundle, UInt64, String)
        if let server, server != (try await client.identity().server) {
            fail("Configuration views show the local daemon's running configuration; run clpstat -i on \(server).", code: .badUsage)
        }
        switch try await client.send(.configPull) {
        case .configuration(let running, let runningVersion, let runningHash):
            (bundle, version, hash) = (running, runningVersion, runningHash)
        case .result(let result): fail(result.message, code: result.code)
        default: fail("unexpected answer from the daemon", code: .failed)
        }
        let config: ClusterConfig
        do {
            config = try ConfigLoader.loadWithWarnings(yaml: bundle.yaml, sourcePath: "running.yaml", checkFiles: false).config
        } catch {
            fail("The running configuration does not load here: \(error)", code: .failed)
        }
        if json {
            let object: [String: Any] = ["version": version, "hash": hash, "yaml": bundle.yaml]
            let data = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
            print(String(decoding: data, as: UTF8.self))
            return
        }
        let chosen = information ? Set(StatusRendering.ConfigSection.allCases) : sections
        let text = StatusRendering.configuration(config, sections: chosen, name: name, detail: detail)
        if let name, !text.contains(" : \(name)]") {
            fail("No such object in the running configuration: \(name).", code: .badUsage)
        }
        print(text)
    }

    /// `-n`, `-p`, `-f`: each server's own view (asked over the control channel; `--local`: this
    /// server's only).
    func showMatrix(_ client: DaemonClient, kind: StatusMatrices.Kind) async throws {
        let localSnapshot = try await client.status(of: nil)
        let servers = localSnapshot.servers.map(\.name)
        var paths: [String] = []
        for name in localSnapshot.servers.flatMap({ kind.lines($0).map(\.name) }) where !paths.contains(name) { paths.append(name) }
        var views: [StatusMatrices.View] = []
        for line in localSnapshot.servers {
            if line.isLocal {
                views.append(.init(server: line.name, status: line.status, snapshot: localSnapshot))
            } else if local {
                continue
            } else {
                let answer = try? await client.send(.status(target: line.name), timeout: .seconds(15))
                guard case .status(let snapshot)? = answer else {
                    views.append(.init(server: line.name, status: line.status, snapshot: nil))
                    continue
                }
                views.append(.init(server: line.name, status: line.status, snapshot: snapshot))
            }
        }
        if fencing {
            print(
                json
                    ? StatusFencing.json(cluster: localSnapshot.cluster, views: views)
                    : StatusFencing.render(
                        cluster: localSnapshot.cluster, servers: servers, local: localSnapshot.localServer, views: views))
        } else if json {
            print(StatusMatrices.json(kind, cluster: localSnapshot.cluster, paths: paths, views: views))
        } else {
            print(
                StatusMatrices.render(
                    kind, cluster: localSnapshot.cluster, servers: servers, local: localSnapshot.localServer, paths: paths, views: views))
        }
    }
}

struct ClpCl: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "clpcl", abstract: "Start, stop, restart, suspend or resume the cluster service.", helpNames: [.long])

    @Flag(name: .customShort("s"), help: "Start the cluster service.") var start = false
    @Flag(name: .customShort("t"), help: "Stop the cluster service (groups stop; on one server they fail over).") var stop = false
    @Flag(name: .customShort("r"), help: "Restart the cluster service.") var restart = false
    @Flag(name: .customShort("a"), help: "On every server.") var all = false
    @Option(name: .customShort("h"), help: ArgumentHelp("On this server (default: the local one).", valueName: "server")) var server:
        String?
    @Flag(name: .long, help: "Suspend the cluster: groups keep running, nothing fails over.") var suspend = false
    @Flag(name: .long, help: "Resume a suspended cluster.") var resume = false
    @Option(
        name: .long,
        help: ArgumentHelp(
            "A server that kept the cluster running when others stopped is down for good: they may found the cluster without it (every server, or -h).",
            valueName: "server"))
    var forget: [String] = []
    @Option(
        name: .customLong("confirm-stopped"),
        help: ArgumentHelp(
            "A lost server whose forced stop failed is off (you made sure): its groups fail over (fencing on-failure cancel).",
            valueName: "server"))
    var confirmStopped: String?
    @Flag(
        name: .long,
        help: "With --suspend: accepted as CLUSTERPRO's; a suspend here never waits for servers that do not answer (the master decides).")
    var force = false
    @Option(name: [.customLong("timeout"), .customShort("w")], help: "Seconds to wait for the operation to finish.") var timeout: Int = 3600
    @OptionGroup var daemon: DaemonOptions

    func validate() throws {
        let chosen = [start, stop, restart, suspend, resume, !forget.isEmpty, confirmStopped != nil].filter { $0 }.count
        guard chosen == 1 else {
            throw ValidationError("Give exactly one of -s, -t, -r, --suspend, --resume, --forget, --confirm-stopped.")
        }
        if force && !suspend { throw ValidationError("--force goes with --suspend.") }
        guard timeout > 0 else { throw ValidationError("-w must be a positive number of seconds, got \(timeout).") }
        if all && server != nil { throw ValidationError("-a and -h exclude each other.") }
    }

    func run() async throws {
        let client = DaemonClient(daemon)
        let wait = Duration.seconds(timeout)
        if suspend || resume {
            try await client.command(suspend ? .suspendCluster : .resumeCluster)
            print("Command succeeded.")
            return
        }
        if let confirmStopped {
            switch try await client.send(.command(.confirmStopped(confirmStopped), target: nil)) {
            case .result(let result) where result.code == .success: print(result.message)
            case .result(let result): fail(result.message, code: result.code)
            default: fail("unexpected answer from the daemon", code: .failed)
            }
            return
        }
        let identity = try await client.identity()
        if !forget.isEmpty {
            try await forgetServers(client: client, servers: identity.servers)
            return
        }
        let targets = all ? identity.servers : [server ?? identity.server]
        for target in targets where !identity.servers.contains(target) {
            fail("Unknown server \(target) (servers: \(identity.servers.joined(separator: ", "))).", code: .badUsage)
        }
        if stop && all {
            // Tell the master first, so no group fails over while servers stop one by one.
            _ = try? await client.send(.command(.beginClusterStop, target: nil))
        }
        var failed = false
        for target in targets {
            let command: ClusterCommand
            if start {
                command = .startService
            } else if stop {
                command = .stopService(factor: all ? .clusterShutdown : .serverShutdown, lastAction: .none, then: .stayStopped)
            } else {
                command = .stopService(factor: all ? .clusterShutdown : .serverShutdown, lastAction: .none, then: .restart)
            }
            let verb = start ? "Start" : (stop ? "Stop" : "Restart")
            switch try await client.send(.command(command, target: target)) {
            case .result(let result) where result.code == .success:
                print("\(verb) \(target) : Command succeeded.")
            case .result(let result):
                printError("\(verb) \(target) : \(result.message)")
                failed = true
            default:
                failed = true
            }
        }
        if stop {
            for target in targets {
                try await client.wait(for: "the cluster service on \(target) to stop", timeout: wait, target: target) { snapshot in
                    (snapshot.service == "stopped", nil)
                }
            }
        } else {
            for target in targets {
                try await client.wait(for: "the cluster service on \(target) to start", timeout: wait, target: target) { snapshot in
                    (snapshot.service == "running", nil)
                }
            }
        }
        if failed { throw ExitCode(CommandCode.failed.rawValue) }
    }

    /// `--forget`: every server (or the one of -h) stops waiting for the named servers; a
    /// server that cannot be reached is said and skipped (it is told when it comes back).
    func forgetServers(client: DaemonClient, servers: [ServerName]) async throws {
        for name in forget where !servers.contains(name) {
            fail("Unknown server \(name) (servers: \(servers.joined(separator: ", "))).", code: .badUsage)
        }
        var failed = false
        for target in server.map({ [$0] }) ?? servers where !forget.contains(target) {
            for name in forget {
                switch await client.trySend(.command(.forgetLeftBehind(name), target: target)) {
                case .result(let result)? where result.code == .success:
                    print("Forget \(name) on \(target) : \(result.message)")
                case .result(let result)?:
                    printError("Forget \(name) on \(target) : \(result.message)")
                    failed = true
                default:
                    printError("Forget \(name) on \(target) : not reachable; run it there when it is up.")
                }
            }
        }
        if failed { throw ExitCode(CommandCode.failed.rawValue) }
    }
}

struct ClpGrp: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "clpgrp", abstract: "Start, stop or move failover groups.", helpNames: [.long])

    @Flag(name: .customShort("s"), help: "Start the group (all groups if none is named).") var start = false
    @Flag(name: .customShort("t"), help: "Stop the group (all groups if none is named).") var stop = false
    @Flag(name: .customShort("m"), help: "Move the group to another server (all groups if none is named).") var move = false
    @Flag(name: .customShort("n"), help: "Print the server where the group runs.") var whereRuns = false
    @Flag(
        name: .customShort("f"),
        help:
            "Alone: fail the group over to the next server of its policy (all online groups if none is named). With -s or -t: accepted as CLUSTERPRO's force; they already act wherever the group is."
    )
    var force = false
    @Flag(
        name: .customShort("l"),
        help:
            "Only this server: -s starts here; -t, -m, -f act on the groups that run here (a named group that runs elsewhere is refused)."
    )
    var localOnly = false
    @Argument(help: "Group name.") var group: String?
    @Option(name: .customShort("h"), help: ArgumentHelp("Server to start the group on (-s).", valueName: "server")) var server: String?
    @Option(
        name: .customShort("a"),
        help: ArgumentHelp("Destination of a move (-m); default: the next server of the group's policy.", valueName: "server"))
    var destination: String?
    @Option(name: .long, help: "Seconds to wait for the operation to finish.") var timeout: Int = 3600
    @OptionGroup var daemon: DaemonOptions

    /// `-f` alone: a failover, which is a move to the next server of the policy.
    var failover: Bool { force && !start && !stop }

    func validate() throws {
        guard [start, stop, move || failover, whereRuns].filter({ $0 }).count == 1, !(move && force) else {
            throw ValidationError("Give exactly one of -s, -t, -m, -f, -n.")
        }
        if whereRuns && group == nil { throw ValidationError("-n needs a group name.") }
        if failover && destination != nil {
            throw ValidationError("-f moves to the next server of the policy; use -m -a SERVER to choose.")
        }
        if destination != nil && !move { throw ValidationError("-a goes with -m.") }
        if localOnly && (whereRuns || server != nil) { throw ValidationError("-l goes with -s, -t, -m or -f, and not with -h.") }
    }

    func run() async throws {
        let client = DaemonClient(daemon)
        var snapshot = try await client.status()
        if let group, snapshot.group(group) == nil {
            fail("Unknown group \(group) (groups: \(snapshot.groups.map(\.name).joined(separator: ", "))).", code: .badUsage)
        }
        let local = snapshot.localServer
        if localOnly, !start, let group, snapshot.group(group)?.current != local {
            fail("Group \(group) does not run on \(local) (-l: only this server's groups).", code: .failed)
        }
        if whereRuns {
            guard let line = snapshot.group(group ?? ""), let current = line.current, line.status == .online else {
                fail("Group \(group ?? "") is not online on any server.", code: .failed)
            }
            print(current)
            return
        }
        var names = group.map { [$0] } ?? snapshot.groups.map(\.name)
        if localOnly && group == nil {
            // -s: the groups this server may run; the others: the groups that run here.
            names = snapshot.groups.filter { start ? $0.perServer[local] != nil : $0.current == local }.map(\.name)
        }
        let wait = Duration.seconds(timeout)
        for name in names {
            let before = snapshot.group(name)
            if group == nil {
                // "All groups": skip those already in the wanted state.
                if start && before?.status == .online { continue }
                if stop && before?.status == .offline { continue }
                if (move || failover) && before?.status != .online { continue }
            }
            let command: ClusterCommand =
                start ? .startGroup(name, on: localOnly ? local : server) : stop ? .stopGroup(name) : .moveGroup(name, to: destination)
            // The master's answer names the operation it accepted: follow it until it has
            // happened, failed, or was superseded by another command. No ticket: there was
            // nothing to do (the group was already offline).
            if let ticket = try await client.command(command).ticket {
                try await client.follow(ticket, timeout: wait)
            }
            snapshot = try await client.status()
        }
        print("Command succeeded.")
    }
}

struct ClpRsc: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "clprsc", abstract: "Start or stop a single group resource; show or reset the failover counters.",
        discussion: """
            The activation-failover counter is kept per group: every resource of a group shows \
            the group's count, against its own limit (activation.failover).
            """, helpNames: [.long])

    @Flag(name: .customShort("s"), help: "Start the resource.") var start = false
    @Flag(name: .customShort("t"), help: "Stop the resource.") var stop = false
    @Flag(name: .customShort("n"), help: "Print the server where the resource is active.") var whereRuns = false
    @Flag(
        name: .customShort("f"),
        help:
            "With -s: first start the resources it depends on that are not online. With -t: first stop the resources that depend on it."
    )
    var force = false
    @Flag(name: .customShort("v"), help: "Show the group-resource failover counters (of every resource, or the one named).")
    var showCounters = false
    @Option(
        name: [.customLong("reset"), .customShort("r")],
        help: ArgumentHelp("Reset the failover counter of the resource's group (through the master).", valueName: "resource"))
    var reset: String?
    @Flag(name: .long, help: "With -v: the counters as JSON for scripts.") var json = false
    @Argument(help: "Resource name.") var resource: String?
    @Option(
        name: .customShort("h"),
        help: ArgumentHelp(
            "Server to send the request to (default: the one running the group; -v: the local server's view).", valueName: "server"))
    var server: String?
    @Option(name: .long, help: "Seconds to wait for the operation to finish.") var timeout: Int = 3600
    @OptionGroup var daemon: DaemonOptions

    func validate() throws {
        guard [start, stop, whereRuns, showCounters, reset != nil].filter({ $0 }).count == 1 else {
            throw ValidationError("Give exactly one of -s, -t, -n, -v, --reset.")
        }
        if (start || stop || whereRuns) && resource == nil { throw ValidationError("-s, -t and -n need a resource name.") }
        if reset != nil && resource != nil { throw ValidationError("--reset takes the resource as its value: clprsc --reset RESOURCE.") }
        if force && !(start || stop) { throw ValidationError("-f goes with -s or -t.") }
        if json && !showCounters { throw ValidationError("--json goes with -v.") }
    }

    func run() async throws {
        let client = DaemonClient(daemon)
        if showCounters {
            try await showFailoverCounters(client)
            return
        }
        let snapshot = try await client.status()
        let name = reset ?? resource ?? ""
        guard let group = snapshot.groups.first(where: { $0.resources.contains { $0.name == name } }) else {
            fail("Unknown resource \(name).", code: .badUsage)
        }
        if let reset {
            let result = try await client.command(.resetFailoverCount(reset), at: server)
            print(result.message)
            return
        }
        if whereRuns {
            guard let current = group.current, group.resources.first(where: { $0.name == name })?.status == .online else {
                fail("Resource \(name) is not online on any server.", code: .failed)
            }
            print(current)
            return
        }
        let command: ClusterCommand =
            start
            ? (force ? .startResourceWithDependencies(name) : .startResource(name))
            : (force ? .stopResourceWithDependents(name) : .stopResource(name))
        let accepted = try await client.command(command, at: server)
        if accepted.message != "Command succeeded." { print(accepted.message) }
        let wanted: ActivationStatus = start ? .online : .offline
        let failures: Set<ActivationStatus> = [.onlineFailure, .offlineFailure]
        // -f: the chain ends early when one of its resources fails (a new failure of another
        // resource of the group) or when the group settles without the resource in the wanted
        // state (a group stop cut the chain short). Settled means not pending for a second:
        // a server's copy of another's status may lag a heartbeat behind.
        let failedBefore = Set(group.resources.filter { failures.contains($0.status) }.map(\.name))
        var sawPending = false
        var sawTargetPending = false
        let statusBefore = group.resources.first(where: { $0.name == name })?.status
        var settledSince: ContinuousClock.Instant?
        try await client.wait(for: "resource \(name) to \(start ? "start" : "stop")", timeout: .seconds(timeout)) { status in
            guard let now = status.group(group.name), let line = now.resources.first(where: { $0.name == name }) else {
                return (true, "Resource \(name) disappeared.")
            }
            if line.status == wanted { return (true, nil) }
            // A resource in failure before the command (stopping one in Online Failure, say)
            // shows so until the command has reached it, in this server's copy too.
            if line.status == .onlinePending || line.status == .offlinePending { sawTargetPending = true }
            if failures.contains(line.status), sawTargetPending || line.status != statusBefore {
                return (true, "Resource \(name) is \(line.status.rawValue).")
            }
            guard force else { return (false, nil) }
            if let failed = now.resources.first(where: { failures.contains($0.status) && !failedBefore.contains($0.name) }) {
                return (true, "Resource \(failed.name) is \(failed.status.rawValue); \(name) was not \(start ? "started" : "stopped").")
            }
            if now.status == .onlinePending || now.status == .offlinePending {
                sawPending = true
                settledSince = nil
            } else if sawPending {
                let since = settledSince ?? .now
                settledSince = since
                if since.duration(to: .now) >= .seconds(1) {
                    return (true, "Group \(group.name) is \(now.status.rawValue); \(name) is \(line.status.rawValue).")
                }
            }
            return (false, nil)
        }
        print("Command succeeded.")
    }

    /// `-v [RESOURCE]`: per resource its group, the group's activation-failover count and the
    /// resource's limit, from the running configuration of the local daemon.
    func showFailoverCounters(_ client: DaemonClient) async throws {
        let snapshot = try await client.status(of: server)
        if let resource, !snapshot.groups.contains(where: { $0.resources.contains { $0.name == resource } }) {
            fail("Unknown resource \(resource).", code: .badUsage)
        }
        let yaml: String
        switch try await client.send(.configPull) {
        case .configuration(let running, _, _): yaml = running.yaml
        case .result(let result): fail(result.message, code: result.code)
        default: fail("unexpected answer from the daemon", code: .failed)
        }
        let config: ClusterConfig
        do {
            config = try ConfigLoader.loadWithWarnings(yaml: yaml, sourcePath: "running.yaml", checkFiles: false).config
        } catch {
            fail("The running configuration does not load here: \(error)", code: .failed)
        }
        let rows = FailoverCounterRow.rows(snapshot, config: config, resource: resource)
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            let document = FailoverCounterRow.Document(server: snapshot.localServer, perGroup: true, resources: rows)
            print(String(decoding: try encoder.encode(document), as: UTF8.self))
        } else {
            print(FailoverCounterRow.text(rows, server: snapshot.localServer))
        }
    }
}

/// One line of `clprsc -v`: the group's activation-failover count against the resource's limit.
struct FailoverCounterRow: Codable, Equatable {
    var resource: String
    var group: String
    var failoverCount: Int
    var failoverLimit: Int
    /// Where the group runs (or failed), nil when nowhere.
    var current: String?

    struct Document: Codable {
        var server: String
        /// Always true: the count is the group's, shared by its resources.
        var perGroup: Bool
        var resources: [FailoverCounterRow]
    }

    static func rows(_ snapshot: ClusterStatusSnapshot, config: ClusterConfig, resource: String?) -> [FailoverCounterRow] {
        snapshot.groups.flatMap { group in
            group.resources.filter { resource == nil || $0.name == resource }.map { line in
                FailoverCounterRow(
                    resource: line.name, group: group.name, failoverCount: group.failoverCount,
                    failoverLimit: config.resource(named: line.name)?.resource.activation.failover ?? 0, current: group.current)
            }
        }
    }

    /// Like `clpmonctrl -v`: one line per resource containing `Resource`, its name in field 3.
    static func text(_ rows: [FailoverCounterRow], server: String) -> String {
        let width = max(12, rows.map(\.resource.count).max() ?? 0)
        let groupWidth = max(8, rows.map(\.group.count).max() ?? 0)
        var out = [
            "Server : \(server)",
            "(one activation-failover count per group, shared by its resources; each limit is the resource's activation.failover)",
        ]
        for row in rows {
            out.append(
                [
                    "Group Resource: " + row.resource.padding(toLength: width, withPad: " ", startingAt: 0),
                    "Group: " + row.group.padding(toLength: groupWidth, withPad: " ", startingAt: 0),
                    "Failover: \(row.failoverCount)/\(row.failoverLimit)",
                    "Current: \(row.current ?? "-")",
                ].joined(separator: "  "))
        }
        return out.joined(separator: "\n")
    }
}

struct ClpMonCtrl: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "clpmonctrl", abstract: "Suspend, resume and test monitors; show and clear their recovery counters.",
        discussion: "Without -m every monitor of the server is meant. -h sends the request to another server.", helpNames: [.long])

    @Flag(name: .customShort("s"), help: "Suspend monitoring.") var suspend = false
    @Flag(name: .customShort("r"), help: "Resume monitoring.") var resume = false
    @Flag(name: .customShort("c"), help: "Clear the recovery counters.") var clear = false
    @Flag(name: .customShort("v"), help: "Show the recovery counters.") var show = false
    @Flag(name: .customShort("e"), help: "Enable a dummy failure (the monitor reports an error).") var dummyOn = false
    @Flag(name: .customShort("n"), help: "Disable the dummy failure.") var dummyOff = false
    @Option(name: .customShort("m"), help: ArgumentHelp("The monitor.", valueName: "monitor")) var monitor: String?
    @Option(name: .customShort("h"), help: ArgumentHelp("The server (default: the local one).", valueName: "server")) var server: String?
    @OptionGroup var daemon: DaemonOptions

    func validate() throws {
        guard [suspend, resume, clear, show, dummyOn, dummyOff].filter({ $0 }).count == 1 else {
            throw ValidationError("Give exactly one of -s, -r, -c, -v, -e, -n.")
        }
        if dummyOn && monitor == nil { throw ValidationError("-e needs -m MONITOR.") }
    }

    func run() async throws {
        let client = DaemonClient(daemon)
        if show {
            let snapshot = try await client.status(of: server)
            if let monitor, snapshot.monitors?.contains(where: { $0.name == monitor }) != true {
                fail("Unknown monitor \(monitor).", code: .badUsage)
            }
            print(StatusRendering.counters(snapshot, monitor: monitor))
            return
        }
        let control: MonitorControl =
            suspend ? .suspend : resume ? .resume : clear ? .clearCounters : dummyOn ? .dummyFailureOn : .dummyFailureOff
        try await client.command(.monitor(control, monitor: monitor, server: nil), at: server)
        print("Command succeeded.")
    }
}

struct ClpRexec: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "clprexec", abstract: "Send a request to a cluster server: fail a group over, or report an external error.",
        discussion: """
            --notice and --clear report an error to (or clear it from) the mrw monitors of the server \
            that take the category (-k, default NIC) and keyword. On a cluster server the request \
            goes over the authenticated control channel of the local daemon. On a host outside \
            the cluster, --client NAME and --key-file FILE (or $UNDERSTUDY_REXEC_CLIENT and \
            $UNDERSTUDY_REXEC_KEY_FILE) send it straight to the server -h names, authenticated \
            with that client's own key from cluster.rexec-clients.
            """, helpNames: [.long])

    @Option(name: .long, help: ArgumentHelp("Fail this group over to another server.", valueName: "group")) var failover: String?
    @Option(
        name: .long,
        help: ArgumentHelp("Run this script of the server's rexec folder (cluster.rexec-directory).", valueName: "file"))
    var script: String?
    @Flag(name: .long, help: "Report an external error to mrw monitors.") var notice = false
    @Flag(name: .long, help: "Clear an external error of mrw monitors.") var clear = false
    @Option(name: .customShort("k"), help: ArgumentHelp("Category of the error.", valueName: "category")) var category = "NIC"
    @Option(name: .customShort("m"), help: ArgumentHelp("Only this mrw monitor.", valueName: "monitor")) var monitor: String?
    @Option(name: .customLong("keyword"), help: ArgumentHelp("Keyword of the error.", valueName: "keyword")) var keyword: String?
    @Option(name: .customShort("h"), help: ArgumentHelp("The server (name or address; default: the local one).", valueName: "server"))
    var server: String?
    @Option(name: .customShort("w"), help: "Seconds to wait for the answer.") var wait: Int = 180
    @Option(
        name: .customLong("client"),
        help: ArgumentHelp("From outside the cluster: this client name of cluster.rexec-clients.", valueName: "name"))
    var client: String?
    @Option(
        name: .customLong("key-file"),
        help: ArgumentHelp("From outside the cluster: the client's key file (mode 0600).", valueName: "file"))
    var keyFile: String?
    @Option(name: .customLong("port"), help: "From outside the cluster: the server's control port.") var port: Int = Defaults.controlPort
    @OptionGroup var daemon: DaemonOptions

    func validate() throws {
        guard [failover != nil, script != nil, notice, clear].filter({ $0 }).count == 1 else {
            throw ValidationError("Give exactly one of --failover, --script, --notice, --clear.")
        }
        guard wait > 0 else { throw ValidationError("-w must be at least 1 second.") }
        guard (1...65535).contains(port) else { throw ValidationError("--port must be 1 to 65535.") }
    }

    func run() async throws {
        if let outside = try RexecOutsideClient.resolve(client: client, keyFile: keyFile, server: server) {
            let request: RexecRequest
            if let failover {
                request = .failover(group: failover)
            } else if let script {
                request = .script(name: (script as NSString).lastPathComponent, timeoutSeconds: wait)
            } else {
                request = .notice(monitor: monitor, category: category, keyword: keyword, clear: clear)
            }
            await outside.send(request, port: port, wait: wait)
        }
        let client = DaemonClient(daemon)
        let command: ClusterCommand
        if let failover {
            command = .moveGroup(failover, to: nil)
        } else if let script {
            // A path names the same file in the server's rexec folder.
            command = .runScript(name: (script as NSString).lastPathComponent, timeoutSeconds: wait)
        } else {
            command = .externalNotice(monitor: monitor, category: category, keyword: keyword, clear: clear, server: nil)
        }
        let deadline = Duration.seconds(wait)
        let result = try await withThrowingTaskGroup(of: Bool.self) { group in
            group.addTask {
                try await client.command(command, at: server)
                return true
            }
            group.addTask {
                try await Task.sleep(for: deadline)
                return false
            }
            let first = try await group.next() ?? false
            group.cancelAll()
            return first
        }
        guard result else { fail("No answer within \(wait) s.", code: .failed) }
        print("Command succeeded.")
    }
}
