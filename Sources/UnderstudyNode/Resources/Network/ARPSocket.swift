import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// IPv4 duplicate-address probe (RFC 5227 style) and gratuitous ARP announcements, sent and
/// received on an AF_PACKET datagram socket (ETH_P_ARP) bound to one interface.
///
/// This replaces `arping -D` / `arping -U`, which cost about a second each because iputils
/// arping only waits whole seconds. Every read is bounded by `poll` against a deadline, so
/// nothing here can block forever. Like `NeighborAdvertiser`, the work runs on a thread of its
/// own (which may enter a test network namespace with setns(2)).
enum ARPSocket {
    struct Failure: Error, Sendable {
        var reason: String
        /// The raw socket could not be opened at all (no CAP_NET_RAW, no AF_PACKET): the
        /// caller may fall back to `arping`.
        var socketUnavailable: Bool = false
    }

    /// The link the frames go out on and the MACs that count as "this server".
    struct Link: Sendable {
        var name: String
        var index: Int
        var mac: [UInt8]
        var ownMACs: Set<[UInt8]>
        var namespace: String?
    }

    static let ethPArp: UInt16 = 0x0806
    static let broadcast: [UInt8] = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff]

    /// Parses "aa:bb:cc:dd:ee:ff"; nil unless it is a 6-byte MAC.
    static func macBytes(_ text: String) -> [UInt8]? {
        let bytes = text.split(separator: ":").compactMap { UInt8($0, radix: 16) }
        return bytes.count == 6 && text.split(separator: ":").count == 6 ? bytes : nil
    }

    static func macText(_ bytes: [UInt8]) -> String {
        bytes.map { String(format: "%02x", $0) }.joined(separator: ":")
    }

    // MARK: - Probe

    /// Sends `probes` ARP probes (sender IP 0.0.0.0) for `address`, `spacing` apart, the first
    /// at once, and listens until `wait` has passed since the first. Returns the MAC of a
    /// foreign host that answered for the address, nil when none did (`claimedAddress(by:among:)`).
    static func probe(
        address: [UInt8], on link: Link, probes: Int = 2, spacing: Duration = .milliseconds(50), wait: Duration
    ) async throws(Failure) -> String? {
        try await probe(addresses: [address], on: link, probes: probes, spacing: spacing, wait: wait)[address]
    }

    /// `probe(address:)` for several addresses at once, on one socket and in one wait: the
    /// foreign MAC that answered for each address that anyone answered for.
    static func probe(
        addresses: [[UInt8]], on link: Link, probes: Int = 2, spacing: Duration = .milliseconds(50), wait: Duration
    ) async throws(Failure) -> [[UInt8]: String] {
        guard !addresses.isEmpty else { return [:] }
        // The answer is handed over before the socket is closed: closing a packet socket
        // waits for an RCU grace period (synchronize_net, about 10 ms on this kernel), which
        // would otherwise delay every address activation.
        let result: Result<[[UInt8]: String], Failure> = await withCheckedContinuation { continuation in
            let thread = Thread {
                runProbe(
                    addresses: Set(addresses), link: link, probes: max(1, probes), spacing: spacing, wait: wait,
                    report: { continuation.resume(returning: $0) })
            }
            thread.name = "understudy-arp-probe"
            thread.start()
        }
        return try result.get()
    }

    /// Probes, calls `report` once with the outcome, then closes its socket.
    private static func runProbe(
        addresses: Set<[UInt8]>, link: Link, probes: Int, spacing: Duration, wait: Duration,
        report: (Result<[[UInt8]: String], Failure>) -> Void
    ) {
        if let namespace = link.namespace, let reason = NeighborAdvertiser.enterNamespace(namespace) {
            return report(.failure(Failure(reason: reason)))
        }
        let fd: Int32
        switch openSocket(link) {
        case .success(let value): fd = value
        case .failure(let failure): return report(.failure(failure))
        }
        defer { close(fd) }

        let zeroIP: [UInt8] = [0, 0, 0, 0]
        let packets = addresses.map { arpRequest(senderMAC: link.mac, senderIP: zeroIP, targetIP: $0) }
        var answered: [[UInt8]: String] = [:]
        let start = monotonicNanoseconds()
        let deadline = start + max(nanoseconds(wait), 10_000_000)
        let spacingNS = max(nanoseconds(spacing), 0)
        var sent = 0
        while true {
            let now = monotonicNanoseconds()
            if sent < probes && now >= start + UInt64(sent) * spacingNS {
                for packet in packets {
                    if let reason = send(packet, fd: fd, link: link, what: "ARP probe") { return report(.failure(Failure(reason: reason))) }
                }
                sent += 1
                continue
            }
            if now >= deadline || answered.count == addresses.count { return report(.success(answered)) }
            var until = deadline
            if sent < probes { until = min(until, start + UInt64(sent) * spacingNS) }
            switch receive(fd: fd, link: link, until: until) {
            case .failure(let failure): return report(.failure(failure))
            case .success(nil): continue
            case .success(let frame?):
                guard frame.hardwareType == 1, frame.protocolType == 0x0800, !link.ownMACs.contains(frame.senderMAC),
                    frame.senderMAC != link.mac
                else { continue }
                if let address = claimedAddress(by: frame, among: addresses) {
                    answered[address] = answered[address] ?? macText(frame.senderMAC)
                }
            }
        }
    }

    /// The probed address `frame` shows in use: any ARP whose sender is the address (a reply,
    /// a gratuitous announcement, a request from its holder). Another host's probe for it
    /// (sender 0.0.0.0) does not count, unlike RFC 5227's conflict rule: when a holder is
    /// lost every failover candidate probes its addresses at once, and the cluster, not the
    /// probe, decides which of them takes them over.
    static func claimedAddress(by frame: Frame, among addresses: Set<[UInt8]>) -> [UInt8]? {
        addresses.contains(frame.senderIP) ? frame.senderIP : nil
    }

    // MARK: - Announcements

    /// Sends `count` gratuitous ARP requests (sender IP = target IP = `address`, broadcast),
    /// `interval` apart. Returns once the first one is out; the others follow from the same
    /// thread, each only while the address is still on the interface (a stop in the meantime
    /// must not be followed by a late claim). Failures of the later ones go to `laterFailure`.
    static func announce(
        address: [UInt8], on link: Link, count: Int, interval: Duration,
        laterFailure: @escaping @Sendable (String) -> Void
    ) async throws(Failure) {
        let result: Result<Void, Failure> = await withCheckedContinuation { continuation in
            let thread = Thread {
                runAnnounce(
                    address: address, link: link, count: max(1, count), interval: interval,
                    first: { continuation.resume(returning: $0) }, laterFailure: laterFailure)
            }
            thread.name = "understudy-arp-announce"
            thread.start()
        }
        try result.get()
    }

    private static func runAnnounce(
        address: [UInt8], link: Link, count: Int, interval: Duration,
        first: (Result<Void, Failure>) -> Void, laterFailure: (String) -> Void
    ) {
        if let namespace = link.namespace, let reason = NeighborAdvertiser.enterNamespace(namespace) {
            return first(.failure(Failure(reason: reason)))
        }
        let fd: Int32
        switch openSocket(link) {
        case .success(let value): fd = value
        case .failure(let failure): return first(.failure(failure))
        }
        defer { close(fd) }
        let packet = arpRequest(senderMAC: link.mac, senderIP: address, targetIP: address)
        if let reason = send(packet, fd: fd, link: link, what: "gratuitous ARP") {
            return first(.failure(Failure(reason: reason)))
        }
        first(.success(()))
        for _ in 1..<count {
            sleep(for: interval)
            guard interfaceHolds(address, name: link.name) else { return }
            if let reason = send(packet, fd: fd, link: link, what: "gratuitous ARP") { return laterFailure(reason) }
        }
    }

    // MARK: - Socket work (blocking; on own threads only)

    private static func errnoText(_ code: Int32) -> String { "\(String(cString: strerror(code))) (errno \(code))" }

    /// A sockaddr_ll (20 bytes) for `link`, destination = broadcast.
    private static func linkAddress(_ link: Link) -> [UInt8] {
        var raw = [UInt8](repeating: 0, count: 20)
        withUnsafeBytes(of: UInt16(AF_PACKET)) { raw.replaceSubrange(0..<2, with: $0) }
        withUnsafeBytes(of: ethPArp.bigEndian) { raw.replaceSubrange(2..<4, with: $0) }
        withUnsafeBytes(of: Int32(link.index)) { raw.replaceSubrange(4..<8, with: $0) }
        withUnsafeBytes(of: UInt16(1)) { raw.replaceSubrange(8..<10, with: $0) }  // ARPHRD_ETHER
        raw[11] = 6  // sll_halen
        raw.replaceSubrange(12..<18, with: broadcast)
        return raw
    }

    private static func openSocket(_ link: Link) -> Result<Int32, Failure> {
        // Protocol 0 here, ETH_P_ARP in bind(): a socket opened with a protocol is hooked on
        // every interface at once, and binding it to one then waits for an RCU grace period
        // (synchronize_net, about 10 ms); one opened without starts receiving only at the bind.
        let fd = socket(AF_PACKET, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else {
            return .failure(
                Failure(
                    reason: "cannot open an ARP raw socket for interface \(link.name): socket: \(errnoText(errno))",
                    socketUnavailable: true))
        }
        let address = linkAddress(link)
        let bound = address.withUnsafeBytes { raw in
            bind(fd, raw.baseAddress?.assumingMemoryBound(to: sockaddr.self), socklen_t(raw.count))
        }
        guard bound == 0 else {
            let code = errno
            close(fd)
            return .failure(Failure(reason: "cannot bind an ARP raw socket to interface \(link.name): bind: \(errnoText(code))"))
        }
        return .success(fd)
    }

    static func arpRequest(senderMAC: [UInt8], senderIP: [UInt8], targetIP: [UInt8]) -> [UInt8] {
        // htype Ethernet, ptype IPv4, hlen 6, plen 4, oper 1 (request), SHA, SPA, THA (zero), TPA.
        [0, 1, 0x08, 0x00, 6, 4, 0, 1] + senderMAC + senderIP + [UInt8](repeating: 0, count: 6) + targetIP
    }

    /// Returns nil on success, else the reason.
    private static func send(_ packet: [UInt8], fd: Int32, link: Link, what: String) -> String? {
        let address = linkAddress(link)
        let sent = packet.withUnsafeBytes { bytes in
            address.withUnsafeBytes { raw in
                sendto(fd, bytes.baseAddress, bytes.count, 0, raw.baseAddress?.assumingMemoryBound(to: sockaddr.self), socklen_t(raw.count))
            }
        }
        if sent < 0 { return "cannot send \(what) on interface \(link.name): sendto: \(errnoText(errno))" }
        if sent != packet.count { return "cannot send \(what) on interface \(link.name): short write (\(sent) of \(packet.count) bytes)" }
        return nil
    }

    struct Frame {
        var hardwareType: UInt16
        var protocolType: UInt16
        var operation: UInt16
        var senderMAC: [UInt8]
        var senderIP: [UInt8]
        var targetIP: [UInt8]
    }

    static func parse(_ data: ArraySlice<UInt8>) -> Frame? {
        let bytes = Array(data)
        guard bytes.count >= 28, bytes[4] == 6, bytes[5] == 4 else { return nil }
        func u16(_ at: Int) -> UInt16 { UInt16(bytes[at]) << 8 | UInt16(bytes[at + 1]) }
        return Frame(
            hardwareType: u16(0), protocolType: u16(2), operation: u16(6), senderMAC: Array(bytes[8..<14]),
            senderIP: Array(bytes[14..<18]), targetIP: Array(bytes[24..<28]))
    }

    /// Waits (poll) until a frame arrives on the link or `until` passes: .success(nil) on
    /// timeout, EINTR, or a frame that is not for this link or was sent by this host.
    private static func receive(fd: Int32, link: Link, until: UInt64) -> Result<Frame?, Failure> {
        let now = monotonicNanoseconds()
        let remainingMS = until > now ? Int32(min((until - now + 999_999) / 1_000_000, 60_000)) : 0
        var descriptor = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        let ready = poll(&descriptor, 1, remainingMS)
        if ready < 0 {
            if errno == EINTR { return .success(nil) }
            return .failure(Failure(reason: "cannot wait for ARP answers on interface \(link.name): poll: \(errnoText(errno))"))
        }
        if ready == 0 { return .success(nil) }
        var buffer = [UInt8](repeating: 0, count: 1500)
        var from = [UInt8](repeating: 0, count: 32)
        var fromLength = socklen_t(from.count)
        let count = buffer.withUnsafeMutableBytes { bytes in
            from.withUnsafeMutableBytes { raw in
                recvfrom(
                    fd, bytes.baseAddress, bytes.count, Int32(MSG_DONTWAIT), raw.baseAddress?.assumingMemoryBound(to: sockaddr.self),
                    &fromLength)
            }
        }
        if count < 0 {
            if errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR { return .success(nil) }
            return .failure(Failure(reason: "cannot read ARP answers on interface \(link.name): recvfrom: \(errnoText(errno))"))
        }
        // sockaddr_ll: ifindex at 4 (host order), pkttype at 10 (PACKET_OUTGOING = 4).
        let index = from.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 4, as: Int32.self) }
        if Int(index) != link.index || from[10] == 4 { return .success(nil) }
        return .success(parse(buffer[0..<count]))
    }

    /// Whether the IPv4 `address` is still configured on interface `name` (getifaddrs).
    private static func interfaceHolds(_ address: [UInt8], name: String) -> Bool {
        var list: UnsafeMutablePointer<ifaddrs>?
        guard getifaddrs(&list) == 0, let first = list else { return true }  // cannot tell: keep announcing
        defer { freeifaddrs(list) }
        var current: UnsafeMutablePointer<ifaddrs>? = first
        while let entry = current {
            defer { current = entry.pointee.ifa_next }
            guard let sa = entry.pointee.ifa_addr, sa.pointee.sa_family == sa_family_t(AF_INET),
                String(cString: entry.pointee.ifa_name) == name
            else { continue }
            let bytes = sa.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { pointer in
                withUnsafeBytes(of: pointer.pointee.sin_addr) { Array($0) }
            }
            if bytes == address { return true }
        }
        return false
    }

    private static func nanoseconds(_ duration: Duration) -> UInt64 {
        let (seconds, attoseconds) = duration.components
        if seconds < 0 || (seconds == 0 && attoseconds < 0) { return 0 }
        return UInt64(seconds) * 1_000_000_000 + UInt64(attoseconds / 1_000_000_000)
    }

    private static func monotonicNanoseconds() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
    }

    private static func sleep(for interval: Duration) {
        var request = timespec(tv_sec: Int(interval.components.seconds), tv_nsec: Int(interval.components.attoseconds / 1_000_000_000))
        var remaining = timespec()
        while nanosleep(&request, &remaining) != 0 && errno == EINTR { request = remaining }
    }
}
