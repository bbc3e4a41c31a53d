import Foundation
import UnderstudyEngine
import UnderstudyModel

// One alert log for the cluster: every server keeps its own entries and copies of the others'
// (ClusterAlertLog), and the servers exchange them over the authenticated control channel.
// - Push: an entry written here goes to every connected peer within `alertPushDelay`
//   (batched), so the other servers show it at once.
// - Pull: every `alertSyncPeriod` this server sends each connected peer a summary of what it
//   holds, and the peer answers with what is missing — entries written while a server was cut
//   off, or a third server's that only the peer got. A push that is lost costs nothing but
//   the wait for the next pull.
// Entries are named by (origin, run, seq), so nothing is stored twice, whatever order or path
// it arrives by, and a kill -9 at any moment loses only what was never written.

extension ClusterDaemon {
    static let alertPushDelay: Duration = .milliseconds(100)
    static let alertSyncPeriod: Duration = .seconds(5)
    /// Entries per answer to a pull (the asker asks again while there are more).
    static let alertSyncBatch = 500
    /// Rounds of one pull from one peer (500 entries each): a store of 20,000 in one period.
    static let alertSyncRounds = 40

    /// A new own entry: sent to the connected peers soon, with the others written meanwhile.
    func shareAlert(_ entry: ReplicatedAlert) {
        alertPushPending.append(entry)
        guard !alertPushScheduled else { return }
        alertPushScheduled = true
        Task { [weak self] in
            try? await Task.sleep(for: Self.alertPushDelay)
            await self?.pushAlerts()
        }
    }

    func pushAlerts() async {
        alertPushScheduled = false
        let entries = alertPushPending
        alertPushPending = []
        guard !entries.isEmpty, !exitRequested else { return }
        await withTaskGroup(of: Void.self) { tasks in
            for peer in connectedPeers() {
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
        while !Task.isCancelled && !exitRequested {
            try? await Task.sleep(for: Self.alertSyncPeriod)
            if Task.isCancelled || exitRequested { return }
            await withTaskGroup(of: Void.self) { tasks in
                for peer in connectedPeers() {
                    tasks.addTask { [weak self] in await self?.pullAlerts(from: peer) }
                }
            }
        }
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

    /// A peer's summary: the entries it lacks.
    func alertsMissing(from summary: AlertSyncSummary, peer: String) -> PeerResponse {
        let (entries, more) = clusterAlerts.missing(from: summary, limit: Self.alertSyncBatch)
        return .alertEntries(entries, more: more)
    }

    /// Entries a peer pushed as it wrote them.
    func alertsPushed(_ entries: [ReplicatedAlert], peer: String) {
        // A peer pushes only its own: anything else is a confused or hostile sender.
        clusterAlerts.accept(entries.filter { $0.origin == peer })
    }

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
