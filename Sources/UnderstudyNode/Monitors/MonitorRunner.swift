import Foundation
import Logging
import Synchronization
import UnderstudyEngine
import UnderstudyModel

/// One kind of check. `check()` may take as long as it likes: the runner abandons it at the
/// monitor's timeout (and cancels its task), so a hung probe never delays other monitors
/// or heartbeats. Probes that block a thread (disk I/O) run on threads of their own.
protocol MonitorProbe: Sendable {
    func check() async -> MonitorResult
    /// The monitor stops: end what the probe keeps running (genw's asynchronous process).
    func stop() async
}

extension MonitorProbe {
    func stop() async {}
}

/// Runs the probes of the monitors the Engine started: one task per monitor, checking every
/// `interval` after the first wait, each check bounded by the monitor's timeout. Start and
/// stop are synchronous (called in the Engine's action order), so a stop never overtakes the
/// start it belongs to.
final class MonitorRunner: Sendable {
    typealias Report = @Sendable (MonitorCheck) async -> Void

    struct Running: Sendable {
        var run: UInt64
        var task: Task<Void, Never>
        var probe: any MonitorProbe
    }

    let running = Mutex<[String: Running]>([:])

    func start(_ monitor: MonitorConfig, run: UInt64, probe: any MonitorProbe, report: @escaping Report) {
        if let old = running.withLock({ $0.removeValue(forKey: monitor.name) }) {
            old.task.cancel()
            Task { await old.probe.stop() }
        }
        let task = Task {
            if monitor.firstWait > .zero { try? await Task.sleep(for: monitor.firstWait) }
            var next = ContinuousClock.now
            while !Task.isCancelled {
                let began = ContinuousClock.now
                let result = await Self.check(probe, timeout: monitor.timeout)
                if Task.isCancelled { break }
                await report(MonitorCheck(monitor: monitor.name, run: run, result: result, elapsed: began.duration(to: .now)))
                // Fixed rate; a check longer than the interval starts the next one at once.
                next += monitor.interval
                if next < .now { next = .now }
                try? await Task.sleep(until: next, clock: .continuous)
            }
        }
        running.withLock { $0[monitor.name] = Running(run: run, task: task, probe: probe) }
    }

    func stop(_ monitor: String, run: UInt64) {
        let entry = running.withLock { table -> Running? in
            guard let entry = table[monitor], entry.run == run else { return nil }
            table[monitor] = nil
            return entry
        }
        guard let entry else { return }
        entry.task.cancel()
        Task { await entry.probe.stop() }
    }

    func stopAll() async {
        let all = running.withLock { table -> [Running] in
            defer { table = [:] }
            return Array(table.values)
        }
        for entry in all {
            entry.task.cancel()
            await entry.probe.stop()
        }
    }

    /// The probe's result, or `.timeout` when it takes longer than `timeout` (the probe's
    /// task is cancelled and no longer waited for).
    static func check(_ probe: any MonitorProbe, timeout: Duration) async -> MonitorResult {
        let once = ResumeOnce<MonitorResult>()
        return await withCheckedContinuation { continuation in
            once.arm(continuation)
            let work = Task {
                let result = await probe.check()
                once.resume(result)
            }
            Task {
                try? await Task.sleep(for: timeout)
                if once.resume(.timeout) { work.cancel() }
            }
        }
    }
}

/// Resumes a continuation exactly once, from whichever side comes first.
final class ResumeOnce<Value: Sendable>: Sendable {
    private let state = Mutex<(continuation: CheckedContinuation<Value, Never>?, done: Bool)>((nil, false))

    func arm(_ continuation: CheckedContinuation<Value, Never>) {
        state.withLock { $0.continuation = continuation }
    }

    /// True when this call resumed it.
    @discardableResult
    func resume(_ value: Value) -> Bool {
        let continuation = state.withLock { current -> CheckedContinuation<Value, Never>? in
            guard !current.done else { return nil }
            current.done = true
            defer { current.continuation = nil }
            return current.continuation
        }
        continuation?.resume(returning: value)
        return continuation != nil
    }
}

/// Runs blocking work (a read from a disk that may hang) on a thread of its own, so a hung
/// system call holds that thread only, never the cooperative pool. While one call is still
/// stuck, the next check reports it instead of piling up threads.
final class BlockingCall: Sendable {
    private let busy = Mutex(false)

    func run(_ work: @escaping @Sendable () -> MonitorResult) async -> MonitorResult {
        let started = busy.withLock { inFlight -> Bool in
            if inFlight { return false }
            inFlight = true
            return true
        }
        guard started else { return .error("the previous check is still blocked in the kernel") }
        return await withCheckedContinuation { continuation in
            let thread = Thread { [self] in
                let result = work()
                self.busy.withLock { $0 = false }
                continuation.resume(returning: result)
            }
            thread.stackSize = 256 * 1024
            thread.start()
        }
    }
}
