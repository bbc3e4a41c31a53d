import UnderstudyModel

/// An accepted group operation (start, stop, move) as the master wrote it into the
/// directory. The command that asked for it follows the group's real state through status
/// snapshots until the operation has happened, failed, or was superseded by a later command
/// (another operator's, from any server): it never waits for something that will not come.
public struct OperationTicket: Sendable, Codable, Equatable {
    public enum Kind: String, Sendable, Codable {
        case start, stop, move
    }

    public var kind: Kind
    public var group: GroupName
    /// Where the master sends the group (start, move).
    public var target: ServerName?
    /// The directory (master's epoch and version, and the cluster run it belongs to) that
    /// holds the operation.
    public var epoch: Epoch
    public var version: UInt64
    public var founding: Founding?

    public init(kind: Kind, group: GroupName, target: ServerName?, epoch: Epoch, version: UInt64, founding: Founding?) {
        self.kind = kind
        self.group = group
        self.target = target
        self.epoch = epoch
        self.version = version
        self.founding = founding
    }

    var stamp: DirectoryStamp { DirectoryStamp(epoch: epoch, version: version) }

    public enum Verdict: Sendable, Equatable {
        /// Not there yet: keep following.
        case pending
        /// It happened; an optional note for the operator.
        case done(String?)
        /// A later command changed the group before this one had happened (exit 4).
        case superseded(String)
        /// The directory this server follows does not hold the operation: the master that
        /// accepted it was replaced (or the cluster restarted) before it was applied. For a
        /// moment this can also mean that this server has not caught up with that master yet,
        /// so a command gives it a few seconds before it ends (exit 4).
        case lost(String)
        /// It cannot happen any more (exit 1).
        case failed(String)
    }

    /// Where the operation stands, as a server's status snapshot shows it.
    public func verdict(in snapshot: ClusterStatusSnapshot) -> Verdict {
        guard let line = snapshot.groups.first(where: { $0.name == group }) else { return .failed("Group \(group) is not configured.") }
        let place = line.current.map { "\(line.status.rawValue) on \($0)" } ?? line.status.rawValue
        guard let epoch = snapshot.epoch, let known = snapshot.directoryVersion else { return .pending }
        // Not applied here yet: the same epoch at an earlier version.
        if snapshot.directoryFounding == founding, epoch == self.epoch, known < version { return .pending }
        let includesIt =
            snapshot.directoryFounding == founding
            && (epoch == self.epoch || snapshot.directoryBase.map { $0 >= stamp } ?? false)
        if !includesIt {
            // Another master's directory without it (a master change, or the whole cluster
            // started anew), unless the group is where the command wanted it anyway.
            if goalReached(line) { return .done(nil) }
            return .lost(
                "The master changed before the command on group \(group) took effect; it is now \(place). Repeat it if needed.")
        }
        if let newer = line.operation, newer > version {
            return .superseded("Another command changed group \(group) before this one was done; it is now \(place).")
        }
        if (line.operation ?? 0) < version {
            // A directory that took over from a later one without the operation (a new
            // master chose another server's directory).
            if goalReached(line) { return .done(nil) }
            return .lost(
                "The master changed before the command on group \(group) took effect; it is now \(place). Repeat it if needed.")
        }
        let settled = line.status == .online && line.assignedTo == line.current
        if kind != .stop, line.unplaceable == true, line.wanted == true, !line.status.holdsResources {
            return .failed("No server of group \(group) can run it now (down, stopping, failed or suppressed after an abnormal stop).")
        }
        switch kind {
        case .start:
            if line.status == .online {
                return .done(line.current == target || target == nil ? nil : "Group \(group) runs on \(line.current ?? "?").")
            }
            if line.status == .onlineFailure { return .failed("Group \(group) failed to start on \(line.current ?? "?").") }
            // Started, then sent on to another server (a failback) and its stop failed: it waits
            // for the operator and starts nowhere by itself (found by simulator seed 24613293:
            // the command waited until its timeout). (Failed where it is assigned, a start there
            // may still come.)
            if line.status == .offlineFailure, line.assignedTo != line.current {
                return .failed(
                    "Group \(group) failed to stop on \(line.current ?? "?") after it started (\(place)); it waits for the operator.")
            }
            if line.wanted == false && !line.status.holdsResources {
                return .failed("Group \(group) was stopped before it was online (final action or cluster stop).")
            }
        case .stop:
            if line.status == .offline { return .done(nil) }
            if line.status == .offlineFailure { return .failed("Group \(group) failed to stop on \(line.current ?? "?").") }
        case .move:
            if line.status == .online, line.current == target { return .done(nil) }
            if line.status == .onlineFailure || line.status == .offlineFailure {
                return .failed("Group \(group) failed to move (\(place)).")
            }
            if settled { return .failed("Group \(group) did not move to \(target ?? "?"): it runs on \(line.current ?? "?").") }
            if line.wanted == false && !line.status.holdsResources { return .failed("Group \(group) was stopped before it moved.") }
        }
        return .pending
    }

    /// The group is where the command wanted it.
    func goalReached(_ line: ClusterStatusSnapshot.GroupLine) -> Bool {
        switch kind {
        case .start: return line.status == .online
        case .stop: return line.status == .offline
        case .move: return line.status == .online && line.current == target
        }
    }
}
