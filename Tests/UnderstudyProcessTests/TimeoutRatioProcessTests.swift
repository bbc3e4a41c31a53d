import Foundation
import Testing
import UnderstudyModel
import UnderstudyTestSupport

#if canImport(Glibc)
    import Glibc
#endif

/// `clptoratio` end to end: three real daemons, a setting made on one server that reaches the
/// others, a freeze the extended timeout rides out, and the same freeze failing over once the
/// ratio is reset.
@Suite("Process: timeout ratio (clptoratio)")
struct TimeoutRatioProcessTests {
    static func alertLog(_ cluster: TestCluster, _ server: String) -> String {
        (try? String(contentsOfFile: cluster.stateDirectory(of: server) + "/alert.log", encoding: .utf8)) ?? ""
    }

    /// Stops node1's daemon (SIGSTOP) for `duration`, then lets it go on.
    static func freezeNode1(_ cluster: TestCluster, for duration: Duration) async throws {
        cluster.send(SIGSTOP, to: "node1")
        do {
            try await Task.sleep(for: duration)
        } catch {
            cluster.send(SIGCONT, to: "node1")
            throw error
        }
        cluster.send(SIGCONT, to: "node1")
    }

    @Test(
        "clptoratio -r 4 on node2 reaches every server; node1 frozen 3 s (timeout 1.5 s) keeps grp1; after clptoratio -i the same freeze fails grp1 over"
    )
    func extendedTimeoutsRideOutAFreeze() async throws {
        let spec = ClusterSpec(subnet: 195)
        try await withCluster(spec) { cluster in
            try cluster.start()
            try await cluster.waitUntilFormed()

            let set = try await cluster.cli(["clptoratio", "-r", "4", "-t", "1h"], on: "node2")
            #expect(set.exitCode == 0, "\(set)")
            for server in cluster.servers {
                _ = try await cluster.waitForStatus("ratio 4", on: server, timeout: .seconds(10)) {
                    $0.timeoutRatio?.ratio == 4 && $0.timeoutRatio?.perServer.count == 3
                        && $0.timeoutRatio?.perServer.values.allSatisfy { $0 == 4 } == true
                }
            }
            let shown = try await cluster.cli(["clptoratio", "-s"], on: "node3")
            #expect(shown.exitCode == 0 && shown.standardOutput.hasPrefix("present toratio : 4\n"), "\(shown)")
            #expect(shown.standardOutput.contains("heartbeat timeout : 6000 ms"), "\(shown)")
            let refused = try await cluster.cli(["clptoratio", "-r", "2", "-t", "31d"], on: "node1")
            #expect(refused.exitCode == 2 && refused.standardError.contains("at most 30 days"), "\(refused)")
            #expect(Self.alertLog(cluster, "node3").contains("[cl 20] Timeout ratio on node3 is now 4 (from node2)"))
            // Every server's alert log from one server, merged by time (understudy alerts).
            let merged = try await cluster.cli(["alerts", "-n", "500"], on: "node1")
            #expect(merged.exitCode == 0, "\(merged)")
            for server in cluster.servers {
                #expect(merged.standardOutput.contains(" \(server) INFO [cl 20] Timeout ratio on \(server) is now 4"), "\(merged)")
            }
            let times = merged.standardOutput.split(separator: "\n").map { $0.prefix(24) }
            #expect(times == times.sorted(), "not in time order: \(merged)")
            let onlyNode3 = try await cluster.cli(["alerts", "-h", "node3", "--json", "--level", "info"], on: "node1")
            let objects = onlyNode3.standardOutput.split(separator: "\n").compactMap {
                try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
            }
            #expect(!objects.isEmpty && objects.allSatisfy { $0["server"] as? String == "node3" }, "\(onlyNode3)")
            #expect(objects.contains { $0["module"] as? String == "cl" && $0["id"] as? Int == 20 }, "\(onlyNode3)")
            let warnings = try await cluster.cli(["alerts", "--level", "warning"], on: "node2")
            #expect(warnings.exitCode == 0 && !warnings.standardOutput.contains(" INFO ["), "\(warnings)")

            // Twice the configured timeout, two thirds of the extended one: nobody judges node1 down.
            try await Self.freezeNode1(cluster, for: .seconds(3))
            try await Task.sleep(for: .seconds(2))
            for server in ["node2", "node3"] {
                let snapshot = try await cluster.clpstat(on: server)
                #expect(snapshot.server(named: "node1")?.status == .online, "\(server): \(snapshot.summary)")
                #expect(snapshot.group(named: "grp1")?.current == "node1", "\(server): \(snapshot.summary)")
                #expect(!Self.alertLog(cluster, server).contains("Server node1 is down"), "\(server) judged node1 down")
            }
            #expect(!cluster.records.contains { $0.server == "node2" && $0.action == "start" }, "grp1 failed over")

            let reset = try await cluster.cli(["clptoratio", "-i"], on: "node3")
            #expect(reset.exitCode == 0, "\(reset)")
            for server in cluster.servers {
                _ = try await cluster.waitForStatus("ratio 1", on: server, timeout: .seconds(10)) { $0.timeoutRatio?.ratio == 1 }
            }
            // The old 6 s still bind for heartbeats heard before the reset.
            try await Task.sleep(for: .seconds(7))
            try await Self.freezeNode1(cluster, for: .seconds(4))
            _ = try await cluster.waitForStatus("grp1 failed over to node2", on: "node2", timeout: .seconds(20)) {
                $0.group(named: "grp1")?.current == "node2" && $0.group(named: "grp1")?.status == .online
            }
        }
    }
}
