import UnderstudyEngine
import UnderstudyModel

/// The encoded size of a server's heartbeats, as the daemon sends them (`WireJSON`), computed
/// from its parts: a heartbeat is a JSON object whose members encode independently, so its
/// size is the size of the rest of the heartbeat (its base) plus those of its directory and
/// group reports, the large parts. Those two are sized exactly, their sizes reused while they
/// equal the last ones (an equality check costs far less than encoding). The base is encoded
/// when its shape is new (`BaseShape`: its counts, flags and the lengths of its versions) or
/// when asked to (`remeasure`); otherwise the size of the last base of that shape is used, which
/// differs only in the digits of times and sequence numbers. With `remeasure` the result is
/// exact: `SimulatedCluster` checks it against a full encoding when it measures every
/// heartbeat (`--measure-every-heartbeat`), and `HeartbeatSizerTests` does.
struct HeartbeatSizer {
    private var directory: (value: Directory, size: Int)?
    private var groups: (value: [GroupName: GroupReport], size: Int)?
    private var bases: [BaseShape: Int] = [:]

    /// `"directory":` before the directory's own encoding, and the comma before the next member.
    private static let directoryMemberOverhead = "\"directory\":".utf8.count + 1
    /// An empty `groups` encodes as `{}`.
    private static let emptyObject = 2

    mutating func size(of heartbeat: Heartbeat, remeasure: Bool) -> Int {
        let shape = BaseShape(heartbeat)
        var size: Int
        if !remeasure, let known = bases[shape] {
            size = known
        } else {
            var base = heartbeat
            base.directory = nil
            base.groups = [:]
            size = WireJSON.encode(base).count - Self.emptyObject
            bases[shape] = size
        }
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

/// What makes the base of one heartbeat (all but its directory and reports) larger than
/// another's of the same server: its counts, its flags and optional parts, and the lengths of
/// its versions. Two bases of one shape differ in the digits of their times, boot ids and
/// sequence numbers only.
struct BaseShape: Hashable {
    var epoch: Int
    var appliedVersion: Int
    var heard: Int
    var view: Int
    var monitors: Int
    var flags: Int
    var waitsFor: Int

    init(_ heartbeat: Heartbeat) {
        epoch = heartbeat.epoch.map { Self.digits($0.term) &+ $0.master.utf8.count &* 32 } ?? -1
        appliedVersion = Self.digits(heartbeat.appliedVersion)
        heard = heartbeat.hears.count
        view = heartbeat.view.reduce(0) { $0 &+ $1.utf8.count &+ 3 }
        monitors = heartbeat.monitors?.reduce(0) { $0 &+ $1.key.utf8.count &+ $1.value.rawValue.utf8.count &+ 6 } ?? -1
        flags =
            (heartbeat.priority == nil ? 0 : 1) | (heartbeat.leaving ? 2 : 0) | (heartbeat.awaitingVouch ? 4 : 0)
            | (heartbeat.serviceUp ? 8 : 0) | (heartbeat.syncDone ? 16 : 0) | (heartbeat.autoStartSuppressed ? 32 : 0)
            | (heartbeat.clusterStopRequested == nil ? 0 : 64)
        waitsFor = heartbeat.waitsFor?.reduce(0) { $0 &+ $1.utf8.count &+ 3 } ?? -1
    }

    static func digits(_ number: UInt64) -> Int {
        var count = 1
        var rest = number / 10
        while rest > 0 {
            count += 1
            rest /= 10
        }
        return count
    }
}
