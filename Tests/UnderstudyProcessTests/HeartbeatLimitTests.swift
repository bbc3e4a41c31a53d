import Foundation
import Testing

/// A configuration whose heartbeats could not fit in a datagram (issue 13: 300 groups made
/// every heartbeat of two healthy servers vanish, and both activated everything) is refused
/// by `config check` and by the daemon, with the limit and the estimated size.
@Suite("Process: heartbeat size limit")
struct HeartbeatLimitTests {
    @Test("300 groups: config check and the daemon exit 2 naming the limit and the estimated size")
    func threeHundredGroupsAreRefused() async throws {
        let groups = (0..<300).map { GroupSpec.simple("group-number-\($0)") }
        try await withCluster(ClusterSpec(subnet: 129, servers: ["node1", "node2"], groups: groups, pingTarget: "127.0.129.254")) {
            cluster in
            let check = try await cluster.understudy(["config", "check", cluster.configPath])
            #expect(check.exitCode == 2, "\(check)")
            let line = try #require(check.standardError.split(separator: "\n").first.map(String.init), "\(check)")
            #expect(line.hasPrefix("\(cluster.configPath): the heartbeats of this configuration can reach "), "\(check)")
            #expect(line.contains("(300 groups;"), "\(check)")
            #expect(line.contains("more than the 58849 bytes one heartbeat datagram may carry"), "\(check)")

            // The daemon refuses to start, with the same reason, and leaves nothing running.
            try cluster.startDaemon("node1")
            let code = try await cluster.waitForExit("node1", timeout: .seconds(20))
            #expect(code == 2)
            let log = try String(contentsOfFile: cluster.logPath(of: "node1"), encoding: .utf8)
            #expect(log.contains("cannot start: \(cluster.configPath): the heartbeats of this configuration can reach "), "\(log)")
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
