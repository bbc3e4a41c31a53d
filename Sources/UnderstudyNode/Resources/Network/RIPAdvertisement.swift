import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// RIP response messages that advertise one route (a `vip`): RIPv1 (RFC 1058), RIPv2
/// (RFC 2453) and RIPng (RFC 2080). Metric 16 withdraws the route.
enum RIPMessage {
    static let unreachable = 16

    /// A RIPv1 or RIPv2 response with one IPv4 route entry.
    static func ipv4(version: Int, address: [UInt8], prefix: Int, metric: Int) -> [UInt8] {
        var bytes: [UInt8] = [2, UInt8(version), 0, 0]
        bytes += [0, 2]  // address family: IP
        bytes += [0, 0]  // route tag
        bytes += masked(address, prefix: prefix)
        // RIPv1 carries no mask and no next hop (both must be zero).
        bytes += version == 1 ? [0, 0, 0, 0] : mask(prefix: prefix, bytes: 4)
        bytes += [0, 0, 0, 0]  // next hop: the sender
        bytes += [0, 0, 0, UInt8(clamping: metric)]
        return bytes
    }

    /// A RIPng response with one IPv6 route table entry.
    static func ipv6(address: [UInt8], prefix: Int, metric: Int) -> [UInt8] {
        var bytes: [UInt8] = [2, 1, 0, 0]
        bytes += masked(address, prefix: prefix)
        bytes += [0, 0]  // route tag
        bytes += [UInt8(prefix), UInt8(clamping: metric)]
        return bytes
    }

    static func mask(prefix: Int, bytes count: Int) -> [UInt8] {
        (0..<count).map { index in
            let bits = max(0, min(8, prefix - index * 8))
            return bits == 0 ? 0 : UInt8(truncatingIfNeeded: 0xff << (8 - bits))
        }
    }

    static func masked(_ address: [UInt8], prefix: Int) -> [UInt8] {
        zip(address, mask(prefix: prefix, bytes: address.count)).map { $0 & $1 }
    }
}

struct RIPSendError: Error, Sendable, CustomStringConvertible {
    var description: String
}

/// Sends RIP messages from the RIP port (520, RIPng 521) on one interface, as routers expect.
/// One short-lived socket per message: advertisements are seconds apart.
enum RIPSender {
    /// IPv4: from `source` (an address of `interface`) to `destination` (224.0.0.9 for
    /// RIPv2, a broadcast address for RIPv1).
    static func sendIPv4(_ message: [UInt8], from source: [UInt8], to destination: [UInt8], interface: String) throws(RIPSendError) {
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        guard fd >= 0 else { throw error("socket") }
        defer { close(fd) }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, socklen_t(MemoryLayout<Int32>.size))
        setsockopt(fd, SOL_SOCKET, SO_BROADCAST, &one, socklen_t(MemoryLayout<Int32>.size))
        try bindToDevice(fd, interface)
        var ttl: UInt8 = 1
        setsockopt(fd, Int32(IPPROTO_IP), IP_MULTICAST_TTL, &ttl, socklen_t(1))
        var loop: UInt8 = 0
        setsockopt(fd, Int32(IPPROTO_IP), IP_MULTICAST_LOOP, &loop, socklen_t(1))
        var sourceAddress = in_addr()
        withUnsafeMutableBytes(of: &sourceAddress) { $0.copyBytes(from: source) }
        setsockopt(fd, Int32(IPPROTO_IP), IP_MULTICAST_IF, &sourceAddress, socklen_t(MemoryLayout<in_addr>.size))
        var local = sockaddr_in()
        local.sin_family = sa_family_t(AF_INET)
        local.sin_port = in_port_t(520).bigEndian
        local.sin_addr = sourceAddress
        let bound = withUnsafePointer(to: &local) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0 else { throw error("bind to port 520") }
        var remote = sockaddr_in()
        remote.sin_family = sa_family_t(AF_INET)
        remote.sin_port = in_port_t(520).bigEndian
        withUnsafeMutableBytes(of: &remote.sin_addr) { $0.copyBytes(from: destination) }
        let sent = message.withUnsafeBytes { buffer in
            withUnsafePointer(to: &remote) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    sendto(fd, buffer.baseAddress, buffer.count, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
        }
        guard sent == message.count else { throw error("send") }
    }

    /// RIPng: from port 521 to ff02::9 (or `destination`) on `interface`, hop limit 255.
    static func sendIPv6(_ message: [UInt8], to destination: [UInt8], interface: String) throws(RIPSendError) {
        let index = if_nametoindex(interface)
        guard index != 0 else { throw RIPSendError(description: "interface \(interface) does not exist") }
        let fd = socket(AF_INET6, Int32(SOCK_DGRAM.rawValue), 0)
        guard fd >= 0 else { throw error("socket") }
        defer { close(fd) }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, socklen_t(MemoryLayout<Int32>.size))
        try bindToDevice(fd, interface)
        var interfaceIndex = UInt32(index)
        setsockopt(fd, Int32(IPPROTO_IPV6), IPV6_MULTICAST_IF, &interfaceIndex, socklen_t(MemoryLayout<UInt32>.size))
        var hops: Int32 = 255
        setsockopt(fd, Int32(IPPROTO_IPV6), IPV6_MULTICAST_HOPS, &hops, socklen_t(MemoryLayout<Int32>.size))
        setsockopt(fd, Int32(IPPROTO_IPV6), IPV6_UNICAST_HOPS, &hops, socklen_t(MemoryLayout<Int32>.size))
        var local = sockaddr_in6()
        local.sin6_family = sa_family_t(AF_INET6)
        local.sin6_port = in_port_t(521).bigEndian
        let bound = withUnsafePointer(to: &local) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) }
        }
        guard bound == 0 else { throw error("bind to port 521") }
        var remote = sockaddr_in6()
        remote.sin6_family = sa_family_t(AF_INET6)
        remote.sin6_port = in_port_t(521).bigEndian
        remote.sin6_scope_id = UInt32(index)
        withUnsafeMutableBytes(of: &remote.sin6_addr) { $0.copyBytes(from: destination) }
        let sent = message.withUnsafeBytes { buffer in
            withUnsafePointer(to: &remote) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    sendto(fd, buffer.baseAddress, buffer.count, 0, $0, socklen_t(MemoryLayout<sockaddr_in6>.size))
                }
            }
        }
        guard sent == message.count else { throw error("send") }
    }

    private static func bindToDevice(_ fd: Int32, _ interface: String) throws(RIPSendError) {
        let result = interface.withCString { name in
            setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, name, socklen_t(strlen(name) + 1))
        }
        guard result == 0 else { throw error("bind to interface \(interface)") }
    }

    private static func error(_ what: String) -> RIPSendError {
        RIPSendError(description: "RIP \(what) failed: \(String(cString: strerror(errno)))")
    }
}
