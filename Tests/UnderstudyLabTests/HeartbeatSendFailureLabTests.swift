import Foundation
import Testing
import UnderstudyEngine
import UnderstudyLab
import UnderstudyModel
import UnderstudyTestSupport

/// A firewall rule in node1's namespace drops its outgoing heartbeats on the interconnect
/// (`lanhb1`): every `sendto` there fails with EPERM. node1 says so once in its alert log
/// (`lanhb 14`, with the destination and the error), counts the failures in its status, and
/// says so again when the rule is gone (`lanhb 15`). The public LAN (`lanhb2`) keeps node1
/// heard: no failover.
@Suite(
    "Lab: heartbeats that cannot be sent are reported", .serialized,
    .requires(labPrerequisite, Prerequisite.command("nft", package: "nftables")))
struct HeartbeatSendFailureLabTests {
    static let table = "usendblock"

    static func line(_ snapshot: ClusterStatusSnapshot, _ path: String) -> ClusterStatusSnapshot.TransportLine? {
        snapshot.transport?.first { $0.name == path }
    }

    @Test("an output rule's EPERM on lanhb1: lanhb 14 once with the destination, failures in the status, lanhb 15 when it is gone")
    func outputDropIsReportedAndRecovers() async throws {
        try await withLab(labSpec(secondLink: true)) { lab in
            let spec = lab.spec
            let node1 = spec.stateDirectory(of: "node1")
            func alerts() -> String { (try? String(contentsOfFile: node1 + "/alert.log", encoding: .utf8)) ?? "" }
            let peer = try #require(spec.interconnectAddress(of: "node2"))
            func nft(_ arguments: [String]) throws {
                let outcome = try lab.exec(in: "node1", ["nft"] + arguments)
                try #require(outcome.succeeded, "\(outcome)")
            }
            // The namespace goes with the lab; the table is deleted below all the same.
            try nft(["add", "table", "inet", Self.table])
            try nft(["add", "chain", "inet", Self.table, "output", "{ type filter hook output priority 0 ; policy accept ; }"])
            try nft(["add", "rule", "inet", Self.table, "output", "ip", "daddr", peer, "udp", "dport", "29002", "drop"])

            let failing = try await lab.waitForStatus("lanhb1 send failures counted", on: "node1", timeout: .seconds(10)) {
                (Self.line($0, "lanhb1")?.sendFailures ?? 0) > 0
            }
            #expect((Self.line(failing, "lanhb2")?.sendFailures ?? 1) == 0, "\(String(describing: failing.transport))")
            #expect((Self.line(failing, "lanhb2")?.sent ?? 0) > 0)
            let deadline = ContinuousClock.now + .seconds(10)
            while !alerts().contains("Heartbeats on lanhb1 cannot be sent"), ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(100))
            }
            let text = alerts()
            #expect(text.contains("Heartbeats on lanhb1 cannot be sent: sendto \(peer):29002: Operation not permitted"), "\(text)")

            // Several more seconds of failures: still one warning. node2 hears node1 on lanhb2.
            try await Task.sleep(for: .seconds(3))
            #expect(alerts().components(separatedBy: "cannot be sent").count == 2, "\(alerts())")
            let seen = try #require(await lab.status(on: "node2", timeout: .seconds(10)))
            #expect(seen.servers.first { $0.name == "node1" }?.status == .online)
            #expect(seen.groups.first { $0.name == "grp1" }?.current == "node1")

            try nft(["delete", "table", "inet", Self.table])
            let again = ContinuousClock.now + .seconds(10)
            while !alerts().contains("Heartbeats on lanhb1 are sent again"), ContinuousClock.now < again {
                try await Task.sleep(for: .milliseconds(100))
            }
            #expect(alerts().contains("Heartbeats on lanhb1 are sent again"), "\(alerts())")
            #expect(!alerts().contains("lanhb2 cannot be sent"))
        }
    }
}
