import Foundation
import Testing
import UnderstudyEngine
import UnderstudyModel

#if canImport(Glibc)
    import Glibc
#endif

/// node1 and node3 stop cleanly while node2 keeps the group; node2 then dies. node1 and node3
/// come back: they wait for node2 (it might still run the group behind a partition) and say
/// so, until the operator runs `clpcl --forget node2`; then they found the cluster and start
/// the group.
@Suite("Process: servers left running")
struct LeftRunningTests {
    @Test("servers that left node2 running wait for it; clpcl --forget node2 lets them found the cluster")
    func forgetAServerLeftRunning() async throws {
        var spec = ClusterSpec(subnet: 130)
        spec.syncWait = "2s"
        spec.groups = [.simple("grp1", servers: ["node2", "node1", "node3"])]
        try await withCluster(spec) { cluster in
            try cluster.start()
            try await cluster.waitUntilFormed(group: "grp1", on: "node2")
            for server in ["node1", "node3"] {
                cluster.send(SIGTERM, to: server)
                #expect(try await cluster.waitForExit(server) == 0)
            }
            try await cluster.waitForStatus("grp1 still Online on node2", on: "node2") { snapshot in
                snapshot.group(named: "grp1")?.status == .online && snapshot.group(named: "grp1")?.current == "node2"
            }
            cluster.send(SIGKILL, to: "node2")
            _ = try await cluster.waitForExit("node2")

            try cluster.start(["node1", "node3"])
            // Past the sync wait: nothing starts, and the log says why.
            try await Task.sleep(for: .seconds(4))
            let starts = cluster.records.starts.filter { $0.server != "node2" }
            #expect(starts.isEmpty, "\(cluster.records.summary)")
            let log = try String(contentsOfFile: cluster.logPath(of: "node1"), encoding: .utf8)
            #expect(log.contains("[nm 8] The cluster is not started: node2 kept running it"), "\(log)")

            let forget = try await cluster.cli(["clpcl", "--forget", "node2"], on: "node1")
            #expect(forget.exitCode == 0, "\(forget)")
            #expect(forget.standardOutput.contains("Forget node2 on node1 : Command succeeded."), "\(forget)")
            #expect(forget.standardOutput.contains("Forget node2 on node3 : Command succeeded."), "\(forget)")
            try await cluster.waitForStatus("grp1 Online on node1", on: "node3", timeout: .seconds(15)) { snapshot in
                snapshot.group(named: "grp1")?.status == .online && snapshot.group(named: "grp1")?.current == "node1"
            }
        }
    }
}
