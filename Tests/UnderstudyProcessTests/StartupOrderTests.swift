import Foundation
import Testing
import UnderstudyEngine
import UnderstudyModel

/// Power returning to servers at different times (the ESMPRO/AC guide, chapter 4), with the
/// 5-minute sync wait compressed to 3 s: a server booting inside the wait is waited for; one
/// booting after it is treated as down, its group starts elsewhere, and it joins later
/// without a second activation.
@Suite("Process: startup order after power returns")
struct StartupOrderTests {
    static func spec(subnet: Int) -> ClusterSpec {
        var spec = ClusterSpec(subnet: subnet)
        spec.syncWait = "3s"
        // node3 is the group's home server.
        spec.groups = [.simple("grp1", servers: ["node3", "node1", "node2"])]
        return spec
    }

    @Test("the home server boots inside the sync wait: nothing starts before it joined, then the group starts there")
    func lateInsideTheWait() async throws {
        try await withCluster(Self.spec(subnet: 124)) { cluster in
            let bootedAt = Date()
            try cluster.start(["node1", "node2"])
            try await Task.sleep(for: .seconds(1))
            #expect(cluster.records.isEmpty, "a group started before the sync wait ended:\n\(cluster.records.summary)")
            let node3At = Date()
            try cluster.startDaemon("node3")
            try await cluster.waitUntilFormed(group: "grp1", on: "node3", seenBy: "node1")
            let runs = cluster.records
            #expect(runs.count == 1, "\(runs.summary)")
            let start = try #require(runs.starts.first)
            #expect(start.server == "node3" && start["CLP_SERVER"] == "HOME" && start["CLP_PRIORITY"] == "1")
            #expect(start.time >= node3At, "started before node3 booted")
            #expect(start.time.timeIntervalSince(bootedAt) < 10)
        }
    }

    @Test("the home server boots after the sync wait: the group starts on the next server; the late one joins without a second start")
    func lateAfterTheWait() async throws {
        try await withCluster(Self.spec(subnet: 125)) { cluster in
            let bootedAt = Date()
            try cluster.start(["node1", "node2"])
            let formed = try await cluster.waitUntilFormed(online: ["node1", "node2"], group: "grp1", on: "node1", seenBy: "node1")
            #expect(formed.syncDone)
            let start = try #require(cluster.records.starts.first)
            #expect(start.server == "node1" && start["CLP_SERVER"] == "OTHER" && start["CLP_PRIORITY"] == "2")
            #expect(start.time.timeIntervalSince(bootedAt) >= 3, "started before the 3 s sync wait had passed")

            // node3 comes up minutes (here: seconds) later: it joins, the group stays.
            try cluster.startDaemon("node3")
            try await cluster.waitUntilFormed(group: "grp1", on: "node1", seenBy: "node3")
            try await Task.sleep(for: .seconds(2))
            #expect(cluster.records.count == 1, "\(cluster.records.summary)")
            let status = try await cluster.clpstat(on: "node3")
            #expect(status.group(named: "grp1")?.current == "node1" && status.group(named: "grp1")?.status == .online)
        }
    }
}
