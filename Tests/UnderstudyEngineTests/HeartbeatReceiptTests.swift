import Testing
import UnderstudyEngine
import UnderstudyModel

/// A heartbeat that says what the sender's previous one said (a keepalive) only refreshes the
/// sender's liveness: the Engine skips its full step, and the next tick does what the passing
/// time asks. A heartbeat with news is acted on at once.
@Suite("Heartbeat receipt: keepalives and news")
struct HeartbeatReceiptTests {
    /// s2, itself still in its sync wait (a peer whose wait is over would end s1's at once).
    static func heartbeat(sentAt: EngineTime, echo: EngineTime = .zero) -> Heartbeat {
        Heartbeat(
            sender: "s2", bootID: 9, run: 1, sentAt: sentAt, configHash: "h", priority: 1, syncDone: false,
            hears: ["s1": HeardHeartbeat(bootID: 1, sentAt: echo, upSince: .zero)], view: ["s1", "s2"],
            groups: ["g": GroupReport(status: .offline)])
    }

    @Test("only the send time and the echoed send times may differ between a keepalive and the heartbeat before it")
    func keepaliveFields() {
        let first = Self.heartbeat(sentAt: .seconds(1), echo: .milliseconds(900))
        #expect(Self.heartbeat(sentAt: .seconds(2), echo: .milliseconds(1900)).saysTheSame(as: first))

        // Every other member is news. A member added to `Heartbeat` must be compared by
        // `saysTheSame` (or listed here as not news): this list is checked against the type.
        let changes: [String: (inout Heartbeat) -> Void] = [
            "sender": { $0.sender = "s3" },
            "bootID": { $0.bootID += 1 },
            "run": { $0.run += 1 },
            "configHash": { $0.configHash = "other" },
            "priority": { $0.priority = 2 },
            "serviceUp": { $0.serviceUp.toggle() },
            "leaving": { $0.leaving.toggle() },
            "autoStartSuppressed": { $0.autoStartSuppressed.toggle() },
            "syncDone": { $0.syncDone.toggle() },
            "hears": { $0.hears["s1"]?.upSince = .seconds(1) },
            "view": { $0.view = ["s2"] },
            "awaitingVouch": { $0.awaitingVouch.toggle() },
            "epoch": { $0.epoch = Epoch(term: 1, master: "s1") },
            "appliedVersion": { $0.appliedVersion += 1 },
            "groups": { $0.groups["g"] = GroupReport(status: .online) },
            "monitors": { $0.monitors = ["w": .error] },
            "directory": { $0.directory = Directory(epoch: Epoch(term: 1, master: "s2")) },
            "clusterStopRequested": { $0.clusterStopRequested = true },
            "waitsFor": { $0.waitsFor = ["s3"] },
            "configVersion": { $0.configVersion = 7 },
            "configOutsider": { $0.configOutsider = true },
            "timeoutRatio": { $0.timeoutRatio = TimeoutRatio(ratio: 2, setAt: 1) },
            "judgeTimeout": { $0.judgeTimeout = .seconds(9) },
        ]
        let notNews: Set<String> = ["sentAt"]
        let members = Set(Mirror(reflecting: first).children.compactMap(\.label))
        #expect(members == Set(changes.keys).union(notNews), "members of Heartbeat not covered: \(members.subtracting(changes.keys))")
        for (member, change) in changes {
            var changed = first
            change(&changed)
            #expect(!changed.saysTheSame(as: first), "a change of \(member) is news")
        }
        // Another peer heard, or a peer's new boot, is news too.
        var more = first
        more.hears["s3"] = HeardHeartbeat(bootID: 3, sentAt: .zero)
        #expect(!more.saysTheSame(as: first))
        var rebooted = first
        rebooted.hears["s1"]?.bootID = 2
        #expect(!rebooted.saysTheSame(as: first))
    }

    @Test("a keepalive when the sync wait runs out changes nothing; the tick at that time ends the wait; news would have")
    func keepaliveDefersToTick() throws {
        // Three servers; s3 never comes: s1 waits the whole sync wait (5 s) while s2 is heard.
        let config = try ConfigLoader.load(
            yaml: """
                cluster: {name: c, secret-file: /etc/understudy/test.key, timing: {heartbeat-interval: 500ms, heartbeat-timeout: 3s, sync-wait: 5s}}
                servers: [{name: s1}, {name: s2}, {name: s3}]
                heartbeats: [{name: lan1, type: lanhb, addresses: {s1: 10.0.0.1, s2: 10.0.0.2, s3: 10.0.0.3}}]
                """, sourcePath: "receipt.yaml")
        func engineHeardFromS2UntilJustBeforeTheWaitEnds() -> ServerEngine {
            var engine = ServerEngine(config: config, me: "s1", bootID: 1, configHash: "h")
            _ = engine.startService(now: .zero)
            var sentAt: EngineTime = .zero
            for tenth in stride(from: 1, through: 49, by: 1) {
                let now = EngineTime.milliseconds(100 * tenth)
                if tenth % 5 == 0 {
                    sentAt = now
                    _ = engine.makeHeartbeat(now: now)
                    _ = engine.handle(.heartbeat(Self.heartbeat(sentAt: now, echo: sentAt), path: "lan1"), now: now)
                } else {
                    _ = engine.handle(.tick, now: now)
                }
            }
            return engine
        }
        let ended = "Sync wait expired"
        let rendered = { (actions: [EngineAction]) in actions.map { "\($0)" }.joined(separator: "\n") }
        let at = EngineTime.milliseconds(5_050)

        var keepalive = engineHeardFromS2UntilJustBeforeTheWaitEnds()
        let afterKeepalive = keepalive.handle(.heartbeat(Self.heartbeat(sentAt: at, echo: .milliseconds(4_500)), path: "lan1"), now: at)
        #expect(afterKeepalive.isEmpty, "\(rendered(afterKeepalive))")
        let tick = keepalive.handle(.tick, now: at)
        #expect(rendered(tick).contains(ended), "\(rendered(tick))")

        var news = engineHeardFromS2UntilJustBeforeTheWaitEnds()
        var report = Self.heartbeat(sentAt: at, echo: .milliseconds(4_500))
        report.groups = [:]
        let afterNews = news.handle(.heartbeat(report, path: "lan1"), now: at)
        #expect(rendered(afterNews).contains(ended), "\(rendered(afterNews))")
    }
}
