import Foundation
import Logging
import Synchronization
import UnderstudyEngine
import UnderstudyModel

/// Tunables of the `fip` driver that the Model does not (yet) carry.
public struct FloatingIPDriverOptions: Sendable, Equatable {
    /// Gratuitous ARPs (IPv4) or unsolicited neighbour advertisements (IPv6) sent after
    /// activation, `announceInterval` apart.
    public var announceCount: Int
    public var announceInterval: Duration
    /// How long the "is the address in use?" probe waits for an answer, in total (IPv4: from
    /// the first ARP probe on; two probes go out 50 ms apart).
    public var probeWait: Duration
    /// Upper bound for any single netlink request or helper command (`ndisc6`, `arping`).
    public var commandTimeout: Duration
    /// Work inside this network namespace: the netlink and packet sockets are opened in it and
    /// helper commands run under `ip netns exec NAME`. For tests, which build namespaces; nil
    /// in the daemon.
    public var namespace: String?

    public init(
        announceCount: Int = 3, announceInterval: Duration = .milliseconds(100), probeWait: Duration = .milliseconds(200),
        commandTimeout: Duration = .seconds(5), namespace: String? = nil
    ) {
        self.announceCount = announceCount
        self.announceInterval = announceInterval
        self.probeWait = probeWait
        self.commandTimeout = commandTimeout
        self.namespace = namespace
    }
}

extension FloatingIPDriverOptions {
    /// These options with the resource's own `announce-count`, `announce-interval` and
    /// `probe-wait`, where set.
    func tuned(by settings: FloatingIPSettings) -> FloatingIPDriverOptions {
        var tuned = self
        if let value = settings.announceCount { tuned.announceCount = value }
        if let value = settings.announceInterval { tuned.announceInterval = value }
        if let value = settings.probeWait { tuned.probeWait = value }
        return tuned
    }
}

/// The `fip` resource: a floating IP address, IPv4 or IPv6 (not link-local).
///
/// Start: validate the address; pick the interface holding its subnet (or `interface:`);
/// optionally fail when that NIC's link is down; unless `force`, fail when another host answers
/// for the address (IPv4: RFC 5227 ARP probes from an own AF_PACKET socket, see `ARPSocket`;
/// IPv6: neighbour solicitations from an own ICMPv6 raw socket, see `NeighborSolicitation`;
/// answers from this server's own MACs do not count, so
/// an address this server already holds is kept); add it with an rtnetlink RTM_NEWADDR (IPv6
/// with IFA_F_NODAD: the probe already did the duplicate check, and DAD would delay the address
/// by a second);
/// announce it (IPv4: gratuitous ARP requests from `ARPSocket`, activation returns after the
/// first; IPv6: unsolicited neighbour advertisements with the Override flag, see
/// `NeighborAdvertiser`). Only when the raw socket cannot be opened does the probe fall back
/// to iputils `arping` (IPv4, about a second slower per activation) or `ndisc6` (IPv6), with a
/// warning.
/// Stop: RTM_DELADDR from every interface that holds it, then check that it is gone.
/// The interface list, the add and the removal go through `RTNetlinkClient` (no `ip` process
/// on the failover path).
public final class FloatingIPDriver: Sendable {
    let options: FloatingIPDriverOptions
    let commands: NetCommandRunner
    let netlink: RTNetlinkClient
    let logger: Logger?
    /// Addresses probed when their holder was lost (`prepareTakeover`), by address.
    let earlyProbes = Mutex<[String: EarlyProbe]>([:])
    /// Activations that used such a probe instead of probing again (for tests and the log).
    let earlyProbesUsed = Atomic<Int>(0)

    public init(options: FloatingIPDriverOptions = FloatingIPDriverOptions(), logger: Logger? = nil) {
        self.options = options
        self.commands = NetCommandRunner(namespace: options.namespace, defaultTimeout: options.commandTimeout)
        self.netlink = RTNetlinkClient(namespace: options.namespace, timeout: options.commandTimeout)
        self.logger = logger
    }

    public func perform(_ run: ResourceRun, settings: FloatingIPSettings) async -> ResourceOutcome {
        let result: Result<Void, FloatingIPFailure>
        switch run.operation {
        case .start: result = await activate(settings)
        case .stop: result = await deactivate(settings)
        }
        switch result {
        case .success: return .success(asyncPID: nil)
        case .failure(let failure):
            logger?.error("fip \(run.resource) \(run.operation.rawValue) failed: \(failure.reason)")
            return .failure(reason: failure.reason)
        }
    }

    // MARK: - Activation

    func activate(_ settings: FloatingIPSettings) async -> Result<Void, FloatingIPFailure> {
        do {
            try await activateOrThrow(settings)
            return .success(())
        } catch {
            return .failure(error)
        }
    }

    private func activateOrThrow(_ settings: FloatingIPSettings) async throws(FloatingIPFailure) {
        let tuning = options.tuned(by: settings)
        let ip = try parse(settings.address)
        let interfaces = try await listInterfaces()
        let (chosen, prefix, holder) = try Self.placement(of: ip, settings: settings, interfaces: interfaces)

        let linkUp = chosen.linkIsUp
        if !linkUp && settings.failOnLinkDown {
            throw FloatingIPFailure("link of interface \(chosen.ifname) for address \(ip.address) is down")
        }

        // In use elsewhere? Answers from any of this server's own MACs do not count.
        if !settings.force && linkUp {
            if holder == nil, let early = takeEarlyProbe(of: ip.address), early.answeredBy == nil {
                // Nobody answered for it after its holder was lost (`prepareTakeover`): from
                // then on only that holder could, and it fenced before this start was allowed.
                earlyProbesUsed.add(1, ordering: .relaxed)
                logger?.info(
                    "fip: \(ip.address) had no answer when its holder was lost (\(Int(early.startedAt.duration(to: .now) / .milliseconds(1))) ms ago): not probed again"
                )
            } else {
                let ownMACs = Set(interfaces.compactMap { $0.address?.lowercased() })
                if let foreign = try await probe(ip, on: chosen, ownMACs: ownMACs, tuning: tuning) {
                    throw FloatingIPFailure("address \(ip.address) is already in use on the network (answered by \(foreign))")
                }
            }
        }

        if holder == nil {
            do {
                try await netlink.add(ip, prefix: prefix, interface: chosen, noDAD: ip.family == .v6)
            } catch {
                throw FloatingIPFailure("cannot add address \(ip.address): \(error.reason)")
            }
            logger?.info("fip: added \(ip.address)/\(prefix) on \(chosen.ifname)")
        }

        if linkUp { try await announce(ip, on: chosen, tuning: tuning) }
    }

    /// Returns the foreign MAC that answered for the address, or nil when none did.
    private func probe(
        _ ip: IPAddressWithPrefix, on interface: NetInterface, ownMACs: Set<String>, tuning options: FloatingIPDriverOptions
    ) async throws(FloatingIPFailure)
        -> String?
    {
        let waitMS = max(
            100, Int(options.probeWait.components.seconds * 1000 + options.probeWait.components.attoseconds / 1_000_000_000_000_000))
        let result: NetCommandResult
        switch ip.family {
        case .v4:
            var fallbackReason = "interface \(interface.ifname) has no Ethernet MAC address"
            if let link = arpLink(interface, ownMACs: ownMACs) {
                do {
                    return try await ARPSocket.probe(address: ip.bytes, on: link, wait: options.probeWait)
                } catch {
                    guard error.socketUnavailable else {
                        throw FloatingIPFailure("cannot check whether \(ip.address) is in use: \(error.reason)")
                    }
                    fallbackReason = error.reason
                }
            }
            logger?.warning("fip: \(fallbackReason); probing \(ip.address) with arping instead (slower)")
            // DAD mode: sender address 0.0.0.0, so nobody's cache is touched. Exit 0 = no
            // answer, 1 = answered; anything else is an error.
            // iputils arping takes whole seconds for -w; it stops at the first answer.
            let seconds = max(1, (waitMS + 999) / 1000)
            result = await commands.run(
                ["arping", "-D", "-c", "2", "-w", "\(seconds)", "-I", interface.ifname, ip.address],
                timeout: .seconds(seconds + 3))
            if result.exitCode != 0 && result.exitCode != 1 {
                throw FloatingIPFailure(
                    "cannot check whether \(ip.address) is in use: \(fallbackReason), and the arping fallback failed: \(result.failureDescription)"
                )
            }
        case .v6:
            var fallbackReason = "interface \(interface.ifname) has no Ethernet MAC address"
            if let text = interface.address, let mac = ARPSocket.macBytes(text) {
                do {
                    return try await NeighborSolicitation.probe(
                        target: ip.bytes, interfaceIndex: interface.ifindex, mac: mac,
                        ownMACs: Set(ownMACs.compactMap(ARPSocket.macBytes)), wait: options.probeWait, namespace: self.options.namespace)
                } catch {
                    guard error.socketUnavailable else {
                        throw FloatingIPFailure("cannot check whether \(ip.address) is in use: \(error.reason)")
                    }
                    fallbackReason = error.reason
                }
            }
            logger?.warning("fip: \(fallbackReason); probing \(ip.address) with ndisc6 instead")
            // Neighbour solicitation; every answer is printed (-m). Exit 0 = answered.
            result = await commands.run(
                ["ndisc6", "-m", "-n", "-r", "1", "-w", "\(waitMS)", ip.address, interface.ifname],
                timeout: options.probeWait + .seconds(3))
            if result.exitCode != 0 {
                let text = result.standardOutput + result.standardError
                if text.contains("No response") || text.contains("Timed out") { return nil }
                throw FloatingIPFailure("cannot check whether \(ip.address) is in use: \(result.failureDescription)")
            }
        }
        let macs = Self.macAddresses(in: result.standardOutput)
        if let foreign = macs.first(where: { !ownMACs.contains($0) }) { return foreign }
        // Answered but no MAC could be read: count it as in use (safe side).
        if result.exitCode == (ip.family == .v4 ? 1 : 0) && macs.isEmpty { return "an unknown host" }
        return nil
    }

    private func announce(_ ip: IPAddressWithPrefix, on interface: NetInterface, tuning options: FloatingIPDriverOptions)
        async throws(FloatingIPFailure)
    {
        let count = max(1, options.announceCount)
        switch ip.family {
        case .v4:
            var fallbackReason = "interface \(interface.ifname) has no Ethernet MAC address"
            if let link = arpLink(interface, ownMACs: []) {
                do {
                    let logger = self.logger
                    try await ARPSocket.announce(
                        address: ip.bytes, on: link, count: count, interval: options.announceInterval,
                        laterFailure: { reason in logger?.warning("fip: announcing \(ip.address): \(reason)") })
                    return
                } catch {
                    guard error.socketUnavailable else { throw FloatingIPFailure("cannot announce address \(ip.address): \(error.reason)") }
                    fallbackReason = error.reason
                }
            }
            logger?.warning("fip: \(fallbackReason); announcing \(ip.address) with arping instead (slower)")
            // iputils arping only knows whole-second intervals, so each gratuitous ARP is its
            // own `arping -U -c 1`, started `announceInterval` after the previous one (each
            // sends at once, then lingers a second for replies that never come).
            let interval = options.announceInterval
            let results = await withTaskGroup(of: NetCommandResult.self) { group in
                for index in 0..<count {
                    group.addTask {
                        if index > 0 { try? await Task.sleep(for: interval * index) }
                        return await self.commands.run(
                            ["arping", "-U", "-c", "1", "-w", "1", "-I", interface.ifname, ip.address],
                            timeout: .seconds(4))
                    }
                }
                var all: [NetCommandResult] = []
                for await result in group { all.append(result) }
                return all
            }
            // Unsolicited mode expects no reply: exit 0 or 1 both mean "sent".
            if let failed = results.first(where: { $0.exitCode != 0 && $0.exitCode != 1 }) {
                throw FloatingIPFailure(
                    "cannot announce address \(ip.address): \(fallbackReason), and the arping fallback failed: \(failed.failureDescription)"
                )
            }
        case .v6:
            guard let mac = interface.address else {
                throw FloatingIPFailure("cannot announce address \(ip.address): interface \(interface.ifname) has no MAC address")
            }
            do {
                try await NeighborAdvertiser.announce(
                    target: ip.bytes, interfaceIndex: interface.ifindex, mac: mac, count: count,
                    interval: options.announceInterval, namespace: options.namespace)
            } catch {
                throw FloatingIPFailure("cannot announce address \(ip.address): \(error.reason)")
            }
        }
    }

    /// The ARP socket's view of `interface`; nil when it has no 6-byte MAC (then `arping`).
    private func arpLink(_ interface: NetInterface, ownMACs: Set<String>) -> ARPSocket.Link? {
        guard let text = interface.address, let mac = ARPSocket.macBytes(text) else { return nil }
        return ARPSocket.Link(
            name: interface.ifname, index: interface.ifindex, mac: mac,
            ownMACs: Set(ownMACs.compactMap(ARPSocket.macBytes)).union([mac]), namespace: options.namespace)
    }

    // MARK: - Probing ahead of a takeover

    /// What an ARP probe found for an address when its holder was lost.
    struct EarlyProbe: Sendable {
        var startedAt: ContinuousClock.Instant
        /// The foreign MAC that answered, nil when nobody did.
        var answeredBy: String?
    }

    /// How long such a probe stands in for the activation's own: longer than any takeover
    /// margin (interval plus ping timeout) after the loss, short enough that an address taken
    /// by someone else meanwhile is not missed for long.
    static let earlyProbeLifetime: Duration = .seconds(10)

    /// The early probe of `address`, used once: nil when there is none, or it is too old.
    func takeEarlyProbe(of address: String) -> EarlyProbe? {
        earlyProbes.withLock { probes in
            guard let probe = probes.removeValue(forKey: address), probe.startedAt.duration(to: .now) <= Self.earlyProbeLifetime
            else { return nil }
            return probe
        }
    }

    /// The holder of these addresses was lost; this server may start them after the takeover
    /// margin. The ARP probe changes nothing on the network (sender 0.0.0.0), so it runs now,
    /// while the margin passes, instead of after it: an activation within
    /// `earlyProbeLifetime` that finds "nobody answered" needs no probe of its own. Any
    /// answer (the old holder may answer until it fences) leaves the activation to probe as
    /// usual. IPv4 addresses not held here and not `force`d, all of one interface in one
    /// wait; IPv6 addresses are probed at activation.
    func prepareTakeover(_ settings: [FloatingIPSettings]) async {
        let candidates = settings.filter { !$0.force }.compactMap { setting in
            (try? parse(setting.address)).flatMap { $0.family == .v4 ? (ip: $0, settings: setting) : nil }
        }
        guard !candidates.isEmpty, let interfaces = try? await listInterfaces() else { return }
        let ownMACs = Set(interfaces.compactMap { $0.address?.lowercased() })
        var byInterface: [Int: (interface: NetInterface, addresses: [IPAddressWithPrefix], wait: Duration)] = [:]
        for candidate in candidates {
            guard let placed = try? Self.placement(of: candidate.ip, settings: candidate.settings, interfaces: interfaces),
                placed.holder == nil, placed.chosen.linkIsUp
            else { continue }
            let wait = options.tuned(by: candidate.settings).probeWait
            var entry = byInterface[placed.chosen.ifindex] ?? (placed.chosen, [], wait)
            entry.addresses.append(candidate.ip)
            entry.wait = max(entry.wait, wait)
            byInterface[placed.chosen.ifindex] = entry
        }
        await withTaskGroup(of: Void.self) { probes in
            for (interface, addresses, wait) in byInterface.values {
                guard let link = arpLink(interface, ownMACs: ownMACs) else { continue }
                probes.addTask {
                    let startedAt = ContinuousClock.now
                    guard let answers = try? await ARPSocket.probe(addresses: addresses.map(\.bytes), on: link, wait: wait) else {
                        return
                    }
                    self.earlyProbes.withLock { probes in
                        for address in addresses {
                            probes[address.address] = EarlyProbe(startedAt: startedAt, answeredBy: answers[address.bytes])
                        }
                    }
                    let busy = addresses.filter { answers[$0.bytes] != nil }.map(\.address)
                    let outcome = busy.isEmpty ? "no answer" : "answered for \(busy.joined(separator: ", ")) (probed again at activation)"
                    self.logger?.info("fip: probed \(addresses.count) address(es) on \(interface.ifname) ahead of a takeover: \(outcome)")
                }
            }
        }
    }

    // MARK: - Deactivation

    func deactivate(_ settings: FloatingIPSettings) async -> Result<Void, FloatingIPFailure> {
        do {
            try await deactivateOrThrow(settings)
            return .success(())
        } catch {
            return .failure(error)
        }
    }

    private func deactivateOrThrow(_ settings: FloatingIPSettings) async throws(FloatingIPFailure) {
        let ip = try parse(settings.address)
        let holders = try await listInterfaces().filter { $0.entry(for: ip) != nil }
        for holder in holders {
            guard let entry = holder.entry(for: ip) else { continue }
            // Gone in the meantime (EADDRNOTAVAIL) is fine: the check below decides.
            do {
                try await netlink.delete(ip, prefix: entry.prefixlen, interface: holder)
            } catch {
                throw FloatingIPFailure("cannot remove address \(ip.address): \(error.reason)")
            }
            logger?.info("fip: removed \(ip.address)/\(entry.prefixlen) from \(holder.ifname)")
        }
        if let still = try await listInterfaces().first(where: { $0.entry(for: ip) != nil }) {
            throw FloatingIPFailure("address \(ip.address) is still on interface \(still.ifname) after removal")
        }
    }

    // MARK: - Helpers

    /// The interface the address goes on, its prefix length, and the interface that holds
    /// it already (if any).
    static func placement(of ip: IPAddressWithPrefix, settings: FloatingIPSettings, interfaces: [NetInterface]) throws(FloatingIPFailure)
        -> (chosen: NetInterface, prefix: Int, holder: NetInterface?)
    {
        let holder = interfaces.first { $0.entry(for: ip) != nil }

        // The interface to use, and the prefix length.
        let chosen: NetInterface
        var prefix = ip.prefix
        if let holder {
            if let wanted = settings.interface, wanted != holder.ifname {
                throw FloatingIPFailure("address \(ip.address) is already on interface \(holder.ifname), not on \(wanted)")
            }
            chosen = holder
            prefix = holder.entry(for: ip)?.prefixlen ?? prefix
        } else {
            let candidates = interfaces.filter { settings.interface == nil ? !$0.isLoopback : $0.ifname == settings.interface }
            if let wanted = settings.interface, candidates.isEmpty {
                throw FloatingIPFailure("interface \(wanted) for address \(ip.address) does not exist")
            }
            let matching = candidates.compactMap { interface -> (NetInterface, Int)? in
                for entry in interface.addrInfo {
                    guard let local = try? IPAddressWithPrefix.parse(entry.local), local.family == ip.family,
                        local.unusableReason == nil || local.family == .v4,
                        ip.sameNetwork(as: local, prefix: entry.prefixlen)
                    else { continue }
                    return (interface, entry.prefixlen)
                }
                return nil
            }
            if let (interface, subnetPrefix) = matching.first {
                chosen = interface
                prefix = prefix ?? subnetPrefix
            } else if settings.interface != nil, let interface = candidates.first, prefix != nil {
                // An explicit interface with an explicit prefix: trust the configuration.
                chosen = interface
            } else if let wanted = settings.interface {
                throw FloatingIPFailure(
                    "no subnet of interface \(wanted) contains address \(ip.address); give the prefix length (e.g. \(ip.address)/24)")
            } else {
                throw FloatingIPFailure("no interface holds a subnet that contains address \(ip.address)")
            }
        }
        guard let prefix else { throw FloatingIPFailure("no prefix length known for address \(ip.address)") }
        return (chosen, prefix, holder)
    }

    private func parse(_ text: String) throws(FloatingIPFailure) -> IPAddressWithPrefix {
        try IPAddressWithPrefix.parseMovable(text, as: "a floating IP")
    }

    private func listInterfaces() async throws(FloatingIPFailure) -> [NetInterface] {
        try await netlink.interfacesForDrivers()
    }

    /// MAC addresses (lower case) in a tool's output: `[AA:BB:CC:DD:EE:FF]` or bare.
    static func macAddresses(in text: String) -> [String] {
        var found: [String] = []
        for token in text.split(whereSeparator: { " \n\t[]()".contains($0) }) {
            let parts = token.split(separator: ":")
            if parts.count == 6, parts.allSatisfy({ $0.count == 2 && UInt8($0, radix: 16) != nil }) {
                found.append(token.lowercased())
            }
        }
        return found
    }
}

struct FloatingIPFailure: Error, Sendable {
    var reason: String
    init(_ reason: String) { self.reason = reason }
}

extension IPAddressWithPrefix {
    /// An address that may move between servers (`fip`, `vip`): parsed, and not link-local,
    /// loopback, multicast or unspecified.
    static func parseMovable(_ text: String, as what: String) throws(FloatingIPFailure) -> IPAddressWithPrefix {
        let ip: IPAddressWithPrefix
        do { ip = try IPAddressWithPrefix.parse(text) } catch { throw FloatingIPFailure(error.reason) }
        if let reason = ip.unusableReason { throw FloatingIPFailure("\(reason) and cannot be \(what)") }
        return ip
    }
}

extension RTNetlinkClient {
    /// Every interface with its addresses (an rtnetlink dump, what `ip -j addr show` prints).
    func interfacesForDrivers() async throws(FloatingIPFailure) -> [NetInterface] {
        do {
            return try await interfaces()
        } catch {
            throw FloatingIPFailure("cannot list addresses: \(error.reason)")
        }
    }
}

extension FloatingIPDriver: ResourceDriver {
    convenience init(context: ResourceDriverContext) {
        self.init(logger: context.logger)
    }

    public func perform(_ run: ResourceRun, resource: ResourceConfig) async -> ResourceOutcome {
        guard case .fip(let settings) = resource.settings else { return .failure(reason: "\(resource.name) is not a fip resource") }
        return await perform(run, settings: settings)
    }

    public func prepareTakeover(resources: [ResourceConfig]) async {
        await prepareTakeover(
            resources.compactMap { resource in
                if case .fip(let settings) = resource.settings { return settings }
                return nil
            })
    }

    /// Removes the addresses (a stop without scripts; idempotent), all at once.
    public func fence(group: GroupConfig, resources: [ResourceConfig], server: ServerName) -> Task<Bool, Never>? {
        fenceByStopping(group: group, resources: resources, server: server, logger: logger)
    }
}
