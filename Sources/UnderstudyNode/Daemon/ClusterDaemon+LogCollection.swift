import Foundation
import UnderstudyEngine
import UnderstudyModel

// `clplogcc`: this server's part of a log collection (LogCollection.swift), asked by the local
// CLI or, over the control channel, by the daemon of the server the CLI runs on.
extension ClusterDaemon {
    /// A step asked through the local socket: here, or forwarded to `target`.
    func logCollection(_ step: LogCollectionStep, target: ServerName) async -> LocalResponse {
        let target = Self.serverName(forNameOrAddress: target, in: config)
        if target == me { return .logCollection(await logCollectionHere(step)) }
        guard config.server(named: target) != nil else {
            return .result(CommandResult(.badUsage, "Unknown server \(target)."))
        }
        switch await askPeer(target, .logCollection(step)) {
        case .logCollection(let answer): return .logCollection(answer)
        // Exit code 3 is reserved for the local daemon.
        case .result(let result): return .result(CommandResult(.failed, result.message))
        case .status, .configuration, .alerts, .alertEntries, .heartbeatState: return .result(CommandResult(.failed, "unexpected answer from \(target)"))
        }
    }

    /// A step for this server.
    func logCollectionHere(_ step: LogCollectionStep) async -> LogCollectionAnswer {
        await logCollector.handle(step) { type, label in await self.logArchiveSources(type: type, label: label) }
    }

    /// What this server's archive is built from, as it is now.
    func logArchiveSources(type: LogCollectionType, label: String) -> LogArchiveSources {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return LogArchiveSources(
            server: me, cluster: config.cluster.name, type: type, label: label, stateDirectory: paths.stateDirectory,
            configPath: config.sourcePath, runningYAML: runningBundle.yaml, scripts: runningBundle.scripts.mapValues(\.content),
            statusJSON: try? encoder.encode(snapshot()), daemonLogPath: LogArchiveSources.standardErrorFile(),
            journalUnit: LogArchiveSources.systemdUnit(), version: Defaults.productVersion)
    }
}
