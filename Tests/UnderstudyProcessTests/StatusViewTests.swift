import Foundation
import Testing
import UnderstudyEngine
import UnderstudyModel
import UnderstudyNode
import UnderstudyTestSupport

#if canImport(Glibc)
    import Glibc
#endif

/// `clpstat -n`, `-p` and the configuration views (`-i`, `--cl`, `--sv`, `--hb`, `--np`,
/// `--grp`, `--rsc`, `--mon`, `--xcl`, `--detail`) against three real daemons.
@Suite("Process: clpstat views")
struct StatusViewTests {
    static func json(_ text: String) -> [String: Any]? {
        (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any]
    }

    @Test("-n and -p show every server's own view; a server that is gone is x in the others' and says it gave no answer")
    func matrices() async throws {
        var spec = ClusterSpec(subnet: 196)
        spec.secondPath = true
        try await withCluster(spec) { cluster in
            try cluster.start()
            try await cluster.waitUntilFormed()
            let formed = try await cluster.cli(["clpstat", "-n"], on: "node2")
            #expect(formed.exitCode == 0, "\(formed)")
            let text = formed.standardOutput
            #expect(text.contains("HEARTBEAT RESOURCE STATUS") && text.contains("HB0 : lanhb1") && text.contains("HB1 : lanhb2"), "\(text)")
            #expect(text.contains(" *server1 : node2"), "the local server is marked: \(text)")
            for index in 0..<3 { #expect(text.contains("[on server\(index) : Online]"), "\(text)") }
            #expect(text.components(separatedBy: "server2 : o  o").count - 1 == 3, "every view hears node3 on both paths: \(text)")

            _ = cluster.send(SIGKILL, to: "node3")
            _ = try await cluster.waitForStatus("node3 offline", on: "node1") { $0.server(named: "node3")?.status == .offline }
            let after = try await cluster.cli(["clpstat", "-n"], on: "node1")
            #expect(after.exitCode == 0, "\(after)")
            #expect(after.standardOutput.contains("[on server2 : Offline]"), "\(after.standardOutput)")
            #expect(after.standardOutput.contains("(no answer: its view is not known)"), "\(after.standardOutput)")
            #expect(after.standardOutput.components(separatedBy: "server2 : x  x").count - 1 == 2, "\(after.standardOutput)")

            let matrix = try #require(Self.json(try await cluster.cli(["clpstat", "-n", "--json"], on: "node1").standardOutput))
            #expect(matrix["paths"] as? [String] == ["lanhb1", "lanhb2"])
            let views = try #require(matrix["views"] as? [[String: Any]])
            #expect(views.map { $0["answered"] as? Bool } == [true, true, false])
            let node1Rows = try #require(views.first?["rows"] as? [String: [String: String]])
            #expect(node1Rows["node3"]?["lanhb1"] == "Error" && node1Rows["node2"]?["lanhb2"] == "Normal", "\(node1Rows)")
            let onlyLocal = try await cluster.cli(["clpstat", "-n", "--local"], on: "node1")
            #expect(onlyLocal.standardOutput.contains("[on server0") && !onlyLocal.standardOutput.contains("[on server1"))

            let partition = try await cluster.cli(["clpstat", "-p"], on: "node1")
            #expect(partition.exitCode == 0 && partition.standardOutput.contains("NETWORK PARTITION RESOLUTION STATUS"), "\(partition)")
            #expect(partition.standardOutput.contains("NP0 : majority1"), "\(partition.standardOutput)")
            let partitionJSON = Self.json(try await cluster.cli(["clpstat", "-p", "--json"], on: "node1").standardOutput)
            #expect(partitionJSON?["kind"] as? String == "networkPartition")
        }
    }

    @Test("configuration views show the running configuration, one part or one object, every setting with --detail, never a secret")
    func configurationViews() async throws {
        try await withCluster(ClusterSpec(subnet: 197)) { cluster in
            try cluster.start()
            try await cluster.waitUntilFormed()
            // The file changes on disk after the start: the views show what runs.
            let original = try String(contentsOfFile: cluster.configPath, encoding: .utf8)
            try cluster.write(
                original.replacingOccurrences(of: "comment: process test cluster", with: "comment: edited but not applied"),
                to: cluster.configPath)

            let cl = try await cluster.cli(["clpstat", "--cl"], on: "node1")
            #expect(cl.exitCode == 0 && cl.standardOutput.contains("process test cluster"), "\(cl)")
            #expect(!cl.standardOutput.contains("edited but not applied") && !cl.standardOutput.contains("[Server0"), "\(cl)")

            let server = try await cluster.cli(["clpstat", "--sv", "node2"], on: "node1")
            #expect(server.standardOutput.contains("[Server1 : node2]") && !server.standardOutput.contains("node1]"), "\(server)")
            let group = try await cluster.cli(["clpstat", "--grp", "grp1"], on: "node1")
            #expect(group.standardOutput.contains("[Group0 : grp1]") && group.standardOutput.contains("Failover Attribute"), "\(group)")
            let resources = try await cluster.cli(["clpstat", "--rsc"], on: "node1")
            #expect(
                resources.standardOutput.contains("[Resource0 : grp1-app]") && resources.standardOutput.contains("Group"), "\(resources)")
            let heartbeats = try await cluster.cli(["clpstat", "--hb", "lanhb1"], on: "node1")
            #expect(
                heartbeats.standardOutput.contains("[HB0 : lanhb1]") && heartbeats.standardOutput.contains("127.0.197.1"), "\(heartbeats)")
            let np = try await cluster.cli(["clpstat", "--np"], on: "node1")
            #expect(np.standardOutput.contains("[NP0 : majority1]"), "\(np)")
            let xcl = try await cluster.cli(["clpstat", "--xcl"], on: "node1")
            #expect(xcl.exitCode == 0 && xcl.standardOutput.contains("CLUSTER INFORMATION"), "\(xcl)")

            let detail = try await cluster.cli(["clpstat", "--cl", "--detail"], on: "node1")
            #expect(detail.standardOutput.contains("Secret File") && detail.standardOutput.contains("cluster.key"), "\(detail)")
            #expect(detail.standardOutput.contains("Heartbeat Interval") && detail.standardOutput.contains("200ms"), "\(detail)")
            let key = try String(contentsOfFile: cluster.folder + "/cluster.key", encoding: .utf8).trimmingCharacters(
                in: .whitespacesAndNewlines)
            let everything = try await cluster.cli(["clpstat", "-i", "--detail"], on: "node1")
            #expect(everything.exitCode == 0 && everything.standardOutput.contains("[Group0 : grp1]"), "\(everything)")
            #expect(!everything.standardOutput.contains(key), "the key never shows")
            #expect(everything.standardOutput.contains("Settings / Timeout"), "every exec setting: \(everything)")

            let running = try #require(Self.json(try await cluster.cli(["clpstat", "-i", "--json"], on: "node1").standardOutput))
            #expect((running["yaml"] as? String)?.contains("process test cluster") == true && running["version"] != nil)

            let unknown = try await cluster.cli(["clpstat", "--grp", "nosuch"], on: "node1")
            #expect(unknown.exitCode == 2 && unknown.standardError.contains("nosuch"), "\(unknown)")
            for bad in [["clpstat", "-n", "-g"], ["clpstat", "--detail"], ["clpstat", "--cl", "grp1"], ["clpstat", "--grp", "--mon"]] {
                let refused = try await cluster.cli(bad, on: "node1")
                #expect(refused.exitCode == 2, "\(bad): \(refused)")
            }
        }
    }

    @Test("-f / --fnc: the agents, every server's checks of stopping the others (an agent that fails is Error), --json")
    func fencingView() async throws {
        var spec = ClusterSpec(subnet: 213)
        // A script agent whose check (mode 0) fails for node3 only.
        let fence = try FenceScript("[ \"$CLP_SERVER_DOWN\" != node3 ] || { echo 'node3 hypervisor unreachable'; exit 1; }\nexit 0")
        defer { fence.remove() }
        let script = fence.path
        spec.fencing = """
            fencing:
              check-interval: 1s
              delay: 1s
              agents:
                - name: vm
                  type: script
                  command: \(script)

            """
        try await withCluster(spec) { cluster in
            try cluster.start()
            try await cluster.waitUntilFormed()
            let checked = await eventually(within: .seconds(10), every: .milliseconds(300)) {
                let text = (try? await cluster.cli(["clpstat", "-f"], on: "node1").standardOutput) ?? ""
                return text.components(separatedBy: "Check vm -> ").count - 1 >= 6
            }
            let view = try await cluster.cli(["clpstat", "--fnc"], on: "node1")
            #expect(checked && view.exitCode == 0, "\(view)")
            let text = view.standardOutput
            #expect(text.contains("FENCING STATUS") && text.contains("Agent vm (script) : stops node1, node2, node3"), "\(text)")
            #expect(text.contains("on failure cancel") && text.contains("check every 1s"), "\(text)")
            for index in 0..<3 { #expect(text.contains("[on server\(index) : Online]"), "\(text)") }
            #expect(text.contains("Check vm -> node2 : Normal"), "\(text)")
            #expect(text.contains("Check vm -> node3 : Error") && text.contains("node3 hypervisor unreachable"), "\(text)")
            #expect(!text.contains("Forced stop of"), "nothing was stopped: \(text)")
            let information = try await cluster.cli(["clpstat", "-i"], on: "node1")
            #expect(
                information.standardOutput.contains("[Fencing Agent0 : vm]") && information.standardOutput.contains("On Failure"),
                "\(information)")

            let json = try #require(Self.json(try await cluster.cli(["clpstat", "-f", "--json"], on: "node2").standardOutput))
            let servers = try #require(json["servers"] as? [[String: Any]])
            #expect(servers.count == 3 && servers.allSatisfy { $0["answered"] as? Bool == true })
            let fencing = try #require(servers.first?["fencing"] as? [String: Any])
            #expect(fencing["onFailure"] as? String == "cancel")
            let checks = try #require(fencing["checks"] as? [[String: Any]])
            #expect(checks.contains { $0["server"] as? String == "node3" && $0["normal"] as? Bool == false }, "\(checks)")
            let log = try String(contentsOfFile: cluster.logPath(of: "node1"), encoding: .utf8)
            #expect(log.components(separatedBy: "[rc 414]").count - 1 == 1, "the failing check is said once, not every second")
            for bad in [["clpstat", "-f", "-n"], ["clpstat", "--fnc", "-i"]] {
                let refused = try await cluster.cli(bad, on: "node1")
                #expect(refused.exitCode == 2, "\(bad): \(refused)")
            }
        }
        // Without a fencing: section the view says so.
        try await withCluster(ClusterSpec(subnet: 214)) { cluster in
            try cluster.start()
            try await cluster.waitUntilFormed()
            let view = try await cluster.cli(["clpstat", "-f"], on: "node1")
            #expect(view.exitCode == 0 && view.standardOutput.contains("Forced stop is not configured"), "\(view)")
        }
    }

    @Test("understudy alerts --follow prints entries of any server as they arrive, and only new ones")
    func alertsFollow() async throws {
        try await withCluster(ClusterSpec(subnet: 199)) { cluster in
            try cluster.start()
            try await cluster.waitUntilFormed()
            _ = try await cluster.cli(["clplogcmd", "-m", "before the follow"], on: "node1")
            let outputPath = cluster.folder + "/follow.out"
            let output = open(outputPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
            try #require(output >= 0)
            let follower = try SpawnedProcess.spawn(
                [try ProcessTestPaths.requireBinary(), "alerts", "-f", "-n", "1", "--state-dir", cluster.stateDirectory(of: "node1")],
                output: .descriptor(output), error: .descriptor(output))
            close(output)
            defer {
                follower.signal(SIGKILL)
                follower.waitForExit()
            }
            func shown() -> String { (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? "" }
            // The newest entry first, then an entry written on another server arrives.
            #expect(await eventually(within: .seconds(10)) { shown().contains("before the follow") }, "\(shown())")
            _ = try await cluster.cli(["clplogcmd", "-m", "written on node3 while following"], on: "node3")
            let arrived = await eventually(within: .seconds(15), every: .milliseconds(100)) {
                shown().contains(" node3 INFO [logcmd 1] written on node3 while following")
            }
            #expect(arrived, "\(shown())")
            #expect(shown().components(separatedBy: "before the follow").count - 1 == 1, "nothing printed twice: \(shown())")
            #expect(follower.isRunning, "it follows until interrupted")
        }
    }
}
