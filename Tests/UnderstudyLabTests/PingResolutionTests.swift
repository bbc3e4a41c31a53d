import Foundation
import Testing
import UnderstudyLab
import UnderstudyTestSupport

/// `pingnp` in the lab, two servers with the client as the ping target (the usual gateway):
/// the server whose link goes down loses (it reaches no target), fences its group, and the
/// other takes the group over; after the link returns nothing moves back.
@Suite("Lab: ping network-partition resolution", .serialized, .requires(labPrerequisite))
struct PingResolutionTests {
    @Test("link down: the cut-off server fences, the other takes over; nothing moves back")
    func linkDownLoserFences() async throws {
        var spec = labSpec()
        spec.resolution = "ping"
        let lab = try await Lab.up(spec, binary: labBinary, startDaemons: false)
        defer { lab.down() }
        let config = try String(contentsOfFile: spec.configPath, encoding: .utf8)
        #expect(config.contains("type: pingnp") && config.contains("targets: [\(spec.publicAddress(of: LabSpec.client))]"))
        for server in spec.serverNames { try lab.startDaemon(server) }
        try await waitUntilFormed(lab)
        _ = try await lab.waitForStatus("grp1 online on node1", on: "node2", timeout: .seconds(20)) {
            $0.groups.first { $0.name == "grp1" }.map { $0.status == .online && $0.current == "node1" } ?? false
        }

        try lab.setLink("node1", up: false)
        let taken = try await lab.waitForStatus("grp1 online on node2", on: "node2", timeout: .seconds(20)) {
            $0.groups.first { $0.name == "grp1" }.map { $0.status == .online && $0.current == "node2" } ?? false
        }
        #expect(taken.servers.first { $0.name == "node2" }?.networkPartition.first?.status == .normal)
        let loser = try await lab.waitForStatus("node1 cut off", on: "node1", timeout: .seconds(10)) { $0.isolated }
        #expect(loser.groups.first { $0.name == "grp1" }?.perServer["node1"] == .offline)

        try lab.setLink("node1", up: true)
        try await waitUntilFormed(lab, timeout: .seconds(20))
        try await Task.sleep(for: .seconds(2))
        let after = try #require(await lab.status(on: "node1", timeout: .seconds(10)))
        #expect(after.groups.first { $0.name == "grp1" }?.current == "node2", "failback is manual: \(after.groups)")
        #expect(!after.isolated)
    }
}
