import Foundation
import Testing
import UnderstudyEngine
import UnderstudyModel

@testable import UnderstudyNode

/// How the servers exchange the cluster alert log without asking each other all at once
/// (ClusterDaemon+AlertSync.swift): a few peers per period in turn, pushes batched, and both
/// answered by the control server without the daemon actor.
@Suite("Alert exchange")
struct AlertExchangeTests {
    @Test func smallClustersAskEveryPeerLargeOnesAFewInTurn() {
        var cursor = 0
        #expect(ClusterDaemon.peersInTurn(connected: ["node2", "node3"], fanout: 2, cursor: &cursor) == ["node2", "node3"])
        #expect(ClusterDaemon.peersInTurn(connected: [], fanout: 2, cursor: &cursor).isEmpty)
        // Pushes go to every peer of a cluster of five servers.
        let four = ["node2", "node3", "node4", "node5"]
        #expect(ClusterDaemon.peersInTurn(connected: four, fanout: ClusterDaemon.alertPushFanout, cursor: &cursor) == four)
        let peers = (2...32).map { "node\($0)" }
        cursor = 7
        var asked: [String: Int] = [:]
        let rounds = (peers.count + ClusterDaemon.alertPullFanout - 1) / ClusterDaemon.alertPullFanout
        for _ in 0..<rounds {
            let targets = ClusterDaemon.peersInTurn(connected: peers, fanout: ClusterDaemon.alertPullFanout, cursor: &cursor)
            #expect(targets.count == ClusterDaemon.alertPullFanout)
            #expect(Set(targets).count == targets.count, "no peer twice in one round")
            for peer in targets { asked[peer, default: 0] += 1 }
        }
        #expect(Set(asked.keys) == Set(peers), "every peer is asked within \(rounds) periods")
        #expect(asked.values.max() ?? 0 <= 2)
        // The set of connected peers shrinking between rounds never goes out of range.
        cursor = 1_000
        #expect(ClusterDaemon.peersInTurn(connected: Array(peers.prefix(5)), fanout: 2, cursor: &cursor).count == 2)
    }

    @Test func aBurstInALargeClusterIsPushedAtMostOncePerGap() {
        let now = ContinuousClock.now
        let large = 31
        #expect(ClusterDaemon.alertPushWait(lastPush: nil, now: now, peers: large) == ClusterDaemon.alertPushDelay)
        let justPushed = ClusterDaemon.alertPushWait(lastPush: now - .milliseconds(200), now: now, peers: large)
        #expect(justPushed == ClusterDaemon.alertPushGap - .milliseconds(200))
        #expect(ClusterDaemon.alertPushWait(lastPush: now - .seconds(5), now: now, peers: large) == ClusterDaemon.alertPushDelay)
        // A cluster of five servers pushes every entry after the short delay, as before.
        #expect(ClusterDaemon.alertPushWait(lastPush: now - .milliseconds(200), now: now, peers: 4) == ClusterDaemon.alertPushDelay)
        for _ in 0..<20 {
            let pause = ClusterDaemon.alertSyncPause()
            #expect(pause >= ClusterDaemon.alertSyncPeriod * 0.8 && pause <= ClusterDaemon.alertSyncPeriod * 1.2)
        }
    }

    @Test func pullsAndPushesAreAnsweredFromTheStoreAlone() async throws {
        try await withTemporaryFolder { (folder: String) async throws in
            let servers = ["node1", "node2", "node3"]
            let here = ClusterAlertLog(directory: folder + "/1", me: "node1", servers: servers, recordsPerFile: 100)
            let peer = ClusterAlertLog(directory: folder + "/2", me: "node2", servers: servers, recordsPerFile: 100)
            let own = (1...3).map { here.appendOwn(ClusterAlertLogTests.line("node1", $0)) }

            // A pull: the peer's summary in, the entries it lacks out.
            let pull = ControlRequest(peerName: "node2", payload: WireJSON.encode(PeerRequest.alertSync(peer.summary())))
            let answer = try #require(ClusterDaemon.answerAlertExchange(pull, alerts: here))
            guard case .alertEntries(let entries, let more) = try WireJSON.decode(PeerResponse.self, from: answer) else {
                Issue.record("not an alert answer")
                return
            }
            #expect(Set(entries) == Set(own) && !more)

            // A push: the sender's own entries are stored, a third server's are not.
            let theirs = peer.appendOwn(ClusterAlertLogTests.line("node2", 4))
            let forged = ReplicatedAlert(origin: "node3", run: 1, seq: 1, line: ClusterAlertLogTests.line("node3", 5))
            let push = ControlRequest(peerName: "node2", payload: WireJSON.encode(PeerRequest.alertPush([theirs, forged])))
            #expect(ClusterDaemon.answerAlertExchange(push, alerts: here) != nil)
            #expect(here.newest(limit: 10, origin: "node2") == [theirs])
            #expect(here.newest(limit: 10, origin: "node3").isEmpty)

            // Anything else goes to the daemon.
            let status = ControlRequest(peerName: "node2", payload: WireJSON.encode(PeerRequest.status))
            #expect(ClusterDaemon.answerAlertExchange(status, alerts: here) == nil)
            let garbage = ControlRequest(peerName: "node2", payload: Array(#"{"alertSync":{"nonsense":1}}"#.utf8))
            #expect(ClusterDaemon.answerAlertExchange(garbage, alerts: here) == nil)
        }
    }

    @Test func largeClustersAcceptMoreControlConnections() {
        #expect(ClusterDaemon.controlConnectionLimit(servers: 2) == 64)
        #expect(ClusterDaemon.controlConnectionLimit(servers: 32) == 128)
    }
}
