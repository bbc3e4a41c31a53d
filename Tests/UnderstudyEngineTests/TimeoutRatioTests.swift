import Testing
import UnderstudyModel

@testable import UnderstudyEngine

/// `clptoratio` in the Engine (TimeoutRatioSetting.swift): what an operator may type, the
/// newest setting winning everywhere, and the judge and lease timeouts that keep every server
/// safe while the servers disagree about the ratio.
@Suite("Timeout ratio (clptoratio)")
struct TimeoutRatioTests {
    static let minute: Int64 = 60_000

    @Test("what an operator may type: ratio 1–10000, time in m/h/d up to 30 days, none with ratio 1")
    func requestedSettings() throws {
        let now: Int64 = 1_000_000
        #expect(
            try TimeoutRatio.requested(ratio: 3, time: "90m", now: now).get()
                == TimeoutRatio(ratio: 3, expiresAt: now + 90 * Self.minute, setAt: now))
        #expect(try TimeoutRatio.requested(ratio: 2, time: "3h", now: now).get().expiresAt == now + 180 * Self.minute)
        #expect(try TimeoutRatio.requested(ratio: 2, time: "30d", now: now).get().expiresAt == now + 30 * 1440 * Self.minute)
        #expect(try TimeoutRatio.requested(ratio: 10_000, time: nil, now: now).get() == TimeoutRatio(ratio: 10_000, setAt: now))
        #expect(try TimeoutRatio.requested(ratio: 1, time: nil, now: now).get() == TimeoutRatio(ratio: 1, setAt: now))
        for (ratio, time, words) in [
            (0, nil, "1 to 10000"), (10_001, nil, "1 to 10000"), (-5, "1h", "1 to 10000"), (1, "1h", "ratio 1 resets"),
            (2, "31d", "at most 30 days"), (2, "721h", "at most 30 days"), (2, "0m", "more than 0"), (2, "5", "followed by m"),
            (2, "5s", "followed by m"), (2, "h", "more than 0"), (2, "-3h", "more than 0"), (2, "1.5h", "more than 0"),
        ] as [(Int, String?, String)] {
            switch TimeoutRatio.requested(ratio: ratio, time: time, now: now) {
            case .success(let setting): Issue.record("\(ratio) \(time ?? "-") accepted as \(setting)")
            case .failure(let error): #expect(error.description.contains(words), "\(ratio) \(time ?? "-"): \(error)")
            }
        }
    }

    @Test("the newest setting wins; at the same millisecond the smaller ratio; an expiry is the same reset everywhere")
    func newestWins() {
        let old = TimeoutRatio(ratio: 5, expiresAt: 9_000, setAt: 1_000)
        #expect(old.supersedes(nil))
        #expect(TimeoutRatio(ratio: 1, setAt: 1_001).supersedes(old))
        #expect(!TimeoutRatio(ratio: 9, setAt: 999).supersedes(old))
        #expect(TimeoutRatio(ratio: 2, setAt: 1_000).supersedes(old) && !old.supersedes(TimeoutRatio(ratio: 2, setAt: 1_000)))
        #expect(!old.supersedes(old))
        #expect(old.expiry == TimeoutRatio(ratio: 1, expiresAt: nil, setAt: 9_000))
        #expect(TimeoutRatio(ratio: 5, setAt: 1).expiry == nil)
    }

    /// s1 hears s2 (heartbeat every 500 ms up to `until`, each echoing s1's heartbeat of 100 ms before).
    static func membership(judge s2Judge: Duration? = nil, until: Int) -> Membership {
        var membership = Membership(me: "s1", servers: ["s1", "s2"], timeout: .seconds(3), usesMajority: false)
        for at in stride(from: 500, through: until, by: 500) {
            let heartbeat = Heartbeat(
                sender: "s2", bootID: 2, run: 1, sentAt: .milliseconds(at), configHash: "h", syncDone: true,
                hears: ["s1": HeardHeartbeat(bootID: 1, sentAt: .milliseconds(at - 100))], view: ["s1", "s2"], judgeTimeout: s2Judge)
            _ = membership.record(heartbeat, path: "lan1", now: .milliseconds(at + 10), myBootID: 1)
        }
        return membership
    }

    @Test("a raised judge timeout applies at once; a lowered one only after what was promised with the old one")
    func judgeTimeoutRaisedAtOnceLoweredLate() {
        var membership = Self.membership(until: 10_000)
        // Heard last at 10.01 s: down after 3 s of silence.
        #expect(membership.isUp("s2", now: .milliseconds(13_000)))
        #expect(!membership.isUp("s2", now: .milliseconds(13_020)))
        membership.setJudgeTimeout(.seconds(12), now: .milliseconds(10_500))
        #expect(membership.isUp("s2", now: .milliseconds(22_000)))
        #expect(!membership.isUp("s2", now: .milliseconds(22_020)))
        // Lowered back to 3 s at 12 s: s2's lease may count on 12 s from its last echo, so it
        // stays up until 12 s after it was last heard, not 3.
        membership.setJudgeTimeout(.seconds(3), now: .seconds(12))
        #expect(membership.judgeTimeout == .seconds(3))
        #expect(membership.isUp("s2", now: .milliseconds(22_000)))
        #expect(!membership.isUp("s2", now: .milliseconds(22_020)))
        // Heard again: the 3 s from then, and the old promise still, whichever is later.
        let later = Heartbeat(
            sender: "s2", bootID: 2, run: 1, sentAt: .seconds(13), configHash: "h", syncDone: true,
            hears: ["s1": HeardHeartbeat(bootID: 1, sentAt: .milliseconds(12_900))], view: ["s1", "s2"])
        _ = membership.record(later, path: "lan1", now: .milliseconds(13_010), myBootID: 1)
        #expect(membership.isUp("s2", now: .milliseconds(22_000)))
        #expect(!membership.isUp("s2", now: .milliseconds(22_020)))
    }

    @Test("a peer already judged down is brought back neither by lowering nor by raising the timeout; only by a new heartbeat")
    func verdictsStand() {
        var membership = Self.membership(until: 10_000)
        membership.setJudgeTimeout(.seconds(6), now: .seconds(10))
        #expect(!membership.isUp("s2", now: .seconds(17)))
        membership.setJudgeTimeout(.seconds(3), now: .seconds(17))
        #expect(!membership.isUp("s2", now: .seconds(17)))
        // Down at 13.01 s with 3 s; a raise to 12 s at 14 s would make its silence "short"
        // again (found by simulator seed 370: a frozen holder was vouched for after its
        // groups had failed over).
        var raised = Self.membership(until: 10_000)
        #expect(!raised.isUp("s2", now: .seconds(14)))
        raised.setJudgeTimeout(.seconds(12), now: .seconds(14))
        #expect(!raised.isUp("s2", now: .seconds(14)) && !raised.isConnected("s2", now: .seconds(14)))
        let back = Heartbeat(
            sender: "s2", bootID: 2, run: 1, sentAt: .seconds(15), configHash: "h", syncDone: true,
            hears: ["s1": HeardHeartbeat(bootID: 1, sentAt: .milliseconds(14_900))], view: ["s1", "s2"])
        _ = raised.record(back, path: "lan1", now: .milliseconds(15_010), myBootID: 1)
        #expect(raised.isUp("s2", now: .seconds(26)))
        #expect(raised.peers["s2"]?.upSince == .seconds(15), "a new up-period: the stall vouch sees the break")
    }

    @Test("the lease counts on the timeout the peer says it judges by, never more than 10000 times the configured one")
    func leaseFollowsThePeersWord() {
        let plain = Self.membership(until: 10_000)
        #expect(plain.leaseFrom("s2") == .milliseconds(9_900 + 3_000))
        let extended = Self.membership(judge: .seconds(30), until: 10_000)
        #expect(extended.leaseFrom("s2") == .milliseconds(9_900 + 30_000))
        #expect(extended.lastLeaseFrom("s2") == .milliseconds(9_900 + 30_000))
        // Connected while the peer's own timeout of us runs, not ours.
        #expect(extended.isConnected("s2", now: .milliseconds(12_000)))
        // A peer saying less than the configured timeout is taken at the configured one (it
        // runs another file); one saying more than the largest ratio allows at that bound.
        #expect(Self.membership(judge: .seconds(1), until: 10_000).leaseFrom("s2") == .milliseconds(12_900))
        #expect(Self.membership(judge: .seconds(1_000_000), until: 10_000).leaseFrom("s2") == .milliseconds(9_900) + .seconds(30_000))
        let ping = PingResolver(targets: ["192.0.2.1"], timeout: .seconds(1))
        let lease = Lease.expiry(
            me: "s1", servers: ["s1", "s2"], membership: extended, ping: ping, lastSentAt: .milliseconds(9_900), timeout: .seconds(3),
            takeoverMargin: .milliseconds(500), now: .seconds(10))
        // Not beyond a joining peer's listening (the configured timeout after our newest heartbeat).
        #expect(lease == .milliseconds(12_900))
        let renewed = Lease.expiry(
            me: "s1", servers: ["s1", "s2"], membership: extended, ping: ping, lastSentAt: .milliseconds(20_000),
            timeout: .seconds(3), takeoverMargin: .milliseconds(500), now: .seconds(20))
        #expect(renewed == .seconds(23), "an echo of 9.9 s still binds s2 until 40.4 s")
    }

    static let config: ClusterConfig = {
        do {
            return try ConfigLoader.load(
                yaml: """
                    cluster: {name: c, secret-file: /etc/understudy/test.key, timing: {heartbeat-interval: 500ms, heartbeat-timeout: 3s, sync-wait: 0s}}
                    servers: [{name: s1}, {name: s2}]
                    heartbeats: [{name: lan1, type: lanhb, addresses: {s1: 10.0.0.1, s2: 10.0.0.2}}]
                    network-partition: [{name: ping1, type: pingnp, targets: [192.0.2.1]}]
                    monitors:
                      - {name: disk1, type: diskw, device: /dev/null, interval: 10s, timeout: 20s, recovery: {target: local-server, final-action: none}}
                    """, sourcePath: "toratio.yaml")
        } catch {
            fatalError("\(error)")
        }
    }()

    @Test("clptoratio on one server: it takes the setting, persists it, says it in its heartbeats; a peer takes the newer one")
    func settingTravelsInHeartbeats() {
        var s1 = ServerEngine(config: Self.config, me: "s1", bootID: 1, configHash: "h")
        var s2 = ServerEngine(config: Self.config, me: "s2", bootID: 2, configHash: "h")
        _ = s1.startService(now: .zero)
        _ = s2.startService(now: .zero)
        let setting = TimeoutRatio(ratio: 4, expiresAt: 99_000, setAt: 5_000)
        let (disposition, actions) = s1.command(.setTimeoutRatio(setting), origin: "s1", now: .seconds(1))
        guard case .done(let result) = disposition else {
            Issue.record("forwarded: \(disposition)")
            return
        }
        #expect(result.code == .success, "\(result.message)")
        #expect(
            actions.contains {
                if case .persist(let state) = $0 { return state.timeoutRatio == setting && state.listenRatio == 4 } else { return false }
            })
        #expect(s1.judgeTimeout == .seconds(12) && s1.timeoutRatio == 4)
        let heartbeat = s1.makeHeartbeat(now: .seconds(1))
        #expect(heartbeat.timeoutRatio == setting && heartbeat.judgeTimeout == .seconds(12))
        // An older setting is refused with a reason.
        let (older, _) = s1.command(.setTimeoutRatio(TimeoutRatio(ratio: 2, setAt: 4_000)), origin: "s1", now: .seconds(1))
        #expect(older == .done(CommandResult(.failed, "A newer timeout ratio setting is already in force on s1; clptoratio -s shows it.")))
        let (invalid, _) = s1.command(.setTimeoutRatio(TimeoutRatio(ratio: 0, setAt: 6_000)), origin: "s1", now: .seconds(1))
        if case .done(let refusal) = invalid { #expect(refusal.code == .badUsage) } else { Issue.record("\(invalid)") }

        let taken = s2.handle(.heartbeat(heartbeat, path: "lan1"), now: .milliseconds(1_010))
        #expect(s2.timeoutRatio == 4 && s2.judgeTimeout == .seconds(12))
        #expect(
            taken.contains { if case .log(let entry) = $0 { return entry.module == "cl" && entry.eventID == 20 } else { return false } })
        // Its running monitors would get the new timeout (none runs before the cluster forms).
        #expect(s2.snapshot(now: .milliseconds(1_010)).timeoutRatio?.perServer == ["s1": 4, "s2": 4])
    }

    @Test("a running monitor is started again with the same run and the new ratio; its delay warning scales too")
    func monitorsGetTheRatio() {
        var engine = ServerEngine(config: Self.config, me: "s1", bootID: 1, configHash: "h")
        var actions = engine.startService(now: .zero)
        var now = EngineTime.zero
        while now < .seconds(8) {
            now += .milliseconds(250)
            actions += engine.handle(.tick, now: now)
        }
        let started = actions.compactMap { action -> MonitorStart? in
            if case .startMonitor(let start) = action { return start } else { return nil }
        }
        guard let first = started.first else {
            Issue.record("the monitor did not start: \(actions)")
            return
        }
        #expect(first.timeoutRatio == 1)
        let (_, after) = engine.command(.setTimeoutRatio(TimeoutRatio(ratio: 3, setAt: 1)), origin: "s1", now: now)
        let again = after.compactMap { action -> MonitorStart? in
            if case .startMonitor(let start) = action { return start } else { return nil }
        }
        #expect(again == [MonitorStart(monitor: "disk1", run: first.run, timeoutRatio: 3)])
    }

    @Test("after a restart a server listens for the largest timeout it may have promised; a finished lowering lets it listen less")
    func listeningAfterRestart() {
        var engine = ServerEngine(config: Self.config, me: "s1", bootID: 1, configHash: "h")
        _ = engine.startService(now: .zero)
        _ = engine.command(.setTimeoutRatio(TimeoutRatio(ratio: 5, setAt: 1)), origin: "s1", now: .seconds(1))
        _ = engine.command(.setTimeoutRatio(TimeoutRatio(ratio: 1, setAt: 2)), origin: "s1", now: .seconds(2))
        #expect(engine.judgeTimeout == .seconds(3))
        // Until the old 15 s (and an interval) have passed, a restart listens 15 s.
        #expect(engine.persistent.listenRatio == 5)
        let restarted = ServerEngine(config: Self.config, me: "s1", bootID: 3, configHash: "h", persisted: engine.persistent)
        #expect(restarted.listenTimeout == .seconds(15))
        var now = EngineTime.seconds(2)
        var persisted: PersistentState?
        while now < .seconds(18) {
            now += .milliseconds(250)
            for case .persist(let state) in engine.handle(.tick, now: now) { persisted = state }
        }
        #expect(persisted?.listenRatio == nil, "the lowering is over: \(String(describing: persisted))")
        let later = ServerEngine(config: Self.config, me: "s1", bootID: 4, configHash: "h", persisted: engine.persistent)
        #expect(later.listenTimeout == .seconds(3))
    }
}
