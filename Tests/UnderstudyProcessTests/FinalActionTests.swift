import Foundation
import Testing
import UnderstudyEngine
import UnderstudyModel
import UnderstudyTestSupport

#if canImport(Glibc)
    import Glibc
#endif

/// Scenario 12: real scripts that fail. Activation: retry, failover, then the final action;
/// deactivation: retry, then a final action that reboots (recorded, not done).
@Suite("Process: activation and deactivation failures")
struct FinalActionTests {
    @Test("start script exits 1: retried once, failed over once (GROUPFAILOVER), then Online Failure on the last server")
    func activationFailureRetriesFailsOverThenGivesUp() async throws {
        var spec = ClusterSpec(subnet: 110)
        spec.groups = [
            GroupSpec(
                name: "grp1",
                resources: [ExecSpec(name: "grp1-app", start: .fail, activation: "{retry: 1, failover: 1, final-action: none}")])
        ]
        try await withCluster(spec) { cluster in
            try cluster.start()
            let status = try await cluster.waitForStatus("grp1 Online Failure on node2", on: "node3") { status in
                status.group(named: "grp1")?.status == .onlineFailure && status.group(named: "grp1")?.current == "node2"
            }
            #expect(status.group(named: "grp1")?.resources.first?.status == .onlineFailure, "\(status.summary)")
            #expect(status.group(named: "grp1")?.failoverCount == 1, "\(status.summary)")
            // It stays so: no further attempts anywhere.
            try await Task.sleep(for: .seconds(1))
            let runs = cluster.records
            #expect(
                runs.map { "\($0.action) \($0.server)" }
                    == ["start node1", "start node1", "stop node1", "start node2", "start node2"],
                "\(runs.summary)")
            for first in runs.starts.on("node1") {
                #expect(first["CLP_EVENT"] == "START")
                #expect(first["CLP_SERVER"] == "HOME")
            }
            let sourceStop = try #require(runs.stops.first)
            #expect(sourceStop["CLP_FACTOR"] == "GROUPFAILOVER")
            #expect(sourceStop["CLP_EVENT"] == "FAILOVER")
            #expect(sourceStop["CLP_LASTACTION"] == "NONE")
            for second in runs.starts.on("node2") {
                #expect(second["CLP_EVENT"] == "FAILOVER")
                #expect(second["CLP_SERVER"] == "OTHER")
                #expect(second["CLP_PRIORITY"] == "2")
            }
            #expect(runs.on("node3").isEmpty)
            let seen = try await cluster.clpstat(on: "node1")
            #expect(seen.group(named: "grp1")?.status == .onlineFailure, "\(seen.summary)")
            #expect(cluster.osActions.isEmpty)

            // clpgrp -n does not call a failed group online.
            let whereRuns = try await cluster.cli(["clpgrp", "-n", "grp1"], on: "node1")
            #expect(whereRuns.exitCode == 1, "\(whereRuns)")
        }
    }

    @Test("stop script exits 1 with deactivation final action reboot: retried, then the OS-control reboot command runs")
    func deactivationFailureReboots() async throws {
        var spec = ClusterSpec(subnet: 111)
        spec.groups = [
            GroupSpec(
                name: "grp1",
                resources: [ExecSpec(name: "grp1-app", stop: .fail, deactivation: "{retry: 1, final-action: reboot}")])
        ]
        try await withCluster(spec) { cluster in
            try cluster.start()
            try await cluster.waitUntilFormed()

            let stop = try await cluster.cli(["clpgrp", "-t", "grp1"], on: "node2")

            let exitCode = try await cluster.waitForExit("node1")
            #expect(exitCode == 0, "after the OS command the daemon exits")
            let rebooted = try await poll(upTo: .seconds(5)) { cluster.osActions == ["reboot"] }
            #expect(rebooted, "os-actions.log: \(cluster.osActions)")

            let runs = cluster.records
            #expect(runs.starts.count == 1, "\(runs.summary)")
            let groupStops = runs.stops.prefix(2)
            #expect(groupStops.count == 2, "one stop and one retry: \(runs.summary)")
            for failed in groupStops {
                #expect(failed.server == "node1")
                #expect(failed["CLP_FACTOR"] == "GROUPSTOP")
                #expect(failed["CLP_LASTACTION"] == "NONE")
            }
            let engineState =
                try JSONSerialization.jsonObject(
                    with: Data(contentsOf: URL(fileURLWithPath: cluster.stateDirectory(of: "node1") + "/engine.json"))) as? [String: Any]
            #expect(runs.stops.count == 2, "\(runs.summary)")
            #expect(engineState?["rebootCount"] as? Int == 1, "rebootCount \(String(describing: engineState?["rebootCount"]))")
            #expect(stop.exitCode == 1, "\(stop)")
            #expect(stop.standardError.contains("grp1"), "\(stop)")

            // The group was being stopped: nobody takes it over after node1 is gone.
            let status = try await cluster.waitForStatus("node1 Offline", on: "node2", timeout: cluster.spec.heartbeatTimeout + .seconds(5))
            {
                $0.server(named: "node1")?.status == .offline
            }
            try await Task.sleep(for: .milliseconds(500))
            #expect(cluster.records.count == runs.count, "\(cluster.records.summary)")
            #expect(try await cluster.clpstat(on: "node3").group(named: "grp1")?.status == .offline, "\(status.summary)")

            // "After the reboot": clpregctrl shows the count, clears it (rc 101), from any server.
            try cluster.startDaemon("node1")
            _ = try await cluster.waitForStatus("node1 answers", on: "node1") { _ in true }
            let shown = try await cluster.cli(["clpregctrl", "--get"], on: "node1")
            #expect(shown.exitCode == 0 && shown.standardOutput.contains("count : 1"), "\(shown)")
            #expect(shown.standardOutput.contains("registry : reboot"), "\(shown)")
            let remote = try await cluster.cli(["clpregctrl", "-g", "-t", "rc", "-h", "node1", "--json"], on: "node2")
            #expect(remote.standardOutput.contains(#""count":1"#) && remote.standardOutput.contains(#""server":"node1""#), "\(remote)")
            let cleared = try await cluster.cli(["clpregctrl", "--clear", "-h", "node1"], on: "node3")
            #expect(cleared.exitCode == 0 && cleared.standardOutput.contains("count : 0"), "\(cleared)")
            let after = try await cluster.cli(["clpregctrl", "-g"], on: "node1")
            #expect(after.standardOutput.contains("count : 0"), "\(after)")
            let alerts = (try? String(contentsOfFile: cluster.stateDirectory(of: "node1") + "/alert.log", encoding: .utf8)) ?? ""
            #expect(alerts.contains("[rc 101] Reboot count of node1 cleared by an operator (was 1)"), "\(alerts.suffix(800))")
            // The state file is written off the daemon's actor, a moment after the answer.
            let statePath = cluster.stateDirectory(of: "node1") + "/engine.json"
            let kept = await eventually(within: .seconds(5), every: .milliseconds(100)) {
                let data = (try? Data(contentsOf: URL(fileURLWithPath: statePath))) ?? Data()
                let persisted = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any]
                return persisted?["rebootCount"] as? Int == 0
            }
            #expect(kept, "the clear is kept across restarts")
            for bad in [
                ["clpregctrl"], ["clpregctrl", "-g", "-c"], ["clpregctrl", "-g", "-t", "xx"], ["clpregctrl", "-g", "-r", "other"],
            ] {
                let refused = try await cluster.cli(bad, on: "node1")
                #expect(refused.exitCode == 2, "\(bad): \(refused)")
            }
        }
    }
}
