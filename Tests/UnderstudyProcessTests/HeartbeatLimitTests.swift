import Foundation
import Testing

/// Heartbeats stay one datagram whatever the groups (issue 19): 300 groups — which the JSON
/// heartbeat of earlier versions could not carry (issue 13: every heartbeat of two healthy
/// servers vanished, and both activated everything) — pass `config check`, form, and fail
/// over after kill -9, the groups' state travelling as deltas and fetched over the control
/// channel (HeartbeatStateSync.swift).
@Suite("Process: heartbeat size limit")
struct HeartbeatLimitTests {
    @Test("300 groups: config check passes; two daemons place them all; kill -9 fails them over")
    func threeHundredGroupsRun() async throws {
        let groups = (0..<300).map { GroupSpec.simple("group-number-\($0)", servers: ["node2", "node1"]) }
        var spec = ClusterSpec(subnet: 129, servers: ["node1", "node2"], groups: groups, pingTarget: "127.0.129.254")
        // The recommended profile for a cluster of this size (the debug build starts 300
        // scripts at once on a small machine).
        spec.heartbeatInterval = "1s"
        spec.heartbeatTimeoutMilliseconds = 5_000
        try await withCluster(spec) { cluster in
            let check = try await cluster.understudy(["config", "check", cluster.configPath])
            #expect(check.exitCode == 0, "\(check)")
            #expect(check.standardOutput.contains("300 groups"), "\(check)")
            try cluster.start()
            // Both servers see every group Online on node2 (node1 learns it from node2's
            // reports, node2 from node1's directory: both far too large for a datagram).
            for observer in ["node1", "node2"] {
                try await cluster.waitForStatus("300 groups Online on node2", on: observer, timeout: .seconds(90)) { snapshot in
                    snapshot.groups.count == 300 && snapshot.groups.allSatisfy { $0.status == .online && $0.current == "node2" }
                }
            }
            // node1 holds the first server and the ping target: it survives and takes over.
            cluster.send(SIGKILL, to: "node2")
            try await cluster.waitForStatus("300 groups Online on node1", on: "node1", timeout: .seconds(90)) { snapshot in
                snapshot.groups.count == 300 && snapshot.groups.allSatisfy { $0.status == .online && $0.current == "node1" }
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
