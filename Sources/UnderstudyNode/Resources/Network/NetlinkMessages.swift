#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// The rtnetlink wire format (netlink(7), rtnetlink(7)): building requests and reading replies.
///
/// Pure functions over bytes, so they can be tested and fuzzed without a socket. Everything a
/// reply says is checked before use: message and attribute lengths against what is left of the
/// buffer, the 4-byte alignment, the fixed headers' sizes and the address lengths of the family.
/// A reply that does not fit is a `NetlinkParseError`, never a crash. Integers are in host
/// byte order, as netlink carries them.
enum NetlinkWire {
    // linux/netlink.h
    static let headerSize = 16
    static let typeNoop: UInt16 = 1
    static let typeError: UInt16 = 2
    static let typeDone: UInt16 = 3
    static let typeOverrun: UInt16 = 4
    static let flagRequest: UInt16 = 0x1
    static let flagMulti: UInt16 = 0x2
    static let flagAck: UInt16 = 0x4
    static let flagDumpInterrupted: UInt16 = 0x10
    static let flagDump: UInt16 = 0x300
    static let flagExclusive: UInt16 = 0x200
    static let flagCreate: UInt16 = 0x400
    /// In an NLMSG_ERROR: the echoed request is only its header (NETLINK_CAP_ACK).
    static let flagCapped: UInt16 = 0x100
    /// In an NLMSG_ERROR: extended-ACK attributes follow (NETLINK_EXT_ACK).
    static let flagAckTLVs: UInt16 = 0x200
    static let extAckMessage: UInt16 = 1

    // linux/rtnetlink.h
    static let newLink: UInt16 = 16
    static let getLink: UInt16 = 18
    static let newAddress: UInt16 = 20
    static let deleteAddress: UInt16 = 21
    static let getAddress: UInt16 = 22

    // linux/if_link.h, linux/if_addr.h
    static let linkAddress: UInt16 = 1
    static let linkName: UInt16 = 3
    static let linkOperState: UInt16 = 16
    static let addressAddress: UInt16 = 1
    static let addressLocal: UInt16 = 2
    static let addressLabel: UInt16 = 3
    static let addressFlags: UInt16 = 8

    static let addressNoDAD: UInt32 = 0x02
    static let addressDADFailed: UInt32 = 0x08
    static let addressTentative: UInt32 = 0x40

    /// One netlink message of a reply.
    struct Message: Sendable, Equatable {
        var type: UInt16
        var flags: UInt16
        var sequence: UInt32
        var portID: UInt32
        var payload: [UInt8]
    }

    /// An interface from RTM_NEWLINK.
    struct Link: Sendable, Equatable {
        var index: Int32
        var name: String
        /// IFF_* flags (ifi_flags).
        var flags: UInt32
        /// IF_OPER_*; nil when the kernel sent none.
        var operState: UInt8?
        /// IFLA_ADDRESS: the MAC of an Ethernet interface.
        var hardwareAddress: [UInt8]?
    }

    /// An address from RTM_NEWADDR.
    struct Address: Sendable, Equatable {
        /// AF_INET or AF_INET6.
        var family: UInt8
        var prefixLength: UInt8
        /// IFA_F_* (IFA_FLAGS when present: it holds the bits above 8).
        var flags: UInt32
        var scope: UInt8
        var interfaceIndex: UInt32
        /// What `ip` shows as "local": IFA_LOCAL, else IFA_ADDRESS.
        var local: [UInt8]
        var label: String?
    }

    /// What an NLMSG_ERROR says: 0 is an acknowledgement.
    struct Acknowledgement: Sendable, Equatable {
        /// A positive errno, 0 for success.
        var code: Int32
        /// The kernel's extended-ACK text, when it sent one.
        var message: String?
    }

    // MARK: - Building requests

    static func align(_ length: Int) -> Int { (length + 3) & ~3 }

    /// A whole message: header, the fixed `body`, then the attributes (each padded to 4 bytes).
    static func message(
        type: UInt16, flags: UInt16, sequence: UInt32, body: [UInt8], attributes: [(UInt16, [UInt8])] = []
    ) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: headerSize)
        bytes += body
        bytes += [UInt8](repeating: 0, count: align(bytes.count) - bytes.count)
        for (kind, value) in attributes {
            append(UInt16(4 + value.count), to: &bytes)
            append(kind, to: &bytes)
            bytes += value
            bytes += [UInt8](repeating: 0, count: align(bytes.count) - bytes.count)
        }
        var header: [UInt8] = []
        append(UInt32(bytes.count), to: &header)
        append(type, to: &header)
        append(flags, to: &header)
        append(sequence, to: &header)
        append(UInt32(0), to: &header)  // port id: the kernel is 0
        bytes.replaceSubrange(0..<headerSize, with: header)
        return bytes
    }

    /// RTM_GETLINK or RTM_GETADDR dump of every family.
    static func dumpRequest(_ type: UInt16, sequence: UInt32) -> [UInt8] {
        // rtgenmsg is one byte (family AF_UNSPEC); ifinfomsg-sized for RTM_GETLINK.
        let body = [UInt8](repeating: 0, count: type == getLink ? 16 : 8)
        return message(type: type, flags: flagRequest | flagDump, sequence: sequence, body: body)
    }

    /// RTM_NEWADDR (create, fail when present) or RTM_DELADDR of `address`/`prefix` on an
    /// interface, as `ip addr add|del ADDRESS/PREFIX dev NAME [nodad]` sends it: IFA_LOCAL and
    /// IFA_ADDRESS both the address, no label (the kernel names IPv4 entries after the device).
    static func addressRequest(
        add: Bool, address: [UInt8], prefix: Int, interfaceIndex: Int, noDAD: Bool, sequence: UInt32
    ) -> [UInt8] {
        var body: [UInt8] = [
            UInt8(address.count == 16 ? AF_INET6 : AF_INET), UInt8(clamping: prefix), noDAD ? UInt8(addressNoDAD) : 0, 0,
        ]
        append(UInt32(truncatingIfNeeded: interfaceIndex), to: &body)
        let flags = flagRequest | flagAck | (add ? flagCreate | flagExclusive : 0)
        return message(
            type: add ? newAddress : deleteAddress, flags: flags, sequence: sequence, body: body,
            attributes: [(addressLocal, address), (addressAddress, address)])
    }

    private static func append<T: FixedWidthInteger>(_ value: T, to bytes: inout [UInt8]) {
        withUnsafeBytes(of: value) { bytes.append(contentsOf: $0) }
    }

    // MARK: - Reading replies

    /// The messages of one datagram. Throws when a header is short, claims more than is left,
    /// or the datagram ends inside one.
    static func messages(in buffer: ArraySlice<UInt8>) throws(NetlinkParseError) -> [Message] {
        var found: [Message] = []
        var offset = buffer.startIndex
        while offset < buffer.endIndex {
            let left = buffer.endIndex - offset
            guard left >= headerSize else { throw NetlinkParseError("\(left) bytes after the last message: too short for a header") }
            let length = Int(read(UInt32.self, buffer, at: offset))
            guard length >= headerSize else { throw NetlinkParseError("message length \(length) is shorter than its header") }
            guard length <= left else { throw NetlinkParseError("message length \(length) exceeds the \(left) bytes left") }
            found.append(
                Message(
                    type: read(UInt16.self, buffer, at: offset + 4), flags: read(UInt16.self, buffer, at: offset + 6),
                    sequence: read(UInt32.self, buffer, at: offset + 8), portID: read(UInt32.self, buffer, at: offset + 12),
                    payload: Array(buffer[(offset + headerSize)..<(offset + length)])))
            // The padding after the last message may be missing.
            offset += min(align(length), left)
        }
        return found
    }

    /// The attributes after a fixed header of `skip` bytes (type with the nested and
    /// byte-order bits cleared). Throws on a length that is short or runs past the payload.
    static func attributes(_ payload: [UInt8], after skip: Int) throws(NetlinkParseError) -> [(type: UInt16, value: [UInt8])] {
        guard payload.count >= skip else {
            throw NetlinkParseError("payload of \(payload.count) bytes is shorter than its \(skip)-byte header")
        }
        var found: [(type: UInt16, value: [UInt8])] = []
        var offset = align(skip)
        while offset + 4 <= payload.count {
            let length = Int(read(UInt16.self, payload[...], at: offset))
            guard length >= 4 else { throw NetlinkParseError("attribute length \(length) at offset \(offset) is shorter than its header") }
            guard offset + length <= payload.count else {
                throw NetlinkParseError("attribute length \(length) at offset \(offset) exceeds the \(payload.count - offset) bytes left")
            }
            let type = read(UInt16.self, payload[...], at: offset + 2) & 0x3fff
            found.append((type, Array(payload[(offset + 4)..<(offset + length)])))
            offset += align(length)
        }
        return found
    }

    /// An RTM_NEWLINK payload.
    static func link(_ payload: [UInt8]) throws(NetlinkParseError) -> Link {
        let list = try attributes(payload, after: 16)
        let index = read(Int32.self, payload[...], at: 4)
        let flags = read(UInt32.self, payload[...], at: 8)
        var link = Link(index: index, name: "", flags: flags, operState: nil, hardwareAddress: nil)
        for (type, value) in list {
            switch type {
            case linkName: link.name = string(value)
            case linkAddress: link.hardwareAddress = value
            case linkOperState:
                guard value.count >= 1 else { throw NetlinkParseError("IFLA_OPERSTATE of interface \(index) is empty") }
                link.operState = value[0]
            default: break
            }
        }
        guard !link.name.isEmpty else { throw NetlinkParseError("interface \(index) has no name (IFLA_IFNAME)") }
        return link
    }

    /// An RTM_NEWADDR payload; nil for families other than IPv4 and IPv6.
    static func address(_ payload: [UInt8]) throws(NetlinkParseError) -> Address? {
        let list = try attributes(payload, after: 8)
        let family = payload[0]
        let size: Int
        switch Int32(family) {
        case AF_INET: size = 4
        case AF_INET6: size = 16
        default: return nil
        }
        var local: [UInt8]?
        var peer: [UInt8]?
        var flags = UInt32(payload[2])
        var label: String?
        for (type, value) in list {
            switch type {
            case addressLocal, addressAddress:
                guard value.count == size else {
                    throw NetlinkParseError("address attribute of \(value.count) bytes in a family-\(family) entry (expected \(size))")
                }
                if type == addressLocal { local = value } else { peer = value }
            case addressFlags:
                guard value.count >= 4 else { throw NetlinkParseError("IFA_FLAGS of \(value.count) bytes") }
                flags = read(UInt32.self, value[...], at: 0)
            case addressLabel: label = string(value)
            default: break
            }
        }
        guard let chosen = local ?? peer else { throw NetlinkParseError("address entry without IFA_LOCAL or IFA_ADDRESS") }
        let prefix = payload[1]
        guard Int(prefix) <= size * 8 else { throw NetlinkParseError("prefix length \(prefix) in a family-\(family) entry") }
        return Address(
            family: family, prefixLength: prefix, flags: flags, scope: payload[3],
            interfaceIndex: read(UInt32.self, payload[...], at: 4), local: chosen, label: label)
    }

    /// An NLMSG_ERROR payload: the (negative) errno, the echoed request, and with
    /// NLM_F_ACK_TLVS the extended-ACK attributes.
    static func acknowledgement(_ message: Message) throws(NetlinkParseError) -> Acknowledgement {
        let payload = message.payload
        guard payload.count >= 4 + headerSize else {
            throw NetlinkParseError("error message of \(payload.count) bytes (at least \(4 + headerSize) expected)")
        }
        let raw = read(Int32.self, payload[...], at: 0)
        guard raw <= 0, raw > -4096 else { throw NetlinkParseError("error code \(raw) is not a negative errno") }
        var text: String?
        if message.flags & flagAckTLVs != 0 {
            // After the echoed request: its header alone when capped, else the whole request.
            var skip = 4 + headerSize
            if message.flags & flagCapped == 0 {
                skip = 4 + max(headerSize, Int(read(UInt32.self, payload[...], at: 4)))
            }
            if skip <= payload.count, let list = try? attributes(payload, after: skip) {
                text = list.first { $0.type == extAckMessage }.map { string($0.value) }
            }
        }
        return Acknowledgement(code: -raw, message: text.flatMap { $0.isEmpty ? nil : $0 })
    }

    /// A C string attribute (up to the first NUL, or all of it).
    static func string(_ value: [UInt8]) -> String {
        String(decoding: value.prefix { $0 != 0 }, as: UTF8.self)
    }

    /// A host-order integer at `offset`; the callers checked that it fits.
    private static func read<T: FixedWidthInteger>(_: T.Type, _ bytes: ArraySlice<UInt8>, at offset: Int) -> T {
        var value: T = 0
        withUnsafeMutableBytes(of: &value) { raw in
            for index in 0..<MemoryLayout<T>.size { raw[index] = bytes[offset + index] }
        }
        return value
    }
}

struct NetlinkParseError: Error, Sendable, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
