import Foundation
import Logging
import UnderstudyModel

/// What a destination may need from the daemon to be built.
public struct AlertDestinationContext: Sendable {
    public var cluster: String
    public var server: String
    public var runner: ScriptRunner
    public var host: HostFacts
    public var logger: Logger

    public init(cluster: String, server: String, runner: ScriptRunner, host: HostFacts, logger: Logger) {
        self.cluster = cluster
        self.server = server
        self.runner = runner
        self.host = host
        self.logger = logger
    }
}

/// Builds destinations from the configuration by type name: one factory per type. A type
/// whose sender is not part of this build (or settings it cannot use) becomes a destination
/// whose every attempt fails with the reason, so it shows as failing in the status and in
/// one alert, and the daemon runs on.
public enum AlertDestinationRegistry {
    public typealias Factory = @Sendable (AlertDestinationConfig, AlertDestinationContext) throws -> any AlertDestination

    public static let factories: [String: Factory] = [
        "syslog": { config, _ in
            guard case .syslog(let settings) = config.kind else { throw mismatch(config, "syslog") }
            return SyslogDestination(name: config.name, settings: settings)
        },
        "webhook": { config, _ in
            guard case .webhook(let settings) = config.kind else { throw mismatch(config, "webhook") }
            return try WebhookDestination(name: config.name, settings: settings)
        },
        "command": { config, context in
            guard case .command(let settings) = config.kind else { throw mismatch(config, "command") }
            return CommandDestination(name: config.name, settings: settings, runner: context.runner, host: context.host)
        },
        "mail": { _, _ in throw AlertDeliveryError("mail alerts are not built into this version of the daemon") },
        "snmp": { _, _ in throw AlertDeliveryError("SNMP traps are not built into this version of the daemon") },
    ]

    /// Every configured destination, built (or standing in for the reason it could not be).
    public static func build(_ settings: AlertSettings, context: AlertDestinationContext) -> [AlertRouter.Entry] {
        settings.destinations.map { config in
            let destination: any AlertDestination
            do {
                guard let factory = factories[config.kind.typeName] else {
                    throw AlertDeliveryError("no sender for alert destinations of type \(config.kind.typeName)")
                }
                destination = try factory(config, context)
            } catch {
                context.logger.error("alert destination \(config.name) (\(config.kind.typeName)) cannot be used: \(error)")
                destination = UnavailableDestination(name: config.name, reason: "\(error)")
            }
            return AlertRouter.Entry(config: config, destination: destination)
        }
    }

    static func mismatch(_ config: AlertDestinationConfig, _ type: String) -> AlertDeliveryError {
        AlertDeliveryError("alert destination \(config.name) is of type \(config.kind.typeName), not \(type)")
    }
}

/// Stands in for a destination that could not be built: every attempt fails with why.
struct UnavailableDestination: AlertDestination {
    let name: String
    let reason: String

    func deliver(_ alert: AlertEvent) async throws { throw AlertDeliveryError(reason) }
}
