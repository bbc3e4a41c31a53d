import UnderstudyModel

// The master's decisions: startup placement, failover after a server loss or an activation
// failure, failback. The master writes them into the directory; every server (the master
// included) reconciles toward it. The master reassigns a group only when no server may hold
// it any more (invariant I1) and every connected server has applied the release.

extension ServerEngine {
    mutating func schedule(now: EngineTime) {
        let view = membership.view(now: now)
        let peersInView = view.filter { $0 != me }
        let reportedEpochs = peersInView.compactMap { membership.report(of: $0, now: now)?.epoch }
        let reportedVersions = peersInView.compactMap { membership.report(of: $0, now: now)?.appliedVersion }

        // Become master (again) with a term above every term in sight, so that every
        // connected server adopts this directory.
        let myEpoch = directory?.epoch
        let outranked = reportedEpochs.contains { epoch in
            guard let mine = myEpoch else { return true }
            return epoch.term > mine.term || (epoch.term == mine.term && epoch.master != mine.master)
        }
        // Directories of peers in view that this server's does not include: the one of the
        // master it takes over from, or a follower's that declined this master's directory
        // because it misses decisions the follower knows (see `Directory.base`).
        let uncovered = peersInView.compactMap { membership.report(of: $0, now: now)?.directory }.filter { offer in
            guard let mine = directory else { return true }
            return offer.epoch != mine.epoch && !mine.covers(offer.stamp)
        }
        if myEpoch?.master != me || outranked || !uncovered.isEmpty {
            takeOver(including: uncovered, reportedEpochs: reportedEpochs, reportedVersions: reportedVersions)
            return
        }
        guard var dir = directory else { return }
        // Act only once every connected server follows this epoch: their reports then
        // reflect every order of any earlier master.
        let settled = peersInView.allSatisfy { membership.report(of: $0, now: now)?.epoch == dir.epoch }
        guard settled else { return }

        updateDownConfirmations(view: view, now: now)
        let next = dir.version + 1
        var changed = false

        // A shared UPS is out of power: the whole cluster stops, nothing fails over.
        if !dir.clusterStopping,
            clusterStopRequested || peersInView.contains(where: { membership.report(of: $0, now: now)?.clusterStopRequested == true })
        {
            dir.clusterStopping = true
            changed = true
            log(
                .clusterStopRequested, level: .warning,
                "Cluster stop requested: a UPS feeding the cluster's shared storage is out of power.")
        }
        // A cluster stop is over once no server in view has been stopping for a while (the
        // servers that stopped are gone; those still here did not, or came back): groups are
        // placed again. Without this, a server whose stop was refused or that restarted would
        // leave the cluster unable to place anything, for good.
        if dir.clusterStopping {
            let stopping = isLeaving || peersInView.contains { membership.report(of: $0, now: now)?.leaving == true }
            if stopping {
                clusterStopQuietSince = nil
            } else if let since = clusterStopQuietSince {
                if now - since >= timeout + interval {
                    dir.clusterStopping = false
                    changed = true
                    clusterStopQuietSince = nil
                    log(
                        .clusterStopOver,
                        "The cluster stop is over (no server has been stopping for \((timeout + interval).shortDescription)): groups are placed again."
                    )
                }
            } else {
                clusterStopQuietSince = now
            }
        }

        if !dir.startupDone && syncDone {
            dir.startupDone = true
            changed = true
            for group in config.groups where group.startup == .auto {
                var entry = dir.entries[group.name] ?? DirectoryEntry()
                guard !entry.wanted else { continue }
                let suppressedHere = group.servers.filter { isAutoStartSuppressed($0, now: now) }
                if !suppressedHere.isEmpty {
                    log(
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
            decide(group, entry: &entry, directory: dir, view: view, nextVersion: next, now: now)
            if entry != before {
                dir.entries[group.name] = entry
                changed = true
            }
        }

        if changed {
            dir.version = next
            directory = dir
            persistDirty = true
            heartbeatDirty = true
        }
    }

    /// Starts a new epoch with this server as master, from the newest directory it knows:
    /// its own, or one a peer offers that its own does not include. Nothing is placed before
    /// every connected server follows the new epoch, so the decisions of any earlier master
    /// that a connected server knows are in this directory before it decides anything.
    mutating func takeOver(including offers: [Directory], reportedEpochs: [Epoch], reportedVersions: [UInt64]) {
        // What this server's directory holds: as master of its epoch without a decision yet,
        // exactly what it started from; otherwise what its stamp says.
        let ownContent: DirectoryStamp? =
            if let mine = directory, mine.epoch.master == me, mine.version == epochStartVersion { mine.base } else { directory?.stamp }
        var source = directory
        var sourceStamp = ownContent
        var sourceServer: ServerName? = nil
        for offer in offers.sorted(by: { $0.stamp < $1.stamp }) where sourceStamp.map({ offer.stamp > $0 }) ?? true {
            source = offer
            sourceStamp = offer.stamp
            sourceServer = offer.epoch.master
        }
        let terms =
            [directory?.epoch.term ?? 0, persistent.directory?.epoch.term ?? 0] + reportedEpochs.map(\.term) + offers.map(\.epoch.term)
        var fresh = source ?? Directory(epoch: Epoch(term: 0, master: me))
        if source == nil { fresh.founding = Founding(server: me, instance: instance) }
        fresh.epoch = Epoch(term: (terms.max() ?? 0) + 1, master: me)
        let versions =
            [fresh.version, directory?.version ?? 0, persistent.directory?.version ?? 0] + reportedVersions + offers.map(\.version)
        fresh.version = (versions.max() ?? 0) + 1
        // Everything superseded: this server's own directory and every offer.
        fresh.base = ([directory?.stamp, directory?.base, fresh.base] + offers.map(\.stamp)).compactMap { $0 }.max()
        if sourceServer != nil { noteClaimsReplaced(by: fresh) }
        directory = fresh
        rejoined()
        epochStartVersion = fresh.version
        persistDirty = true
        heartbeatDirty = true
        if let sourceStamp, sourceServer != nil {
            log(.becameMaster, "\(me) is the master server (epoch \(fresh.epoch), from the directory \(sourceStamp)).")
        } else {
            log(.becameMaster, "\(me) is the master server (epoch \(fresh.epoch)).")
        }
    }

    /// One group's placement decision.
    mutating func decide(
        _ group: GroupConfig, entry: inout DirectoryEntry, directory dir: Directory, view: [ServerName],
        nextVersion: UInt64, now: EngineTime
    ) {
        let holders = holders(of: group.name, now: now)
        if let owner = entry.owner {
            let ownerReport = status(of: group.name, on: owner, now: now)
            let ownerRestarted = instance(of: owner, now: now).map { $0 != entry.ownerInstance } ?? false
            // Also a peer that is heard but not connected (one-way link) and says it no
            // longer holds the group: it has fenced itself.
            let ownerLostIt =
                (view.contains(owner) || membership.isUp(owner, now: now)) && entry.wanted
                && ownerReport.map {
                    !$0.status.holdsResources && !$0.operatorStopped && $0.generation >= entry.generation && entry.generation > 0
                } ?? false
            if ownerRestarted || isGone(owner, now: now) {
                release(&entry, nextVersion: nextVersion, because: "server \(owner) is down", failover: true, group: group)
            } else if ownerLostIt {
                // The owner ran this assignment and no longer holds the group (it fenced
                // itself after a stall or partition): place it again.
                release(&entry, nextVersion: nextVersion, because: "server \(owner) lost the group", failover: true, group: group)
            } else if !view.contains(owner) {
                // Lost, not yet confirmed: wait. A leaving server stops its groups itself.
                return
            } else if isLeaving(owner, now: now) {
                if !(ownerReport?.status.holdsResources ?? false) {
                    release(
                        &entry, nextVersion: nextVersion, because: "server \(owner) stopped its cluster service", failover: true,
                        group: group)
                }
            } else if !entry.wanted {
                if !(ownerReport?.status.holdsResources ?? false) {
                    entry.owner = nil
                    entry.ownerInstance = nil
                }
            } else if let report = ownerReport, let request = report.monitorRequest, report.generation == entry.generation,
                report.status == .online || report.status == .onlineFailure
            {
                monitorRequested(request, group: group, owner: owner, entry: &entry, directory: dir, nextVersion: nextVersion, now: now)
            } else if let report = ownerReport, let failed = report.activationFailedResource,
                report.status == .onlineFailure, report.generation == entry.generation, entry.finalActionOn == nil
            {
                activationFailed(group, resource: failed, owner: owner, entry: &entry, directory: dir, nextVersion: nextVersion, now: now)
            } else if group.failback == .auto, !dir.suspended, !dir.clusterStopping, ownerReport?.status == .online,
                let better = failbackTarget(group, entry: entry, owner: owner, directory: dir, now: now)
            {
                log(.groupFailingBack, "Failing group \(group.name) back to \(better).")
                entry.beginMove(to: better, startEvent: .recover, releasedAt: nextVersion)
            }
        }
        guard entry.owner == nil else { return }
        if !holders.isEmpty {
            // Somebody still holds the group (stopping, or running under an order this
            // master never saw): adopt a lone, settled holder; otherwise wait.
            // A holder runs an assignment this master never saw exactly when its
            // generation is newer than the entry's (generations are directory versions).
            if entry.wanted, holders.count == 1, let holder = holders.first,
                appliedVersion(of: holder, now: now) >= entry.releasedAt,
                let report = status(of: group.name, on: holder, now: now),
                report.status == .online || report.status == .onlinePending,
                report.generation > entry.generation
            {
                entry.owner = holder
                entry.ownerInstance = instance(of: holder, now: now)
                entry.generation = max(entry.generation, report.generation)
            }
            return
        }
        guard entry.wanted, dir.startupDone, !dir.suspended, !dir.clusterStopping else { return }
        let allApplied = view.allSatisfy { appliedVersion(of: $0, now: now) >= entry.releasedAt }
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
            $0 != me && !view.contains($0) && !isGone($0, now: now)
                && (!membership.isUp($0, now: now) || !membership.heardWithin($0, interval * 2, now: now)
                    || !followsNoOtherMaster($0, directory: dir, now: now))
        }
        guard unresolved.isEmpty || unresolved.allSatisfy({ !everHeard($0) }) else { return }
        guard let target = chooseTarget(group, entry: entry, directory: dir, view: view, now: now) else {
            if !noDestinationLogged.contains(group.name) {
                noDestinationLogged.insert(group.name)
                log(.groupUnplaceable, "No server can run group \(group.name) now.")
            }
            // Told to every server: a command waiting for the group to start learns it.
            if entry.unplaceable != true { entry.unplaceable = true }
            return
        }
        noDestinationLogged.remove(group.name)
        entry.unplaceable = nil
        entry.owner = target
        entry.ownerInstance = instance(of: target, now: now)
        entry.generation = nextVersion
        entry.preferredTarget = nil
        entry.finalActionOn = nil
        entry.finalAction = nil
        log(.groupPlaced, "Group \(group.name) goes to \(target) (CLP_EVENT=\(entry.startEvent.rawValue)).")
    }

    mutating func release(
        _ entry: inout DirectoryEntry, nextVersion: UInt64, because reason: String, failover: Bool, group: GroupConfig
    ) {
        guard let directory else { return }
        let owner = entry.owner ?? "?"
        entry.owner = nil
        entry.ownerInstance = nil
        entry.releasedAt = nextVersion
        entry.preferredTarget = nil
        if directory.clusterStopping || group.failover == .manual {
            entry.wanted = false
            log(
                .groupUnplaceable, level: .warning,
                "Group \(group.name) is not failed over (\(reason)): \(directory.clusterStopping ? "the cluster is stopping" : "its failover attribute is manual")."
            )
            return
        }
        if failover && entry.wanted {
            entry.startEvent = .failover
            log(.groupFailingOver, "Failing over group \(group.name) from \(owner): \(reason).")
        }
    }

    mutating func activationFailed(
        _ group: GroupConfig, resource: ResourceName, owner: ServerName, entry: inout DirectoryEntry,
        directory dir: Directory, nextVersion: UInt64, now: EngineTime
    ) {
        guard let policy = group.resources.first(where: { $0.name == resource })?.activation else { return }
        var probe = entry
        probe.failedOn.append(owner)
        let view = membership.view(now: now)
        let canFailOver =
            group.failover == .auto && !dir.suspended && !dir.clusterStopping
            && entry.failoverCount < policy.failover
            && chooseTarget(group, entry: probe, directory: dir, view: view, now: now) != nil
        if canFailOver {
            entry.failoverCount += 1
            entry.failedOn.append(owner)
            entry.beginFailover(to: nil, releasedAt: nextVersion)
            log(
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
            log(
                .activationFailoverExhausted,
                "Activation of \(resource) failed on \(owner) and no failover is left: final action \(policy.finalAction.rawValue).")
        }
    }

    /// A monitor on the owner asks to fail the group over (to the first other server that
    /// can take it) or to stop it (final action `stop-group`).
    mutating func monitorRequested(
        _ request: MonitorRequest, group: GroupConfig, owner: ServerName, entry: inout DirectoryEntry,
        directory dir: Directory, nextVersion: UInt64, now: EngineTime
    ) {
        switch request {
        case .stop:
            entry.wanted = false
            entry.stopFactor = .groupStop
            entry.stopEvent = .start
            entry.releasedAt = nextVersion
            entry.preferredTarget = nil
            log(.monitorStopGroup, "Stopping group \(group.name): final action of a monitor on \(owner).")
        case .failover:
            var probe = entry
            probe.failedOn.append(owner)
            probe.preferredTarget = nil
            let view = membership.view(now: now)
            guard !dir.suspended, !dir.clusterStopping,
                let target = chooseTarget(group, entry: probe, directory: dir, view: view, now: now)
            else {
                if !noDestinationLogged.contains(group.name) {
                    noDestinationLogged.insert(group.name)
                    log(.groupUnplaceable, "No other server can take group \(group.name) from \(owner) now.")
                }
                return
            }
            noDestinationLogged.remove(group.name)
            entry.beginFailover(to: target, releasedAt: nextVersion)
            // No automatic failback to the server whose monitor failed, until an operator
            // places the group or that server restarts.
            if let failed = instance(of: owner, now: now) {
                entry.monitorFailedOn = (entry.monitorFailedOn ?? [:]).merging([owner: failed]) { $1 }
            }
            log(.monitorFailover, "Failing group \(group.name) over from \(owner) to \(target): a monitor error on \(owner).")
        }
    }

    // MARK: - Targets

    /// Servers that may receive a group automatically, in policy order; the preferred
    /// target first. Exclusivity: complete never shares a server with another complete
    /// group; normal prefers a server without another normal group.
    func chooseTarget(
        _ group: GroupConfig, entry: DirectoryEntry, directory dir: Directory, view: [ServerName], now: EngineTime
    ) -> ServerName? {
        var candidates = group.servers.filter { server in
            view.contains(server) && !isLeaving(server, now: now) && !entry.failedOn.contains(server)
                && (!isAutoStartSuppressed(server, now: now) || server == entry.preferredTarget)
        }
        if let preferred = entry.preferredTarget, let index = candidates.firstIndex(of: preferred) {
            candidates.remove(at: index)
            candidates.insert(preferred, at: 0)
        }
        if group.exclusive == .complete {
            candidates = candidates.filter { !runsOtherExclusive(.complete, server: $0, except: group.name, directory: dir, now: now) }
        }
        if group.exclusive == .normal {
            let free = candidates.filter { !runsOtherExclusive(.normal, server: $0, except: group.name, directory: dir, now: now) }
            if let first = free.first { return first }
        }
        return candidates.first
    }

    func runsOtherExclusive(
        _ kind: GroupConfig.Exclusive, server: ServerName, except: GroupName, directory dir: Directory, now: EngineTime
    ) -> Bool {
        config.groups.contains { other in
            guard other.name != except, other.exclusive == kind else { return false }
            if dir.entries[other.name]?.owner == server { return true }
            return status(of: other.name, on: server, now: now)?.status.holdsResources ?? false
        }
    }

    func failbackTarget(
        _ group: GroupConfig, entry: DirectoryEntry, owner: ServerName, directory dir: Directory, now: EngineTime
    ) -> ServerName? {
        guard let ownerIndex = group.servers.firstIndex(of: owner) else { return nil }
        let view = membership.view(now: now)
        var probe = entry
        probe.preferredTarget = nil
        for server in group.servers[..<ownerIndex] {
            guard view.contains(server), !isLeaving(server, now: now), !entry.failedOn.contains(server),
                !isAutoStartSuppressed(server, now: now),
                entry.monitorFailedOn?[server] == nil || entry.monitorFailedOn?[server] != instance(of: server, now: now)
            else { continue }
            if group.exclusive == .complete && runsOtherExclusive(.complete, server: server, except: group.name, directory: dir, now: now) {
                continue
            }
            return server
        }
        return nil
    }

    // MARK: - What the master knows of the others

    /// Servers that hold (or may hold) a group: this one from its own state, peers from their
    /// newest heartbeat unless they are gone (down and confirmed, or left cleanly).
    func holders(of group: GroupName, now: EngineTime) -> [ServerName] {
        serverNames.filter { server in
            if server == me { return locals[group]?.status.holdsResources ?? false }
            // Alive for the others but not heard here (one-way link, or it came back while
            // this server was cut off): its state is unknown, so it may hold anything.
            if !membership.isUp(server, now: now) && heardByPeers(server, now: now) { return true }
            guard let report = membership.peers[server]?.report else { return false }
            // A server that left cleanly said in its farewell what it still holds (a group
            // stuck in Offline Failure); a crashed one holds nothing once confirmed down.
            if !report.serviceUp { return report.groups[group]?.status.holdsResources ?? false }
            if isGone(server, now: now) { return false }
            if report.groups[group]?.status.holdsResources ?? false { return true }
            // Lost but not yet confirmed gone: since its last report it may have started
            // what the directory assigned to it.
            return !membership.isUp(server, now: now) && directory?.entries[group]?.owner == server
        }
    }

    /// A peer whose groups are certainly gone: it left cleanly, or every connected server
    /// agrees it is down and the takeover margin has passed (with majority resolution it
    /// has fenced itself by then).
    func isGone(_ server: ServerName, now: EngineTime) -> Bool {
        guard server != me else { return false }
        if heardByPeers(server, now: now) { return false }
        if let report = membership.peers[server]?.report, !report.serviceUp { return true }
        if membership.isUp(server, now: now) { return false }
        // Down or never heard: only the agreement of every connected server plus the
        // margin proves it holds nothing (a server never heard may still run groups).
        guard let confirmed = downConfirmedAt[server] else { return false }
        return now - confirmed >= takeoverMargin
    }

    /// The peer's newest report follows this master's epoch or none (isolated, or not
    /// joined yet).
    func followsNoOtherMaster(_ server: ServerName, directory dir: Directory, now: EngineTime) -> Bool {
        guard let report = membership.report(of: server, now: now) else { return false }
        return report.epoch == nil || report.epoch == dir.epoch
    }

    /// This server has heard the peer in its current service run (a server never heard
    /// cannot have taken part in anything this one decided).
    func everHeard(_ server: ServerName) -> Bool {
        membership.peers[server]?.report != nil
    }

    /// A connected peer says it hears this server now.
    func heardByPeers(_ server: ServerName, now: EngineTime) -> Bool {
        // The echo first: it is a lookup, connectedness a computation (this runs per server
        // and group at every step of the master).
        serverNames.contains { peer in
            peer != me && peer != server && membership.peers[peer]?.report?.hears[server] != nil
                && membership.isConnected(peer, now: now)
        }
    }

    /// Records when every connected server first agreed that a peer is down.
    mutating func updateDownConfirmations(view: [ServerName], now: EngineTime) {
        let listenedEnough = now - listeningSince >= (listenFully ? rejoinListen : timeout)
        for server in serverNames where server != me {
            if view.contains(server) || membership.isUp(server, now: now) {
                downConfirmedAt[server] = nil
                continue
            }
            guard listenedEnough, downConfirmedAt[server] == nil, pingConfirms(server) else { continue }
            let everyoneAgrees = view.filter { $0 != me }.allSatisfy { peer in
                !(membership.report(of: peer, now: now)?.view.contains(server) ?? true)
            }
            if everyoneAgrees {
                downConfirmedAt[server] = now
                log(.serverDown, "Server \(server) is down.")
            }
        }
    }

    func status(of group: GroupName, on server: ServerName, now: EngineTime) -> GroupReport? {
        if server == me {
            guard let local = locals[group] else { return nil }
            return GroupReport(
                status: local.status, resources: local.resourceStatus, generation: local.generation,
                activationFailedResource: local.activationFailedResource, operatorStopped: local.operatorStopped,
                monitorRequest: local.monitorRequest)
        }
        return membership.peers[server]?.report?.groups[group]
    }

    func appliedVersion(of server: ServerName, now: EngineTime) -> UInt64 {
        if server == me { return directory?.version ?? 0 }
        return membership.report(of: server, now: now)?.appliedVersion ?? 0
    }

    func instance(of server: ServerName, now: EngineTime) -> ServerInstance? {
        if server == me { return instance }
        return membership.peers[server]?.report?.instance
    }

    func isLeaving(_ server: ServerName, now: EngineTime) -> Bool {
        if server == me { return isLeaving }
        return membership.report(of: server, now: now)?.leaving ?? false
    }

    func isAutoStartSuppressed(_ server: ServerName, now: EngineTime) -> Bool {
        if server == me { return autoStartSuppressed }
        return membership.peers[server]?.report?.autoStartSuppressed ?? false
    }
}
