import UnderstudyModel

/// Appends the compact binary encoding of heartbeats: unsigned LEB128 varints, zigzag for
/// signed numbers, length-prefixed UTF-8 strings. One writer is reused for every heartbeat
/// (`removeAll(keepingCapacity:)`), so encoding allocates nothing once warm.
struct WireWriter {
    var bytes: [UInt8] = []

    init(capacity: Int = 256) { bytes.reserveCapacity(capacity) }

    mutating func byte(_ value: UInt8) { bytes.append(value) }

    mutating func varint(_ value: UInt64) {
        var rest = value
        while rest >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: rest) | 0x80)
            rest >>= 7
        }
        bytes.append(UInt8(rest))
    }

    mutating func signed(_ value: Int64) {
        varint(UInt64(bitPattern: (value << 1) ^ (value >> 63)))
    }

    mutating func duration(_ value: Duration) {
        let parts = value.components
        signed(parts.seconds)
        signed(parts.attoseconds)
    }

    mutating func string(_ value: String) {
        var value = value
        value.withUTF8 { utf8 in
            varint(UInt64(utf8.count))
            bytes.append(contentsOf: utf8)
        }
    }

    mutating func raw(_ value: some Collection<UInt8>) {
        varint(UInt64(value.count))
        bytes.append(contentsOf: value)
    }
}

/// Reads what `WireWriter` wrote, checking every length against the bytes left: malformed
/// input throws, it never traps. (The bytes are authenticated before they get here; the
/// checks are for bugs and for the fuzz tests.)
struct WireReader {
    struct Malformed: Error, Equatable, CustomStringConvertible {
        var what: String
        var description: String { "malformed heartbeat: \(what)" }
    }

    let bytes: [UInt8]
    private(set) var offset: Int

    init(_ bytes: [UInt8], offset: Int = 0) {
        self.bytes = bytes
        self.offset = offset
    }

    var isAtEnd: Bool { offset >= bytes.count }

    mutating func byte(_ what: String) throws(Malformed) -> UInt8 {
        guard offset < bytes.count else { throw Malformed(what: "\(what) cut short") }
        defer { offset += 1 }
        return bytes[offset]
    }

    mutating func varint(_ what: String) throws(Malformed) -> UInt64 {
        var value: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            let next = try byte(what)
            guard shift < 64, shift < 63 || next & 0x7E == 0 else { throw Malformed(what: "\(what) too large") }
            value |= UInt64(next & 0x7F) << shift
            if next & 0x80 == 0 { return value }
            shift += 7
        }
    }

    mutating func signed(_ what: String) throws(Malformed) -> Int64 {
        let raw = try varint(what)
        return Int64(bitPattern: raw >> 1) ^ -Int64(bitPattern: raw & 1)
    }

    mutating func count(_ what: String, limit: Int) throws(Malformed) -> Int {
        let value = try varint(what)
        guard value <= UInt64(limit), value <= UInt64(bytes.count - offset) else {
            throw Malformed(what: "\(what) count \(value) impossible")
        }
        return Int(value)
    }

    mutating func duration(_ what: String) throws(Malformed) -> Duration {
        let seconds = try signed(what)
        let attoseconds = try signed(what)
        guard attoseconds > -1_000_000_000_000_000_000, attoseconds < 1_000_000_000_000_000_000 else {
            throw Malformed(what: "\(what) out of range")
        }
        return Duration(secondsComponent: seconds, attosecondsComponent: attoseconds)
    }

    mutating func string(_ what: String, limit: Int = 255) throws(Malformed) -> String {
        let length = try count(what, limit: limit)
        defer { offset += length }
        guard let text = String(validating: bytes[offset..<offset + length], as: UTF8.self) else {
            throw Malformed(what: "\(what) not UTF-8")
        }
        return text
    }

    mutating func raw(_ what: String, limit: Int) throws(Malformed) -> ArraySlice<UInt8> {
        let length = try count(what, limit: limit)
        defer { offset += length }
        return bytes[offset..<offset + length]
    }
}
