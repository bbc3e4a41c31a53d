import Foundation
import UnderstudyModel

/// One alert as the destinations beside the alert log receive it: a catalogued event
/// (EventCatalogue.swift) written on one server of one cluster.
public struct AlertEvent: Sendable, Equatable, Codable {
    public var cluster: String
    public var server: String
    public var time: Date
    public var level: LogLevel
    public var module: String
    public var eventID: Int
    public var message: String

    public init(cluster: String, server: String, time: Date, level: LogLevel, module: String, eventID: Int, message: String) {
        self.cluster = cluster
        self.server = server
        self.time = time
        self.level = level
        self.module = module
        self.eventID = eventID
        self.message = message
    }
}

/// Where alerts go beside the alert log: syslog, mail, an SNMP manager, a webhook, a command.
/// The alert router calls `deliver` off the daemon's actor, one alert at a time per
/// destination, behind a bounded queue, and retries with backoff: one call is one attempt,
/// bounded by the destination's own timeout, so a slow receiver never delays heartbeats.
public protocol AlertDestination: Sendable {
    /// Names the destination in status and in the alert about its failures (`mail`,
    /// `trap 192.0.2.9:162`).
    var name: String { get }
    /// Delivers one alert, or throws why it could not (a sentence naming the receiver).
    func deliver(_ alert: AlertEvent) async throws
}

/// A delivery error that says whether trying again could help: a receiver that refused for
/// good, or a mail already delivered to some recipients (a retry would send it twice). The
/// router gives such an alert up at once.
public protocol PermanentAlertFailure: Error {
    var isPermanent: Bool { get }
}
