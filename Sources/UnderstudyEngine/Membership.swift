import UnderstudyModel

/// What this server knows about one peer from its heartbeats.
struct PeerState: Sendable, Equatable {
    var bootID: UInt64?
    /// Local receipt time of the newest heartbeat, on any path.
    var lastHeard: EngineTime?
    /// Local receipt time per heartbeat path.
    var pathLastHeard: [String: EngineTime] = [:]
    /// Sender's `sentAt` of the newest heartbeat per path.
    var pathLastSentAt: [String: EngineTime] = [:]
    /// The peer's newest heartbeat (by its own `sentAt`).
    var report: Heartbeat?
    /// Our own `sentAt` that the peer last echoed for our current boot: the peer heard us
    /// then. Basis of this server's lease.
    var echoedSentAt: EngineTime?
}

/// Failure detection, views and quorum. A peer is *up* when any path was heard within the
/// heartbeat timeout and its service runs; *connected* when, in addition, it has heard us
/// within the timeout (asymmetric links count as broken).
struct Membership: Sendable, Equatable {
    let me: ServerName
    let servers: [ServerName]
    let timeout: Duration
    let usesMajority: Bool
    var peers: [ServerName: PeerState] = [:]

    init(me: ServerName, servers: [ServerName], timeout: Duration, usesMajority: Bool) {
        self.me = me
        self.servers = servers
        self.timeout = timeout
        self.usesMajority = usesMajority
        for server in servers where server != me { peers[server] = PeerState() }
    }

    /// Records a heartbeat. Returns false when it is older than one already seen (reordered
    /// or duplicated on another path) and was ignored apart from path liveness.
    mutating func record(_ heartbeat: Heartbeat, path: String, now: EngineTime, myBootID: UInt64) -> Bool {
        guard var peer = peers[heartbeat.sender] else { return false }
        if let boot = peer.bootID, heartbeat.bootID < boot { return false }
        if peer.bootID != heartbeat.bootID {
            // A restart of the peer: forget what its previous life told us.
            peer = PeerState(bootID: heartbeat.bootID)
        }
        // A path is alive when it carries heartbeats newer than it carried before (the same
        // heartbeat arrives once per path; an old one replayed proves nothing).
        if peer.pathLastSentAt[path].map({ heartbeat.sentAt > $0 }) ?? true {
            peer.pathLastSentAt[path] = heartbeat.sentAt
            peer.pathLastHeard[path] = now
        }
        if let report = peer.report, heartbeat.run < report.run {
            // A late heartbeat of an earlier service run of the same process.
            peers[heartbeat.sender] = peer
            return false
        } else if let report = peer.report, heartbeat.sentAt <= report.sentAt {
            peers[heartbeat.sender] = peer
            return false
        }
        peer.lastHeard = now
        peer.report = heartbeat
        if let echo = heartbeat.hears[me], echo.bootID == myBootID {
            peer.echoedSentAt = max(peer.echoedSentAt ?? echo.sentAt, echo.sentAt)
        }
        peers[heartbeat.sender] = peer
        return true
    }

    func isUp(_ server: ServerName, now: EngineTime) -> Bool {
        guard server != me else { return true }
        guard let peer = peers[server], let heard = peer.lastHeard, let report = peer.report else { return false }
        return report.serviceUp && now - heard < timeout
    }

    func isConnected(_ server: ServerName, now: EngineTime) -> Bool {
        guard server != me else { return true }
        guard isUp(server, now: now), let echoed = peers[server]?.echoedSentAt else { return false }
        return now - echoed < timeout
    }

    /// Connected servers in `servers:` order, this one included.
    func view(now: EngineTime) -> [ServerName] {
        servers.filter { isConnected($0, now: now) }
    }

    /// Majority rule: more than half of all servers; in an exact half the side holding the
    /// first server of `servers:` survives. Always true without majority resolution.
    func hasQuorum(now: EngineTime) -> Bool {
        guard usesMajority else { return true }
        let view = view(now: now)
        let total = servers.count
        if view.count * 2 > total { return true }
        if view.count * 2 == total, let first = servers.first { return view.contains(first) }
        return false
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
            result[name] = HeardHeartbeat(bootID: report.bootID, sentAt: report.sentAt)
        }
        return result
    }

    /// Path status for one server: up when heard on that path within the timeout.
    func pathIsUp(_ path: String, server: ServerName, now: EngineTime) -> Bool {
        guard let heard = peers[server]?.pathLastHeard[path] else { return false }
        return now - heard < timeout
    }

    /// Forget everything (the cluster service restarts).
    mutating func reset() {
        for server in peers.keys { peers[server] = PeerState() }
    }
}
