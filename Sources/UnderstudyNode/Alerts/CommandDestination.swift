import Foundation
import Synchronization
import UnderstudyModel

/// Runs a program per alert with the event in its environment: `CLP_EVENT_*`, `CLP_SERVER`,
/// `CLP_CLUSTER`, and Pacemaker's alert-agent variables (`CRM_alert_*`, and the same as
/// `CRM_notify_*` as Pacemaker passes them for ClusterMon scripts), so Pacemaker's sample
/// agents run unchanged. It runs in its own session through the daemon's script runner; at
/// the timeout its whole process group is killed. Exit 0 is a delivery.
public final class CommandDestination: AlertDestination {
    public let name: String
    let settings: CommandDestinationSettings
    let runner: ScriptRunner
    let base: [String: String]
    private let sequence = Mutex(0)

    public init(name: String, settings: CommandDestinationSettings, runner: ScriptRunner, host: HostFacts) {
        self.name = name
        self.settings = settings
        self.runner = runner
        base = ScriptEnvironment.compose(base: ScriptEnvironment.base(), host: host, variables: [:])
    }

    public func deliver(_ alert: AlertEvent) async throws {
        let number = sequence.withLock { value in
            value += 1
            return value
        }
        let environment = base.merging(Self.variables(alert, recipient: settings.recipient, sequence: number)) { _, event in event }
        let outcome = await runner.run(
            ScriptInvocation(executable: settings.path, arguments: settings.arguments, environment: environment, timeout: settings.timeout))
        guard outcome.isSuccess else { throw AlertDeliveryError("alert command \(settings.path): \(outcome)") }
    }

    /// Pacemaker's three kinds: fencing for a group fenced or a lost partition, resource for
    /// groups, resources and monitors, node for everything about servers and the service.
    static func kind(_ alert: AlertEvent) -> String {
        let event = (alert.module, alert.eventID)
        if event == (EventKind.groupFenced.module, EventKind.groupFenced.id)
            || event == (EventKind.partitionLost.module, EventKind.partitionLost.id)
        {
            return "fencing"
        }
        return ["rc", "rm"].contains(alert.module) ? "resource" : "node"
    }

    /// The operation a resource alert is about, in Pacemaker's words.
    static func task(_ alert: AlertEvent) -> String {
        if alert.module == "rm" { return "monitor" }
        switch alert.eventID {
        case 20...28, 41, 42, 87: return "stop"
        default: return "start"
        }
    }

    /// Every variable of one run.
    public static func variables(_ alert: AlertEvent, recipient: String, sequence: Int) -> [String: String] {
        let seconds = alert.time.timeIntervalSince1970
        let micros = Int((seconds - seconds.rounded(.down)) * 1_000_000)
        // Pacemaker's default timestamp-format, %H:%M:%S.%06N (UTC here).
        let timestamp = UTCTimestamp.timeOfDayMicroseconds(alert.time)
        let kind = kind(alert)
        let failed = alert.level != .info
        var description = alert.message
        if kind == "node" && alert.module == EventKind.serverUp.module {
            if alert.eventID == EventKind.serverUp.id { description = "member" }
            if alert.eventID == EventKind.serverDown.id { description = "lost" }
        }
        var variables: [String: String] = [
            "CLP_EVENT_MODULE": alert.module, "CLP_EVENT_ID": String(alert.eventID), "CLP_EVENT_LEVEL": alert.level.rawValue,
            "CLP_EVENT_MESSAGE": alert.message, "CLP_SERVER": alert.server, "CLP_CLUSTER": alert.cluster,
            "CLP_EVENT_TIME": UTCTimestamp.milliseconds(alert.time),
        ]
        var agent: [String: String] = [
            "kind": kind, "version": Defaults.productVersion, "recipient": recipient, "node_sequence": String(sequence),
            "timestamp": timestamp, "timestamp_epoch": String(Int(seconds.rounded(.down))), "timestamp_usec": String(micros),
            "node": alert.server, "desc": description,
        ]
        if kind != "node" {
            agent["task"] = kind == "fencing" ? "off" : task(alert)
            agent["rc"] = failed ? "1" : "0"
        }
        if kind == "resource" {
            // Events carry their object's name in the message only (CRM_alert_desc).
            agent["rsc"] = ""
            agent["interval"] = "0"
            agent["target_rc"] = "0"
            agent["status"] = failed ? "1" : "0"
        }
        for (name, value) in agent {
            variables["CRM_alert_" + name] = value
            variables["CRM_notify_" + name] = value
        }
        return variables
    }
}
