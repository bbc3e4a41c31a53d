import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// keepalived (VRRP) in the lab, measured by the failover benchmark's own loop
/// (`FailoverBenchmark.measure`): the same namespaces and bridge, the same responders on every
/// server, the same prober in the client namespace, the same faults. Only the thing that moves
/// the address differs: one `vrrp_instance` per group with the group's address as its VIP.
///
/// keepalived runs in each server namespace as `keepalived --dont-fork --vrrp --log-console
/// --log-detail --no-syslog --dont-respawn -f <folder>/keepalived-nodeI.conf` with its pid
/// files in the lab's folder (several instances share one host's /run). Every process it
/// starts lives inside the lab's namespaces, so `Lab.down` removes it by pid.
public struct KeepalivedBenchmark {
    /// VRRP adverts to a multicast group (224.0.0.18, keepalived's default) or to each peer.
    public enum Transport: String, CaseIterable, Codable, Sendable {
        case multicast, unicast
    }

    public struct Settings: Codable, Sendable, Equatable {
        /// `advert_int` in seconds (VRRPv3 takes hundredths: 0.01 to 40.95).
        public var advertSeconds: Double
        public var transport: Transport
        /// VRRP instances, one VIP each (10.200.X.50, .51, …): the groups' counterpart.
        public var instances: Int

        public init(advertSeconds: Double, transport: Transport = .multicast, instances: Int = 1) {
            self.advertSeconds = advertSeconds
            self.transport = transport
            self.instances = instances
        }

        public func validate() throws {
            guard advertSeconds >= 0.01 && advertSeconds <= 40.95 else {
                throw LabError("--advert must be 0.01 to 40.95 seconds (VRRPv3), not \(advertSeconds)")
            }
            let hundredths = (advertSeconds * 100).rounded()
            guard abs(hundredths - advertSeconds * 100) < 1e-6 else {
                throw LabError("--advert must be a multiple of 0.01 s (VRRPv3 counts hundredths), not \(advertSeconds)")
            }
            guard (1...FailoverBenchmark.maxGroups).contains(instances) else {
                throw LabError("1 to \(FailoverBenchmark.maxGroups) VRRP instances, not \(instances)")
            }
        }

        /// `advert_int` as keepalived reads it: "0.1", "0.01", "1".
        public var advertText: String {
            let hundredths = Int((advertSeconds * 100).rounded())
            if hundredths % 100 == 0 { return String(hundredths / 100) }
            return String(format: "%.2f", Double(hundredths) / 100).replacingOccurrences(of: #"0+$"#, with: "", options: .regularExpression)
        }
    }

    public let lab: Lab
    public let settings: Settings
    /// The prober, responders and measuring loop.
    public var failover: FailoverBenchmark
    var log: (String) -> Void

    public init(lab: Lab, settings: Settings, log: @escaping (String) -> Void = { _ in }) {
        self.lab = lab
        self.settings = settings
        self.failover = FailoverBenchmark(lab: lab, binary: lab.binary, log: log)
        self.log = log
    }

    var spec: LabSpec { lab.spec }

    /// Why keepalived cannot run here, or nil.
    public static var unavailableReason: String? {
        LabShell.which("keepalived") == nil ? "keepalived is not installed (apt-get install keepalived)" : nil
    }

    public func configPath(of server: String) -> String { spec.folder + "/keepalived-\(server).conf" }
    public func logPath(of server: String) -> String { spec.folder + "/keepalived-\(server).log" }
    func pidPath(of server: String) -> String { spec.folder + "/keepalived-\(server).pid" }
    func vrrpPidPath(of server: String) -> String { spec.folder + "/keepalived-\(server)-vrrp.pid" }

    /// The configuration of `server`: VRRPv3, every instance BACKUP with `nopreempt` (the
    /// address stays where it is after a failover, as Understudy's groups do without failback),
    /// priorities by server order (node1 highest), the VIPs on `eth0`.
    public static func configuration(spec: LabSpec, server: String, settings: Settings) -> String {
        let servers = spec.serverNames
        let position = servers.firstIndex(of: server) ?? 0
        var text = """
            # keepalived for the Understudy lab (prefix \(spec.prefix)), server \(server).
            # Written by `understudy lab failover-bench --competitor keepalived` / `lab footprint`.
            global_defs {
                router_id \(server)
                vrrp_version 3
            }

            """
        for instance in 1...max(settings.instances, 1) {
            var transport = ""
            if settings.transport == .unicast {
                let peers = servers.filter { $0 != server }.map { "        \(spec.publicAddress(of: $0))" }.joined(separator: "\n")
                transport = """
                        unicast_src_ip \(spec.publicAddress(of: server))
                        unicast_peer {
                    \(peers)
                        }

                    """
            }
            text += """
                vrrp_instance web\(instance) {
                    state BACKUP
                    nopreempt
                    interface eth0
                    virtual_router_id \(50 + instance)
                    priority \(200 - position)
                    advert_int \(settings.advertText)
                \(transport)    virtual_ipaddress {
                        \(FailoverBenchmark.floatingAddress(spec: spec, group: instance))/24 dev eth0
                    }
                }

                """
        }
        return text
    }

    /// Writes every server's configuration into the lab's folder.
    public func writeConfigurations() throws {
        for server in spec.serverNames {
            try Self.configuration(spec: spec, server: server, settings: settings).write(
                toFile: configPath(of: server), atomically: true, encoding: .utf8)
        }
    }

    /// Starts keepalived in the namespace of `server` (its configuration written before); the
    /// parent's pid is the `ip netns exec` child's (it execs).
    @discardableResult
    public func start(_ server: String) throws -> LabProcess {
        guard let keepalived = LabShell.which("keepalived"), let ip = LabShell.which("ip") else {
            throw LabError(Self.unavailableReason ?? "ip is not installed")
        }
        let log = logPath(of: server)
        if !FileManager.default.fileExists(atPath: log) { _ = FileManager.default.createFile(atPath: log, contents: nil) }
        guard let handle = FileHandle(forWritingAtPath: log) else { throw LabError("cannot open \(log)") }
        defer { try? handle.close() }
        handle.seekToEndOfFile()
        for path in [pidPath(of: server), vrrpPidPath(of: server)] { try? FileManager.default.removeItem(atPath: path) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: ip)
        process.arguments = [
            "netns", "exec", spec.namespace(of: server), keepalived, "--dont-fork", "--vrrp", "--log-console", "--log-detail",
            "--no-syslog", "--dont-respawn", "--use-file", configPath(of: server), "--pid", pidPath(of: server), "--vrrp_pid",
            vrrpPidPath(of: server),
        ]
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        guard let identity = LabProcess(pid: process.processIdentifier) else {
            throw LabError("keepalived on \(server) exited at once; see \(log)")
        }
        return identity
    }

    /// Every keepalived process in the namespace of `server` (parent and VRRP child), found
    /// through `ip netns pids`.
    public func processes(of server: String) -> [LabProcess] {
        let pids = (try? LabShell.run(["ip", "netns", "pids", spec.namespace(of: server)]))?.output ?? ""
        return pids.split(whereSeparator: \.isWhitespace).compactMap { Int32($0) }.filter { pid in
            (try? String(contentsOfFile: "/proc/\(pid)/comm", encoding: .utf8))?.hasPrefix("keepalived") == true
        }.compactMap { LabProcess(pid: $0) }
    }

    /// The parent keepalived process of `server` (the one whose parent is not keepalived).
    public func parent(of server: String) -> LabProcess? {
        let all = processes(of: server)
        let pids = Set(all.map(\.pid))
        return all.first { process in Footprint.ticks(of: process.pid).map { !pids.contains($0.parent) } ?? false }
    }

    /// kill -9 of keepalived on `server`: the VRRP child first (it holds the VIPs; killed
    /// first it cannot be told by its parent to release them), then the parent; returns when
    /// both are gone. The VIP stays on the server's interface, as after a crash: the client
    /// follows the new master's gratuitous ARP.
    public func kill9(_ server: String) throws {
        let all = processes(of: server)
        guard !all.isEmpty else { throw LabError("keepalived does not run on \(server)") }
        let parentPid = parent(of: server)?.pid
        for process in all.sorted(by: { ($0.pid == parentPid ? 1 : 0) < ($1.pid == parentPid ? 1 : 0) }) { process.signal(SIGKILL) }
        let deadline = ContinuousClock.now + .seconds(10)
        while all.contains(where: \.isAlive) && ContinuousClock.now < deadline { usleep(10_000) }
    }

    /// The servers holding the VIP of `instance` (1-based) on `eth0` now.
    public func holders(instance: Int = 1) -> [String] {
        let address = FailoverBenchmark.floatingAddress(spec: spec, group: instance)
        return spec.serverNames.filter { server in
            let output =
                (try? LabShell.run(["ip", "-n", spec.namespace(of: server), "-4", "-o", "addr", "show", "dev", "eth0"]))?.output ?? ""
            return output.contains(" \(address)/")
        }
    }

    /// Starts keepalived everywhere and waits until every VIP has exactly one holder.
    public func startAll(timeout: Duration = .seconds(30)) async throws {
        try writeConfigurations()
        for server in spec.serverNames { try start(server) }
        try await waitSettled(timeout: timeout)
    }

    /// Waits until keepalived runs on every server and each VIP is on exactly one of them.
    public func waitSettled(timeout: Duration = .seconds(30)) async throws {
        let settled = await labPoll(upTo: timeout, every: .milliseconds(100)) {
            spec.serverNames.allSatisfy { processes(of: $0).count >= 2 }
                && (1...settings.instances).allSatisfy { holders(instance: $0).count == 1 }
        }
        guard settled else {
            let state = (1...settings.instances).map { "web\($0) on [\(holders(instance: $0).joined(separator: ", "))]" }
            throw LabError(
                "keepalived did not settle within \(timeout): \(state.joined(separator: "; ")); see \(spec.folder)/keepalived-*.log")
        }
    }

    /// `runs` failovers of keepalived caused by `fault`: link down of the MASTER's bridge port
    /// (keepalived sees the carrier go, enters FAULT and drops the VIP; the BACKUP takes over
    /// after 3 adverts plus the skew), or kill -9 of the MASTER's keepalived. Restoring: link
    /// up; after a kill the VIP left on the old master is removed (what its reboot would do)
    /// and keepalived started again; then every VIP must have one holder.
    public func run(_ fault: FailoverBenchmark.Fault, runs: Int) async throws -> FailoverBenchmark.Series {
        try await failover.measure(
            fault, runs: runs,
            inject: { holder in
                switch fault {
                case .kill: try kill9(holder)
                case .linkDown: try lab.setLink(holder, up: false)
                }
            },
            restore: { holder in
                try lab.setLink(holder, up: true)
                if processes(of: holder).isEmpty {
                    for instance in 1...settings.instances {
                        let address = FailoverBenchmark.floatingAddress(spec: spec, group: instance)
                        _ = try? LabShell.run(["ip", "-n", spec.namespace(of: holder), "addr", "del", address + "/24", "dev", "eth0"])
                    }
                    try start(holder)
                }
                try await waitSettled()
            })
    }
}
