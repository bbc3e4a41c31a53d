/// Sleeps that end close to their deadline (about a millisecond late at most).
///
/// Swift's executor on Linux schedules a sleep without a tolerance with `dispatch_after`,
/// which may fire up to 10 % of the delay late: a heartbeat due every second went out up to
/// 100 ms late (measured 20–35 ms beside 1,000 monitors). A sleep with an explicit tolerance
/// uses a dispatch timer source instead, which measured far costlier (a daemon with 1,000
/// monitors went from 6 % to 20 % of a core, and later). So: sleep 90 % of what remains — that
/// wake-up, even at its latest, comes before the deadline — until under 10 ms remain, where
/// the allowed lateness is 1 ms.
enum PreciseSleep {
    static let finalStretch: Duration = .milliseconds(10)

    static func until(_ deadline: ContinuousClock.Instant) async throws {
        // At most a handful of rounds: each cuts what remains to a tenth or less.
        for _ in 0..<8 {
            let remaining = ContinuousClock.now.duration(to: deadline)
            if remaining <= .zero { return }
            if remaining <= finalStretch { break }
            try await Task.sleep(for: remaining * 0.9)
        }
        try await Task.sleep(until: deadline, clock: .continuous)
    }
}
