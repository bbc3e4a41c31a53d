import UnderstudyModel

/// The bytes of a heartbeat datagram's payload (inside `DatagramCodec`'s authenticated
/// envelope, which carries the sender, boot id, sequence and MAC).
///
/// ```
/// version u8 = 2 | flags varint | sender | bootID | run | sentAt | configHash
/// | [configVersion] | [priority] | hears count | { name | bootID | sentAt | has-upSince u8 | [upSince] }
/// | view count | { name } | [epoch term | epoch master] | appliedVersion
/// | [waitsFor count | { name }] | [ratio | setAt | has-expiry u8 | [expiresAt]] | [judgeTimeout]
/// | stateSeq | [inline from | inline to | inline length | JSON of StateDelta]
/// ```
/// Numbers are LEB128 varints (signed ones zigzag), times are (seconds, attoseconds), strings
/// are a varint length and UTF-8. `[x]` is present when its flag is set. The state delta is
/// JSON: it travels only when the state changed, and its decoding is skipped when the
/// receiver has that state already (`HeartbeatInbox.wants`). Version 1 was JSON of the whole
/// heartbeat; a receiver drops a payload of another version and says so.
public enum HeartbeatWire {
    public static let version: UInt8 = 2
    /// Limits a decoder holds a payload to (far above any real cluster).
    static let maximumServers = 1_024
    static let maximumName = 255

    struct Flags: OptionSet {
        let rawValue: UInt64
        static let serviceUp = Flags(rawValue: 1 << 0)
        static let leaving = Flags(rawValue: 1 << 1)
        static let autoStartSuppressed = Flags(rawValue: 1 << 2)
        static let syncDone = Flags(rawValue: 1 << 3)
        static let awaitingVouch = Flags(rawValue: 1 << 4)
        static let hasConfigVersion = Flags(rawValue: 1 << 5)
        static let hasConfigOutsider = Flags(rawValue: 1 << 6)
        static let configOutsider = Flags(rawValue: 1 << 7)
        static let hasPriority = Flags(rawValue: 1 << 8)
        static let hasEpoch = Flags(rawValue: 1 << 9)
        static let hasClusterStopRequested = Flags(rawValue: 1 << 10)
        static let clusterStopRequested = Flags(rawValue: 1 << 11)
        static let hasWaitsFor = Flags(rawValue: 1 << 12)
        static let hasTimeoutRatio = Flags(rawValue: 1 << 13)
        static let hasJudgeTimeout = Flags(rawValue: 1 << 14)
        static let hasInline = Flags(rawValue: 1 << 15)
    }

    /// A decoded payload: the core and the state's number, and the inline delta still as bytes.
    public struct Parsed: Sendable {
        public var core: Heartbeat
        public var stateSeq: UInt64
        public var inline: (from: UInt64, to: UInt64, json: ArraySlice<UInt8>)?
    }

    /// Encodes `datagram` into `writer` (cleared first); `inlineJSON` is the JSON of
    /// `datagram.inline` (the caller caches it: it changes only with the state).
    static func encode(_ datagram: HeartbeatDatagram, inlineJSON: [UInt8]?, into writer: inout WireWriter) {
        writer.bytes.removeAll(keepingCapacity: true)
        let heartbeat = datagram.core
        var flags: Flags = []
        if heartbeat.serviceUp { flags.insert(.serviceUp) }
        if heartbeat.leaving { flags.insert(.leaving) }
        if heartbeat.autoStartSuppressed { flags.insert(.autoStartSuppressed) }
        if heartbeat.syncDone { flags.insert(.syncDone) }
        if heartbeat.awaitingVouch { flags.insert(.awaitingVouch) }
        if heartbeat.configVersion != nil { flags.insert(.hasConfigVersion) }
        if let outsider = heartbeat.configOutsider {
            flags.insert(.hasConfigOutsider)
            if outsider { flags.insert(.configOutsider) }
        }
        if heartbeat.priority != nil { flags.insert(.hasPriority) }
        if heartbeat.epoch != nil { flags.insert(.hasEpoch) }
        if let requested = heartbeat.clusterStopRequested {
            flags.insert(.hasClusterStopRequested)
            if requested { flags.insert(.clusterStopRequested) }
        }
        if heartbeat.waitsFor != nil { flags.insert(.hasWaitsFor) }
        if heartbeat.timeoutRatio != nil { flags.insert(.hasTimeoutRatio) }
        if heartbeat.judgeTimeout != nil { flags.insert(.hasJudgeTimeout) }
        if datagram.inline != nil, inlineJSON != nil { flags.insert(.hasInline) }
        writer.byte(version)
        writer.varint(flags.rawValue)
        writer.string(heartbeat.sender)
        writer.varint(heartbeat.bootID)
        writer.varint(heartbeat.run)
        writer.duration(heartbeat.sentAt)
        writer.string(heartbeat.configHash)
        if let configVersion = heartbeat.configVersion { writer.varint(configVersion) }
        if let priority = heartbeat.priority { writer.signed(Int64(priority)) }
        writer.varint(UInt64(heartbeat.hears.count))
        for (name, heard) in heartbeat.hears {
            writer.string(name)
            writer.varint(heard.bootID)
            writer.duration(heard.sentAt)
            if let upSince = heard.upSince {
                writer.byte(1)
                writer.duration(upSince)
            } else {
                writer.byte(0)
            }
        }
        writer.varint(UInt64(heartbeat.view.count))
        for name in heartbeat.view { writer.string(name) }
        if let epoch = heartbeat.epoch {
            writer.varint(epoch.term)
            writer.string(epoch.master)
        }
        writer.varint(heartbeat.appliedVersion)
        if let waitsFor = heartbeat.waitsFor {
            writer.varint(UInt64(waitsFor.count))
            for name in waitsFor { writer.string(name) }
        }
        if let ratio = heartbeat.timeoutRatio {
            writer.signed(Int64(ratio.ratio))
            writer.signed(ratio.setAt)
            if let expiresAt = ratio.expiresAt {
                writer.byte(1)
                writer.signed(expiresAt)
            } else {
                writer.byte(0)
            }
        }
        if let judgeTimeout = heartbeat.judgeTimeout { writer.duration(judgeTimeout) }
        writer.varint(datagram.stateSeq)
        if let inline = datagram.inline, let inlineJSON {
            writer.varint(inline.from)
            writer.varint(inline.to)
            writer.raw(inlineJSON)
        }
    }

    /// The payload of `datagram` (a fresh array; the daemon reuses a writer instead).
    public static func encode(_ datagram: HeartbeatDatagram, inlineJSON: [UInt8]?) -> [UInt8] {
        var writer = WireWriter()
        encode(datagram, inlineJSON: inlineJSON, into: &writer)
        return writer.bytes
    }

    /// Decodes a payload; throws on anything malformed (never traps). Bytes after the known
    /// fields are ignored: a later version of this format may append fields.
    public static func decode(_ bytes: [UInt8]) throws -> Parsed {
        var reader = WireReader(bytes)
        let format = try reader.byte("version")
        guard format == version else { throw WireReader.Malformed(what: "format version \(format), this build speaks \(version)") }
        let flags = Flags(rawValue: try reader.varint("flags"))
        let sender = try reader.string("sender", limit: maximumName)
        let bootID = try reader.varint("boot id")
        let run = try reader.varint("run")
        let sentAt = try reader.duration("sentAt")
        let configHash = try reader.string("configHash", limit: maximumName)
        let configVersion = flags.contains(.hasConfigVersion) ? try reader.varint("configVersion") : nil
        var priority: Int?
        if flags.contains(.hasPriority) {
            let value = try reader.signed("priority")
            guard value >= Int64(Int32.min), value <= Int64(Int32.max) else { throw WireReader.Malformed(what: "priority out of range") }
            priority = Int(value)
        }
        let hearsCount = try reader.count("hears", limit: maximumServers)
        var hears: [ServerName: HeardHeartbeat] = [:]
        hears.reserveCapacity(hearsCount)
        for _ in 0..<hearsCount {
            let name = try reader.string("hears name", limit: maximumName)
            let heardBoot = try reader.varint("hears boot id")
            let heardAt = try reader.duration("hears sentAt")
            let upSince: Duration? = try reader.byte("hears upSince flag") != 0 ? try reader.duration("hears upSince") : nil
            hears[name] = HeardHeartbeat(bootID: heardBoot, sentAt: heardAt, upSince: upSince)
        }
        let viewCount = try reader.count("view", limit: maximumServers)
        var view: [ServerName] = []
        view.reserveCapacity(viewCount)
        for _ in 0..<viewCount { view.append(try reader.string("view name", limit: maximumName)) }
        var epoch: Epoch?
        if flags.contains(.hasEpoch) {
            let term = try reader.varint("epoch term")
            epoch = Epoch(term: term, master: try reader.string("epoch master", limit: maximumName))
        }
        let appliedVersion = try reader.varint("appliedVersion")
        var waitsFor: [ServerName]?
        if flags.contains(.hasWaitsFor) {
            let count = try reader.count("waitsFor", limit: maximumServers)
            var names: [ServerName] = []
            for _ in 0..<count { names.append(try reader.string("waitsFor name", limit: maximumName)) }
            waitsFor = names
        }
        var timeoutRatio: TimeoutRatio?
        if flags.contains(.hasTimeoutRatio) {
            let ratio = try reader.signed("ratio")
            guard ratio >= Int64(Int32.min), ratio <= Int64(Int32.max) else { throw WireReader.Malformed(what: "ratio out of range") }
            let setAt = try reader.signed("ratio setAt")
            let expiresAt: Int64? = try reader.byte("ratio expiry flag") != 0 ? try reader.signed("ratio expiresAt") : nil
            timeoutRatio = TimeoutRatio(ratio: Int(ratio), expiresAt: expiresAt, setAt: setAt)
        }
        let judgeTimeout = flags.contains(.hasJudgeTimeout) ? try reader.duration("judgeTimeout") : nil
        let stateSeq = try reader.varint("stateSeq")
        var inline: (from: UInt64, to: UInt64, json: ArraySlice<UInt8>)?
        if flags.contains(.hasInline) {
            let from = try reader.varint("inline from")
            let to = try reader.varint("inline to")
            guard from <= to else { throw WireReader.Malformed(what: "inline delta from \(from) to \(to)") }
            inline = (from, to, try reader.raw("inline state", limit: bytes.count))
        }
        let core = Heartbeat(
            sender: sender, bootID: bootID, run: run, sentAt: sentAt, configHash: configHash, priority: priority,
            serviceUp: flags.contains(.serviceUp), leaving: flags.contains(.leaving),
            autoStartSuppressed: flags.contains(.autoStartSuppressed), syncDone: flags.contains(.syncDone), hears: hears,
            view: view, awaitingVouch: flags.contains(.awaitingVouch), epoch: epoch, appliedVersion: appliedVersion,
            clusterStopRequested: flags.contains(.hasClusterStopRequested) ? flags.contains(.clusterStopRequested) : nil,
            waitsFor: waitsFor, configVersion: configVersion,
            configOutsider: flags.contains(.hasConfigOutsider) ? flags.contains(.configOutsider) : nil,
            timeoutRatio: timeoutRatio, judgeTimeout: judgeTimeout)
        return Parsed(core: core, stateSeq: stateSeq, inline: inline)
    }
}

/// Encodes a daemon's heartbeat datagrams: one writer reused for every heartbeat, and the
/// JSON of the inline delta kept while the delta is the same (it changes only with the state).
public struct HeartbeatEncoder: Sendable {
    private var writer = WireWriter()
    private var inlineJSON: (from: UInt64, to: UInt64, json: [UInt8])?

    public init() {}

    public mutating func encode(_ datagram: HeartbeatDatagram) -> [UInt8] {
        var json: [UInt8]?
        if let inline = datagram.inline {
            if let cached = inlineJSON, cached.from == inline.from, cached.to == inline.to {
                json = cached.json
            } else {
                let encoded = WireJSON.encode(inline)
                inlineJSON = (inline.from, inline.to, encoded)
                json = encoded
            }
        }
        HeartbeatWire.encode(datagram, inlineJSON: json, into: &writer)
        return writer.bytes
    }
}

extension HeartbeatWire {
    /// A payload's datagram with its inline delta decoded — when `wanted` says the receiver
    /// will use it (the JSON is skipped otherwise). Throws on anything malformed.
    public static func datagram(
        from parsed: Parsed, wanted: (_ instance: ServerInstance, _ stateSeq: UInt64, _ inlineFrom: UInt64) -> Bool
    ) throws -> HeartbeatDatagram {
        var datagram = HeartbeatDatagram(core: parsed.core, stateSeq: parsed.stateSeq)
        if let inline = parsed.inline, wanted(parsed.core.instance, parsed.stateSeq, inline.from) {
            let delta = try WireJSON.decode(StateDelta.self, from: Array(inline.json))
            guard delta.from == inline.from, delta.to == inline.to, delta.to == parsed.stateSeq else {
                throw WireReader.Malformed(what: "inline delta \(delta.from)→\(delta.to) in a frame that says \(inline.from)→\(inline.to)")
            }
            datagram.inline = delta
        }
        return datagram
    }
}
