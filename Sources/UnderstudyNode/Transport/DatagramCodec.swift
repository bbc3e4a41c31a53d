import Crypto

/// Why an incoming datagram was discarded. Every drop is counted under one of these.
public enum DropReason: String, Error, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    /// Larger than `DatagramCodec.maximumDatagramSize`.
    case oversize
    /// Shorter than its header or its declared lengths.
    case truncated
    /// Does not start with "USHB": not ours (or garbage).
    case badMagic
    /// A protocol version this build does not speak.
    case badVersion
    /// Declared lengths are impossible or bytes trail the MAC.
    case badLength
    /// Sender name is empty, too long or not a host name.
    case badSender
    /// HMAC does not verify: wrong cluster key, corruption or forgery.
    case badMAC
    /// This sequence number was already accepted in the sender's current boot.
    case replayed
    /// Sequence number too far behind the newest one to be checked: treated as a replay.
    case staleSequence
    /// Boot id older than the newest boot id seen from this sender.
    case staleBoot
    /// More distinct senders than the replay guard tracks (only possible with the key).
    case tooManySenders
    /// A disk heartbeat slot of another cluster (another cluster name on the same device).
    case foreignCluster
    /// A disk heartbeat slot that says it is another slot (written at the wrong offset).
    case wrongSlot
    /// Authenticated, but from a server that this slot or line does not belong to (a
    /// server wrote into another server's slot, or a serial line is wired to a third server).
    case wrongSender
    /// A read or write of a disk heartbeat device or serial line failed (counted once per
    /// attempt; the path retries every interval).
    case deviceError
    /// Bytes on a serial line that were not a frame (garbage, a cut frame), skipped while
    /// looking for the next one: counted once per run of skipped bytes, not per byte.
    case badFrame

    public var description: String { rawValue }
}

/// Authenticated datagrams for LAN heartbeats.
///
/// Wire format (all integers big-endian):
/// ```
/// "USHB" | version u8 = 1 | nameLength u8 (1...63) | name | bootID u64 | sequence u64
///        | payloadLength u16 | payload | HMAC-SHA256(key, every byte before it) (32)
/// ```
/// `open` checks sizes before every read, verifies the MAC in constant time and only then
/// consults and updates the replay guard, so forged datagrams cannot move the window.
public struct DatagramCodec: Sendable {
    public static let magic: [UInt8] = Array("USHB".utf8)
    public static let version: UInt8 = 1
    /// The largest UDP payload over IPv4.
    public static let maximumDatagramSize = 65_507
    static let macLength = 32
    /// magic + version + name length + boot id + sequence + payload length.
    static let fixedHeaderLength = 4 + 1 + 1 + 8 + 8 + 2
    /// Largest payload that fits whatever the sender name.
    public static let maximumPayloadSize = maximumDatagramSize - fixedHeaderLength - NodeName.maximumLength - macLength

    public struct Opened: Sendable, Equatable {
        public var sender: String
        public var bootID: UInt64
        public var sequence: UInt64
        public var payload: [UInt8]

        public init(sender: String, bootID: UInt64, sequence: UInt64, payload: [UInt8]) {
            self.sender = sender
            self.bootID = bootID
            self.sequence = sequence
            self.payload = payload
        }
    }

    public enum SealError: Error, Equatable, CustomStringConvertible {
        case invalidSenderName(String)
        case payloadTooLarge(byteCount: Int)

        public var description: String {
            switch self {
            case .invalidSenderName(let name):
                return "invalid sender name \"\(name)\": use 1-\(NodeName.maximumLength) letters, digits, '-', '_' or '.'"
            case .payloadTooLarge(let count):
                return "heartbeat payload of \(count) bytes exceeds the maximum of \(DatagramCodec.maximumPayloadSize)"
            }
        }
    }

    private let key: ClusterKey
    public var replayGuard: ReplayGuard

    public init(key: ClusterKey, replayGuard: ReplayGuard = ReplayGuard()) {
        self.key = key
        self.replayGuard = replayGuard
    }

    // MARK: Sealing

    public func seal(payload: [UInt8], sender: String, bootID: UInt64, sequence: UInt64) throws(SealError) -> [UInt8] {
        let name = Array(sender.utf8)
        guard NodeName.isValid(utf8: name) else { throw .invalidSenderName(sender) }
        guard payload.count <= Self.maximumPayloadSize else { throw .payloadTooLarge(byteCount: payload.count) }

        var bytes: [UInt8] = []
        bytes.reserveCapacity(Self.fixedHeaderLength + name.count + payload.count + Self.macLength)
        bytes.append(contentsOf: Self.magic)
        bytes.append(Self.version)
        bytes.append(UInt8(name.count))
        bytes.append(contentsOf: name)
        WireBytes.append(bootID, to: &bytes)
        WireBytes.append(sequence, to: &bytes)
        WireBytes.append(UInt16(payload.count), to: &bytes)
        bytes.append(contentsOf: payload)
        bytes.append(contentsOf: HMAC<SHA256>.authenticationCode(for: bytes, using: key.symmetricKey))
        return bytes
    }

    // MARK: Opening

    /// Parses and authenticates a datagram without touching the replay guard.
    public func authenticate(_ bytes: [UInt8]) -> Result<Opened, DropReason> {
        guard bytes.count <= Self.maximumDatagramSize else { return .failure(.oversize) }
        let datagram = bytes[...]

        let magicPrefixLength = min(datagram.count, Self.magic.count)
        guard datagram.prefix(magicPrefixLength).elementsEqual(Self.magic.prefix(magicPrefixLength)) else {
            return .failure(.badMagic)
        }
        guard datagram.count > 4 else { return .failure(.truncated) }
        guard datagram[datagram.startIndex + 4] == Self.version else { return .failure(.badVersion) }
        guard datagram.count > 5 else { return .failure(.truncated) }

        let nameLength = Int(datagram[datagram.startIndex + 5])
        guard nameLength >= 1, nameLength <= NodeName.maximumLength else { return .failure(.badSender) }
        let nameStart = 6
        let bootOffset = nameStart + nameLength
        let sequenceOffset = bootOffset + 8
        let payloadLengthOffset = sequenceOffset + 8
        let payloadStart = payloadLengthOffset + 2
        guard datagram.count >= payloadStart else { return .failure(.truncated) }

        let payloadLength = Int(WireBytes.readUInt64(datagram, at: payloadLengthOffset, width: 2))
        let macStart = payloadStart + payloadLength
        let expectedLength = macStart + Self.macLength
        guard datagram.count >= expectedLength else { return .failure(.truncated) }
        guard datagram.count == expectedLength else { return .failure(.badLength) }

        let nameBytes = datagram[(datagram.startIndex + nameStart)..<(datagram.startIndex + bootOffset)]
        guard NodeName.isValid(utf8: nameBytes) else { return .failure(.badSender) }

        let authenticated = datagram[datagram.startIndex..<(datagram.startIndex + macStart)]
        let mac = datagram[(datagram.startIndex + macStart)...]
        // isValidAuthenticationCode compares in constant time.
        guard HMAC<SHA256>.isValidAuthenticationCode(Array(mac), authenticating: authenticated, using: key.symmetricKey) else {
            return .failure(.badMAC)
        }

        return .success(
            Opened(
                sender: String(decoding: nameBytes, as: UTF8.self),
                bootID: WireBytes.readUInt64(datagram, at: bootOffset),
                sequence: WireBytes.readUInt64(datagram, at: sequenceOffset),
                payload: Array(datagram[(datagram.startIndex + payloadStart)..<(datagram.startIndex + macStart)])
            )
        )
    }

    /// Authenticates a datagram, then admits it through the replay guard.
    public mutating func open(_ bytes: [UInt8]) -> Result<Opened, DropReason> {
        switch authenticate(bytes) {
        case .failure(let reason):
            return .failure(reason)
        case .success(let opened):
            if let reason = replayGuard.admit(sender: opened.sender, bootID: opened.bootID, sequence: opened.sequence) {
                return .failure(reason)
            }
            return .success(opened)
        }
    }
}

/// Per-sender replay protection for authenticated datagrams.
///
/// A sender's boot id only grows across its restarts, so an older boot id is `staleBoot` and a
/// newer one starts a fresh window. Within a boot every sequence number is accepted once; a
/// sliding window of `windowSize` numbers below the newest tolerates reordering, anything
/// older is `staleSequence`.
public struct ReplayGuard: Sendable {
    public static let maximumWindowSize = 128

    struct SenderWindow: Sendable {
        var bootID: UInt64
        var highestSequence: UInt64
        /// Bit i set: `highestSequence - i` was accepted.
        var seen: UInt128
    }

    public let windowSize: Int
    public let maximumSenders: Int
    private var windows: [String: SenderWindow] = [:]

    /// `windowSize` is clamped to 1...128. `maximumSenders` bounds memory even if a key
    /// holder invents names (a cluster has at most a few dozen servers).
    public init(windowSize: Int = 128, maximumSenders: Int = 256) {
        self.windowSize = min(max(windowSize, 1), Self.maximumWindowSize)
        self.maximumSenders = max(maximumSenders, 1)
    }

    public var trackedSenders: Int { windows.count }

    /// The newest boot id accepted from `sender`, if any.
    public func currentBootID(of sender: String) -> UInt64? { windows[sender]?.bootID }

    /// Returns why the datagram must be dropped, or nil after recording it as accepted.
    public mutating func admit(sender: String, bootID: UInt64, sequence: UInt64) -> DropReason? {
        guard var window = windows[sender] else {
            guard windows.count < maximumSenders else { return .tooManySenders }
            windows[sender] = SenderWindow(bootID: bootID, highestSequence: sequence, seen: 1)
            return nil
        }
        if bootID < window.bootID { return .staleBoot }
        if bootID > window.bootID {
            windows[sender] = SenderWindow(bootID: bootID, highestSequence: sequence, seen: 1)
            return nil
        }

        if sequence > window.highestSequence {
            let advance = sequence - window.highestSequence
            window.seen = advance >= UInt64(Self.maximumWindowSize) ? 1 : (window.seen << UInt128(advance)) | 1
            window.highestSequence = sequence
        } else {
            let distance = window.highestSequence - sequence
            guard distance < UInt64(windowSize) else { return .staleSequence }
            let bit = UInt128(1) << UInt128(distance)
            guard window.seen & bit == 0 else { return .replayed }
            window.seen |= bit
        }
        windows[sender] = window
        return nil
    }

    /// Forgets a sender (e.g. removed from the configuration).
    public mutating func forget(sender: String) {
        windows[sender] = nil
    }
}
