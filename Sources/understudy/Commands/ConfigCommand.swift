// `understudy config check FILE`: load and validate a cluster config without a daemon, so it
// can run on an admin workstation before the file is distributed. `config apply` and
// `config commit` distribute it (ConfigApplyCommands.swift).

import ArgumentParser
import Foundation
import UnderstudyEngine
import UnderstudyModel

struct ConfigCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config",
        abstract: "Work with cluster configuration files.",
        subcommands: [Check.self, Apply.self, Commit.self, Import.self]
    )

    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Load and validate a cluster config file.",
            discussion: """
                Prints "FILE: OK (…)" and any warnings, and exits 0 when the file can be used. \
                Otherwise prints one line per problem (file:line:column: key.path: message) \
                to standard error and exits 2.
                """
        )

        @Argument(help: "The config file to check.")
        var file: String = Defaults.configPath

        @Flag(name: .long, help: "Do not warn about files (secret file, scripts) missing on this machine.")
        var noFileChecks = false

        func run() throws {
            let loaded: LoadedConfig
            do throws(ConfigErrors) {
                loaded = try ConfigLoader.loadWithWarnings(path: file, checkFiles: !noFileChecks)
            } catch {
                for diagnostic in error.diagnostics { printToStandardError(diagnostic.description) }
                let count = error.errors.count
                printToStandardError("\(file): \(count) \(count == 1 ? "error" : "errors")")
                throw ExitCode(2)
            }
            let config = loaded.config
            // The daemon refuses the same way: its heartbeats would never arrive.
            let heartbeat = HeartbeatBudget.estimate(config)
            if let problem = heartbeat.problem {
                printToStandardError("\(file): \(problem)")
                throw ExitCode(2)
            }
            let resourceCount = config.groups.reduce(0) { $0 + $1.resources.count }
            print(
                "\(file): OK (\(config.servers.count) servers, \(config.groups.count) groups, "
                    + "\(resourceCount) resources, \(config.monitors.count) monitors; "
                    + "largest heartbeat \(heartbeat.bytes) of \(HeartbeatBudget.limit) bytes)")
            for warning in loaded.warnings { printToStandardError(warning.description) }
        }
    }
}

private func printToStandardError(_ line: String) {
    FileHandle.standardError.write(Data((line + "\n").utf8))
}
