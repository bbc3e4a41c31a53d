import Testing
import UnderstudyModel
import UnderstudySimulator

@testable import UnderstudyEngine

/// The binary heartbeat (HeartbeatWire.swift) and its state sync (HeartbeatStateSync.swift):
/// every field survives the encoding, malformed bytes are refused without a trap, and a
/// receiver delivers exactly the heartbeats its sender made, with their state.
@Suite("Heartbeat wire format and state sync")
struct HeartbeatWireTests {
    static let config = Simulation.config(servers: 5)

    /// A heartbeat with every field set, and a tiny one.
    static var full: Heartbeat { HeartbeatBudget.largestHeartbeat(of: "s2", in: config) }
    static var minimal: Heartbeat { Heartbeat(sender: "a", bootID: 1, sentAt: .milliseconds(5), configHash: "h") }

    static func report(_ status: ActivationStatus, generation: UInt64 = 1) -> GroupReport {
        GroupReport(status: status, resources: ["fip": status, "exec": status], generation: generation)
    }

    static func heartbeat(sender: ServerName = "a", boot: UInt64 = 7, at milliseconds: Int, groups: Int, online: Set<Int> = [])
        -> Heartbeat
    {
        var heartbeat = Heartbeat(sender: sender, bootID: boot, sentAt: .milliseconds(milliseconds), configHash: "h")
        for index in 0..<groups {
            heartbeat.groups["g\(index)"] = report(online.contains(index) ? .online : .offline)
        }
        return heartbeat
    }

    @Test("every field of the core survives the encoding, with and without optional fields")
    func coreRoundTrip() throws {
        for core in [Self.full, Self.minimal] {
            let datagram = HeartbeatDatagram(core: core, stateSeq: 42)
            let parsed = try HeartbeatWire.decode(HeartbeatWire.encode(datagram, inlineJSON: nil))
            #expect(parsed.core == core)
            #expect(parsed.stateSeq == 42)
            #expect(parsed.inline == nil)
        }
        // Negative and sub-nanosecond-free times, tri-state flags set to false.
        var odd = Self.minimal
        odd.sentAt = .seconds(-3) + .nanoseconds(17)
        odd.configOutsider = false
        odd.clusterStopRequested = false
        odd.priority = -1
        odd.timeoutRatio = TimeoutRatio(ratio: 3, expiresAt: nil, setAt: -5)
        #expect(try HeartbeatWire.decode(HeartbeatWire.encode(HeartbeatDatagram(core: odd, stateSeq: 0), inlineJSON: nil)).core == odd)
    }

    @Test("the core stays small: two servers well under a hundred bytes a server")
    func coreIsCompact() {
        let twoServers = HeartbeatBudget.largestHeartbeat(of: "s1", in: Simulation.config(servers: 2))
        let bytes = HeartbeatWire.encode(HeartbeatDatagram(core: twoServers, stateSeq: 1), inlineJSON: nil).count
        #expect(bytes < 300, "\(bytes) bytes")
    }

    @Test("truncated, mutated and random payloads are refused, never trap")
    func malformedPayloadsAreRefused() throws {
        var random = SeededRandom(seed: 19)
        let json = WireJSON.encode(StateDelta(from: 0, to: 3))
        let valid = HeartbeatWire.encode(
            HeartbeatDatagram(core: Self.full, stateSeq: 3, inline: StateDelta(from: 0, to: 3)), inlineJSON: json)
        for cut in 0..<valid.count {
            #expect(throws: (any Error).self) { try HeartbeatWire.decode(Array(valid.prefix(cut))) }
        }
        for _ in 0..<3_000 {
            var bytes = valid
            for _ in 0...Int.random(in: 0...4, using: &random) {
                bytes[Int.random(in: 0...(bytes.count - 1), using: &random)] = UInt8(Int.random(in: 0...255, using: &random))
            }
            // Either refused or decoded into some value: what matters is no trap.
            if let parsed = try? HeartbeatWire.decode(bytes) {
                _ = try? HeartbeatWire.datagram(from: parsed) { _, _, _ in true }
            }
        }
        for _ in 0..<3_000 {
            let bytes = (0..<Int.random(in: 0...200, using: &random)).map { _ in UInt8(Int.random(in: 0...255, using: &random)) }
            _ = try? HeartbeatWire.decode(bytes)
        }
        // Another version is refused by name.
        var other = valid
        other[0] = 1
        #expect(throws: (any Error).self) { try HeartbeatWire.decode(other) }
    }

    @Test("a keeper notice round-trips; truncated, mutated and random ones are refused, never trap; it is never a heartbeat")
    func keeperNotices() throws {
        let notice = KeeperNoticeWire.Notice(server: "node-2", instance: ServerInstance(boot: 1 << 40, run: 7))
        let valid = KeeperNoticeWire.encode(notice)
        #expect(try KeeperNoticeWire.decode(valid) == notice)
        #expect(KeeperNoticeWire.isNotice(valid))
        #expect(!KeeperNoticeWire.isNotice(HeartbeatWire.encode(HeartbeatDatagram(core: Self.full, stateSeq: 1), inlineJSON: nil)))
        #expect(throws: (any Error).self) { try HeartbeatWire.decode(valid) }
        for cut in 0..<valid.count {
            #expect(throws: (any Error).self) { try KeeperNoticeWire.decode(Array(valid.prefix(cut))) }
        }
        var random = SeededRandom(seed: 83)
        for _ in 0..<3_000 {
            var bytes = valid
            for _ in 0...Int.random(in: 0...3, using: &random) {
                bytes[Int.random(in: 0...(bytes.count - 1), using: &random)] = UInt8(Int.random(in: 0...255, using: &random))
            }
            _ = try? KeeperNoticeWire.decode(bytes)
            let noise = (0..<Int.random(in: 0...64, using: &random)).map { _ in UInt8(Int.random(in: 0...255, using: &random)) }
            _ = try? KeeperNoticeWire.decode([KeeperNoticeWire.marker] + noise)
        }
        var other = valid
        other[1] = 2
        #expect(throws: (any Error).self) { try KeeperNoticeWire.decode(other) }
    }

    @Test("a datagram stays bounded whatever the number of groups")
    func datagramsAreBounded() {
        var outbox = HeartbeatOutbox()
        var encoder = HeartbeatEncoder()
        var largest = 0
        for step in 0..<40 {
            // Every step changes 50 of 1,000 groups: deltas too large to travel inline.
            let online = Set((0..<1_000).filter { ($0 + step) % 20 == 0 })
            let datagram = outbox.prepare(Self.heartbeat(at: step * 20, groups: 1_000, online: online))
            largest = max(largest, encoder.encode(datagram).count)
        }
        #expect(largest <= HeartbeatOutbox.inlineLimit + 512, "\(largest) bytes")
        // Idle: nothing changes, so only the core travels.
        let idle = Self.heartbeat(at: 10_000, groups: 1_000, online: [])
        for _ in 0..<HeartbeatOutbox.repeatCount + 1 { _ = outbox.prepare(idle) }
        #expect(encoder.encode(outbox.prepare(idle)).count < 100)
    }

    @Test("a receiver that hears every datagram delivers every heartbeat complete, without fetching")
    func inlineDeltasKeepUp() {
        var outbox = HeartbeatOutbox()
        var inbox = HeartbeatInbox(fetchTimeout: .milliseconds(100))
        // The first: the whole state (800 groups) is too large inline, so one fetch.
        let first = Self.heartbeat(at: 0, groups: 800)
        guard case .fetch(since: 0, _) = inbox.receive(outbox.prepare(first), now: .zero) else {
            Issue.record("the first datagram of a large state must ask for it")
            return
        }
        let reply = outbox.reply(since: 0, of: first.instance)
        #expect(reply.flatMap { inbox.receive(reply: $0, now: .milliseconds(1)) } == first)
        for step in 1..<30 {
            let heartbeat = Self.heartbeat(at: step * 20, groups: 800, online: [step % 800, (step * 7) % 800])
            let outcome = inbox.receive(outbox.prepare(heartbeat), now: .milliseconds(step * 20))
            #expect(outcome == .deliver(heartbeat), "step \(step)")
        }
    }

    @Test("a receiver that lost datagrams fetches once and then delivers; late copies are not delivered")
    func lostDatagramsAreFetched() throws {
        var outbox = HeartbeatOutbox()
        var inbox = HeartbeatInbox(fetchTimeout: .milliseconds(100))
        var sent: [HeartbeatDatagram] = []
        var made: [Heartbeat] = []
        for step in 0..<12 {
            let heartbeat = Self.heartbeat(at: step * 20, groups: 800, online: Set([step]))
            made.append(heartbeat)
            sent.append(outbox.prepare(heartbeat))
        }
        // Hears only the last: its inline delta starts later than anything it has.
        let outcome = inbox.receive(sent[11], now: .milliseconds(220))
        #expect(outcome == .fetch(since: 0, of: made[11].instance))
        // While the fetch is under way, another copy waits.
        #expect(inbox.receive(sent[11], now: .milliseconds(230)) == .held)
        let reply = try #require(outbox.reply(since: 0, of: made[11].instance))
        #expect(inbox.receive(reply: reply, now: .milliseconds(240)) == made[11])
        // A late copy of an older datagram is not delivered (its state is gone here).
        #expect(inbox.receive(sent[3], now: .milliseconds(250)) == .late)
        // The same datagram on another path: delivered again (the Engine dedups it).
        #expect(inbox.receive(sent[11], now: .milliseconds(260)) == .deliver(made[11]))
    }

    @Test("a restarted sender's state replaces the old one entirely")
    func restartedSenderStartsOver() throws {
        var outbox = HeartbeatOutbox()
        var inbox = HeartbeatInbox(fetchTimeout: .milliseconds(100))
        let before = Self.heartbeat(boot: 1, at: 0, groups: 3, online: [0, 1, 2])
        #expect(inbox.receive(outbox.prepare(before), now: .zero) == .deliver(before))
        var restarted = HeartbeatOutbox()
        var after = Self.heartbeat(boot: 2, at: 100, groups: 2)
        after.directory = Directory(epoch: Epoch(term: 1, master: "a"), version: 3, entries: ["g0": DirectoryEntry(wanted: true)])
        // Tiny state: the whole of it travels in every datagram.
        #expect(inbox.receive(restarted.prepare(after), now: .milliseconds(100)) == .deliver(after))
    }

    @Test("removed reports, monitors and directories do not linger at the receiver")
    func removalsTravel() {
        var outbox = HeartbeatOutbox()
        var inbox = HeartbeatInbox(fetchTimeout: .milliseconds(100))
        var heartbeat = Self.heartbeat(at: 0, groups: 2)
        heartbeat.monitors = ["m1": .error, "m2": .caution]
        heartbeat.directory = Directory(
            epoch: Epoch(term: 2, master: "a"), version: 5,
            entries: ["g0": DirectoryEntry(wanted: true, owner: "a"), "g1": DirectoryEntry(wanted: true)])
        #expect(inbox.receive(outbox.prepare(heartbeat), now: .zero) == .deliver(heartbeat))
        heartbeat.sentAt = .milliseconds(20)
        heartbeat.monitors = ["m2": .caution]
        heartbeat.groups["g1"] = nil
        heartbeat.directory?.entries["g1"] = nil
        heartbeat.directory?.version = 6
        #expect(inbox.receive(outbox.prepare(heartbeat), now: .milliseconds(20)) == .deliver(heartbeat))
        heartbeat.sentAt = .milliseconds(40)
        heartbeat.monitors = nil
        heartbeat.directory = nil
        #expect(inbox.receive(outbox.prepare(heartbeat), now: .milliseconds(40)) == .deliver(heartbeat))
    }

    @Test("a delta applies to any state between its ends; from a large state, removals included")
    func deltasApplyAcrossGaps() throws {
        var outbox = HeartbeatOutbox()
        var inbox = HeartbeatInbox(fetchTimeout: .milliseconds(100))
        var heartbeat = Self.heartbeat(at: 0, groups: 800)
        _ = inbox.receive(outbox.prepare(heartbeat), now: .zero)
        let whole = try #require(outbox.reply(since: 0, of: heartbeat.instance))
        #expect(inbox.receive(reply: whole, now: .zero) == heartbeat)
        // Two changes; the receiver hears only the datagram after the second.
        heartbeat.sentAt = .milliseconds(20)
        heartbeat.groups["g5"] = Self.report(.online)
        _ = outbox.prepare(heartbeat)
        heartbeat.sentAt = .milliseconds(40)
        heartbeat.groups["g6"] = nil
        let datagram = outbox.prepare(heartbeat)
        #expect(datagram.inline?.from == 1)
        #expect(inbox.receive(datagram, now: .milliseconds(40)) == .deliver(heartbeat))
    }

    @Test("a busy sender whose changes pile up puts the delta since its previous heartbeat inline, and nothing when even that is too large")
    func inlineFallsBackToTheDeltaSinceThePreviousHeartbeat() {
        // Every changed group counts 10,000 bytes: three fit the inline limit, five do not.
        var outbox = HeartbeatOutbox(measure: { ($0.groups?.count ?? 0) * 10_000 })
        var inbox = HeartbeatInbox(fetchTimeout: .milliseconds(100))
        var heartbeat = Self.heartbeat(at: 0, groups: 12)
        func change(_ indexes: [Int], at milliseconds: Int) -> HeartbeatDatagram {
            heartbeat.sentAt = .milliseconds(milliseconds)
            for index in indexes { heartbeat.groups["g\(index)"] = Self.report(.online, generation: UInt64(milliseconds)) }
            return outbox.prepare(heartbeat)
        }
        // The whole state (12 groups) is too large: the first datagram carries nothing inline.
        let first = outbox.prepare(heartbeat)
        #expect(first.stateSeq == 1 && first.inline == nil)
        guard case .fetch(since: 0, _) = inbox.receive(first, now: .zero) else {
            Issue.record("the first datagram of a large state must ask for it")
            return
        }
        let whole = outbox.reply(since: 0, of: heartbeat.instance)
        #expect(whole.flatMap { inbox.receive(reply: $0, now: .milliseconds(1)) } == heartbeat)
        // Three groups change: the delta since the oldest of the last heartbeats fits.
        let second = change([0, 1, 2], at: 20)
        #expect(second.inline?.from == 1 && second.inline?.to == 2)
        #expect(inbox.receive(second, now: .milliseconds(20)) == .deliver(heartbeat))
        // Three more: since that one it is six groups, too large; since the previous heartbeat
        // it is three, which fits — a receiver that heard the previous one keeps up.
        let third = change([3, 4, 5], at: 40)
        #expect(third.inline?.from == 2 && third.inline?.to == 3)
        #expect(inbox.receive(third, now: .milliseconds(40)) == .deliver(heartbeat))
        // Five at once: not even the delta since the previous heartbeat fits; receivers fetch.
        let fourth = change([6, 7, 8, 9, 10], at: 60)
        #expect(fourth.inline == nil && fourth.stateSeq == 4)
        guard case .fetch(since: 3, _) = inbox.receive(fourth, now: .milliseconds(60)) else {
            Issue.record("a change too large to travel inline must be fetched from the state the receiver has")
            return
        }
        let reply = outbox.reply(since: 3, of: heartbeat.instance)
        #expect(reply?.inline?.groups?.count == 5, "the fetch brings only what changed")
        #expect(reply.flatMap { inbox.receive(reply: $0, now: .milliseconds(61)) } == heartbeat)
    }
}
