import Foundation
import Synchronization
import Testing

@testable import UnderstudyNode

/// The thread the daemon's tick and heartbeat loops sleep on (DeadlineTimer.swift).
@Suite("Deadline timer")
struct DeadlineTimerTests {
    @Test("sleeps end at their deadlines, never before, whatever the order they began in")
    func deadlinesAreKept() async throws {
        let timer = DeadlineTimer(name: "test deadline timer")
        let start = ContinuousClock.now
        let results = await withTaskGroup(of: (Int, Duration).self) { group in
            for (index, milliseconds) in [(0, 120), (1, 40), (2, 80), (3, 40)] {
                group.addTask {
                    await timer.sleep(until: start + .milliseconds(milliseconds))
                    return (index, start.duration(to: .now))
                }
            }
            var ended: [(Int, Duration)] = []
            for await result in group { ended.append(result) }
            return ended
        }
        #expect(results.count == 4)
        let deadlines: [Int: Duration] = [0: .milliseconds(120), 1: .milliseconds(40), 2: .milliseconds(80), 3: .milliseconds(40)]
        for (index, elapsed) in results {
            let deadline = try #require(deadlines[index])
            #expect(elapsed >= deadline, "sleep \(index) ended \(elapsed), before its deadline \(deadline)")
            // Generous: the resumed task needs a thread of the cooperative pool, which the unit
            // run's blocking tests can hold for seconds on a loaded 2-core start (seen: 6 s).
            #expect(elapsed < deadline + .seconds(30), "sleep \(index) ended \(elapsed), deadline \(deadline)")
        }
        #expect(timer.waiting == 0)
    }

    @Test("a deadline that has passed returns at once; a cancelled sleep ends at once")
    func pastDeadlinesAndCancellation() async throws {
        let timer = DeadlineTimer(name: "test deadline timer")
        let before = ContinuousClock.now
        await timer.sleep(until: before - .seconds(1))
        #expect(before.duration(to: .now) < .milliseconds(200))

        let sleeper = Task { await timer.sleep(until: .now + .seconds(60)) }
        #expect(await eventuallyWaiting(timer, count: 1))
        let cancelledAt = ContinuousClock.now
        sleeper.cancel()
        await sleeper.value
        #expect(cancelledAt.duration(to: .now) < .seconds(5), "the cancelled sleep did not end early")
        #expect(timer.waiting == 0)

        // Cancelled before it began: it does not wait either.
        let early = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            await timer.sleep(until: .now + .seconds(60))
        }
        let startedAt = ContinuousClock.now
        await early.value
        #expect(startedAt.duration(to: .now) < .seconds(5))
    }

    @Test("many short sleeps in a row keep a period without drifting")
    func periodicSleeps() async throws {
        let timer = DeadlineTimer(name: "test deadline timer")
        let period = Duration.milliseconds(5)
        let start = ContinuousClock.now
        var deadline = start
        for _ in 0..<100 {
            deadline += period
            await timer.sleep(until: deadline)
            #expect(ContinuousClock.now >= deadline)
        }
        let elapsed = start.duration(to: .now)
        #expect(elapsed >= .milliseconds(500))
        #expect(elapsed < .seconds(30), "100 sleeps of 5 ms took \(elapsed)")
    }

    @Test("a sleep brought forward ends at its new deadline; a later one or an unknown id changes nothing")
    func bringForward() async throws {
        let timer = DeadlineTimer(name: "test deadline timer")
        let id = timer.newSleepID()
        let start = ContinuousClock.now
        let sleeper = Task { await timer.sleep(until: start + .seconds(60), id: id) }
        #expect(await eventuallyWaiting(timer, count: 1))
        // Later than its own deadline, or another id: still waiting.
        timer.bringForward(id, to: start + .seconds(120))
        timer.bringForward(id &+ 1, to: start)
        try await Task.sleep(for: .milliseconds(100))
        #expect(timer.waiting == 1)
        let broughtAt = ContinuousClock.now
        timer.bringForward(id, to: broughtAt + .milliseconds(50))
        await sleeper.value
        let ended = ContinuousClock.now
        #expect(ended >= broughtAt + .milliseconds(50), "ended before its new deadline")
        // Generous upper bound (a loaded 2-core unit run, see above); the old deadline was 60 s.
        #expect(broughtAt.duration(to: ended) < .seconds(30), "the sleep was not brought forward")
        #expect(timer.waiting == 0)
        // Not sleeping any more: bringing it forward is a no-op.
        timer.bringForward(id, to: .now)
        #expect(timer.waiting == 0)
    }

    private func eventuallyWaiting(_ timer: DeadlineTimer, count: Int) async -> Bool {
        for _ in 0..<500 {
            if timer.waiting == count { return true }
            try? await Task.sleep(for: .milliseconds(10))
        }
        return false
    }
}
