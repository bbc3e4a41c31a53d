import Foundation
import Testing
import UnderstudyEngine
import UnderstudyModel

#if canImport(Glibc)
    import Glibc
#endif

/// Two servers whose files differ only in the order of `servers:` (issue 13): they agree on
/// one master, start the group once, report the mismatch once, stay quiet, and stop on
/// SIGTERM.
@Suite("Process: configuration mismatch")
struct ConfigurationMismatchTests {
    @Test("servers listed in another order: one master, the group runs once, the mismatch is reported once, SIGTERM stops both")
    func serversInAnotherOrder() async throws {
        let spec = ClusterSpec(subnet: 128, servers: ["node1", "node2"])
        try await withCluster(spec) { cluster in
            // node2's file lists node2 first; everything else is the same.
            let original = try String(contentsOfFile: cluster.configPath, encoding: .utf8)
            let listed = "  - name: node1\n  - name: node2\n"
            #expect(original.contains(listed))
            let swapped = original.replacingOccurrences(of: listed, with: "  - name: node2\n  - name: node1\n")
            let otherPath = cluster.folder + "/cluster-node2.yaml"
            try cluster.write(swapped, to: otherPath)
            try cluster.startDaemon("node1")
            try cluster.startDaemon("node2", config: otherPath)

            // Both see the other, both name the same master, and the group runs on one server.
            for server in spec.servers {
                try await cluster.waitForStatus("one master, grp1 Online, the mismatch reported", on: server) { snapshot in
                    snapshot.servers.allSatisfy { $0.status == .online } && snapshot.master == "node1"
                        && snapshot.group(named: "grp1")?.status == .online && snapshot.configurationMismatch?.count == 1
                }
            }
            let shown = try await cluster.cli(["clpstat"], on: "node2")
            #expect(shown.standardOutput.contains("node1 runs a different configuration"), "\(shown)")
            // Settled: let a few seconds of heartbeats pass, then count what was written.
            try await Task.sleep(for: .seconds(3))
            let starts = cluster.records.starts
            #expect(starts.count == 1, "the group starts once:\n\(cluster.records.summary)")
            for server in spec.servers {
                let log = try String(contentsOfFile: cluster.logPath(of: server), encoding: .utf8)
                let lines = log.split(separator: "\n")
                let masterLines = lines.filter { $0.contains("is the master server") }
                let mismatchLines = lines.filter { $0.contains("[nm 80]") }
                #expect(masterLines.count <= 2, "\(server):\n\(masterLines.joined(separator: "\n"))")
                #expect(mismatchLines.count == 1, "\(server):\n\(mismatchLines.joined(separator: "\n"))")
                #expect(lines.count < 60, "\(server) stays quiet:\n\(lines.suffix(30).joined(separator: "\n"))")
            }

            // SIGTERM: both stop (node1 stops the group first).
            for server in spec.servers { cluster.send(SIGTERM, to: server) }
            for server in spec.servers {
                let code = try await cluster.waitForExit(server, timeout: .seconds(10))
                #expect(code == 0, "\(server) exited \(code)")
            }
            #expect(cluster.records.stops.count == 1, "\(cluster.records.summary)")
        }
    }
}
