import Glibc
import Testing

@testable import UnderstudyNode

@Suite("Lateness recorder")
struct LatenessRecorderTests {
    @Test("summary percentiles; late samples with their deadline on CLOCK_MONOTONIC")
    func summaryAndLateSamples() {
        let recorder = LatenessRecorder(capacity: 100)
        var before = timespec()
        clock_gettime(CLOCK_MONOTONIC, &before)
        for micros in [100, 200, 300, 15_000] { recorder.record(.microseconds(micros)) }
        recorder.record(.milliseconds(-3))  // early counts as on time
        var after = timespec()
        clock_gettime(CLOCK_MONOTONIC, &after)

        let summary = recorder.summary()
        #expect(summary.count == 5 && summary.max == .milliseconds(15) && summary.p50 == .microseconds(200))

        let late = recorder.lateSamples(over: .milliseconds(10))
        #expect(late.count == 1 && late.first?.micros == 15_000)
        // Recorded between `before` and `after`, 15 ms after its deadline (±1 µs of rounding).
        let nanos = { (spec: timespec) in Int64(spec.tv_sec) * 1_000_000_000 + Int64(spec.tv_nsec) }
        if let deadline = late.first?.deadlineMonotonicNanos {
            #expect(deadline >= nanos(before) - 15_000_000 - 1_000 && deadline <= nanos(after) - 15_000_000 + 1_000)
        }
        #expect(recorder.lateSamples(over: .milliseconds(20)).isEmpty)
    }

    @Test("memory follows the rate, not the uptime: only the last minute is kept, and the storage does not grow")
    func keepsOnlyTheRetentionWindow() {
        let recorder = LatenessRecorder()
        let end = ContinuousClock.now
        // 200 s of heartbeats at 50 a second, the last one now; the first 140 s late by 20 ms,
        // the last 60 s on time.
        let count = 10_000
        var peakStorage = 0
        for index in 0..<count {
            let time = end - .milliseconds(20 * (count - 1 - index))
            recorder.record(index < 7_000 ? .milliseconds(20) : .microseconds(100), at: time)
            peakStorage = max(peakStorage, recorder.storageCount)
        }
        #expect((3_000...3_001).contains(recorder.retainedCount), "\(recorder.retainedCount)")
        #expect(peakStorage <= 2 * 3_001 + 1_024, "\(peakStorage)")
        let summary = recorder.summary()
        #expect(summary.max == .microseconds(100), "the late samples are older than the window")
        #expect(recorder.lateSamples(over: .milliseconds(10)).isEmpty)

        // At any rate the capacity bounds it.
        let bounded = LatenessRecorder(capacity: 100)
        for index in 0..<1_000 { bounded.record(.microseconds(index), at: end) }
        #expect(bounded.retainedCount == 100)
        #expect(bounded.summary().max == .microseconds(999))
    }
}
