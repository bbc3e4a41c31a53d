import Testing
import UnderstudyEngine
import UnderstudyModel

// Placement as a pure function: facts written down by hand, no cluster, no heartbeats.

@Suite("Placement.plan")
struct PlacementTests {
    static let epoch = Epoch(term: 3, master: "s1")
    static let now: EngineTime = .seconds(100)

    /// s1 (this server, master of `epoch`) and the peers as given; every peer connected,
    /// up and following `epoch` unless its facts say otherwise.
    static func input(
        groups: [GroupConfig], directory: Directory?, peers: [ServerName: PeerFacts]? = nil,
        own: OwnFacts = OwnFacts(instance: ServerInstance(boot: 1, run: 1)), memory: PlacementMemory = PlacementMemory()
    ) -> PlacementInput {
        let config = Cfg.cluster(servers: 3, groups: groups)
        let peers =
            peers ?? [
                "s2": connected("s2", view: ["s1", "s2", "s3"]),
                "s3": connected("s3", view: ["s1", "s2", "s3"]),
            ]
        let facts = ClusterFacts(
            me: "s1", servers: ["s1", "s2", "s3"], own: own, peers: peers, directory: directory, takeoverMargin: .seconds(1),
            now: now)
        return PlacementInput(config: config, facts: facts, memory: memory, interval: Timing.interval, timeout: Timing.timeout)
    }

    static func report(
        _ server: ServerName, view: [ServerName], epoch: Epoch? = PlacementTests.epoch, applied: UInt64 = 10,
        groups: [GroupName: GroupReport] = [:], hears: [ServerName] = ["s1", "s2", "s3"]
    ) -> Heartbeat {
        let boot: UInt64 = server == "s2" ? 2 : 3
        return Heartbeat(
            sender: server, bootID: boot, run: 1, sentAt: now - .milliseconds(100), configHash: "h", serviceUp: true,
            syncDone: true,
            hears: Dictionary(uniqueKeysWithValues: hears.filter { $0 != server }.map { ($0, HeardHeartbeat(bootID: 1, sentAt: now)) }),
            view: view, epoch: epoch, appliedVersion: applied, groups: groups)
    }

    /// A connected peer that hears the servers of its view (or `hears`).
    static func connected(
        _ server: ServerName, view: [ServerName], groups: [GroupName: GroupReport] = [:], hears: [ServerName]? = nil
    ) -> PeerFacts {
        PeerFacts(connected: true, up: true, heardRecently: true, report: report(server, view: view, groups: groups, hears: hears ?? view))
    }

    static func directory(startupDone: Bool = true, entries: [GroupName: DirectoryEntry] = [:]) -> Directory {
        Directory(epoch: epoch, version: 10, startupDone: startupDone, entries: entries)
    }

    static func owned(by owner: ServerName, boot: UInt64, generation: UInt64 = 9) -> DirectoryEntry {
        var entry = DirectoryEntry(wanted: true, owner: owner, generation: generation)
        entry.ownerInstance = ServerInstance(boot: boot, run: 1)
        return entry
    }

    @Test("a server without a directory founds the cluster: a new epoch above every term in sight")
    func founding() {
        let decision = Placement.plan(Self.input(groups: [Cfg.group("g", servers: ["s1", "s2"])], directory: nil))
        guard case .tookOver(let fresh, let from) = decision.outcome else {
            Issue.record("expected a takeover, got \(decision.outcome)")
            return
        }
        #expect(from == nil)
        #expect(fresh.epoch == Epoch(term: 4, master: "s1"))
        #expect(fresh.version == 11)
        #expect(fresh.founding?.server == "s1")
        #expect(decision.log.map(\.message) == ["s1 is the master server (epoch \(fresh.epoch))."])
    }

    @Test("a leaving master yields to a newer epoch instead of taking the cluster back (five-server master duel)")
    func leavingMasterYields() {
        let newer = Epoch(term: 4, master: "s2")
        func peers(_ epoch: Epoch) -> [ServerName: PeerFacts] {
            [
                "s2": PeerFacts(
                    connected: true, up: true, heardRecently: true, report: Self.report("s2", view: ["s1", "s2", "s3"], epoch: newer)),
                "s3": PeerFacts(
                    connected: true, up: true, heardRecently: true, report: Self.report("s3", view: ["s1", "s2", "s3"], epoch: epoch)),
            ]
        }
        let groups = [Cfg.group("g", servers: ["s1", "s2"])]
        let leaving = OwnFacts(instance: ServerInstance(boot: 1, run: 1), leaving: true)
        let yielded = Placement.plan(Self.input(groups: groups, directory: Self.directory(), peers: peers(newer), own: leaving))
        #expect(yielded.outcome == .unchanged, "\(yielded.outcome)")
        #expect(yielded.log.isEmpty)
        // Not leaving, the same server outranked takes over (ranked first, it is the master).
        let running = Placement.plan(Self.input(groups: groups, directory: Self.directory(), peers: peers(newer)))
        guard case .tookOver(let fresh, _) = running.outcome else {
            Issue.record("expected a takeover, got \(running.outcome)")
            return
        }
        #expect(fresh.epoch == Epoch(term: 5, master: "s1"))
    }

    /// s3 (in view) follows s2, whose datagrams this server still gets but which is out of
    /// its view: a new epoch here would only make s2 start another (simulator seed 23706632).
    @Test(
        "a master outranked only by the epoch of a master it hears out of its view starts no new epoch",
        arguments: ["up", "present without state", "down"])
    func outrankedByAMasterOutOfView(s2Is: String) {
        let newer = Epoch(term: 4, master: "s2")
        var s2 = PeerFacts(
            connected: false, up: s2Is == "up", heardRecently: s2Is == "up",
            report: Self.report("s2", view: ["s2", "s3"], epoch: newer, hears: ["s2", "s3"]))
        s2.presentUnheard = s2Is == "present without state"
        let peers: [ServerName: PeerFacts] = [
            "s2": s2,
            "s3": PeerFacts(
                connected: true, up: true, heardRecently: true, report: Self.report("s3", view: ["s1", "s2", "s3"], epoch: newer)),
        ]
        let groups = [Cfg.group("g", servers: ["s1", "s2"])]
        let decision = Placement.plan(Self.input(groups: groups, directory: Self.directory(), peers: peers))
        if s2Is == "down" {
            // Gone, s2 leads nobody: this server takes s3 over.
            guard case .tookOver(let fresh, _) = decision.outcome else {
                Issue.record("expected a takeover, got \(decision.outcome)")
                return
            }
            #expect(fresh.epoch == Epoch(term: 5, master: "s1"))
        } else {
            #expect(decision.outcome == .unchanged, "\(decision.outcome)")
            #expect(decision.log.isEmpty)
        }
    }

    @Test("startup places auto groups on the first server of their policy, manual ones not at all")
    func startup() {
        let groups = [
            Cfg.group("web", servers: ["s2", "s1"]), Cfg.group("db", servers: ["s1", "s3"]),
            Cfg.group("batch", servers: ["s3"], startup: .manual),
        ]
        let decision = Placement.plan(Self.input(groups: groups, directory: Self.directory(startupDone: false)))
        guard case .decided(let next) = decision.outcome else {
            Issue.record("expected a decision, got \(decision.outcome)")
            return
        }
        #expect(next.version == 11)
        #expect(next.startupDone)
        #expect(next.entries["web"]?.owner == "s2")
        #expect(next.entries["web"]?.generation == 11)
        #expect(next.entries["db"]?.owner == "s1")
        #expect(next.entries["batch"]?.owner == nil)
        #expect(decision.log.map(\.message).contains("Group web goes to s2 (CLP_EVENT=START)."))
    }

    @Test("nothing is decided while a connected server still follows another epoch")
    func waitsForFollowers() {
        var peers = [
            "s2": Self.connected("s2", view: ["s1", "s2", "s3"]),
            "s3": Self.connected("s3", view: ["s1", "s2", "s3"]),
        ]
        peers["s3"]?.report = Self.report("s3", view: ["s1", "s2", "s3"], epoch: Epoch(term: 2, master: "s1"))
        let decision = Placement.plan(
            Self.input(groups: [Cfg.group("g", servers: ["s1"])], directory: Self.directory(startupDone: false), peers: peers))
        #expect(decision.outcome == .unchanged)
    }

    @Test("a lost owner is first confirmed down, then its group fails over once the margin has passed")
    func failoverAfterConfirmation() {
        let group = Cfg.group("g", servers: ["s2", "s1"])
        let directory = Self.directory(entries: ["g": Self.owned(by: "s2", boot: 2)])
        // s2 is silent; s3 no longer sees it either.
        let peers: [ServerName: PeerFacts] = [
            "s2": PeerFacts(
                report: Self.report("s2", view: ["s1", "s2", "s3"], groups: ["g": GroupReport(status: .online, generation: 9)])),
            "s3": Self.connected("s3", view: ["s1", "s3"]),
        ]
        let first = Placement.plan(Self.input(groups: [group], directory: directory, peers: peers))
        #expect(first.outcome == .unchanged)
        #expect(first.memory.downConfirmedAt["s2"] == Self.now)
        #expect(first.log.map(\.message) == ["Server s2 is down."])

        // The same facts a takeover margin later.
        var later = Self.input(groups: [group], directory: directory, peers: peers, memory: first.memory)
        later.facts.now = Self.now + .seconds(1)
        let second = Placement.plan(later)
        guard case .decided(let next) = second.outcome else {
            Issue.record("expected a decision, got \(second.outcome)")
            return
        }
        // Released in this version; placed again once every server has applied the release.
        #expect(next.entries["g"]?.owner == nil)
        #expect(next.entries["g"]?.startEvent == .failover)
        #expect(next.entries["g"]?.releasedAt == 11)
        #expect(second.log.map(\.message) == ["Failing over group g from s2: server s2 is down."])
    }

    @Test("a peer that just restarted does not yet agree that a lost server is down (seed 82001971)")
    func freshPeerDoesNotConfirmLoss() {
        let group = Cfg.group("g", servers: ["s2", "s1"])
        let directory = Self.directory(entries: ["g": Self.owned(by: "s2", boot: 2)])
        var s3 = Self.connected("s3", view: ["s1", "s3"])
        // s3 restarted its service 1 s ago: it has not heard s2 in its new run yet.
        s3.upSince = Self.now - .seconds(1)
        let peers: [ServerName: PeerFacts] = [
            "s2": PeerFacts(
                report: Self.report("s2", view: ["s1", "s2", "s3"], groups: ["g": GroupReport(status: .online, generation: 9)])),
            "s3": s3,
        ]
        let early = Placement.plan(Self.input(groups: [group], directory: directory, peers: peers))
        #expect(early.memory.downConfirmedAt["s2"] == nil)
        #expect(early.log.isEmpty)
        // Once it has listened a whole timeout (3 s) and still does not see s2, it agrees.
        var later = Self.input(groups: [group], directory: directory, peers: peers)
        later.facts.now = Self.now + .seconds(2)
        #expect(Placement.plan(later).memory.downConfirmedAt["s2"] == Self.now + .seconds(2))
    }

    @Test("a peer that another connected server still hears is never taken for gone")
    func heardByAnotherServerIsNotGone() {
        let group = Cfg.group("g", servers: ["s2", "s1"])
        let directory = Self.directory(entries: ["g": Self.owned(by: "s2", boot: 2)])
        let peers: [ServerName: PeerFacts] = [
            "s2": PeerFacts(
                report: Self.report("s2", view: ["s1", "s2", "s3"], groups: ["g": GroupReport(status: .online, generation: 9)])),
            // s3 lists s2 among those it hears (a one-way link between s1 and s2).
            "s3": Self.connected("s3", view: ["s1", "s3"], hears: ["s1", "s2"]),
        ]
        var memory = PlacementMemory()
        memory.downConfirmedAt["s2"] = Self.now - .seconds(30)
        let decision = Placement.plan(Self.input(groups: [group], directory: directory, peers: peers, memory: memory))
        #expect(decision.outcome == .unchanged)
        // Without that echo the same facts make it gone.
        var unheard = Self.input(groups: [group], directory: directory, peers: peers, memory: memory)
        unheard.facts.peers["s3"] = Self.connected("s3", view: ["s1", "s3"])
        #expect(Placement.plan(unheard).directory?.entries["g"]?.owner == nil)
    }

    @Test("completely exclusive groups never share a server")
    func completeExclusivity() {
        let groups = [
            Cfg.group("a", servers: ["s1", "s2"], exclusive: .complete),
            Cfg.group("b", servers: ["s1", "s2"], exclusive: .complete),
        ]
        let decision = Placement.plan(Self.input(groups: groups, directory: Self.directory(startupDone: false)))
        #expect(decision.directory?.entries["a"]?.owner == "s1")
        #expect(decision.directory?.entries["b"]?.owner == "s2")
    }

    @Test("a group no server can run is marked unplaceable and logged once")
    func unplaceableLoggedOnce() {
        let groups = [Cfg.group("g", servers: ["s3"])]
        let peers: [ServerName: PeerFacts] = [
            "s2": Self.connected("s2", view: ["s1", "s2", "s3"]),
            "s3": Self.connected("s3", view: ["s1", "s2", "s3"]),
        ]
        var own = OwnFacts(instance: ServerInstance(boot: 1, run: 1))
        own.syncDone = true
        var input = Self.input(groups: groups, directory: Self.directory(), peers: peers, own: own)
        input.facts.peers["s3"]?.report?.leaving = true
        var directory = Self.directory()
        directory.entries["g"] = DirectoryEntry(wanted: true)
        input.facts.directory = directory
        let first = Placement.plan(input)
        #expect(first.directory?.entries["g"]?.unplaceable == true)
        #expect(first.log.map(\.message) == ["No server can run group g now."])
        input.memory = first.memory
        if let next = first.directory { input.facts.directory = next }
        let second = Placement.plan(input)
        #expect(second.outcome == .unchanged)
        #expect(second.log.isEmpty)
    }

    /// Simulator seed 200018: a server of the group's policy is still heard but out of the
    /// view (it no longer hears this master), and its newest report is older than two
    /// intervals. What it did since is unknown (it may follow a master this one never heard
    /// from): the master waits instead of placing the group. Once that server's heartbeats
    /// are fresh again and it follows this master, the group is placed.
    @Test("a policy server heard but out of the view with stale reports holds placement back (seed 200018)")
    func stalePolicyServerOutOfView() {
        let group = Cfg.group("g", servers: ["s3", "s1"])
        var directory = Self.directory()
        directory.entries["g"] = DirectoryEntry(wanted: true)
        let stale = PeerFacts(
            connected: false, up: true, heardRecently: false, report: Self.report("s3", view: ["s3"], hears: ["s3"]))
        let peers: [ServerName: PeerFacts] = ["s2": Self.connected("s2", view: ["s1", "s2"]), "s3": stale]
        let waiting = Placement.plan(Self.input(groups: [group], directory: directory, peers: peers))
        #expect(waiting.outcome == .unchanged)

        var fresh = peers
        fresh["s3"]?.heardRecently = true
        let placed = Placement.plan(Self.input(groups: [group], directory: directory, peers: fresh))
        #expect(placed.directory?.entries["g"]?.owner == "s1")

        // Fresh, but following another master's epoch: it may start the group any moment.
        var elsewhere = fresh
        elsewhere["s3"]?.report = Self.report("s3", view: ["s3"], epoch: Epoch(term: 9, master: "s3"), hears: ["s3"])
        #expect(Placement.plan(Self.input(groups: [group], directory: directory, peers: elsewhere)).outcome == .unchanged)
    }

    @Test("a server never heard in this run holds back a group that ran before until this master listened a timeout (seed 95002336)")
    func neverHeardServerAfterRestart() {
        let group = Cfg.group("g", servers: ["s3", "s1"])
        var directory = Self.directory()
        // Released by s3 in an earlier run (a move): placed before, generation above 0.
        var entry = DirectoryEntry(wanted: true, generation: 7)
        entry.releasedAt = 8
        directory.entries["g"] = entry
        // s3 has not been heard since this server (re)started its service.
        let peers: [ServerName: PeerFacts] = ["s2": Self.connected("s2", view: ["s1", "s2"]), "s3": PeerFacts()]
        var input = Self.input(groups: [group], directory: directory, peers: peers)
        input.listenedEnough = false
        #expect(Placement.plan(input).outcome == .unchanged)
        input.listenedEnough = true
        #expect(Placement.plan(input).directory?.entries["g"]?.owner == "s1")

        // A group never placed (a cluster's first start) waits for nobody.
        directory.entries["g"] = DirectoryEntry(wanted: true)
        var first = Self.input(groups: [group], directory: directory, peers: peers)
        first.listenedEnough = false
        #expect(Placement.plan(first).directory?.entries["g"]?.owner == "s1")
    }
}
