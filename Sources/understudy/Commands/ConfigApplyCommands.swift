// Distributing a configuration to a running cluster: `understudy config apply FILE`,
// `understudy config commit VERSION`, and CLUSTERPRO's `clpcfctrl --push/--pull`.

import ArgumentParser
import Foundation
import UnderstudyEngine
import UnderstudyModel
import UnderstudyNode

extension ConfigCommand {
    struct Apply: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Apply a new configuration to every server of the running cluster.",
            discussion: """
                Validates FILE (and the scripts/ folder beside it), shows every change and the \
                reflection method it needs, and applies it to every server in two phases \
                (stored as pending everywhere, then switched together). A change that cannot \
                be applied online is refused, naming the method to use; nothing is applied \
                half-way. Exit codes: 0 applied (or nothing to change), 1 refused or failed, \
                2 invalid file, 3 the local daemon is not reachable, 4 another apply is running.
                """)

        @Argument(help: "The new cluster file; its scripts/ folder is distributed with it.") var file: String
        @Flag(name: .long, help: "Only show the changes and the reflection method.") var dryRun = false
        @Flag(name: .long, help: "Phase 1 only: store the configuration as pending on every server (switch with `config commit`).")
        var prepareOnly = false
        @OptionGroup var daemon: DaemonOptions

        func run() async throws {
            let bundle = try ConfigDistribution.readChecked(file)
            let answer = try await DaemonClient(daemon).send(
                .configApply(bundle, dryRun: dryRun, prepareOnly: prepareOnly), timeout: .seconds(120))
            ConfigDistribution.finish(answer)
        }
    }

    struct Commit: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Switch every server to a configuration stored with `config apply --prepare-only`.")

        @Argument(help: "The version `config apply --prepare-only` printed.") var version: UInt64
        @OptionGroup var daemon: DaemonOptions

        func run() async throws {
            ConfigDistribution.finish(try await DaemonClient(daemon).send(.configCommit(version: version), timeout: .seconds(120)))
        }
    }
}

/// `clpcfctrl --push [-l|-w] [-x DIR]`, `clpcfctrl --pull [-l|-w] -x DIR` (reference §2.8).
struct ClpCfCtrl: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "clpcfctrl", abstract: "Distribute the cluster configuration (push) or fetch it (pull).",
        discussion: """
            --push applies DIR/cluster.yaml (and DIR/scripts/) to every server of the running \
            cluster, as `understudy config apply` does. --pull writes the configuration the \
            local server runs into DIR. -l is accepted for compatibility (files are UTF-8).
            """, helpNames: [.long])

    @Flag(name: .long, help: "Distribute the configuration in DIR to every server.") var push = false
    @Flag(name: .long, help: "Write the running configuration into DIR.") var pull = false
    @Flag(name: .customShort("l"), help: "The file was written on Linux (accepted; files are UTF-8).") var linux = false
    @Flag(name: .customShort("w"), help: "The file was written on Windows (refused: save it as UTF-8).") var windows = false
    @Option(name: .customShort("x"), help: ArgumentHelp("The folder holding cluster.yaml and scripts/.", valueName: "dir"))
    var directory: String?
    @Option(name: .long, help: "The cluster file's name in DIR.") var file = "cluster.yaml"
    @OptionGroup var daemon: DaemonOptions

    func run() async throws {
        guard push != pull else { fail("Give exactly one of --push and --pull.", code: .badUsage) }
        if windows { fail("-w: Windows-encoded (SJIS) files are not supported; save the file as UTF-8 and use -l.", code: .badUsage) }
        let client = DaemonClient(daemon)
        if push {
            let folder = directory ?? FileManager.default.currentDirectoryPath
            let bundle = try ConfigDistribution.readChecked((folder as NSString).appendingPathComponent(file))
            ConfigDistribution.finish(
                try await client.send(.configApply(bundle, dryRun: false, prepareOnly: false), timeout: .seconds(120)))
        }
        guard let directory else { fail("--pull needs -x DIR.", code: .badUsage) }
        switch try await client.send(.configPull) {
        case .configuration(let bundle, let version, let hash):
            do {
                try bundle.write(toFolder: directory, fileName: file)
            } catch {
                fail("Cannot write into \(directory): \(error)", code: .failed)
            }
            print(
                "\((directory as NSString).appendingPathComponent(file)): configuration version \(version) (\(hash.prefix(12))), \(bundle.scripts.count) scripts."
            )
        case .result(let result): fail(result.message, code: result.code == .success ? .failed : result.code)
        default: fail("unexpected answer from the daemon", code: .failed)
        }
    }
}

enum ConfigDistribution {
    /// Reads a cluster file and its scripts; a file the validator refuses ends the program
    /// with its problems (file:line:column: key: message) and exit code 2.
    static func readChecked(_ path: String) throws -> ConfigBundle {
        do throws(ConfigErrors) {
            let loaded = try ConfigLoader.loadWithWarnings(path: path, checkFiles: false)
            if let problem = HeartbeatBudget.estimate(loaded.config).problem { fail("\(path): \(problem)", code: .badUsage) }
        } catch {
            for diagnostic in error.diagnostics { printError(diagnostic.description) }
            fail("\(path): \(error.errors.count) \(error.errors.count == 1 ? "error" : "errors"); nothing was applied.", code: .badUsage)
        }
        do {
            return try ConfigBundle.read(configPath: path)
        } catch {
            fail("\(error)", code: .badUsage)
        }
    }

    /// Prints an apply's report and exits with its code.
    static func finish(_ answer: LocalResponse) -> Never {
        guard case .configApply(let report) = answer else {
            if case .result(let result) = answer { fail(result.message, code: result.code == .success ? .failed : result.code) }
            fail("unexpected answer from the daemon", code: .failed)
        }
        if let reflection = report.reflection, !reflection.isEmpty {
            print("Changes:")
            for line in reflection.lines { print("  " + line) }
            print(reflection.summary)
        }
        for server in report.servers { print("  \(server.server): \(server.succeeded ? "ok" : "refused"), \(server.message)") }
        if report.result.code != .success { fail(report.result.message, code: report.result.code) }
        print(report.result.message)
        Foundation.exit(0)
    }
}
