import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// How late timed work started (a monitor check, a heartbeat send) against its schedule: the
/// newest samples in a fixed ring, summarized on demand over a recent window. Cheap enough for
/// every event.
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

    private struct Ring {
        var samples: [Sample] = []
        var next = 0
    }

    private let ring = Mutex(Ring())
    private let capacity: Int

    init(capacity: Int = 131_072) {
        self.capacity = capacity
    }

    func record(_ lateness: Duration) {
        let micros = max(0, Self.micros(lateness))
        let sample = Sample(at: .now, micros: micros)
        ring.withLock { ring in
            if ring.samples.count < capacity {
                ring.samples.append(sample)
            } else {
                ring.samples[ring.next] = sample
            }
            ring.next = (ring.next + 1) % capacity
        }
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
        let late = ring.withLock { $0.samples.filter { $0.at >= since && $0.micros > limit } }
        return late.sorted { $0.at < $1.at }.map { sample in
            let age = sample.at.duration(to: now)
            let recordedAt = monotonicNow - Self.micros(age) * 1000
            return (recordedAt - sample.micros * 1000, sample.micros)
        }
    }

    static func micros(_ duration: Duration) -> Int64 {
        duration.components.seconds * 1_000_000 + duration.components.attoseconds / 1_000_000_000_000
    }

    /// Samples of the last `window` (as far as the ring reaches back).
    func summary(window: Duration = .seconds(60)) -> Summary {
        let since = ContinuousClock.now - window
        let values = ring.withLock { $0.samples.filter { $0.at >= since }.map(\.micros) }
        guard !values.isEmpty else { return Summary(count: 0, p50: .zero, p99: .zero, max: .zero) }
        let sorted = values.sorted()
        func at(_ fraction: Double) -> Duration {
            .microseconds(sorted[min(sorted.count - 1, Int(Double(sorted.count - 1) * fraction))])
        }
        return Summary(count: sorted.count, p50: at(0.5), p99: at(0.99), max: .microseconds(sorted[sorted.count - 1]))
    }
}
