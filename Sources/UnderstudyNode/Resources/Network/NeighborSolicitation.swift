import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// The IPv6 "is this address in use?" probe of `fip`: neighbour solicitations (RFC 4861 §4.3)
/// for the address, sent to its solicited-node multicast group from an ICMPv6 raw socket of
/// the daemon, and the neighbour advertisements that answer them (what `ndisc6 -m` did, without
/// a process). The answer's target link-layer address option names the host; answers from
/// this server's own MACs do not count. Runs on a thread of its own (inside `namespace` when
/// set), every wait bounded by poll against a deadline.
enum NeighborSolicitation {
    struct Failure: Error, Sendable {
        var reason: String
        /// The raw socket could not be opened at all: the caller may fall back to `ndisc6`.
        var socketUnavailable = false
    }

    /// Sends `probes` solicitations `spacing` apart (the first at once) and listens until `wait`
    /// has passed since the first. Returns the MAC of a foreign host that answered, "an unknown
    /// host" for an answer without a link-layer address, nil when none did.
    static func probe(
        target: [UInt8], interfaceIndex: Int, mac: [UInt8], ownMACs: Set<[UInt8]>, wait: Duration, probes: Int = 2,
        spacing: Duration = .milliseconds(50), namespace: String?
    ) async throws(Failure) -> String? {
        guard target.count == 16, mac.count == 6 else { throw Failure(reason: "bad target or MAC address for a neighbour solicitation") }
        let late = Result<String?, Failure>.failure(Failure(reason: "the neighbour solicitation probe did not finish in time"))
        let result = await DedicatedThread.run(named: "understudy-ndisc-probe", limit: wait + .seconds(2), late: late) {
            if let namespace, let reason = NeighborAdvertiser.enterNamespace(namespace) {
                return .failure(Failure(reason: reason))
            }
            return run(
                target: target, interfaceIndex: interfaceIndex, mac: mac, ownMACs: ownMACs.union([mac]), wait: wait,
                probes: max(1, probes), spacing: spacing)
        }
        return try result.get()
    }

    private static func run(
        target: [UInt8], interfaceIndex: Int, mac: [UInt8], ownMACs: Set<[UInt8]>, wait: Duration, probes: Int, spacing: Duration
    ) -> Result<String?, Failure> {
        let fd = socket(AF_INET6, Int32(SOCK_RAW.rawValue) | Int32(SOCK_CLOEXEC.rawValue), Int32(IPPROTO_ICMPV6))
        guard fd >= 0 else {
            return .failure(
                Failure(reason: "cannot open an ICMPv6 raw socket: \(NetlinkFailure.describe(errno))", socketUnavailable: true))
        }
        defer { close(fd) }
        var hops: Int32 = 255
        var index = UInt32(interfaceIndex)
        var loop: UInt32 = 0
        // Only neighbour advertisements reach the socket (bit set = blocked).
        var filter = [UInt32](repeating: UInt32.max, count: 8)
        filter[136 >> 5] &= ~(UInt32(1) << (136 & 31))
        let size = socklen_t(MemoryLayout<Int32>.size)
        guard setsockopt(fd, Int32(IPPROTO_IPV6), IPV6_MULTICAST_HOPS, &hops, size) == 0,
            setsockopt(fd, Int32(IPPROTO_IPV6), IPV6_UNICAST_HOPS, &hops, size) == 0,
            setsockopt(fd, Int32(IPPROTO_IPV6), IPV6_MULTICAST_IF, &index, socklen_t(MemoryLayout<UInt32>.size)) == 0,
            setsockopt(fd, Int32(IPPROTO_IPV6), IPV6_MULTICAST_LOOP, &loop, socklen_t(MemoryLayout<UInt32>.size)) == 0,
            filter.withUnsafeBytes({ setsockopt(fd, Int32(IPPROTO_ICMPV6), 1, $0.baseAddress, socklen_t($0.count)) }) == 0  // ICMP6_FILTER
        else { return .failure(Failure(reason: "cannot set up the ICMPv6 socket: \(NetlinkFailure.describe(errno))")) }

        let packet = solicitation(target: target, mac: mac)
        var destination = sockaddr_in6()
        destination.sin6_family = sa_family_t(AF_INET6)
        destination.sin6_scope_id = UInt32(interfaceIndex)
        let group = solicitedNode(target)
        withUnsafeMutableBytes(of: &destination.sin6_addr) { raw in
            for (offset, byte) in group.enumerated() { raw[offset] = byte }
        }
        let start = Monotonic.now()
        let deadline = start + max(Monotonic.nanoseconds(wait), 10_000_000)
        let spacingNS = Monotonic.nanoseconds(spacing)
        var sent = 0
        var buffer = [UInt8](repeating: 0, count: 1500)
        while true {
            let now = Monotonic.now()
            if sent < probes && now >= start + UInt64(sent) * spacingNS {
                let result = packet.withUnsafeBytes { bytes in
                    withUnsafePointer(to: &destination) { pointer in
                        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                            sendto(fd, bytes.baseAddress, bytes.count, 0, $0, socklen_t(MemoryLayout<sockaddr_in6>.size))
                        }
                    }
                }
                if result < 0 {
                    return .failure(Failure(reason: "cannot send a neighbour solicitation: \(NetlinkFailure.describe(errno))"))
                }
                sent += 1
                continue
            }
            if now >= deadline { return .success(nil) }
            var until = deadline
            if sent < probes { until = min(until, start + UInt64(sent) * spacingNS) }
            var descriptor = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&descriptor, 1, Int32(min((until > now ? until - now : 0) / 1_000_000 + 1, 60_000)))
            if ready < 0 && errno != EINTR {
                return .failure(Failure(reason: "cannot wait for neighbour advertisements: \(NetlinkFailure.describe(errno))"))
            }
            if ready <= 0 { continue }
            while true {
                let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
                if count < 0 { break }
                guard let answer = advertisement(buffer[0..<count]), answer.target == target else { continue }
                guard let from = answer.mac else { return .success("an unknown host") }
                if !ownMACs.contains(from) { return .success(ARPSocket.macText(from)) }
            }
        }
    }

    // MARK: - Packets (pure)

    /// The solicited-node multicast group: ff02::1:ff00:0/104 with the last three bytes of the address.
    static func solicitedNode(_ target: [UInt8]) -> [UInt8] {
        [0xff, 0x02] + [UInt8](repeating: 0, count: 9) + [1, 0xff] + target.suffix(3)
    }

    /// Type 135, code 0, checksum (the kernel fills it in), reserved, target, option 1 (source
    /// link-layer address).
    static func solicitation(target: [UInt8], mac: [UInt8]) -> [UInt8] {
        [135, 0, 0, 0, 0, 0, 0, 0] + target + [1, 1] + mac
    }

    struct Advertisement: Equatable {
        var target: [UInt8]
        /// The target link-layer address option, when present.
        var mac: [UInt8]?
    }

    /// A neighbour advertisement (type 136, code 0), with its options checked; nil otherwise.
    static func advertisement(_ data: ArraySlice<UInt8>) -> Advertisement? {
        let bytes = Array(data)
        guard bytes.count >= 24, bytes[0] == 136, bytes[1] == 0 else { return nil }
        var answer = Advertisement(target: Array(bytes[8..<24]), mac: nil)
        var offset = 24
        while offset + 2 <= bytes.count {
            let length = Int(bytes[offset + 1]) * 8
            guard length > 0, offset + length <= bytes.count else { return nil }  // RFC 4861: length 0 is invalid
            if bytes[offset] == 2 && length >= 8 { answer.mac = Array(bytes[(offset + 2)..<(offset + 8)]) }
            offset += length
        }
        return answer
    }
}
