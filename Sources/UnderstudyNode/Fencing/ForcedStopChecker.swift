import Foundation
import UnderstudyModel

/// The periodic check (mode 0) of every agent against every peer, every
/// `fencing.check-interval`. It keeps the last result per peer and agent (for `clpstat -f`)
/// and reports only changes, so the daemon alerts once when an agent stops working and once
/// when it works again, not on every round. An agent never checked before counts as working:
/// its first failure is a change, its first success is not.
///
/// The daemon's use:
///
///     let checker = ForcedStopChecker(stopper: stopper) { change in /* one alert */ }
///     let task = Task { await checker.run(every: fencing.checkInterval) { peers() } }
///     …
///     task.cancel()   // configuration applied, or the daemon stopping; a check in flight is killed
public actor ForcedStopChecker {
    public struct Result: Sendable, Equatable {
        public var server: String
        public var agent: String
        /// `ipmi` or `script`.
        public var type: String
        public var time: Date
        public var ok: Bool
        public var detail: String

        public init(server: String, agent: String, type: String, time: Date, ok: Bool, detail: String) {
            self.server = server
            self.agent = agent
            self.type = type
            self.time = time
            self.ok = ok
            self.detail = detail
        }
    }

    /// An agent that failed where it worked (or was never checked), or works again.
    public struct Change: Sendable, Equatable {
        public var result: Result
        /// The state before; nil on the first check.
        public var previouslyOK: Bool?

        public init(result: Result, previouslyOK: Bool?) {
            self.result = result
            self.previouslyOK = previouslyOK
        }
    }

    private struct Key: Hashable {
        var server: String
        var agent: String
    }

    public let stopper: ForcedStopper
    private let onChange: @Sendable (Change) async -> Void
    private var last: [Key: Result] = [:]
    private var rounds = 0

    public init(stopper: ForcedStopper, onChange: @escaping @Sendable (Change) async -> Void) {
        self.stopper = stopper
        self.onChange = onChange
    }

    /// The last result of every agent for every peer checked, by server then agent order.
    public var results: [Result] {
        last.values.sorted { ($0.server, $0.agent) < ($1.server, $1.agent) }
    }

    public func results(for server: String) -> [Result] {
        results.filter { $0.server == server }
    }

    /// How many rounds have ended.
    public var completedRounds: Int { rounds }

    /// One round: every agent against every peer in `peers` that an agent covers. Reports (and
    /// returns) the changes. Results of peers or agents no longer configured are dropped.
    @discardableResult
    public func checkNow(peers: [String]) async -> [Change] {
        let fencing = await stopper.fencing
        let local = stopper.localServer
        var changes: [Change] = []
        var seen: Set<Key> = []
        for server in peers where server != local && fencing.covers(server) {
            if Task.isCancelled { return changes }
            let checks = await stopper.checkEach(server)
            // Cancelled meanwhile (the daemon stopping): the interrupted checks say nothing.
            if Task.isCancelled { return changes }
            for checked in checks {
                let key = Key(server: server, agent: checked.agent)
                seen.insert(key)
                let result = Result(
                    server: server, agent: checked.agent, type: checked.type, time: Date(), ok: checked.succeeded, detail: checked.detail)
                let previous = last[key]?.ok
                last[key] = result
                if result.ok != (previous ?? true) {
                    let change = Change(result: result, previouslyOK: previous)
                    changes.append(change)
                    await onChange(change)
                }
            }
        }
        for key in last.keys where !seen.contains(key) { last[key] = nil }
        rounds += 1
        return changes
    }

    /// Checks at once, then every `interval` (measured from the start of a round) until the
    /// calling task is cancelled. `peers` is asked each round. An interval of zero turns the
    /// check off: it returns at once.
    public func run(every interval: Duration, peers: @escaping @Sendable () async -> [String]) async {
        guard interval > .zero else { return }
        while !Task.isCancelled {
            let started = ContinuousClock.now
            await checkNow(peers: await peers())
            do {
                try await Task.sleep(until: started + interval, clock: .continuous)
            } catch {
                return
            }
        }
    }
}
