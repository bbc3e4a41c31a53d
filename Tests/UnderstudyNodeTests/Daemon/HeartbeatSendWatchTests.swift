import Testing

@testable import UnderstudyNode

@Suite("Heartbeat send watch")
struct HeartbeatSendWatchTests {
    static func counters(sent: UInt64, failures: UInt64, detail: String? = "sendto 10.0.0.2:29002: Operation not permitted")
        -> TransportCounters
    {
        var counters = TransportCounters()
        counters.sent = sent
        counters.sendFailures = failures
        counters.lastSendFailure = failures > 0 ? detail : nil
        return counters
    }

    @Test func oneReportPerEpisodeAndOneWhenSendsLeaveAgain() {
        var watch = HeartbeatSendWatch()
        #expect(watch.observe(path: "lanhb1", counters: Self.counters(sent: 50, failures: 0)) == nil)
        #expect(watch.observe(path: "lanhb1", counters: Self.counters(sent: 100, failures: 0)) == nil)
        #expect(
            watch.observe(path: "lanhb1", counters: Self.counters(sent: 120, failures: 30))
                == .failing(path: "lanhb1", detail: "sendto 10.0.0.2:29002: Operation not permitted", failed: 30, sent: 20))
        // Still failing, partly or wholly: nothing more.
        #expect(watch.observe(path: "lanhb1", counters: Self.counters(sent: 120, failures: 80)) == nil)
        #expect(watch.observe(path: "lanhb1", counters: Self.counters(sent: 140, failures: 100)) == nil)
        // No failure but nothing sent either (the loop stood still): not yet recovered.
        #expect(watch.observe(path: "lanhb1", counters: Self.counters(sent: 140, failures: 100)) == nil)
        #expect(watch.observe(path: "lanhb1", counters: Self.counters(sent: 190, failures: 100)) == .recovered(path: "lanhb1", failed: 100))
        #expect(watch.observe(path: "lanhb1", counters: Self.counters(sent: 240, failures: 100)) == nil)
        // A second episode is reported again.
        #expect(
            watch.observe(path: "lanhb1", counters: Self.counters(sent: 240, failures: 150))
                == .failing(path: "lanhb1", detail: "sendto 10.0.0.2:29002: Operation not permitted", failed: 50, sent: 0))
    }

    @Test func pathsAreWatchedApartAndOnlyWithADetail() {
        var watch = HeartbeatSendWatch()
        _ = watch.observe(path: "lanhb1", counters: Self.counters(sent: 10, failures: 0))
        _ = watch.observe(path: "diskhb1", counters: Self.counters(sent: 10, failures: 0))
        // diskhb reports its device itself (nm 4): failures without a detail are not reported.
        #expect(watch.observe(path: "diskhb1", counters: Self.counters(sent: 10, failures: 5, detail: nil)) == nil)
        #expect(watch.observe(path: "lanhb1", counters: Self.counters(sent: 60, failures: 0)) == nil)
    }

    @Test func failuresBeforeTheFirstLookAndAReopenedPath() {
        var watch = HeartbeatSendWatch()
        #expect(
            watch.observe(path: "lanhb1", counters: Self.counters(sent: 0, failures: 4, detail: "cannot resolve node2.example"))
                == .failing(path: "lanhb1", detail: "cannot resolve node2.example", failed: 4, sent: 0))
        // The path was opened again: its counters start from zero and work.
        #expect(watch.observe(path: "lanhb1", counters: Self.counters(sent: 30, failures: 0)) == .recovered(path: "lanhb1", failed: 4))
        // Opened again and failing at once.
        _ = watch.observe(path: "lanhb1", counters: Self.counters(sent: 80, failures: 0))
        #expect(
            watch.observe(path: "lanhb1", counters: Self.counters(sent: 5, failures: 3))
                == .failing(path: "lanhb1", detail: "sendto 10.0.0.2:29002: Operation not permitted", failed: 3, sent: 5))
    }
}
