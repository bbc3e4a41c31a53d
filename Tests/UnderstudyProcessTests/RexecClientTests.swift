import Foundation
import Testing
import UnderstudyEngine
import UnderstudyModel
import UnderstudyNode

@Suite("Process: clprexec from a host outside the cluster")
struct RexecClientTests {
    /// Two clients: vcenter1 may fail groups over and run rexec scripts, monitor1 may only
    /// report to mrw monitors. Their keys live in `rexec-keys/` for the servers; the outside
    /// host's folder holds copies of the client keys and nothing of the cluster's.
    static func spec() -> ClusterSpec {
        var spec = ClusterSpec(subnet: 218)
        spec.clusterExtra = """
              rexec-directory: rexec
              rexec-clients:
                - {name: vcenter1, key-file: rexec-keys/vcenter1.key, allow: [failover, script]}
                - {name: monitor1, key-file: rexec-keys/monitor1.key, allow: [notice]}
                - {name: ghost, key-file: rexec-keys/ghost.key, allow: [notice]}

            """
        spec.monitors = """
              - name: mrw1
                type: mrw
                category: APP
                recovery: {target: grp1, reactivations: 0, failovers: 0, final-action: none}

            """
        return spec
    }

    @Test(
        "a non-member client with its own key fails a group over and runs a rexec script; a wrong key, an unknown client and a request it is not allowed are refused, counted and alerted; a member's clprexec still works"
    )
    func outsideClient() async throws {
        let spec = Self.spec()
        try await withCluster(spec) { cluster in
            let manager = FileManager.default
            let keys = cluster.folder + "/rexec-keys"
            let outside = cluster.folder + "/outside-host"
            let rexec = cluster.folder + "/rexec"
            for folder in [keys, outside, rexec] { try manager.createDirectory(atPath: folder, withIntermediateDirectories: true) }
            for client in ["vcenter1", "monitor1"] {
                let made = try await cluster.understudy(["keygen", keys + "/\(client).key"])
                #expect(made.exitCode == 0, "\(made)")
                // The operator gives the client a copy of its key (and only that).
                try cluster.write(
                    try String(contentsOfFile: keys + "/\(client).key", encoding: .utf8), to: outside + "/\(client).key", mode: 0o600)
            }
            let wrong = try await cluster.understudy(["keygen", outside + "/wrong.key"])
            #expect(wrong.exitCode == 0, "\(wrong)")
            let marker = cluster.folder + "/rexec-ran"
            try cluster.write(
                "#!/bin/sh\necho \"$CLP_SERVER_LOCAL from $CLP_REQUEST_FROM\" >> '\(marker)'\n", to: rexec + "/hello.sh", mode: 0o755)
            try cluster.write("#!/bin/sh\nexit 0\n", to: rexec + "/noop.sh", mode: 0o755)

            try cluster.start()
            try await cluster.waitUntilFormed()

            /// `clprexec` as the outside host runs it: no state directory, no daemon, its own key.
            func outsideRexec(_ arguments: [String], client: String, key: String, server: String) async throws -> CommandOutcome {
                try await CommandRunner.run(
                    cluster.binary,
                    ["clprexec"] + arguments + [
                        "-h", spec.address(of: server), "--port", "\(spec.controlPort)", "--client", client, "--key-file",
                        outside + "/\(key)",
                    ], scratch: outside)
            }

            // Failover through node2 (not the master): it forwards the move to the master.
            let failover = try await outsideRexec(["--failover", "grp1"], client: "vcenter1", key: "vcenter1.key", server: "node2")
            #expect(failover.exitCode == 0 && failover.standardOutput.contains("Command succeeded."), "\(failover)")
            try await cluster.waitForStatus("grp1 Online on node2", on: "node1") {
                $0.group(named: "grp1")?.status == .online && $0.group(named: "grp1")?.current == "node2"
            }

            let script = try await outsideRexec(["--script", "hello.sh"], client: "vcenter1", key: "vcenter1.key", server: "node3")
            #expect(script.exitCode == 0, "\(script)")
            #expect(((try? String(contentsOfFile: marker, encoding: .utf8)) ?? "") == "node3 from vcenter1\n")

            // A wrong key for a known client; the cluster key under a client's name; an unknown name.
            let wrongKey = try await outsideRexec(["--failover", "grp1"], client: "vcenter1", key: "wrong.key", server: "node2")
            #expect(wrongKey.exitCode == 1 && wrongKey.standardError.contains("refused client vcenter1"), "\(wrongKey)")
            try cluster.write(try String(contentsOfFile: cluster.keyPath, encoding: .utf8), to: outside + "/stolen.key", mode: 0o600)
            let clusterKey = try await outsideRexec(["--failover", "grp1"], client: "vcenter1", key: "stolen.key", server: "node2")
            #expect(clusterKey.exitCode == 1 && clusterKey.standardError.contains("refused client vcenter1"), "\(clusterKey)")
            let unknown = try await outsideRexec(["--failover", "grp1"], client: "stranger", key: "wrong.key", server: "node2")
            #expect(unknown.exitCode == 1 && unknown.standardError.contains("refused client stranger"), "\(unknown)")
            // A valid client asking for what its allow list does not name.
            let denied = try await outsideRexec(["--failover", "grp1"], client: "monitor1", key: "monitor1.key", server: "node2")
            #expect(denied.exitCode == 1 && denied.standardError.contains("may not send failover requests"), "\(denied)")
            let deniedScript = try await outsideRexec(["--script", "hello.sh"], client: "monitor1", key: "monitor1.key", server: "node2")
            #expect(deniedScript.exitCode == 1, "\(deniedScript)")
            #expect(((try? String(contentsOfFile: marker, encoding: .utf8)) ?? "") == "node3 from vcenter1\n")
            // What it is allowed works: an external error for node2's mrw monitor, then cleared.
            let notice = try await outsideRexec(["--notice", "-k", "APP"], client: "monitor1", key: "monitor1.key", server: "node2")
            #expect(notice.exitCode == 0, "\(notice)")
            try await cluster.waitForStatus("mrw1 Error on node2", on: "node2") {
                $0.monitors?.first { $0.name == "mrw1" }?.status == .error
            }
            let cleared = try await outsideRexec(["--clear", "-k", "APP"], client: "monitor1", key: "monitor1.key", server: "node2")
            #expect(cleared.exitCode == 0, "\(cleared)")
            try await cluster.waitForStatus("mrw1 Normal on node2", on: "node2") {
                $0.monitors?.first { $0.name == "mrw1" }?.status == .normal
            }

            let afterRefusals = try await cluster.clpstat(on: "node1")
            #expect(afterRefusals.group(named: "grp1")?.current == "node2", "a refused request moved the group: \(afterRefusals.summary)")
            // node2 counted every refusal, by reason, and alerted each kind once (trnsv 1).
            let control = try #require(try await cluster.clpstat(on: "node2").transport?.first { $0.name == "control" })
            #expect(control.dropped["clientBadMAC"] == 2, "\(control)")
            #expect(control.dropped["badSender"] == 1, "\(control)")
            #expect(control.dropped["clientDenied"] == 2, "\(control)")
            let alerts = (try? String(contentsOfFile: cluster.stateDirectory(of: "node2") + "/alert.log", encoding: .utf8)) ?? ""
            let refusals = alerts.split(separator: "\n").filter { $0.contains("was refused") }
            #expect(refusals.count == 3, "\(refusals)")
            #expect(
                !alerts.contains(
                    try String(contentsOfFile: keys + "/vcenter1.key", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)))

            // A member's own clprexec goes through its daemon, as before.
            let member = try await cluster.cli(["clprexec", "--failover", "grp1", "-h", "node2"], on: "node1")
            #expect(member.exitCode == 0, "\(member)")
            try await cluster.waitForStatus("grp1 Online on node3", on: "node1") {
                $0.group(named: "grp1")?.status == .online && $0.group(named: "grp1")?.current == "node3"
            }
            let memberScript = try await cluster.cli(["clprexec", "--script", "hello.sh", "-h", "node2"], on: "node1")
            #expect(memberScript.exitCode == 0, "\(memberScript)")
            #expect(((try? String(contentsOfFile: marker, encoding: .utf8)) ?? "") == "node3 from vcenter1\nnode2 from node1\n")

            // A client whose key file is missing is refused and said (trnsv 2); once the file is
            // there, it is read within seconds.
            let node1Alerts = (try? String(contentsOfFile: cluster.stateDirectory(of: "node1") + "/alert.log", encoding: .utf8)) ?? ""
            #expect(node1Alerts.contains("[trnsv 2] Rexec client ghost is refused: key file"), "\(node1Alerts)")
            let ghostKey = try await cluster.understudy(["keygen", keys + "/ghost.key"])
            #expect(ghostKey.exitCode == 0, "\(ghostKey)")
            try cluster.write(try String(contentsOfFile: keys + "/ghost.key", encoding: .utf8), to: outside + "/ghost.key", mode: 0o600)
            var accepted: CommandOutcome?
            for _ in 0..<40 {
                let attempt = try await outsideRexec(["--clear", "-k", "APP"], client: "ghost", key: "ghost.key", server: "node1")
                accepted = attempt
                if attempt.exitCode == 0 { break }
                try await Task.sleep(for: .milliseconds(250))
            }
            #expect(accepted?.exitCode == 0, "\(String(describing: accepted))")

            // Revoking one client: a new key file on the servers. The old key is refused within
            // seconds (no configuration change), the other client is untouched.
            let before = try await outsideRexec(["--script", "noop.sh"], client: "vcenter1", key: "vcenter1.key", server: "node1")
            #expect(before.exitCode == 0, "\(before)")
            let replaced = try await cluster.understudy(["keygen", "--force", keys + "/vcenter1.key"])
            #expect(replaced.exitCode == 0, "\(replaced)")
            var revoked: CommandOutcome?
            for _ in 0..<40 {
                let attempt = try await outsideRexec(["--script", "noop.sh"], client: "vcenter1", key: "vcenter1.key", server: "node1")
                if attempt.exitCode != 0 {
                    revoked = attempt
                    break
                }
                try await Task.sleep(for: .milliseconds(250))
            }
            #expect(
                revoked?.exitCode == 1 && revoked?.standardError.contains("refused client vcenter1") == true,
                "\(String(describing: revoked))")
            let other = try await outsideRexec(["--clear", "-k", "APP"], client: "monitor1", key: "monitor1.key", server: "node1")
            #expect(other.exitCode == 0, "\(other)")
        }
    }
}
