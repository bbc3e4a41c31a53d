import UnderstudyModel

// The master's decisions: startup placement, failover after a server loss or an activation
// failure, failback. The master writes them into the directory; every server (the master
// included) reconciles toward it. The master reassigns a group only when no server may hold
// it any more (invariant I1) and every connected server has applied the release.
//
// `Placement.plan` is a pure function: configuration, what this server knows of the cluster
// (`ClusterFacts`), its memory of earlier decisions and the time in; the new directory, the
// new memory and the log lines out. `ServerEngine.schedule` gathers the input and applies
// the decision.

/// What placement remembers between two decisions of the same master.
public struct PlacementMemory: Sendable, Equatable {
    /// When every connected server first agreed that a peer is down.
    public var downConfirmedAt: [ServerName: EngineTime] = [:]
    /// Groups for which "no destination" was already logged (log once per episode).
    public var noDestinationLogged: Set<GroupName> = []
    /// Since when no server in view has been stopping while the directory says the cluster
    /// stops.
    public var clusterStopQuietSince: EngineTime?

    public init() {}
}

/// Everything one placement decision reads.
public struct PlacementInput: Sendable {
    public var config: ClusterConfig
    public var facts: ClusterFacts
    public var memory: PlacementMemory
    /// The directory this server persisted last (its epoch and version are a floor).
    public var persistedDirectory: Directory?
    /// As master of the current epoch: the version the epoch began with.
    public var epochStartVersion: UInt64
    /// This server has listened long enough since it (re)joined to judge a peer down.
    public var listenedEnough: Bool
    public var interval: Duration
    public var timeout: Duration

    public init(
        config: ClusterConfig, facts: ClusterFacts, memory: PlacementMemory = PlacementMemory(), persistedDirectory: Directory? = nil,
        epochStartVersion: UInt64 = 0, listenedEnough: Bool = true, interval: Duration, timeout: Duration
    ) {
        self.config = config
        self.facts = facts
        self.memory = memory
        self.persistedDirectory = persistedDirectory
        self.epochStartVersion = epochStartVersion
        self.listenedEnough = listenedEnough
        self.interval = interval
        self.timeout = timeout
    }
}

/// What one placement decision says.
public struct PlacementDecision: Sendable, Equatable {
    public enum Outcome: Sendable, Equatable {
        /// Nothing to change (or waiting until every connected server follows the epoch).
        case unchanged
        /// This server starts a new epoch as master; `from` names the master whose offered
        /// directory it took over (nil: its own, or a new cluster's first).
        case tookOver(Directory, from: ServerName?)
        /// A new version of the directory in the same epoch.
        case decided(Directory)
    }

    public var outcome: Outcome
    public var memory: PlacementMemory
    public var log: [LogEntry]

    /// The directory after the decision, when it changed.
    public var directory: Directory? {
        switch outcome {
        case .unchanged: nil
        case .tookOver(let directory, _), .decided(let directory): directory
        }
    }
}

public enum Placement {
    /// One decision of the master (see the top of this file).
    public static func plan(_ input: PlacementInput) -> PlacementDecision {
        var planner = Planner(input: input)
        let outcome = planner.run()
        return PlacementDecision(outcome: outcome, memory: planner.memory, log: planner.log)
    }
}

/// The working state of one `Placement.plan`.
struct Planner {
    let config: ClusterConfig
    var facts: ClusterFacts
    var memory: PlacementMemory
    var log: [LogEntry] = []
    let input: PlacementInput
    let view: [ServerName]

    var me: ServerName { facts.me }
    var now: EngineTime { facts.now }

    init(input: PlacementInput) {
        self.config = input.config
        self.facts = input.facts
        self.facts.memoize()
        self.memory = input.memory
        self.input = input
        self.view = input.facts.view
    }

    mutating func note(_ event: EventKind, level: LogLevel? = nil, _ message: String) {
        log.append(LogEntry(event, level: level, message))
    }

    mutating func run() -> PlacementDecision.Outcome {
        let directory = facts.directory
        let peersInView = view.filter { $0 != me }
        let reports = peersInView.compactMap { facts.report(of: $0) }
        let reportedEpochs = reports.compactMap(\.epoch)
        let reportedVersions = reports.map(\.appliedVersion)

        // Become master (again) with a term above every term in sight, so that every
        // connected server adopts this directory.
        let myEpoch = directory?.epoch
        let outranked = reportedEpochs.contains { epoch in
            guard let mine = myEpoch else { return true }
            guard epoch.term > mine.term || (epoch.term == mine.term && epoch.master != mine.master) else { return false }
            // The epoch of a master this server still hears, or whose datagrams still come,
            // but which is out of its view (it does not list this server, or its state cannot
            // be fetched) does not make this master start another: that master sees this
            // server's epoch and would start another in turn, at every heartbeat (found by
            // simulator seed 23706632: a LAN cut left one server a disk heartbeat to the
            // master, whose state it could not fetch; it led the third server's view while
            // the third followed the old master). Neither places anything until the views
            // agree again.
            if mine.master == me, epoch.master != me, !view.contains(epoch.master),
                facts.isUp(epoch.master) || facts.peer(epoch.master)?.presentUnheard == true
            {
                return false
            }
            return true
        }
        // Directories of peers in view that this server's does not include: the one of the
        // master it takes over from, or a follower's that declined this master's directory
        // because it misses decisions the follower knows (see `Directory.base`).
        let uncovered = reports.compactMap(\.directory).filter { offer in
            guard let mine = directory else { return true }
            return offer.epoch != mine.epoch && !mine.covers(offer.stamp)
        }
        // A leaving server stays master of its epoch to publish its last directory
        // (`finishLeavingIfDone`) but never starts another against a newer one: a peer that no
        // longer hears it has taken over, and the two would take the cluster from each other
        // at every heartbeat until it is gone (found by simulator seed 100016 with five
        // servers and another random draw: about 300 epochs in 1.4 s over a disk heartbeat).
        if facts.own.leaving, myEpoch?.master == me, outranked || !uncovered.isEmpty { return .unchanged }
        if myEpoch?.master != me || outranked || !uncovered.isEmpty {
            return takeOver(including: uncovered, reportedEpochs: reportedEpochs, reportedVersions: reportedVersions)
        }
        guard var dir = directory else { return .unchanged }
        // Act only once every connected server follows this epoch: their reports then
        // reflect every order of any earlier master.
        let settled = peersInView.allSatisfy { facts.report(of: $0)?.epoch == dir.epoch }
        guard settled else { return .unchanged }

        updateDownConfirmations()
        let next = dir.version + 1
        var changed = false

        // A shared UPS is out of power: the whole cluster stops, nothing fails over.
        if !dir.clusterStopping, facts.own.clusterStopRequested || reports.contains(where: { $0.clusterStopRequested == true }) {
            dir.clusterStopping = true
            changed = true
            note(
                .clusterStopRequested, level: .warning,
                "Cluster stop requested: a UPS feeding the cluster's shared storage is out of power.")
        }
        // A cluster stop is over once no server in view has been stopping for a while (the
        // servers that stopped are gone; those still here did not, or came back): groups are
        // placed again. Without this, a server whose stop was refused or that restarted would
        // leave the cluster unable to place anything, for good.
        if dir.clusterStopping {
            let quietFor = input.timeout + input.interval
            let stopping = facts.own.leaving || reports.contains { $0.leaving }
            if stopping {
                memory.clusterStopQuietSince = nil
            } else if let since = memory.clusterStopQuietSince {
                if now - since >= quietFor {
                    dir.clusterStopping = false
                    changed = true
                    memory.clusterStopQuietSince = nil
                    note(
                        .clusterStopOver,
                        "The cluster stop is over (no server has been stopping for \(quietFor.shortDescription)): groups are placed again.")
                }
            } else {
                memory.clusterStopQuietSince = now
            }
        }

        if !dir.startupDone && facts.own.syncDone {
            dir.startupDone = true
            changed = true
            for group in config.groups where group.startup == .auto {
                var entry = dir.entries[group.name] ?? DirectoryEntry()
                guard !entry.wanted else { continue }
                let suppressedHere = group.servers.filter { facts.isAutoStartSuppressed($0) }
                if !suppressedHere.isEmpty {
                    note(
                        .autoStartSuppressed,
                        "Group \(group.name) is not started automatically: \(suppressedHere.joined(separator: ", ")) stopped abnormally.")
                    continue
                }
                entry.wanted = true
                entry.startEvent = .start
                dir.entries[group.name] = entry
            }
        }

        for group in config.groups {
            let before = dir.entries[group.name] ?? DirectoryEntry()
            var entry = before
            decide(group, entry: &entry, directory: dir, nextVersion: next)
            if entry != before {
                dir.entries[group.name] = entry
                changed = true
            }
        }

        guard changed else { return .unchanged }
        dir.version = next
        return .decided(dir)
    }

    /// Starts a new epoch with this server as master, from the newest directory it knows:
    /// its own, or one a peer offers that its own does not include. Nothing is placed before
    /// every connected server follows the new epoch, so the decisions of any earlier master
    /// that a connected server knows are in this directory before it decides anything.
    mutating func takeOver(including offers: [Directory], reportedEpochs: [Epoch], reportedVersions: [UInt64]) -> PlacementDecision.Outcome
    {
        let directory = facts.directory
        let persisted = input.persistedDirectory
        // What this server's directory holds: as master of its epoch without a decision yet,
        // exactly what it started from; otherwise what its stamp says.
        let ownContent: DirectoryStamp? =
            if let mine = directory, mine.epoch.master == me, mine.version == input.epochStartVersion { mine.base } else {
                directory?.stamp
            }
        var source = directory
        var sourceStamp = ownContent
        var sourceServer: ServerName? = nil
        for offer in offers.sorted(by: { $0.stamp < $1.stamp }) where sourceStamp.map({ offer.stamp > $0 }) ?? true {
            source = offer
            sourceStamp = offer.stamp
            sourceServer = offer.epoch.master
        }
        let terms = [directory?.epoch.term ?? 0, persisted?.epoch.term ?? 0] + reportedEpochs.map(\.term) + offers.map(\.epoch.term)
        var fresh = source ?? Directory(epoch: Epoch(term: 0, master: me))
        if source == nil { fresh.founding = Founding(server: me, instance: facts.own.instance) }
        fresh.epoch = Epoch(term: (terms.max() ?? 0) + 1, master: me)
        let versions = [fresh.version, directory?.version ?? 0, persisted?.version ?? 0] + reportedVersions + offers.map(\.version)
        fresh.version = (versions.max() ?? 0) + 1
        // Everything superseded: this server's own directory and every offer.
        fresh.base = ([directory?.stamp, directory?.base, fresh.base] + offers.map(\.stamp)).compactMap { $0 }.max()
        if let sourceStamp, sourceServer != nil {
            note(.becameMaster, "\(me) is the master server (epoch \(fresh.epoch), from the directory \(sourceStamp)).")
        } else {
            note(.becameMaster, "\(me) is the master server (epoch \(fresh.epoch)).")
        }
        return .tookOver(fresh, from: sourceServer)
    }

    /// One group's placement decision.
    mutating func decide(_ group: GroupConfig, entry: inout DirectoryEntry, directory dir: Directory, nextVersion: UInt64) {
        if let owner = entry.owner {
            let ownerReport = facts.status(of: group.name, on: owner)
            let ownerRestarted = facts.instance(of: owner).map { $0 != entry.ownerInstance } ?? false
            // Also a peer that is heard but not connected (one-way link) and says it no
            // longer holds the group: it has fenced itself.
            let ownerLostIt =
                (view.contains(owner) || facts.isUp(owner)) && entry.wanted
                && ownerReport.map {
                    !$0.status.holdsResources && !$0.operatorStopped && $0.generation >= entry.generation && entry.generation > 0
                } ?? false
            if ownerRestarted || facts.isGone(owner) {
                release(&entry, directory: dir, nextVersion: nextVersion, because: "server \(owner) is down", failover: true, group: group)
            } else if ownerLostIt {
                // The owner ran this assignment and no longer holds the group (it fenced
                // itself after a stall or partition): place it again.
                release(
                    &entry, directory: dir, nextVersion: nextVersion, because: "server \(owner) lost the group", failover: true,
                    group: group)
            } else if !view.contains(owner) {
                // Lost, not yet confirmed: wait. A leaving server stops its groups itself.
                return
            } else if facts.isLeaving(owner) {
                if !(ownerReport?.status.holdsResources ?? false) {
                    release(
                        &entry, directory: dir, nextVersion: nextVersion, because: "server \(owner) stopped its cluster service",
                        failover: true, group: group)
                }
            } else if !entry.wanted {
                if !(ownerReport?.status.holdsResources ?? false) {
                    entry.owner = nil
                    entry.ownerInstance = nil
                }
            } else if let report = ownerReport, let request = report.monitorRequest, report.generation == entry.generation,
                report.status == .online || report.status == .onlineFailure
            {
                monitorRequested(request, group: group, owner: owner, entry: &entry, directory: dir, nextVersion: nextVersion)
            } else if let report = ownerReport, let failed = report.activationFailedResource,
                report.status == .onlineFailure, report.generation == entry.generation, entry.finalActionOn == nil
            {
                activationFailed(group, resource: failed, owner: owner, entry: &entry, directory: dir, nextVersion: nextVersion)
            } else if group.failback == .auto, !dir.suspended, !dir.clusterStopping, ownerReport?.status == .online,
                let better = failbackTarget(group, entry: entry, owner: owner, directory: dir)
            {
                note(.groupFailingBack, "Failing group \(group.name) back to \(better).")
                entry.beginMove(to: better, startEvent: .recover, releasedAt: nextVersion)
            }
        }
        guard entry.owner == nil else { return }
        let holders = facts.holders(of: group.name)
        if !holders.isEmpty {
            // Somebody still holds the group (stopping, or running under an order this
            // master never saw): adopt a lone, settled holder; otherwise wait.
            // A holder runs an assignment this master never saw exactly when its
            // generation is newer than the entry's (generations are directory versions).
            if entry.wanted, holders.count == 1, let holder = holders.first,
                facts.appliedVersion(of: holder) >= entry.releasedAt,
                let report = facts.status(of: group.name, on: holder),
                report.status == .online || report.status == .onlinePending,
                report.generation > entry.generation
            {
                entry.owner = holder
                entry.ownerInstance = facts.instance(of: holder)
                entry.generation = max(entry.generation, report.generation)
            }
            return
        }
        guard entry.wanted, dir.startupDone, !dir.suspended, !dir.clusterStopping else { return }
        let allApplied = view.allSatisfy { facts.appliedVersion(of: $0) >= entry.releasedAt }
        guard allApplied else { return }
        // A server of the group's policy that was lost and is not yet confirmed gone may have
        // started it meanwhile (under an order of a master this one never heard from, even
        // itself as that master): wait for the confirmation.
        // Also a server still up but out of the view whose reports have gone stale (a link
        // that broke one way): what it did since its last report is unknown. One whose
        // heartbeats still arrive tells what it holds (`holders`).
        // A server heard but out of the view tells what it holds only while it follows no
        // other master: one that does may start the group at any moment under that master's
        // order (a directory this master never saw).
        let unresolved = group.servers.filter {
            $0 != me && !view.contains($0) && !facts.isGone($0)
                && (!facts.isUp($0) || !(facts.peer($0)?.heardRecently ?? false) || !facts.followsNoOtherMaster($0, epoch: dir.epoch))
        }
        // A server never heard in this run took part in nothing this run decided; but a group
        // that has run before (generation above 0) may still be held, by a server frozen since
        // an earlier run of this one or of another master: only a whole timeout of listening
        // shows that server silent and its lease run out (found by simulator seed 95002336: a
        // master that had just restarted its service placed a group whose owner it had not
        // heard yet). A group never placed waits for nobody (a cluster's first start) — unless
        // a forced stop of that server is due (`fencing:`: it may run the group behind a split).
        guard
            unresolved.isEmpty
                || (unresolved.allSatisfy({
                    !facts.everHeard($0) && facts.peer($0)?.presentUnheard != true && facts.forcedStops[$0] == nil
                })
                    && (entry.generation == 0 || input.listenedEnough))
        else { return }
        guard let target = chooseTarget(group, entry: entry, directory: dir) else {
            if !memory.noDestinationLogged.contains(group.name) {
                memory.noDestinationLogged.insert(group.name)
                note(.groupUnplaceable, "No server can run group \(group.name) now.")
            }
            // Told to every server: a command waiting for the group to start learns it.
            if entry.unplaceable != true { entry.unplaceable = true }
            return
        }
        memory.noDestinationLogged.remove(group.name)
        entry.unplaceable = nil
        entry.owner = target
        entry.ownerInstance = facts.instance(of: target)
        entry.generation = nextVersion
        entry.preferredTarget = nil
        entry.finalActionOn = nil
        entry.finalAction = nil
        note(.groupPlaced, "Group \(group.name) goes to \(target) (CLP_EVENT=\(entry.startEvent.rawValue)).")
    }

    mutating func release(
        _ entry: inout DirectoryEntry, directory dir: Directory, nextVersion: UInt64, because reason: String, failover: Bool,
        group: GroupConfig
    ) {
        // The directory as this server had it before the decision (a cluster stop decided in
        // this same step does not count yet).
        guard let directory = facts.directory else { return }
        let owner = entry.owner ?? "?"
        entry.owner = nil
        entry.ownerInstance = nil
        entry.releasedAt = nextVersion
        entry.preferredTarget = nil
        if directory.clusterStopping || group.failover == .manual {
            entry.wanted = false
            note(
                .groupUnplaceable, level: .warning,
                "Group \(group.name) is not failed over (\(reason)): \(directory.clusterStopping ? "the cluster is stopping" : "its failover attribute is manual")."
            )
            return
        }
        if failover && entry.wanted {
            entry.startEvent = .failover
            note(.groupFailingOver, "Failing over group \(group.name) from \(owner): \(reason).")
        }
    }

    mutating func activationFailed(
        _ group: GroupConfig, resource: ResourceName, owner: ServerName, entry: inout DirectoryEntry, directory dir: Directory,
        nextVersion: UInt64
    ) {
        guard let policy = group.resources.first(where: { $0.name == resource })?.activation else { return }
        var probe = entry
        probe.failedOn.append(owner)
        let canFailOver =
            group.failover == .auto && !dir.suspended && !dir.clusterStopping
            && entry.failoverCount < policy.failover
            && chooseTarget(group, entry: probe, directory: dir) != nil
        if canFailOver {
            entry.failoverCount += 1
            entry.failedOn.append(owner)
            entry.beginFailover(to: nil, releasedAt: nextVersion)
            note(
                .activationFailover,
                "Activation of \(resource) failed on \(owner): failing group \(group.name) over (\(entry.failoverCount)/\(policy.failover))."
            )
        } else {
            entry.finalActionOn = owner
            entry.finalAction = policy.finalAction
            if policy.finalAction == .stopGroup {
                entry.wanted = false
                entry.stopFactor = .groupStop
                entry.stopEvent = .start
            }
            note(
                .activationFailoverExhausted,
                "Activation of \(resource) failed on \(owner) and no failover is left: final action \(policy.finalAction.rawValue).")
        }
    }

    /// A monitor on the owner asks to fail the group over (to the first other server that
    /// can take it) or to stop it (final action `stop-group`).
    mutating func monitorRequested(
        _ request: MonitorRequest, group: GroupConfig, owner: ServerName, entry: inout DirectoryEntry, directory dir: Directory,
        nextVersion: UInt64
    ) {
        switch request {
        case .stop:
            entry.wanted = false
            entry.stopFactor = .groupStop
            entry.stopEvent = .start
            entry.releasedAt = nextVersion
            entry.preferredTarget = nil
            note(.monitorStopGroup, "Stopping group \(group.name): final action of a monitor on \(owner).")
        case .failover:
            var probe = entry
            probe.failedOn.append(owner)
            probe.preferredTarget = nil
            guard !dir.suspended, !dir.clusterStopping, let target = chooseTarget(group, entry: probe, directory: dir) else {
                if !memory.noDestinationLogged.contains(group.name) {
                    memory.noDestinationLogged.insert(group.name)
                    note(.groupUnplaceable, "No other server can take group \(group.name) from \(owner) now.")
                }
                return
            }
            memory.noDestinationLogged.remove(group.name)
            entry.beginFailover(to: target, releasedAt: nextVersion)
            // No automatic failback to the server whose monitor failed, until an operator
            // places the group or that server restarts.
            if let failed = facts.instance(of: owner) {
                entry.monitorFailedOn = (entry.monitorFailedOn ?? [:]).merging([owner: failed]) { $1 }
            }
            note(.monitorFailover, "Failing group \(group.name) over from \(owner) to \(target): a monitor error on \(owner).")
        }
    }

    // MARK: - Targets

    /// Servers that may receive a group automatically, in policy order; the preferred
    /// target first. Exclusivity: complete never shares a server with another complete
    /// group; normal prefers a server without another normal group.
    func chooseTarget(_ group: GroupConfig, entry: DirectoryEntry, directory dir: Directory) -> ServerName? {
        var candidates = group.servers.filter { server in
            view.contains(server) && !facts.isLeaving(server) && !entry.failedOn.contains(server)
                && !facts.runsOtherConfiguration(server)
                && (!facts.isAutoStartSuppressed(server) || server == entry.preferredTarget)
        }
        if let preferred = entry.preferredTarget, let index = candidates.firstIndex(of: preferred) {
            candidates.remove(at: index)
            candidates.insert(preferred, at: 0)
        }
        if group.exclusive == .complete {
            candidates = candidates.filter {
                !facts.runsOtherExclusive(.complete, server: $0, except: group.name, groups: config.groups, directory: dir)
            }
        }
        if group.exclusive == .normal {
            let free = candidates.filter {
                !facts.runsOtherExclusive(.normal, server: $0, except: group.name, groups: config.groups, directory: dir)
            }
            if let first = free.first { return first }
        }
        return candidates.first
    }

    func failbackTarget(_ group: GroupConfig, entry: DirectoryEntry, owner: ServerName, directory dir: Directory) -> ServerName? {
        guard let ownerIndex = group.servers.firstIndex(of: owner) else { return nil }
        for server in group.servers[..<ownerIndex] {
            guard view.contains(server), !facts.isLeaving(server), !entry.failedOn.contains(server),
                !facts.isAutoStartSuppressed(server), !facts.runsOtherConfiguration(server),
                entry.monitorFailedOn?[server] == nil || entry.monitorFailedOn?[server] != facts.instance(of: server)
            else { continue }
            if group.exclusive == .complete
                && facts.runsOtherExclusive(.complete, server: server, except: group.name, groups: config.groups, directory: dir)
            {
                continue
            }
            return server
        }
        return nil
    }

    /// Records when every connected server first agreed that a peer is down.
    mutating func updateDownConfirmations() {
        for server in facts.servers where server != me {
            // A server present but not heard (another key, its state not fetched:
            // UnauthenticatedPeers.swift) is not down, also one confirmed down before its
            // datagrams came again (found by simulator seed 23121638: a partition healed as
            // both sides judged each other down; the held heartbeats came a moment after the
            // confirmation and the takeover went ahead).
            if view.contains(server) || facts.isUp(server) || facts.peer(server)?.presentUnheard == true {
                memory.downConfirmedAt[server] = nil
                continue
            }
            guard input.listenedEnough, memory.downConfirmedAt[server] == nil, facts.peer(server)?.pingConfirmsLoss ?? true else {
                continue
            }
            // A peer agrees only once it has listened a whole timeout in its current service
            // run: one that just (re)started has not heard the lost server yet, and that
            // server's lease, bound by the peer's echo from before its restart, may still run
            // (found by simulator seed 82001971: `clpcl -r` on the one server that still heard
            // a frozen server let the master take the frozen server's groups over within its
            // lease).
            let everyoneAgrees = view.filter { $0 != me }.allSatisfy { peer in
                !(facts.report(of: peer)?.view.contains(server) ?? true)
                    && (facts.peer(peer)?.upSince.map { now - $0 >= input.timeout } ?? false)
            }
            if everyoneAgrees {
                memory.downConfirmedAt[server] = now
                note(.serverDown, "Server \(server) is down.")
            }
        }
        // `isGone` reads the confirmations.
        facts.downConfirmedAt = memory.downConfirmedAt
    }
}
