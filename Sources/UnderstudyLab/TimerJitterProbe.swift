import Foundation
import Synchronization

/// A reference for lateness measurements: a thread of the measuring process that sleeps to
/// absolute deadlines every `period` and records how late it wakes. It does nothing else, so
/// its lateness is the machine's (the kernel's scheduling and, on a VM, the hypervisor's
/// steal), not the daemon's; a daemon's outliers that this probe shares are not the daemon's.
public final class TimerJitterProbe: Sendable {
    public struct Summary: Sendable {
        public var wakes: Int
        public var p99: Duration
        public var max: Duration
        /// Wakes later than 10 ms.
        public var over10ms: Int
    }

    private struct State {
        var latenessMicros: [Int64] = []
        var stop = false
    }

    private let state = Mutex(State())
    private let done = Mutex<Bool>(false)
    public let period: Duration

    public init(period: Duration = .milliseconds(10)) {
        self.period = period
    }

    /// Starts the sleeping thread; it runs until `stop()`, at most `limit`.
    public func start(limit: Duration = .seconds(3600)) {
        let periodNanos = Int64(period.components.seconds) * 1_000_000_000 + period.components.attoseconds / 1_000_000_000
        let rounds = Int(limit / period)
        let thread = Thread { [self] in
            var next = timespec()
            clock_gettime(CLOCK_MONOTONIC, &next)
            for _ in 0..<rounds {
                if state.withLock({ $0.stop }) { break }
                next.tv_nsec += Int(periodNanos % 1_000_000_000)
                next.tv_sec += Int(periodNanos / 1_000_000_000)
                if next.tv_nsec >= 1_000_000_000 {
                    next.tv_nsec -= 1_000_000_000
                    next.tv_sec += 1
                }
                var deadline = next
                while clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &deadline, nil) == EINTR {}
                var woke = timespec()
                clock_gettime(CLOCK_MONOTONIC, &woke)
                let micros = (Int64(woke.tv_sec) - Int64(next.tv_sec)) * 1_000_000 + (Int64(woke.tv_nsec) - Int64(next.tv_nsec)) / 1000
                state.withLock { $0.latenessMicros.append(max(0, micros)) }
                // Far behind (the machine stood still): start again from now, not with a burst.
                if micros > 1_000_000 { clock_gettime(CLOCK_MONOTONIC, &next) }
            }
            done.withLock { $0 = true }
        }
        thread.name = "timer-jitter-probe"
        thread.start()
    }

    /// Stops the thread (within one period) and summarizes what it saw.
    public func stop() async -> Summary {
        state.withLock { $0.stop = true }
        for _ in 0..<200 where !done.withLock({ $0 }) { try? await Task.sleep(for: period) }
        let sorted = state.withLock { $0.latenessMicros }.sorted()
        guard let last = sorted.last else { return Summary(wakes: 0, p99: .zero, max: .zero, over10ms: 0) }
        let p99 = sorted[min(sorted.count - 1, Int(Double(sorted.count - 1) * 0.99))]
        return Summary(
            wakes: sorted.count, p99: .microseconds(p99), max: .microseconds(last), over10ms: sorted.filter { $0 > 10_000 }.count)
    }
}
