import Foundation
import Logging
import Synchronization
import UnderstudyEngine
import UnderstudyModel

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// One entry of the cluster's alert log as the servers exchange it: the server that wrote it,
/// the run of that server's daemon (a random number drawn at each start), its number within
/// the run (1, 2, …) and the alert.log line itself. `(origin, run, seq)` names an entry
/// uniquely, so a copy that arrives twice is recognised without trusting clocks or order.
public struct ReplicatedAlert: Codable, Sendable, Hashable {
    public var origin: ServerName
    public var run: UInt32
    public var seq: UInt32
    public var line: String

    public init(origin: ServerName, run: UInt32, seq: UInt32, line: String) {
        self.origin = origin
        self.run = run
        self.seq = seq
        self.line = line
    }

    /// The alert.log time stamp at the start of the line (UTC ISO 8601, so text order is time
    /// order).
    public var time: Substring { line.prefix { $0 != " " } }

    /// `RUN SEQ LINE`, the form of the store's files.
    var stored: String { "\(String(run, radix: 16)) \(seq) \(line)" }

    static func parseStored(_ text: Substring, origin: ServerName) -> ReplicatedAlert? {
        let parts = text.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0].count <= 8, let run = UInt32(parts[0], radix: 16), let seq = UInt32(parts[1]), seq > 0
        else { return nil }
        let entry = ReplicatedAlert(origin: origin, run: run, seq: seq, line: String(parts[2]))
        return entry.problem(servers: nil) == nil ? entry : nil
    }

    /// The longest line accepted from a peer (clplogcmd's messages are bounded well below).
    static let maximumLineLength = 8 * 1024

    /// Why this entry cannot be stored, or nil: a line that is not one alert.log line of its
    /// origin (`TIME ORIGIN LEVEL [MODULE ID] MESSAGE`), or an origin that is not a server.
    func problem(servers: Set<ServerName>?) -> String? {
        if let servers, !servers.contains(origin) { return "origin \(origin) is not a server of this cluster" }
        if seq == 0 { return "sequence number 0" }
        if line.utf8.count > Self.maximumLineLength { return "line longer than \(Self.maximumLineLength) bytes" }
        if line.contains(where: { $0 == "\n" || $0 == "\r" || $0 == "\0" }) { return "line break or NUL inside the line" }
        let parts = line.split(separator: " ", maxSplits: 3, omittingEmptySubsequences: false)
        guard parts.count == 4, parts[0].count >= 20, parts[0].first?.isNumber == true else { return "no time stamp" }
        guard parts[1] == origin else { return "line of \(parts[1]) sent as \(origin)'s" }
        guard ["INFO", "WARN", "ERROR"].contains(parts[2]) else { return "unknown level \(parts[2])" }
        guard parts[3].hasPrefix("["), let close = parts[3].firstIndex(of: "]"),
            parts[3][parts[3].index(after: parts[3].startIndex)..<close].split(separator: " ").count == 2
        else { return "no [module id]" }
        return nil
    }
}

/// Numbers held of one run of one server: sorted, disjoint, inclusive ranges.
public struct SequenceRanges: Codable, Sendable, Equatable {
    public private(set) var ranges: [[UInt32]] = []

    public init() {}

    public func contains(_ seq: UInt32) -> Bool {
        var low = 0
        var high = ranges.count - 1
        while low <= high {
            let middle = (low + high) / 2
            if seq < ranges[middle][0] {
                high = middle - 1
            } else if seq > ranges[middle][1] {
                low = middle + 1
            } else {
                return true
            }
        }
        return false
    }

    public mutating func insert(_ seq: UInt32) {
        guard !contains(seq) else { return }
        let index = ranges.firstIndex { $0[0] > seq } ?? ranges.count
        let joinsPrevious = index > 0 && ranges[index - 1][1] &+ 1 == seq
        let joinsNext = index < ranges.count && seq &+ 1 == ranges[index][0]
        switch (joinsPrevious, joinsNext) {
        case (true, true):
            ranges[index - 1][1] = ranges[index][1]
            ranges.remove(at: index)
        case (true, false): ranges[index - 1][1] = seq
        case (false, true): ranges[index][0] = seq
        case (false, false): ranges.insert([seq, seq], at: index)
        }
    }

    /// Whether `self` holds a number that `other` does not.
    func hasMore(than other: SequenceRanges?) -> Bool {
        guard let other else { return !ranges.isEmpty }
        for range in ranges {
            // A range is covered only if one of the other's ranges contains it whole.
            guard other.ranges.contains(where: { $0[0] <= range[0] && range[1] <= $0[1] }) else { return true }
        }
        return false
    }

    /// How many numbers are held.
    var count: Int { ranges.reduce(0) { $0 + Int($1[1]) - Int($1[0]) + 1 } }

    /// How many numbers both hold (both well formed).
    func commonCount(with other: SequenceRanges?) -> Int {
        guard let other else { return 0 }
        var total = 0
        var mine = 0
        var theirs = 0
        while mine < ranges.count && theirs < other.ranges.count {
            let low = max(ranges[mine][0], other.ranges[theirs][0])
            let high = min(ranges[mine][1], other.ranges[theirs][1])
            if low <= high { total += Int(high) - Int(low) + 1 }
            if ranges[mine][1] < other.ranges[theirs][1] { mine += 1 } else { theirs += 1 }
        }
        return total
    }

    /// Ranges are well formed (sent by a peer: checked before use).
    var isWellFormed: Bool {
        var previous: UInt32? = nil
        for range in ranges {
            guard range.count == 2, range[0] <= range[1] else { return false }
            if let previous, range[0] <= previous &+ 1 { return false }
            previous = range[1]
        }
        return true
    }
}

/// What a server holds of every server's alerts, sent to a peer so that it answers with what
/// is missing: per origin, the numbers held per run, and the time before which the server no
/// longer keeps entries (its store rotated).
public struct AlertSyncSummary: Codable, Sendable, Equatable {
    public struct Origin: Codable, Sendable, Equatable {
        /// Keyed by the run in hexadecimal.
        public var runs: [String: SequenceRanges] = [:]
        /// Entries older than this are not wanted (rotated away here); nil: everything.
        public var floor: String?
    }

    public var origins: [ServerName: Origin] = [:]

    public init() {}

    /// The summary without the ranges that are not well formed (a peer's is checked before
    /// use: a malformed range would otherwise be read out of bounds).
    func sanitized() -> AlertSyncSummary {
        var clean = AlertSyncSummary()
        for (name, origin) in origins {
            var kept = Origin(runs: [:], floor: origin.floor)
            for (run, ranges) in origin.runs where ranges.isWellFormed && UInt32(run, radix: 16) != nil { kept.runs[run] = ranges }
            clean.origins[name] = kept
        }
        return clean
    }
}

/// The cluster's alert log as this server holds it: its own entries and copies of every
/// other server's, each origin in `DIR/alerts/ORIGIN.log` (one `RUN SEQ LINE` per line,
/// rotated to `ORIGIN.log.1` after `recordsPerFile` lines). Servers exchange what the other
/// lacks (ClusterDaemon+AlertSync.swift), so every server shows every server's alerts,
/// including those written while it was cut off, and those of a server that is down now.
///
/// Writes go to the page cache at once (a crash of the daemon loses nothing written) and are
/// flushed to the disk by `flush()`, which the daemon calls off its actor about every second.
public final class ClusterAlertLog: Sendable {
    public let directory: String
    public let me: ServerName
    /// This start's run number.
    public let run: UInt32
    private let logger: Logger?
    private let state: Mutex<State>
    private let flushing = Mutex(false)

    private struct OriginState {
        var runs: [UInt32: SequenceRanges] = [:]
        /// The last entries stored (at most `recentLimit`, oldest first, as in the files): a
        /// peer that lacks only these is answered without reading the files.
        var recent: [ReplicatedAlert] = []
        var linesInCurrent = 0
        var floor: String?
        var descriptor: Int32 = -1
        var dirty = false
    }

    private struct State {
        var servers: Set<ServerName>
        var recordsPerFile: Int
        var nextSeq: UInt32 = 1
        var origins: [ServerName: OriginState] = [:]
        var rejected = 0
        var writeFailures = 0
        var failureReported = false
    }

    public init(directory: String, me: ServerName, servers: [ServerName], recordsPerFile: Int, logger: Logger? = nil) {
        self.directory = directory
        self.me = me
        self.run = UInt32.random(in: 1...UInt32.max)
        self.logger = logger
        var state = State(servers: Set(servers).union([me]), recordsPerFile: max(1, recordsPerFile))
        try? FileManager.default.createDirectory(
            atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o750])
        for origin in Self.storedOrigins(in: directory) {
            state.origins[origin] = Self.load(origin: origin, directory: directory)
        }
        self.state = Mutex(state)
    }

    deinit {
        state.withLock { state in
            for origin in state.origins.values where origin.descriptor >= 0 { close(origin.descriptor) }
        }
    }

    /// The servers whose entries are accepted (the running configuration's), and the
    /// rotation size; changed by an online apply.
    public func configure(servers: [ServerName], recordsPerFile: Int) {
        state.withLock { state in
            state.servers = Set(servers).union([me])
            state.recordsPerFile = max(1, recordsPerFile)
        }
    }

    /// Entries from peers that were refused (malformed, foreign origin), and failed writes.
    public var counts: (rejected: Int, writeFailures: Int) { state.withLock { ($0.rejected, $0.writeFailures) } }

    // MARK: - Writing

    /// Stores one of this server's own alert.log lines; returns it numbered, to send to peers.
    @discardableResult
    public func appendOwn(_ line: String) -> ReplicatedAlert {
        state.withLock { state in
            let entry = ReplicatedAlert(origin: me, run: run, seq: state.nextSeq, line: line)
            state.nextSeq &+= 1
            store(entry, into: &state)
            return entry
        }
    }

    /// Stores the entries this server does not hold yet; returns those stored. Entries that
    /// are malformed or of an unknown origin are counted and dropped.
    @discardableResult
    public func accept(_ entries: [ReplicatedAlert]) -> [ReplicatedAlert] {
        state.withLock { state in
            var stored: [ReplicatedAlert] = []
            for entry in entries {
                if let problem = entry.problem(servers: state.servers) {
                    state.rejected += 1
                    if state.rejected == 1 { logger?.warning("alert entry from a peer refused: \(problem)") }
                    continue
                }
                let origin = state.origins[entry.origin]
                if origin?.runs[entry.run]?.contains(entry.seq) == true { continue }
                // Older than what this server keeps: it was here and rotated away, or it
                // would be rotated away at once.
                if let floor = origin?.floor, entry.time < floor { continue }
                // This server's own run only ever grows by appendOwn.
                if entry.origin == me && entry.run == run { continue }
                store(entry, into: &state)
                stored.append(entry)
            }
            return stored
        }
    }

    /// `flush()` on a utility thread, unless the previous one is still running.
    public func flushInBackground() {
        let start = flushing.withLock { busy in
            if busy { return false }
            busy = true
            return true
        }
        guard start else { return }
        DispatchQueue.global(qos: .utility).async {
            self.flush()
            self.flushing.withLock { $0 = false }
        }
    }

    /// Makes every write so far durable (fdatasync), without holding the lock while the disk
    /// works.
    public func flush() {
        let descriptors: [Int32] = state.withLock { state in
            var list: [Int32] = []
            for name in state.origins.keys {
                guard let origin = state.origins[name], origin.dirty, origin.descriptor >= 0 else { continue }
                let copy = dup(origin.descriptor)
                if copy >= 0 { list.append(copy) }
                state.origins[name]?.dirty = false
            }
            return list
        }
        for descriptor in descriptors {
            _ = fdatasync(descriptor)
            close(descriptor)
        }
    }

    private func store(_ entry: ReplicatedAlert, into state: inout State) {
        var origin = state.origins[entry.origin] ?? OriginState()
        if origin.linesInCurrent >= state.recordsPerFile { rotate(entry.origin, &origin) }
        if origin.descriptor < 0 {
            origin.descriptor = open(path(of: entry.origin), O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0o640)
            if origin.descriptor >= 0 { Self.endWithNewline(origin.descriptor) }
        }
        let bytes = Array((entry.stored + "\n").utf8)
        var written = 0
        if origin.descriptor >= 0 {
            while written < bytes.count {
                let result = bytes[written...].withUnsafeBytes { write(origin.descriptor, $0.baseAddress, $0.count) }
                if result < 0 && errno == EINTR { continue }
                guard result > 0 else { break }
                written += result
            }
        }
        if written == bytes.count {
            origin.runs[entry.run, default: SequenceRanges()].insert(entry.seq)
            origin.recent.append(entry)
            if origin.recent.count > Self.recentLimit { origin.recent.removeFirst(origin.recent.count - Self.recentLimit / 2) }
            origin.linesInCurrent += 1
            origin.dirty = true
        } else {
            // Not held: a later exchange offers it again (a peer's entry) once the disk has room.
            state.writeFailures += 1
            if !state.failureReported {
                state.failureReported = true
                logger?.warning(
                    "cannot write the cluster alert log \(path(of: entry.origin)): \(String(cString: strerror(errno))) (further failures are only counted)"
                )
            }
            if origin.descriptor >= 0 { close(origin.descriptor) }
            origin.descriptor = -1
        }
        state.origins[entry.origin] = origin
    }

    private func rotate(_ name: ServerName, _ origin: inout OriginState) {
        if origin.descriptor >= 0 { close(origin.descriptor) }
        origin.descriptor = -1
        let current = path(of: name)
        if rename(current, current + ".1") != 0 && errno != ENOENT {
            logger?.warning("cannot rotate \(current): \(String(cString: strerror(errno)))")
        }
        // What is held is now the older file alone; entries before its oldest are not wanted.
        let older = Self.entries(inFile: current + ".1", origin: name)
        origin.runs = [:]
        for entry in older { origin.runs[entry.run, default: SequenceRanges()].insert(entry.seq) }
        origin.floor = older.map { String($0.time) }.min()
        origin.recent = origin.recent.filter { origin.runs[$0.run]?.contains($0.seq) == true }
        origin.linesInCurrent = 0
    }

    // MARK: - Reading

    /// What this server holds, for a peer to answer with what is missing here.
    public func summary() -> AlertSyncSummary {
        state.withLock { state in
            var summary = AlertSyncSummary()
            for (name, origin) in state.origins {
                var runs: [String: SequenceRanges] = [:]
                for (run, ranges) in origin.runs { runs[String(run, radix: 16)] = ranges }
                summary.origins[name] = AlertSyncSummary.Origin(runs: runs, floor: origin.floor)
            }
            return summary
        }
    }

    /// Entries kept in memory per origin to answer pulls (`OriginState.recent`); trimmed to
    /// half when full, so a store of 32 origins keeps at most 32 × 256 lines.
    static let recentLimit = 256

    /// Entries this server holds that `summary` (a peer's) lacks, oldest files first, at most
    /// `limit`; and whether there are more. When everything the peer lacks of an origin is
    /// among its last entries (the usual case: a pull after a lost push), they are taken from
    /// memory; otherwise from the files.
    public func missing(from summary: AlertSyncSummary, limit: Int) -> (entries: [ReplicatedAlert], more: Bool) {
        let summary = summary.sanitized()
        struct Wanted {
            var runs: Set<UInt32>
            var peer: AlertSyncSummary.Origin?
            /// How many entries of this origin the peer lacks.
            var count: Int
            var recent: [ReplicatedAlert]
        }
        let wanted: [ServerName: Wanted] = state.withLock { state in
            var wanted: [ServerName: Wanted] = [:]
            for (name, origin) in state.origins {
                let peer = summary.origins[name]
                var runs = Set<UInt32>()
                var count = 0
                for (run, ranges) in origin.runs {
                    let theirs = peer?.runs[String(run, radix: 16)]
                    guard ranges.hasMore(than: theirs) else { continue }
                    runs.insert(run)
                    count += ranges.count - ranges.commonCount(with: theirs)
                }
                if !runs.isEmpty { wanted[name] = Wanted(runs: runs, peer: peer, count: count, recent: origin.recent) }
            }
            return wanted
        }
        var found: [ReplicatedAlert] = []
        for name in wanted.keys.sorted() {
            guard let origin = wanted[name] else { continue }
            func lacks(_ entry: ReplicatedAlert) -> Bool {
                guard origin.runs.contains(entry.run) else { return false }
                if origin.peer?.runs[String(entry.run, radix: 16)]?.contains(entry.seq) == true { return false }
                if let floor = origin.peer?.floor, entry.time < floor { return false }
                return true
            }
            let fromMemory = origin.recent.filter(lacks)
            let source: [ReplicatedAlert] =
                fromMemory.count == origin.count
                ? fromMemory
                : [path(of: name) + ".1", path(of: name)].flatMap { Self.entries(inFile: $0, origin: name) }.filter(lacks)
            for entry in source {
                if found.count == limit { return (found, true) }
                found.append(entry)
            }
        }
        return (found, false)
    }

    /// The newest `limit` entries of every origin (or of `origin`), merged by time, oldest
    /// first. Each origin's files are read from their end, so a large store costs little.
    public func newest(limit: Int, origin only: ServerName? = nil) -> [ReplicatedAlert] {
        guard limit > 0 else { return [] }
        let names = state.withLock { state in state.origins.keys.filter { only == nil || $0 == only } }
        var all: [ReplicatedAlert] = []
        for name in names {
            var lines: [ReplicatedAlert] = Self.entries(inFile: path(of: name), origin: name)
            if lines.count < limit { lines = Self.entries(inFile: path(of: name) + ".1", origin: name) + lines }
            all += lines.suffix(limit)
        }
        let sorted = all.enumerated().sorted { ($0.element.time, $0.offset) < ($1.element.time, $1.offset) }.map(\.element)
        return Array(sorted.suffix(limit))
    }

    // MARK: - Files

    func path(of origin: ServerName) -> String { "\(directory)/\(origin).log" }

    static func storedOrigins(in directory: String) -> [ServerName] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        var origins = Set<ServerName>()
        for name in names {
            let base = name.hasSuffix(".log.1") ? String(name.dropLast(6)) : name.hasSuffix(".log") ? String(name.dropLast(4)) : nil
            if let base, !base.isEmpty { origins.insert(base) }
        }
        return origins.sorted()
    }

    private static func load(origin name: ServerName, directory: String) -> OriginState {
        var origin = OriginState()
        let base = "\(directory)/\(name).log"
        let older = entries(inFile: base + ".1", origin: name)
        let current = entries(inFile: base, origin: name)
        for entry in older + current { origin.runs[entry.run, default: SequenceRanges()].insert(entry.seq) }
        if !older.isEmpty { origin.floor = older.map { String($0.time) }.min() }
        origin.linesInCurrent = current.count
        return origin
    }

    /// Every well-formed entry of one file, in file order; torn or foreign lines are skipped.
    static func entries(inFile path: String, origin: ServerName) -> [ReplicatedAlert] {
        guard let data = FileManager.default.contents(atPath: path) else { return [] }
        return String(decoding: data, as: UTF8.self).split(separator: "\n").compactMap { ReplicatedAlert.parseStored($0, origin: origin) }
    }

    /// A file cut short by a crash ends mid-line: the next entry starts on a line of its own.
    private static func endWithNewline(_ descriptor: Int32) {
        var info = stat()
        guard fstat(descriptor, &info) == 0, info.st_size > 0 else { return }
        var last: UInt8 = 0
        guard pread(descriptor, &last, 1, info.st_size - 1) == 1, last != UInt8(ascii: "\n") else { return }
        var newline = UInt8(ascii: "\n")
        _ = write(descriptor, &newline, 1)
    }
}
