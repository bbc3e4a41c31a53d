import UnderstudyEngine
import UnderstudyModel

/// The encoded size of the cluster's heartbeats, as the daemon sends them (`WireJSON`),
/// computed from their parts: a heartbeat is a JSON object whose members encode
/// independently, so its size is the size of the rest of the heartbeat (its base) plus those
/// of its directory and group reports, the large parts. Those two are sized exactly, member
/// by member (a group's report, a directory entry), each member's size reused while it equals
/// the last one the same server sent (an equality check costs far less than encoding; a
/// decision changes a few entries). The base is encoded when its shape is new (`BaseShape`:
/// its counts, flags and the lengths of its names and versions; shapes are shared by all
/// servers) or when asked to (`remeasure`); otherwise the size of the last base of that shape
/// is used, which differs only in the digits of times and sequence numbers. With `remeasure`
/// the result is exact: `SimulatedCluster` checks it against a full encoding when it measures
/// every heartbeat (`--measure-every-heartbeat`), and `HeartbeatSizerTests` does.
struct HeartbeatSizer {
    /// What one server sent last: its directory and reports, with their sizes.
    private struct SenderParts {
        var directory: (value: Directory, size: Int)?
        var directoryRest: (value: Directory, size: Int)?
        var entries = ObjectSizer<DirectoryEntry>()
        var groups = ObjectSizer<GroupReport>()
    }

    private var senders: [ServerName: SenderParts] = [:]
    private var bases: [BaseShape: Int] = [:]

    /// `"directory":` before the directory's own encoding, and the comma before the next member.
    private static let directoryMemberOverhead = "\"directory\":".utf8.count + 1
    /// An empty `groups` or `entries` encodes as `{}`.
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
        var parts = senders.removeValue(forKey: heartbeat.sender) ?? SenderParts()
        size += parts.groups.size(of: heartbeat.groups)
        if let offered = heartbeat.directory {
            size += Self.directoryMemberOverhead + Self.directorySize(offered, parts: &parts)
        }
        senders[heartbeat.sender] = parts
        return size
    }

    /// A directory's size: the rest of it (epoch, version, flags) plus its entries.
    private static func directorySize(_ offered: Directory, parts: inout SenderParts) -> Int {
        if let cached = parts.directory, cached.value == offered { return cached.size }
        var rest = offered
        rest.entries = [:]
        let restSize: Int
        if let cached = parts.directoryRest, cached.value == rest {
            restSize = cached.size
        } else {
            restSize = WireJSON.encode(rest).count - Self.emptyObject
            parts.directoryRest = (rest, restSize)
        }
        let size = restSize + parts.entries.size(of: offered.entries)
        parts.directory = (offered, size)
        return size
    }
}

/// The encoded size of JSON objects keyed by name (`[name: value]`), from the sizes of their
/// members (`"name":value`), each reused while its value equals the last one of that name.
struct ObjectSizer<Value: Encodable & Equatable> {
    private var members: [String: (value: Value, size: Int)] = [:]

    mutating func size(of object: [String: Value]) -> Int {
        if object.isEmpty { return 2 }
        // The braces, and a comma between two members.
        var total = object.count + 1
        for (name, value) in object {
            if let known = members[name], known.value == value {
                total += known.size
                continue
            }
            // `{"name":value}` without its braces.
            let size = WireJSON.encode([name: value]).count - 2
            members[name] = (value, size)
            total += size
        }
        // Forget members of names no longer sent (groups and entries come and go rarely).
        if members.count > 2 * object.count + 16 { members = members.filter { object[$0.key] != nil } }
        return total
    }
}

/// What makes the base of one heartbeat (all but its directory and reports) larger than
/// another's: its counts, its flags and optional parts, and the lengths of its names and
/// versions. Two bases of one shape differ in the digits of their times, boot ids and
/// sequence numbers only.
struct BaseShape: Hashable {
    /// The lengths of the sender's name and of its configuration's hash.
    var sender: Int
    var epoch: Int
    var appliedVersion: Int
    var heard: Int
    var heardNames: Int
    /// How many of the heard servers come with the start of their up-period.
    var heardSince: Int
    var view: Int
    var monitors: Int
    var flags: Int
    var waitsFor: Int

    init(_ heartbeat: Heartbeat) {
        sender = heartbeat.sender.utf8.count &+ heartbeat.configHash.utf8.count &* 256
        epoch = heartbeat.epoch.map { Self.digits($0.term) &+ $0.master.utf8.count &* 32 } ?? -1
        appliedVersion = Self.digits(heartbeat.appliedVersion)
        heard = heartbeat.hears.count
        heardNames = heartbeat.hears.keys.reduce(0) { $0 &+ $1.utf8.count }
        heardSince = heartbeat.hears.values.reduce(0) { $0 &+ ($1.upSince == nil ? 0 : 1) }
        view = heartbeat.view.reduce(0) { $0 &+ $1.utf8.count &+ 3 }
        monitors = heartbeat.monitors?.reduce(0) { $0 &+ $1.key.utf8.count &+ $1.value.rawValue.utf8.count &+ 6 } ?? -1
        flags =
            (heartbeat.priority == nil ? 0 : 1) | (heartbeat.leaving ? 2 : 0) | (heartbeat.awaitingVouch ? 4 : 0)
            | (heartbeat.serviceUp ? 8 : 0) | (heartbeat.syncDone ? 16 : 0) | (heartbeat.autoStartSuppressed ? 32 : 0)
            | (heartbeat.clusterStopRequested == nil ? 0 : 64) | (heartbeat.configOutsider == nil ? 0 : 128)
            | (heartbeat.configVersion.map { Self.digits($0) &* 256 } ?? 0)
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
