import Foundation
import Logging

/// Writes the daemon's durable state (the Engine's `engine.json`, the abnormal-stop marker) on
/// a thread of its own, so that a slow disk (an fsync that takes a second) never holds up the
/// daemon actor and with it a heartbeat.
///
/// Guarantees:
/// - `submit` never blocks: it queues the job and returns a ticket.
/// - Jobs run one at a time, in the order they were submitted. A state that is still waiting
///   when a newer one comes is replaced by it (only the newest state is worth writing); a job
///   that cannot be replaced (a marker change) keeps its place, so a state submitted before
///   it is on disk before it and one submitted after it after it.
/// - `waitUntilWritten(_:)` returns once the job of a ticket and every job before it has run
///   (or was replaced by a newer state that has run): the daemon starts a resource only once
///   the state that says it holds it is on disk, as when the write was on the actor.
/// - `drain()` (and, where blocking is the point, `drainBlocking()`) returns once everything
///   submitted before it has run: the daemon drains before it reports a stop, before it runs
///   an OS shutdown or an immediate stop of the machine, and before it exits.
/// A write that fails is logged (critical) as before and not retried; the next state replaces it.
public final class StateWriter: @unchecked Sendable {
    public typealias Ticket = UInt64

    struct Job {
        var ticket: Ticket
        /// A newer replaceable job may take this one's place while it waits.
        var replaceable: Bool
        var work: @Sendable () throws -> Void
        var what: String
    }

    private let condition = NSCondition()
    // Guarded by `condition`:
    private var queue: [Job] = []
    private var lastTicket: Ticket = 0
    private var done: Ticket = 0
    private var waiters: [(ticket: Ticket, continuation: CheckedContinuation<Void, Never>)] = []
    private var running = false
    private var stopping = false
    private var written: UInt64 = 0
    private var replaced: UInt64 = 0

    private let logger: Logger
    private let name: String

    public init(name: String, logger: Logger) {
        self.name = name
        self.logger = logger
    }

    /// Queues `work`; `replaceable` work is dropped when newer replaceable work arrives before
    /// it ran and nothing unreplaceable was queued in between.
    @discardableResult
    public func submit(_ what: String, replaceable: Bool, _ work: @escaping @Sendable () throws -> Void) -> Ticket {
        condition.lock()
        defer { condition.unlock() }
        lastTicket += 1
        let job = Job(ticket: lastTicket, replaceable: replaceable, work: work, what: what)
        if replaceable, let last = queue.last, last.replaceable {
            queue[queue.count - 1] = job
            replaced += 1
        } else {
            queue.append(job)
        }
        if !running {
            running = true
            let thread = Thread { [self] in run() }
            thread.name = name
            thread.start()
        }
        condition.signal()
        return lastTicket
    }

    /// The newest ticket handed out (0 before the first).
    public var latestTicket: Ticket {
        condition.lock()
        defer { condition.unlock() }
        return lastTicket
    }

    /// Whether `ticket`'s job and every one before it has run.
    public func hasWritten(_ ticket: Ticket) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        return done >= ticket
    }

    /// States written and states replaced by a newer one before they were written.
    public var statistics: (written: UInt64, replaced: UInt64) {
        condition.lock()
        defer { condition.unlock() }
        return (written, replaced)
    }

    /// Returns once `ticket`'s job and every one before it has run (at once when they have).
    public func waitUntilWritten(_ ticket: Ticket) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            condition.lock()
            if done >= ticket {
                condition.unlock()
                continuation.resume()
                return
            }
            waiters.append((ticket, continuation))
            condition.unlock()
        }
    }

    /// Returns once everything submitted so far has run.
    public func drain() async {
        await waitUntilWritten(latestTicket)
    }

    /// Blocks the calling thread until everything submitted so far has run. Only for the moments
    /// when nothing else may happen first (an immediate stop of the machine).
    public func drainBlocking() {
        condition.lock()
        defer { condition.unlock() }
        let target = lastTicket
        while done < target { condition.wait() }
    }

    /// Ends the thread once the queue is empty; later submissions start a new one.
    public func stop() {
        condition.lock()
        if running { stopping = true }
        condition.broadcast()
        condition.unlock()
    }

    private func run() {
        // Named for ps and perf: set from the thread itself, the name reaches the kernel.
        Thread.current.name = String(name.prefix(15))
        while true {
            condition.lock()
            while queue.isEmpty && !stopping { condition.wait() }
            guard !queue.isEmpty else {
                running = false
                stopping = false
                condition.unlock()
                return
            }
            let job = queue.removeFirst()
            condition.unlock()
            do {
                try job.work()
            } catch {
                logger.critical("cannot write \(job.what): \(error)")
            }
            condition.lock()
            if job.replaceable { written += 1 }
            done = job.ticket
            let ready = waiters.filter { $0.ticket <= done }
            waiters.removeAll { $0.ticket <= done }
            condition.broadcast()
            condition.unlock()
            for waiter in ready { waiter.continuation.resume() }
        }
    }
}
