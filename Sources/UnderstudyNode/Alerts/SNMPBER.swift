/// The few BER encodings (X.690) an SNMP trap needs, written by hand: INTEGER, OCTET STRING,
/// NULL, OBJECT IDENTIFIER, SEQUENCE and the SNMP application types (IpAddress, TimeTicks,
/// Unsigned32/Gauge32). Every value is encoded in its shortest (DER) form, which is valid BER.
///
/// Why not swift-asn1: it is not a dependency of the package yet (one more package to build
/// on every machine), and it is built around parsing and DER serialisation of typed ASN.1
/// modules; a trap is a fixed shape of a dozen tags that this file encodes in ~100 lines,
/// each one checked byte for byte against X.690's examples in SNMPBERTests.
enum BER {
    /// Tag numbers (class and constructed bits included).
    enum Tag {
        static let integer: UInt8 = 0x02
        static let octetString: UInt8 = 0x04
        static let null: UInt8 = 0x05
        static let objectIdentifier: UInt8 = 0x06
        static let sequence: UInt8 = 0x30
        /// RFC 2578 application types.
        static let ipAddress: UInt8 = 0x40
        static let unsigned32: UInt8 = 0x42
        static let timeTicks: UInt8 = 0x43
        /// RFC 1157 Trap-PDU ([4] IMPLICIT SEQUENCE) and RFC 3416 SNMPv2-Trap-PDU ([7]).
        static let trapV1PDU: UInt8 = 0xA4
        static let trapV2PDU: UInt8 = 0xA7
    }

    /// A length octet or octets: short form below 128, else 0x80 | count, then big-endian.
    static func length(_ count: Int) -> [UInt8] {
        precondition(count >= 0, "a BER length is never negative")
        if count < 0x80 { return [UInt8(count)] }
        var bytes: [UInt8] = []
        var rest = count
        while rest > 0 {
            bytes.insert(UInt8(rest & 0xFF), at: 0)
            rest >>= 8
        }
        return [0x80 | UInt8(bytes.count)] + bytes
    }

    /// Tag, length, contents.
    static func tlv(_ tag: UInt8, _ contents: [UInt8]) -> [UInt8] {
        [tag] + length(contents.count) + contents
    }

    /// A signed INTEGER in the fewest two's-complement octets.
    static func integer(_ value: Int64, tag: UInt8 = Tag.integer) -> [UInt8] {
        var bytes: [UInt8] = []
        var rest = value
        repeat {
            bytes.insert(UInt8(truncatingIfNeeded: rest), at: 0)
            rest >>= 8
        } while rest != 0 && rest != -1
        // The sign bit of the first octet must agree with the value's sign.
        if value >= 0 && bytes[0] & 0x80 != 0 { bytes.insert(0x00, at: 0) }
        if value < 0 && bytes[0] & 0x80 == 0 { bytes.insert(0xFF, at: 0) }
        return tlv(tag, bytes)
    }

    /// An unsigned 32-bit application type (TimeTicks, Unsigned32): an INTEGER-shaped
    /// encoding of a non-negative value, up to five octets.
    static func unsigned(_ value: UInt32, tag: UInt8) -> [UInt8] {
        integer(Int64(value), tag: tag)
    }

    static func octetString(_ bytes: [UInt8]) -> [UInt8] { tlv(Tag.octetString, bytes) }

    static let null: [UInt8] = [Tag.null, 0x00]

    static func sequence(_ elements: [[UInt8]], tag: UInt8 = Tag.sequence) -> [UInt8] {
        tlv(tag, elements.flatMap { $0 })
    }

    static func objectIdentifier(_ oid: SNMPObjectID) -> [UInt8] {
        let arcs = oid.arcs
        // The first two arcs share one subidentifier: 40 * first + second (X.690 8.19.4).
        var contents = base128(UInt64(arcs[0]) * 40 + UInt64(arcs[1]))
        for arc in arcs.dropFirst(2) { contents += base128(UInt64(arc)) }
        return tlv(Tag.objectIdentifier, contents)
    }

    /// Seven bits per octet, most significant first, the high bit set on all but the last.
    static func base128(_ value: UInt64) -> [UInt8] {
        var bytes: [UInt8] = [UInt8(value & 0x7F)]
        var rest = value >> 7
        while rest > 0 {
            bytes.insert(UInt8(rest & 0x7F) | 0x80, at: 0)
            rest >>= 7
        }
        return bytes
    }
}

/// An OBJECT IDENTIFIER as SNMP uses it: at least two arcs, the first 0, 1 or 2 (the second
/// below 40 under 0 and 1), every arc within 32 bits (RFC 2578 §3.5).
public struct SNMPObjectID: Sendable, Hashable, CustomStringConvertible {
    public let arcs: [UInt32]

    /// Nil when `arcs` is not a valid SNMP OID.
    public init?(_ arcs: [UInt32]) {
        guard arcs.count >= 2, arcs.count <= 128, arcs[0] <= 2, arcs[0] == 2 || arcs[1] < 40 else { return nil }
        self.arcs = arcs
    }

    /// From dotted text (`1.3.6.1.4.1.32473.17`, a leading dot allowed); nil when malformed.
    public init?(_ text: String) {
        let body = text.hasPrefix(".") ? text.dropFirst() : Substring(text)
        var arcs: [UInt32] = []
        for part in body.split(separator: ".", omittingEmptySubsequences: false) {
            guard !part.isEmpty, part.allSatisfy({ $0.isASCII && $0.isNumber }), let arc = UInt32(part) else { return nil }
            arcs.append(arc)
        }
        self.init(arcs)
    }

    /// This OID with more arcs after it.
    public func appending(_ more: UInt32...) -> SNMPObjectID {
        // Appending keeps every rule of `init?(_:)` but the count, which SNMP caps at 128.
        SNMPObjectID(constant: arcs + more)
    }

    /// For arcs valid by construction (the constants of `UnderstudyMIB`): not checked.
    init(constant arcs: [UInt32]) { self.arcs = arcs }

    public var description: String { arcs.map(String.init).joined(separator: ".") }
}
