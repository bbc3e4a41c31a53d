import Foundation
import UnderstudyEngine
import UnderstudyModel

// Alerts beside the alert log: the router's notices about its destinations, and clplogcmd.
extension ClusterDaemon {
    /// The longest `clplogcmd` message (CLUSTERPRO's alert buffer once overflowed above 512
    /// bytes, reference §7.2: messages stay bounded).
    static let logCommandMessageLimit = 511

    /// A destination started failing or works again: one alert each time (never per event).
    func alertDestinationChanged(_ notice: AlertRouter.Notice) {
        switch notice {
        case .failing(let name, let type, let reason):
            record(
                LogEntry(
                    .alertDestinationFailing,
                    "Alert destination \(name) (\(type)) is failing: \(reason). Alerts to it are still tried; it is said again when one goes through."
                ))
        case .recovered(let name, let type):
            record(LogEntry(.alertDestinationRecovered, "Alert destination \(name) (\(type)) works again."))
        }
    }

    /// `clplogcmd`: writes the caller's event (module `logcmd`) where it asks.
    func logCommand(_ request: LogCommandRequest) -> CommandResult {
        let message = request.message.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !message.isEmpty else { return CommandResult(.badUsage, "The message (-m) is empty.") }
        guard message.utf8.count <= Self.logCommandMessageLimit else {
            return CommandResult(
                .badUsage, "The message (-m) is \(message.utf8.count) bytes; at most \(Self.logCommandMessageLimit) are allowed.")
        }
        guard message.unicodeScalars.allSatisfy({ $0.value >= 32 && $0.value != 127 }) else {
            return CommandResult(.badUsage, "The message (-m) must be one line without control characters.")
        }
        guard request.id >= 0 else { return CommandResult(.badUsage, "The event id (-i) must not be negative, got \(request.id).") }
        let entry = LogEntry(request.level, EventKind.logCommand.module, request.id, message)
        guard let outputs = request.outputs else {
            write(entry)
            return .ok("Command succeeded.")
        }
        let alert = writeAlertLog(entry, alertLogToo: outputs.contains("alert"))
        let types = outputs.filter { $0 != "alert" }
        let names = config.alerts.destinations.filter { types.contains($0.kind.typeName) }.map(\.name)
        if !names.isEmpty { alertRouter.submit(alert, only: names) }
        let missing = types.filter { type in !config.alerts.destinations.contains { $0.kind.typeName == type } }
        guard missing.isEmpty else {
            let sentTo = (outputs.contains("alert") ? ["the alert log"] : []) + names
            return .ok(
                "Command succeeded (no \(missing.joined(separator: " or ")) destination is configured; written to "
                    + (sentTo.isEmpty ? "the daemon's log only" : sentTo.joined(separator: ", ")) + ").")
        }
        return .ok("Command succeeded.")
    }
}
