import Foundation
import UnderstudyModel
import UnderstudyTestSupport

/// What a start or stop script does after recording its `CLP_*` variables.
enum ScriptBehaviour: Sendable {
    case succeed
    case fail
    /// Sleeps, then succeeds: keeps the group in Online/Offline Pending for a while.
    case sleepThenSucceed(seconds: Int)
    /// `exec sleep`: the long-running process of an asynchronous start (`start-mode: async`).
    case keepRunning
    /// Waits (at most 60 s) until the test releases it (`TestCluster.release`), then
    /// succeeds: a transition exactly as long as the test needs.
    case waitForRelease

    /// The end of the script; `record` is the shell function that appends a record line
    /// for the action given as its first argument.
    func shell(action: String, releasePath: String) -> String {
        switch self {
        case .succeed: return "exit 0"
        case .fail: return "echo 'failing on purpose' >&2\nexit 1"
        case .sleepThenSucceed(let seconds): return "sleep \(seconds)\nrecord '\(action)-done'\nexit 0"
        case .keepRunning: return "exec sleep 300"
        case .waitForRelease:
            return """
                waited=0
                while [ ! -e '\(releasePath)' ] && [ $waited -lt 1200 ]; do sleep 0.05; waited=$((waited + 1)); done
                rm -f '\(releasePath)'
                record '\(action)-done'
                exit 0
                """
        }
    }
}

/// One `exec` resource of a test group.
struct ExecSpec: Sendable {
    var name: String
    var start: ScriptBehaviour = .succeed
    var stop: ScriptBehaviour = .succeed
    var asyncStart = false
    /// Flow mappings written as they are, e.g. `{retry: 1, failover: 1, final-action: none}`.
    var activation: String?
    var deactivation: String?
    /// A stop script of the test's own (written as it is) instead of the recording one.
    var stopScript: String?
    /// `depends:` (nil: the default order by type, which is none among exec resources).
    var depends: [String]?
}

struct GroupSpec: Sendable {
    var name: String
    var servers: [String]?
    var failback: String?
    var resources: [ExecSpec]
    /// The `stop-after` value, written as it is (a flow list or mapping).
    var stopAfter: String?

    /// A group with one synchronous exec resource `<name>-app`.
    static func simple(_ name: String, servers: [String]? = nil, failback: String? = nil) -> GroupSpec {
        GroupSpec(name: name, servers: servers, failback: failback, resources: [ExecSpec(name: "\(name)-app")])
    }
}

/// A cluster on loopback addresses of its own: servers on 127.0.<subnet>.1, .2, …, and ports
/// the kernel gave as free when the spec was made. Every test picks a different subnet, so
/// tests running in parallel (and the demo on 127.0.0.11–13, ports 29001–29003) never share an
/// address.
struct ClusterSpec: Sendable {
    var subnet: Int
    var servers: [String] = ["node1", "node2", "node3"]
    var heartbeatInterval = "200ms"
    var heartbeatTimeoutMilliseconds = 1500
    var syncWait = "5s"
    var groups: [GroupSpec] = [.simple("grp1")]
    /// A pingnp target besides majority: lets an exact half holding the first server survive.
    var pingTarget: String?
    /// The items of `monitors:`, as YAML indented by two spaces (written as they are).
    var monitors: String?
    /// Resources written as they are (YAML indented by six spaces) before the exec resources
    /// of the group of that name: disks and the like.
    var extraResources: [String: String] = [:]
    /// Each daemon in a mount namespace of its own (`unshare --mount`), as on separate hosts;
    /// `deviceLinks` then bind-mounts, per server, a device node on a common path inside its
    /// namespace (path → server → device), as `/dev/disk/by-id` names one LUN on every host.
    var privateMounts = false
    var deviceLinks: [String: [String: String]] = [:]
    /// A second LAN path `lanhb2`, on 127.0.<subnet>.101, .102, … (see `secondAddress(of:)`).
    var secondPath = false
    /// A witness server (`understudy witness`, started by the test) on `witnessAddress` and
    /// this port: a `witnesshb1` path and `httpnp1` resolution instead of majority.
    var witnessPort: Int?
    var witnessAddress: String { "127.0.\(subnet).200" }
    /// Keys of `cluster.web` (YAML indented by four spaces, written as they are); nil: no
    /// web server. `apiPort` adds `ports.api`.
    var web: String?
    var apiPort: Int?
    /// Other keys of `cluster:` (indented by two spaces), e.g. `rexec-directory`.
    var clusterExtra: String?
    /// The `alerts:` section, written as it is at the end.
    var alerts: String?
    /// The `fencing:` section, written as it is at the end.
    var fencing: String?
    /// `cluster.os-commands` entries instead of the recording ones (a flow list written as it
    /// is; `{folder}` stands for the cluster folder). Every other key records its name in
    /// `os-actions.log`.
    var osCommands: [String: String] = [:]
    /// Variables added to the daemons' environment (e.g. systemd's `NOTIFY_SOCKET`).
    var daemonEnvironment: [String: String] = [:]

    /// Control, heartbeat and http ports: free on every address when the spec was made (a
    /// fixed port in the ephemeral range may be taken by any outgoing connection).
    var ports: [Int] = {
        do { return try FreePort.take(count: 3) } catch { fatalError("no free ports for a test cluster: \(error)") }
    }()

    var heartbeatTimeout: Duration { .milliseconds(heartbeatTimeoutMilliseconds) }
    var controlPort: Int { ports[0] }
    var heartbeatPort: Int { ports[1] }
    var httpPort: Int { ports[2] }

    func address(of server: String) -> String {
        let index = (servers.firstIndex(of: server) ?? 0) + 1
        return "127.0.\(subnet).\(index)"
    }

    /// The server's address on the second LAN path (`secondPath`).
    func secondAddress(of server: String) -> String {
        let index = (servers.firstIndex(of: server) ?? 0) + 101
        return "127.0.\(subnet).\(index)"
    }

    /// The `cluster.yaml` of this spec, for a cluster folder.
    func yaml(folder: String, secretFile: String = "cluster.key") -> String {
        let addresses = servers.map { "\($0): \(address(of: $0))" }.joined(separator: ", ")
        var text = """
            # Written by UnderstudyProcessTests.
            cluster:
              name: ptest\(subnet)
              comment: process test cluster
              secret-file: \(secretFile)
              timing:
                heartbeat-interval: \(heartbeatInterval)
                heartbeat-timeout: \(heartbeatTimeoutMilliseconds)ms
                sync-wait: \(syncWait)
              network-partition:
                action: none
              ports: {control: \(controlPort), heartbeat: \(heartbeatPort), http: \(httpPort)\(apiPort.map { ", api: \($0)" } ?? "")}
            \(web.map { "  web:\n" + $0 } ?? "")\(clusterExtra ?? "")\
              os-commands:
            \(OSCommands.keys.map { key in
                "    \(key): " + (osCommands[key].map { $0.replacingOccurrences(of: "{folder}", with: folder) }
                    ?? "[/bin/sh, -c, \"echo \(key) >> '\(folder)/os-actions.log'\"]")
            }.joined(separator: "\n"))

            servers:
            \(servers.map { "  - name: \($0)" }.joined(separator: "\n"))

            heartbeats:
              - name: lanhb1
                type: lanhb
                addresses: {\(addresses)}
            \(secondPath ? "  - name: lanhb2\n    type: lanhb\n    addresses: {\(servers.map { "\($0): \(secondAddress(of: $0))" }.joined(separator: ", "))}\n" : "")\
            \(witnessPort.map { "  - name: witnesshb1\n    type: witnesshb\n    host: \(witnessAddress)\n    port: \($0)\n" } ?? "")

            network-partition:
            \(witnessPort.map { "  - name: httpnp1\n    type: httpnp\n    host: \(witnessAddress)\n    port: \($0)" } ?? "  - name: majority1\n    type: majority")
            \(pingTarget.map { "  - name: pingnp1\n    type: pingnp\n    targets: [\($0)]\n" } ?? "")
            """
        if !groups.isEmpty { text += "groups:\n" }
        for group in groups {
            text += "  - name: \(group.name)\n"
            if let servers = group.servers { text += "    servers: [\(servers.joined(separator: ", "))]\n" }
            if let failback = group.failback { text += "    failback: \(failback)\n" }
            if let stopAfter = group.stopAfter { text += "    stop-after: \(stopAfter)\n" }
            text += "    resources:\n"
            if let extra = extraResources[group.name] { text += extra }
            for resource in group.resources {
                text += """
                          - name: \(resource.name)
                            type: exec
                            start: scripts/\(resource.name)/start.sh
                            stop: scripts/\(resource.name)/stop.sh
                            start-mode: \(resource.asyncStart ? "async" : "sync")
                            timeout: 30s
                            stop-timeout: 30s

                    """
                if let depends = resource.depends { text += "        depends: [\(depends.joined(separator: ", "))]\n" }
                if let activation = resource.activation { text += "        activation: \(activation)\n" }
                if let deactivation = resource.deactivation { text += "        deactivation: \(deactivation)\n" }
            }
        }
        if let monitors { text += "monitors:\n" + monitors }
        if let alerts { text += alerts }
        if let fencing { text += fencing }
        return text
    }

    /// A script that appends one line to the records file — action, local server, pid,
    /// time in nanoseconds, then every `CLP_*` variable it sees — and then behaves as told.
    /// A script that sleeps records a second line, `<action>-done`, when it has finished.
    static func script(action: String, recordsPath: String, releasePath: String, behaviour: ScriptBehaviour) -> String {
        """
        #!/bin/sh
        # Records the script variables for UnderstudyProcessTests (one line per run).
        record() {
            vars=$(env | grep '^CLP_' | sort | tr '\\n' '\\t')
            printf '%s\\t%s\\t%s\\t%s\\t%s\\n' "$1" "$CLP_SERVER_LOCAL" "$$" "$(date +%s%N)" "$vars" >> '\(recordsPath)'
        }
        record '\(action)'
        \(behaviour.shell(action: action, releasePath: releasePath))

        """
    }
}
