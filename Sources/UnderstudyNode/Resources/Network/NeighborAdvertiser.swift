import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// Sends unsolicited IPv6 Neighbour Advertisements (RFC 4861 §7.2.6) for an address this
/// server just took over, so that neighbours that still cache the previous owner's MAC update
/// their entry at once: the IPv6 counterpart of a gratuitous ARP.
///
/// No packaged tool does this (ndisc6 only solicits; arping is IPv4 only), and the kernel sends
/// one only after a full DAD and only with the `ndisc_notify` sysctl set, so the packet is built
/// here: ICMPv6 type 136, Override flag set, Solicited clear, target = the address, option
/// "target link-layer address" = the interface's MAC, sent to ff02::1 with hop limit 255 from
/// the interface's link-local address (the kernel picks it and fills in the checksum).
enum NeighborAdvertiser {
    struct Failure: Error, Sendable { var reason: String }

    /// Sends `count` advertisements `interval` apart on a thread of its own (so the sleeps
    /// never hold a Swift concurrency thread). With `namespace`, that thread first enters the
    /// network namespace `/run/netns/NAMESPACE` (tests); the socket stays bound to it.
    static func announce(
        target: [UInt8], interfaceIndex: Int, mac: String, count: Int, interval: Duration, namespace: String?
    ) async throws(Failure) {
        let macBytes = mac.split(separator: ":").compactMap { UInt8($0, radix: 16) }
        guard target.count == 16, macBytes.count == 6 else {
            throw Failure(reason: "cannot send a neighbour advertisement: bad target or MAC address \(mac)")
        }
        let result: String? = await withCheckedContinuation { continuation in
            let thread = Thread {
                continuation.resume(
                    returning: send(
                        target: target, interfaceIndex: interfaceIndex, mac: macBytes, count: count,
                        interval: interval, namespace: namespace))
            }
            thread.name = "understudy-unsolicited-na"
            thread.start()
        }
        if let result { throw Failure(reason: result) }
    }

    /// Returns nil on success, else the reason.
    private static func send(
        target: [UInt8], interfaceIndex: Int, mac: [UInt8], count: Int, interval: Duration, namespace: String?
    ) -> String? {
        if let namespace, let reason = enterNamespace(namespace) { return reason }
        let fd = socket(AF_INET6, Int32(SOCK_RAW.rawValue), Int32(IPPROTO_ICMPV6))
        guard fd >= 0 else { return "cannot open an ICMPv6 raw socket: \(String(cString: strerror(errno)))" }
        defer { close(fd) }
        var hops: Int32 = 255
        var index = UInt32(interfaceIndex)
        guard setsockopt(fd, Int32(IPPROTO_IPV6), IPV6_MULTICAST_HOPS, &hops, socklen_t(MemoryLayout<Int32>.size)) == 0,
            setsockopt(fd, Int32(IPPROTO_IPV6), IPV6_UNICAST_HOPS, &hops, socklen_t(MemoryLayout<Int32>.size)) == 0,
            setsockopt(fd, Int32(IPPROTO_IPV6), IPV6_MULTICAST_IF, &index, socklen_t(MemoryLayout<UInt32>.size)) == 0
        else { return "cannot set up the ICMPv6 socket: \(String(cString: strerror(errno)))" }

        // type, code, checksum (kernel), flags R|S|O = Override, reserved, target, option 2.
        var packet: [UInt8] = [136, 0, 0, 0, 0x20, 0, 0, 0]
        packet += target
        packet += [2, 1] + mac

        var destination = sockaddr_in6()
        destination.sin6_family = sa_family_t(AF_INET6)
        destination.sin6_scope_id = UInt32(interfaceIndex)
        let allNodes: [UInt8] = [0xff, 0x02] + [UInt8](repeating: 0, count: 13) + [1]
        withUnsafeMutableBytes(of: &destination.sin6_addr) { raw in
            for (offset, byte) in allNodes.enumerated() { raw[offset] = byte }
        }
        for attempt in 0..<max(1, count) {
            if attempt > 0 { sleep(for: interval) }
            let sent = packet.withUnsafeBytes { bytes in
                withUnsafePointer(to: &destination) { pointer in
                    pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                        sendto(fd, bytes.baseAddress, bytes.count, 0, $0, socklen_t(MemoryLayout<sockaddr_in6>.size))
                    }
                }
            }
            if sent < 0 { return "cannot send a neighbour advertisement: \(String(cString: strerror(errno)))" }
        }
        return nil
    }

    private static func sleep(for interval: Duration) {
        let (seconds, attoseconds) = interval.components
        var request = timespec(tv_sec: Int(seconds), tv_nsec: Int(attoseconds / 1_000_000_000))
        var remaining = timespec()
        while nanosleep(&request, &remaining) != 0 && errno == EINTR { request = remaining }
    }

    /// setns(2) for this thread only. Glibc's Swift module does not export `setns`, so it is
    /// looked up by name.
    static func enterNamespace(_ name: String) -> String? {
        typealias SetNS = @convention(c) (Int32, Int32) -> Int32
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "setns") else {
            return "setns(2) is not available"
        }
        let setns = unsafeBitCast(symbol, to: SetNS.self)
        let fd = open("/run/netns/\(name)", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return "cannot open network namespace \(name): \(String(cString: strerror(errno)))" }
        defer { close(fd) }
        let cloneNewNet: Int32 = 0x4000_0000
        guard setns(fd, cloneNewNet) == 0 else {
            return "cannot enter network namespace \(name): \(String(cString: strerror(errno)))"
        }
        return nil
    }
}
