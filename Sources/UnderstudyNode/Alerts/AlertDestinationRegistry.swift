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
        "mail": { config, context in
            guard case .mail(let settings) = config.kind else { throw mismatch(config, "mail") }
            let security: MailSecurity
            switch settings.security {
            case .none: security = .none
            case .starttls: security = .starttls
            case .tls: security = .tls
            }
            return try MailDestination(
                settings: MailSettings(
                    host: settings.address, port: settings.port, security: security, caFile: settings.caFile,
                    verifyCertificate: settings.verifyCertificate, user: settings.user,
                    password: try settings.passwordFile.map(readPassword), from: settings.from, to: settings.to,
                    timeout: settings.timeout))
        },
        "snmp": { config, _ in
            guard case .snmp(let settings) = config.kind else { throw mismatch(config, "snmp") }
            return try SNMPTrapDestination(
                settings: TrapSettings(
                    managers: settings.managers.map { TrapManager(host: $0.host, port: $0.port) }, community: settings.community,
                    version: settings.version == .v1 ? .v1 : .v2c))
        },
    ]

    /// The first line of a password file (read when the destination is built: at start and
    /// at each configuration apply). Never logged.
    static func readPassword(_ path: String) throws -> String {
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
            throw AlertDeliveryError("cannot read the SMTP password file \(path)")
        }
        let line = text.split(separator: "\n", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? ""
        let password = line.trimmingCharacters(in: CharacterSet(charactersIn: "\r"))
        guard !password.isEmpty else { throw AlertDeliveryError("the SMTP password file \(path) is empty") }
        return password
    }

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
