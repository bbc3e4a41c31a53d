import Foundation
import Testing
import UnderstudyEngine

/// Heartbeats stay one datagram whatever the groups (issue 19): 300 groups — which the JSON
/// heartbeat of earlier versions could not carry (issue 13: every heartbeat of two healthy
/// servers vanished, and both activated everything) — pass `config check`, form, and fail
/// over after kill -9, the groups' state travelling as deltas and fetched over the control
/// channel (HeartbeatStateSync.swift).
@Suite("Process: heartbeat size limit")
struct HeartbeatLimitTests {
    @Test("300 groups: config check passes; three daemons place them all; kill -9 of their server fails them over")
    func threeHundredGroupsRun() async throws {
        let groups = (0..<300).map { GroupSpec.simple("group-number-\($0)", servers: ["node2", "node3", "node1"]) }
        var spec = ClusterSpec(subnet: 129, servers: ["node1", "node2", "node3"], groups: groups)
        // The recommended profile for a cluster of this size (the debug build starts 300
        // scripts at once on a small machine, beside the other tests).
        spec.heartbeatInterval = "1s"
        spec.heartbeatTimeoutMilliseconds = 5_000
        try await withCluster(spec) { cluster in
            let check = try await cluster.understudy(["config", "check", cluster.configPath])
            #expect(check.exitCode == 0, "\(check)")
            #expect(check.standardOutput.contains("300 groups"), "\(check)")
            try cluster.start()
            // Every server sees every group Online on one server (the others learn it from
            // that server's reports and the master's directory: far too large for a datagram).
            let allOnOne = { (snapshot: ClusterStatusSnapshot) -> String? in
                guard snapshot.groups.count == 300, let holder = snapshot.groups.first?.current,
                    snapshot.groups.allSatisfy({ $0.status == .online && $0.current == holder })
                else { return nil }
                return holder
            }
            let placed = try await cluster.waitForStatus("300 groups Online on one server", on: "node1", timeout: .seconds(90)) {
                allOnOne($0) != nil
            }
            let holder = try #require(allOnOne(placed))
            for observer in ["node1", "node2", "node3"] where observer != "node1" {
                try await cluster.waitForStatus("300 groups Online on \(holder)", on: observer, timeout: .seconds(60)) {
                    allOnOne($0) == holder
                }
            }
            cluster.send(SIGKILL, to: holder)
            let survivor = ["node1", "node2", "node3"].first { $0 != holder } ?? "node1"
            try await cluster.waitForStatus("300 groups Online on a survivor", on: survivor, timeout: .seconds(90)) { snapshot in
                allOnOne(snapshot).map { $0 != holder } ?? false
            }
        }
    }

    @Test("a configuration that fits prints the size of its largest heartbeat")
    func fittingConfigurationShowsItsHeartbeat() async throws {
        try await withCluster(ClusterSpec(subnet: 129, servers: ["node1", "node2"])) { cluster in
            let check = try await cluster.understudy(["config", "check", cluster.configPath])
            #expect(check.exitCode == 0, "\(check)")
            #expect(check.standardOutput.contains("largest heartbeat "), "\(check)")
            #expect(check.standardOutput.contains(" of 58849 bytes)"), "\(check)")
        }
    }
}
