import Foundation
import Testing
import UnderstudyModel

/// `understudy config import`: the fixtures convert through the real CLI and pass `config
/// check`, and a cluster converted from a clp.conf starts.
@Suite("Process: clp.conf import")
struct ClpImportProcessTests {
    static let fixtures = ProcessTestPaths.packageRoot + "/Tests/Fixtures/clpconf"

    @Test(
        "each fixture converts (exit 0), its scripts are copied, a key is written and config check passes",
        arguments: ["two-server-shared-disk", "three-server-lvm"])
    func fixtureConverts(_ name: String) async throws {
        let binary = try ProcessTestPaths.requireBinary()
        try await withScratchFolder { folder in
            let output = folder + "/out/cluster.yaml"
            let outcome = try await CommandRunner.run(
                binary, ["config", "import", "\(Self.fixtures)/\(name)/clp.conf", "--output", output], scratch: folder)
            #expect(outcome.exitCode == 0, "\(outcome)")
            #expect(outcome.standardOutput.contains("config check OK"), "\(outcome)")
            #expect(outcome.standardError.contains("not converted: "), "\(outcome)")
            let yaml = try String(contentsOfFile: output, encoding: .utf8)
            #expect(yaml.hasPrefix("# Converted from clp.conf by `understudy config import` on "))
            #expect(yaml.contains("# Not converted ("))
            #expect(FileManager.default.fileExists(atPath: folder + "/out/cluster.key"))
            let scripts =
                name == "two-server-shared-disk" ? ["failover1/exec1/start.sh", "monitor.s/genw1/genw.sh"] : ["web/exec-web/stop.sh"]
            for script in scripts {
                #expect(FileManager.default.isExecutableFile(atPath: folder + "/out/scripts/" + script), "\(script)")
            }
            let check = try await CommandRunner.run(binary, ["config", "check", output], scratch: folder)
            #expect(check.exitCode == 0, "\(check)")
            // A second run does not overwrite without --force.
            let again = try await CommandRunner.run(
                binary, ["config", "import", "\(Self.fixtures)/\(name)/clp.conf", "-o", output], scratch: folder)
            #expect(again.exitCode == 1, "\(again)")
            #expect(again.standardError.contains("exists; --force replaces it"), "\(again)")
        }
    }

    @Test("an unreadable clp.conf exits 2 naming file and line")
    func unreadable() async throws {
        let binary = try ProcessTestPaths.requireBinary()
        try await withScratchFolder { folder in
            let broken = folder + "/clp.conf"
            try "<?xml version=\"1.0\"?>\n<root>\n  <cluster>\n    <name>c</cluster>\n</root>\n".write(
                toFile: broken, atomically: true, encoding: .utf8)
            let outcome = try await CommandRunner.run(binary, ["config", "import", broken, "-o", folder + "/c.yaml"], scratch: folder)
            #expect(outcome.exitCode == 2, "\(outcome)")
            #expect(outcome.standardError.contains("\(broken):4: </cluster> closes <name>"), "\(outcome)")
            #expect(!FileManager.default.fileExists(atPath: folder + "/c.yaml"))
            let missing = try await CommandRunner.run(binary, ["config", "import", folder + "/none.conf"], scratch: folder)
            #expect(missing.exitCode == 2, "\(missing)")
        }
    }

    @Test("a cluster converted from clp.conf starts: both servers join and the group runs its copied scripts on the master")
    func convertedClusterStarts() async throws {
        let spec = ClusterSpec(subnet: 186, servers: ["node1", "node2"], heartbeatInterval: "200ms", heartbeatTimeoutMilliseconds: 1500)
        try await withCluster(spec) { cluster in
            let manager = FileManager.default
            // An exported configuration folder: clp.conf and scripts/<group>/<resource>/.
            let export = cluster.folder + "/export"
            let scripts = export + "/scripts/grp1/grp1-app"
            try manager.createDirectory(atPath: scripts, withIntermediateDirectories: true)
            for action in ["start", "stop"] {
                try manager.copyItem(atPath: "\(cluster.folder)/scripts/grp1-app/\(action).sh", toPath: "\(scripts)/\(action).sh")
            }
            let servers = spec.servers.enumerated().map { index, server in
                """
                  <server name="\(server)">
                    <priority>\(index)</priority>
                    <device id="0"><type>lan</type><info>\(spec.address(of: server))</info></device>
                    <device id="10200"><type>ping</type><info>1</info></device>
                  </server>
                """
            }.joined(separator: "\r\n")
            let clpConf = """
                <?xml version="1.0" encoding="Shift_JIS"?>
                <root>
                  <all><charset>EUC-JP</charset><encode>EUC-JP</encode><serveros>linux</serveros></all>
                  <cluster>
                    <name>imported</name>
                    <comment>取り込み試験</comment>
                    <heartbeat><timeout>\(spec.heartbeatTimeoutMilliseconds)</timeout><interval>200</interval></heartbeat>
                    <networkpartition><npaction>0</npaction></networkpartition>
                  </cluster>
                \(servers)
                  <heartbeat><lankhb name="lankhb1"><priority>0</priority><device>0</device></lankhb><types name="lankhb"/></heartbeat>
                  <networkpartition>
                    <pingnp name="pingnp1"><priority>0</priority><device>10200</device><grp id="0"><list id="0"><ip>127.0.186.254</ip></list></grp></pingnp>
                    <types name="pingnp"/>
                  </networkpartition>
                  <group name="grp1"><comment/><gid>0</gid><resource name="exec@grp1-app"/><resource name="md@md1"/></group>
                  <resource>
                    <exec name="grp1-app"><comment>業務</comment><parameters><act><path>start.sh</path></act><deact><path>stop.sh</path></deact></parameters><act><timeout>30</timeout></act><deact><timeout>30</timeout></deact></exec>
                    <md name="md1"><parameters><nmppath>/dev/NMP1</nmppath></parameters></md>
                    <types name="exec"/><types name="md"/>
                  </resource>
                  <monitor><userw name="userw"><relation><type>cls</type><name>LocalServer</name></relation></userw><types name="userw"/></monitor>
                </root>
                """.replacingOccurrences(of: "\n", with: "\r\n")
            let bytes = try #require(clpConf.data(using: .shiftJIS))
            try bytes.write(to: URL(fileURLWithPath: export + "/clp.conf"))

            let outcome = try await cluster.understudy(["config", "import", export + "/clp.conf", "-o", cluster.configPath, "--force"])
            #expect(outcome.exitCode == 0, "\(outcome)")
            #expect(outcome.standardError.contains("not converted: resource/md@md1: mirror disk resource"), "\(outcome)")
            #expect(manager.isExecutableFile(atPath: cluster.folder + "/scripts/grp1/grp1-app/start.sh"))

            // The test's own ports and OS commands (the converted file has CLUSTERPRO's ports).
            var yaml = try String(contentsOfFile: cluster.configPath, encoding: .utf8)
            #expect(yaml.contains("comment: \"取り込み試験\""), "\(yaml)")
            let portsLine = "  ports: {control: 29001, heartbeat: 29002, http: 29003}   # CLUSTERPRO's defaults"
            #expect(yaml.contains(portsLine), "\(yaml)")
            yaml = yaml.replacingOccurrences(
                of: portsLine,
                with: """
                      ports: {control: \(spec.controlPort), heartbeat: \(spec.heartbeatPort), http: \(spec.httpPort)}
                      timing: {heartbeat-interval: 200ms, heartbeat-timeout: 1500ms, sync-wait: 10s}
                      os-commands:
                        shutdown: [/bin/sh, -c, "echo shutdown >> '\(cluster.osActionsPath)'"]
                        reboot: [/bin/sh, -c, "echo reboot >> '\(cluster.osActionsPath)'"]
                    """
            ).replacingOccurrences(of: "  timing:\n    heartbeat-interval: 200ms\n    heartbeat-timeout: 1500ms\n", with: "")
            try cluster.write(yaml, to: cluster.configPath)
            let check = try await cluster.understudy(["config", "check", cluster.configPath])
            #expect(check.exitCode == 0, "\(check)\n\(yaml)")

            try cluster.start()
            try await cluster.waitUntilFormed(group: "grp1", on: "node1")
            let runs = try await cluster.waitForRecords("the start script on node1") { $0.starts.count == 1 }
            #expect(runs.starts.first?.server == "node1")
            #expect(runs.starts.first?["CLP_RESOURCENAME"] == "grp1-app")
            #expect(cluster.osActions.isEmpty)
        }
    }
}
