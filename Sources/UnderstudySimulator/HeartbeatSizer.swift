import UnderstudyEngine
import UnderstudyModel

/// The encoded size of a server's heartbeats, as the daemon sends them (`WireJSON`), computed
/// from its parts: a heartbeat is a JSON object whose members encode independently, so its
/// size is the size of the heartbeat without its directory and group reports (the large
/// parts) plus theirs. Those two rarely change from one heartbeat to the next: their sizes are
/// reused while they are equal to the last ones (an equality check costs far less than
/// encoding). `SimulatedCluster` checks the identity against a full encoding whenever it
/// measures every heartbeat (`--measure-every-heartbeat`), and `HeartbeatSizerTests` does.
struct HeartbeatSizer {
    private var directory: (value: Directory, size: Int)?
    private var groups: (value: [GroupName: GroupReport], size: Int)?

    /// `"directory":` before the directory's own encoding, and the comma before the next member.
    private static let directoryMemberOverhead = "\"directory\":".utf8.count + 1
    /// An empty `groups` encodes as `{}`.
    private static let emptyObject = 2

    mutating func size(of heartbeat: Heartbeat) -> Int {
        var base = heartbeat
        base.directory = nil
        base.groups = [:]
        var size = WireJSON.encode(base).count - Self.emptyObject
        if let cached = groups, cached.value == heartbeat.groups {
            size += cached.size
        } else {
            let groupsSize = WireJSON.encode(heartbeat.groups).count
            groups = (heartbeat.groups, groupsSize)
            size += groupsSize
        }
        if let offered = heartbeat.directory {
            if let cached = directory, cached.value == offered {
                size += Self.directoryMemberOverhead + cached.size
            } else {
                let directorySize = WireJSON.encode(offered).count
                directory = (offered, directorySize)
                size += Self.directoryMemberOverhead + directorySize
            }
        }
        return size
    }
}
