import Foundation
import UnderstudyTestSupport

@testable import UnderstudyNode

#if canImport(Glibc)
    import Glibc
#endif

/// A throw-away network for the `fip` tests: a client namespace holding a bridge `br0`
/// (10.210.1.100/24, fd10:210:1::100/64) and server namespaces, each with `eth0`
/// (10.210.1.N/24, fd10:210:1::N/64) whose veth peer `pN` is a port of that bridge.
/// Every name carries the test process's pid and a counter, so labs never collide; `remove()`
/// deletes the namespaces (and with them every link inside).
final class FloatingIPLab: @unchecked Sendable {
    nonisolated(unsafe) static var counter = 0
    static let lock = NSLock()

    let client: String
    let servers: [String]

    /// What the namespace tests need: root for `ip netns`, and `arping`, with which a test makes
    /// the client learn an address (the driver itself starts no process).
    static let prerequisite = Prerequisite.all(
        "fip-namespaces", [.root, .command("ip", package: "iproute2"), .command("arping", package: "iputils-arping")])

    /// Builds the namespaces; a failure to build them is a test failure (the test declares
    /// `.requires(FloatingIPLab.prerequisite)`, so this only runs where it should work).
    static func make(servers count: Int = 2) throws -> FloatingIPLab {
        lock.lock()
        counter += 1
        let serial = counter
        lock.unlock()
        let lab = FloatingIPLab(prefix: "fipt\(getpid())x\(serial)", servers: count)
        do {
            try lab.build()
        } catch {
            lab.remove()
            throw error
        }
        return lab
    }

    private init(prefix: String, servers count: Int) {
        client = "\(prefix)c"
        servers = (1...count).map { "\(prefix)s\($0)" }
    }

    private func build() throws {
        for ns in [client] + servers {
            try Self.sh("ip", "netns", "add", ns)
            // No DAD on the lab's own addresses, so link-local and base addresses are usable at once.
            try Self.sh("ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0")
            try Self.sh("ip", "-n", ns, "link", "set", "lo", "up")
        }
        try Self.sh("ip", "-n", client, "link", "add", "br0", "type", "bridge")
        try Self.sh("ip", "-n", client, "link", "set", "br0", "up")
        try Self.sh("ip", "-n", client, "addr", "add", "10.210.1.100/24", "dev", "br0")
        try Self.sh("ip", "-n", client, "addr", "add", "fd10:210:1::100/64", "dev", "br0", "nodad")
        for (index, ns) in servers.enumerated() {
            let n = index + 1
            try Self.sh("ip", "link", "add", "eth0", "netns", ns, "type", "veth", "peer", "name", "p\(n)", "netns", client)
            try Self.sh("ip", "-n", client, "link", "set", "p\(n)", "master", "br0", "up")
            try Self.sh("ip", "-n", ns, "link", "set", "eth0", "up")
            try Self.sh("ip", "-n", ns, "addr", "add", "10.210.1.\(n)/24", "dev", "eth0")
            try Self.sh("ip", "-n", ns, "addr", "add", "fd10:210:1::\(n)/64", "dev", "eth0", "nodad")
        }
    }

    func remove() {
        for ns in servers + [client] { _ = try? Self.sh("ip", "netns", "del", ns) }
    }

    func mac(of ns: String, _ device: String = "eth0") throws -> String {
        try Self.sh("ip", "-n", ns, "-br", "link", "show", device).split(separator: " ", omittingEmptySubsequences: true)[2]
            .lowercased()
    }

    /// The link-layer address the namespace's neighbour table holds for `address`, if any.
    func neighbour(in ns: String, _ address: String) throws -> String? {
        let text = try Self.sh("ip", "-n", ns, "neigh", "show", address)
        let words = text.split(whereSeparator: \.isWhitespace)
        guard let at = words.firstIndex(of: "lladdr"), at + 1 < words.count else { return nil }
        return words[at + 1].lowercased()
    }

    func addresses(in ns: String, device: String = "eth0") throws -> String {
        try Self.sh("ip", "-n", ns, "addr", "show", "dev", device)
    }

    struct CommandFailed: Error, CustomStringConvertible {
        var description: String
    }

    @discardableResult
    static func sh(_ arguments: String...) throws -> String {
        try run(arguments)
    }

    @discardableResult
    static func run(_ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let output = out.fileHandleForReading.readDataToEndOfFile()
        let error = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let text = String(decoding: output, as: UTF8.self)
        guard process.terminationStatus == 0 else {
            throw CommandFailed(
                description:
                    "\(arguments.joined(separator: " ")): exit \(process.terminationStatus): \(String(decoding: error, as: UTF8.self))")
        }
        return text
    }

    /// Sender MACs of the gratuitous ARP requests for `address` that `device` in namespace `ns`
    /// receives during `duration` (own AF_PACKET socket on a thread that enters the namespace).
    /// `ready` is called once the socket listens (or the capture gave up), so the caller sends
    /// only then.
    /// Gratuitous ARPs for `address` seen on `device` in `ns` during `duration`, or, when
    /// `stop` is given, until `stop()` returns true (checked every 50 ms; `duration` then bounds
    /// the wait).
    static func gratuitousARPs(
        in ns: String, device: String, for address: [UInt8], during duration: Duration, ready: @escaping @Sendable () -> Void = {},
        stop: (@Sendable () -> Bool)? = nil
    ) async -> [String] {
        await withCheckedContinuation { continuation in
            let thread = Thread {
                var seen: [String] = []
                var signalled = false
                defer {
                    if !signalled { ready() }
                    continuation.resume(returning: seen)
                }
                guard NeighborAdvertiser.enterNamespace(ns) == nil else { return }
                let index = if_nametoindex(device)
                let fd = socket(AF_PACKET, Int32(SOCK_DGRAM.rawValue), Int32(UInt16(0x0806).bigEndian))
                guard index != 0, fd >= 0 else { return }
                defer { close(fd) }
                var link = [UInt8](repeating: 0, count: 20)
                withUnsafeBytes(of: UInt16(AF_PACKET)) { link.replaceSubrange(0..<2, with: $0) }
                withUnsafeBytes(of: UInt16(0x0806).bigEndian) { link.replaceSubrange(2..<4, with: $0) }
                withUnsafeBytes(of: Int32(index)) { link.replaceSubrange(4..<8, with: $0) }
                let bound = link.withUnsafeBytes { bind(fd, $0.baseAddress!.assumingMemoryBound(to: sockaddr.self), 20) }
                guard bound == 0 else { return }
                signalled = true
                ready()
                let end = Date().addingTimeInterval(Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18)
                while Date() < end && !(stop?() ?? false) {
                    var descriptor = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                    let wait = min(end.timeIntervalSinceNow * 1000, stop == nil ? .infinity : 50)
                    guard poll(&descriptor, 1, Int32(max(1, wait))) > 0 else { continue }
                    var buffer = [UInt8](repeating: 0, count: 1500)
                    let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
                    guard count > 0, let frame = ARPSocket.parse(buffer[0..<count]) else { continue }
                    if frame.operation == 1 && frame.senderIP == address && frame.targetIP == address {
                        seen.append(ARPSocket.macText(frame.senderMAC))
                    }
                }
            }
            thread.start()
        }
    }
}
