import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Sleeps to deadlines on one thread of its own: the thread waits (a condition variable on
/// the monotonic clock) until the nearest deadline and resumes the tasks whose deadline has
/// come.
///
/// For the daemon's periodic loops (the tick every `tickPeriod`, the heartbeat every
/// interval). On Linux `Task.sleep` goes through Dispatch's timer machinery (its manager
/// thread, a timer re-armed per sleep, then a worker thread): measured on the 2-core build
/// machine, 115–150 µs of CPU per wake-up of an actor, against 55–65 µs for a wake-up through
/// this thread (the resumed task still hops onto the cooperative pool) — at 250 wake-ups a second
/// (the fast profile) that is the largest part of what an idle daemon costs. It is also
/// punctual: the thread wakes within the kernel's timer slack (about 50 µs), where a
/// `Task.sleep` may wake 10 % of its delay late (see `PreciseSleep`).
///
/// A sleep ends early, without error, when its task is cancelled.
final class DeadlineTimer: @unchecked Sendable {
    static let shared = DeadlineTimer(name: "deadline timer")

    private struct Sleeper {
        var id: UInt64
        var deadline: ContinuousClock.Instant
        var continuation: CheckedContinuation<Void, Never>
    }

    private let name: String
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let condition: UnsafeMutablePointer<pthread_cond_t>
    // Guarded by `mutex`:
    private var sleepers: [Sleeper] = []
    private var nextID: UInt64 = 0
    private var started = false

    init(name: String) {
        self.name = name
        mutex = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
        condition = .allocate(capacity: 1)
        var attributes = pthread_condattr_t()
        pthread_condattr_init(&attributes)
        pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
        pthread_cond_init(condition, &attributes)
        pthread_condattr_destroy(&attributes)
    }

    // The thread holds the timer for the life of the process: no deinit.

    /// Returns at `deadline` (at once when it has passed), or when the task is cancelled.
    /// Runs on the caller's actor (`isolation`): no hop off it and back for the sleep.
    func sleep(until deadline: ContinuousClock.Instant, isolation: isolated (any Actor)? = #isolation) async {
        await sleep(until: deadline, id: newSleepID())
    }

    /// An id for `sleep(until:id:)`, by which `bringForward` finds the sleep.
    func newSleepID() -> UInt64 {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        nextID &+= 1
        return nextID
    }

    /// Ends the sleep `id` at `deadline` instead when that is earlier than its own (nothing
    /// when it is not sleeping).
    func bringForward(_ id: UInt64, to deadline: ContinuousClock.Instant) {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        guard let index = sleepers.firstIndex(where: { $0.id == id }), deadline < sleepers[index].deadline else { return }
        sleepers[index].deadline = deadline
        pthread_cond_signal(condition)
    }

    /// `sleep(until:)` under an id of `newSleepID()`, so that it can be brought forward.
    func sleep(until deadline: ContinuousClock.Instant, id: UInt64, isolation: isolated (any Actor)? = #isolation) async {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                pthread_mutex_lock(mutex)
                // Checked under the lock: a cancellation after this finds the sleeper below.
                if Task.isCancelled || deadline <= .now {
                    pthread_mutex_unlock(mutex)
                    continuation.resume()
                    return
                }
                // The thread waits for the earliest deadline: it need not wake for a later one
                // (each wake-up is a context switch, twice per loop iteration otherwise).
                let earliest = sleepers.lazy.map(\.deadline).min()
                sleepers.append(Sleeper(id: id, deadline: deadline, continuation: continuation))
                if !started {
                    started = true
                    let thread = Thread { [self] in run() }
                    thread.name = name
                    thread.start()
                }
                if earliest.map({ deadline < $0 }) ?? true { pthread_cond_signal(condition) }
                pthread_mutex_unlock(mutex)
            }
        } onCancel: {
            pthread_mutex_lock(mutex)
            let index = sleepers.firstIndex { $0.id == id }
            let cancelled = index.map { sleepers.remove(at: $0) }
            pthread_mutex_unlock(mutex)
            cancelled?.continuation.resume()
        }
    }

    /// How many sleeps wait now (for tests).
    var waiting: Int {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return sleepers.count
    }

    private func run() {
        // Named for ps and perf: set from the thread itself, the name reaches the kernel.
        Thread.current.name = String(name.prefix(15))
        var due: [CheckedContinuation<Void, Never>] = []
        pthread_mutex_lock(mutex)
        while true {
            guard let earliest = sleepers.lazy.map(\.deadline).min() else {
                pthread_cond_wait(condition, mutex)
                continue
            }
            let now = ContinuousClock.now
            if earliest > now {
                var until = Self.monotonicNow(plus: now.duration(to: earliest))
                pthread_cond_timedwait(condition, mutex, &until)
                continue
            }
            // Every sleep due by now; the others stay (a handful at most: a linear pass).
            var index = 0
            while index < sleepers.count {
                if sleepers[index].deadline <= now {
                    due.append(sleepers.remove(at: index).continuation)
                } else {
                    index += 1
                }
            }
            pthread_mutex_unlock(mutex)
            for continuation in due { continuation.resume() }
            due.removeAll(keepingCapacity: true)
            pthread_mutex_lock(mutex)
        }
    }

    /// `CLOCK_MONOTONIC` now plus `delay`, as `pthread_cond_timedwait` takes it.
    private static func monotonicNow(plus delay: Duration) -> timespec {
        var spec = timespec()
        clock_gettime(CLOCK_MONOTONIC, &spec)
        let (seconds, attoseconds) = delay.components
        var nanoseconds = Int(spec.tv_nsec) + Int(attoseconds / 1_000_000_000)
        var wholeSeconds = Int(spec.tv_sec) + Int(seconds)
        if nanoseconds >= 1_000_000_000 {
            nanoseconds -= 1_000_000_000
            wholeSeconds += 1
        }
        return timespec(tv_sec: wholeSeconds, tv_nsec: nanoseconds)
    }
}
