import Crypto

/// The layout of a disk heartbeat device (`diskhb`): a header, then one fixed-size slot per
/// server (slot index = the server's position in `servers:`).
///
/// ```
/// offset 0                 header (one slot's size; only its first 4 KiB are used)
/// offset slotSize * (1+i)  slot of server i (written by server i only, read by the others)
/// ```
/// Every integer is big-endian. A slot is 64 KiB: the largest heartbeat `HeartbeatBudget`
/// lets a configuration have (58,849 bytes of payload) sealed as a datagram, plus the slot
/// header, fits with room to spare.
public enum DiskHeartbeatLayout {
    public static let slotSize = 65_536
    /// The smallest device `understudy diskhb init` prepares.
    public static let minimumDeviceSize = 10 * 1024 * 1024
    /// Slots prepared at most (a cluster has far fewer servers).
    public static let maximumSlotCount = 128
    /// O_DIRECT alignment of buffers, offsets and lengths (a multiple of every logical block
    /// size in use: 512 and 4096).
    public static let alignment = 4096

    public static func slotOffset(_ index: Int) -> Int { slotSize * (1 + index) }

    /// Slots that a device of `size` bytes holds, at most `maximumSlotCount`.
    public static func slotCount(deviceSize: Int) -> Int { max(0, min(maximumSlotCount, deviceSize / slotSize - 1)) }
}

/// The device header that `understudy diskhb init` writes: what the transport checks before
/// it writes anything to a device.
///
/// ```
/// "USDISKHB" | format version u32 = 1 | slot size u32 | slot count u32
///            | SHA-256 of the 20 bytes before, first 8 bytes
/// ```
public struct DiskHeartbeatHeader: Sendable, Equatable {
    public static let magic: [UInt8] = Array("USDISKHB".utf8)
    public static let formatVersion: UInt32 = 1
    public static let length = 8 + 4 + 4 + 4 + 8

    public var slotSize: Int
    public var slotCount: Int

    public init(slotSize: Int = DiskHeartbeatLayout.slotSize, slotCount: Int) {
        self.slotSize = slotSize
        self.slotCount = slotCount
    }

    public func encoded() -> [UInt8] {
        var bytes = Self.magic
        WireBytes.append(Self.formatVersion, to: &bytes)
        WireBytes.append(UInt32(clamping: slotSize), to: &bytes)
        WireBytes.append(UInt32(clamping: slotCount), to: &bytes)
        bytes.append(contentsOf: SHA256.hash(data: bytes).prefix(8))
        return bytes
    }

    public enum Problem: Error, Equatable, CustomStringConvertible {
        /// No header: never prepared, or something else wrote over it.
        case missing
        case unsupportedVersion(UInt32)
        case corrupt
        case unsupportedSlotSize(Int)

        public var description: String {
            switch self {
            case .missing: return "it has no disk heartbeat header"
            case .unsupportedVersion(let version): return "its disk heartbeat header has format version \(version), this build reads 1"
            case .corrupt: return "its disk heartbeat header is damaged (checksum mismatch)"
            case .unsupportedSlotSize(let size):
                return "its disk heartbeat header says slots of \(size) bytes, this build uses \(DiskHeartbeatLayout.slotSize)"
            }
        }
    }

    /// Parses the first bytes of a device.
    public static func decode(_ bytes: [UInt8]) -> Result<DiskHeartbeatHeader, Problem> {
        guard bytes.count >= length, bytes.prefix(magic.count).elementsEqual(magic) else { return .failure(.missing) }
        let slice = bytes[...]
        let version = UInt32(WireBytes.readUInt64(slice, at: 8, width: 4))
        guard SHA256.hash(data: bytes[0..<20]).prefix(8).elementsEqual(bytes[20..<28]) else { return .failure(.corrupt) }
        guard version == formatVersion else { return .failure(.unsupportedVersion(version)) }
        let slotSize = Int(WireBytes.readUInt64(slice, at: 12, width: 4))
        guard slotSize == DiskHeartbeatLayout.slotSize else { return .failure(.unsupportedSlotSize(slotSize)) }
        return .success(DiskHeartbeatHeader(slotSize: slotSize, slotCount: Int(WireBytes.readUInt64(slice, at: 16, width: 4))))
    }
}

/// One server's slot on a disk heartbeat device: a sealed heartbeat datagram
/// (`DatagramCodec`: sender, boot id, sequence, payload, HMAC under the cluster key) behind a
/// slot header.
///
/// ```
/// "USDS" | version u8 = 1 | reserved u8 | slot index u16 | cluster id (8) | written at u64
///        | datagram length u32 | header MAC (16) | datagram
/// ```
/// The cluster id is the first 8 bytes of SHA-256 of the cluster name; "written at" is the
/// writer's wall clock in microseconds (for people reading a dump; never trusted for
/// liveness). The header MAC is HMAC-SHA256 under the cluster key of the header's first 28
/// bytes and the datagram's own MAC, cut to 16 bytes: it ties the header to the datagram, so
/// a slot whose write was torn (new header, old datagram, or the reverse) fails it.
///
/// `open` validates every length before reading and never traps on any input. A slot of all
/// zeros (prepared, never written) is `nil`, not an error.
public struct DiskSlotCodec: Sendable {
    public static let magic: [UInt8] = Array("USDS".utf8)
    public static let version: UInt8 = 1
    static let fieldsLength = 4 + 1 + 1 + 2 + 8 + 8 + 4
    static let headerMACLength = 16
    public static let headerLength = fieldsLength + headerMACLength
    /// The largest sealed datagram a slot holds.
    public static let maximumDatagramLength = DiskHeartbeatLayout.slotSize - headerLength
    /// The smallest possible sealed datagram (one-letter sender, empty payload).
    static let minimumDatagramLength = DatagramCodec.fixedHeaderLength + 1 + DatagramCodec.macLength

    public struct Slot: Sendable, Equatable {
        public var index: Int
        public var writtenAtMicros: UInt64
        public var datagram: [UInt8]
    }

    private let key: ClusterKey
    public let clusterID: [UInt8]

    public init(key: ClusterKey, clusterName: String) {
        self.key = key
        self.clusterID = Self.clusterID(of: clusterName)
    }

    public static func clusterID(of clusterName: String) -> [UInt8] {
        Array(SHA256.hash(data: Array("understudy diskhb \(clusterName)".utf8)).prefix(8))
    }

    /// The slot's bytes (not padded), or nil when the datagram is larger than a slot holds.
    public func seal(datagram: [UInt8], slot index: Int, writtenAtMicros: UInt64) -> [UInt8]? {
        guard datagram.count >= DatagramCodec.macLength, datagram.count <= Self.maximumDatagramLength,
            (0...Int(UInt16.max)).contains(index)
        else { return nil }
        var bytes = Self.magic
        bytes.reserveCapacity(Self.headerLength + datagram.count)
        bytes.append(Self.version)
        bytes.append(0)
        WireBytes.append(UInt16(index), to: &bytes)
        bytes.append(contentsOf: clusterID)
        WireBytes.append(writtenAtMicros, to: &bytes)
        WireBytes.append(UInt32(datagram.count), to: &bytes)
        bytes.append(contentsOf: headerMAC(fields: bytes[...], datagramMAC: datagram.suffix(DatagramCodec.macLength)))
        bytes.append(contentsOf: datagram)
        return bytes
    }

    /// Checks a slot read from the device (`bytes` may be the whole slot, padding included):
    /// its magic, version, index, cluster, lengths and header MAC. The datagram inside is
    /// authenticated separately (`DatagramCodec`).
    public func open(_ bytes: [UInt8], expectedSlot: Int) -> Result<Slot?, DropReason> {
        guard bytes.count >= Self.headerLength else { return .failure(.truncated) }
        let slice = bytes[...]
        if slice.prefix(Self.headerLength).allSatisfy({ $0 == 0 }) { return .success(nil) }
        guard slice.prefix(4).elementsEqual(Self.magic) else { return .failure(.badMagic) }
        guard slice[4] == Self.version else { return .failure(.badVersion) }
        let index = Int(WireBytes.readUInt64(slice, at: 6, width: 2))
        guard index == expectedSlot else { return .failure(.wrongSlot) }
        guard slice[8..<16].elementsEqual(clusterID) else { return .failure(.foreignCluster) }
        let writtenAt = WireBytes.readUInt64(slice, at: 16)
        let length = Int(WireBytes.readUInt64(slice, at: 24, width: 4))
        guard length >= Self.minimumDatagramLength, length <= Self.maximumDatagramLength else { return .failure(.badLength) }
        guard bytes.count >= Self.headerLength + length else { return .failure(.truncated) }
        let datagram = slice[Self.headerLength..<(Self.headerLength + length)]
        let expected = headerMAC(fields: slice[0..<Self.fieldsLength], datagramMAC: datagram.suffix(DatagramCodec.macLength))
        guard Self.constantTimeEqual(expected, slice[Self.fieldsLength..<Self.headerLength]) else { return .failure(.badMAC) }
        return .success(Slot(index: index, writtenAtMicros: writtenAt, datagram: Array(datagram)))
    }

    private func headerMAC(fields: ArraySlice<UInt8>, datagramMAC: ArraySlice<UInt8>) -> [UInt8] {
        var hmac = HMAC<SHA256>(key: key.symmetricKey)
        hmac.update(data: fields)
        hmac.update(data: datagramMAC)
        return Array(hmac.finalize().prefix(Self.headerMACLength))
    }

    static func constantTimeEqual(_ a: [UInt8], _ b: ArraySlice<UInt8>) -> Bool {
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for (x, y) in zip(a, b) { difference |= x ^ y }
        return difference == 0
    }
}
