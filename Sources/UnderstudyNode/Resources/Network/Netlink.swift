import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// Why a netlink request failed, in words for the resource's failure reason.
struct NetlinkFailure: Error, Sendable, CustomStringConvertible {
    var reason: String
    /// The kernel's errno, when it answered with one.
    var code: Int32?
    var description: String { reason }

    init(_ reason: String, code: Int32? = nil) {
        self.reason = reason
        self.code = code
    }

    /// "File exists (EEXIST)", with what it means for an address where that is clear.
    static func describe(_ code: Int32, adding: Bool? = nil) -> String {
        let name = errnoNames[code].map { " (\($0))" } ?? " (errno \(code))"
        let text = String(cString: strerror(code)) + name
        switch code {
        case EEXIST where adding == true: return text + ": the address is already there"
        case EADDRNOTAVAIL where adding == false: return text + ": the address is already gone"
        case ENODEV: return text + ": the interface does not exist (any more)"
        case EPERM, EACCES: return text + ": changing addresses needs CAP_NET_ADMIN (run the daemon as root)"
        default: return text
        }
    }

    static let errnoNames: [Int32: String] = [
        EPERM: "EPERM", EACCES: "EACCES", EEXIST: "EEXIST", EADDRNOTAVAIL: "EADDRNOTAVAIL", ENODEV: "ENODEV",
        EINVAL: "EINVAL", ENOBUFS: "ENOBUFS", ENOMEM: "ENOMEM", EBUSY: "EBUSY", EOPNOTSUPP: "EOPNOTSUPP",
        EAFNOSUPPORT: "EAFNOSUPPORT", ENETDOWN: "ENETDOWN", EAGAIN: "EAGAIN", EINTR: "EINTR", ENOENT: "ENOENT",
        EPROTONOSUPPORT: "EPROTONOSUPPORT", ENETUNREACH: "ENETUNREACH", EHOSTUNREACH: "EHOSTUNREACH",
    ]
}

/// A blocking rtnetlink (NETLINK_ROUTE) socket: one request at a time, every reply checked
/// (sequence number, port id, lengths) and every wait bounded by a deadline (poll, and
/// SO_RCVTIMEO as a second guard). Used only on a `DedicatedThread`.
final class NetlinkSocket {
    let fd: Int32
    let portID: UInt32
    private var sequence: UInt32
    private let deadline: UInt64

    /// Opens and binds the socket; `limit` bounds everything done with it.
    init(limit: Duration) throws(NetlinkFailure) {
        deadline = Monotonic.now() + Monotonic.nanoseconds(limit)
        let fd = socket(AF_NETLINK, Int32(SOCK_RAW.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)  // NETLINK_ROUTE
        guard fd >= 0 else { throw NetlinkFailure("cannot open a netlink socket: \(NetlinkFailure.describe(errno))") }
        // sockaddr_nl: family, pad, port id 0 (the kernel assigns one), groups 0.
        var address = [UInt8](repeating: 0, count: 12)
        withUnsafeBytes(of: UInt16(AF_NETLINK)) { address.replaceSubrange(0..<2, with: $0) }
        var length = socklen_t(address.count)
        let bound = address.withUnsafeMutableBytes { raw -> Int32 in
            let pointer = raw.baseAddress?.assumingMemoryBound(to: sockaddr.self)
            guard bind(fd, pointer, socklen_t(raw.count)) == 0 else { return -1 }
            return getsockname(fd, pointer, &length)
        }
        guard bound == 0, length >= 8 else {
            let code = errno
            close(fd)
            throw NetlinkFailure("cannot bind a netlink socket: \(NetlinkFailure.describe(code))")
        }
        self.fd = fd
        portID = address.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 4, as: UInt32.self) }
        sequence = UInt32.random(in: 1...UInt32.max / 2)
        var one: Int32 = 1
        let solNetlink: Int32 = 270
        // Short error replies (the request's header only) with the kernel's explanation.
        _ = setsockopt(fd, solNetlink, 10, &one, socklen_t(MemoryLayout<Int32>.size))  // NETLINK_CAP_ACK
        _ = setsockopt(fd, solNetlink, 11, &one, socklen_t(MemoryLayout<Int32>.size))  // NETLINK_EXT_ACK
        var timeout = Monotonic.timeval(limit)
        _ = setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        _ = setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit { close(fd) }

    func nextSequence() -> UInt32 {
        sequence &+= 1
        return sequence
    }

    /// Sends a request built for `sequence` and returns the payloads of its reply messages of
    /// `type` (a dump: until NLMSG_DONE) or nothing (an acknowledged change). A kernel error is
    /// a failure with its errno; `what` names the request in messages.
    func exchange(_ request: [UInt8], sequence: UInt32, dump: Bool, type: UInt16, what: String) throws(NetlinkFailure) -> (
        payloads: [[UInt8]], interrupted: Bool
    ) {
        try send(request, what: what)
        var payloads: [[UInt8]] = []
        var interrupted = false
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let count = try receive(into: &buffer, what: what)
            let messages: [NetlinkWire.Message]
            do {
                messages = try NetlinkWire.messages(in: buffer[0..<count])
            } catch {
                throw NetlinkFailure("\(what): malformed reply from the kernel: \(error)")
            }
            for message in messages {
                // Not ours (another request's late reply, or a stray): ignored.
                guard message.sequence == sequence, message.portID == portID else { continue }
                if message.flags & NetlinkWire.flagDumpInterrupted != 0 { interrupted = true }
                switch message.type {
                case NetlinkWire.typeError:
                    let ack: NetlinkWire.Acknowledgement
                    do { ack = try NetlinkWire.acknowledgement(message) } catch {
                        throw NetlinkFailure("\(what): malformed error reply from the kernel: \(error)")
                    }
                    if ack.code == 0 {
                        if !dump { return (payloads, interrupted) }
                        continue
                    }
                    let extra = ack.message.map { " (\($0))" } ?? ""
                    throw NetlinkFailure(
                        "\(what) failed: \(NetlinkFailure.describe(ack.code, adding: adding(type)))\(extra)", code: ack.code)
                case NetlinkWire.typeDone:
                    if dump { return (payloads, interrupted) }
                case NetlinkWire.typeOverrun:
                    throw NetlinkFailure("\(what): the kernel's reply overran the socket buffer")
                case NetlinkWire.typeNoop:
                    continue
                case type where dump:
                    payloads.append(message.payload)
                default:
                    continue
                }
            }
        }
    }

    private func adding(_ type: UInt16) -> Bool? {
        switch type {
        case NetlinkWire.newAddress: return true
        case NetlinkWire.deleteAddress: return false
        default: return nil
        }
    }

    private func send(_ request: [UInt8], what: String) throws(NetlinkFailure) {
        // To the kernel: sockaddr_nl with port id 0.
        var kernel = [UInt8](repeating: 0, count: 12)
        withUnsafeBytes(of: UInt16(AF_NETLINK)) { kernel.replaceSubrange(0..<2, with: $0) }
        while true {
            let sent = request.withUnsafeBytes { bytes in
                kernel.withUnsafeBytes { raw in
                    sendto(
                        fd, bytes.baseAddress, bytes.count, 0, raw.baseAddress?.assumingMemoryBound(to: sockaddr.self), socklen_t(raw.count)
                    )
                }
            }
            if sent == request.count { return }
            if sent < 0 && errno == EINTR && Monotonic.now() < deadline { continue }
            if sent < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) {
                throw NetlinkFailure("\(what): timed out sending the request")
            }
            throw NetlinkFailure("\(what): cannot send the request: \(sent < 0 ? NetlinkFailure.describe(errno) : "short write")")
        }
    }

    /// One datagram into `buffer`; its length. Throws when the deadline passes first.
    private func receive(into buffer: inout [UInt8], what: String) throws(NetlinkFailure) -> Int {
        while true {
            let now = Monotonic.now()
            guard now < deadline else { throw NetlinkFailure("\(what): no answer from the kernel in time") }
            var descriptor = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&descriptor, 1, Int32(min((deadline - now + 999_999) / 1_000_000, 60_000)))
            if ready < 0 {
                if errno == EINTR { continue }
                throw NetlinkFailure("\(what): cannot wait for the reply: \(NetlinkFailure.describe(errno))")
            }
            if ready == 0 { continue }
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT | MSG_TRUNC)) }
            if count < 0 {
                if errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK { continue }
                throw NetlinkFailure("\(what): cannot read the reply: \(NetlinkFailure.describe(errno))")
            }
            guard count <= buffer.count else {
                throw NetlinkFailure("\(what): a reply of \(count) bytes does not fit the \(buffer.count)-byte buffer")
            }
            return count
        }
    }
}

/// The rtnetlink requests the `fip` and `vip` drivers and the `fipw` probe make: the
/// interfaces with their addresses (what `ip -j addr show` prints), and adding or removing one
/// address. Each request runs on a thread of its own, inside `namespace` when set (tests and
/// the lab: `/run/netns/NAME`), and is over within `timeout` for the caller.
struct RTNetlinkClient: Sendable {
    var namespace: String?
    var timeout: Duration

    init(namespace: String? = nil, timeout: Duration = .seconds(5)) {
        self.namespace = namespace
        self.timeout = timeout
    }

    /// Every interface with its IPv4 and IPv6 addresses, in the kernel's order.
    func interfaces() async throws(NetlinkFailure) -> [NetInterface] {
        try await perform("listing interfaces and addresses") { (limit: Duration) throws(NetlinkFailure) -> [NetInterface] in
            let socket = try NetlinkSocket(limit: limit)
            // A dump that changed while it ran (NLM_F_DUMP_INTR) is asked again, up to 3 times.
            for attempt in 1...3 {
                let links = try Self.dump(socket, NetlinkWire.getLink, reply: NetlinkWire.newLink, what: "RTM_GETLINK")
                let addresses = try Self.dump(socket, NetlinkWire.getAddress, reply: NetlinkWire.newAddress, what: "RTM_GETADDR")
                if (links.interrupted || addresses.interrupted) && attempt < 3 { continue }
                return try Self.combine(links: links.payloads, addresses: addresses.payloads)
            }
            throw NetlinkFailure("the interface list kept changing while it was read")
        }
    }

    /// Adds `address`/`prefix` to the interface (fails with EEXIST when it is there).
    func add(_ ip: IPAddressWithPrefix, prefix: Int, interface: NetInterface, noDAD: Bool) async throws(NetlinkFailure) {
        let what = "adding \(ip.address)/\(prefix) to \(interface.ifname)"
        try await perform(what) { (limit: Duration) throws(NetlinkFailure) -> Void in
            let socket = try NetlinkSocket(limit: limit)
            let sequence = socket.nextSequence()
            let request = NetlinkWire.addressRequest(
                add: true, address: ip.bytes, prefix: prefix, interfaceIndex: interface.ifindex, noDAD: noDAD, sequence: sequence)
            _ = try socket.exchange(request, sequence: sequence, dump: false, type: NetlinkWire.newAddress, what: what)
        }
    }

    /// Removes `address`/`prefix` from the interface; false when it was not there
    /// (EADDRNOTAVAIL: gone in the meantime).
    @discardableResult
    func delete(_ ip: IPAddressWithPrefix, prefix: Int, interface: NetInterface) async throws(NetlinkFailure) -> Bool {
        let what = "removing \(ip.address)/\(prefix) from \(interface.ifname)"
        return try await perform(what) { (limit: Duration) throws(NetlinkFailure) -> Bool in
            let socket = try NetlinkSocket(limit: limit)
            let sequence = socket.nextSequence()
            let request = NetlinkWire.addressRequest(
                add: false, address: ip.bytes, prefix: prefix, interfaceIndex: interface.ifindex, noDAD: false, sequence: sequence)
            do throws(NetlinkFailure) {
                _ = try socket.exchange(request, sequence: sequence, dump: false, type: NetlinkWire.deleteAddress, what: what)
                return true
            } catch {
                if error.code == EADDRNOTAVAIL { return false }
                throw error
            }
        }
    }

    private func perform<T: Sendable>(
        _ what: String, _ work: @escaping @Sendable (Duration) throws(NetlinkFailure) -> T
    ) async throws(NetlinkFailure) -> T {
        let namespace = namespace
        let limit = timeout
        let late = Result<T, NetlinkFailure>.failure(NetlinkFailure("\(what): no answer from the kernel within \(limit)"))
        let result = await DedicatedThread.run(named: "understudy-netlink", limit: limit + .milliseconds(100), late: late) {
            () -> Result<T, NetlinkFailure> in
            if let namespace, let reason = NeighborAdvertiser.enterNamespace(namespace) {
                return .failure(NetlinkFailure("\(what): \(reason)"))
            }
            do throws(NetlinkFailure) { return .success(try work(limit)) } catch { return .failure(error) }
        }
        return try result.get()
    }

    private static func dump(_ socket: NetlinkSocket, _ request: UInt16, reply: UInt16, what: String) throws(NetlinkFailure) -> (
        payloads: [[UInt8]], interrupted: Bool
    ) {
        let sequence = socket.nextSequence()
        return try socket.exchange(
            NetlinkWire.dumpRequest(request, sequence: sequence), sequence: sequence, dump: true, type: reply, what: what)
    }

    /// The interfaces as `ip -j addr show` describes them.
    static func combine(links: [[UInt8]], addresses: [[UInt8]]) throws(NetlinkFailure) -> [NetInterface] {
        var interfaces: [NetInterface] = []
        var position: [Int: Int] = [:]
        do {
            for payload in links {
                let link = try NetlinkWire.link(payload)
                let index = Int(link.index)
                let interface = NetInterface(
                    ifindex: index, ifname: link.name, flags: NetInterface.flagNames(link.flags),
                    operstate: link.operState.map(NetInterface.operStateName), address: link.hardwareAddress.map(ARPSocket.macText),
                    addrInfo: [])
                if let at = position[index] {
                    interfaces[at] = interface
                } else {
                    position[index] = interfaces.count
                    interfaces.append(interface)
                }
            }
            for payload in addresses {
                guard let address = try NetlinkWire.address(payload), let at = position[Int(address.interfaceIndex)] else { continue }
                let family: Int32 = address.family == UInt8(AF_INET) ? AF_INET : AF_INET6
                var output = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN) + 1)
                let text = address.local.withUnsafeBytes { raw in inet_ntop(family, raw.baseAddress, &output, socklen_t(output.count)) }
                guard text != nil else { continue }
                interfaces[at].addrInfo.append(
                    NetInterface.Address(
                        family: family == AF_INET ? "inet" : "inet6",
                        local: String(decoding: output.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self),
                        prefixlen: Int(address.prefixLength),
                        tentative: address.flags & NetlinkWire.addressTentative != 0 ? true : nil,
                        dadfailed: address.flags & NetlinkWire.addressDADFailed != 0 ? true : nil))
            }
        } catch {
            throw NetlinkFailure("malformed interface list from the kernel: \(error)")
        }
        return interfaces
    }
}

extension NetInterface {
    init(ifindex: Int, ifname: String, flags: [String], operstate: String?, address: String?, addrInfo: [Address]) {
        self.ifindex = ifindex
        self.ifname = ifname
        self.flags = flags
        self.operstate = operstate
        self.address = address
        self.addrInfo = addrInfo
    }

    /// IFF_* bits by the names `ip` prints.
    static let flagBits: [(UInt32, String)] = [
        (0x8, "LOOPBACK"), (0x2, "BROADCAST"), (0x10, "POINTOPOINT"), (0x1000, "MULTICAST"), (0x80, "NOARP"),
        (0x200, "ALLMULTI"), (0x100, "PROMISC"), (0x400, "MASTER"), (0x800, "SLAVE"), (0x1, "UP"), (0x10000, "LOWER_UP"),
        (0x20000, "DORMANT"),
    ]

    static func flagNames(_ flags: UInt32) -> [String] {
        var names = flagBits.filter { flags & $0.0 != 0 }.map(\.1)
        // As `ip` shows it: up, but not running (no carrier).
        if flags & 0x1 != 0 && flags & 0x40 == 0 { names.insert("NO-CARRIER", at: 0) }
        return names
    }

    /// RFC 2863 operational state (IF_OPER_*) as `ip` prints it.
    static func operStateName(_ state: UInt8) -> String {
        switch state {
        case 1: return "NOTPRESENT"
        case 2: return "DOWN"
        case 3: return "LOWERLAYERDOWN"
        case 4: return "TESTING"
        case 5: return "DORMANT"
        case 6: return "UP"
        default: return "UNKNOWN"
        }
    }
}

/// CLOCK_MONOTONIC in nanoseconds, for deadlines on blocking threads.
enum Monotonic {
    static func now() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
    }

    static func nanoseconds(_ duration: Duration) -> UInt64 {
        let (seconds, attoseconds) = duration.components
        if seconds < 0 || (seconds == 0 && attoseconds <= 0) { return 0 }
        return UInt64(seconds) * 1_000_000_000 + UInt64(attoseconds / 1_000_000_000)
    }

    static func timeval(_ duration: Duration) -> Glibc.timeval {
        let total = max(nanoseconds(duration), 1_000_000)
        return Glibc.timeval(tv_sec: Int(total / 1_000_000_000), tv_usec: Int(total % 1_000_000_000 / 1000))
    }
}
