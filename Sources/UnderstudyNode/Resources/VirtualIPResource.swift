import Foundation
import Logging
import Synchronization
import UnderstudyEngine
import UnderstudyModel

/// The `vip` resource: an address of its own network, for clients in other subnets. The
/// server holding it adds the address to a NIC and advertises a route to it with RIP, so
/// the routers send its traffic here; the next holder advertises it from there.
///
/// Start: unless `force`, fail when the address already answers a ping (another host holds
/// it; ICMP echo from the daemon's own socket, `ICMPEcho`); add it (rtnetlink, no `ip` process) (default /32, /128) to `interface` (default: the NIC of this server's first
/// heartbeat address); send the first advertisement, then one every `rip-interval`.
/// Stop (and fencing): stop advertising, withdraw the route (metric 16, twice), remove the
/// address and check that it is gone.
public final class VirtualIPDriver: Sendable {
    let netlink: RTNetlinkClient
    let logger: Logger?
    /// The address the default interface is found by (the server's first heartbeat address).
    let defaultInterfaceAddress: String?
    private let advertisers = Mutex<[String: Task<Void, Never>]>([:])

    public init(defaultInterfaceAddress: String?, commandTimeout: Duration = .seconds(5), logger: Logger? = nil) {
        self.defaultInterfaceAddress = defaultInterfaceAddress
        self.netlink = RTNetlinkClient(timeout: commandTimeout)
        self.logger = logger
    }

    public func perform(_ run: ResourceRun, settings: VirtualIPSettings) async -> ResourceOutcome {
        do {
            switch run.operation {
            case .start: try await activate(settings)
            case .stop: try await deactivate(settings)
            }
            return .success(asyncPID: nil)
        } catch {
            logger?.error("vip \(run.resource) \(run.operation.rawValue) failed: \(error.reason)")
            return .failure(reason: error.reason)
        }
    }

    /// Where a vip's advertisements go and how they are built.
    struct Plan: Sendable {
        var ip: IPAddressWithPrefix
        var prefix: Int
        var interface: NetInterface
        var version: VirtualIPSettings.RIPVersion
        var source: [UInt8]
        var destination: [UInt8]
        var metric: Int
        var interval: Duration

        func message(metric: Int) -> [UInt8] {
            switch version {
            case .v1: return RIPMessage.ipv4(version: 1, address: ip.bytes, prefix: prefix, metric: metric)
            case .v2: return RIPMessage.ipv4(version: 2, address: ip.bytes, prefix: prefix, metric: metric)
            case .ng: return RIPMessage.ipv6(address: ip.bytes, prefix: prefix, metric: metric)
            }
        }

        func send(metric: Int) throws(RIPSendError) {
            if version == .ng {
                try RIPSender.sendIPv6(message(metric: metric), to: destination, interface: interface.ifname)
            } else {
                try RIPSender.sendIPv4(message(metric: metric), from: source, to: destination, interface: interface.ifname)
            }
        }
    }

    // MARK: - Activation

    func activate(_ settings: VirtualIPSettings) async throws(FloatingIPFailure) {
        let plan = try await makePlan(settings)
        let held = plan.interface.entry(for: plan.ip) != nil
        if !held && !settings.force {
            if await PingProbe().anyReachable([plan.ip.address], timeout: .seconds(1)) {
                throw FloatingIPFailure(
                    "virtual IP \(plan.ip.address) already answers a ping: another host holds it (set force: true to start anyway)")
            }
        }
        if !held {
            do {
                try await netlink.add(plan.ip, prefix: plan.ip.maxPrefix, interface: plan.interface, noDAD: plan.ip.family == .v6)
            } catch {
                throw FloatingIPFailure("cannot add virtual IP \(plan.ip.address): \(error.reason)")
            }
            logger?.info("vip: added \(plan.ip.address) on \(plan.interface.ifname)")
        }
        do {
            try plan.send(metric: plan.metric)
        } catch {
            throw FloatingIPFailure("cannot advertise virtual IP \(plan.ip.address) on \(plan.interface.ifname): \(error)")
        }
        startAdvertising(plan, key: settings.address)
    }

    func startAdvertising(_ plan: Plan, key: String) {
        let logger = logger
        let task = Task {
            var failing = false
            while !Task.isCancelled {
                try? await Task.sleep(for: plan.interval)
                if Task.isCancelled { return }
                do {
                    try plan.send(metric: plan.metric)
                    if failing { logger?.info("vip: advertising \(plan.ip.address) works again") }
                    failing = false
                } catch {
                    if !failing { logger?.error("vip: cannot advertise \(plan.ip.address): \(error)") }
                    failing = true
                }
            }
        }
        let previous = advertisers.withLock { table in
            let old = table[key]
            table[key] = task
            return old
        }
        previous?.cancel()
    }

    // MARK: - Deactivation

    func deactivate(_ settings: VirtualIPSettings) async throws(FloatingIPFailure) {
        let advertiser = advertisers.withLock { $0.removeValue(forKey: settings.address) }
        advertiser?.cancel()
        let ip = try parse(settings.address)
        // Withdraw the route so routers drop it now rather than after their timeout.
        if let plan = try? await makePlan(settings) {
            for attempt in 0..<2 {
                if attempt > 0 { try? await Task.sleep(for: .milliseconds(50)) }
                do {
                    try plan.send(metric: RIPMessage.unreachable)
                } catch {
                    logger?.warning("vip: cannot withdraw \(ip.address): \(error)")
                }
            }
        }
        let interfaces = try await listInterfaces()
        for holder in interfaces {
            guard let entry = holder.entry(for: ip) else { continue }
            // Gone in the meantime (EADDRNOTAVAIL) is fine: the check below decides.
            do {
                try await netlink.delete(ip, prefix: entry.prefixlen, interface: holder)
            } catch {
                throw FloatingIPFailure("cannot remove virtual IP \(ip.address): \(error.reason)")
            }
            logger?.info("vip: removed \(ip.address) from \(holder.ifname)")
        }
        if try await listInterfaces().contains(where: { $0.entry(for: ip) != nil }) {
            throw FloatingIPFailure("virtual IP \(ip.address) is still present after removal")
        }
    }

    // MARK: - Helpers

    func makePlan(_ settings: VirtualIPSettings) async throws(FloatingIPFailure) -> Plan {
        let ip = try parse(settings.address)
        let interfaces = try await listInterfaces()
        let interface: NetInterface
        if let wanted = settings.interface {
            guard let found = interfaces.first(where: { $0.ifname == wanted }) else {
                throw FloatingIPFailure("interface \(wanted) for virtual IP \(ip.address) does not exist")
            }
            interface = found
        } else {
            guard let anchor = defaultInterfaceAddress.flatMap({ try? IPAddressWithPrefix.parse($0) }),
                let found = interfaces.first(where: { $0.entry(for: anchor) != nil })
            else {
                throw FloatingIPFailure(
                    "no interface holds this server's heartbeat address \(defaultInterfaceAddress ?? "?"); set interface: for virtual IP \(ip.address)"
                )
            }
            interface = found
        }
        let version = settings.ripVersion ?? (ip.family == .v6 ? .ng : .v2)
        // The sender: the interface's first address of the family (RIPng uses the link-local
        // address the kernel picks).
        let family = ip.family == .v6 ? "inet6" : "inet"
        let own = interface.addrInfo.first {
            $0.family == family && (try? IPAddressWithPrefix.parse($0.local)).map { $0.bytes != ip.bytes } ?? false
        }
        guard let own, let ownIP = try? IPAddressWithPrefix.parse(own.local) else {
            throw FloatingIPFailure("interface \(interface.ifname) has no \(ip.family == .v6 ? "IPv6" : "IPv4") address to send RIP from")
        }
        let destination: [UInt8]
        if let text = settings.ripDestination {
            guard let parsed = try? IPAddressWithPrefix.parse(text) else {
                throw FloatingIPFailure("rip-destination \(text) is not an IP address")
            }
            destination = parsed.bytes
        } else {
            switch version {
            case .v2: destination = [224, 0, 0, 9]
            case .ng: destination = [0xff, 0x02] + [UInt8](repeating: 0, count: 13) + [9]
            case .v1:
                // The subnet's broadcast address.
                let mask = RIPMessage.mask(prefix: own.prefixlen, bytes: 4)
                destination = zip(ownIP.bytes, mask).map { $0 | ~$1 }
            }
        }
        return Plan(
            ip: ip, prefix: ip.prefix ?? ip.maxPrefix, interface: interface, version: version, source: ownIP.bytes,
            destination: destination, metric: settings.ripMetric, interval: settings.ripInterval)
    }

    private func parse(_ text: String) throws(FloatingIPFailure) -> IPAddressWithPrefix {
        try IPAddressWithPrefix.parseMovable(text, as: "a virtual IP")
    }

    private func listInterfaces() async throws(FloatingIPFailure) -> [NetInterface] {
        try await netlink.interfacesForDrivers()
    }
}

extension VirtualIPDriver: ResourceDriver {
    convenience init(context: ResourceDriverContext) {
        self.init(defaultInterfaceAddress: context.interfaceAddress, logger: context.logger)
    }

    public func perform(_ run: ResourceRun, resource: ResourceConfig) async -> ResourceOutcome {
        guard case .vip(let settings) = resource.settings else { return .failure(reason: "\(resource.name) is not a vip resource") }
        return await perform(run, settings: settings)
    }

    /// Removes the addresses and stops advertising their routes (idempotent), all at once.
    public func fence(group: GroupConfig, resources: [ResourceConfig], server: ServerName) -> Task<Bool, Never>? {
        fenceByStopping(group: group, resources: resources, server: server, logger: logger)
    }
}
