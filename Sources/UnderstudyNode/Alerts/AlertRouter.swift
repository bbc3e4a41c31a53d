import Foundation
import Synchronization
import UnderstudyEngine
import UnderstudyModel

/// Sends each alert to the destinations its route names (AlertSettings), off the daemon's
/// actor: `submit` only appends to an inbox and never waits. Each destination has its own
/// bounded queue (the oldest alert is dropped when it is full, and counted) and its own
/// delivery task, which tries an alert `retry.attempts` times with doubling waits before
/// giving it up. A destination whose alert was given up is *failing*: the router says so once
/// (`Notice.failing`), and once more when an alert goes through again (`Notice.recovered`);
/// alerts of module `alert` (those notices, written to the alert log by the daemon) are never
/// queued for a failing destination, so a broken destination cannot feed itself.
public actor AlertRouter {
    /// A destination as the daemon built it from the configuration (or why it could not).
    public struct Entry: Sendable {
        public var config: AlertDestinationConfig
        public var destination: any AlertDestination

        public init(config: AlertDestinationConfig, destination: any AlertDestination) {
            self.config = config
            self.destination = destination
        }
    }

    public enum Notice: Sendable, Equatable {
        case failing(destination: String, type: String, reason: String)
        case recovered(destination: String, type: String)
    }

    enum Message: Sendable {
        case alert(AlertEvent, only: [String]?)
        case configure(AlertSettings, [Entry])
    }

    struct Lane {
        var config: AlertDestinationConfig
        var destination: any AlertDestination
        var queue: [AlertEvent] = []
        var line: ClusterStatusSnapshot.AlertDestinationLine
        /// The delivery task waits here while the queue is empty.
        var waiter: CheckedContinuation<Void, Never>?
        var worker: Task<Void, Never>?
        /// Tells a replaced lane's worker (same name, removed and added again) to stop.
        var generation: Int
        /// The alert being delivered (not in `queue` any more).
        var busy = false
    }

    private let inbox: AsyncStream<Message>.Continuation
    private let messages: AsyncStream<Message>
    private var consumer: Task<Void, Never>?
    private var settings: AlertSettings
    private var lanes: [String: Lane] = [:]
    private var nextGeneration = 0
    /// Messages put into the inbox, and those handled: equal when nothing waits there.
    private let submitted = Mutex(0)
    private var handled = 0
    private let noticeSink: AsyncStream<Notice>.Continuation
    /// Each change of a destination's health, once (the daemon writes them as alerts).
    public nonisolated let notices: AsyncStream<Notice>
    private let published = Mutex<[ClusterStatusSnapshot.AlertDestinationLine]>([])

    public init() {
        (messages, inbox) = AsyncStream<Message>.makeStream()
        (notices, noticeSink) = AsyncStream<Notice>.makeStream()
        settings = AlertSettings(destinations: [], routes: [])
    }

    // MARK: What the daemon calls

    /// Queues `alert` for routing; returns at once. `only` bypasses the routes (clplogcmd's
    /// `--syslog`, `--mail`, `--trap` name the destinations themselves).
    public nonisolated func submit(_ alert: AlertEvent, only: [String]? = nil) {
        submitted.withLock { $0 += 1 }
        inbox.yield(.alert(alert, only: only))
    }

    /// Takes new settings and destinations in order with the alerts around it: a destination
    /// that keeps its name keeps its queue and counters (its new settings apply from its next
    /// attempt); a removed one stops and its queue is dropped.
    public nonisolated func configure(_ settings: AlertSettings, destinations: [Entry]) {
        submitted.withLock { $0 += 1 }
        inbox.yield(.configure(settings, destinations))
    }

    /// The counters of every destination, in configuration order (for the status).
    public nonisolated var lines: [ClusterStatusSnapshot.AlertDestinationLine] { published.withLock { $0 } }

    /// Starts routing what was and will be submitted.
    public func start() {
        guard consumer == nil else { return }
        let messages = self.messages
        consumer = Task { [weak self] in
            for await message in messages {
                guard let self else { return }
                await self.handle(message)
            }
        }
    }

    /// Waits, at most `limit`, until every submitted alert is routed and every destination
    /// that works has sent its queue (the daemon's last alerts at exit); a destination in
    /// trouble (its last attempt failed) is not waited for.
    public func drain(within limit: Duration) async {
        let deadline = ContinuousClock.now + limit
        while ContinuousClock.now < deadline && !isIdle {
            try? await Task.sleep(for: .milliseconds(20))
        }
    }

    private var isIdle: Bool {
        submitted.withLock { $0 } == handled
            && lanes.values.allSatisfy { ($0.queue.isEmpty && !$0.busy) || $0.line.lastError != nil }
    }

    /// Stops every delivery task; queued alerts are dropped.
    public func stop() {
        inbox.finish()
        noticeSink.finish()
        consumer?.cancel()
        for name in Array(lanes.keys) { removeLane(name) }
        publish()
    }

    // MARK: Routing

    private func handle(_ message: Message) {
        switch message {
        case .alert(let alert, let only): route(alert, only: only)
        case .configure(let settings, let entries): apply(settings, entries)
        }
        handled += 1
    }

    private func route(_ alert: AlertEvent, only: [String]?) {
        let names = only ?? settings.destinations(module: alert.module, id: alert.eventID, level: alert.level)
        let aboutAlerts = alert.module == EventKind.alertDestinationFailing.module
        for name in names {
            guard var lane = lanes[name] else { continue }
            if aboutAlerts && lane.line.failing { continue }
            if lane.queue.count >= settings.queue {
                lane.queue.removeFirst()
                lane.line.dropped += 1
            }
            lane.queue.append(alert)
            lane.line.queued = lane.queue.count
            let waiter = lane.waiter
            lane.waiter = nil
            lanes[name] = lane
            waiter?.resume()
        }
        publish()
    }

    private func apply(_ newSettings: AlertSettings, _ entries: [Entry]) {
        settings = newSettings
        let names = entries.map(\.config.name)
        for name in Array(lanes.keys) where !names.contains(name) { removeLane(name) }
        for entry in entries {
            let name = entry.config.name
            if var lane = lanes[name] {
                lane.config = entry.config
                lane.destination = entry.destination
                lane.line.type = entry.config.kind.typeName
                while lane.queue.count > settings.queue {
                    lane.queue.removeFirst()
                    lane.line.dropped += 1
                }
                lane.line.queued = lane.queue.count
                lanes[name] = lane
            } else {
                nextGeneration += 1
                let generation = nextGeneration
                var lane = Lane(
                    config: entry.config, destination: entry.destination,
                    line: .init(name: name, type: entry.config.kind.typeName), generation: generation)
                lane.worker = Task { [weak self] in await self?.work(name, generation: generation) }
                lanes[name] = lane
            }
        }
        publish()
    }

    private func removeLane(_ name: String) {
        guard let lane = lanes.removeValue(forKey: name) else { return }
        lane.worker?.cancel()
        lane.waiter?.resume()
    }

    // MARK: Delivery

    /// One destination's delivery task: the next alert, its attempts, the outcome.
    private func work(_ name: String, generation: Int) async {
        while !Task.isCancelled {
            guard let (alert, destination, retry) = await next(name, generation: generation) else { return }
            var attempt = 1
            while true {
                do {
                    try await destination.deliver(alert)
                    delivered(name, generation: generation)
                    break
                } catch {
                    let reason = "\(error)"
                    let permanent = (error as? any PermanentAlertFailure)?.isPermanent ?? false
                    if permanent || attempt >= retry.attempts || Task.isCancelled {
                        gaveUp(name, generation: generation, reason: reason)
                        break
                    }
                    retried(name, generation: generation, reason: reason)
                    try? await Task.sleep(for: retry.delay(after: attempt))
                    if Task.isCancelled {
                        gaveUp(name, generation: generation, reason: reason)
                        break
                    }
                    attempt += 1
                }
            }
        }
    }

    private func next(_ name: String, generation: Int) async -> (AlertEvent, any AlertDestination, AlertRetry)? {
        while !Task.isCancelled {
            guard var lane = lanes[name], lane.generation == generation else { return nil }
            if !lane.queue.isEmpty {
                let alert = lane.queue.removeFirst()
                lane.line.queued = lane.queue.count
                lane.busy = true
                lanes[name] = lane
                publish()
                return (alert, lane.destination, settings.retry)
            }
            lane.busy = false
            lanes[name] = lane
            await withCheckedContinuation { continuation in
                if var current = lanes[name], current.generation == generation, current.queue.isEmpty, !Task.isCancelled {
                    current.waiter = continuation
                    lanes[name] = current
                } else {
                    continuation.resume()
                }
            }
        }
        return nil
    }

    private func delivered(_ name: String, generation: Int) {
        guard var lane = lanes[name], lane.generation == generation else { return }
        lane.line.delivered += 1
        lane.line.lastError = nil
        let recovered = lane.line.failing
        lane.line.failing = false
        lanes[name] = lane
        publish()
        if recovered { noticeSink.yield(.recovered(destination: name, type: lane.line.type)) }
    }

    private func retried(_ name: String, generation: Int, reason: String) {
        guard var lane = lanes[name], lane.generation == generation else { return }
        lane.line.retried += 1
        lane.line.lastError = reason
        lanes[name] = lane
        publish()
    }

    private func gaveUp(_ name: String, generation: Int, reason: String) {
        guard var lane = lanes[name], lane.generation == generation else { return }
        lane.line.failed += 1
        lane.line.lastError = reason
        let newlyFailing = !lane.line.failing
        lane.line.failing = true
        lanes[name] = lane
        publish()
        if newlyFailing { noticeSink.yield(.failing(destination: name, type: lane.line.type, reason: reason)) }
    }

    private func publish() {
        let order = settings.destinations.map(\.name)
        let lines = lanes.values.map(\.line).sorted { first, second in
            (order.firstIndex(of: first.name) ?? .max, first.name) < (order.firstIndex(of: second.name) ?? .max, second.name)
        }
        published.withLock { $0 = lines }
    }
}
