import Foundation
import Synchronization
import Testing
import UnderstudyTestSupport

@testable import UnderstudyNode

/// The hand-over between the daemon and a diskhb/comhb path's own thread.
@Suite("Blocking heartbeat path state")
struct BlockingPathStateTests {
    /// A call that does not return (a disk in uninterruptible sleep) holds back nothing: the
    /// daemon's hand-overs return at once, keep only the newest heartbeat, and the stuck call
    /// is reported once, then its path's recovery once.
    @Test("a stuck I/O call: submit never waits, the newest heartbeat only, stuck reported once, recovered once")
    func stuckCall() async throws {
        let events = Mutex<[HeartbeatPathEvent]>([])
        let state = BlockingPathState(path: "disk1", type: "diskhb", events: { event in events.withLock { $0.append(event) } })
        let release = Atomic<Bool>(false)
        let finished = Atomic<Bool>(false)
        let entered = Atomic<Bool>(false)
        let thread = Thread {
            state.io("reading slot 1 of /dev/sdz") {
                entered.store(true, ordering: .releasing)
                // Stands for a read stuck in the kernel, bounded so the test always ends (30 s:
                // under a loaded CI run the 50 hand-overs below once took over 10 s, and the
                // call "recovered" before the test looked).
                let deadline = ContinuousClock.now + .seconds(30)
                while !release.load(ordering: .acquiring) && ContinuousClock.now < deadline { usleep(5_000) }
            }
            state.worked()
            finished.store(true, ordering: .releasing)
        }
        thread.start()
        // On two loaded cores the thread may start late: the hand-overs begin once it is stuck.
        #expect(await eventually(within: .seconds(10)) { entered.load(ordering: .acquiring) })
        var slowest: Duration = .zero
        for index in 0..<50 {
            let start = ContinuousClock.now
            state.submit(PendingHeartbeat(payload: [UInt8(index)], deadline: nil, freshUntil: .now + .seconds(5)))
            state.checkStuck(limit: .milliseconds(200))
            slowest = max(slowest, start.duration(to: .now))
            try await Task.sleep(for: .milliseconds(10))
        }
        // A hand-over that waited for the stuck call would take its 10 s; not waiting, it takes
        // microseconds (a generous bound: the test runs beside CPU-heavy ones).
        #expect(slowest < .seconds(2), "a hand-over waited \(slowest)")
        #expect(state.counters.withLock { $0.staleNotSent } == 49, "only the newest waits")
        #expect(state.takeDue().heartbeat?.payload == [49])
        #expect(
            events.withLock { $0 } == [
                .failed(path: "disk1", type: "diskhb", reason: "reading slot 1 of /dev/sdz has not returned for more than 0.2 seconds")
            ])
        release.store(true, ordering: .releasing)
        #expect(await eventually(within: .seconds(5)) { finished.load(ordering: .acquiring) })
        #expect(events.withLock { $0.last } == .recovered(path: "disk1", type: "diskhb"))
        #expect(events.withLock { $0.count } == 2)
        state.stop()
    }
}
