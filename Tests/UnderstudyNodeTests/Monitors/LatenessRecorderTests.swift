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
}
