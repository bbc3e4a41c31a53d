import UnderstudyModel

/// What one server knows about another at one instant, as placement reads it: gathered once
/// per decision from membership (so the decision itself reads plain values, and a test can
/// write them down without building a cluster).
public struct PeerFacts: Sendable, Equatable {
    /// Connected: heard within the timeout and hears this server (in the view).
    public var connected: Bool
    /// Heard within the timeout (of this server's running time) with its service up.
    public var up: Bool
    /// Its newest heartbeat is at most two intervals old.
    public var heardRecently: Bool
    /// With ping resolution: a probe started after the loss reached a target, so its loss
    /// is not this server's own isolation. Always true without ping resolution.
    public var pingConfirmsLoss: Bool
    /// Datagrams keep coming from it while it is not heard (UnauthenticatedPeers.swift): they
    /// fail authentication (another key) or its state cannot be fetched; never confirmed down.
    public var presentUnheard = false
    /// Its keeper said its daemon died and that it fenced what the daemon held there
    /// (KeeperNotices.swift).
    public var daemonDied = false
    /// Since when (local time) it has been up and in its current service run, as heard here:
    /// it has been listening at least that long.
    public var upSince: EngineTime?
    /// Its newest heartbeat of this service run, however old (nil: never heard).
    public var report: Heartbeat? {
        get { reportBox?.heartbeat }
        set { reportBox = newValue.map(ReportBox.init) }
    }
    /// Shared, not copied: placement reads a peer's facts per group and server (read a
    /// field through `reportBox?.heartbeat`: `report` copies the whole heartbeat).
    private(set) var reportBox: ReportBox?

    /// `upSince` defaults to the start of time: a peer that has listened long enough (tests
    /// that do not care about fresh restarts).
    public init(
        connected: Bool = false, up: Bool = false, heardRecently: Bool = false, pingConfirmsLoss: Bool = true,
        upSince: EngineTime? = .zero, report: Heartbeat? = nil
    ) {
        self.upSince = upSince
        self.connected = connected
        self.up = up
        self.heardRecently = heardRecently
        self.pingConfirmsLoss = pingConfirmsLoss
        self.reportBox = report.map(ReportBox.init)
    }

    init(
        connected: Bool, up: Bool, heardRecently: Bool, pingConfirmsLoss: Bool, upSince: EngineTime?, reportBox: ReportBox?,
        presentUnheard: Bool = false, daemonDied: Bool = false
    ) {
        self.presentUnheard = presentUnheard
        self.daemonDied = daemonDied
        self.upSince = upSince
        self.connected = connected
        self.up = up
        self.heardRecently = heardRecently
        self.pingConfirmsLoss = pingConfirmsLoss
        self.reportBox = reportBox
    }

    /// The newest heartbeat while the peer is up.
    var currentReport: Heartbeat? { up ? report : nil }
    /// The same, shared (to read one field without copying the heartbeat).
    var currentReportBox: ReportBox? { up ? reportBox : nil }
}

/// What this server tells about itself (what its heartbeat would say).
public struct OwnFacts: Sendable, Equatable {
    public var instance: ServerInstance
    public var groups: [GroupName: GroupReport]
    public var leaving: Bool
    public var autoStartSuppressed: Bool
    public var syncDone: Bool
    /// A shared UPS's power failure on this server asks for a cluster stop.
    public var clusterStopRequested: Bool
    /// This server's configuration hash: a group goes only to servers that run the same
    /// (ConfigApply.swift). nil: not checked.
    public var configHash: String?

    public init(
        instance: ServerInstance, groups: [GroupName: GroupReport] = [:], leaving: Bool = false, autoStartSuppressed: Bool = false,
        syncDone: Bool = true, clusterStopRequested: Bool = false, configHash: String? = nil
    ) {
        self.configHash = configHash
        self.instance = instance
        self.groups = groups
        self.leaving = leaving
        self.autoStartSuppressed = autoStartSuppressed
        self.syncDone = syncDone
        self.clusterStopRequested = clusterStopRequested
    }
}

/// Everything this server knows of the cluster at one instant: itself, every peer, the view
/// and its directory. Questions about another server (does it hold a group, is it gone) are
/// answered here, in one place, for placement and for commands alike.
public struct ClusterFacts: Sendable {
    public var me: ServerName
    /// Every server of the configuration, in `servers:` order.
    public var servers: [ServerName]
    public var own: OwnFacts
    /// What this server knows of each peer, by name (see `peer(_:)`, which placement reads).
    public var peers: [ServerName: PeerFacts] {
        get {
            var peers: [ServerName: PeerFacts] = [:]
            for (server, facts) in zip(servers, peerList) { peers[server] = facts }
            return peers
        }
        set {
            peerList = servers.map { $0 == me ? nil : newValue[$0] }
            heardByPeersMemo = nil
        }
    }
    /// The same in `servers` order (nil for this server): read many times per decision,
    /// where looking a name up in a dictionary would cost more than a short search.
    private var peerList: [PeerFacts?]
    /// `heardByPeers` of each server, in `servers` order, once computed (`memoize`).
    private var heardByPeersMemo: [Bool]?
    /// This server's directory (nil: not joined).
    public var directory: Directory?
    /// When every connected server first agreed that a peer is down.
    public var downConfirmedAt: [ServerName: EngineTime]
    /// How long after that agreement a peer's groups count as gone.
    public var takeoverMargin: Duration
    /// The servers that need a forced stop before their groups count as gone (`fencing:`),
    /// with the verdict for their current loss (ForcedStop.swift).
    public var forcedStops: [ServerName: ForcedStopVerdict] = [:]
    public var now: EngineTime

    public init(
        me: ServerName, servers: [ServerName], own: OwnFacts, peers: [ServerName: PeerFacts], directory: Directory?,
        downConfirmedAt: [ServerName: EngineTime] = [:], takeoverMargin: Duration, now: EngineTime
    ) {
        self.init(
            me: me, servers: servers, own: own, peerList: servers.map { $0 == me ? nil : peers[$0] }, directory: directory,
            downConfirmedAt: downConfirmedAt, takeoverMargin: takeoverMargin, now: now)
    }

    /// With the peers' facts in `servers` order (nil for this server).
    init(
        me: ServerName, servers: [ServerName], own: OwnFacts, peerList: [PeerFacts?], directory: Directory?,
        downConfirmedAt: [ServerName: EngineTime], takeoverMargin: Duration, now: EngineTime
    ) {
        self.me = me
        self.servers = servers
        self.own = own
        self.peerList = peerList
        self.directory = directory
        self.downConfirmedAt = downConfirmedAt
        self.takeoverMargin = takeoverMargin
        self.now = now
    }

    /// What this server knows of a peer (nil: this server, or not a server of the cluster).
    func peer(_ server: ServerName) -> PeerFacts? {
        guard let index = servers.firstIndex(of: server) else { return nil }
        return peerList[index]
    }

    /// Connected servers in `servers:` order, this one included.
    public var view: [ServerName] {
        zip(servers, peerList).compactMap { server, facts in server == me || facts?.connected == true ? server : nil }
    }

    func isConnected(_ server: ServerName) -> Bool { server == me || peer(server)?.connected == true }
    func isUp(_ server: ServerName) -> Bool { server == me || peer(server)?.up == true }

    /// The peer's newest heartbeat while it is up.
    func report(of server: ServerName) -> Heartbeat? { peer(server)?.currentReport }

    func status(of group: GroupName, on server: ServerName) -> GroupReport? {
        server == me ? own.groups[group] : peer(server)?.reportBox?.heartbeat.groups[group]
    }

    func appliedVersion(of server: ServerName) -> UInt64 {
        server == me ? directory?.version ?? 0 : peer(server)?.currentReportBox?.heartbeat.appliedVersion ?? 0
    }

    func instance(of server: ServerName) -> ServerInstance? {
        server == me ? own.instance : peer(server)?.reportBox?.heartbeat.instance
    }

    func isLeaving(_ server: ServerName) -> Bool {
        server == me ? own.leaving : peer(server)?.currentReportBox?.heartbeat.leaving ?? false
    }

    /// The server runs another configuration than this one, or joined as an outsider
    /// (ConfigApply.swift): no group is given to it.
    func runsOtherConfiguration(_ server: ServerName) -> Bool {
        guard server != me, let mine = own.configHash, let report = peer(server)?.reportBox?.heartbeat else { return false }
        return report.configHash != mine || report.configOutsider == true
    }

    func isAutoStartSuppressed(_ server: ServerName) -> Bool {
        server == me ? own.autoStartSuppressed : peer(server)?.reportBox?.heartbeat.autoStartSuppressed ?? false
    }

    /// Servers that hold (or may hold) a group: this one from its own state, peers from their
    /// newest heartbeat unless they are gone (down and confirmed, or left cleanly).
    public func holders(of group: GroupName) -> [ServerName] {
        servers.filter { server in
            if server == me { return own.groups[group]?.status.holdsResources ?? false }
            // Alive for the others but not heard here (one-way link, or it came back while
            // this server was cut off): its state is unknown, so it may hold anything.
            if !isUp(server) && heardByPeers(server) { return true }
            guard let report = peer(server)?.reportBox else { return false }
            // A server that left cleanly said in its farewell what it still holds (a group
            // stuck in Offline Failure); a crashed one holds nothing once confirmed down.
            if !report.heartbeat.serviceUp { return report.heartbeat.groups[group]?.status.holdsResources ?? false }
            if isGone(server) { return false }
            if report.heartbeat.groups[group]?.status.holdsResources ?? false { return true }
            // Lost but not yet confirmed gone: since its last report it may have started
            // what the directory assigned to it.
            return !isUp(server) && directory?.entries[group]?.owner == server
        }
    }

    /// A peer whose groups are certainly gone: it left cleanly, or every connected server
    /// agrees it is down and the takeover margin has passed (with majority resolution it
    /// has fenced itself by then).
    public func isGone(_ server: ServerName) -> Bool {
        guard server != me else { return false }
        if heardByPeers(server) { return false }
        if let report = peer(server)?.reportBox, !report.heartbeat.serviceUp { return true }
        // Its keeper fenced everything its dead daemon held: proof enough, at once — unless the
        // configuration asks for a forced stop of that server (`fencing:`), which then decides.
        if peer(server)?.daemonDied == true, forcedStops[server] == nil { return true }
        if isUp(server) { return false }
        // Its datagrams arrive, unheard (another key, or its state not fetched): it may run
        // anything (UnauthenticatedPeers.swift).
        if peer(server)?.presentUnheard == true { return false }
        // Down or never heard: only the agreement of every connected server plus the
        // margin proves it holds nothing (a server never heard may still run groups).
        guard let confirmed = downConfirmedAt[server] else { return false }
        // With fencing, a stop proves it at once; until then nothing does.
        switch forcedStops[server] {
        case .stopped?: return true
        case .pending?: return false
        case .gaveUp?, nil: return now - confirmed >= takeoverMargin
        }
    }

    /// Computes `heardByPeers` of every server once: a decision asks it per group and server.
    mutating func memoize() {
        heardByPeersMemo = servers.map(computeHeardByPeers)
    }

    /// A connected peer says it hears this server now.
    func heardByPeers(_ server: ServerName) -> Bool {
        if let memo = heardByPeersMemo, let index = servers.firstIndex(of: server) { return memo[index] }
        return computeHeardByPeers(server)
    }

    private func computeHeardByPeers(_ server: ServerName) -> Bool {
        servers.contains { other in
            other != me && other != server && peer(other)?.reportBox?.heartbeat.hears[server] != nil && isConnected(other)
        }
    }

    /// The peer's newest report follows this epoch or none (isolated, or not joined yet).
    func followsNoOtherMaster(_ server: ServerName, epoch: Epoch) -> Bool {
        guard let report = report(of: server) else { return false }
        return report.epoch == nil || report.epoch == epoch
    }

    /// Another group of this exclusivity is assigned to or held on the server (`dir` is the
    /// directory being decided, which may differ from this server's own).
    func runsOtherExclusive(
        _ kind: GroupConfig.Exclusive, server: ServerName, except: GroupName, groups: [GroupConfig], directory dir: Directory
    ) -> Bool {
        groups.contains { other in
            guard other.name != except, other.exclusive == kind else { return false }
            if dir.entries[other.name]?.owner == server { return true }
            return status(of: other.name, on: server)?.status.holdsResources ?? false
        }
    }

    /// This server has heard the peer in its current service run (a server never heard
    /// cannot have taken part in anything this one decided).
    func everHeard(_ server: ServerName) -> Bool { peer(server)?.reportBox != nil }
}

extension ServerEngine {
    /// What this server knows of the cluster now (see `ClusterFacts`).
    func facts(now: EngineTime) -> ClusterFacts {
        let recently = interval * 2
        let peerList = serverNames.map { server -> PeerFacts? in
            guard server != me else { return nil }
            return PeerFacts(
                connected: membership.isConnected(server, now: now), up: membership.isUp(server, now: now),
                heardRecently: membership.heardWithin(server, recently, now: now), pingConfirmsLoss: pingConfirms(server),
                upSince: membership.peers[server]?.listeningSinceLocal, reportBox: membership.peers[server]?.sharedReport,
                presentUnheard: isPresentUnheard(server, now: now), daemonDied: membership.daemonDied(server))
        }
        let own = OwnFacts(
            instance: instance, groups: groupReports(), leaving: isLeaving, autoStartSuppressed: autoStartSuppressed,
            syncDone: syncDone, clusterStopRequested: clusterStopRequested, configHash: configHash)
        var facts = ClusterFacts(
            me: me, servers: serverNames, own: own, peerList: peerList, directory: directory, downConfirmedAt: placement.downConfirmedAt,
            takeoverMargin: takeoverMargin, now: now)
        facts.forcedStops = forcedStopVerdicts()
        return facts
    }
}
