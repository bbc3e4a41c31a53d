import ArgumentParser
import Foundation
import UnderstudyEngine
import UnderstudyModel
import UnderstudyNode

// The two commands EXPRESSCLUSTER's Prometheus exporters run on every scrape
// (integration-contracts §2): their output is parsed by programs, so it is exactly one
// integer, or names one per line, and nothing else on standard output.

struct ClpPerfc: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "clpperfc", abstract: "Print how long a monitor's newest check took, in milliseconds.",
        discussion: """
            Prints one unsigned integer: the duration of the monitor's newest check on this \
            server in milliseconds, 0 when none finished here since the daemon started (a \
            monitor that runs only where its target is active). An unknown monitor exits 2, an \
            unreachable daemon 3.
            """, helpNames: [.long])

    @Option(name: .customShort("m"), help: ArgumentHelp("The monitor.", valueName: "monitor")) var monitor: String
    @OptionGroup var daemon: DaemonOptions

    func run() async throws {
        let snapshot = try await DaemonClient(daemon).status()
        guard let line = snapshot.monitors?.first(where: { $0.name == monitor }) else {
            fail("Unknown monitor \(monitor).", code: .badUsage)
        }
        print(max(0, line.lastCheckMillis ?? 0))
    }
}

struct ClpCfGet: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "clpcfget", abstract: "Answer a configuration query in clp.conf element paths.",
        discussion: """
            -e PATH prints the names of the elements at PATH, one per line (/root/monitor/types, \
            /root/monitor/TYPE, /root/resource/types, /root/resource/TYPE, /root/heartbeat/types, \
            /root/server, /root/group); -g PATH prints one value (/root/cluster/name, \
            /root/monitor/TYPE@NAME/target, …; see docs/commands.md). A path that names nothing \
            prints nothing and exits 0. The configuration is --config, else the one the local \
            daemon runs, else /etc/understudy/cluster.yaml.
            """, helpNames: [.long])

    @Option(name: .customShort("e"), help: ArgumentHelp("List the names of the elements at this path.", valueName: "path"))
    var enumerate: String?
    @Option(name: .customShort("g"), help: ArgumentHelp("Print the value of the element at this path.", valueName: "path"))
    var get: String?
    @Option(name: .long, help: ArgumentHelp("The configuration file.", valueName: "file")) var config: String?
    @OptionGroup var daemon: DaemonOptions

    func validate() throws {
        guard (enumerate == nil) != (get == nil) else { throw ValidationError("Give exactly one of -e PATH, -g PATH.") }
    }

    func run() async throws {
        let path = await configurationPath()
        let loaded: ClusterConfig
        do {
            loaded = try ConfigLoader.loadWithWarnings(path: path, checkFiles: false).config
        } catch {
            fail("\(error)", code: .badUsage)
        }
        do {
            if let enumerate {
                for name in try ConfigQuery.enumerate(enumerate, in: loaded) { print(name) }
            } else if let get, let value = try ConfigQuery.get(get, in: loaded) {
                print(value)
            }
        } catch {
            fail("clpcfget: \(error)", code: .badUsage)
        }
    }

    /// --config, else the file the local daemon runs (asked briefly), else the default.
    func configurationPath() async -> String {
        if let config { return config }
        let client = DaemonClient(daemon)
        if case .status(let snapshot) = await client.trySend(.status(target: nil), timeout: .seconds(5)), let path = snapshot.configPath {
            return path
        }
        return Defaults.configPath
    }
}
