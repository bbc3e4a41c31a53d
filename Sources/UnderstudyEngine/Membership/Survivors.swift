import UnderstudyModel

// Servers that come back after leaving cleanly do not found a cluster of their own while a
// server they left running may still run one.
//
// With `majority`, servers that left cleanly do not count: when s1 and s3 of three stop for
// maintenance, s2 keeps the groups alone. Should s1 and s3 start again while a partition
// hides s2 from them, they hold two of three, a majority by the file, and s2 holds one of
// one: without this rule both sides would run the groups (found by a simulator soak, seed
// 30006579). So a server records, as it stops cleanly, the servers still running the cluster
// (none after a cluster stop); until it has joined a cluster again it tells its peers, and
// no view founds a cluster without every server one of its members left running. Joining a
// running cluster is allowed (its master holds the newest directory). A server left running
// that is down for good keeps the others from founding until an operator says so:
// `clpcl --forget SERVER` (corosync's wait_for_all makes the same trade).
//
// The servers that stop for a cluster stop record nobody: they all stop. A server that does
// not (it started during the stop, or its stop order failed) must then not count them out of
// its majority while the stop lasts: alone it would hold one of one and run every group, and
// the others, back behind a partition, two of three (found by simulator seed 25003013). It
// counts them as lost instead (`Membership.departuresCountOut`): without a majority it runs
// nothing until they are back.

extension ServerEngine {
    /// As the service stops cleanly: who keeps running the cluster.
    mutating func recordLeftBehind(factor: StopFactor, now: EngineTime) {
        let clusterStop = factor == .clusterShutdown || directory?.clusterStopping == true
        // Servers present but not heard (another key, or their state not fetched) count as
        // running it: this server cannot tell (seed 9991105: a server that had run with the
        // wrong key left nobody behind, came back with the right one and founded a cluster
        // beside the one still running).
        let present = serverNames.filter { $0 != me && isSendingUnheard($0, now: now) }
        // So do servers heard within their timeout but out of the view (a cut one way: they
        // no longer echo this server, and may be running the cluster without it; found by
        // simulator seed 23113331: a server stopped 1.4 s after a one-way cut hid its peer, left
        // nobody behind, came back and started every group the peer ran).
        let heard = serverNames.filter { $0 != me && membership.isUp($0, now: now) }
        let running =
            clusterStop
            ? [] : Set(view(now: now) + heard + present).filter { $0 != me && !isLeaving($0, now: now) }.sorted()
        if persistent.leftBehind != running {
            persistent.leftBehind = running
            persistDirty = true
        }
    }

    /// This server is part of a cluster again (joined or founded one): what it left behind no
    /// longer binds it.
    mutating func rejoined() {
        guard !persistent.leftBehind.isEmpty else { return }
        persistent.leftBehind = []
        persistDirty = true
        heartbeatDirty = true
    }

    /// Servers that a member of the view left running and that the view does not hold: a
    /// cluster founded by this view could run groups a second time.
    func survivorsMissing(from view: [ServerName], now: EngineTime) -> [ServerName] {
        var needed = Set(directory == nil ? persistent.leftBehind : [])
        for peer in view where peer != me {
            needed.formUnion(membership.report(of: peer, now: now)?.waitsFor ?? [])
        }
        return needed.subtracting(view).sorted()
    }

    /// What this server tells its peers it waits for (nil: nothing; always nil once joined).
    var waitsForInHeartbeat: [ServerName]? {
        directory == nil && !persistent.leftBehind.isEmpty ? persistent.leftBehind : nil
    }

    /// Says once why nobody founds the cluster although the sync wait is over.
    mutating func noteFoundingBlocked(now: EngineTime) {
        guard syncDone, directory == nil, !isolated, currentMaster(now: now) == nil else {
            if directory != nil { loggedOnce.foundingBlocked = [] }
            return
        }
        let missing = survivorsMissing(from: view(now: now), now: now)
        guard !missing.isEmpty, Set(missing) != loggedOnce.foundingBlocked else { return }
        loggedOnce.foundingBlocked = Set(missing)
        log(
            .clusterNotFounded,
            "The cluster is not started: \(missing.joined(separator: ", ")) kept running it when servers here stopped and \(missing.count == 1 ? "is" : "are") not heard (a partition?). Start \(missing.count == 1 ? "it" : "them"), or if down for good: clpcl --forget \(missing.joined(separator: " "))."
        )
    }

    /// `clpcl --forget SERVER`: the operator's word that a server this one left running is
    /// down for good.
    mutating func forgetLeftBehind(_ server: ServerName) -> CommandResult {
        guard serverNames.contains(server) else { return CommandResult(.badUsage, "Unknown server \(server).") }
        guard persistent.leftBehind.contains(server) else {
            return .ok("\(me) does not wait for \(server).")
        }
        persistent.leftBehind.removeAll { $0 == server }
        persistDirty = true
        heartbeatDirty = true
        log(.survivorForgotten, "\(me) no longer waits for \(server) before founding the cluster (clpcl --forget).")
        return .ok()
    }
}
