import Foundation
import Synchronization

/// Blocking socket work (netlink, ICMP) on a thread of its own, never on a Swift concurrency
/// thread, with a hard limit for the caller.
///
/// The work may first enter a network namespace with setns(2): that changes only its own
/// thread, which ends with the work, so no other thread ever runs in the namespace, and the
/// sockets it opened stay bound to the namespace they were created in.
///
/// The caller gets `late` when the work has not finished `limit` after it started (a kernel
/// call stuck on a lock no timeout reaches); the thread then finishes on its own and its result
/// is dropped.
enum DedicatedThread {
    /// Whoever comes first (the work or the timer) resumes the caller; the other finds nothing.
    private final class Once<T: Sendable>: Sendable {
        let continuation = Mutex<CheckedContinuation<T, Never>?>(nil)
        let timer = Mutex<Task<Void, Never>?>(nil)

        func resume(_ value: T) {
            continuation.withLock { $0.take() }?.resume(returning: value)
        }
    }

    static func run<T: Sendable>(
        named name: String, limit: Duration, late: T, _ work: @escaping @Sendable () -> T
    ) async -> T {
        let once = Once<T>()
        let result = await withCheckedContinuation { (continuation: CheckedContinuation<T, Never>) in
            once.continuation.withLock { $0 = continuation }
            let thread = Thread { once.resume(work()) }
            thread.name = name
            thread.start()
            let task = Task {
                try? await Task.sleep(for: limit)
                once.resume(late)
            }
            once.timer.withLock { $0 = task }
        }
        once.timer.withLock { $0 }?.cancel()
        return result
    }
}
