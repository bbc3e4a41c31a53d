import Foundation
import UnderstudyEngine
import UnderstudyModel
import UnderstudyNode

#if canImport(Glibc)
    import Glibc
#endif

/// A network-namespace lab: one namespace per server (`<prefix>-node<i>`), one for the client
/// (`<prefix>-client`) and one holding the bridges (`<prefix>-net`: `br0` public LAN, `br1`
/// interconnect), joined by veth pairs; an `understudy daemon` in each server namespace; and
/// fault injection (kill -9, SIGSTOP/SIGCONT, link down/up, nftables partitions, tc netem).
///
/// Everything lives inside the lab's own namespaces and folder, so `down` (also run by
/// `deinit` unless `keepRunning` is set, and on a failed `up`) removes it all: it kills every
/// process inside the namespaces by pid (`ip netns pids`), deletes the namespaces (which
/// takes the veths, bridges, nftables rules and qdiscs with them) and removes the folder.
/// `Lab.destroy(prefix:)` does the same for the leftovers of a crashed run.
public final class Lab: @unchecked Sendable {
    public let spec: LabSpec
    public let binary: String
    /// When true, `deinit` leaves the lab running (the `understudy lab up` command).
    public var keepRunning = false

    private let lock = NSLock()
    private var daemons: [String: LabProcess] = [:]
    /// Per server, its loop device of the shared disk (`spec.sharedDisk`).
    public private(set) var diskDevices: [String: String] = [:]
    private var processes: [String: Process] = [:]
    private var isDown = false
    private var netemProbe: Bool?
    private var witness: LabProcess?

    /// What `lab.json` holds, for `attach` and `destroy` from another process.
    struct State: Codable {
        var spec: LabSpec
        var binary: String
        var daemons: [String: LabProcess]
        /// Per server, its loop device of the shared disk.
        var diskDevices: [String: String]?
    }

    private init(spec: LabSpec, binary: String, daemons: [String: LabProcess] = [:]) {
        self.spec = spec
        self.binary = binary
        self.daemons = daemons
    }

    deinit { if !keepRunning { down() } }

    /// Whether this process may build labs (root), or why not.
    public static var unavailableReason: String? {
        if geteuid() != 0 { return "the lab needs root (network namespaces, veth, bridges)" }
        if LabShell.which("ip") == nil { return "iproute2 (ip) is not installed" }
        return nil
    }

    // MARK: - Up and down

    /// Builds the lab of `spec` and, when `startDaemons`, starts a daemon in every server
    /// namespace and waits (at most `timeout`) until each answers on its local socket.
    /// On any failure everything already created is removed before the error is thrown.
    public static func up(
        _ spec: LabSpec, binary: String, startDaemons: Bool = true, timeout: Duration = .seconds(20)
    ) async throws -> Lab {
        try spec.validate()
        if let reason = unavailableReason { throw LabError(reason) }
        guard FileManager.default.isExecutableFile(atPath: binary) else { throw LabError("\(binary) is not an executable") }
        let existing = try existingNamespaces(prefix: spec.prefix)
        if !existing.isEmpty || FileManager.default.fileExists(atPath: spec.folder) {
            throw LabError(
                "a lab with prefix '\(spec.prefix)' already exists (\((existing + [spec.folder]).joined(separator: ", "))); "
                    + "remove it with `understudy lab down --prefix \(spec.prefix)`")
        }
        let lab = Lab(spec: spec, binary: binary)
        do {
            try lab.writeFiles()
            try lab.buildNetwork()
            if spec.sharedDisk == true { try lab.buildSharedDisk() }
            if startDaemons {
                for server in spec.serverNames { try lab.startDaemon(server) }
                for server in spec.serverNames { try await lab.waitForSocket(server, timeout: timeout) }
            }
        } catch {
            lab.down()
            throw error
        }
        return lab
    }

    /// The lab of `prefix` built by another process (from its `lab.json`).
    public static func attach(prefix: String, folder: String? = nil) throws -> Lab {
        let path = (folder ?? LabSpec.defaultFolder(prefix: prefix)) + "/lab.json"
        guard let data = FileManager.default.contents(atPath: path) else {
            throw LabError("no lab with prefix '\(prefix)' (\(path) is missing)")
        }
        let state = try JSONDecoder().decode(State.self, from: data)
        let lab = Lab(spec: state.spec, binary: state.binary, daemons: state.daemons)
        lab.diskDevices = state.diskDevices ?? [:]
        lab.keepRunning = true
        return lab
    }

    /// Starts every server's daemon; in labs of more than 16 servers 0.3 s apart. Every server
    /// of a lab shares this machine's cores: 32 daemons and their keepers starting in the
    /// same instant on two cores starve each other for over a second (each stalls, loses its
    /// lease and starts over), which no real cluster of 32 machines sees.
    public func startDaemonsStaggered() async throws {
        for server in spec.serverNames {
            try startDaemon(server)
            if spec.serverNames.count > 16 { try await Task.sleep(for: .milliseconds(300)) }
        }
    }

    /// Removes everything of this lab. Safe to call more than once.
    public func down() {
        let first = lock.withLock { () -> Bool in
            defer { isDown = true }
            return !isDown
        }
        guard first else { return }
        let known = lock.withLock { Array(daemons.values) }
        _ = Lab.destroy(prefix: spec.prefix, folder: spec.folder, known: known)
        lock.withLock { processes = [:] }
    }

    /// Removes a lab of `prefix`, running or left by a crashed run: kills its recorded daemons
    /// and every process inside its namespaces (by pid), deletes the namespaces, removes the
    /// folder. Returns what it removed.
    @discardableResult
    public static func destroy(prefix: String, folder: String? = nil) -> [String] {
        destroy(prefix: prefix, folder: folder ?? LabSpec.defaultFolder(prefix: prefix), known: [])
    }

    private static func destroy(prefix: String, folder: String, known: [LabProcess]) -> [String] {
        var removed: [String] = []
        var victims = Set(known)
        var diskDevices: [String] = []
        if let data = FileManager.default.contents(atPath: folder + "/lab.json"),
            let state = try? JSONDecoder().decode(State.self, from: data)
        {
            victims.formUnion(state.daemons.values)
            diskDevices = Array((state.diskDevices ?? [:]).values)
        }
        let namespaces = (try? existingNamespaces(prefix: prefix)) ?? []
        for namespace in namespaces {
            let pids = (try? LabShell.run(["ip", "netns", "pids", namespace]))?.output ?? ""
            victims.formUnion(pids.split(whereSeparator: \.isWhitespace).compactMap { Int32($0) }.compactMap { LabProcess(pid: $0) })
        }
        for victim in victims where victim.signal(SIGKILL) { removed.append("process \(victim.pid)") }
        // Bounded: a killed process is gone within milliseconds; 5 s covers a loaded machine.
        let deadline = ContinuousClock.now + .seconds(5)
        while victims.contains(where: \.isAlive) && ContinuousClock.now < deadline { usleep(20_000) }
        for namespace in namespaces {
            if (try? LabShell.run(["ip", "netns", "delete", namespace]))?.succeeded == true { removed.append("namespace \(namespace)") }
        }
        // The loop devices of the shared disk: free once every namespace holding a mount is gone.
        for device in Set(diskDevices) {
            if (try? LabShell.run(["losetup", "-d", device]))?.succeeded == true { removed.append("loop device \(device)") }
        }
        if FileManager.default.fileExists(atPath: folder), ProcessInfo.processInfo.environment["UNDERSTUDY_KEEP_LAB_FOLDER"] == nil {
            try? FileManager.default.removeItem(atPath: folder)
            removed.append("folder \(folder)")
        }
        return removed
    }

    /// The namespaces named like a lab of `prefix`.
    public static func existingNamespaces(prefix: String) throws -> [String] {
        let output = try LabShell.check(["ip", "netns", "list"])
        return output.split(separator: "\n").compactMap { line in
            line.split(separator: " ").first.map(String.init)
        }.filter { LabSpec.isLabNamespace($0, prefix: prefix) }
    }

    // MARK: - Building

    private func writeFiles() throws {
        let manager = FileManager.default
        try manager.createDirectory(atPath: spec.folder + "/scripts", withIntermediateDirectories: true)
        _ = try ClusterKey.generate(to: spec.keyPath)
        for action in ["start", "stop"] {
            try write(spec.script(action: action), to: "\(spec.folder)/scripts/\(action).sh", mode: 0o755)
        }
        try write(spec.yaml(), to: spec.configPath)
        for server in spec.serverNames {
            try manager.createDirectory(atPath: spec.stateDirectory(of: server), withIntermediateDirectories: true)
        }
        try saveState()
    }

    private func write(_ text: String, to path: String, mode: Int = 0o644) throws {
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: path)
    }

    private func saveState() throws {
        let state = lock.withLock { State(spec: spec, binary: binary, daemons: daemons, diskDevices: diskDevices) }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(state).write(to: URL(fileURLWithPath: spec.statePath), options: .atomic)
    }

    private func buildNetwork() throws {
        let net = spec.bridgeNamespace
        for namespace in spec.namespaces {
            try LabShell.check(["ip", "netns", "add", namespace])
            try LabShell.check(["ip", "-n", namespace, "link", "set", "lo", "up"])
        }
        var bridges = [("br0", LabLink.publicLAN)]
        if spec.secondLink { bridges.append(("br1", .interconnect)) }
        for (bridge, _) in bridges {
            try LabShell.check(["ip", "-n", net, "link", "add", bridge, "type", "bridge"])
            try LabShell.check(["ip", "-n", net, "link", "set", bridge, "up"])
        }
        for member in spec.serverNames + [LabSpec.client] {
            for (bridge, link) in bridges {
                if link == .interconnect && member == LabSpec.client { continue }
                let (inside, port) = try spec.interfaces(of: member, link: link)
                let namespace = spec.namespace(of: member)
                let address = link == .publicLAN ? spec.publicAddress(of: member) : (spec.interconnectAddress(of: member) ?? "")
                try LabShell.check(["ip", "-n", net, "link", "add", port, "type", "veth", "peer", "name", inside, "netns", namespace])
                try LabShell.check(["ip", "-n", net, "link", "set", port, "master", bridge, "up"])
                try LabShell.check(["ip", "-n", namespace, "addr", "add", address + "/24", "dev", inside])
                try LabShell.check(["ip", "-n", namespace, "link", "set", inside, "up"])
            }
        }
    }

    // MARK: - Shared disk

    /// The image, a loop device per server over it, ext4 with `mmp` (1 s update interval) made
    /// through the first one, the common device path and the mount point.
    private func buildSharedDisk() throws {
        FileManager.default.createFile(atPath: spec.sharedDiskImage, contents: nil)
        try FileHandle(forWritingTo: URL(fileURLWithPath: spec.sharedDiskImage)).truncate(atOffset: 64 << 20)
        for server in spec.serverNames {
            let device = try LabShell.check(["losetup", "--find", "--show", spec.sharedDiskImage]).trimmingCharacters(
                in: .whitespacesAndNewlines)
            lock.withLock { diskDevices[server] = device }
            try saveState()
        }
        guard let first = lock.withLock({ diskDevices[spec.serverNames[0]] }) else { throw LabError("no loop device") }
        try LabShell.check(["mkfs.ext4", "-q", "-O", "mmp", "-E", "mmp_update_interval=1", first], timeout: .seconds(60))
        FileManager.default.createFile(atPath: spec.sharedDiskPath, contents: nil)
        try FileManager.default.createDirectory(atPath: spec.sharedMountPoint, withIntermediateDirectories: true)
    }

    /// Kills every daemon and every process inside the lab's namespaces (by pid), as `down`
    /// does, but keeps the namespaces, devices and folder: what the servers left can be read
    /// afterwards (their mount namespaces, and so their mounts, are gone).
    public func killEverything() {
        let known = lock.withLock { Array(daemons.values) }
        var victims = Set(known)
        for namespace in (try? Lab.existingNamespaces(prefix: spec.prefix)) ?? [] {
            let pids = (try? LabShell.run(["ip", "netns", "pids", namespace]))?.output ?? ""
            victims.formUnion(pids.split(whereSeparator: \.isWhitespace).compactMap { Int32($0) }.compactMap { LabProcess(pid: $0) })
        }
        for victim in victims { _ = victim.signal(SIGKILL) }
        let deadline = ContinuousClock.now + .seconds(5)
        while victims.contains(where: \.isAlive) && ContinuousClock.now < deadline { usleep(20_000) }
    }

    // MARK: - Daemons

    /// Starts (or restarts after a kill) the daemon of `server` inside its namespace:
    /// `ip netns exec NS understudy daemon --config … --server … --state-dir …`, output
    /// appended to `<server>.log`.
    public func startDaemon(_ server: String) throws {
        _ = try spec.index(of: server)
        // The command is being interrupted and its lab removed (LabInterruption): a daemon
        // started now could escape the removal.
        guard !LabInterruption.isInterrupted else { throw LabError("interrupted: not starting the daemon of \(server)") }
        if let running = pid(of: server), running.isAlive { throw LabError("the daemon of \(server) already runs (pid \(running.pid))") }
        let log = spec.logPath(of: server)
        if !FileManager.default.fileExists(atPath: log) { _ = FileManager.default.createFile(atPath: log, contents: nil) }
        guard let handle = FileHandle(forWritingAtPath: log), let ip = LabShell.which("ip") else { throw LabError("cannot open \(log)") }
        defer { try? handle.close() }
        handle.seekToEndOfFile()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: ip)
        // `ip netns exec` execs the command after entering the namespace: the pid is the daemon's.
        let daemon = [
            binary, "daemon", "--config", spec.configPath, "--server", server, "--state-dir", spec.stateDirectory(of: server),
        ]
        if let device = lock.withLock({ diskDevices[server] }) {
            // `ip netns exec` gives the daemon a mount namespace of its own; inside it the
            // server's loop device is bind-mounted on the common path (sh execs: same pid).
            let path = spec.sharedDiskPath
            process.arguments =
                ["netns", "exec", spec.namespace(of: server), "/bin/sh", "-c", "mount --bind '\(device)' '\(path)' && exec \"$0\" \"$@\""]
                + daemon
        } else {
            process.arguments = ["netns", "exec", spec.namespace(of: server)] + daemon
        }
        var environment = ProcessInfo.processInfo.environment
        environment["PATH"] = LabShell.searchPath.joined(separator: ":")
        process.environment = environment
        process.currentDirectoryURL = URL(fileURLWithPath: spec.folder)
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        guard let identity = LabProcess(pid: process.processIdentifier) else {
            throw LabError("the daemon of \(server) exited at once; see \(log)")
        }
        lock.withLock {
            daemons[server] = identity
            processes[server] = process
        }
        try saveState()
    }

    /// Starts (or restarts) `understudy witness` on the client, listening on
    /// `LabSpec.witnessPort` for this lab's cluster; output appended to `witness.log`. It
    /// runs inside the client's namespace, so `down` kills it with everything there.
    public func startWitness() throws {
        if let running = lock.withLock({ witness }), running.isAlive { throw LabError("the witness already runs (pid \(running.pid))") }
        let log = spec.witnessLogPath
        if !FileManager.default.fileExists(atPath: log) { _ = FileManager.default.createFile(atPath: log, contents: nil) }
        guard let handle = FileHandle(forWritingAtPath: log), let ip = LabShell.which("ip") else { throw LabError("cannot open \(log)") }
        defer { try? handle.close() }
        handle.seekToEndOfFile()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: ip)
        process.arguments = [
            "netns", "exec", spec.clientNamespace, binary, "witness", "--listen", "0.0.0.0:\(LabSpec.witnessPort)", "--cluster",
            "lab\(spec.prefix)=\(spec.keyPath)",
        ]
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        guard let identity = LabProcess(pid: process.processIdentifier) else { throw LabError("the witness exited at once; see \(log)") }
        lock.withLock {
            witness = identity
            processes["witness"] = process
        }
    }

    /// Kills the witness (SIGKILL: it keeps nothing on disk anyway); returns when it is gone.
    public func stopWitness() throws {
        guard let running = lock.withLock({ witness }), running.signal(SIGKILL) else { throw LabError("the witness does not run") }
        let deadline = ContinuousClock.now + .seconds(5)
        while running.isAlive && ContinuousClock.now < deadline { usleep(20_000) }
        lock.withLock { processes["witness"]?.waitUntilExit() }
    }

    /// The daemon of `server` as last started (it may have died since).
    public func pid(of server: String) -> LabProcess? { lock.withLock { daemons[server] } }

    /// Waits (bounded) until the daemon of `server` answers on its local socket.
    public func waitForSocket(_ server: String, timeout: Duration = .seconds(20)) async throws {
        let answered = await labPoll(upTo: timeout) { await status(on: server) != nil }
        guard answered else { throw LabError("the daemon of \(server) did not answer within \(timeout); see \(spec.logPath(of: server))") }
    }

    /// kill -9 of the daemon of `server` (what its scripts left running stays, as on a real
    /// machine; `down` kills it); back once the process is gone (a zombie at most), so a
    /// `startDaemon` right after does not find the old one still exiting.
    public func kill9(_ server: String) throws {
        try send(SIGKILL, to: server)
        let deadline = ContinuousClock.now + .seconds(10)
        while let process = pid(of: server), process.isAlive, ContinuousClock.now < deadline { usleep(10_000) }
    }

    /// Freezes the daemon of `server` (SIGSTOP).
    public func freeze(_ server: String) throws { try send(SIGSTOP, to: server) }

    /// Resumes a frozen daemon (SIGCONT).
    public func resume(_ server: String) throws { try send(SIGCONT, to: server) }

    private func send(_ signal: Int32, to server: String) throws {
        guard let daemon = pid(of: server), daemon.signal(signal) else { throw LabError("the daemon of \(server) does not run") }
    }

    // MARK: - Network faults

    /// Runs `arguments` inside the namespace of `member` (a server or `client`).
    @discardableResult
    public func exec(in member: String, _ arguments: [String], timeout: Duration = .seconds(10)) throws -> LabCommandOutcome {
        _ = try spec.index(of: member)
        return try LabShell.run(["ip", "netns", "exec", spec.namespace(of: member)] + arguments, timeout: timeout)
    }

    /// One ICMP echo from `member` to `address`, waiting at most `seconds`; whether it answered.
    public func ping(from member: String, to address: String, seconds: Int = 1) throws -> Bool {
        try exec(in: member, ["ping", "-c", "1", "-W", String(seconds), "-n", "-q", address], timeout: .seconds(seconds + 5)).succeeded
    }

    /// Takes the link of `member` down or up, as a pulled cable: its bridge port goes down,
    /// so the member's interface loses carrier but keeps its address.
    public func setLink(_ member: String, _ link: LabLink = .publicLAN, up: Bool) throws {
        let (_, port) = try spec.interfaces(of: member, link: link)
        try LabShell.check(["ip", "-n", spec.bridgeNamespace, "link", "set", port, up ? "up" : "down"])
    }

    static let table = "understudy_lab"

    /// Drops every packet from the members in `from` to the members in `to` (on all links),
    /// and, unless `oneWay`, from `to` to `from` as well: nftables rules (iptables when nft is
    /// missing) on the input hook inside the receiving namespaces.
    public func partition(_ from: [String], _ to: [String], oneWay: Bool = false) throws {
        try block(from: from, to: to)
        if !oneWay { try block(from: to, to: from) }
    }

    private func block(from senders: [String], to receivers: [String]) throws {
        let sources = try senders.flatMap { member -> [String] in
            _ = try spec.index(of: member)
            return spec.addresses(of: member)
        }
        guard !sources.isEmpty else { return }
        let useNft = LabShell.which("nft") != nil
        if !useNft && LabShell.which("iptables") == nil { throw LabError("neither nft (nftables) nor iptables is installed") }
        for receiver in receivers {
            if useNft {
                try exec(in: receiver, ["nft", "add", "table", "inet", Lab.table]).checked()
                try exec(
                    in: receiver,
                    ["nft", "add", "chain", "inet", Lab.table, "input", "{ type filter hook input priority 0 ; policy accept ; }"]
                )
                .checked()
                try exec(
                    in: receiver,
                    ["nft", "add", "rule", "inet", Lab.table, "input", "ip", "saddr", "{ \(sources.joined(separator: ", ")) }", "drop"]
                )
                .checked()
            } else {
                for source in sources { try exec(in: receiver, ["iptables", "-I", "INPUT", "-s", source, "-j", "DROP"]).checked() }
            }
        }
    }

    /// Removes every partition rule.
    public func heal() throws {
        for member in spec.serverNames + [LabSpec.client] {
            if LabShell.which("nft") != nil {
                let outcome = try exec(in: member, ["nft", "delete", "table", "inet", Lab.table])
                // "No such file or directory": no rules in that namespace.
                if !outcome.succeeded && !outcome.output.contains("No such file") { throw LabError(outcome.description) }
            } else if LabShell.which("iptables") != nil {
                try exec(in: member, ["iptables", "-F", "INPUT"]).checked()
            }
        }
    }

    /// Impairs the link of `member` with `tc netem`: loss and duplication in percent, delay
    /// (and jitter) in milliseconds. `.outgoing` shapes what the member sends (its interface),
    /// `.incoming` what it receives (its bridge port), `.both` both.
    ///
    /// Kernels without netem (CONFIG_NET_SCH_NETEM, e.g. some VM kernels): loss (both
    /// directions) and duplication (outgoing) fall back to nftables rules in the member's
    /// namespace (`numgen random`, `dup to`); delay then fails with a clear error.
    public func netem(
        _ member: String, _ link: LabLink = .publicLAN, direction: LabDirection = .outgoing, lossPercent: Double = 0,
        delayMilliseconds: Int = 0, jitterMilliseconds: Int = 0, duplicatePercent: Double = 0
    ) throws {
        var options: [String] = []
        if delayMilliseconds > 0 || jitterMilliseconds > 0 {
            options += ["delay", "\(delayMilliseconds)ms"] + (jitterMilliseconds > 0 ? ["\(jitterMilliseconds)ms"] : [])
        }
        if lossPercent > 0 { options += ["loss", "\(lossPercent)%"] }
        if duplicatePercent > 0 { options += ["duplicate", "\(duplicatePercent)%"] }
        try clearNetem(member, link)
        guard !options.isEmpty else { return }
        guard LabShell.which("tc") != nil else { throw LabError("tc (iproute2) is not installed") }
        if kernelHasNetem {
            for (namespace, device) in try devices(of: member, link, direction) {
                try LabShell.check(["ip", "netns", "exec", namespace, "tc", "qdisc", "replace", "dev", device, "root", "netem"] + options)
            }
            return
        }
        guard delayMilliseconds == 0 && jitterMilliseconds == 0 else {
            throw LabError("this kernel has no tc netem (CONFIG_NET_SCH_NETEM): loss and duplication work through nftables, delay does not")
        }
        guard duplicatePercent == 0 || direction == .outgoing else {
            throw LabError("this kernel has no tc netem: duplication works on outgoing packets only (nftables dup)")
        }
        guard LabShell.which("nft") != nil else { throw LabError("this kernel has no tc netem and nft (nftables) is not installed") }
        let (inside, port) = try spec.interfaces(of: member, link: link)
        func chance(_ percent: Double) -> [String] {
            percent >= 100 ? [] : ["numgen", "random", "mod", "1000", "<", String(Int((percent * 10).rounded()))]
        }
        // Loss is dropped "on the wire", on the ingress hook of the receiving end of the veth:
        // the bridge port for what the member sends, the member's interface for what it
        // receives. (A drop on the sender's output hook would fail its send with EPERM,
        // which no real lossy link does.)
        if lossPercent > 0 {
            for way in [LabDirection.outgoing, .incoming] where direction == .both || direction == way {
                let (namespace, device) = way == .outgoing ? (spec.bridgeNamespace, port) : (spec.namespace(of: member), inside)
                let nft = ["ip", "netns", "exec", namespace, "nft"]
                try LabShell.check(nft + ["add", "table", "netdev", Lab.impairTable])
                try LabShell.check(
                    nft + [
                        "add", "chain", "netdev", Lab.impairTable, "loss_" + device,
                        "{ type filter hook ingress device \"\(device)\" priority 0 ; policy accept ; }",
                    ])
                try LabShell.check(nft + ["add", "rule", "netdev", Lab.impairTable, "loss_" + device] + chance(lossPercent) + ["drop"])
            }
        }
        // Duplication: a copy of each chosen packet the member sends, to the same address.
        if duplicatePercent > 0 {
            let chain = "dup_" + inside
            try exec(in: member, ["nft", "add", "table", "ip", Lab.impairTable]).checked()
            try exec(
                in: member,
                ["nft", "add", "chain", "ip", Lab.impairTable, chain, "{ type filter hook output priority 0 ; policy accept ; }"]
            )
            .checked()
            try exec(
                in: member,
                ["nft", "add", "rule", "ip", Lab.impairTable, chain, "oifname", inside] + chance(duplicatePercent)
                    + ["dup", "to", "ip", "daddr", "device", inside]
            ).checked()
        }
    }

    static let impairTable = "understudy_lab_impair"

    /// Whether `tc netem` exists in this kernel, probed once on `lo` of the lab's bridge
    /// namespace (nothing outside the lab is touched).
    var kernelHasNetem: Bool {
        if let known = lock.withLock({ netemProbe }) { return known }
        let outcome = try? LabShell.run([
            "ip", "netns", "exec", spec.bridgeNamespace, "tc", "qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms",
        ])
        let has = outcome?.succeeded ?? false
        if has { _ = try? LabShell.run(["ip", "netns", "exec", spec.bridgeNamespace, "tc", "qdisc", "del", "dev", "lo", "root"]) }
        lock.withLock { netemProbe = has }
        return has
    }

    /// Removes the netem impairment (or its nftables stand-in) of a link, both directions.
    public func clearNetem(_ member: String, _ link: LabLink = .publicLAN) throws {
        for (namespace, device) in try devices(of: member, link, .both) {
            let outcome = try LabShell.run(["ip", "netns", "exec", namespace, "tc", "qdisc", "del", "dev", device, "root"])
            if !outcome.succeeded && !outcome.output.contains("No such file")
                && !outcome.output.contains("Cannot delete qdisc with handle of zero")
                && !outcome.output.contains("qdisc kind is unknown")
            {
                throw LabError(outcome.description)
            }
        }
        if LabShell.which("nft") != nil {
            let (inside, port) = try spec.interfaces(of: member, link: link)
            let chains = [
                (spec.bridgeNamespace, "netdev", "loss_" + port), (spec.namespace(of: member), "netdev", "loss_" + inside),
                (spec.namespace(of: member), "ip", "dup_" + inside),
            ]
            for (namespace, family, chain) in chains {
                let nft = ["ip", "netns", "exec", namespace, "nft"]
                _ = try LabShell.run(nft + ["flush", "chain", family, Lab.impairTable, chain])
                _ = try LabShell.run(nft + ["delete", "chain", family, Lab.impairTable, chain])
            }
        }
    }

    private func devices(of member: String, _ link: LabLink, _ direction: LabDirection) throws -> [(String, String)] {
        let (inside, port) = try spec.interfaces(of: member, link: link)
        var devices: [(String, String)] = []
        if direction != .incoming { devices.append((spec.namespace(of: member), inside)) }
        if direction != .outgoing { devices.append((spec.bridgeNamespace, port)) }
        return devices
    }

    // MARK: - Status

    /// The cluster status as `server`'s daemon knows it (its local socket), nil when it does
    /// not answer within `timeout`.
    public func status(on server: String, timeout: Duration = .seconds(2)) async -> ClusterStatusSnapshot? {
        guard
            let answer = try? await LocalControlClient.request(
                path: spec.socketPath(of: server), payload: WireJSON.encode(LocalRequest.status(target: nil)), timeout: timeout),
            case .status(let snapshot)? = try? WireJSON.decode(LocalResponse.self, from: answer)
        else { return nil }
        return snapshot
    }

    /// Polls `server`'s status until `condition` holds (at most `timeout`); the last status,
    /// or an error naming `what` and the last status seen.
    @discardableResult
    public func waitForStatus(
        _ what: String, on server: String, timeout: Duration = .seconds(15), _ condition: (ClusterStatusSnapshot) -> Bool
    ) async throws -> ClusterStatusSnapshot {
        var last: ClusterStatusSnapshot?
        let met = await labPoll(upTo: timeout) {
            last = await status(on: server)
            return last.map(condition) ?? false
        }
        guard met, let last else {
            throw LabError(
                "timed out after \(timeout) waiting for \(what) (as \(server) sees it); last status: \(last.map(Lab.summary) ?? "no answer")"
            )
        }
        return last
    }

    /// The status of `server` of `peer` as `server` sees it, if it answers.
    public func serverStatus(of peer: String, seenBy server: String) async -> ServerStatus? {
        await status(on: server)?.servers.first { $0.name == peer }?.status
    }

    /// Waits until `server` sees `peer` with `expected` status.
    @discardableResult
    public func waitUntil(
        _ server: String, sees peer: String, _ expected: ServerStatus, timeout: Duration = .seconds(15)
    ) async throws -> ClusterStatusSnapshot {
        try await waitForStatus("\(peer) \(expected.rawValue)", on: server, timeout: timeout) { snapshot in
            snapshot.servers.first { $0.name == peer }?.status == expected
        }
    }

    static func summary(_ snapshot: ClusterStatusSnapshot) -> String {
        let servers = snapshot.servers.map { "\($0.name) \($0.status.rawValue)" }.joined(separator: ", ")
        let groups = snapshot.groups.map { "\($0.name) \($0.status.rawValue) on \($0.current ?? "None")" }.joined(separator: ", ")
        return "[\(snapshot.localServer): servers \(servers); groups \(groups)]"
    }

    /// Lines naming the namespaces, addresses, link states and daemon pids.
    public func report() -> String {
        var lines = ["lab \(spec.prefix): folder \(spec.folder), config \(spec.configPath)"]
        let bridges =
            spec.secondLink
            ? "br0 (public 10.200.\(spec.subnet).0/24), br1 (interconnect 10.201.\(spec.subnet).0/24)"
            : "br0 (public 10.200.\(spec.subnet).0/24)"
        let existing = Set((try? Lab.existingNamespaces(prefix: spec.prefix)) ?? [])
        func mark(_ namespace: String) -> String { existing.contains(namespace) ? namespace : namespace + " (missing)" }
        lines.append("  bridges: namespace \(mark(spec.bridgeNamespace)): \(bridges)")
        for member in spec.serverNames + [LabSpec.client] {
            let namespace = spec.namespace(of: member)
            var line = "  \(member): namespace \(mark(namespace))"
            if existing.contains(namespace) {
                let links = (try? LabShell.run(["ip", "-n", namespace, "-br", "addr", "show"]))?.output ?? ""
                let text = links.split(separator: "\n").filter { !$0.hasPrefix("lo ") }.map {
                    $0.split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ")
                }
                line += "; " + text.joined(separator: "; ")
            }
            if member != LabSpec.client {
                if let daemon = pid(of: member) {
                    line += "; daemon pid \(daemon.pid) " + (daemon.isStopped ? "frozen" : daemon.isAlive ? "running" : "not running")
                } else {
                    line += "; no daemon"
                }
            }
            lines.append(line)
        }
        return lines.joined(separator: "\n")
    }
}

extension LabCommandOutcome {
    @discardableResult
    func checked() throws -> LabCommandOutcome {
        guard succeeded else { throw LabError(description) }
        return self
    }
}
