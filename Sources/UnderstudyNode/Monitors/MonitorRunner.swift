import Foundation
import Logging
import Synchronization
import UnderstudyEngine
import UnderstudyModel

/// One kind of check. `check()` may take as long as it likes: the runner abandons it at the
/// monitor's timeout (and cancels its task), so a hung probe never delays other monitors
/// or heartbeats. Probes that block a thread (disk I/O) run on threads of their own. A probe
/// that answers at once without blocking (reading /proc or /sys) also offers `checkNow()`,
/// which the runner calls inline instead of starting a task.
protocol MonitorProbe: Sendable {
    func check() async -> MonitorResult
    /// The check with the power state it found (upsw); others report none.
    func checkPower() async -> (result: MonitorResult, power: PowerState?)
    func checkNow() -> MonitorResult?
    /// The monitor stops: end what the probe keeps running (genw's asynchronous process).
    func stop() async
}

extension MonitorProbe {
    func checkPower() async -> (result: MonitorResult, power: PowerState?) { (await check(), nil) }
    func checkNow() -> MonitorResult? { nil }
    func stop() async {}
}

/// Runs the probes of the monitors the Engine started. One scheduler task for all of them
/// (thousands of monitors must not mean thousands of timers): it wakes when checks are due
/// (checks due within `slack` of each other run in the same wake), starts them, abandons
/// those past their timeout, and hands the results to the daemon in one batch per wake.
/// Start and stop are synchronous (called in the Engine's action order), so a stop never
/// overtakes the start it belongs to.
final class MonitorRunner: Sendable {
    /// Takes results synchronously (the daemon puts them on a stream it drains).
    typealias Report = @Sendable ([MonitorCheck]) -> Void

    /// Checks due this close together run in one wake (a check may start up to this much
    /// early). 25 ms: 1,000 checks a second cost 3.9–4.1 % of a core instead of 5.6 % at 10 ms
    /// (docs/benchmarks.md), from fewer wake-ups.
    static let slack: Duration = .milliseconds(25)

    struct InFlight: Sendable {
        var token: UInt64
        var started: ContinuousClock.Instant
        var deadline: ContinuousClock.Instant
        var task: Task<Void, Never>?
    }

    /// A running monitor, in a slot of its own: the hot path indexes an array instead of
    /// hashing names, and its wake-ups are plain values (no String to retain per push and pop).
    struct Entry: Sendable {
        var name: String
        var run: UInt64
        var probe: any MonitorProbe
        var interval: Duration
        var timeout: Duration
        var next: ContinuousClock.Instant
        var inFlight: InFlight?
        /// Bumped whenever the entry is rescheduled: older wake-ups for it are stale.
        var generation: UInt64 = 0
    }

    /// A moment something is due for a slot (its next check, or its check's deadline).
    struct WakeUp: Sendable {
        var at: ContinuousClock.Instant
        var slot: Int
        var generation: UInt64
    }

    struct State: Sendable {
        var slots: [Entry?] = []
        var freeSlots: [Int] = []
        var slotByName: [String: Int] = [:]
        var wakeUps = MinHeap<WakeUp> { $0.at < $1.at }
        var nextToken: UInt64 = 1
        var nextGeneration: UInt64 = 1
        var scheduler: Task<Void, Never>?

        /// Reschedules a slot: a new generation and a wake-up at `at`.
        mutating func wake(_ slot: Int, at: ContinuousClock.Instant) {
            let generation = nextGeneration
            nextGeneration += 1
            slots[slot]?.generation = generation
            wakeUps.push(WakeUp(at: at, slot: slot, generation: generation))
        }

        /// Puts an entry in a slot (replacing one of the same name); returns the one replaced.
        mutating func insert(_ entry: Entry) -> (slot: Int, replaced: Entry?) {
            if let slot = slotByName[entry.name] {
                let old = slots[slot]
                slots[slot] = entry
                return (slot, old)
            }
            let slot: Int
            if let free = freeSlots.popLast() {
                slot = free
                slots[slot] = entry
            } else {
                slot = slots.count
                slots.append(entry)
            }
            slotByName[entry.name] = slot
            return (slot, nil)
        }

        mutating func remove(_ slot: Int) -> Entry? {
            guard let entry = slots[slot] else { return nil }
            slots[slot] = nil
            slotByName[entry.name] = nil
            freeSlots.append(slot)
            return entry
        }

        func isCurrent(_ wakeUp: WakeUp) -> Bool {
            wakeUp.slot < slots.count && slots[wakeUp.slot]?.generation == wakeUp.generation
        }
    }

    /// The report closure in a box: a closure stored directly in a `Mutex` is re-abstracted
    /// and written back on every `withLock`, so each read wrapped it in one more thunk — the
    /// call chain (and the CPU per report) grew for the daemon's whole life.
    struct Sink: Sendable {
        let report: Report
    }

    let state = Mutex(State())
    private let sink = Mutex<Sink?>(nil)
    /// How late checks started against their schedule.
    let lateness = LatenessRecorder()

    init(report: Report? = nil) {
        if let report { sink.withLock { $0 = Sink(report: report) } }
    }

    /// Where results go (set once the daemon can receive them).
    func onReport(_ report: @escaping Report) { sink.withLock { $0 = Sink(report: report) } }

    func report(_ checks: [MonitorCheck]) {
        guard let sink = sink.withLock({ $0 }) else { return }
        sink.report(checks)
    }

    func start(_ monitor: MonitorConfig, run: UInt64, probe: any MonitorProbe) {
        // Monitors started together (cluster start) are spread over their interval by a
        // fixed offset from their name, so their checks do not all fire at once.
        let spread = monitor.interval * Self.spreadFraction(monitor.name)
        let entry = Entry(
            name: monitor.name, run: run, probe: probe, interval: monitor.interval, timeout: monitor.timeout,
            next: .now + monitor.firstWait + spread)
        let old = state.withLock { state -> Entry? in
            var entry = entry
            // The same run again (`clptoratio` changed its timeout): keep its schedule; a
            // check in flight is abandoned and the next one runs with the new probe.
            if let slot = state.slotByName[entry.name], let current = state.slots[slot], current.run == run {
                entry.next = current.next
            }
            let (slot, replaced) = state.insert(entry)
            state.wake(slot, at: entry.next)
            if state.scheduler == nil {
                state.scheduler = Task { [weak self] in await self?.schedule() }
            }
            return replaced
        }
        if let old { abandon(old) }
    }

    func stop(_ monitor: String, run: UInt64) {
        let entry = state.withLock { state -> Entry? in
            guard let slot = state.slotByName[monitor], state.slots[slot]?.run == run else { return nil }
            return state.remove(slot)
        }
        if let entry { abandon(entry) }
    }

    func stopAll() async {
        let (all, scheduler) = state.withLock { state -> ([Entry], Task<Void, Never>?) in
            defer {
                state.slots = []
                state.freeSlots = []
                state.slotByName = [:]
                state.scheduler = nil
            }
            return (state.slots.compactMap { $0 }, state.scheduler)
        }
        scheduler?.cancel()
        for entry in all {
            entry.inFlight?.task?.cancel()
            await entry.probe.stop()
        }
    }

    func abandon(_ entry: Entry) {
        entry.inFlight?.task?.cancel()
        Task { await entry.probe.stop() }
    }

    /// The scheduler: runs until `stopAll`. It sleeps until the next check is due, at most
    /// `maximumSleep` (a monitor started meanwhile waits at most that long for its first check).
    static let maximumSleep: Duration = .milliseconds(100)

    func schedule() async {
        while !Task.isCancelled {
            let wakeAt = runDueChecks()
            let sleep = min(max(ContinuousClock.now.duration(to: wakeAt), .milliseconds(1)), Self.maximumSleep)
            // On the daemon's timer thread (DeadlineTimer.swift): one punctual wake-up, not
            // the two or three of `PreciseSleep`'s Task.sleep steps.
            await DeadlineTimer.shared.sleep(until: .now + sleep)
        }
    }

    /// Starts what is due, times out what is overdue, reports inline results; returns when
    /// to wake next.
    func runDueChecks() -> ContinuousClock.Instant {
        let now = ContinuousClock.now
        var due: [(slot: Int, probe: any MonitorProbe, token: UInt64)] = []
        var results: [MonitorCheck] = []
        state.withLock { state in
            while let top = state.wakeUps.peek, top.at <= now + Self.slack {
                state.wakeUps.pop()
                guard state.isCurrent(top) else { continue }
                let slot = top.slot
                if let inFlight = state.slots[slot]?.inFlight {
                    // Its deadline: the check is abandoned and counts as a timeout.
                    inFlight.task?.cancel()
                    guard let entry = state.slots[slot] else { continue }
                    results.append(
                        MonitorCheck(monitor: entry.name, run: entry.run, result: .timeout, elapsed: inFlight.started.duration(to: now)))
                    let next = max(entry.next + entry.interval, now)
                    state.slots[slot]?.inFlight = nil
                    state.slots[slot]?.next = next
                    state.wake(slot, at: next)
                    continue
                }
                guard let (scheduled, timeout, probe) = state.slots[slot].map({ ($0.next, $0.timeout, $0.probe) }) else { continue }
                lateness.record(scheduled.duration(to: now))
                let token = state.nextToken
                state.nextToken += 1
                let deadline = now + timeout
                state.slots[slot]?.inFlight = InFlight(token: token, started: now, deadline: deadline)
                state.wake(slot, at: deadline)
                due.append((slot, probe, token))
            }
        }
        for (slot, probe, token) in due {
            if let result = probe.checkNow() {
                if let check = finish(slot, token: token, result: result) { results.append(check) }
                continue
            }
            let task = Task { [weak self] in
                let (result, power) = await probe.checkPower()
                guard let self, !Task.isCancelled, let check = self.finish(slot, token: token, result: result, power: power) else {
                    return
                }
                self.report([check])
            }
            state.withLock { state in
                if state.slots[slot]?.inFlight?.token == token { state.slots[slot]?.inFlight?.task = task }
            }
        }
        if !results.isEmpty { report(results) }
        return state.withLock { state in
            // Wake-ups made stale by a reschedule (a check that ended before its deadline)
            // must not wake the scheduler: drop them from the top.
            while let top = state.wakeUps.peek, !state.isCurrent(top) {
                state.wakeUps.pop()
            }
            return state.wakeUps.peek?.at ?? now + Self.maximumSleep
        }
    }

    /// A check ended in time: schedule the next one; the result, unless the check was
    /// abandoned (timed out, monitor stopped or restarted) meanwhile. Tokens are unique, so a
    /// slot reused by another monitor never takes this result.
    func finish(_ slot: Int, token: UInt64, result: MonitorResult, power: PowerState? = nil) -> MonitorCheck? {
        let now = ContinuousClock.now
        return state.withLock { state -> MonitorCheck? in
            guard slot < state.slots.count, let entry = state.slots[slot], let inFlight = entry.inFlight, inFlight.token == token else {
                return nil
            }
            // Fixed rate; a check longer than the interval starts the next one at once.
            let next = max(entry.next + entry.interval, now)
            state.slots[slot]?.inFlight = nil
            state.slots[slot]?.next = next
            state.wake(slot, at: next)
            return MonitorCheck(
                monitor: entry.name, run: entry.run, result: result, elapsed: inFlight.started.duration(to: now), power: power)
        }
    }

    /// A stable fraction in [0, 1) from a monitor's name (FNV-1a).
    static func spreadFraction(_ name: String) -> Double {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in name.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x100_0000_01b3
        }
        return Double(hash % 10_000) / 10_000
    }
}

/// Runs blocking work (a read from a disk that may hang) on a thread of its own, so a hung
/// system call holds that thread only, never the cooperative pool. While one call is still
/// stuck, the next check reports it instead of piling up threads.
final class BlockingCall: Sendable {
    private let busy = Mutex(false)

    func run(_ work: @escaping @Sendable () -> MonitorResult) async -> MonitorResult {
        await run(busy: .error("the previous check is still blocked in the kernel"), work)
    }

    /// `busy` is the answer while an earlier call is still stuck.
    func run<Answer: Sendable>(busy answer: Answer, _ work: @escaping @Sendable () -> Answer) async -> Answer {
        let started = busy.withLock { inFlight -> Bool in
            if inFlight { return false }
            inFlight = true
            return true
        }
        guard started else { return answer }
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
