import Synchronization

/// Something that happens once (a process exited, a pipe reached its end) and that any number
/// of tasks can await, with or without a time limit. Waiting honours task cancellation, so a
/// waiter raced against a timer in a task group never keeps the group alive.
final class OneShotEvent: Sendable {
    private struct State {
        var hasFired = false
        var nextWaiterID = 0
        var waiters: [Int: CheckedContinuation<Void, Never>] = [:]
    }

    private let state = Mutex(State())

    var hasFired: Bool { state.withLock { $0.hasFired } }

    /// Marks the event as happened and wakes every waiter; later calls do nothing.
    func fire() {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            guard !state.hasFired else { return [] }
            state.hasFired = true
            defer { state.waiters.removeAll() }
            return Array(state.waiters.values)
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Returns once the event has fired, or early when the task is cancelled.
    func wait() async {
        let waiterID = state.withLock { state -> Int in
            state.nextWaiterID += 1
            return state.nextWaiterID
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow = state.withLock { state -> Bool in
                    if state.hasFired || Task.isCancelled { return true }
                    state.waiters[waiterID] = continuation
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            let waiter = state.withLock { $0.waiters.removeValue(forKey: waiterID) }
            waiter?.resume()
        }
    }

    /// Returns once the event has fired, whatever happens to the task meanwhile.
    func waitIgnoringCancellation() async {
        let waiterID = state.withLock { state -> Int in
            state.nextWaiterID += 1
            return state.nextWaiterID
        }
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let resumeNow = state.withLock { state -> Bool in
                if state.hasFired { return true }
                state.waiters[waiterID] = continuation
                return false
            }
            if resumeNow { continuation.resume() }
        }
    }

    /// Waits at most `limit`; returns whether the event fired in time.
    func wait(atMost limit: Duration) async -> Bool {
        if hasFired { return true }
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.wait() }
            group.addTask { try? await Task.sleep(for: limit) }
            await group.next()
            group.cancelAll()
        }
        return hasFired
    }
}
