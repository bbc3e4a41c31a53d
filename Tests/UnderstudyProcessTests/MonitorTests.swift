import Foundation
import Testing
import UnderstudyEngine
import UnderstudyModel

#if canImport(Glibc)
    import Glibc
#endif

/// Monitors in real daemons: a killed process is reactivated, then failed over; a failing
/// check script ends in the final action recorded by the OS-control command.
@Suite("Process: monitors and recovery")
struct MonitorTests {
    @Test("pidw: the killed process is reactivated twice on node1 (GROUPRESTART), then the group fails over to node2")
    func killedProcessLadder() async throws {
        var spec = ClusterSpec(subnet: 119)
        spec.groups = [GroupSpec(name: "grp1", resources: [ExecSpec(name: "grp1-app", start: .keepRunning, asyncStart: true)])]
        spec.monitors = """
              - name: pidw1
                type: pidw
                target: grp1-app
                interval: 200ms
                timeout: 2s
                recovery: {target: grp1, reactivations: 2, failovers: 1, final-action: stop-group}

            """
        try await withCluster(spec) { cluster in
            try cluster.start()
            _ = try await cluster.waitForStatus("grp1 online on node1", on: "node1") { status in
                status.group(named: "grp1")?.status == .online && status.group(named: "grp1")?.current == "node1"
            }
            for round in 1...3 {
                // An async start is Online once launched; its record may come a moment later.
                let starts = try await cluster.waitForRecords("start number \(round) on node1") { $0.starts.count >= round }.starts
                let victim = try #require(starts.last, "\(cluster.records.summary)")
                #expect(victim.server == "node1")
                // The start script exec'd `sleep`: its pid is the process pidw watches. Let
                // the monitor see it alive first (checks every 200 ms).
                _ = try await cluster.waitForStatus("pidw1 Normal on node1 (round \(round))", on: "node1") { status in
                    status.monitors?.first { $0.name == "pidw1" }?.perServer["node1"] == .normal
                }
                kill(victim.pid, SIGKILL)
                _ = try await cluster.waitForRecords("start number \(starts.count + 1) after kill \(round)") { records in
                    records.starts.count > starts.count
                }
            }
            let status = try await cluster.waitForStatus("grp1 online on node2", on: "node2") { status in
                status.group(named: "grp1")?.status == .online && status.group(named: "grp1")?.current == "node2"
            }
            let runs = cluster.records
            #expect(runs.starts.on("node1").count == 3, "\(runs.summary)")
            #expect(runs.stops.on("node1").map { $0["CLP_FACTOR"] ?? "" } == ["GROUPRESTART", "GROUPRESTART", "GROUPFAILOVER"])
            #expect(runs.starts.on("node1").dropFirst().allSatisfy { $0["CLP_EVENT"] == "START" })
            #expect(runs.starts.on("node2").map { $0["CLP_EVENT"] ?? "" } == ["FAILOVER"], "\(runs.summary)")
            #expect(status.monitors?.first?.perServer["node2"] == .normal || status.monitors?.first?.perServer["node2"] == .unknown)

            // The daemon reports how late its checks and heartbeats ran (clpstat --json runtime).
            let runtime = try await cluster.clpstat(on: "node1").runtime
            #expect((runtime?.monitorChecks ?? 0) > 0 && (runtime?.heartbeats ?? 0) > 0, "\(String(describing: runtime))")
            let counters = try await cluster.cli(["clpmonctrl", "-v", "-m", "pidw1"], on: "node1")
            #expect(counters.exitCode == 0, "\(counters)")
            #expect(
                counters.standardOutput.contains("Reactivation: 2/2") && counters.standardOutput.contains("Failover: 1/1"),
                "\(counters.standardOutput)")
            // What CLUSTERPRO scripts parse: `clpmonctrl -v | grep Resource | awk '{print $3}'`.
            let resourceLines = counters.standardOutput.split(separator: "\n").filter { $0.contains("Resource") }
            #expect(
                resourceLines.map { $0.split(separator: " ", omittingEmptySubsequences: true)[2] } == ["pidw1"],
                "\(counters.standardOutput)")
            let monitors = try await cluster.cli(["clpstat", "-m"], on: "node3")
            #expect(monitors.exitCode == 0 && monitors.standardOutput.contains("pidw1"), "\(monitors)")

            // Counters survive the daemon's restart.
            _ = try await cluster.cli(["clpcl", "-r"], on: "node1")
            let again = try await cluster.cli(["clpmonctrl", "-v", "-m", "pidw1"], on: "node1")
            #expect(again.standardOutput.contains("2/2") && again.standardOutput.contains("1/1"), "\(again.standardOutput)")
            let cleared = try await cluster.cli(["clpmonctrl", "-c", "-m", "pidw1"], on: "node1")
            #expect(cleared.exitCode == 0)
            let zero = try await cluster.cli(["clpmonctrl", "-v", "-m", "pidw1"], on: "node1")
            #expect(zero.standardOutput.contains("0/2") && zero.standardOutput.contains("0/1"), "\(zero.standardOutput)")
            let unknown = try await cluster.cli(["clpmonctrl", "-s", "-m", "nope"], on: "node1")
            #expect(unknown.exitCode == 2, "\(unknown)")
        }
    }

    @Test("genw on node3 fails: final action reboot of local-server runs the OS-control command there only")
    func failingScriptReboots() async throws {
        var spec = ClusterSpec(subnet: 120)
        spec.monitors = """
              - name: genw1
                type: genw
                script: check.sh
                servers: [node3]
                interval: 200ms
                timeout: 2s
                retries: 1
                recovery: {target: local-server, final-action: reboot}
              - name: mrw1
                type: mrw
                category: APP
                recovery: {target: grp1, reactivations: 1, failovers: 0, final-action: none}

            """
        try await withCluster(spec) { cluster in
            let flag = cluster.folder + "/broken"
            try cluster.write("#!/bin/sh\n[ -e '\(flag)' ] && exit 1\nexit 0\n", to: cluster.folder + "/check.sh", mode: 0o755)
            try cluster.start()
            try await cluster.waitUntilFormed()
            try await Task.sleep(for: .seconds(1))
            #expect(cluster.osActions.isEmpty)

            // An external error for mrw1 on node1 (where grp1 runs) reactivates grp1 once.
            let notice = try await cluster.cli(["clprexec", "--notice", "-k", "APP", "-h", spec.address(of: "node1")], on: "node2")
            #expect(notice.exitCode == 0, "\(notice)")
            let restarted = try await cluster.waitForRecords("grp1 restarted on node1") { records in
                records.stops.on("node1").contains { $0["CLP_FACTOR"] == "GROUPRESTART" } && records.starts.on("node1").count == 2
            }
            #expect(!restarted.isEmpty)
            let wrong = try await cluster.cli(["clprexec", "--notice", "-k", "DISK", "-h", "node1"], on: "node2")
            #expect(wrong.exitCode == 1, "\(wrong)")

            _ = FileManager.default.createFile(atPath: flag, contents: nil)
            let exitCode = try await cluster.waitForExit("node3")
            #expect(exitCode == 0)
            let rebooted = try await poll(upTo: .seconds(5)) { cluster.osActions == ["reboot"] }
            #expect(rebooted, "os-actions.log: \(cluster.osActions)")
            #expect(cluster.isRunning("node1") && cluster.isRunning("node2"))
        }
    }
}

/// Internal monitoring (reference §3.6): the daemon restarts its keeper when it dies; when it
/// keeps dying, the configured process-failure action runs.
@Suite("Process: internal monitoring")
struct InternalMonitoringTests {
    /// The keeper of a daemon: its child running `understudy keeper`.
    static func keeper(of daemon: pid_t) -> ProcessIdentity? {
        ProcessTable.descendants(of: daemon).first { identity in
            guard let raw = FileManager.default.contents(atPath: "/proc/\(identity.pid)/cmdline") else { return false }
            return String(decoding: raw, as: UTF8.self).split(separator: "\0").contains("keeper")
        }
    }

    static func newKeeper(of daemon: pid_t, besides old: ProcessIdentity?) async throws -> ProcessIdentity? {
        var found: ProcessIdentity?
        for _ in 0..<100 where found == nil {
            if let current = keeper(of: daemon), current != old, current.isAlive { found = current }
            if found == nil { try await Task.sleep(for: .milliseconds(50)) }
        }
        return found
    }

    @Test("a killed keeper is started again, and still fences after a daemon crash; after the fourth death the server shuts down")
    func keeperSupervision() async throws {
        var spec = ClusterSpec(subnet: 121)
        spec.groups = [GroupSpec(name: "grp1", resources: [ExecSpec(name: "grp1-app", start: .keepRunning, asyncStart: true)])]
        try await withCluster(spec) { cluster in
            try cluster.start()
            try await cluster.waitUntilFormed()
            // node2: the keeper dies four times; three restarts, then process-failure-action
            // (default shutdown, recorded by the OS command).
            let node2 = try #require(cluster.pid(of: "node2"))
            var current = try #require(try await Self.newKeeper(of: node2, besides: nil))
            for round in 1...3 {
                current.kill()
                current = try #require(try await Self.newKeeper(of: node2, besides: current), "no new keeper after kill \(round)")
            }
            current.kill()
            let exitCode = try await cluster.waitForExit("node2")
            #expect(exitCode == 0)
            let shutdown = try await poll(upTo: .seconds(5)) { cluster.osActions == ["shutdown"] }
            #expect(shutdown, "os-actions.log: \(cluster.osActions)")
            let alerts = (try? String(contentsOfFile: cluster.stateDirectory(of: "node2") + "/alert.log", encoding: .utf8)) ?? ""
            #expect(alerts.components(separatedBy: "[rm 141]").count - 1 == 3, "\(alerts)")
            #expect(alerts.contains("[rm 143]"))

            // node1: the keeper is killed once and restarted; then the daemon is killed and the
            // new keeper still kills what the daemon's scripts left running.
            let node1 = try #require(cluster.pid(of: "node1"))
            let first = try #require(try await Self.newKeeper(of: node1, besides: nil))
            first.kill()
            _ = try #require(try await Self.newKeeper(of: node1, besides: first))
            let start = try #require(
                try await cluster.waitForRecords("the async start on node1") { !$0.starts.on("node1").isEmpty }.starts.on("node1").last)
            let leftover = try #require(ProcessTable.identity(of: start.pid))
            _ = cluster.send(SIGKILL, to: "node1")
            var gone = false
            for _ in 0..<100 where !gone {
                gone = !leftover.isAlive
                if !gone { try await Task.sleep(for: .milliseconds(50)) }
            }
            #expect(gone, "the restarted keeper did not fence the killed daemon's process")
        }
    }
}

@Suite("Process: clprexec --script")
struct RemoteScriptTests {
    @Test("clprexec --script runs a script of the target server's rexec folder; unsafe names and files are refused")
    func remoteScript() async throws {
        let spec = ClusterSpec(subnet: 122)
        try await withCluster(spec) { cluster in
            let folder = cluster.folder + "/rexec"
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            let marker = cluster.folder + "/rexec-ran"
            try cluster.write(
                "#!/bin/sh\necho \"$CLP_SERVER_LOCAL from $CLP_REQUEST_FROM\" >> '\(marker)'\n", to: folder + "/hello.sh", mode: 0o755)
            try cluster.write("#!/bin/sh\nexit 3\n", to: folder + "/fails.sh", mode: 0o755)
            try cluster.write("#!/bin/sh\nexit 0\n", to: folder + "/open.sh", mode: 0o777)
            // The config names the folder (relative to the config file).
            let config = try String(contentsOfFile: cluster.configPath, encoding: .utf8)
            try cluster.write(
                config.replacingOccurrences(of: "  ports:", with: "  rexec-directory: rexec\n  ports:"), to: cluster.configPath)
            try cluster.start()
            try await cluster.waitUntilFormed()

            let ran = try await cluster.cli(["clprexec", "--script", "hello.sh", "-h", spec.address(of: "node2")], on: "node1")
            #expect(ran.exitCode == 0, "\(ran)")
            let text = (try? String(contentsOfFile: marker, encoding: .utf8)) ?? ""
            #expect(text == "node2 from node1\n", "\(text)")

            let failing = try await cluster.cli(["clprexec", "--script", "fails.sh", "-h", "node3"], on: "node1")
            #expect(failing.exitCode == 1 && failing.standardError.contains("exit 3"), "\(failing)")
            // A path: the CLI keeps only the file name, so it never leaves the rexec folder.
            let escape = try await cluster.cli(["clprexec", "--script", "../cluster.yaml"], on: "node1")
            #expect(escape.exitCode == 1 && escape.standardError.contains("No script cluster.yaml in"), "\(escape)")
            // A name the daemon does not take: refused as bad usage (exit 2) with the reason.
            for name in [".hidden", "a b.sh", "x;rm"] {
                let refused = try await cluster.cli(["clprexec", "--script", name], on: "node1")
                #expect(refused.exitCode == 2 && refused.standardError.contains("must be a plain file name"), "\(refused)")
            }
            let writable = try await cluster.cli(["clprexec", "--script", "open.sh"], on: "node1")
            #expect(writable.exitCode == 1 && writable.standardError.contains("writable"), "\(writable)")
            let missing = try await cluster.cli(["clprexec", "--script", "nothing.sh"], on: "node1")
            #expect(missing.exitCode == 1, "\(missing)")
        }
    }
}
