import Foundation
import Testing
import UnderstudyModel
import UnderstudyTestSupport

@testable import UnderstudyNode

#if canImport(Glibc)
    import Glibc
#endif

@Suite("Command destination")
struct CommandDestinationTests {
    static func alert(_ module: String, _ id: Int, _ level: LogLevel, _ message: String) -> AlertEvent {
        AlertEvent(
            cluster: "c1", server: "node2", time: Date(timeIntervalSince1970: 1_700_000_000.5), level: level, module: module, eventID: id,
            message: message)
    }

    static func destination(_ path: String, timeout: Duration = .seconds(10)) -> CommandDestination {
        CommandDestination(
            name: "agent", settings: CommandDestinationSettings(path: path, timeout: timeout, recipient: "/var/log/cluster-alerts"),
            runner: ScriptRunner(killGrace: .milliseconds(200)), host: HostFacts.detect(productVersion: "t", installPath: "/opt/u"))
    }

    @Test("a real script gets the event in CLP_* and Pacemaker's CRM_alert_* variables")
    func environment() async throws {
        try await withTemporaryFolder { folder in
            let script = try writeScript(folder, "agent.sh", "env | grep -E '^(CLP_|CRM_)' | sort > \(folder)/env.$CRM_alert_node_sequence")
            let agent = Self.destination(script)
            try await agent.deliver(Self.alert("nm", 2, .warning, "Server node1 is down."))
            try await agent.deliver(Self.alert("rm", 9, .error, "Monitor web-http detected an error."))
            func variables(_ number: Int) throws -> [String: String] {
                let text = try String(contentsOfFile: "\(folder)/env.\(number)", encoding: .utf8)
                return Dictionary(
                    text.split(separator: "\n").map { line -> (String, String) in
                        let parts = line.split(separator: "=", maxSplits: 1)
                        return (String(parts[0]), parts.count > 1 ? String(parts[1]) : "")
                    }, uniquingKeysWith: { first, _ in first })
            }
            let node = try variables(1)
            #expect(node["CLP_EVENT_MODULE"] == "nm" && node["CLP_EVENT_ID"] == "2" && node["CLP_EVENT_LEVEL"] == "WARN")
            #expect(node["CLP_EVENT_MESSAGE"] == "Server node1 is down." && node["CLP_SERVER"] == "node2" && node["CLP_CLUSTER"] == "c1")
            #expect(node["CLP_EVENT_TIME"] == "2023-11-14T22:13:20.500Z")
            #expect(node["CRM_alert_kind"] == "node" && node["CRM_alert_desc"] == "lost" && node["CRM_alert_node"] == "node2")
            #expect(node["CRM_alert_recipient"] == "/var/log/cluster-alerts" && node["CRM_alert_node_sequence"] == "1")
            #expect(node["CRM_alert_timestamp"] == "22:13:20.500000" && node["CRM_alert_timestamp_epoch"] == "1700000000")
            #expect(node["CRM_alert_timestamp_usec"] == "500000" && node["CRM_alert_version"] != nil)
            #expect(node["CRM_notify_kind"] == "node" && node["CRM_alert_rsc"] == nil)
            let resource = try variables(2)
            #expect(resource["CRM_alert_kind"] == "resource" && resource["CRM_alert_task"] == "monitor")
            #expect(resource["CRM_alert_rc"] == "1" && resource["CRM_alert_target_rc"] == "0" && resource["CRM_alert_status"] == "1")
            #expect(resource["CRM_alert_desc"] == "Monitor web-http detected an error." && resource["CRM_alert_node_sequence"] == "2")
        }
    }

    @Test("Pacemaker's kinds: fencing, resource, node")
    func kinds() {
        #expect(CommandDestination.kind(Self.alert("rc", 46, .warning, "")) == "fencing")
        #expect(CommandDestination.kind(Self.alert("nm", 30, .error, "")) == "fencing")
        #expect(CommandDestination.kind(Self.alert("rc", 21, .info, "")) == "resource")
        #expect(CommandDestination.task(Self.alert("rc", 21, .info, "")) == "stop")
        #expect(CommandDestination.kind(Self.alert("logcmd", 1, .info, "")) == "node")
    }

    @Test("a failing or hanging command fails the attempt; the hanging one's process group is killed")
    func failureAndTimeout() async throws {
        try await withTemporaryFolder { folder in
            let failing = try writeScript(folder, "fail.sh", "exit 3")
            do {
                try await Self.destination(failing).deliver(Self.alert("nm", 1, .info, "x"))
                Issue.record("exit 3 counted as a delivery")
            } catch {
                #expect("\(error)".contains("exit 3"))
            }
            let hanging = try writeScript(folder, "hang.sh", "sleep 60 & echo $! > \(folder)/child.pid\nwait")
            let started = ContinuousClock.now
            do {
                try await Self.destination(hanging, timeout: .milliseconds(300)).deliver(Self.alert("nm", 1, .info, "x"))
                Issue.record("a hanging command counted as a delivery")
            } catch {
                #expect("\(error)".contains("timed out"))
            }
            #expect(started.duration(to: .now) < .seconds(5))
            let child = try #require(await readPID(folder + "/child.pid"))
            #expect(await eventually { kill(child, 0) != 0 })
        }
    }
}
