import Foundation
import Testing
import UnderstudyEngine
import UnderstudyModel
import UnderstudyNode

/// Scenario 1: three daemons start, sync, and the group comes Online on the first server.
@Suite("Process: cluster start")
struct ClusterStartTests {
    @Test("after the sync wait all three servers join and the group starts on the first server with START/HOME")
    func groupStartsOnFirstServer() async throws {
        try await withCluster(ClusterSpec(subnet: 101)) { cluster in
            try cluster.start()
            try await cluster.waitUntilFormed()

            // Every server tells the same story through the real CLI.
            for server in cluster.servers {
                let status = try await cluster.clpstat(on: server)
                #expect(status.localServer == server)
                #expect(status.master == "node1")
                #expect(status.syncDone)
                #expect(status.service == "running")
                #expect(status.servers.map(\.status) == [.online, .online, .online], "\(status.summary)")
                #expect(status.servers.filter(\.isLocal).map(\.name) == [server])
                let group = try #require(status.group(named: "grp1"))
                #expect(group.status == .online)
                #expect(group.current == "node1")
                #expect(group.resources.map(\.status) == [.online])
            }

            let runs = cluster.records
            #expect(runs.count == 1, "\(runs.summary)")
            let start = try #require(runs.starts.first)
            #expect(start.server == "node1")
            let host = HostFacts.detect(productVersion: Defaults.productVersion, installPath: Defaults.installPath)
            let expected: [String: String] = [
                "CLP_EVENT": "START", "CLP_SERVER": "HOME", "CLP_PRIORITY": "1", "CLP_DISK": "SUCCESS",
                "CLP_GROUPNAME": "grp1", "CLP_RESOURCENAME": "grp1-app", "CLP_VERSION_FULL": Defaults.productVersion,
                "CLP_PATH": Defaults.installPath, "CLP_OSNAME": host.osName, "CLP_OSVER": host.osVersion,
                "CLP_SERVER_LOCAL": "node1",
            ]
            for (name, value) in expected.sorted(by: { $0.key < $1.key }) {
                #expect(start[name] == value, "\(name)")
            }
            // Start scripts get no stop-only variables.
            #expect(start["CLP_FACTOR"] == nil)
            #expect(start["CLP_LASTACTION"] == nil)
            #expect(start["CLP_PID"] == nil)
        }
    }

    @Test("clpstat shows the CLUSTERPRO layout with the local server marked")
    func clpstatTextLayout() async throws {
        try await withCluster(ClusterSpec(subnet: 102)) { cluster in
            try cluster.start()
            try await cluster.waitUntilFormed(seenBy: "node2")
            let outcome = try await cluster.cli(["clpstat"], on: "node2")
            #expect(outcome.exitCode == 0, "\(outcome)")
            let lines = outcome.outputLines
            #expect(lines.first?.contains("CLUSTER STATUS") == true, "\(outcome)")
            #expect(lines.contains("  Cluster : ptest102"), "\(outcome)")
            #expect(lines.contains("  <server>"), "\(outcome)")
            #expect(lines.contains("  <group>"), "\(outcome)")
            // The local server carries the `*`, the others do not.
            #expect(lines.contains { $0.contains("*node2") && $0.hasSuffix(": Online") }, "\(outcome)")
            #expect(lines.contains { $0.contains(" node1 ") && !$0.contains("*") && $0.hasSuffix(": Online") }, "\(outcome)")
            #expect(!lines.contains { $0.contains("*node1") || $0.contains("*node3") }, "\(outcome)")
            #expect(lines.contains { $0.contains("lanhb1") && $0.contains(": Normal") }, "\(outcome)")
            #expect(lines.contains { $0.contains("grp1 ") && $0.contains(": Online") }, "\(outcome)")
            #expect(lines.contains { $0.range(of: #"^\s+current\s+: node1$"#, options: .regularExpression) != nil }, "\(outcome)")
            #expect(lines.contains { $0.contains("grp1-app") && $0.hasSuffix(": Online") }, "\(outcome)")
        }
    }
}
