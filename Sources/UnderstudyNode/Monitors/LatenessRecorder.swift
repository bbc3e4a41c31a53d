import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// How late timed work started (a monitor check, a heartbeat send) against its schedule: the
/// samples of the last `retention` (what the summaries look at), summarized on demand. Cheap
/// enough for every event.
///
/// Memory follows the rate, not the uptime: samples older than `retention` are dropped as new
/// ones come (a ring of 131,072 samples filled up over the first 45 minutes of a fast-profile
/// daemon and then held 3 MiB per recorder, although only the last minute was ever read).
/// `capacity` still bounds it at any rate.
final class LatenessRecorder: Sendable {
    struct Summary: Sendable {
        var count: Int
        var p50: Duration
        var p99: Duration
        var max: Duration
    }

    private struct Sample {
        var at: ContinuousClock.Instant
        var micros: Int64
    }

    /// Samples in arrival order from `head` on; the slots before `head` are dropped ones,
    /// reclaimed when they are half the array.
    private struct Queue {
        var samples: [Sample] = []
        var head = 0
        var count: Int { samples.count - head }

        mutating func dropFirst() {
            head += 1
            if head >= 1024 && head * 2 >= samples.count {
                samples.removeFirst(head)
                head = 0
            }
        }
    }

    private let queue = Mutex(Queue())
    private let capacity: Int
    /// How long samples are kept: the longest window anything asks for.
    let retention: Duration

    init(capacity: Int = 131_072, retention: Duration = .seconds(60)) {
        self.capacity = max(1, capacity)
        self.retention = retention
    }

    func record(_ lateness: Duration) {
        record(lateness, at: .now)
    }

    func record(_ lateness: Duration, at time: ContinuousClock.Instant) {
        let sample = Sample(at: time, micros: max(0, Self.micros(lateness)))
        let oldest = time - retention
        queue.withLock { queue in
            while queue.count > 0 && (queue.samples[queue.head].at < oldest || queue.count >= capacity) {
                queue.dropFirst()
            }
            queue.samples.append(sample)
        }
    }

    /// Samples held now (for tests).
    var retainedCount: Int { queue.withLock { $0.count } }

    /// Slots the queue's array holds (for tests: it does not grow with uptime).
    var storageCount: Int { queue.withLock { $0.samples.count } }

    private func retained(since: ContinuousClock.Instant) -> [Sample] {
        queue.withLock { queue in queue.samples[queue.head...].filter { $0.at >= since } }
    }

    /// Samples later than `threshold` within the last `window`: when their deadline was, on
    /// `CLOCK_MONOTONIC` (comparable across processes), and how late they were.
    func lateSamples(over threshold: Duration, window: Duration = .seconds(60)) -> [(deadlineMonotonicNanos: Int64, micros: Int64)] {
        var monotonic = timespec()
        clock_gettime(CLOCK_MONOTONIC, &monotonic)
        let now = ContinuousClock.now
        let monotonicNow = Int64(monotonic.tv_sec) * 1_000_000_000 + Int64(monotonic.tv_nsec)
        let since = now - window
        let limit = Self.micros(threshold)
        let late = retained(since: since).filter { $0.micros > limit }
        return late.sorted { $0.at < $1.at }.map { sample in
            let age = sample.at.duration(to: now)
            let recordedAt = monotonicNow - Self.micros(age) * 1000
            return (recordedAt - sample.micros * 1000, sample.micros)
        }
    }

    static func micros(_ duration: Duration) -> Int64 {
        duration.components.seconds * 1_000_000 + duration.components.attoseconds / 1_000_000_000_000
    }

    /// Samples of the last `window` (at most `retention`).
    func summary(window: Duration = .seconds(60)) -> Summary {
        let since = ContinuousClock.now - window
        let values = retained(since: since).map(\.micros)
        guard !values.isEmpty else { return Summary(count: 0, p50: .zero, p99: .zero, max: .zero) }
        let sorted = values.sorted()
        func at(_ fraction: Double) -> Duration {
            .microseconds(sorted[min(sorted.count - 1, Int(Double(sorted.count - 1) * fraction))])
        }
        return Summary(count: sorted.count, p50: at(0.5), p99: at(0.99), max: .microseconds(sorted[sorted.count - 1]))
    }
}
