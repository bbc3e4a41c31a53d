import UnderstudyModel

// `majority`: a server that loses the majority of the servers (Membership.quorum) stops its
// groups at once and runs the partition action; it rejoins when it regains quorum. A server
// without quorum from the start (alone at startup) only waits: it had nothing to lose.

/// The majority rule's verdict on this server over one run of its service.
struct MajorityRule: Sendable, Equatable {
    /// This server had quorum at some point since it (re)joined.
    var hadQuorum = false
    /// This server is on the losing side of a partition.
    var lost = false

    enum Change: Equatable {
        case none
        /// Quorum is back after a loss: rejoin.
        case regained
        /// Quorum is gone: give everything up.
        case lost
    }

    /// Tells whether this server has quorum now; says what that changes.
    mutating func observe(quorum: Bool, clusterStopping: Bool) -> Change {
        if quorum {
            let regained = lost
            lost = false
            hadQuorum = true
            return regained ? .regained : .none
        }
        guard hadQuorum, !lost else { return .none }
        // During a cluster stop the others leave one by one and nobody takes anything
        // over: finish the stop scripts instead of killing them.
        if clusterStopping { return .none }
        lost = true
        return .lost
    }

    /// Forget the verdict (a new service run, or a rejoin after a stall).
    mutating func reset() {
        hadQuorum = false
        lost = false
    }
}
