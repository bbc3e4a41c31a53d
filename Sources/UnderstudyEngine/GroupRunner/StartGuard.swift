import UnderstudyModel

// The last check before a group starts here (invariant I1, defence in depth). The master
// assigns a group only when no server may hold it; but a master can decide from a directory
// that misses a decision of an earlier master (a hand-over during a partition, a server that
// woke from a freeze), or from a peer's report that is older than what the peer did since.
// So the server that is told to start a group checks what it knows itself, and waits while:
// - a peer it hears reports the group as active there (starting, online, stopping), or
// - a directory this server replaced named another server as the group's owner, and that
//   server has not shown since that it let go (it follows the same directory and does not
//   hold the group, or it is gone: silent, restarted, or its service stopped).
// Waiting is always safe: once the other server stops the group (it follows the same master
// sooner or later) or is gone, the start goes ahead under the same assignment.

/// Another server held a group, or was assigned it, in a directory this server replaced.
struct PriorClaim: Sendable, Equatable {
    var holder: ServerName
    var holderInstance: ServerInstance?
    /// The directory that took the group from the holder.
    var replacedBy: DirectoryStamp
}

extension ServerEngine {
    /// Remembers, for every group whose owner the new directory changes away from another
    /// server, that this server must not start it before that server let it go.
    mutating func noteClaimsReplaced(by offered: Directory) {
        guard let old = directory else { return }
        for (group, entry) in old.entries {
            guard let holder = entry.owner, holder != me else { continue }
            let next = offered.entries[group]
            if next?.owner == holder && next?.ownerInstance == entry.ownerInstance { continue }
            priorClaims[group] = PriorClaim(holder: holder, holderInstance: entry.ownerInstance, replacedBy: offered.stamp)
        }
    }

    /// Why this server may not start the group now; nil when it may.
    mutating func startBlocker(_ group: GroupName, now: EngineTime) -> String? {
        for server in serverNames where server != me {
            guard let report = membership.report(of: server, now: now), let status = report.groups[group]?.status,
                status.holdsResources
            else { continue }
            return "\(server) reports it \(status.rawValue)"
        }
        guard let claim = priorClaims[group] else { return nil }
        if claimReleased(claim, group: group, now: now) {
            priorClaims[group] = nil
            return nil
        }
        return "\(claim.holder) held it under a directory before \(claim.replacedBy) and has not shown it let go"
    }

    func claimReleased(_ claim: PriorClaim, group: GroupName, now: EngineTime) -> Bool {
        // Silent for a timeout (of this server's running time): the master confirmed it
        // down before it assigned the group, and its lease ran out.
        guard membership.isUp(claim.holder, now: now), let report = membership.peers[claim.holder]?.report else { return true }
        if let instance = claim.holderInstance, report.instance != instance { return true }
        if report.groups[group]?.status.holdsResources ?? false { return false }
        // It follows no directory (cut off, or not joined): it runs no assignment at all.
        guard let theirs = report.epoch else { return true }
        // It follows the directory this server follows (from the change on, when that was
        // made in this epoch): it has let the group go where that directory says.
        guard let mine = directory, theirs == mine.epoch else { return false }
        return claim.replacedBy.epoch != mine.epoch || report.appliedVersion >= claim.replacedBy.version
    }
}
