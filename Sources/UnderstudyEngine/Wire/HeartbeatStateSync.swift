import UnderstudyModel

// A heartbeat is one bounded datagram whatever the cluster holds (ARCHITECTURE.md §11).
//
// What grows with the groups — every group's report, the monitors in exception and the
// directory — is the sender's *state*. It is numbered: `stateSeq` grows by one whenever any
// of it changes, within one service run of the sender (`ServerInstance`). Every datagram
// carries the rest of the heartbeat (the *core*: liveness, echoes, view, epoch, flags;
// bounded by the number of servers) and the state's number; the state itself travels as a
// delta:
// - inline, in the datagrams sent during the `HeartbeatOutbox.repeatCount` heartbeats after
//   a change, when the delta is small (a few groups changed), or every time when the whole
//   state is tiny (`alwaysInlineLimit`);
// - otherwise fetched over the control channel by a receiver that does not have it (it
//   missed the inline copies, it restarted, or the change was large), which gets the
//   sender's last heartbeat with the delta from the number it has.
// A receiver delivers a heartbeat to its Engine only with the state of the same number: the
// Engine sees exactly the heartbeats the sender made, some later (a fetch) and some not at
// all (a datagram whose state could not be had), which is delay and loss, the faults the
// Engine is built for. Nothing changes in what a heartbeat means.

/// The state of a server between two of its state numbers, or the whole state (`from` 0).
/// A delta from `from` applies to a copy of any number from `from` to `to`: it holds the
/// newest value of every item that changed after `from` and every item removed after it.
public struct StateDelta: Sendable, Codable, Equatable {
    public var from: UInt64
    public var to: UInt64
    public var groups: [GroupName: GroupReport]?
    public var groupsRemoved: [GroupName]?
    public var monitors: [String: MonitorStatus]?
    public var monitorsRemoved: [String]?
    /// The directory without its entries, when it changed (or appeared).
    public var directory: Directory?
    /// The sender no longer offers a directory.
    public var directoryRemoved: Bool?
    public var entries: [GroupName: DirectoryEntry]?
    public var entriesRemoved: [GroupName]?

    public init(from: UInt64, to: UInt64) {
        self.from = from
        self.to = to
    }
}

/// A server's state as a receiver has assembled it.
public struct HeartbeatState: Sendable, Equatable {
    public var groups: [GroupName: GroupReport] = [:]
    public var monitors: [String: MonitorStatus] = [:]
    public var directory: Directory?

    public init() {}

    mutating func apply(_ delta: StateDelta) {
        if delta.from == 0 { self = HeartbeatState() }
        for (name, report) in delta.groups ?? [:] { groups[name] = report }
        for name in delta.groupsRemoved ?? [] { groups[name] = nil }
        for (name, status) in delta.monitors ?? [:] { monitors[name] = status }
        for name in delta.monitorsRemoved ?? [] { monitors[name] = nil }
        if delta.directoryRemoved == true { directory = nil }
        if var header = delta.directory {
            header.entries = directory?.entries ?? [:]
            directory = header
        }
        if directory != nil {
            for (name, entry) in delta.entries ?? [:] { directory?.entries[name] = entry }
            for name in delta.entriesRemoved ?? [] { directory?.entries[name] = nil }
        }
    }

    /// `core` (a heartbeat without state) with this state.
    func completing(_ core: Heartbeat) -> Heartbeat {
        var heartbeat = core
        heartbeat.groups = groups
        heartbeat.monitors = monitors.isEmpty ? nil : monitors
        heartbeat.directory = directory
        return heartbeat
    }
}

/// What travels on every heartbeat path: the core, the state's number and, sometimes, a
/// delta of the state.
public struct HeartbeatDatagram: Sendable, Equatable {
    /// The heartbeat without its state (`groups` empty, `monitors` and `directory` nil).
    public var core: Heartbeat
    public var stateSeq: UInt64
    public var inline: StateDelta?

    public init(core: Heartbeat, stateSeq: UInt64, inline: StateDelta? = nil) {
        self.core = core
        self.stateSeq = stateSeq
        self.inline = inline
    }
}

/// Items of one kind with the state number at which each last changed, and the number at
/// which each removed one went.
struct VersionedTable<Value: Equatable & Sendable>: Sendable {
    private(set) var values: [String: (value: Value, changedAt: UInt64)] = [:]
    private var removedAt: [String: UInt64] = [:]

    /// Makes the table hold `current`, stamping what changed with `seq`; whether anything did.
    mutating func update(to current: [String: Value], seq: UInt64) -> Bool {
        var changed = false
        for (name, value) in current where values[name]?.value != value {
            values[name] = (value, seq)
            removedAt[name] = nil
            changed = true
        }
        if values.count > current.count {
            for name in values.keys where current[name] == nil {
                values[name] = nil
                removedAt[name] = seq
                changed = true
            }
        }
        return changed
    }

    /// The newest values of the items changed after `seq`, and the items removed after it.
    func changes(since seq: UInt64) -> (values: [String: Value]?, removed: [String]?) {
        var changed: [String: Value] = [:]
        for (name, item) in values where item.changedAt > seq { changed[name] = item.value }
        let removed = seq == 0 ? [] : removedAt.filter { $0.value > seq }.map(\.key).sorted()
        return (changed.isEmpty ? nil : changed, removed.isEmpty ? nil : removed)
    }

    /// How many items changed or went after `seq` (no copies).
    func changeCount(since seq: UInt64) -> Int {
        values.values.reduce(0) { $0 + ($1.changedAt > seq ? 1 : 0) } + removedAt.values.reduce(0) { $0 + ($1 > seq ? 1 : 0) }
    }
}

/// The sender's side: numbers its state, keeps what changed when, and puts deltas inline or
/// answers fetches. One per service run (a new run starts at number 0 again: receivers tell
/// runs apart by the heartbeat's instance).
public struct HeartbeatOutbox: Sendable {
    /// A whole state this small travels in every heartbeat: small clusters never fetch.
    public static let alwaysInlineLimit = 1_024
    /// The largest delta put inline (its JSON): with the core, a heartbeat stays one datagram
    /// (a change of a few hundred groups at once still travels without a fetch).
    public static let inlineLimit = 40 * 1_024
    /// A delta larger than this many items is not even encoded to see whether it fits.
    static let inlineItemLimit = 512
    /// Heartbeats after a change that carry it inline (a receiver that lost them fetches).
    public static let repeatCount = 3

    public private(set) var stateSeq: UInt64 = 0
    private var groups = VersionedTable<GroupReport>()
    private var monitors = VersionedTable<MonitorStatus>()
    private var entries = VersionedTable<DirectoryEntry>()
    /// The directory without its entries, and when it last changed or went.
    private var header: Directory?
    private var headerChangedAt: UInt64 = 0
    /// The state numbers of the last `repeatCount` heartbeats sent, oldest first.
    private var recent: [UInt64] = []
    /// The last heartbeat sent (what a fetch gets).
    public private(set) var lastCore: Heartbeat?
    /// Measures a delta as it travels (its JSON); cached per delta while the state holds.
    private let measure: @Sendable (StateDelta) -> Int
    /// What was measured for the current state number, by the number each delta starts from
    /// (the whole state and at most two deltas a heartbeat).
    private var measured: [UInt64: (limit: Int, fits: Bool)] = [:]
    private var measuredAt: UInt64 = 0

    public init(measure: @escaping @Sendable (StateDelta) -> Int = { WireJSON.encode($0).count }) {
        self.measure = measure
    }

    /// The datagram for `heartbeat` (a complete one, as the Engine made it).
    public mutating func prepare(_ heartbeat: Heartbeat) -> HeartbeatDatagram {
        record(heartbeat)
        var core = heartbeat
        core.groups = [:]
        core.monitors = nil
        core.directory = nil
        lastCore = core
        let base = recent.first ?? 0
        let previous = recent.last ?? 0
        recent.append(stateSeq)
        if recent.count > Self.repeatCount { recent.removeFirst() }
        return HeartbeatDatagram(core: core, stateSeq: stateSeq, inline: inlineDelta(base: base, previous: previous))
    }

    /// The answer to a receiver that has state number `since` of run `instance` (0:
    /// nothing): the last heartbeat sent with the delta to its state (the whole state for
    /// another run). Nil before the first heartbeat.
    public func reply(since: UInt64, of instance: ServerInstance) -> HeartbeatDatagram? {
        guard let lastCore else { return nil }
        let from = instance == lastCore.instance && since <= stateSeq ? since : 0
        return HeartbeatDatagram(core: lastCore, stateSeq: stateSeq, inline: delta(since: from))
    }

    /// The delta from `seq` to the current state.
    public func delta(since seq: UInt64) -> StateDelta {
        var delta = StateDelta(from: seq, to: stateSeq)
        (delta.groups, delta.groupsRemoved) = groups.changes(since: seq)
        (delta.monitors, delta.monitorsRemoved) = monitors.changes(since: seq)
        (delta.entries, delta.entriesRemoved) = entries.changes(since: seq)
        if headerChangedAt > seq {
            if let header { delta.directory = header } else if seq != 0 { delta.directoryRemoved = true }
        }
        return delta
    }

    private mutating func record(_ heartbeat: Heartbeat) {
        let next = stateSeq + 1
        var changed = groups.update(to: heartbeat.groups, seq: next)
        changed = monitors.update(to: heartbeat.monitors ?? [:], seq: next) || changed
        changed = entries.update(to: heartbeat.directory?.entries ?? [:], seq: next) || changed
        var newHeader = heartbeat.directory
        newHeader?.entries = [:]
        if newHeader != header {
            header = newHeader
            headerChangedAt = next
            changed = true
        }
        if changed { stateSeq = next }
    }

    /// Inline: the whole state when it is tiny; otherwise, while a change is recent, the delta
    /// since the state of `repeatCount` heartbeats ago when it fits, or else the delta since
    /// the previous heartbeat (a busy sender: receivers that heard that one keep up).
    private mutating func inlineDelta(base: UInt64, previous: UInt64) -> StateDelta? {
        if stateSeq == 0 { return nil }
        if fits(from: 0, limit: Self.alwaysInlineLimit) { return delta(since: 0) }
        guard base < stateSeq else { return nil }
        if fits(from: base, limit: Self.inlineLimit) { return delta(since: base) }
        if previous > base, previous < stateSeq, fits(from: previous, limit: Self.inlineLimit) { return delta(since: previous) }
        return nil
    }

    private mutating func fits(from: UInt64, limit: Int) -> Bool {
        if measuredAt != stateSeq {
            measured.removeAll(keepingCapacity: true)
            measuredAt = stateSeq
        }
        if let known = measured[from], known.limit == limit { return known.fits }
        let items =
            groups.changeCount(since: from) + monitors.changeCount(since: from) + entries.changeCount(since: from)
            + (headerChangedAt > from ? 1 : 0)
        let fits = items <= Self.inlineItemLimit && measure(delta(since: from)) <= limit
        measured[from] = (limit, fits)
        return fits
    }
}

/// The receiver's side: the state of every peer as far as it has it, and the newest
/// heartbeat of each waiting for its state.
public struct HeartbeatInbox: Sendable {
    public enum Outcome: Sendable, Equatable {
        /// The heartbeat, complete: hand it to the Engine.
        case deliver(Heartbeat)
        /// Its state is missing: ask the sender for the delta from `since` of run
        /// `instance` (a fetch is due).
        case fetch(since: UInt64, of: ServerInstance)
        /// Its state is missing and a fetch is under way: the sender is present, what it
        /// runs not known yet.
        case held
        /// Older than the state held: a late copy of a heartbeat whose successor was
        /// delivered already. Drop it.
        case late
    }

    struct Peer: Sendable {
        var instance: ServerInstance
        /// Nil until a whole state of this instance arrived.
        var seq: UInt64?
        var state = HeartbeatState()
        /// When the fetch under way was asked for.
        var fetchingSince: EngineTime?
    }

    /// A fetch not answered within this long may be asked again.
    public let fetchTimeout: Duration
    private var peers: [ServerName: Peer] = [:]

    public init(fetchTimeout: Duration) {
        self.fetchTimeout = fetchTimeout
    }

    /// Whether a datagram's inline delta would be used (the Node decodes it only then).
    public func wants(_ sender: ServerName, instance: ServerInstance, stateSeq: UInt64, inlineFrom: UInt64) -> Bool {
        guard let peer = peers[sender], peer.instance == instance, let seq = peer.seq else { return inlineFrom == 0 }
        return seq < stateSeq && inlineFrom <= seq
    }

    /// A datagram arrived (on any path, at `now`).
    public mutating func receive(_ datagram: HeartbeatDatagram, now: EngineTime) -> Outcome {
        let sender = datagram.core.sender
        var peer = peers[sender].flatMap { $0.instance == datagram.core.instance ? $0 : nil } ?? Peer(instance: datagram.core.instance)
        defer { peers[sender] = peer }
        if let seq = peer.seq, seq == datagram.stateSeq { return .deliver(peer.state.completing(datagram.core)) }
        // Older than the state held: a late copy; the newer heartbeat was delivered already.
        if let seq = peer.seq, seq > datagram.stateSeq { return .late }
        if let inline = datagram.inline, Self.applies(inline, to: peer, completing: datagram.stateSeq) {
            peer.state.apply(inline)
            peer.seq = inline.to
            peer.fetchingSince = nil
            return .deliver(peer.state.completing(datagram.core))
        }
        if let asked = peer.fetchingSince, now - asked < fetchTimeout { return .held }
        peer.fetchingSince = now
        return .fetch(since: peer.seq ?? 0, of: peer.instance)
    }

    /// A fetch's answer arrived: the sender's last heartbeat with a delta to its state.
    /// Nil when it does not apply (another run of the sender, or a delta from a state this
    /// side no longer has): the next datagram asks again.
    public mutating func receive(reply: HeartbeatDatagram, now: EngineTime) -> Heartbeat? {
        let sender = reply.core.sender
        guard var peer = peers[sender], peer.instance == reply.core.instance else {
            guard let delta = reply.inline, delta.from == 0, delta.to == reply.stateSeq else { return nil }
            var state = HeartbeatState()
            state.apply(delta)
            peers[sender] = Peer(instance: reply.core.instance, seq: delta.to, state: state)
            return state.completing(reply.core)
        }
        peer.fetchingSince = nil
        defer { peers[sender] = peer }
        if let seq = peer.seq, seq >= reply.stateSeq { return seq == reply.stateSeq ? peer.state.completing(reply.core) : nil }
        guard let delta = reply.inline, Self.applies(delta, to: peer, completing: reply.stateSeq) else { return nil }
        peer.state.apply(delta)
        peer.seq = delta.to
        return peer.state.completing(reply.core)
    }

    /// Whether `delta` brings `peer`'s state to number `stateSeq`: it ends there and starts
    /// from nothing or from a number at or before the one held.
    private static func applies(_ delta: StateDelta, to peer: Peer, completing stateSeq: UInt64) -> Bool {
        guard delta.to == stateSeq else { return false }
        return delta.from == 0 || (peer.seq.map { delta.from <= $0 && $0 <= delta.to } ?? false)
    }
}
