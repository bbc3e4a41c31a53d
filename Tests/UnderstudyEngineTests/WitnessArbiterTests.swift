import Testing

@testable import UnderstudyEngine

/// The witness's decision rule (`WitnessArbiter`, httpnp): who survives a partition.
@Suite("Witness decision rule")
struct WitnessArbiterTests {
    let servers = ["node1", "node2"]
    let timeout: Duration = .seconds(3)

    func ask(_ arbiter: inout WitnessArbiter, _ server: String, sees view: [String], at seconds: Double, servers: [String]? = nil)
        -> WitnessArbiter.Verdict
    {
        arbiter.decide(
            WitnessArbiter.Request(server: server, servers: servers ?? self.servers, view: Set(view), heartbeatTimeout: timeout),
            at: .milliseconds(Int64(seconds * 1000)))
    }

    /// A witness past its quiet period (two heartbeat timeouts after its start).
    func warmArbiter() -> (WitnessArbiter, Double) {
        var arbiter = WitnessArbiter()
        arbiter.noteContact("node1", heartbeatTimeout: timeout, at: .zero)
        return (arbiter, 100)
    }

    @Test("after a start it grants nothing until twice the longest heartbeat timeout has passed")
    func restartQuietPeriod() {
        var arbiter = WitnessArbiter()
        #expect(ask(&arbiter, "node1", sees: ["node1"], at: 0.5) == .notYet)
        #expect(ask(&arbiter, "node1", sees: ["node1"], at: 5.9) == .notYet)
        #expect(ask(&arbiter, "node1", sees: ["node1", "node2"], at: 5.9) == .notYet, "not even a full view")
        // A longer timeout in a request lengthens the quiet period.
        _ = arbiter.decide(
            WitnessArbiter.Request(server: "node2", servers: servers, view: ["node2"], heartbeatTimeout: .seconds(5)), at: .seconds(6))
        #expect(ask(&arbiter, "node1", sees: ["node1"], at: 9.9) == .notYet)
        #expect(arbiter.grants.isEmpty)
        #expect(ask(&arbiter, "node1", sees: ["node1"], at: 10.1) == .granted)
    }

    @Test("a full view is no partition: granted, and it holds no grant")
    func fullView() {
        var (arbiter, t) = warmArbiter()
        #expect(ask(&arbiter, "node1", sees: ["node1", "node2"], at: t) == .granted)
        #expect(ask(&arbiter, "node2", sees: ["node1", "node2"], at: t) == .granted)
        #expect(arbiter.holders(at: .seconds(Int64(t))).isEmpty)
    }

    @Test("one side silent: the side that asks survives, and the silent side loses when it comes back")
    func oneSideSilent() {
        var (arbiter, t) = warmArbiter()
        // node1's last contact was at 0, far more than a timeout ago.
        #expect(ask(&arbiter, "node2", sees: ["node2"], at: t) == .granted)
        #expect(ask(&arbiter, "node1", sees: ["node1"], at: t + 1) == .denied, "node2 holds the grant")
        #expect(ask(&arbiter, "node2", sees: ["node2"], at: t + 2) == .granted, "renewal")
        #expect(ask(&arbiter, "node1", sees: ["node1"], at: t + 3) == .denied)
    }

    @Test("both sides ask: the side of the first server in servers: wins, whichever asks first")
    func bothSidesAsk() {
        for node2First in [true, false] {
            var (arbiter, t) = warmArbiter()
            // Both contacted recently (witness heartbeats or status questions).
            arbiter.noteContact("node1", heartbeatTimeout: timeout, at: .seconds(Int64(t - 1)))
            arbiter.noteContact("node2", heartbeatTimeout: timeout, at: .seconds(Int64(t - 1)))
            if node2First {
                #expect(ask(&arbiter, "node2", sees: ["node2"], at: t) == .denied)
                #expect(ask(&arbiter, "node1", sees: ["node1"], at: t + 0.1) == .granted)
            } else {
                #expect(ask(&arbiter, "node1", sees: ["node1"], at: t) == .granted)
                #expect(ask(&arbiter, "node2", sees: ["node2"], at: t + 0.1) == .denied)
            }
            // The grant is remembered: node2 keeps losing while node1 renews.
            for step in 1...10 {
                let at = t + Double(step)
                #expect(ask(&arbiter, "node2", sees: ["node2"], at: at) == .denied)
                #expect(ask(&arbiter, "node1", sees: ["node1"], at: at + 0.5) == .granted)
            }
        }
    }

    @Test("the winner keeps its grant even when the other side, first in servers:, keeps asking")
    func winnerKeepsGrant() {
        var (arbiter, t) = warmArbiter()
        // node1 silent for long: node2 wins.
        #expect(ask(&arbiter, "node2", sees: ["node2"], at: t) == .granted)
        // node1 comes back and asks every second: it is first in servers: but node2 holds.
        for step in 1...10 {
            #expect(ask(&arbiter, "node1", sees: ["node1"], at: t + Double(step)) == .denied)
            #expect(ask(&arbiter, "node2", sees: ["node2"], at: t + Double(step) + 0.5) == .granted)
        }
    }

    @Test("a grant lapses when its holder stops asking for a heartbeat timeout; then the other side may win")
    func grantLapse() {
        var (arbiter, t) = warmArbiter()
        #expect(ask(&arbiter, "node2", sees: ["node2"], at: t) == .granted)
        #expect(ask(&arbiter, "node1", sees: ["node1"], at: t + 1) == .denied)
        #expect(ask(&arbiter, "node1", sees: ["node1"], at: t + 2.9) == .denied, "node2's grant lives for 3 s")
        // node2 went silent at t: its grant lapses after t + 3, and it no longer counts as alive.
        #expect(ask(&arbiter, "node1", sees: ["node1"], at: t + 3.5) == .granted)
        #expect(ask(&arbiter, "node2", sees: ["node2"], at: t + 4) == .denied, "node2 coming back finds node1 holding")
    }

    @Test("a denied or not-yet answer drops the requester's grant")
    func deniedDropsGrant() {
        var (arbiter, t) = warmArbiter()
        // node1 and node2 together hold grants against node3.
        let three = ["node1", "node2", "node3"]
        #expect(ask(&arbiter, "node1", sees: ["node1", "node2"], at: t, servers: three) == .granted)
        #expect(ask(&arbiter, "node2", sees: ["node1", "node2"], at: t, servers: three) == .granted, "compatible with node1's grant")
        #expect(ask(&arbiter, "node3", sees: ["node3"], at: t, servers: three) == .denied)
        // node1 and node2 split as well: exactly one of them keeps a grant.
        let first = ask(&arbiter, "node1", sees: ["node1"], at: t + 1, servers: three)
        let second = ask(&arbiter, "node2", sees: ["node2"], at: t + 1.1, servers: three)
        #expect([first, second].filter { $0 == .granted }.count == 1)
        #expect(arbiter.holders(at: .milliseconds(Int64((t + 1.1) * 1000))).count == 1)
    }

    @Test("a request naming a server twice or not naming its sender is denied")
    func badRequests() {
        var (arbiter, t) = warmArbiter()
        #expect(ask(&arbiter, "node9", sees: ["node9"], at: t) == .denied)
        #expect(ask(&arbiter, "node1", sees: ["node1"], at: t, servers: ["node1", "node1"]) == .denied)
    }

    /// Random interleavings of two sides asking, going silent and the witness restarting:
    /// never two holders that do not see each other, and never two "granted" answers to
    /// servers that do not see each other within one grant lifetime.
    @Test("random schedules never grant both sides of a partition")
    func randomSchedules() {
        var generator = SplitMix(seed: 2026)
        for _ in 0..<300 {
            var arbiter = WitnessArbiter()
            var started = 0.0
            var lastGranted: [String: Double] = [:]
            var t = 0.0
            for _ in 0..<200 {
                t += Double(generator.next() % 1500) / 1000
                let roll = generator.next() % 100
                if roll < 3 {
                    arbiter = WitnessArbiter()  // restart: everything forgotten
                    started = t
                    continue
                }
                let server = roll % 2 == 0 ? "node1" : "node2"
                let other = server == "node1" ? "node2" : "node1"
                let verdict = ask(&arbiter, server, sees: [server], at: t - started)
                if verdict == .granted {
                    if let otherGrant = lastGranted[other] {
                        // The other side believes its grant until its next question, at most a
                        // timeout after its last grant (the daemon asks every interval).
                        #expect(t - otherGrant > timeout.inSecondsForTests, "both sides granted within a grant's lifetime")
                    }
                    lastGranted[server] = t
                } else {
                    lastGranted[server] = nil
                }
            }
        }
    }
}

struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

extension Duration {
    var inSecondsForTests: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
