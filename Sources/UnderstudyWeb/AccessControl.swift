import UnderstudyModel

/// An IPv4 or IPv6 network (an address with a prefix length; a bare address is a /32 or
/// /128), parsed without the resolver.
public struct AddressRange: Sendable, Equatable {
    let bytes: [UInt8]
    let prefix: Int

    public init?(_ text: String) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count <= 2, let bytes = Self.parse(String(parts[0])) else { return nil }
        let maximum = bytes.count * 8
        if parts.count == 2 {
            guard let prefix = Int(parts[1]), (0...maximum).contains(prefix) else { return nil }
            self.prefix = prefix
        } else {
            self.prefix = maximum
        }
        self.bytes = bytes
    }

    public func contains(_ address: String) -> Bool {
        guard var candidate = Self.parse(address) else { return false }
        // An IPv4 client on a dual-stack socket appears as ::ffff:a.b.c.d.
        if bytes.count == 4, candidate.count == 16, candidate.prefix(12) == [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff] {
            candidate = Array(candidate.suffix(4))
        }
        guard candidate.count == bytes.count else { return false }
        var remaining = prefix
        for index in bytes.indices where remaining > 0 {
            let bits = min(8, remaining)
            let mask = UInt8(truncatingIfNeeded: 0xff << (8 - bits))
            if candidate[index] & mask != bytes[index] & mask { return false }
            remaining -= bits
        }
        return true
    }

    /// 4 bytes for IPv4, 16 for IPv6.
    static func parse(_ text: String) -> [UInt8]? {
        if IPAddressSyntax.isIPv4(text) {
            return text.split(separator: ".").compactMap { UInt8($0) }
        }
        guard IPAddressSyntax.isIPv6(text) else { return nil }
        var head: [UInt16] = []
        var tail: [UInt16] = []
        let halves = text.components(separatedBy: "::")
        func groups(_ part: String) -> [UInt16]? {
            if part.isEmpty { return [] }
            var result: [UInt16] = []
            for piece in part.split(separator: ":") {
                if piece.contains(".") {
                    guard let v4 = parse(String(piece)), v4.count == 4 else { return nil }
                    result.append(UInt16(v4[0]) << 8 | UInt16(v4[1]))
                    result.append(UInt16(v4[2]) << 8 | UInt16(v4[3]))
                } else {
                    guard let value = UInt16(piece, radix: 16) else { return nil }
                    result.append(value)
                }
            }
            return result
        }
        guard let first = groups(halves[0]) else { return nil }
        head = first
        if halves.count == 2 {
            guard let second = groups(halves[1]) else { return nil }
            tail = second
        }
        let zeros = Array(repeating: UInt16(0), count: max(0, 8 - head.count - tail.count))
        let all = head + zeros + tail
        guard all.count == 8 else { return nil }
        return all.flatMap { [UInt8($0 >> 8), UInt8($0 & 0xff)] }
    }
}

/// Which role a request may act with, given the user's role and the client address
/// (reference §3.7: a client list for operation, one for view only).
public struct AccessPolicy: Sendable {
    let lists: [WebRole: [AddressRange]]

    public init(_ settings: [WebRole: [String]]) {
        lists = settings.mapValues { $0.compactMap(AddressRange.init) }
    }

    /// The role the request acts with: the user's own when its list admits the address (or
    /// there is no list), else viewer when the viewer list admits it, else nil (refused).
    public func effectiveRole(user role: WebRole, address: String?) -> WebRole? {
        func admits(_ role: WebRole) -> Bool {
            guard let list = lists[role] else { return true }
            guard let address else { return false }
            return list.contains { $0.contains(address) }
        }
        if admits(role) { return role }
        if role == .operator && admits(.viewer) { return .viewer }
        return nil
    }
}
