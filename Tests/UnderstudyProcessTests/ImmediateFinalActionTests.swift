import Foundation
import Testing
import UnderstudyEngine
import UnderstudyModel

#if canImport(Glibc)
    import Glibc
#endif

/// A final action that stops the machine at once, with real daemons: the `reset` command (here
/// one that records its name and returns, as sysrq would not) runs without any stop script;
/// since the OS "still runs", the daemon fences its group and exits as after a crash, and the
/// other servers take the group over once they confirm the loss.
@Suite("Process: immediate final actions")
struct ImmediateFinalActionTests {
    @Test("monitor final action reset: no stop script, the reset command runs, the daemon fences and exits as crashed, node2 takes over")
    func monitorReset() async throws {
        var spec = ClusterSpec(subnet: 215)
        spec.groups = [GroupSpec(name: "grp1", resources: [ExecSpec(name: "grp1-app", start: .keepRunning, asyncStart: true)])]
        spec.monitors = """
              - name: genw1
                type: genw
                script: check.sh
                servers: [node1]
                interval: 200ms
                timeout: 2s
                recovery: {target: local-server, final-action: reset}

            """
        try await withCluster(spec) { cluster in
            let flag = cluster.folder + "/broken"
            try cluster.write("#!/bin/sh\n[ -e '\(flag)' ] && exit 1\nexit 0\n", to: cluster.folder + "/check.sh", mode: 0o755)
            try cluster.start()
            try await cluster.waitUntilFormed()
            let start = try #require(try await cluster.waitForRecords("the async start on node1") { !$0.starts.isEmpty }.starts.first)
            #expect(start.server == "node1")
            let resource = try #require(ProcessTable.identity(of: start.pid))
            #expect(resource.isAlive)
            try await Task.sleep(for: .seconds(1))
            #expect(cluster.osActions.isEmpty)

            try cluster.write("", to: flag, mode: 0o644)
            let exitCode = try await cluster.waitForExit("node1")
            #expect(exitCode == 1, "a daemon that outlived its reset exits as failed")
            #expect(cluster.osActions == ["reset"], "os-actions.log: \(cluster.osActions)")
            // No stop script ran anywhere (the orderly shutdown would have stopped grp1-app).
            #expect(cluster.records.stops.isEmpty, "\(cluster.records.summary)")
            // The group's process is gone: fenced by the daemon (and by its keeper).
            var gone = false
            for _ in 0..<100 where !gone {
                gone = !resource.isAlive
                if !gone { try await Task.sleep(for: .milliseconds(50)) }
            }
            #expect(gone, "grp1-app still runs on node1 after the daemon exited")
            // As after a crash: the running marker stays; the reboot count was written first.
            let state = cluster.stateDirectory(of: "node1")
            #expect(FileManager.default.fileExists(atPath: state + "/running"), "the abnormal-stop marker was cleared")
            let engineState =
                try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: state + "/engine.json"))) as? [String: Any]
            #expect(engineState?["rebootCount"] as? Int == 1)
            let alerts = (try? String(contentsOfFile: state + "/alert.log", encoding: .utf8)) ?? ""
            #expect(alerts.contains("[pm 27]") && alerts.contains("reset"), "\(alerts.suffix(1200))")
            #expect(alerts.contains("[pm 28]"), "\(alerts.suffix(1200))")

            // The others saw no farewell: they take grp1 over after the heartbeat timeout.
            let status = try await cluster.waitForStatus(
                "grp1 Online on node2, node1 Offline", on: "node3", timeout: spec.heartbeatTimeout + .seconds(10)
            ) {
                $0.group(named: "grp1")?.status == .online && $0.group(named: "grp1")?.current == "node2"
                    && $0.server(named: "node1")?.status == .offline
            }
            let takeover = try #require(cluster.records.starts.on("node2").first, "\(status.summary)")
            #expect(takeover["CLP_EVENT"] == "FAILOVER")
            #expect(cluster.records.stops.isEmpty, "\(cluster.records.summary)")
        }
    }

    @Test("process-failure-action bmc-power-cycle: the keeper dies for good, the command runs at once, no stop script, node2 takes over")
    func processFailurePowerCycle() async throws {
        var spec = ClusterSpec(subnet: 216)
        spec.groups = [GroupSpec(name: "grp1", resources: [ExecSpec(name: "grp1-app", start: .keepRunning, asyncStart: true)])]
        spec.clusterExtra = "  recovery: {process-failure-action: bmc-power-cycle}\n"
        try await withCluster(spec) { cluster in
            try cluster.start()
            try await cluster.waitUntilFormed()
            let start = try #require(try await cluster.waitForRecords("the async start on node1") { !$0.starts.isEmpty }.starts.first)
            #expect(start.server == "node1")
            let resource = try #require(ProcessTable.identity(of: start.pid))
            // The keeper dies four times: three restarts, then the process-failure action.
            let node1 = try #require(cluster.pid(of: "node1"))
            var current = try #require(try await InternalMonitoringTests.newKeeper(of: node1, besides: nil))
            for round in 1...3 {
                current.kill()
                current = try #require(
                    try await InternalMonitoringTests.newKeeper(of: node1, besides: current), "no new keeper after kill \(round)")
            }
            current.kill()
            let exitCode = try await cluster.waitForExit("node1")
            #expect(exitCode == 1)
            #expect(cluster.osActions == ["bmc-power-cycle"], "os-actions.log: \(cluster.osActions)")
            #expect(cluster.records.stops.isEmpty, "\(cluster.records.summary)")
            var gone = false
            for _ in 0..<100 where !gone {
                gone = !resource.isAlive
                if !gone { try await Task.sleep(for: .milliseconds(50)) }
            }
            #expect(gone, "grp1-app still runs on node1 after the daemon exited")
            #expect(FileManager.default.fileExists(atPath: cluster.stateDirectory(of: "node1") + "/running"))
            _ = try await cluster.waitForStatus(
                "grp1 Online on node2", on: "node3", timeout: spec.heartbeatTimeout + .seconds(10)
            ) {
                $0.group(named: "grp1")?.status == .online && $0.group(named: "grp1")?.current == "node2"
            }
            #expect(cluster.records.stops.isEmpty, "\(cluster.records.summary)")
        }
    }

    @Test("a command that does not stop the machine in time: after half the heartbeat timeout the daemon fences and exits as crashed")
    func commandThatHangs() async throws {
        var spec = ClusterSpec(subnet: 217)
        spec.groups = [GroupSpec(name: "grp1", resources: [ExecSpec(name: "grp1-app", start: .keepRunning, asyncStart: true)])]
        // Records, then hangs for a while (a BMC that does not answer); it ends by itself.
        spec.osCommands = [
            "bmc-power-off":
                #"[/bin/sh, -c, "echo bmc-power-off >> '{folder}/os-actions.log'; echo $$ > '{folder}/hang.pid'; exec sleep 8"]"#
        ]
        spec.monitors = """
              - name: genw1
                type: genw
                script: check.sh
                servers: [node1]
                interval: 200ms
                timeout: 2s
                recovery: {target: local-server, final-action: bmc-power-off}

            """
        try await withCluster(spec) { cluster in
            let flag = cluster.folder + "/broken"
            try cluster.write("#!/bin/sh\n[ -e '\(flag)' ] && exit 1\nexit 0\n", to: cluster.folder + "/check.sh", mode: 0o755)
            try cluster.start()
            try await cluster.waitUntilFormed()
            let start = try #require(try await cluster.waitForRecords("the async start on node1") { !$0.starts.isEmpty }.starts.first)
            let resource = try #require(ProcessTable.identity(of: start.pid))
            try cluster.write("", to: flag, mode: 0o644)
            let began = ContinuousClock.now
            let exitCode = try await cluster.waitForExit("node1")
            let took = began.duration(to: .now)
            #expect(exitCode == 1)
            #expect(took < .seconds(6), "the daemon waited \(took) for a command that hangs")
            #expect(cluster.osActions == ["bmc-power-off"], "os-actions.log: \(cluster.osActions)")
            // The hanging command is left running by the daemon (it might be what stops the
            // machine); the test ends it by its PID.
            let hangPID = (try? String(contentsOfFile: cluster.folder + "/hang.pid", encoding: .utf8))
                .flatMap { Int32($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
            if let hangPID, let hanging = ProcessTable.identity(of: hangPID) { hanging.kill() }
            #expect(hangPID != nil, "the command did not record its PID")
            #expect(cluster.records.stops.isEmpty, "\(cluster.records.summary)")
            var gone = false
            for _ in 0..<100 where !gone {
                gone = !resource.isAlive
                if !gone { try await Task.sleep(for: .milliseconds(50)) }
            }
            #expect(gone, "grp1-app still runs on node1 after the daemon exited")
            let alerts = (try? String(contentsOfFile: cluster.stateDirectory(of: "node1") + "/alert.log", encoding: .utf8)) ?? ""
            #expect(alerts.contains("[pm 28]"), "\(alerts.suffix(1200))")
            _ = try await cluster.waitForStatus("grp1 Online on node2", on: "node3", timeout: spec.heartbeatTimeout + .seconds(10)) {
                $0.group(named: "grp1")?.status == .online && $0.group(named: "grp1")?.current == "node2"
            }
        }
    }
}
