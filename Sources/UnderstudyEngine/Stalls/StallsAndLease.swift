import UnderstudyModel

// A server tells its own stalls from its peers' silence (the failure detector), and knows
// until when nobody can take its groups over (its lease).
//
// Stalls. The Node delivers an event at least every `tickPeriod` — while ticks are quiet
// (QuietTicks.swift), by `quietUntil` or a heartbeat interval after the previous event,
// whichever is first. An event later than that by more than a tick period means this process
// did not run (SIGSTOP, VM pause, CPU starvation). How late it is is credited to the failure
// detector: a peer's silence while this server
// was not running proves nothing, and the peer's heartbeats of that time may still be queued
// in the socket. So a peer is judged down only after a timeout of this server's *running*
// time. The credit only ever delays a verdict, never hastens one.
//
// Waking up. The peers did not see the stall: if this server's lease ran out meanwhile (a
// peer it was connected to has not heard it for a timeout), the peer may have declared it
// down and taken its groups over. Invariant I2: it then acts on nothing until it knows. It
// holds still (no placement, no scripts, no partition verdict), sends a heartbeat asking to
// be vouched for, and waits at most `holdLimit`:
// - every peer it was connected to answers with an echo of a heartbeat sent after the wake
//   and says it judged this server up without a break since before the stall (`upSince`):
//   nobody declared it down, nothing was taken over; it goes on as if nothing happened
//   (a stall of the whole VM, where every server froze together, costs no failover);
// - a peer says it declared this server down, or the time runs out: it fences its groups at
//   once and rejoins like a server that was cut off.
// While it holds, it counts as still frozen (its lease has expired, see `leaseExpiry`).

/// A server waking from a stall during which its lease ran out.
struct StallHold: Sendable, Equatable {
    var since: EngineTime
    var deadline: EngineTime
    /// Peers connected before the stall, with this server's `sentAt` each had echoed then.
    var echoedBefore: [ServerName: EngineTime]
    /// The stall, for the log.
    var stall: Duration
}

/// This server's own stalls: the gaps between events, and the hold after a stall that cost
/// it its lease. Owned by the engine; membership gets the stall credit, the engine fences.
struct StallDetector: Sendable, Equatable {
    /// The Node delivers an event (at least a tick) this often.
    let tickPeriod: Duration
    /// How long a server waking from a stall waits to be vouched for.
    let holdLimit: Duration
    /// A gap longer than this is a stall: two tick periods (computed once, asked per event).
    let stallThreshold: Duration

    /// While ticks are quiet (QuietTicks.swift) the Node may leave this long between events,
    /// but no longer than until `quietUntil`: its heartbeat loop ticks every heartbeat
    /// interval whatever else sleeps.
    let quietGapLimit: Duration

    init(tickPeriod: Duration, holdLimit: Duration, quietGapLimit: Duration) {
        self.tickPeriod = tickPeriod
        self.holdLimit = holdLimit
        self.stallThreshold = tickPeriod * 2
        self.quietGapLimit = max(quietGapLimit, tickPeriod)
    }
    /// When the previous event was handled (nil before the first).
    var lastEventAt: EngineTime?
    /// Holding still after a stall (see `StallHold`).
    var hold: StallHold?
    /// Stalls noticed since the Engine was made (`understudy_stalls_total`).
    var count: UInt64 = 0

    var isHolding: Bool { hold != nil }

    /// The time since the previous event.
    func gap(now: EngineTime) -> Duration? { lastEventAt.map { now - $0 } }

    /// When the Node was to deliver the next event at the latest: a tick period after the
    /// previous one; while ticks are quiet, at `quietUntil` or a heartbeat interval after the
    /// previous event, whichever comes first.
    func expectedBy(quietUntil: EngineTime) -> EngineTime? {
        guard let last = lastEventAt else { return nil }
        return max(last + tickPeriod, min(quietUntil, last + quietGapLimit))
    }

    /// The stall before an event at `now`: how late it is, when it is later than a tick period
    /// after it was expected (`expectedBy`). Without quiet ticks: the gap beyond the tick
    /// period, when the gap is longer than two tick periods. Ordinary timer lateness (a
    /// millisecond or so per tick) is no stall: crediting it would add up to a slower failure
    /// detector.
    func stall(before now: EngineTime, quietUntil: EngineTime) -> Duration? {
        guard let expected = expectedBy(quietUntil: quietUntil), now - expected > tickPeriod else { return nil }
        return now - expected
    }

    /// Starts holding after a stall: `echoedBefore` are the peers that can vouch.
    mutating func beginHold(after stall: Duration, echoedBefore: [ServerName: EngineTime], now: EngineTime) {
        hold = StallHold(since: now, deadline: now + holdLimit, echoedBefore: echoedBefore, stall: stall)
    }

    enum Verdict: Equatable {
        /// Not holding, or still waiting for an answer.
        case none
        /// Every peer answered and judged this server up throughout: the hold is over.
        case vouched
        /// A peer declared this server down meanwhile, or the answers did not come in time:
        /// the hold is over and the groups must go.
        case refused(stall: Duration, reason: String)
    }

    /// Judges the hold from the peers' echoes (`membership`) and ends it when decided.
    mutating func judge(membership: Membership, now: EngineTime) -> Verdict {
        guard let hold else { return .none }
        var waiting: [ServerName] = []
        for (peer, before) in hold.echoedBefore.sorted(by: { $0.key < $1.key }) {
            guard let echo = membership.peers.echo(of: peer), let echoed = echo.sentAt, echoed >= hold.since else {
                waiting.append(peer)
                continue
            }
            guard let upSince = echo.upSince, upSince <= before else {
                self.hold = nil
                return .refused(stall: hold.stall, reason: "\(peer) declared it down meanwhile")
            }
        }
        if waiting.isEmpty {
            self.hold = nil
            return .vouched
        }
        if now >= hold.deadline {
            self.hold = nil
            return .refused(stall: hold.stall, reason: "\(waiting.joined(separator: ", ")) did not answer in time")
        }
        return .none
    }

    /// At most this long a server waking from a stall waits to be vouched for.
    /// Enough for a peer to hear us and answer on a loaded machine; at most 2 s.
    static func holdLimit(interval: Duration, timeout: Duration) -> Duration {
        min(max(timeout, interval * 2 + .milliseconds(100)), .seconds(2))
    }
}

extension ServerEngine {
    /// Notes a stall (a gap between events longer than the tick period) before an event is
    /// handled, and starts holding when the lease ran out during it.
    mutating func noticeStall(now: EngineTime) {
        guard let last = stalls.lastEventAt, let stall = stalls.stall(before: now, quietUntil: quietUntil) else { return }
        stalls.count += 1
        // Who can vouch: every peer heard before the stall that had echoed us in its current
        // up-period (also one whose echo was already late: a starved peer, not a lost one).
        let connectedBefore = serverNames.filter { peer in
            peer != me && membership.isUp(peer, now: last) && membership.peers[peer]?.echoedSentAt != nil
        }
        let leaseBefore = leaseExpiry(now: last)
        membership.addStallCredit(stall)
        guard service != .stopped, !stalls.isHolding, serverNames.count > 1 else { return }
        // Only a lease that held before the stall and ran out during it is lost by it.
        guard let leaseBefore, leaseBefore <= now else { return }
        guard !connectedBefore.isEmpty else {
            giveUpAfterStall(stall, because: "no peer can vouch for it", now: now)
            return
        }
        var echoed: [ServerName: EngineTime] = [:]
        for peer in connectedBefore { echoed[peer] = membership.peers[peer]?.echoedSentAt }
        stalls.beginHold(after: stall, echoedBefore: echoed, now: now)
        log(
            .stallLeaseExpired,
            "\(me) did not run for \(stall.shortDescription); its lease ran out meanwhile: it acts on nothing until \(connectedBefore.joined(separator: ", ")) confirm they never declared it down (at most \(stalls.holdLimit.shortDescription)), or stops its groups."
        )
        heartbeatDirty = true
    }

    /// Ends the hold when the peers have answered: vouched for by all of them, or refused
    /// (or unanswered in time) by one.
    mutating func resolveStallHold(now: EngineTime) {
        // Nearly always: no hold to judge (and `judge` would be handed a copy of membership).
        guard stalls.isHolding else { return }
        switch stalls.judge(membership: membership, now: now) {
        case .none:
            break
        case .vouched:
            log(.stallVouched, "Every peer of \(me) judged it up throughout its stall: it goes on holding its groups.")
            heartbeatDirty = true
        case .refused(let stall, let reason):
            giveUpAfterStall(stall, because: reason, now: now)
        }
    }

    /// I2: after a stall this server cannot prove it was not replaced: it gives up its groups
    /// at once and rejoins with the running cluster's directory.
    mutating func giveUpAfterStall(_ stall: Duration, because reason: String, now: EngineTime) {
        stalls.hold = nil
        log(
            .partitionLost,
            "This server (\(me)) was stalled for \(stall.shortDescription), longer than its lease (\(reason)): stopping its groups at once."
        )
        fenceAll(reason: "stall")
        // Peers may have replaced us: forget what we knew and listen again for a whole
        // timeout before judging anyone down; no partition action for our own stall.
        membership.reset()
        startListening(now: now)
        majority.reset()
        directory = nil
        heartbeatDirty = true
    }

    /// How many stalls of this process (gaps between events over two tick periods) the
    /// Engine noticed since it was made.
    public var stallCount: UInt64 { stalls.count }

    /// True while this server holds still after a stall (see `StallHold`).
    public var isHoldingAfterStall: Bool { stalls.isHolding }

    /// Until when no other server can take this server's groups over, as far as this server
    /// can prove it from its peers' echoes and the partition rule; nil when it cannot (not
    /// running, cut off, holding after a stall, or a lost peer not yet resolved). Services
    /// that want to fence themselves read it from the lease file (`UNDERSTUDY_LEASE_FILE`).
    public func leaseExpiry(now: EngineTime) -> EngineTime? {
        guard service != .stopped, !stalls.isHolding, !isolated else { return nil }
        return Lease.expiry(
            me: me, servers: serverNames, membership: membership, ping: ping, lastSentAt: lastSentAt, timeout: timeout,
            takeoverMargin: takeoverMargin, now: now)
    }
}

extension Duration {
    /// "1.25 s", "340 ms".
    var shortDescription: String {
        let milliseconds = Double(components.seconds) * 1000 + Double(components.attoseconds) / 1e15
        if milliseconds >= 1000 { return "\((milliseconds / 10).rounded() / 100) s" }
        return "\(Int(milliseconds.rounded())) ms"
    }
}
