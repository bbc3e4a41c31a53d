import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// An IPv4 or IPv6 address with an optional prefix length, as written in `fip` settings.
struct IPAddressWithPrefix: Sendable, Equatable, CustomStringConvertible {
    enum Family: Sendable, Equatable { case v4, v6 }

    var family: Family
    /// Network-order bytes: 4 for IPv4, 16 for IPv6.
    var bytes: [UInt8]
    /// Canonical text of the address alone (as `ip` prints it).
    var address: String
    var prefix: Int?

    var description: String { prefix.map { "\(address)/\($0)" } ?? address }
    var maxPrefix: Int { family == .v4 ? 32 : 128 }

    /// Parses `10.0.0.5/24`, `10.0.0.5`, `fd00::5/64`, `fd00::5`; throws a readable reason.
    static func parse(_ text: String) throws(IPParseError) -> IPAddressWithPrefix {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        let parts = trimmed.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count <= 2, let host = parts.first, !host.isEmpty else {
            throw IPParseError(reason: "\"\(text)\" is not an IP address (expected e.g. 192.168.0.12/24 or fd00::12/64)")
        }
        var family: Family
        var bytes: [UInt8]
        if let v4 = Self.pton(AF_INET, String(host), size: 4) {
            family = .v4
            bytes = v4
        } else if let v6 = Self.pton(AF_INET6, String(host), size: 16) {
            family = .v6
            bytes = v6
        } else {
            throw IPParseError(reason: "\"\(text)\" is not an IPv4 or IPv6 address")
        }
        var prefix: Int?
        if parts.count == 2 {
            guard let value = Int(parts[1]), value >= 1, value <= (family == .v4 ? 32 : 128) else {
                throw IPParseError(reason: "\"\(text)\": bad prefix length \"\(parts[1])\"")
            }
            prefix = value
        }
        let canonical = Self.ntop(family == .v4 ? AF_INET : AF_INET6, bytes) ?? String(host)
        return IPAddressWithPrefix(family: family, bytes: bytes, address: canonical, prefix: prefix)
    }

    /// Why this address cannot float, or nil when it can.
    var unusableReason: String? {
        switch family {
        case .v4:
            if bytes[0] == 169 && bytes[1] == 254 { return "\(address) is a link-local address" }
            if bytes[0] == 127 { return "\(address) is a loopback address" }
            if bytes[0] >= 224 { return "\(address) is a multicast or reserved address" }
            if bytes.allSatisfy({ $0 == 0 }) { return "\(address) is the unspecified address" }
        case .v6:
            if bytes[0] == 0xfe && (bytes[1] & 0xc0) == 0x80 { return "\(address) is a link-local address" }
            if bytes[0] == 0xff { return "\(address) is a multicast address" }
            if bytes.dropLast().allSatisfy({ $0 == 0 }) && (bytes[15] == 0 || bytes[15] == 1) {
                return "\(address) is the unspecified or loopback address"
            }
        }
        return nil
    }

    /// Whether `other` lies in this address's network of `prefix` bits.
    func sameNetwork(as other: IPAddressWithPrefix, prefix: Int) -> Bool {
        guard other.family == family else { return false }
        var remaining = prefix
        for index in 0..<bytes.count where remaining > 0 {
            let bits = min(8, remaining)
            let mask = UInt8(truncatingIfNeeded: 0xff << (8 - bits))
            if bytes[index] & mask != other.bytes[index] & mask { return false }
            remaining -= bits
        }
        return true
    }

    private static func pton(_ family: Int32, _ text: String, size: Int) -> [UInt8]? {
        var buffer = [UInt8](repeating: 0, count: size)
        let ok = buffer.withUnsafeMutableBytes { inet_pton(family, text, $0.baseAddress) }
        return ok == 1 ? buffer : nil
    }

    private static func ntop(_ family: Int32, _ bytes: [UInt8]) -> String? {
        var output = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN) + 1)
        let result = bytes.withUnsafeBytes { raw in
            inet_ntop(family, raw.baseAddress, &output, socklen_t(output.count))
        }
        guard result != nil else { return nil }
        return String(cString: output)
    }
}

struct IPParseError: Error, Sendable { var reason: String }

/// One interface as `ip -j addr show` reports it.
struct NetInterface: Sendable, Decodable {
    struct Address: Sendable, Decodable {
        var family: String
        var local: String
        var prefixlen: Int
        var tentative: Bool?
        var dadfailed: Bool?
    }

    var ifindex: Int
    var ifname: String
    var flags: [String]
    var operstate: String?
    /// Link-layer (MAC) address.
    var address: String?
    var addrInfo: [Address]

    enum CodingKeys: String, CodingKey {
        case ifindex, ifname, flags, operstate, address
        case addrInfo = "addr_info"
    }

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        ifindex = try container.decode(Int.self, forKey: .ifindex)
        ifname = try container.decode(String.self, forKey: .ifname)
        flags = try container.decodeIfPresent([String].self, forKey: .flags) ?? []
        operstate = try container.decodeIfPresent(String.self, forKey: .operstate)
        address = try container.decodeIfPresent(String.self, forKey: .address)
        // Entries without "local" (rare: e.g. some tunnels) are skipped.
        let raw = try container.decodeIfPresent([LossyAddress].self, forKey: .addrInfo) ?? []
        addrInfo = raw.compactMap(\.value)
    }

    private struct LossyAddress: Decodable {
        var value: Address?
        init(from decoder: any Decoder) throws { value = try? Address(from: decoder) }
    }

    var isLoopback: Bool { flags.contains("LOOPBACK") }
    /// Administratively up and with carrier.
    var linkIsUp: Bool { flags.contains("UP") && flags.contains("LOWER_UP") }

    /// The entry holding exactly this address, if any.
    func entry(for ip: IPAddressWithPrefix) -> Address? {
        addrInfo.first { entry in
            (try? IPAddressWithPrefix.parse(entry.local)).map { $0.bytes == ip.bytes } ?? false
        }
    }

    static func parseList(_ json: String) throws -> [NetInterface] {
        try JSONDecoder().decode([NetInterface].self, from: Data(json.utf8))
    }
}
