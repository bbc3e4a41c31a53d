import Testing
import UnderstudyModel

@testable import UnderstudyEngine

/// The lease as a pure function: what the peers echoed, the partition rule and the time in,
/// until when nobody can take this server's groups over out.
@Suite("Lease.expiry")
struct LeaseTests {
    /// s1's membership after s2 echoed s1's heartbeat sent at 10 s (s2's heartbeat arrives at 10.1 s).
    static func membership(servers: [ServerName], majority: Bool) -> Membership {
        var membership = Membership(me: "s1", servers: servers, timeout: .seconds(3), usesMajority: majority)
        let heartbeat = Heartbeat(
            sender: "s2", bootID: 2, run: 1, sentAt: .milliseconds(10_050), configHash: "h", syncDone: true,
            hears: ["s1": HeardHeartbeat(bootID: 1, sentAt: .seconds(10))], view: ["s1", "s2"])
        _ = membership.record(heartbeat, path: "lan1", now: .milliseconds(10_100), myBootID: 1)
        return membership
    }

    static func expiry(_ membership: Membership, ping: PingResolver, lastSentAt: EngineTime, now: EngineTime) -> EngineTime? {
        Lease.expiry(
            me: "s1", servers: membership.servers, membership: membership, ping: ping, lastSentAt: lastSentAt,
            timeout: .seconds(3), takeoverMargin: .milliseconds(500), now: now)
    }

    @Test("without majority: the peer's echo plus the timeout and the takeover margin bounds the lease")
    func echoBounds() {
        let membership = Self.membership(servers: ["s1", "s2"], majority: false)
        let ping = PingResolver(targets: ["192.0.2.1"], timeout: .seconds(1))
        #expect(Self.expiry(membership, ping: ping, lastSentAt: .seconds(11), now: .seconds(11)) == .milliseconds(13_500))
        // The peer is lost (silent past the timeout) and no probe has confirmed it: it still
        // binds, and the lease has run out.
        #expect(Self.expiry(membership, ping: ping, lastSentAt: .milliseconds(19_500), now: .seconds(20)) == nil)
        // Without any resolution a lost peer binds nothing (documented as unsafe).
        let noPing = PingResolver(targets: [], timeout: .seconds(1))
        #expect(Self.expiry(membership, ping: noPing, lastSentAt: .milliseconds(19_500), now: .seconds(20)) == .milliseconds(22_500))
    }

    @Test(
        "without majority: a peer that fell silent and came back without hearing us binds the lease by its last echo, unless it was proven cut off"
    )
    func returningPeerBindsByItsLastEcho() {
        var membership = Self.membership(servers: ["s1", "s2"], majority: false)
        // s2 is silent from 10.1 s, and heard again at 13.5 s (after the 3 s timeout) without
        // hearing s1: its echo of 10 s is no longer its current one, but its timeout of s1 has
        // run from then.
        let back = Heartbeat(
            sender: "s2", bootID: 2, run: 1, sentAt: .milliseconds(13_450), configHash: "h", syncDone: true, hears: [:],
            view: ["s2"])
        _ = membership.record(back, path: "lan1", now: .milliseconds(13_500), myBootID: 1)
        #expect(membership.leaseFrom("s2") == nil)
        #expect(membership.lastLeaseFrom("s2") == .seconds(13))
        var ping = PingResolver(targets: ["192.0.2.1"], timeout: .seconds(1))
        #expect(Self.expiry(membership, ping: ping, lastSentAt: .seconds(13), now: .milliseconds(13_500)) == nil)
        // Shown to be the cut-off side while it was silent: it listens long when it comes
        // back, and binds nothing until it is connected again.
        ping.provenCutOff = ["s2"]
        #expect(Self.expiry(membership, ping: ping, lastSentAt: .seconds(13), now: .milliseconds(13_500)) == .seconds(16))
    }

    @Test("with majority: the lease lasts while the echoes keep a majority, without the takeover margin")
    func majorityBounds() {
        let membership = Self.membership(servers: ["s1", "s2", "s3"], majority: true)
        let ping = PingResolver(targets: [], timeout: .seconds(1))
        // s1 and s2 are two of three until s2's echo of 10 s runs out at 13 s.
        #expect(Self.expiry(membership, ping: ping, lastSentAt: .seconds(11), now: .seconds(11)) == .seconds(13))
        // Alone, s1 holds no majority: no lease at all.
        let alone = Membership(me: "s1", servers: ["s1", "s2", "s3"], timeout: .seconds(3), usesMajority: true)
        #expect(Self.expiry(alone, ping: ping, lastSentAt: .seconds(11), now: .seconds(11)) == nil)
    }
}
