import Foundation
import UnderstudyEngine
import UnderstudyModel

// One alert log for the cluster: every server keeps its own entries and copies of the others'
// (ClusterAlertLog), and the servers exchange them over the authenticated control channel.
// - Push: an entry written here goes to the connected peers within `alertPushDelay`
//   (batched), so the other servers show it at once: to every peer in clusters of up to five
//   servers; in larger ones to `alertPushFanout` peers in turn and at most once per
//   `alertPushGap` (an event every server logs — a server joining — would otherwise cost
//   servers² connections; the pulls spread it from there within a few periods).
// - Pull: every `alertSyncPeriod` (jittered, so servers started together do not ask
//   together) this server sends `alertPullFanout` connected peers in turn a summary of what it
//   holds, and each answers with what is missing — entries written while a server was cut
//   off, or a third server's that only the peer got. A pull brings everything the peer holds,
//   from every origin, so an entry reaches everyone within a few periods without every
//   server asking every other one (which grows with the square of the servers: 32 servers
//   asking each other every 5 s overloaded a two-core lab). A push that is lost costs
//   nothing but the wait for the next pulls.
// - Both are answered by the control server without the daemon actor (`answerAlertExchange`):
//   reading the store for a peer never delays a heartbeat.
// Entries are named by (origin, run, seq), so nothing is stored twice, whatever order or path
// it arrives by, and a kill -9 at any moment loses only what was never written.

extension ClusterDaemon {
    static let alertPushDelay: Duration = .milliseconds(100)
    /// At most one push per this interval: a burst (a server joining a large cluster logs an
    /// entry per peer) travels in a few batches, not one connection per peer per entry.
    static let alertPushGap: Duration = .seconds(1)
    static let alertSyncPeriod: Duration = .seconds(5)
    /// Peers asked per period (all of them in clusters of up to three servers).
    static let alertPullFanout = 2
    /// Peers a batch is pushed to (all of them in clusters of up to five servers).
    static let alertPushFanout = 4
    /// Entries per answer to a pull (the asker asks again while there are more).
    static let alertSyncBatch = 500
    /// Rounds of one pull from one peer (500 entries each): a store of 20,000 in one period.
    static let alertSyncRounds = 40

    /// A new own entry: sent to the connected peers soon, with the others written meanwhile.
    func shareAlert(_ entry: ReplicatedAlert) {
        alertPushPending.append(entry)
        guard !alertPushScheduled else { return }
        alertPushScheduled = true
        let delay = Self.alertPushWait(lastPush: alertLastPush, now: .now, peers: config.serverNames.count - 1)
        Task { [weak self] in
            try? await Task.sleep(for: delay)
            await self?.pushAlerts()
        }
    }

    /// How long a new entry waits before it is pushed: `alertPushDelay`; in clusters of more
    /// than five servers at least until `alertPushGap` after the previous push (in small ones
    /// every entry shows everywhere within `alertPushDelay`, as an operator expects).
    static func alertPushWait(lastPush: ContinuousClock.Instant?, now: ContinuousClock.Instant, peers: Int) -> Duration {
        guard peers > alertPushFanout, let lastPush else { return alertPushDelay }
        return max(alertPushDelay, alertPushGap - lastPush.duration(to: now))
    }

    func pushAlerts() async {
        alertPushScheduled = false
        let entries = alertPushPending
        alertPushPending = []
        guard !entries.isEmpty, !exitRequested else { return }
        alertLastPush = .now
        let peers = Self.peersInTurn(connected: connectedPeers(), fanout: Self.alertPushFanout, cursor: &alertPushCursor)
        await withTaskGroup(of: Void.self) { tasks in
            for peer in peers {
                tasks.addTask { [weak self] in _ = await self?.askPeer(peer, .alertPush(entries)) }
            }
        }
    }

    /// The peers this server hears now (the others cannot be reached; the pull after they
    /// return brings both sides up to date).
    func connectedPeers() -> [ServerName] {
        engine.snapshot(now: now()).servers.filter { !$0.isLocal && $0.status != .offline && $0.status != .unknown }.map(\.name)
    }

    func alertSyncLoop() async {
        var cursor = config.serverNames.firstIndex(of: me) ?? 0
        while !Task.isCancelled && !exitRequested {
            try? await Task.sleep(for: Self.alertSyncPause())
            if Task.isCancelled || exitRequested { return }
            let peers = Self.peersInTurn(connected: connectedPeers(), fanout: Self.alertPullFanout, cursor: &cursor)
            await withTaskGroup(of: Void.self) { tasks in
                for peer in peers {
                    tasks.addTask { [weak self] in await self?.pullAlerts(from: peer) }
                }
            }
        }
    }

    /// The period with ±20 % jitter: servers started together drift apart.
    static func alertSyncPause() -> Duration {
        alertSyncPeriod * Double.random(in: 0.8...1.2)
    }

    /// The next `fanout` of the connected peers (in `servers:` order, going round), advancing
    /// `cursor`; every connected peer when there are no more than that.
    static func peersInTurn(connected: [ServerName], fanout: Int, cursor: inout Int) -> [ServerName] {
        guard connected.count > fanout else { return connected }
        let start = cursor % connected.count
        cursor = start + fanout
        return (0..<fanout).map { connected[(start + $0) % connected.count] }
    }

    /// Asks `peer` for what this server lacks, again while the peer says there is more.
    func pullAlerts(from peer: ServerName) async {
        for _ in 0..<Self.alertSyncRounds {
            guard !exitRequested, case .alertEntries(let entries, let more) = await askPeer(peer, .alertSync(clusterAlerts.summary()))
            else { return }
            clusterAlerts.accept(entries)
            if !more { return }
        }
    }

    /// Answers a peer's pull (the entries its summary lacks) or stores its push, without the
    /// daemon actor; nil for any other request.
    nonisolated static func answerAlertExchange(_ request: ControlRequest, alerts: ClusterAlertLog) -> [UInt8]? {
        guard request.payload.starts(with: alertSyncPrefix) || request.payload.starts(with: alertPushPrefix),
            let decoded = try? WireJSON.decode(PeerRequest.self, from: request.payload)
        else { return nil }
        switch decoded {
        case .alertSync(let summary):
            let (entries, more) = alerts.missing(from: summary, limit: alertSyncBatch)
            return WireJSON.encode(PeerResponse.alertEntries(entries, more: more))
        case .alertPush(let entries):
            // A peer pushes only its own: anything else is a confused or hostile sender.
            alerts.accept(entries.filter { $0.origin == request.peerName })
            return WireJSON.encode(PeerResponse.result(CommandResult(.success, "")))
        default:
            return nil
        }
    }

    /// How the two requests' JSON starts (`WireJSON` sorts keys; the case is the only one).
    nonisolated static let alertSyncPrefix = Array(#"{"alertSync""#.utf8)
    nonisolated static let alertPushPrefix = Array(#"{"alertPush""#.utf8)

    /// The cluster alert log as this server holds it, for `understudy alerts` and the API.
    func clusterAlerts(limit: Int, origin: ServerName?) -> LocalResponse {
        let entries = clusterAlerts.newest(limit: min(max(limit, 0), Self.alertLinesLimit), origin: origin)
        let notConnected = Set(connectedPeers() + [me])
        return .clusterAlerts(entries, notConnected: config.serverNames.filter { !notConnected.contains($0) })
    }

    /// Makes the cluster alert log durable about every second, on a thread of its own and
    /// never awaited: a disk that hangs holds back neither the daemon nor its exit.
    static func alertFlushLoop(_ log: ClusterAlertLog) async {
        while !Task.isCancelled {
            try? await Task.sleep(for: .seconds(1))
            log.flushInBackground()
        }
    }
}
