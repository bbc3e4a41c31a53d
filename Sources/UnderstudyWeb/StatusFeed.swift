import UnderstudyEngine
import UnderstudyModel
import UnderstudyNode

/// The status the web server shows, fetched from the daemon at most once per `freshness`
/// however many clients ask (so a flood of GETs costs the daemon's actor at most ten
/// snapshots a second), and pushed to event-stream subscribers when what they see changes.
actor StatusFeed {
    static let freshness: Duration = .milliseconds(100)
    static let pollPeriod: Duration = .milliseconds(200)

    let daemon: any DaemonPort
    var cached: (snapshot: ClusterStatusSnapshot, at: ContinuousClock.Instant)?
    var inflight: Task<ClusterStatusSnapshot?, Never>?
    var subscribers: [Int: AsyncStream<JSONValue>.Continuation] = [:]
    var nextSubscriber = 0
    var lastShown: JSONValue?

    init(daemon: any DaemonPort) { self.daemon = daemon }

    /// Bumped by `invalidate`: a request started before does not fill the cache.
    var generation = 0

    /// A snapshot no older than `freshness`; nil when the daemon did not answer with one.
    func current() async -> ClusterStatusSnapshot? {
        if let cached, cached.at.duration(to: .now) < Self.freshness { return cached.snapshot }
        if let inflight { return await inflight.value }
        let daemon = self.daemon
        let task = Task<ClusterStatusSnapshot?, Never> {
            if case .status(let snapshot) = await daemon.request(.status(target: nil)) { return snapshot }
            return nil
        }
        let started = generation
        inflight = task
        let snapshot = await task.value
        guard started == generation else { return snapshot }
        inflight = nil
        if let snapshot { cached = (snapshot, .now) }
        return snapshot
    }

    /// An operation went through: the next read asks the daemon again (a cached or in-flight
    /// snapshot may be from before it).
    func invalidate() {
        generation += 1
        cached = nil
        inflight = nil
    }

    /// The status as the event stream shows it: now, then on every change.
    func subscribe() -> AsyncStream<JSONValue> {
        let (stream, continuation) = AsyncStream<JSONValue>.makeStream(bufferingPolicy: .bufferingNewest(4))
        let id = nextSubscriber
        nextSubscriber += 1
        subscribers[id] = continuation
        wakeForSubscriber()
        if let lastShown { continuation.yield(lastShown) }
        continuation.onTermination = { [weak self] _ in Task { await self?.unsubscribe(id) } }
        return stream
    }

    func unsubscribe(_ id: Int) { subscribers[id] = nil }

    /// `run` waiting for a first subscriber (nobody to poll for: an idle daemon's web server
    /// does not wake five times a second).
    var waitingForSubscriber: CheckedContinuation<Void, Never>?

    func wakeForSubscriber() {
        waitingForSubscriber?.resume()
        waitingForSubscriber = nil
    }

    /// Polls while anyone subscribes; runs until cancelled.
    func run() async {
        while !Task.isCancelled {
            if subscribers.isEmpty {
                lastShown = nil
                await withTaskCancellationHandler {
                    await withCheckedContinuation { continuation in
                        if Task.isCancelled || !subscribers.isEmpty {
                            continuation.resume()
                        } else {
                            waitingForSubscriber = continuation
                        }
                    }
                } onCancel: {
                    Task { await self.wakeForSubscriber() }
                }
                continue
            }
            if let snapshot = await current() {
                let shown = ApiShapes.status(snapshot)
                if shown != lastShown {
                    lastShown = shown
                    for subscriber in subscribers.values { subscriber.yield(shown) }
                }
            }
            try? await Task.sleep(for: Self.pollPeriod)
        }
        wakeForSubscriber()
        for subscriber in subscribers.values { subscriber.finish() }
    }
}
