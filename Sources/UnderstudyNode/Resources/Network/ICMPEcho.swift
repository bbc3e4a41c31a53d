import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// ICMP echo (ping) from the daemon's own sockets, to several targets at once: `pingnp`,
/// `ipw`, the in-use check of `vip` and the NFS server check of `nas`, without starting `ping`.
///
/// Per address family it opens an unprivileged ICMP datagram socket (SOCK_DGRAM, IPPROTO_ICMP
/// or IPPROTO_ICMPV6; allowed when `net.ipv4.ping_group_range` holds the daemon's group, which
/// the kernel's default "1 0" does not) and, when that is refused, a raw socket (root or
/// CAP_NET_RAW). A reply counts only when it is an echo reply from the target's address with
/// the request's identifier and sequence number and the request's random token in its payload,
/// so other pings on the host (a raw socket sees all of them) cannot answer for a target.
/// The whole round, name resolution included, runs on a thread of its own (inside `namespace`
/// when set) and is over within `timeout` for the caller.
enum ICMPEcho {
    struct Report: Sendable, Equatable {
        /// The targets that answered, in the order given.
        var answered: [String]
        /// Why a target could not be asked (no such host, no route, …).
        var problems: [String]
        /// Targets of a family for which no ICMP socket could be opened at all.
        var unavailable: [String]
        /// The kinds of socket used: "datagram", "raw".
        var sockets: Set<String> = []
    }

    /// Asks every target at once; with `firstAnswerEnough` stops at the first answer.
    static func ping(_ targets: [String], timeout: Duration, namespace: String? = nil, firstAnswerEnough: Bool = false) async
        -> Report
    {
        guard !targets.isEmpty else { return Report(answered: [], problems: [], unavailable: []) }
        let late = Report(answered: [], problems: ["no result within \(timeout) (name resolution stuck?)"], unavailable: [])
        return await DedicatedThread.run(named: "understudy-icmp-echo", limit: timeout + .milliseconds(500), late: late) {
            if let namespace, let reason = NeighborAdvertiser.enterNamespace(namespace) {
                return Report(answered: [], problems: [reason], unavailable: [])
            }
            return exchange(targets, timeout: timeout, firstAnswerEnough: firstAnswerEnough)
        }
    }

    // MARK: - One round (blocking, on its own thread)

    struct Target {
        var name: String
        var v6: Bool
        /// The sockaddr to send to.
        var socketAddress: [UInt8]
        /// Network-order address bytes (4 or 16), to match the reply's source.
        var address: [UInt8]
        /// The sequence number of each request sent so far (one per round).
        var sequences: [UInt16] = []
        var sent: Bool { !sequences.isEmpty }
        var answered = false
    }

    /// When each round of requests leaves, in nanoseconds after the first: `rounds` rounds
    /// spread evenly over the first two thirds of `timeout`, so a single lost request or
    /// reply does not decide the probe (a partition verdict hangs on it), while the last
    /// round still has a third of the timeout to be answered. A round at most every 2 ms.
    static func sendOffsets(timeout: Duration, rounds: Int = 3) -> [UInt64] {
        let total = max(Monotonic.nanoseconds(timeout), 1_000_000)
        let spacing = total * 2 / 3 / UInt64(max(rounds - 1, 1))
        guard rounds > 1, spacing >= 2_000_000 else { return [0] }
        return (0..<UInt64(rounds)).map { $0 * spacing }
    }

    struct Endpoint {
        var fd: Int32
        var raw: Bool
        /// The echo identifier replies carry (a datagram socket's: its local port).
        var identifier: UInt16
    }

    private static func exchange(_ names: [String], timeout: Duration, firstAnswerEnough: Bool) -> Report {
        let deadline = Monotonic.now() + max(Monotonic.nanoseconds(timeout), 1_000_000)
        var report = Report(answered: [], problems: [], unavailable: [])
        var targets: [Target] = []
        let firstSequence = UInt16.random(in: 0...UInt16.max)
        for name in names {
            switch resolve(name) {
            case .success(let (v6, socketAddress, address)):
                targets.append(Target(name: name, v6: v6, socketAddress: socketAddress, address: address))
            case .failure(let problem): report.problems.append(problem.reason)
            }
        }
        var token = [UInt8](repeating: 0, count: 8)
        for index in token.indices { token[index] = UInt8.random(in: 0...255) }

        var endpoints: [Bool: Endpoint] = [:]
        defer { for endpoint in endpoints.values { close(endpoint.fd) } }
        for v6 in [false, true] where targets.contains(where: { $0.v6 == v6 }) {
            switch openSocket(v6: v6) {
            case .success(let endpoint):
                endpoints[v6] = endpoint
                report.sockets.insert(endpoint.raw ? "raw" : "datagram")
            case .failure(let problem):
                report.problems.append(problem.reason)
                report.unavailable += targets.filter { $0.v6 == v6 }.map(\.name)
            }
        }
        // Every target at once, in rounds (`sendOffsets`); each request has a sequence number
        // of its own, and a reply to any of a target's requests answers for it.
        let started = Monotonic.now()
        let offsets = sendOffsets(timeout: timeout)
        var nextSequence = firstSequence
        func sendRound(to indices: [Int]) {
            for index in indices where !targets[index].answered {
                guard var endpoint = endpoints[targets[index].v6] else { continue }
                let sequence = nextSequence
                nextSequence &+= 1
                let packet = request(v6: targets[index].v6, identifier: endpoint.identifier, sequence: sequence, token: token)
                let sent = packet.withUnsafeBytes { bytes in
                    targets[index].socketAddress.withUnsafeBytes { raw in
                        sendto(
                            endpoint.fd, bytes.baseAddress, bytes.count, 0, raw.baseAddress?.assumingMemoryBound(to: sockaddr.self),
                            socklen_t(raw.count))
                    }
                }
                if sent < 0 {
                    // Said once, for the first round (a later round's failure adds nothing).
                    if !targets[index].sent {
                        report.problems.append("cannot send an echo request to \(targets[index].name): \(NetlinkFailure.describe(errno))")
                    }
                    continue
                }
                targets[index].sequences.append(sequence)
                // A datagram socket got its identifier (local port) with the first send.
                if !endpoint.raw && endpoint.identifier == 0 {
                    endpoint.identifier = boundPort(endpoint.fd)
                    endpoints[targets[index].v6] = endpoint
                }
            }
        }
        sendRound(to: Array(targets.indices))
        var roundsSent = 1
        // Targets the first round could not be sent to (no route) are not asked again.
        let askable = targets.indices.filter { targets[$0].sent }

        var descriptors = endpoints.values.map { pollfd(fd: $0.fd, events: Int16(POLLIN), revents: 0) }
        var buffer = [UInt8](repeating: 0, count: 2048)
        var from = [UInt8](repeating: 0, count: 128)
        // Past the deadline the sockets are read once more without waiting: a thread that
        // was not scheduled in time must not miss a reply that is already there.
        var finalLook = false
        waiting: while askable.contains(where: { !targets[$0].answered }) && !descriptors.isEmpty {
            var now = Monotonic.now()
            if now >= deadline {
                if finalLook { break }
                finalLook = true
            }
            if !finalLook && roundsSent < offsets.count && now >= started + offsets[roundsSent] {
                sendRound(to: askable)
                roundsSent += 1
                now = Monotonic.now()
            }
            let nextRound = roundsSent < offsets.count ? started + offsets[roundsSent] : deadline
            let until = finalLook ? now : min(deadline, max(nextRound, now))
            let ready = poll(&descriptors, nfds_t(descriptors.count), Int32(min((until - now + 999_999) / 1_000_000, 60_000)))
            if ready < 0 && errno != EINTR { break }
            if ready <= 0 { continue }
            for slot in descriptors.indices where descriptors[slot].revents != 0 {
                let fd = descriptors[slot].fd
                guard let entry = endpoints.first(where: { $0.value.fd == fd }) else { continue }
                let (v6, endpoint) = (entry.key, entry.value)
                // Drain what is queued.
                while true {
                    var fromLength = socklen_t(from.count)
                    let count = buffer.withUnsafeMutableBytes { bytes in
                        from.withUnsafeMutableBytes { raw in
                            recvfrom(
                                fd, bytes.baseAddress, bytes.count, Int32(MSG_DONTWAIT),
                                raw.baseAddress?.assumingMemoryBound(to: sockaddr.self), &fromLength)
                        }
                    }
                    if count < 0 { break }
                    guard let reply = echoReply(buffer[0..<count], v6: v6, withIPHeader: endpoint.raw && !v6),
                        reply.identifier == endpoint.identifier || (!endpoint.raw && endpoint.identifier == 0),
                        reply.payload.starts(with: token),
                        let source = sourceAddress(from, length: Int(fromLength), v6: v6),
                        let at = targets.firstIndex(where: {
                            $0.v6 == v6 && !$0.answered && $0.sequences.contains(reply.sequence) && $0.address == source
                        })
                    else { continue }
                    targets[at].answered = true
                    if firstAnswerEnough { break waiting }
                }
                descriptors[slot].revents = 0
            }
        }
        report.answered = targets.filter(\.answered).map(\.name)
        return report
    }

    /// The target's address: numeric, or the first address the resolver gives.
    struct Problem: Error {
        var reason: String
        init(_ reason: String) { self.reason = reason }
    }

    private static func resolve(_ name: String) -> Result<(Bool, [UInt8], [UInt8]), Problem> {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_DGRAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        var status = getaddrinfo(name, nil, &hints, &list)
        if status == EAI_SYSTEM || status == EAI_AGAIN {
            // One retry: a resolver hiccup should not decide a partition.
            status = getaddrinfo(name, nil, &hints, &list)
        }
        guard status == 0, let first = list else {
            return .failure(Problem("cannot resolve \(name): \(String(cString: gai_strerror(status)))"))
        }
        defer { freeaddrinfo(list) }
        var current: UnsafeMutablePointer<addrinfo>? = first
        while let entry = current {
            defer { current = entry.pointee.ai_next }
            guard let address = entry.pointee.ai_addr else { continue }
            let family = entry.pointee.ai_family
            guard family == AF_INET || family == AF_INET6 else { continue }
            let length = Int(entry.pointee.ai_addrlen)
            let bytes = Array(UnsafeRawBufferPointer(start: UnsafeRawPointer(address), count: length))
            guard let host = sourceAddress(bytes, length: length, v6: family == AF_INET6) else { continue }
            return .success((family == AF_INET6, bytes, host))
        }
        return .failure(Problem("cannot resolve \(name): no IPv4 or IPv6 address"))
    }

    /// A datagram ICMP socket, else a raw one.
    private static func openSocket(v6: Bool) -> Result<Endpoint, Problem> {
        let family = v6 ? AF_INET6 : AF_INET
        let proto = Int32(v6 ? IPPROTO_ICMPV6 : IPPROTO_ICMP)
        let cloexec = Int32(SOCK_CLOEXEC.rawValue)
        let datagram = socket(family, Int32(SOCK_DGRAM.rawValue) | cloexec, proto)
        if datagram >= 0 { return .success(Endpoint(fd: datagram, raw: false, identifier: 0)) }
        let datagramError = errno
        let raw = socket(family, Int32(SOCK_RAW.rawValue) | cloexec, proto)
        guard raw >= 0 else {
            return .failure(
                Problem(
                    "cannot open an \(v6 ? "ICMPv6" : "ICMP") socket: datagram: \(NetlinkFailure.describe(datagramError)), raw: \(NetlinkFailure.describe(errno))"
                ))
        }
        // Only echo replies reach the raw socket (bit set = blocked).
        if v6 {
            var filter = [UInt32](repeating: UInt32.max, count: 8)
            filter[129 >> 5] &= ~(UInt32(1) << (129 & 31))
            _ = filter.withUnsafeBytes { setsockopt(raw, proto, 1, $0.baseAddress, socklen_t($0.count)) }  // ICMP6_FILTER
        } else {
            var filter = ~UInt32(1)  // type 0 (echo reply) passes
            _ = setsockopt(raw, 255, 1, &filter, socklen_t(MemoryLayout<UInt32>.size))  // SOL_RAW, ICMP_FILTER
        }
        return .success(Endpoint(fd: raw, raw: true, identifier: UInt16.random(in: 1...UInt16.max)))
    }

    private static func boundPort(_ fd: Int32) -> UInt16 {
        var storage = [UInt8](repeating: 0, count: 128)
        var length = socklen_t(storage.count)
        let status = storage.withUnsafeMutableBytes { getsockname(fd, $0.baseAddress?.assumingMemoryBound(to: sockaddr.self), &length) }
        guard status == 0, length >= 4 else { return 0 }
        // sin_port and sin6_port both sit at offset 2, in network order.
        return UInt16(storage[2]) << 8 | UInt16(storage[3])
    }

    // MARK: - Packets (pure)

    /// An echo request: type 8 (IPv4) or 128 (IPv6), the identifier, the sequence number and
    /// a payload of the token plus 8 bytes of padding. The IPv4 checksum is filled in (the
    /// kernel does it for ICMPv6 and for datagram sockets).
    static func request(v6: Bool, identifier: UInt16, sequence: UInt16, token: [UInt8]) -> [UInt8] {
        var packet: [UInt8] = [v6 ? 128 : 8, 0, 0, 0]
        packet += [UInt8(identifier >> 8), UInt8(identifier & 0xff), UInt8(sequence >> 8), UInt8(sequence & 0xff)]
        packet += token + [UInt8](repeating: 0x55, count: 8)
        if !v6 {
            let sum = checksum(packet)
            packet[2] = UInt8(sum >> 8)
            packet[3] = UInt8(sum & 0xff)
        }
        return packet
    }

    /// RFC 1071 checksum.
    static func checksum(_ bytes: [UInt8]) -> UInt16 {
        var sum: UInt32 = 0
        var index = 0
        while index + 1 < bytes.count {
            sum += UInt32(bytes[index]) << 8 | UInt32(bytes[index + 1])
            index += 2
        }
        if index < bytes.count { sum += UInt32(bytes[index]) << 8 }
        while sum >> 16 != 0 { sum = (sum & 0xffff) + (sum >> 16) }
        return ~UInt16(sum)
    }

    struct Reply: Equatable {
        var identifier: UInt16
        var sequence: UInt16
        var payload: [UInt8]
    }

    /// An echo reply (type 0 / 129, code 0), after the IPv4 header when a raw IPv4 socket
    /// delivered it; nil for anything else or anything too short.
    static func echoReply(_ data: ArraySlice<UInt8>, v6: Bool, withIPHeader: Bool) -> Reply? {
        var bytes = Array(data)
        if withIPHeader {
            guard let first = bytes.first, first >> 4 == 4 else { return nil }
            let headerLength = Int(first & 0x0f) * 4
            guard headerLength >= 20, bytes.count >= headerLength else { return nil }
            bytes.removeFirst(headerLength)
        }
        guard bytes.count >= 8, bytes[0] == (v6 ? 129 : 0), bytes[1] == 0 else { return nil }
        return Reply(
            identifier: UInt16(bytes[4]) << 8 | UInt16(bytes[5]), sequence: UInt16(bytes[6]) << 8 | UInt16(bytes[7]),
            payload: Array(bytes[8...]))
    }

    /// The address bytes of a sockaddr_in / sockaddr_in6 of the family.
    static func sourceAddress(_ storage: [UInt8], length: Int, v6: Bool) -> [UInt8]? {
        guard length <= storage.count, length >= 2 else { return nil }
        let family = storage.withUnsafeBytes { $0.loadUnaligned(as: sa_family_t.self) }
        if v6 {
            guard family == sa_family_t(AF_INET6), length >= 24 else { return nil }
            return Array(storage[8..<24])
        }
        guard family == sa_family_t(AF_INET), length >= 8 else { return nil }
        return Array(storage[4..<8])
    }
}
