import UnderstudyModel

/// What this server knows about one peer from its heartbeats.
/// An immutable heartbeat shared by the copies of a peer's state.
final class ReportBox: Sendable, Equatable {
    let heartbeat: Heartbeat
    init(_ heartbeat: Heartbeat) { self.heartbeat = heartbeat }
    static func == (a: ReportBox, b: ReportBox) -> Bool { a === b || a.heartbeat == b.heartbeat }
}

/// When each heartbeat path of a peer last carried a new heartbeat (kept apart from
/// `PeerState`, which is copied on every read and should stay small).
struct PeerPaths: Sendable, Equatable {
    /// Local receipt time per heartbeat path.
    var lastHeard: [String: EngineTime] = [:]
    /// Sender's `sentAt` of the newest heartbeat per path.
    var lastSentAt: [String: EngineTime] = [:]
}

/// The peers' states by name. A cluster has at most a few dozen servers: a linear search over
/// their (short, inline) names is cheaper than hashing them, and membership asks for a peer
/// many times per step. Iterates in `servers:` order.
struct PeerTable: Sendable, Equatable, Sequence {
    private(set) var keys: [ServerName] = []
    private var states: [PeerState] = []
    /// What liveness needs of each state, without references: read many times per step,
    /// where copying a whole `PeerState` would cost more than the check.
    private var liveness: [PeerLiveness] = []

    subscript(name: ServerName) -> PeerState? {
        get { keys.firstIndex(of: name).map { states[$0] } }
        set {
            if let index = keys.firstIndex(of: name) {
                if let newValue {
                    states[index] = newValue
                    liveness[index] = PeerLiveness(newValue)
                } else {
                    keys.remove(at: index)
                    states.remove(at: index)
                    liveness.remove(at: index)
                }
            } else if let newValue {
                keys.append(name)
                states.append(newValue)
                liveness.append(PeerLiveness(newValue))
            }
        }
    }

    func liveness(of name: ServerName) -> PeerLiveness? { keys.firstIndex(of: name).map { liveness[$0] } }

    /// The peer's newest echo of this server: our `sentAt` and the up-period start it reported.
    func echo(of name: ServerName) -> (sentAt: EngineTime?, upSince: EngineTime?)? {
        keys.firstIndex(of: name).map { (states[$0].echoedSentAt, states[$0].echoedUpSince) }
    }

    func makeIterator() -> Zip2Sequence<[ServerName], [PeerState]>.Iterator { zip(keys, states).makeIterator() }
}

/// The part of a `PeerState` that says whether the peer is up and connected.
struct PeerLiveness: Sendable, Equatable {
    var serviceUp: Bool?
    var lastHeard: EngineTime?
    var creditAtHeard: Duration
    var echoedSentAt: EngineTime?
    var returningFromDeparture: Bool
    var timeoutFloor: TimeoutFloor?
    var downUntilHeardAfter: EngineTime?
    var echoedLease: EngineTime?
    var daemonDied: Bool

    init(_ state: PeerState) {
        daemonDied = state.diedInstance != nil
        serviceUp = state.report?.serviceUp
        timeoutFloor = state.timeoutFloor
        downUntilHeardAfter = state.downUntilHeardAfter
        echoedLease = state.echoedLease
        lastHeard = state.lastHeard
        creditAtHeard = state.creditAtHeard
        echoedSentAt = state.echoedSentAt
        returningFromDeparture = state.returningFromDeparture
    }
}

struct PeerState: Sendable, Equatable {
    var bootID: UInt64?
    /// Local receipt time of the newest heartbeat, on any path.
    var lastHeard: EngineTime?
    /// The peer's newest heartbeat (by its own `sentAt`), in a shared box: a peer's state is
    /// copied on every read of `peers[name]`, and a heartbeat is large.
    private var reportBox: ReportBox?
    var report: Heartbeat? {
        get { reportBox?.heartbeat }
        set { reportBox = newValue.map(ReportBox.init) }
    }
    /// The same report, shared (for a copy that should not copy the heartbeat).
    var sharedReport: ReportBox? { reportBox }
    /// Our own `sentAt` that the peer last echoed for our current boot, in its current
    /// up-period here: the peer heard us then. Basis of this server's lease.
    var echoedSentAt: EngineTime?
    /// The same over the whole boot of the peer, kept when the peer falls silent and comes
    /// back: the last time it is known to have heard us, from which its timeout runs.
    var lastEchoedSentAt: EngineTime?
    /// Until when the peer is bound to judge this server up, from the heartbeats of its
    /// current up-period here that list us: each echo's send time plus the timeout the peer
    /// said in that same heartbeat (`Heartbeat.judgeTimeout`). Basis of this server's lease.
    var echoedLease: EngineTime?
    /// The same over the peer's whole boot (see `lastEchoedSentAt`).
    var lastEchoedLease: EngineTime?
    /// The peer's `sentAt` that began its current up-period here: this server has judged it
    /// up continuously since then. Echoed back so the peer can tell that it was never
    /// declared down (see `Heartbeat.hears`).
    var upSince: EngineTime?
    /// Local receipt time of the heartbeat that began the current up-period.
    var upSinceLocal: EngineTime?
    /// Local receipt time of the first heartbeat of the peer's current service run (`clpcl -r`
    /// starts a new run in the same process, without a break in its heartbeats).
    var runSinceLocal: EngineTime?
    /// Since when the peer has been up and in its current service run, as heard here: it has
    /// listened at least that long.
    var listeningSinceLocal: EngineTime? {
        guard let up = upSinceLocal, let run = runSinceLocal else { return nil }
        return max(up, run)
    }
    /// This server's stall credit when `lastHeard` was recorded.
    var creditAtHeard: Duration = .zero
    /// `upSince` as the peer reported it for this server with its newest echo.
    var echoedUpSince: EngineTime?
    /// The peer's newest heartbeat lists this server's current boot among those it hears
    /// (it judges us up).
    var listsUs = false
    /// The peer left cleanly and is heard again (possibly in a new boot) but has not become
    /// connected yet: for the majority it still counts as gone (see `quorum`).
    var returningFromDeparture = false
    /// Set when the judge timeout was lowered while this peer was up: the peer's lease may
    /// still count on the old timeout from a heartbeat heard before (`Membership.judgeTimeout`).
    var timeoutFloor: TimeoutFloor?
    /// Set when the judge timeout was raised while this peer was judged down (its `lastHeard`
    /// then): a longer timeout does not bring it back; only a newer heartbeat does.
    var downUntilHeardAfter: EngineTime?
    /// The keeper of the peer's daemon said this run of it died and that it fenced what the
    /// daemon held (KeeperNotices.swift): the peer is down and holds nothing until a new boot
    /// is heard (a late heartbeat of the dead run does not bring it back).
    var diedInstance: ServerInstance?

    init(bootID: UInt64? = nil) { self.bootID = bootID }
}

/// A promise kept after the judge timeout was lowered: the peer is not judged down before
/// `timeout` of silence from `heard` (its last heartbeat then), the timeout it was promised.
struct TimeoutFloor: Sendable, Equatable {
    var heard: EngineTime
    var creditAtHeard: Duration
    var timeout: Duration
}

/// Failure detection, views and quorum. A peer is *up* when any path was heard within the
/// heartbeat timeout of this server's running time and its service runs; *connected* when,
/// in addition, it has heard us within the timeout of real time (asymmetric links count as
/// broken).
///
/// Running time leaves out this server's own stalls (`stallCredit`): a peer's silence while
/// this process was not running proves nothing about the peer, and its heartbeats of that
/// time may still wait in the socket. The lease (`isConnected`) is never credited: the peers
/// do not know this server stalled.
struct Membership: Sendable, Equatable {
    let me: ServerName
    let servers: [ServerName]
    /// The configured heartbeat timeout. What a peer that (re)joins listens at least before
    /// judging anyone down, whatever its ratio; and what a peer that does not say its own is
    /// taken to use.
    let timeout: Duration
    /// How long a peer may be silent before this server judges it down: the heartbeat timeout
    /// times the `clptoratio` ratio. Raised at once; lowered for a peer only after what it
    /// was promised before (`TimeoutFloor`), since its lease counts on the timeout this
    /// server said in the heartbeat that echoed it (`leaseFrom`).
    private(set) var judgeTimeout: Duration
    let usesMajority: Bool
    /// An exact half of the servers has quorum when it holds the first server and the ping
    /// check (`pingnp`) passes; without ping targets an exact half never has.
    let exactHalfNeedsPing: Bool
    private(set) var peers = PeerTable()
    /// Per peer, when each path last carried a new heartbeat.
    private(set) var paths: [ServerName: PeerPaths] = [:]
    /// Grows with every change of what membership knows: a view or quorum computed at one
    /// time stays valid for that time while this has not changed (see `ServerEngine.view`).
    private(set) var generation: UInt64 = 0
    /// Total time this server was stalled (see `ServerEngine.noticeStall`).
    private(set) var stallCredit: Duration = .zero
    /// Whether servers that left cleanly are counted out of the majority (`quorum`). Not by a
    /// server that runs on through a cluster stop (Survivors.swift).
    private(set) var departuresCountOut = true

    mutating func setDeparturesCountOut(_ value: Bool) {
        guard value != departuresCountOut else { return }
        departuresCountOut = value
        generation += 1
    }

    /// This server did not run for `stall` (see `ServerEngine.noticeStall`).
    mutating func addStallCredit(_ stall: Duration) {
        stallCredit += stall
        generation += 1
    }

    init(me: ServerName, servers: [ServerName], timeout: Duration, usesMajority: Bool, exactHalfNeedsPing: Bool = false) {
        self.me = me
        self.servers = servers
        self.timeout = timeout
        self.judgeTimeout = timeout
        self.usesMajority = usesMajority
        self.exactHalfNeedsPing = exactHalfNeedsPing
        for server in servers where server != me { peers[server] = PeerState() }
    }

    /// How long a peer has been silent in this server's running time.
    func silence(of peer: PeerState, now: EngineTime) -> Duration? {
        silence(lastHeard: peer.lastHeard, creditAtHeard: peer.creditAtHeard, now: now)
    }

    func silence(lastHeard: EngineTime?, creditAtHeard: Duration, now: EngineTime) -> Duration? {
        guard let heard = lastHeard else { return nil }
        return (now - heard) - (stallCredit - creditAtHeard)
    }

    /// Records a heartbeat. Returns false when it is older than one already seen (reordered
    /// or duplicated on another path) and was ignored apart from path liveness.
    mutating func record(_ heartbeat: Heartbeat, path: String, now: EngineTime, myBootID: UInt64) -> Bool {
        guard var peer = peers[heartbeat.sender] else { return false }
        generation += 1
        if let boot = peer.bootID, heartbeat.bootID < boot { return false }
        let departed = peer.returningFromDeparture || (peer.report.map { !$0.serviceUp } ?? false)
        if peer.bootID != heartbeat.bootID {
            // A restart of the peer: forget what its previous life told us (but that it left).
            peer = PeerState(bootID: heartbeat.bootID)
            paths[heartbeat.sender] = nil
        }
        peer.returningFromDeparture = departed && heartbeat.serviceUp
        // A path is alive when it carries heartbeats newer than it carried before (the same
        // heartbeat arrives once per path; an old one replayed proves nothing).
        if paths[heartbeat.sender]?.lastSentAt[path].map({ heartbeat.sentAt > $0 }) ?? true {
            paths[heartbeat.sender, default: PeerPaths()].lastSentAt[path] = heartbeat.sentAt
            paths[heartbeat.sender, default: PeerPaths()].lastHeard[path] = now
        }
        if let report = peer.report, heartbeat.run < report.run {
            // A late heartbeat of an earlier service run of the same process.
            peers[heartbeat.sender] = peer
            return false
        } else if let report = peer.report, heartbeat.sentAt <= report.sentAt {
            peers[heartbeat.sender] = peer
            return false
        }
        // A new up-period begins when the peer was not up until now (never heard, expired,
        // or its service was down).
        let wasUp = peer.report.map { $0.serviceUp } ?? false && judgesUp(peer, now: now)
        if !wasUp || peer.upSince == nil || !heartbeat.serviceUp {
            peer.upSince = heartbeat.sentAt
            peer.upSinceLocal = now
            // Echoes of an earlier up-period are stale (and would make a peer that just came
            // back look as if it had stopped hearing us).
            if !wasUp {
                peer.echoedSentAt = nil
                peer.echoedUpSince = nil
                peer.echoedLease = nil
            }
        }
        if peer.report?.run != heartbeat.run || peer.runSinceLocal == nil { peer.runSinceLocal = now }
        peer.lastHeard = now
        peer.downUntilHeardAfter = nil
        peer.creditAtHeard = stallCredit
        peer.report = heartbeat
        peer.listsUs = heartbeat.hears[me]?.bootID == myBootID
        if let echo = heartbeat.hears[me], echo.bootID == myBootID, echo.sentAt >= (peer.echoedSentAt ?? echo.sentAt) {
            peer.echoedSentAt = echo.sentAt
            peer.echoedUpSince = echo.upSince
        }
        if let echo = heartbeat.hears[me], echo.bootID == myBootID, echo.sentAt > (peer.lastEchoedSentAt ?? .zero) {
            peer.lastEchoedSentAt = echo.sentAt
        }
        if let echo = heartbeat.hears[me], echo.bootID == myBootID {
            // Listing us, the peer judges us up now, by the timeout it says here: bound from
            // when it heard the echoed heartbeat. (A timeout it raised after judging us down
            // binds nothing: such a heartbeat does not list us.)
            let bound = echo.sentAt + saidJudgeTimeout(heartbeat)
            peer.echoedLease = max(peer.echoedLease ?? bound, bound)
            peer.lastEchoedLease = max(peer.lastEchoedLease ?? bound, bound)
        }
        peers[heartbeat.sender] = peer
        return true
    }

    func isUp(_ server: ServerName, now: EngineTime) -> Bool {
        guard server != me else { return true }
        guard let peer = peers.liveness(of: server), !peer.daemonDied, let serviceUp = peer.serviceUp,
            let silence = silence(lastHeard: peer.lastHeard, creditAtHeard: peer.creditAtHeard, now: now)
        else { return false }
        if let mark = peer.downUntilHeardAfter, mark == peer.lastHeard { return false }
        if serviceUp && silence < judgeTimeout { return true }
        guard serviceUp, let floor = peer.timeoutFloor else { return false }
        return (self.silence(lastHeard: floor.heard, creditAtHeard: floor.creditAtHeard, now: now).map { $0 < floor.timeout } ?? false)
    }

    /// Whether the peer's silence is still within the judge timeout (or a floor promised
    /// before it was lowered).
    private func judgesUp(_ peer: PeerState, now: EngineTime) -> Bool {
        if peer.diedInstance != nil { return false }
        if let mark = peer.downUntilHeardAfter, mark == peer.lastHeard { return false }
        if silence(of: peer, now: now).map({ $0 < judgeTimeout }) ?? false { return true }
        guard let floor = peer.timeoutFloor else { return false }
        return silence(lastHeard: floor.heard, creditAtHeard: floor.creditAtHeard, now: now).map { $0 < floor.timeout } ?? false
    }

    /// A new `clptoratio` ratio: the judge timeout becomes `newTimeout`. Lowered, every peer
    /// judged up now keeps the old timeout from its last heartbeat (its lease may count on
    /// it); raised, it applies at once.
    mutating func setJudgeTimeout(_ newTimeout: Duration, now: EngineTime) {
        guard newTimeout != judgeTimeout else { return }
        generation += 1
        if newTimeout > judgeTimeout {
            // A peer judged down stays down until heard again: the longer timeout must not
            // undo a verdict others may have acted on (found by simulator seed 370).
            for (name, peer) in peers where !isUp(name, now: now) {
                peers[name]?.downUntilHeardAfter = peer.lastHeard
            }
        } else {
            for (name, peer) in peers where isUp(name, now: now) {
                guard let heard = peer.lastHeard else { continue }
                let old = peer.timeoutFloor
                // Keep whichever promise runs longer.
                let oldEnd = old.flatMap { floor in
                    silence(lastHeard: floor.heard, creditAtHeard: floor.creditAtHeard, now: now).map { floor.timeout - $0 }
                }
                let newEnd = silence(lastHeard: heard, creditAtHeard: peer.creditAtHeard, now: now).map { judgeTimeout - $0 }
                if let oldEnd, let newEnd, oldEnd >= newEnd { continue }
                peers[name]?.timeoutFloor = TimeoutFloor(heard: heard, creditAtHeard: peer.creditAtHeard, timeout: judgeTimeout)
            }
        }
        judgeTimeout = newTimeout
    }

    /// The timeout a heartbeat's sender judges its peers by, as it says (within 1…10000 times
    /// the configured one; the configured one when it does not say).
    func saidJudgeTimeout(_ heartbeat: Heartbeat) -> Duration {
        guard let said = heartbeat.judgeTimeout else { return timeout }
        return min(max(said, timeout), timeout * TimeoutRatio.allowedRatios.upperBound)
    }

    /// The peer's newest heartbeat is at most `age` old (of this server's running time).
    func heardWithin(_ server: ServerName, _ age: Duration, now: EngineTime) -> Bool {
        guard let peer = peers.liveness(of: server),
            let silence = silence(lastHeard: peer.lastHeard, creditAtHeard: peer.creditAtHeard, now: now)
        else { return false }
        return silence <= age
    }

    func isConnected(_ server: ServerName, now: EngineTime) -> Bool {
        guard server != me else { return true }
        guard isUp(server, now: now), let lease = peers.liveness(of: server)?.echoedLease else { return false }
        return now < lease
    }

    /// A peer that left cleanly and is back is admitted for good once a quorum without it has
    /// heard it come back: this server and connected peers whose newest heartbeats list its
    /// new boot (call after recording heartbeats). Until then it counts only as `quorum`
    /// allows. The servers that saw it leave count the quorum without it; a side it joins must
    /// not win the quorum by counting it while some of them, cut off, have not heard it
    /// return (found by simulator seed 571000878: a peer lost but not yet timed out made an
    /// admission on connection look safe, and both sides of the split held a majority).
    /// Returns whether it admitted one.
    @discardableResult
    mutating func noteReturns(now: EngineTime) -> Bool {
        var admitted = false
        for (name, peer) in peers where peer.returningFromDeparture && isConnected(name, now: now) {
            let acknowledging = servers.filter { other in
                other != me && other != name && isConnected(other, now: now)
                    && !(peers[other]?.returningFromDeparture ?? false)
                    && peers[other]?.sharedReport?.heartbeat.hears[name]?.bootID == peer.bootID
            }
            if quorum(with: acknowledging) {
                peers[name]?.returningFromDeparture = false
                generation += 1
                admitted = true
            }
        }
        return admitted
    }

    /// Connected servers in `servers:` order, this one included.
    func view(now: EngineTime) -> [ServerName] {
        servers.filter { isConnected($0, now: now) }
    }

    /// Majority rule: more than half of all servers; in an exact half the side holding the
    /// first server of `servers:` survives if ping resolution is configured (the Engine then
    /// also requires the ping check to pass). Always true without majority resolution.
    func hasQuorum(now: EngineTime) -> Bool {
        guard usesMajority else { return true }
        return quorum(with: view(now: now).filter { $0 != me })
    }

    /// The server's farewell named this server among those it left running (Survivors.swift):
    /// back, it waits for this server before founding a cluster. One that named nobody (a
    /// cluster stop) or not this server may found one without it.
    func leftUsRunning(_ server: ServerName) -> Bool {
        peers[server]?.sharedReport?.heartbeat.waitsFor?.contains(me) ?? false
    }

    /// `quorum` for founding a cluster: a server that left cleanly without naming this one
    /// among those it left running still counts, since it may found a cluster without this
    /// one when it comes back (found by simulator seed 23410429: a server frozen through
    /// `clpstdn` founded alone on a majority of one; the two that had stopped came back behind
    /// a partition with two of three). A running cluster keeps counting every departure out:
    /// a server finishing a cluster stop must keep its lease (seed 23616583).
    func quorumToFound(with peers: [ServerName]) -> Bool {
        quorum(with: peers, exactHalf: true, departuresNamingUsOnly: true)
    }

    /// Whether this server together with these connected peers has quorum.
    func quorum(with peers: [ServerName], exactHalf: Bool = true, departuresNamingUsOnly: Bool = false) -> Bool {
        guard usesMajority else { return true }
        // Counted in one pass over the servers (this runs at every step):
        // - returning: servers back from a clean departure and not yet admitted (`noteReturns`);
        // - settled: this server and the other peers given;
        // - departed: a server that said farewell (stopped its service cleanly) is on no side
        //   of any split: it no longer counts until it is connected again. (Heard back but not
        //   yet connected, it cannot found a cluster without the servers it left running, see
        //   Survivors.swift: counting it would only make a survivor that runs alone drop its
        //   groups each time a server comes back.)
        var settled = 0
        var returning = 0
        var departed = 0
        for server in servers {
            let liveness = server == me ? nil : self.peers.liveness(of: server)
            if server == me || peers.contains(server) {
                if liveness?.returningFromDeparture == true {
                    returning += 1
                } else {
                    settled += 1
                }
            } else if departuresCountOut, let liveness,
                liveness.returningFromDeparture || (liveness.serviceUp == false && (!departuresNamingUsOnly || leftUsRunning(server)))
            {
                departed += 1
            }
        }
        // Servers back from a departure count only while the settled side holds at least half
        // of the others: servers cut off from this side that saw them leave count without
        // them, and with two or more of them back a side could otherwise win a majority of the
        // whole while the other side holds one of the rest (simulator seed 571000878).
        let others = servers.count - departed - returning
        let counted = 2 * settled >= others
        let side = counted ? settled + returning : settled
        let total = counted ? others + returning : others
        if side * 2 > total { return true }
        if exactHalf, side * 2 == total, exactHalfNeedsPing, let first = servers.min(by: { rank(of: $0) < rank(of: $1) }) {
            guard first == me || peers.contains(first) else { return false }
            let firstReturning = first != me && self.peers.liveness(of: first)?.returningFromDeparture == true
            return !firstReturning || counted
        }
        return false
    }

    /// Rank for mastership and for breaking an exact half: the server's own priority as it
    /// declared it in its heartbeats (its position in its own `servers:` list; this file's
    /// position while it has not been heard), then its name. Servers whose files list the
    /// servers in different orders still agree.
    func rank(of server: ServerName) -> MasterRank {
        let ownIndex = servers.firstIndex(of: server) ?? servers.count
        let priority = server == me ? ownIndex : peers[server]?.sharedReport?.heartbeat.priority ?? ownIndex
        return MasterRank(priority: priority, name: server)
    }

    /// The newest heartbeat of a peer if it is up.
    func report(of server: ServerName, now: EngineTime) -> Heartbeat? {
        guard isUp(server, now: now) else { return nil }
        return peers[server]?.report
    }

    /// What this server tells its peers it hears.
    func hears(now: EngineTime) -> [ServerName: HeardHeartbeat] {
        var result: [ServerName: HeardHeartbeat] = [:]
        for (name, peer) in peers {
            guard isUp(name, now: now), let report = peer.report else { continue }
            result[name] = HeardHeartbeat(bootID: report.bootID, sentAt: report.sentAt, upSince: peer.upSince)
        }
        return result
    }

    /// Path status for one server: up when heard on that path within the timeout.
    func pathIsUp(_ path: String, server: ServerName, now: EngineTime) -> Bool {
        guard let heard = paths[server]?.lastHeard[path], !daemonDied(server) else { return false }
        return now - heard < judgeTimeout
    }

    /// The time until which a peer is bound to consider this server up: it heard our
    /// heartbeat sent at `echoedSentAt` and judges us down no sooner than its timeout later
    /// (the one it said in that heartbeat or a later one: a lowered one is never larger than
    /// what it still keeps for us, see `setJudgeTimeout`).
    func leaseFrom(_ server: ServerName) -> EngineTime? {
        peers.liveness(of: server)?.echoedLease
    }

    /// The peer's last heartbeat said it left (stopped its service cleanly): not a loss.
    func leftCleanly(_ server: ServerName) -> Bool {
        peers[server]?.sharedReport.map { !$0.heartbeat.serviceUp } ?? false
    }

    /// The peer gave its groups up: it left cleanly, or its daemon died and its keeper fenced
    /// what it held. Neither is a loss to resolve, and neither takes anything over.
    func gaveUpItsGroups(_ server: ServerName) -> Bool {
        leftCleanly(server) || daemonDied(server)
    }

    /// The keeper of the peer's daemon said that daemon died and fenced what it held.
    func daemonDied(_ server: ServerName) -> Bool {
        peers.liveness(of: server)?.daemonDied ?? false
    }

    /// The keeper of `server`'s daemon says `instance` of it died and that it fenced what that
    /// daemon held there. Believed only for the run this server last heard of (a notice of an
    /// earlier boot or run, replayed or late, changes nothing). Returns whether it applied.
    mutating func noteDaemonDied(_ server: ServerName, instance: ServerInstance) -> Bool {
        guard var peer = peers[server], peer.diedInstance == nil, peer.bootID == instance.boot, let report = peer.report,
            report.run == instance.run, report.serviceUp
        else { return false }
        generation += 1
        peer.diedInstance = instance
        peer.upSince = nil
        peer.echoedSentAt = nil
        peer.echoedUpSince = nil
        peer.echoedLease = nil
        peers[server] = peer
        return true
    }

    /// When the peer's timeout of this server runs out at the earliest, from the last
    /// heartbeat of ours it is known to have heard in its current boot (also one from
    /// before it fell silent here and came back).
    func lastLeaseFrom(_ server: ServerName) -> EngineTime? {
        peers[server]?.lastEchoedLease
    }

    /// Forget everything (the cluster service restarts).
    mutating func reset() {
        for server in peers.keys { peers[server] = PeerState() }
        paths = [:]
        generation += 1
    }
}
