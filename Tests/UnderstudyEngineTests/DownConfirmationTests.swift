import Testing
import UnderstudyModel

@testable import UnderstudyEngine

/// A confirmation that a server is down holds for that loss only: once the server is heard up
/// again it is forgotten on every server, master or not. Kept, it would let a server that
/// becomes master later take the returned server's groups over at once after its next loss,
/// without the timeout and margin that let that server fence first (simulator seed 288001563).
@Suite("Down confirmations")
struct DownConfirmationTests {
    /// s2 of two servers, started, one heartbeat sent; s1 not heard yet.
    static func s2() throws -> ServerEngine {
        let config = try ConfigLoader.load(
            yaml: """
                cluster: {name: c, secret-file: /etc/understudy/test.key, timing: {heartbeat-interval: 500ms, heartbeat-timeout: 3s, sync-wait: 0s}}
                servers: [{name: s1}, {name: s2}]
                heartbeats: [{name: lan1, type: lanhb, addresses: {s1: 10.0.0.1, s2: 10.0.0.2}}]
                """, sourcePath: "confirmations.yaml")
        var engine = ServerEngine(config: config, me: "s2", bootID: 2, configHash: "h")
        _ = engine.startService(now: .zero)
        _ = engine.makeHeartbeat(now: .milliseconds(500))
        return engine
    }

    @Test("a server that is not master forgets its confirmation when the confirmed server is heard up again")
    func forgottenWhenHeardAgain() throws {
        var engine = try Self.s2()
        // From an earlier loss of s1, confirmed while s2 was master.
        engine.placement.downConfirmedAt["s1"] = .seconds(1)

        // s1 is heard again, as the master (it ranks first), hearing s2: s2 follows it, so
        // s2's own placement does not run. The next step forgets the confirmation all the same.
        let directory = Directory(epoch: Epoch(term: 1, master: "s1"), version: 1, startupDone: true)
        let heartbeat = Heartbeat(
            sender: "s1", bootID: 1, run: 1, sentAt: .seconds(1), configHash: "h", priority: 0, syncDone: true,
            hears: ["s2": HeardHeartbeat(bootID: 2, sentAt: .milliseconds(500), upSince: .zero)], view: ["s1", "s2"],
            epoch: directory.epoch, appliedVersion: 1, directory: directory)
        _ = engine.handle(.heartbeat(heartbeat, path: "lan1"), now: .seconds(1))
        _ = engine.handle(.tick, now: .milliseconds(1_100))
        #expect(engine.currentMaster(now: .milliseconds(1_100)) == "s1")
        #expect(engine.placement.downConfirmedAt["s1"] == nil)
    }

    /// Simulator seed 23121638: a partition healed as both sides judged each other down; the
    /// datagrams that came back waited for their state, and the confirmation made before them
    /// let the takeover go ahead.
    @Test(
        "a confirmation is forgotten when the confirmed server is present again without being heard (another key, its state not fetched)",
        arguments: ["another key", "without state"])
    func forgottenWhenPresentAgain(how: String) throws {
        var engine = try Self.s2()
        engine.placement.downConfirmedAt["s1"] = .seconds(1)
        _ = engine.handle(.tick, now: .milliseconds(1_100))
        #expect(engine.placement.downConfirmedAt["s1"] == .seconds(1), "s1 is not heard: the confirmation holds")
        let event: EngineEvent =
            how == "another key" ? .unauthenticatedHeartbeats(from: ["s1"]) : .heartbeatsWithoutState(from: ["s1"])
        _ = engine.handle(event, now: .milliseconds(1_200))
        _ = engine.handle(.tick, now: .milliseconds(1_300))
        #expect(engine.placement.downConfirmedAt["s1"] == nil)
    }
}
