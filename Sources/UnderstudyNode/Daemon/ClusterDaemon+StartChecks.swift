import Foundation
import Logging
import NIOCore
import UnderstudyEngine
import UnderstudyModel

#if canImport(Glibc)
    import Glibc
#endif

// What the daemon checks before it starts: the types it runs, its addresses, the
// configuration hash its heartbeats carry.
extension ClusterDaemon {
    // MARK: - Configuration checks

    /// The daemon refuses configurations with types it does not run yet, naming them.
    static func checkSupported(_ config: ClusterConfig) throws {
        var problems: [String] = []
        for group in config.groups {
            for resource in group.resources where !ResourceDrivers.supportedTypes.contains(resource.type) {
                problems.append("resource \(resource.name) (group \(group.name)) has type '\(resource.type.rawValue)'")
            }
        }
        for heartbeat in config.heartbeats where !HeartbeatTransports.supportedTypes.contains(heartbeat.typeName) {
            problems.append("heartbeat \(heartbeat.name) has type '\(heartbeat.typeName)'")
        }
        for np in config.networkPartition where !PartitionResolvers.supportedTypes.contains(np.typeName) {
            problems.append("network-partition \(np.name) has type '\(np.typeName)'")
        }
        for monitor in config.monitors {
            if let reason = MonitorProbes.unsupportedReason(monitor) { problems.append("monitor \(monitor.name) has \(reason)") }
        }
        if !problems.isEmpty {
            throw DaemonStartError(
                "\(config.sourcePath): this version of the daemon does not run these types yet: "
                    + problems.joined(separator: "; ")
                    + " (supported now: resources "
                    + ResourceDrivers.supportedTypes.map(\.rawValue).sorted().joined(separator: ", ") + "; heartbeats "
                    + HeartbeatTransports.supportedTypes.sorted().joined(separator: ", ") + "; network-partition "
                    + PartitionResolvers.supportedTypes.sorted().joined(separator: ", ") + "; monitors "
                    + MonitorProbes.supported.map(\.rawValue).sorted().joined(separator: ", ") + ")")
        }
        if !config.heartbeats.contains(where: { $0.typeName == "lanhb" }) {
            throw DaemonStartError("\(config.sourcePath): at least one lanhb heartbeat is needed")
        }
        if let problem = HeartbeatBudget.estimate(config).problem { throw DaemonStartError("\(config.sourcePath): \(problem)") }
    }

    /// The address of a server on its first LAN heartbeat path: where its control channel
    /// listens.
    static func address(of server: ServerName, in config: ClusterConfig) -> String? {
        for heartbeat in config.heartbeats {
            if case .lan(let addresses) = heartbeat.kind, let address = addresses[server] { return address }
        }
        return nil
    }

    static func serverName(forNameOrAddress text: String, in config: ClusterConfig) -> String {
        if config.server(named: text) != nil { return text }
        for heartbeat in config.heartbeats {
            if case .lan(let addresses) = heartbeat.kind, let match = addresses.first(where: { $0.value == text }) { return match.key }
        }
        return text
    }

    /// The version of the configuration this server starts with: the recorded one when the
    /// file is the one recorded; the pending one when the file is that (the daemon died after
    /// writing the files of a switch, before recording it); otherwise 0 (a file edited or
    /// copied by hand: a cluster that distributes its configuration hands it the current one).
    /// A pending file that cannot be used is moved aside (and said once the log is open); a
    /// version record that cannot be read stops the start, naming the file.
    static func configVersion(hash: String, store: ConfigStore) throws -> (UInt64, [LogEntry]) {
        var notes: [LogEntry] = []
        let recorded: ConfigVersionRecord?
        do {
            recorded = try store.runningVersion()
        } catch {
            throw DaemonStartError("\(error)")
        }
        var pending: PendingConfiguration?
        do {
            pending = try store.pending()
        } catch {
            let kept = (try? store.setAside(store.pendingPath)) ?? store.pendingPath
            notes.append(LogEntry(.configurationFetchFailed, "The pending configuration could not be used (\(error)); kept as \(kept)."))
        }
        if let record = recorded, record.hash == hash {
            if let stale = pending, stale.version <= record.version { try? store.removePending() }
            return (record.version, notes)
        }
        if let pending, pending.hash == hash {
            try store.saveRunningVersion(ConfigVersionRecord(version: pending.version, hash: hash))
            try? store.removePending()
            return (pending.version, notes)
        }
        return (0, notes)
    }
}
