import ArgumentParser
import Dispatch
import Foundation
import Logging
import UnderstudyModel
import UnderstudyNode
import UnderstudyWeb

#if canImport(Glibc)
    import Glibc
#endif

struct DaemonCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "daemon", abstract: "Run the cluster daemon of one server (in the foreground).",
        discussion: "SIGTERM stops the local groups cleanly (CLP_FACTOR=SERVERSHUTDOWN, CLP_LASTACTION=NONE) and exits.")

    @Option(name: .long, help: "The cluster configuration file.") var config: String = Defaults.configPath
    @Option(name: .long, help: "This server's name in servers: (default: the host name).") var server: String?
    @Option(
        name: .customLong("state-dir"),
        help: "State directory; also holds the control socket (default: /var/lib/understudy and /run/understudy).")
    var stateDirectory: String?
    @Option(name: .long, help: "Log level: trace, debug, info, notice, warning, error.") var logLevel: String = "info"

    func run() async throws {
        let level = Logger.Level(rawValue: logLevel) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let name = server ?? ProcessInfo.processInfo.hostName.split(separator: ".").first.map(String.init) ?? ""
        let logger = Logger(label: "understudy.\(name)")
        let loaded: ClusterConfig
        do throws(ConfigErrors) {
            let withWarnings = try ConfigLoader.loadWithWarnings(path: config, checkFiles: false)
            let problems = StorageReadiness.problems(withWarnings, server: name)
            guard problems.isEmpty else { throw ConfigErrors(problems) }
            loaded = withWarnings.config
        } catch {
            for diagnostic in error.diagnostics { printError(diagnostic.description) }
            throw ExitCode(2)
        }
        let daemon: ClusterDaemon
        do {
            daemon = try ClusterDaemon(
                config: loaded, server: name, paths: DaemonPaths.resolve(stateDirectory: stateDirectory), logger: logger)
        } catch {
            printError("understudy daemon: cannot start: \(error)")
            throw ExitCode(2)
        }
        // The web server (cluster.web): certificate, key and listen addresses are checked now,
        // so a mistake stops the start with a clear message instead of a server without API.
        var web: WebServer?
        if loaded.cluster.web != nil {
            do {
                web = try WebServer(
                    daemon: daemon, config: loaded, server: name, alertLogPath: daemon.alertLogPath,
                    logger: Logger(label: "understudy.\(name).web"))
            } catch {
                printError("understudy daemon: cannot start the web server: \(error)")
                throw ExitCode(2)
            }
        }
        // SIGTERM / SIGINT: stop the groups cleanly, then exit.
        var sources: [DispatchSourceSignal] = []
        for signalNumber in [SIGTERM, SIGINT] {
            signal(signalNumber, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: .global())
            source.setEventHandler { Task { await daemon.terminate() } }
            source.resume()
            sources.append(source)
        }
        let webTask = web.map { server in Task { await server.run() } }
        defer { webTask?.cancel() }
        do {
            try await daemon.run()
        } catch {
            printError("understudy daemon: \(error)")
            throw ExitCode(1)
        }
        webTask?.cancel()
        await webTask?.value
        sources.forEach { $0.cancel() }
    }
}

struct KeygenCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keygen",
        abstract: "Write a new random key (mode 0600): the cluster key for `secret-file:`, or a key for `rexec-clients:`.")

    @Argument(help: "Where to write the key.") var file: String
    @Flag(name: .long, help: "Replace an existing file.") var force = false

    func run() throws {
        do {
            _ = try ClusterKey.generate(to: file, overwrite: force)
            print("Wrote a new cluster key to \(file). Copy it to every server (mode 0600).")
        } catch {
            printError("\(error)")
            throw ExitCode(1)
        }
    }
}

struct InstallAliasesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "install-aliases",
        abstract:
            "Create the clp* command symlinks (\(Aliases.names.joined(separator: ", "))) in a folder."
    )

    @Argument(help: "Folder for the symlinks, e.g. /usr/local/sbin.") var directory: String

    func run() throws {
        let binary = currentExecutablePath()
        let manager = FileManager.default
        for alias in Aliases.names {
            let link = (directory as NSString).appendingPathComponent(alias)
            if let existing = try? manager.destinationOfSymbolicLink(atPath: link) {
                if existing == binary { continue }
                try? manager.removeItem(atPath: link)
            } else if manager.fileExists(atPath: link) {
                printError("\(link) exists and is not a symlink; not replaced.")
                throw ExitCode(1)
            }
            do {
                try manager.createSymbolicLink(atPath: link, withDestinationPath: binary)
                print("\(link) -> \(binary)")
            } catch {
                printError("cannot create \(link): \(error.localizedDescription)")
                throw ExitCode(1)
            }
        }
    }
}

enum Aliases {
    static let names = [
        "clpstat", "clpcl", "clpgrp", "clprsc", "clpmonctrl", "clprexec", "clpdown", "clpstdn", "clpcfctrl", "clpperfc", "clpcfget",
        "clptoratio", "clplogcmd", "clplogcc", "clpregctrl",
    ]
}

/// The running binary, resolved (symlinks followed).
func currentExecutablePath() -> String {
    (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
}

/// `understudy keeper`: started by the daemon; fences its resources if it dies (see `Keeper`).
struct KeeperCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keeper", abstract: "Started by the daemon: fences its resources when it dies.", shouldDisplay: false)
    @Option(name: .long) var config: String
    @Option(name: .long) var server: String
    @Option(name: .customLong("state-dir")) var stateDirectory: String
    /// The daemon's `DaemonInstance` token: what it spawned carries it.
    @Option(name: .long) var instance: String?
    /// The daemon's boot id, for the notice to the peers after a fence.
    @Option(name: .long) var boot: UInt64?

    func run() async throws {
        LoggingSystem.bootstrap { StreamLogHandler.standardError(label: $0) }
        let logger = Logger(label: "understudy.keeper.\(server)")
        let loaded: ClusterConfig
        do {
            loaded = try ConfigLoader.load(path: config)
        } catch {
            printError("understudy keeper: cannot read \(config)")
            throw ExitCode(2)
        }
        // Signals meant for the daemon's process group must not take the keeper with it.
        signal(SIGINT, SIG_IGN)
        signal(SIGTERM, SIG_IGN)
        await Keeper.run(
            config: loaded, server: server, stateDirectory: stateDirectory, instance: instance, boot: boot, logger: logger)
    }
}
