import Synchronization

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
        let micros = max(0, lateness.components.seconds * 1_000_000 + lateness.components.attoseconds / 1_000_000_000_000)
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
