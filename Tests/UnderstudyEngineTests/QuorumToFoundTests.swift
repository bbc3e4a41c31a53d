import Testing
import UnderstudyModel

@testable import UnderstudyEngine

/// With majority resolution a server that stopped cleanly is on no side of a split, so a running
/// cluster counts it out of the majority; founding a new cluster counts it out only if its
/// farewell named this server among those it left running (simulator seed 23410429: a server
/// frozen through a cluster stop founded alone on "a majority of one" while the two that had
/// stopped came back behind a partition).
@Suite("Membership.quorumToFound")
struct QuorumToFoundTests {
    /// s1's membership after s2 and s3 each said farewell naming `waitsFor` as left running.
    static func membership(farewellsName waitsFor: [ServerName]) -> Membership {
        var membership = Membership(me: "s1", servers: ["s1", "s2", "s3"], timeout: .seconds(3), usesMajority: true)
        for (index, peer) in ["s2", "s3"].enumerated() {
            let boot = UInt64(2 + index)
            let running = Heartbeat(
                sender: peer, bootID: boot, run: 1, sentAt: .seconds(10), configHash: "h", syncDone: true,
                hears: ["s1": HeardHeartbeat(bootID: 1, sentAt: .seconds(10))], view: ["s1", "s2", "s3"])
            _ = membership.record(running, path: "lan1", now: .milliseconds(10_050), myBootID: 1)
            var farewell = running
            farewell.sentAt = .seconds(11)
            farewell.serviceUp = false
            farewell.waitsFor = waitsFor
            _ = membership.record(farewell, path: "lan1", now: .milliseconds(11_050), myBootID: 1)
        }
        return membership
    }

    @Test("two farewells that name nobody (a cluster stop): a running cluster keeps its majority, a new one is not founded alone")
    func farewellsNamingNobody() {
        let membership = Self.membership(farewellsName: [])
        #expect(membership.quorum(with: []), "the departed count out of a running cluster's majority")
        #expect(!membership.quorumToFound(with: []), "either may come back and found without s1")
    }

    @Test("farewells that name this server: it may found alone, as the one they left running")
    func farewellsNamingThisServer() {
        let membership = Self.membership(farewellsName: ["s1"])
        #expect(membership.quorum(with: []))
        #expect(membership.quorumToFound(with: []))
    }

    @Test("farewells that name another server only: not founded alone")
    func farewellsNamingAnother() {
        let membership = Self.membership(farewellsName: ["s2"])
        #expect(!membership.quorumToFound(with: []))
    }
}
