import Foundation
import Synchronization

/// A reference for lateness measurements: one thread per CPU, each pinned to its CPU, of the
/// measuring process, sleeping to absolute deadlines every `period` and recording how late it
/// wakes. They do nothing else, so their lateness is the machine's (the kernel's scheduling and,
/// on a VM, the hypervisor taking a virtual CPU away), not the daemon's: a daemon's late event
/// that overlaps a late wake of the reference is one the machine caused.
public final class TimerJitterProbe: Sendable {
    /// A wake later than `TimerJitterProbe.lateWakeThreshold`.
    public struct LateWake: Sendable {
        public var cpu: Int
        /// The deadline on `CLOCK_MONOTONIC`.
        public var deadlineNanos: Int64
        public var latenessMicros: Int64
    }

    public struct Summary: Sendable {
        public var wakes: Int
        public var p99: Duration
        public var max: Duration
        /// Wakes later than 10 ms.
        public var over10ms: Int
        public var lateWakes: [LateWake]

        /// The latest reference wake whose lateness overlaps `deadline ... deadline + lateness`.
        public func worstOverlap(deadlineNanos: Int64, latenessMicros: Int64) -> LateWake? {
            let end = deadlineNanos + latenessMicros * 1000
            return lateWakes.filter { $0.deadlineNanos < end && $0.deadlineNanos + $0.latenessMicros * 1000 > deadlineNanos }
                .max { $0.latenessMicros < $1.latenessMicros }
        }
    }

    public static let lateWakeThreshold: Int64 = 2_000

    private struct State {
        var latenessMicros: [Int64] = []
        var lateWakes: [LateWake] = []
        var stop = false
        var running = 0
    }

    private let state = Mutex(State())
    public let period: Duration
    public let cpus: Int

    public init(period: Duration = .milliseconds(10)) {
        self.period = period
        self.cpus = max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
    }

    /// Starts the sleeping threads; they run until `stop()`, at most `limit`.
    public func start(limit: Duration = .seconds(3600)) {
        let periodNanos = Int64(period.components.seconds) * 1_000_000_000 + period.components.attoseconds / 1_000_000_000
        let rounds = Int(limit / period)
        state.withLock { $0.running = cpus }
        for cpu in 0..<cpus {
            let thread = Thread { [self] in
                defer { state.withLock { $0.running -= 1 } }
                Self.pinToCPU(cpu)
                var next = Self.monotonicNanos()
                for _ in 0..<rounds {
                    if state.withLock({ $0.stop }) { break }
                    next += periodNanos
                    var deadline = timespec(tv_sec: Int(next / 1_000_000_000), tv_nsec: Int(next % 1_000_000_000))
                    while clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &deadline, nil) == EINTR {}
                    let micros = max(0, (Self.monotonicNanos() - next) / 1000)
                    let due = next
                    state.withLock {
                        $0.latenessMicros.append(micros)
                        if micros > Self.lateWakeThreshold {
                            $0.lateWakes.append(LateWake(cpu: cpu, deadlineNanos: due, latenessMicros: micros))
                        }
                    }
                    // Far behind (the machine stood still): start again from now, not with a burst.
                    if micros > 1_000_000 { next = Self.monotonicNanos() }
                }
            }
            thread.name = "timer-jitter-probe-\(cpu)"
            thread.start()
        }
    }

    /// Stops the threads (within one period) and summarizes what they saw.
    public func stop() async -> Summary {
        state.withLock { $0.stop = true }
        for _ in 0..<200 where state.withLock({ $0.running > 0 }) { try? await Task.sleep(for: period) }
        let (values, lateWakes) = state.withLock { ($0.latenessMicros, $0.lateWakes) }
        let sorted = values.sorted()
        guard let last = sorted.last else { return Summary(wakes: 0, p99: .zero, max: .zero, over10ms: 0, lateWakes: []) }
        let p99 = sorted[min(sorted.count - 1, Int(Double(sorted.count - 1) * 0.99))]
        return Summary(
            wakes: sorted.count, p99: .microseconds(p99), max: .microseconds(last), over10ms: sorted.filter { $0 > 10_000 }.count,
            lateWakes: lateWakes)
    }

    static func monotonicNanos() -> Int64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return Int64(now.tv_sec) * 1_000_000_000 + Int64(now.tv_nsec)
    }

    /// Binds the calling thread to `cpu` (sched_setaffinity with pid 0 acts on the thread).
    /// Glibc declares it only under _GNU_SOURCE, which Swift's Glibc module does not define:
    /// looked up by name instead.
    static func pinToCPU(_ cpu: Int) {
        typealias SetAffinity = @convention(c) (pid_t, Int, UnsafeRawPointer) -> Int32
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "sched_setaffinity") else { return }
        let setAffinity = unsafeBitCast(symbol, to: SetAffinity.self)
        var set = [UInt8](repeating: 0, count: 128)  // cpu_set_t: 1,024 bits
        guard cpu / 8 < set.count else { return }
        set[cpu / 8] |= UInt8(1 << (cpu % 8))
        _ = set.withUnsafeBytes { bytes in bytes.baseAddress.map { setAffinity(0, bytes.count, $0) } }
    }
}
