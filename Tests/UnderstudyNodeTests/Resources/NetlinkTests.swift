import Foundation
import Testing
import UnderstudyTestSupport

@testable import UnderstudyNode

#if canImport(Glibc)
    import Glibc
#endif

/// The rtnetlink client (`NetlinkWire`, `RTNetlinkClient`) and the ICMP echo sockets
/// (`ICMPEcho`): wire format and parser fuzzing without privileges; adding, listing and removing
/// addresses and pinging inside network namespaces the tests build (root, iproute2), checked
/// against what `ip -j addr show` says. Subnets 10.233.x.0/24 and fd10:233:x::/64.
@Suite(.serialized)
struct NetlinkTests {
    static let prerequisite = Prerequisite.all("netns", [.root, .command("ip", package: "iproute2")])
    static let firewallPrerequisite = Prerequisite.all(
        "netns-nft",
        [.root, .command("ip", package: "iproute2"), .command("nft", package: "nftables"), .command("ping", package: "iputils-ping")])

    // MARK: - Wire format

    func u16(_ bytes: [UInt8], _ at: Int) -> UInt16 { bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: at, as: UInt16.self) } }
    func u32(_ bytes: [UInt8], _ at: Int) -> UInt32 { bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: at, as: UInt32.self) } }

    @Test func addressRequestsAreLaidOutAsIpSendsThem() {
        let add = NetlinkWire.addressRequest(
            add: true, address: [10, 233, 0, 5], prefix: 24, interfaceIndex: 7, noDAD: false, sequence: 42)
        // header 16 + ifaddrmsg 8 + IFA_LOCAL 8 + IFA_ADDRESS 8
        #expect(add.count == 40)
        #expect(u32(add, 0) == 40 && u16(add, 4) == 20 && u32(add, 8) == 42 && u32(add, 12) == 0)
        #expect(u16(add, 6) == 0x1 | 0x4 | 0x400 | 0x200)  // REQUEST | ACK | CREATE | EXCL
        #expect(Array(add[16..<20]) == [UInt8(AF_INET), 24, 0, 0] && u32(add, 20) == 7)
        #expect(u16(add, 24) == 8 && u16(add, 26) == 2 && Array(add[28..<32]) == [10, 233, 0, 5])  // IFA_LOCAL
        #expect(u16(add, 32) == 8 && u16(add, 34) == 1 && Array(add[36..<40]) == [10, 233, 0, 5])  // IFA_ADDRESS

        let v6 = [UInt8](repeating: 0xfd, count: 16)
        let delete = NetlinkWire.addressRequest(add: false, address: v6, prefix: 64, interfaceIndex: 3, noDAD: true, sequence: 9)
        #expect(delete.count == 16 + 8 + 20 + 20)
        #expect(u16(delete, 4) == 21 && u16(delete, 6) == 0x1 | 0x4)  // RTM_DELADDR, REQUEST | ACK
        #expect(Array(delete[16..<20]) == [UInt8(AF_INET6), 64, 0x02, 0])  // IFA_F_NODAD
        #expect(u16(delete, 24) == 20 && Array(delete[28..<44]) == v6)

        let dump = NetlinkWire.dumpRequest(NetlinkWire.getLink, sequence: 5)
        #expect(dump.count == 32 && u16(dump, 4) == 18 && u16(dump, 6) == 0x301)
        #expect(NetlinkWire.dumpRequest(NetlinkWire.getAddress, sequence: 5).count == 24)
    }

    /// A kernel-like RTM_NEWLINK payload.
    static func linkPayload(index: Int32, name: String, flags: UInt32, mac: [UInt8]?, operState: UInt8?) -> [UInt8] {
        var body = [UInt8](repeating: 0, count: 16)
        withUnsafeBytes(of: index) { body.replaceSubrange(4..<8, with: $0) }
        withUnsafeBytes(of: flags) { body.replaceSubrange(8..<12, with: $0) }
        var attributes: [(UInt16, [UInt8])] = [(3, Array(name.utf8) + [0])]
        if let mac { attributes.append((1, mac)) }
        if let operState { attributes.append((16, [operState])) }
        return Array(NetlinkWire.message(type: 16, flags: 2, sequence: 1, body: body, attributes: attributes).dropFirst(16))
    }

    static func addressPayload(family: Int32, prefix: UInt8, flags: UInt8, index: UInt32, local: [UInt8], label: String?) -> [UInt8] {
        var body: [UInt8] = [UInt8(family), prefix, flags, 0]
        withUnsafeBytes(of: index) { body += $0 }
        var attributes: [(UInt16, [UInt8])] = [(1, local), (2, local)]
        if let label { attributes.append((3, Array(label.utf8) + [0])) }
        return Array(NetlinkWire.message(type: 20, flags: 2, sequence: 1, body: body, attributes: attributes).dropFirst(16))
    }

    @Test func repliesBecomeInterfacesAsIpShowsThem() throws {
        let links = [
            Self.linkPayload(index: 1, name: "lo", flags: 0x8 | 0x1 | 0x40 | 0x10000, mac: [0, 0, 0, 0, 0, 0], operState: 0),
            Self.linkPayload(index: 4, name: "eth0", flags: 0x1 | 0x2 | 0x1000, mac: [2, 0xab, 0, 0, 0, 1], operState: 2),
        ]
        let addresses = [
            Self.addressPayload(family: AF_INET, prefix: 24, flags: 0, index: 4, local: [10, 233, 0, 1], label: "eth0"),
            Self.addressPayload(
                family: AF_INET6, prefix: 64, flags: 0x40, index: 4, local: [0xfd, 0x10] + [UInt8](repeating: 0, count: 13) + [1],
                label: nil),
            Self.addressPayload(family: AF_INET, prefix: 8, flags: 0, index: 99, local: [127, 0, 0, 9], label: nil),  // no such link
        ]
        let interfaces = try RTNetlinkClient.combine(links: links, addresses: addresses)
        #expect(interfaces.map(\.ifname) == ["lo", "eth0"])
        #expect(interfaces[0].isLoopback && interfaces[0].linkIsUp && interfaces[0].operstate == "UNKNOWN")
        let eth0 = interfaces[1]
        #expect(eth0.ifindex == 4 && eth0.address == "02:ab:00:00:00:01" && eth0.operstate == "DOWN")
        #expect(eth0.flags.contains("NO-CARRIER") && eth0.flags.contains("UP") && !eth0.linkIsUp)
        #expect(eth0.addrInfo.map(\.local) == ["10.233.0.1", "fd10::1"])
        #expect(eth0.addrInfo.map(\.family) == ["inet", "inet6"] && eth0.addrInfo.map(\.prefixlen) == [24, 64])
        #expect(eth0.addrInfo[1].tentative == true && eth0.addrInfo[0].tentative == nil)
        #expect(eth0.entry(for: try IPAddressWithPrefix.parse("10.233.0.1")) != nil)

        // A wrong address length for the family, or an attribute running past the end, throws.
        var bad = Self.addressPayload(family: AF_INET6, prefix: 64, flags: 0, index: 4, local: [10, 233, 0, 1], label: nil)
        #expect(throws: NetlinkFailure.self) { try RTNetlinkClient.combine(links: links, addresses: [bad]) }
        bad = Self.addressPayload(family: AF_INET, prefix: 33, flags: 0, index: 4, local: [10, 233, 0, 1], label: nil)
        #expect(throws: NetlinkFailure.self) { try RTNetlinkClient.combine(links: links, addresses: [bad]) }
        var long = links[1]
        long[16] = 200  // the IFLA_IFNAME length
        #expect(throws: NetlinkFailure.self) { try RTNetlinkClient.combine(links: [long], addresses: []) }
    }

    @Test func acknowledgementsAndErrnoMessages() throws {
        // NLMSG_ERROR, capped, with an extended-ACK message.
        var payload: [UInt8] = []
        withUnsafeBytes(of: Int32(-EEXIST)) { payload += $0 }
        payload += NetlinkWire.message(type: 20, flags: 5, sequence: 3, body: [])  // the echoed header
        let text = Array("Address already assigned".utf8) + [0]
        withUnsafeBytes(of: UInt16(4 + text.count)) { payload += $0 }
        withUnsafeBytes(of: UInt16(1)) { payload += $0 }
        payload += text
        let ack = try NetlinkWire.acknowledgement(
            NetlinkWire.Message(type: 2, flags: 0x100 | 0x200, sequence: 3, portID: 77, payload: payload))
        #expect(ack == NetlinkWire.Acknowledgement(code: EEXIST, message: "Address already assigned"))
        // A plain ACK.
        var zero: [UInt8] = []
        withUnsafeBytes(of: Int32(0)) { zero += $0 }
        zero += NetlinkWire.message(type: 20, flags: 5, sequence: 3, body: [])
        #expect(
            try NetlinkWire.acknowledgement(NetlinkWire.Message(type: 2, flags: 0x100, sequence: 3, portID: 77, payload: zero)).code == 0)
        // Too short, or a positive "errno": malformed.
        #expect(throws: NetlinkParseError.self) {
            try NetlinkWire.acknowledgement(NetlinkWire.Message(type: 2, flags: 0, sequence: 3, portID: 77, payload: [0, 0, 0, 0]))
        }
        var positive = zero
        positive.replaceSubrange(0..<4, with: [5, 0, 0, 0])
        #expect(throws: NetlinkParseError.self) {
            try NetlinkWire.acknowledgement(NetlinkWire.Message(type: 2, flags: 0, sequence: 3, portID: 77, payload: positive))
        }

        #expect(NetlinkFailure.describe(EEXIST, adding: true) == "File exists (EEXIST): the address is already there")
        #expect(NetlinkFailure.describe(EADDRNOTAVAIL, adding: false).hasSuffix("(EADDRNOTAVAIL): the address is already gone"))
        #expect(NetlinkFailure.describe(EPERM).contains("CAP_NET_ADMIN"))
        #expect(NetlinkFailure.describe(ENODEV).contains("interface does not exist"))
        #expect(NetlinkFailure.describe(E2BIG) == "\(String(cString: strerror(E2BIG))) (errno \(E2BIG))")
    }

    @Test func messagesSplitAndTruncationsThrow() throws {
        let first = NetlinkWire.message(type: 16, flags: 2, sequence: 8, body: [1, 2, 3])  // 19 bytes, padded to 20
        let second = NetlinkWire.message(type: 3, flags: 2, sequence: 8, body: [0, 0, 0, 0])
        let both = first + second
        let messages = try NetlinkWire.messages(in: both[...])
        #expect(messages.map(\.type) == [16, 3] && messages[0].payload == [1, 2, 3, 0] && messages[1].sequence == 8)
        for cut in 1..<both.count where cut != first.count {
            #expect(throws: NetlinkParseError.self, "cut at \(cut)") { try NetlinkWire.messages(in: both[0..<cut]) }
        }
    }

    /// Runs the whole reading path on untrusted bytes: it may throw, never crash.
    func readEverything(_ bytes: [UInt8]) -> Int {
        var parsed = 0
        guard let messages = try? NetlinkWire.messages(in: bytes[...]) else { return 0 }
        for message in messages {
            if (try? NetlinkWire.link(message.payload)) != nil { parsed += 1 }
            if (try? NetlinkWire.address(message.payload)) != nil { parsed += 1 }
            if (try? NetlinkWire.acknowledgement(message)) != nil { parsed += 1 }
        }
        if (try? RTNetlinkClient.combine(links: messages.map(\.payload), addresses: messages.map(\.payload))) != nil { parsed += 1 }
        _ = ICMPEcho.echoReply(bytes[...], v6: false, withIPHeader: true)
        _ = ICMPEcho.echoReply(bytes[...], v6: true, withIPHeader: false)
        _ = ICMPEcho.sourceAddress(bytes, length: bytes.count, v6: bytes.count > 20)
        _ = NeighborSolicitation.advertisement(bytes[...])
        return parsed
    }

    @Test func parserFuzzNeverCrashes() {
        var random = SplitMix64(state: 0x5eed_2026)
        let valid: [[UInt8]] = [
            NetlinkWire.message(
                type: 16, flags: 2, sequence: 1,
                body: Self.linkPayload(index: 2, name: "eth0", flags: 0x10043, mac: [2, 0, 0, 0, 0, 2], operState: 6)),
            NetlinkWire.message(
                type: 20, flags: 2, sequence: 1,
                body: Self.addressPayload(
                    family: AF_INET6, prefix: 64, flags: 0x80, index: 2, local: [UInt8](repeating: 0xfd, count: 16), label: "eth0")),
            NetlinkWire.message(type: 2, flags: 0x100, sequence: 1, body: [0xef, 0xff, 0xff, 0xff] + [UInt8](repeating: 0, count: 16)),
        ]
        // The seeds parse (the fuzz starts from real structure).
        #expect(valid.map(readEverything).allSatisfy { $0 > 0 })
        var survived = 0
        for round in 0..<30_000 {
            var bytes: [UInt8]
            switch round % 3 {
            case 0:
                bytes = (0..<Int.random(in: 0...96, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }
            case 1:
                let seed = valid[Int.random(in: 0..<valid.count, using: &random)]
                bytes = Array(seed.prefix(Int.random(in: 0...seed.count, using: &random)))
            default:
                bytes = valid[Int.random(in: 0..<valid.count, using: &random)] + valid[Int.random(in: 0..<valid.count, using: &random)]
                for _ in 0..<Int.random(in: 1...4, using: &random) where !bytes.isEmpty {
                    bytes[Int.random(in: 0..<bytes.count, using: &random)] = UInt8.random(in: 0...255, using: &random)
                }
            }
            _ = readEverything(bytes)
            survived += 1
        }
        #expect(survived == 30_000)
    }

    @Test func echoPacketsAndReplies() {
        let token: [UInt8] = [1, 2, 3, 4, 5, 6, 7, 8]
        let request = ICMPEcho.request(v6: false, identifier: 0x1234, sequence: 0xabcd, token: token)
        #expect(request.count == 24 && request[0] == 8 && Array(request[4..<8]) == [0x12, 0x34, 0xab, 0xcd])
        #expect(ICMPEcho.checksum(request) == 0)  // a correct checksum sums to zero
        #expect(ICMPEcho.request(v6: true, identifier: 1, sequence: 2, token: token)[0] == 128)

        var reply = request
        reply[0] = 0
        let ipHeader: [UInt8] = [0x45] + [UInt8](repeating: 0, count: 19)
        #expect(
            ICMPEcho.echoReply((ipHeader + reply)[...], v6: false, withIPHeader: true)
                == ICMPEcho.Reply(identifier: 0x1234, sequence: 0xabcd, payload: token + [UInt8](repeating: 0x55, count: 8)))
        #expect(ICMPEcho.echoReply(reply[...], v6: false, withIPHeader: false)?.sequence == 0xabcd)
        #expect(ICMPEcho.echoReply(request[...], v6: false, withIPHeader: false) == nil)  // a request is no reply
        #expect(ICMPEcho.echoReply(reply[...], v6: true, withIPHeader: false) == nil)  // type 0 is not ICMPv6's reply
        #expect(ICMPEcho.echoReply((ipHeader + reply.prefix(7))[...], v6: false, withIPHeader: true) == nil)
        #expect(ICMPEcho.echoReply(([0x4f] + reply)[...], v6: false, withIPHeader: true) == nil)  // header longer than the packet
    }

    @Test func neighbourSolicitationsAndAdvertisements() {
        let target: [UInt8] = [0xfd, 0x10, 0x02, 0x33] + [UInt8](repeating: 0, count: 9) + [0xab, 0xcd, 0xef]
        #expect(NeighborSolicitation.solicitedNode(target) == [0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, 0xab, 0xcd, 0xef])
        let mac: [UInt8] = [2, 0, 0, 0, 0, 9]
        let solicitation = NeighborSolicitation.solicitation(target: target, mac: mac)
        #expect(solicitation.count == 32 && solicitation[0] == 135 && Array(solicitation[8..<24]) == target)
        #expect(Array(solicitation[24..<32]) == [1, 1] + mac)

        let header: [UInt8] = [136, 0, 0, 0, 0x60, 0, 0, 0]
        #expect(
            NeighborSolicitation.advertisement((header + target + [2, 1] + mac)[...])
                == NeighborSolicitation.Advertisement(target: target, mac: mac))
        #expect(NeighborSolicitation.advertisement((header + target)[...]) == NeighborSolicitation.Advertisement(target: target, mac: nil))
        #expect(NeighborSolicitation.advertisement((header + target + [2, 0] + mac)[...]) == nil)  // option length 0
        #expect(NeighborSolicitation.advertisement((header + target + [2, 2] + mac)[...]) == nil)  // runs past the end
        #expect(NeighborSolicitation.advertisement(([135] + header.dropFirst() + target)[...]) == nil)  // a solicitation
        #expect(NeighborSolicitation.advertisement((header + target.prefix(15))[...]) == nil)
    }

    @Test func dedicatedThreadHandsBackLateWorkAtTheLimit() async {
        let clock = ContinuousClock()
        var began = clock.now
        // Work stuck for a second (as a kernel call that does not return): the caller gets
        // `late` at the limit; the thread finishes on its own later.
        let stuck = await DedicatedThread.run(named: "test-stuck", limit: .milliseconds(100), late: "late") {
            usleep(1_000_000)
            return "done"
        }
        #expect(stuck == "late")
        #expect(clock.now - began < .milliseconds(900))
        began = clock.now
        let quick = await DedicatedThread.run(named: "test-quick", limit: .seconds(5), late: "late") { "done" }
        #expect(quick == "done")
        #expect(clock.now - began < .seconds(2))
    }

    // MARK: - In network namespaces

    /// Namespaces named after the test process, removed even when the test fails.
    final class Namespaces: @unchecked Sendable {
        nonisolated(unsafe) static var counter = 0
        static let lock = NSLock()
        var names: [String] = []

        func make() throws -> String {
            Self.lock.lock()
            Self.counter += 1
            let name = "nlt\(getpid())x\(Self.counter)"
            Self.lock.unlock()
            try sh("ip", "netns", "add", name)
            names.append(name)
            try sh("ip", "netns", "exec", name, "sysctl", "-qw", "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0")
            try sh("ip", "-n", name, "link", "set", "lo", "up")
            return name
        }

        /// Two namespaces joined by a veth pair, `va` in the first and `vb` in the second, up,
        /// with these addresses (IPv6 ones without duplicate address detection).
        func makePair(addresses first: [String], _ second: [String]) throws -> (String, String) {
            let a = try make()
            let b = try make()
            try sh("ip", "link", "add", "va", "netns", a, "type", "veth", "peer", "name", "vb", "netns", b)
            for (namespace, device, addresses) in [(a, "va", first), (b, "vb", second)] {
                for address in addresses {
                    let noDAD = address.contains(":") ? ["nodad"] : []
                    _ = try run(["ip", "-n", namespace, "addr", "add", address, "dev", device] + noDAD)
                }
                try sh("ip", "-n", namespace, "link", "set", device, "up")
            }
            return (a, b)
        }

        func remove() {
            for name in names { _ = Shell.run(["ip", "netns", "del", name]) }
        }

        @discardableResult
        func run(_ arguments: [String]) throws -> String {
            let outcome = Shell.run(arguments)
            guard outcome.ok else {
                throw TestSupportError("\(arguments.joined(separator: " ")): exit \(outcome.status): \(outcome.output)")
            }
            return outcome.output
        }

        @discardableResult
        func sh(_ arguments: String...) throws -> String { try run(arguments) }
    }

    /// `ip -j addr show dev DEVICE` in the namespace, read as the drivers read it.
    func ipShow(_ namespaces: Namespaces, _ ns: String, _ device: String) throws -> NetInterface {
        let interfaces = try NetInterface.parseList(try namespaces.sh("ip", "-n", ns, "-j", "addr", "show", "dev", device))
        return try #require(interfaces.first)
    }

    @Test(.requires(NetlinkTests.prerequisite)) func addListRemoveIPv4AndIPv6InANamespace() async throws {
        let namespaces = Namespaces()
        defer { namespaces.remove() }
        let ns = try namespaces.make()
        try namespaces.sh("ip", "-n", ns, "link", "add", "d0", "type", "veth", "peer", "name", "d1")
        try namespaces.sh("ip", "-n", ns, "link", "set", "d1", "up")
        try namespaces.sh("ip", "-n", ns, "link", "set", "d0", "up")
        try namespaces.sh("ip", "-n", ns, "addr", "add", "10.233.1.1/24", "dev", "d0")
        let client = RTNetlinkClient(namespace: ns, timeout: .seconds(5))

        // The list agrees with `ip -j addr show`.
        let listed = try await client.interfaces()
        #expect(listed.map(\.ifname).sorted() == ["d0", "d1", "lo"])
        let d0 = try #require(listed.first { $0.ifname == "d0" })
        let shown = try ipShow(namespaces, ns, "d0")
        #expect(d0.ifindex == shown.ifindex && d0.address == shown.address && d0.operstate == shown.operstate)
        #expect(Set(d0.flags) == Set(shown.flags), "netlink \(d0.flags), ip \(shown.flags)")
        #expect(d0.addrInfo.map(\.local) == shown.addrInfo.map(\.local))

        let v4 = try IPAddressWithPrefix.parse("10.233.1.5")
        let v6 = try IPAddressWithPrefix.parse("fd10:233:1::5")
        try await client.add(v4, prefix: 24, interface: d0, noDAD: false)
        try await client.add(v6, prefix: 64, interface: d0, noDAD: true)
        let after = try ipShow(namespaces, ns, "d0")
        let v4Entry = try #require(after.entry(for: v4))
        let v6Entry = try #require(after.entry(for: v6))
        #expect(v4Entry.prefixlen == 24 && v4Entry.family == "inet" && v6Entry.prefixlen == 64 && v6Entry.family == "inet6")
        #expect(v6Entry.tentative != true && v6Entry.dadfailed != true)  // nodad: usable at once
        let relisted = try #require(try await client.interfaces().first { $0.ifname == "d0" })
        #expect(relisted.entry(for: v4)?.prefixlen == 24 && relisted.entry(for: v6)?.prefixlen == 64)

        // Again: EEXIST, named.
        do {
            try await client.add(v4, prefix: 24, interface: d0, noDAD: false)
            Issue.record("adding an address twice succeeded")
        } catch {
            #expect(error.code == EEXIST)
            #expect(
                error.reason.contains("adding 10.233.1.5/24 to d0 failed: File exists (EEXIST): the address is already there"), "\(error)")
        }

        #expect(try await client.delete(v4, prefix: 24, interface: d0))
        #expect(try await client.delete(v6, prefix: 64, interface: d0))
        let gone = try ipShow(namespaces, ns, "d0")
        let base = try IPAddressWithPrefix.parse("10.233.1.1")
        #expect(gone.entry(for: v4) == nil && gone.entry(for: v6) == nil && gone.entry(for: base) != nil)
        // Already gone: false, not an error.
        #expect(try await client.delete(v4, prefix: 24, interface: d0) == false)

        // An interface that went away: ENODEV, named.
        try namespaces.sh("ip", "-n", ns, "link", "del", "d0")
        do {
            try await client.add(v4, prefix: 24, interface: d0, noDAD: false)
            Issue.record("adding to a deleted interface succeeded")
        } catch {
            #expect(error.code == ENODEV, "\(error)")
        }
    }

    @Test(.requires(NetlinkTests.prerequisite)) func aMissingNamespaceFailsClearly() async throws {
        let client = RTNetlinkClient(namespace: "understudy-no-such-ns-\(getpid())", timeout: .seconds(2))
        do {
            _ = try await client.interfaces()
            Issue.record("listing in a missing namespace succeeded")
        } catch {
            #expect(error.reason.contains("cannot open network namespace understudy-no-such-ns-"), "\(error)")
        }
    }

    @Test func echoRequestsAreSentInRoundsWithinTheTimeout() {
        // The fast profile's 20 ms: at 0, 6.67 and 13.3 ms, a third of the timeout left after the last.
        #expect(ICMPEcho.sendOffsets(timeout: .milliseconds(20)) == [0, 6_666_666, 13_333_332])
        #expect(ICMPEcho.sendOffsets(timeout: .seconds(1)) == [0, 333_333_333, 666_666_666])
        // Too short to space them 2 ms apart: one request.
        #expect(ICMPEcho.sendOffsets(timeout: .milliseconds(5)) == [0])
        #expect(ICMPEcho.sendOffsets(timeout: .zero) == [0])
        #expect(ICMPEcho.sendOffsets(timeout: .seconds(1), rounds: 1) == [0])
    }

    /// A lost echo request does not decide a partition: the probe asks again within its
    /// timeout. The answering side drops the first request it gets (nftables `numgen`).
    @Test(.requires(NetlinkTests.firewallPrerequisite)) func aLostEchoRequestIsAskedAgainWithinTheTimeout() async throws {
        let namespaces = Namespaces()
        defer { namespaces.remove() }
        let (a, b) = try namespaces.makePair(addresses: ["10.233.3.1/24"], ["10.233.3.2/24"])
        // The neighbour entry first, so that the first request is not also held up by ARP.
        try namespaces.sh("ip", "netns", "exec", b, "ping", "-c", "1", "-W", "1", "10.233.3.1")
        try namespaces.sh("ip", "netns", "exec", a, "nft", "add", "table", "inet", "t")
        try namespaces.sh(
            "ip", "netns", "exec", a, "nft", "add", "chain", "inet", "t", "input", "{ type filter hook input priority 0 ; }")
        try namespaces.sh(
            "ip", "netns", "exec", a, "nft", "add", "rule", "inet", "t", "input", "icmp", "type", "echo-request", "numgen", "inc",
            "mod", "1000000", "0", "counter", "drop")
        let report = await ICMPEcho.ping(["10.233.3.1"], timeout: .milliseconds(30), namespace: b)
        #expect(report.answered == ["10.233.3.1"], "\(report)")
        // The first request was the one dropped.
        let rules = try namespaces.sh("ip", "netns", "exec", a, "nft", "list", "chain", "inet", "t", "input")
        #expect(rules.contains("counter packets 1 "), "\(rules)")
    }

    /// Two namespaces joined by a veth pair: a answers, b asks. One with datagram ICMP sockets
    /// allowed (ping_group_range), one with the kernel default (raw sockets).
    @Test(.requires(NetlinkTests.prerequisite)) func icmpEchoReachableAndUnreachableInNamespaces() async throws {
        let namespaces = Namespaces()
        defer { namespaces.remove() }
        let (a, b) = try namespaces.makePair(
            addresses: ["10.233.2.1/24", "fd10:233:2::1/64"], ["10.233.2.2/24", "fd10:233:2::2/64"])

        for datagram in [false, true] {
            try namespaces.sh(
                "ip", "netns", "exec", b, "sysctl", "-qw", "net.ipv4.ping_group_range=\(datagram ? "0 2147483647" : "1 0")")
            let clock = ContinuousClock()
            let began = clock.now
            let report = await ICMPEcho.ping(
                ["10.233.2.1", "fd10:233:2::1", "10.233.2.77", "fd10:233:2::77", "10.233.99.1"], timeout: .milliseconds(800),
                namespace: b)
            let elapsed = clock.now - began
            #expect(report.answered == ["10.233.2.1", "fd10:233:2::1"], "\(report)")
            #expect(report.sockets == [datagram ? "datagram" : "raw"], "\(report)")
            // No route to 10.233.99.1: said so at once.
            #expect(report.problems.contains { $0.contains("10.233.99.1") && $0.contains("ENETUNREACH") }, "\(report)")
            // The unanswered ones held the round to its timeout, not beyond.
            #expect(elapsed >= .milliseconds(700) && elapsed < .seconds(3), "\(elapsed)")
        }

        // PingProbe as pingnp uses it: any answer is enough, and it returns at once.
        let probe = PingProbe(namespace: b)
        let clock = ContinuousClock()
        let began = clock.now
        #expect(await probe.anyReachable(["10.233.2.77", "10.233.2.1"], timeout: .seconds(2)))
        #expect(clock.now - began < .seconds(1))
        #expect(!(await probe.anyReachable(["10.233.2.77", "fd10:233:2::77"], timeout: .milliseconds(300))))
        // The answering side goes away: no answer any more.
        try namespaces.sh("ip", "-n", a, "link", "set", "va", "down")
        #expect(!(await probe.anyReachable(["10.233.2.1"], timeout: .milliseconds(300))))
        // An unknown name is a problem, not an answer.
        let unknown = await ICMPEcho.ping(["no-such-host.invalid"], timeout: .milliseconds(300), namespace: b)
        #expect(unknown.answered.isEmpty && unknown.problems.first?.contains("cannot resolve no-such-host.invalid") == true)
    }
}
