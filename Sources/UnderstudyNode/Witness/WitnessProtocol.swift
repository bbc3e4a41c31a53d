import UnderstudyEngine

/// The messages between a server and the witness (`witnesshb`, `httpnp`), carried in HTTP/1.1
/// POST bodies to `/v1/clusters/<cluster>/heartbeat` and `/v1/clusters/<cluster>/resolve`.
///
/// Every body is a datagram sealed as on the LAN (`DatagramCodec`: sender, boot id, sequence,
/// HMAC-SHA256 with the cluster key); the payload inside starts with a 4-byte kind, so no
/// heartbeat datagram of the LAN is ever a valid witness message and no witness message a
/// valid LAN heartbeat (its payload is not the heartbeat's JSON):
/// ```
/// heartbeat: "UWHB" | clusterLength u8 | cluster | timeoutMillis u32 | heartbeat payload
/// resolve:   "UWNP" | clusterLength u8 | cluster | timeoutMillis u32 | count u8
///            | (length u8 | name | seen u8)*      (every server in `servers:` order; seen: 1
///                                                  when it is in the requester's view)
/// reply:     "UWRS" | kind u8 (1 heartbeat, 2 resolve) | request boot id u64 | request sequence u64
///            | verdict u8 | count u8 | (ageMillis u32 | length u16 | datagram)*
/// ```
/// The witness authenticates a request with the cluster's key and admits its (boot id,
/// sequence) in a replay guard of the cluster and kind, then answers with a reply sealed with
/// the same key (sender `witness`) that echoes the request's boot id and sequence: the server
/// takes no reply that is not the answer to the request it just sent. A heartbeat reply
/// carries the newest heartbeat request of each other server of the cluster, as it arrived:
/// the receiving server authenticates each and checks it in its own replay guard, exactly like
/// a UDP heartbeat.
public enum WitnessMessage {
    public static let heartbeatMagic: [UInt8] = Array("UWHB".utf8)
    public static let resolveMagic: [UInt8] = Array("UWNP".utf8)
    public static let replyMagic: [UInt8] = Array("UWRS".utf8)
    /// The sender name of the witness's replies.
    public static let witnessSender = "witness"
    /// The largest request or reply body the witness or a server reads.
    public static let maximumBodySize = 256 * 1024
    /// At most this many heartbeats in a reply (a cluster has fewer servers).
    public static let maximumRelayed = 64
    public static let maximumViewSize = 64

    public enum Kind: UInt8, Sendable, Equatable {
        case heartbeat = 1
        case resolve = 2

        public var pathComponent: String { self == .heartbeat ? "heartbeat" : "resolve" }
    }

    /// A request's payload, parsed.
    public enum Request: Sendable, Equatable {
        case heartbeat(cluster: String, heartbeatTimeout: Duration, payload: [UInt8])
        /// `servers` in `servers:` order, `view` the servers the requester sees.
        case resolve(cluster: String, heartbeatTimeout: Duration, servers: [ServerName], view: Set<ServerName>)

        public var cluster: String {
            switch self {
            case .heartbeat(let cluster, _, _), .resolve(let cluster, _, _, _): return cluster
            }
        }

        public var heartbeatTimeout: Duration {
            switch self {
            case .heartbeat(_, let timeout, _), .resolve(_, let timeout, _, _): return timeout
            }
        }

        public var kind: Kind {
            if case .heartbeat = self { return .heartbeat }
            return .resolve
        }
    }

    public struct Reply: Sendable, Equatable {
        public var kind: Kind
        public var requestBootID: UInt64
        public var requestSequence: UInt64
        public var verdict: WitnessArbiter.Verdict
        /// Sealed heartbeat requests of the other servers (heartbeat replies), each with how
        /// long ago the witness received it.
        public var relayed: [Relayed]

        public init(
            kind: Kind, requestBootID: UInt64, requestSequence: UInt64, verdict: WitnessArbiter.Verdict, relayed: [Relayed] = []
        ) {
            self.kind = kind
            self.requestBootID = requestBootID
            self.requestSequence = requestSequence
            self.verdict = verdict
            self.relayed = relayed
        }
    }

    public struct Relayed: Sendable, Equatable {
        public var ageMillis: UInt32
        public var datagram: [UInt8]

        public init(ageMillis: UInt32, datagram: [UInt8]) {
            self.ageMillis = ageMillis
            self.datagram = datagram
        }
    }

    public enum ParseError: Error, Equatable, CustomStringConvertible {
        case badKind
        case truncated
        case badCluster
        case badTimeout
        case badView
        case trailingBytes
        case tooMany

        public var description: String {
            switch self {
            case .badKind: return "not a witness message of this kind"
            case .truncated: return "truncated"
            case .badCluster: return "bad cluster name"
            case .badTimeout: return "heartbeat timeout out of range"
            case .badView: return "bad server name in the view"
            case .trailingBytes: return "bytes after the message"
            case .tooMany: return "too many entries"
            }
        }
    }

    // MARK: Encoding

    public static func encode(_ request: Request) -> [UInt8] {
        var bytes: [UInt8]
        switch request {
        case .heartbeat(let cluster, let timeout, let payload):
            bytes = heartbeatMagic
            appendHeader(cluster: cluster, timeout: timeout, to: &bytes)
            bytes.append(contentsOf: payload)
        case .resolve(let cluster, let timeout, let servers, let view):
            bytes = resolveMagic
            appendHeader(cluster: cluster, timeout: timeout, to: &bytes)
            let names = servers.prefix(maximumViewSize)
            bytes.append(UInt8(names.count))
            for name in names {
                let utf8 = Array(name.utf8.prefix(255))
                bytes.append(UInt8(utf8.count))
                bytes.append(contentsOf: utf8)
                bytes.append(view.contains(name) ? 1 : 0)
            }
        }
        return bytes
    }

    private static func appendHeader(cluster: String, timeout: Duration, to bytes: inout [UInt8]) {
        let name = Array(cluster.utf8.prefix(255))
        bytes.append(UInt8(name.count))
        bytes.append(contentsOf: name)
        let millis = timeout.components.seconds * 1000 + timeout.components.attoseconds / 1_000_000_000_000_000
        WireBytes.append(UInt32(clamping: max(0, millis)), to: &bytes)
    }

    public static func encode(_ reply: Reply) -> [UInt8] {
        var bytes = replyMagic
        bytes.append(reply.kind.rawValue)
        WireBytes.append(reply.requestBootID, to: &bytes)
        WireBytes.append(reply.requestSequence, to: &bytes)
        bytes.append(reply.verdict.rawValue)
        let relayed = reply.relayed.filter { $0.datagram.count <= Int(UInt16.max) }.prefix(maximumRelayed)
        bytes.append(UInt8(relayed.count))
        for entry in relayed {
            WireBytes.append(entry.ageMillis, to: &bytes)
            WireBytes.append(UInt16(entry.datagram.count), to: &bytes)
            bytes.append(contentsOf: entry.datagram)
        }
        return bytes
    }

    // MARK: Parsing (untrusted bytes: every length checked before it is used)

    public static func parseRequest(_ bytes: [UInt8], kind: Kind) -> Result<Request, ParseError> {
        var reader = Reader(bytes[...])
        guard let magic = reader.take(4) else { return .failure(.truncated) }
        guard Array(magic) == (kind == .heartbeat ? heartbeatMagic : resolveMagic) else { return .failure(.badKind) }
        guard let clusterLength = reader.byte() else { return .failure(.truncated) }
        guard let clusterBytes = reader.take(Int(clusterLength)) else { return .failure(.truncated) }
        guard clusterLength > 0, let cluster = String(validating: clusterBytes, as: UTF8.self) else { return .failure(.badCluster) }
        guard let millis = reader.integer(width: 4) else { return .failure(.truncated) }
        let timeout = Duration.milliseconds(Int64(millis))
        guard millis > 0, timeout <= WitnessArbiter.maximumHeartbeatTimeout else { return .failure(.badTimeout) }
        switch kind {
        case .heartbeat:
            return .success(.heartbeat(cluster: cluster, heartbeatTimeout: timeout, payload: Array(reader.rest)))
        case .resolve:
            guard let count = reader.byte() else { return .failure(.truncated) }
            guard Int(count) <= maximumViewSize else { return .failure(.tooMany) }
            var servers: [ServerName] = []
            var view: Set<ServerName> = []
            for _ in 0..<count {
                guard let length = reader.byte() else { return .failure(.truncated) }
                guard let nameBytes = reader.take(Int(length)) else { return .failure(.truncated) }
                guard NodeName.isValid(utf8: Array(nameBytes)), let name = String(validating: nameBytes, as: UTF8.self),
                    !servers.contains(name)
                else {
                    return .failure(.badView)
                }
                guard let seen = reader.byte() else { return .failure(.truncated) }
                guard seen <= 1 else { return .failure(.badView) }
                servers.append(name)
                if seen == 1 { view.insert(name) }
            }
            guard reader.rest.isEmpty else { return .failure(.trailingBytes) }
            return .success(.resolve(cluster: cluster, heartbeatTimeout: timeout, servers: servers, view: view))
        }
    }

    public static func parseReply(_ bytes: [UInt8]) -> Result<Reply, ParseError> {
        var reader = Reader(bytes[...])
        guard let magic = reader.take(4) else { return .failure(.truncated) }
        guard Array(magic) == replyMagic else { return .failure(.badKind) }
        guard let kindByte = reader.byte() else { return .failure(.truncated) }
        guard let kind = Kind(rawValue: kindByte) else { return .failure(.badKind) }
        guard let boot = reader.integer(width: 8), let sequence = reader.integer(width: 8) else { return .failure(.truncated) }
        guard let verdictByte = reader.byte() else { return .failure(.truncated) }
        guard let verdict = WitnessArbiter.Verdict(rawValue: verdictByte) else { return .failure(.badKind) }
        guard let count = reader.byte() else { return .failure(.truncated) }
        guard Int(count) <= maximumRelayed else { return .failure(.tooMany) }
        var relayed: [Relayed] = []
        for _ in 0..<count {
            guard let age = reader.integer(width: 4), let length = reader.integer(width: 2), let datagram = reader.take(Int(length))
            else { return .failure(.truncated) }
            relayed.append(Relayed(ageMillis: UInt32(truncatingIfNeeded: age), datagram: Array(datagram)))
        }
        guard reader.rest.isEmpty else { return .failure(.trailingBytes) }
        return .success(Reply(kind: kind, requestBootID: boot, requestSequence: sequence, verdict: verdict, relayed: relayed))
    }

    struct Reader {
        var rest: ArraySlice<UInt8>
        init(_ bytes: ArraySlice<UInt8>) { rest = bytes }

        mutating func take(_ count: Int) -> ArraySlice<UInt8>? {
            guard count >= 0, rest.count >= count else { return nil }
            let taken = rest.prefix(count)
            rest = rest.dropFirst(count)
            return taken
        }

        mutating func byte() -> UInt8? { take(1)?.first }

        mutating func integer(width: Int) -> UInt64? {
            guard let bytes = take(width) else { return nil }
            return WireBytes.readUInt64(bytes, at: 0, width: width)
        }
    }
}
