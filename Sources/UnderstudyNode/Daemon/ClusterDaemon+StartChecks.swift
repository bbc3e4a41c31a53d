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

    static func configHash(_ config: ClusterConfig) -> String {
        guard let text = try? String(contentsOfFile: config.sourcePath, encoding: .utf8) else { return "unknown" }
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in text.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x100_0000_01b3
        }
        return String(hash, radix: 16)
    }
}
