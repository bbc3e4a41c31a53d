import ArgumentParser
import Foundation
import UnderstudyLab

#if canImport(Glibc)
    import Glibc
#endif

/// What is measured: Understudy, or keepalived in the same lab with the same method.
enum BenchCompetitor: String, ExpressibleByArgument, CaseIterable, Codable {
    case understudy, keepalived
}

/// The options both lab benchmarks share: the competitor and its timing.
struct BenchProfileOptions: ParsableArguments {
    @Option(name: .long, help: "understudy, or keepalived (VRRP) in the same lab with the same prober.")
    var competitor: BenchCompetitor = .understudy
    @Option(name: .long, help: "Heartbeat interval (understudy).") var interval: String = "1s"
    @Option(name: .long, help: "Heartbeat timeout in milliseconds (understudy).") var timeoutMs: Int = 5000
    @Option(name: .long, help: "Ping timeout of the pingnp resolution (understudy, two servers).") var pingTimeout: String = "1s"
    @Option(name: .long, help: "probe-wait of the floating IP (understudy).") var probeWait: String = "200ms"
    @Option(name: .long, help: "VRRP advert_int in seconds, 0.01 to 40.95 (keepalived, VRRPv3).") var advert: Double = 1
    @Option(name: .long, help: "VRRP adverts to 224.0.0.18 (multicast) or to each peer (unicast) (keepalived).")
    var vrrp: String = "multicast"

    /// The VRRP transport of `--vrrp` (validated).
    var transport: KeepalivedBenchmark.Transport { KeepalivedBenchmark.Transport(rawValue: vrrp) ?? .multicast }

    func validate() throws {
        guard KeepalivedBenchmark.Transport(rawValue: vrrp) != nil else {
            throw ValidationError("--vrrp must be multicast or unicast, not '\(vrrp)'")
        }
        if competitor == .keepalived {
            do { try KeepalivedBenchmark.Settings(advertSeconds: advert, transport: transport).validate() } catch {
                throw ValidationError("\(error)")
            }
        }
    }

    /// A one-line description of the competitor and its timing.
    var label: String {
        switch competitor {
        case .understudy:
            return "understudy interval=\(interval) timeout=\(timeoutMs)ms ping-timeout=\(pingTimeout) probe-wait=\(probeWait)"
        case .keepalived: return "keepalived advert_int=\(advert)s vrrp=\(vrrp)"
        }
    }

    var settings: [String: String] {
        switch competitor {
        case .understudy:
            return ["interval": interval, "timeout-ms": String(timeoutMs), "ping-timeout": pingTimeout, "probe-wait": probeWait]
        case .keepalived: return ["advert": String(advert), "vrrp": vrrp, "version": KeepalivedVersion.text]
        }
    }

    func spec(prefix: String, servers: Int, subnet: Int) -> LabSpec {
        LabSpec(
            prefix: prefix, servers: servers, subnet: subnet, heartbeatInterval: interval, heartbeatTimeoutMilliseconds: timeoutMs,
            syncWait: "1s", withGroup: false, pingTimeout: pingTimeout)
    }
}

enum KeepalivedVersion {
    /// `keepalived --version`'s first line, or "not installed".
    static var text: String {
        guard let path = LabShell.which("keepalived"), let outcome = try? LabShell.run([path, "--version"]) else { return "not installed" }
        return outcome.output.split(separator: "\n").first.map(String.init) ?? "unknown"
    }
}

/// The understudy binary running now (the daemons and the prober run the same one).
private func runningBinary() -> String {
    (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
}

/// Writes `value` as pretty JSON to `path`.
private func writeJSON<T: Encodable>(_ value: T, to path: String) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    try encoder.encode(value).write(to: URL(fileURLWithPath: path), options: .atomic)
}

/// Copies the keepalived configurations of a lab next to a results file (`<json>.keepalived-nodeI.conf`).
private func publishConfigurations(of bench: KeepalivedBenchmark, beside json: String?) {
    guard let json else { return }
    for server in bench.lab.spec.serverNames {
        let target = (json as NSString).deletingPathExtension + ".keepalived-\(server).conf"
        try? FileManager.default.removeItem(atPath: target)
        try? FileManager.default.copyItem(atPath: bench.configPath(of: server), toPath: target)
    }
}

/// `understudy lab failover-bench`: unplanned failover times in a fresh lab, of Understudy or
/// of keepalived.
struct LabFailoverBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "failover-bench",
        abstract: "Measure unplanned failover (kill -9, link down) in a fresh lab, of Understudy or keepalived (root).")
    @OptionGroup var profile: BenchProfileOptions
    @Option(name: .long, help: "Runs per fault.") var runs: Int = 20
    @Option(name: .long, parsing: .upToNextOption, help: "Faults: kill, link-down.") var faults: [String] = ["kill", "link-down"]
    @Option(name: .long, help: "Servers (2 to \(LabSpec.maxServers); 3 or more: majority resolution).") var servers: Int = 2
    @Option(name: .long, help: "Seconds to wait after the cluster is whole again before the next fault.") var settle: Double = 1
    @Option(name: .long, help: "X in 10.200.X.0/24.") var subnet: Int = 9
    @Flag(name: .long, help: "Put the floating IP on a shared disk resource (ext4 with mmp) that must mount first (understudy).")
    var sharedDisk = false
    @Option(name: .long, help: "Write the runs, the machine and the command as JSON to this file.") var json: String?

    func validate() throws {
        guard (2...LabSpec.maxServers).contains(servers) else { throw ValidationError("--servers must be 2 to \(LabSpec.maxServers)") }
        guard (1...1000).contains(runs) else { throw ValidationError("--runs must be 1 to 1000") }
        guard settle >= 0 && settle <= 600 else { throw ValidationError("--settle must be 0 to 600 seconds") }
        if sharedDisk && profile.competitor == .keepalived { throw ValidationError("--shared-disk is for understudy only") }
    }

    struct Report: Codable {
        var kind = "failover"
        var competitor: BenchCompetitor
        var label: String
        var settings: [String: String]
        var servers: Int
        var settleSeconds: Double
        var command: [String]
        var machine: MachineFacts
        var series: [FailoverBenchmark.Series]
    }

    func run() async throws {
        let chosen = try faults.map { name -> FailoverBenchmark.Fault in
            guard let fault = FailoverBenchmark.Fault(rawValue: name) else {
                throw ValidationError("unknown fault '\(name)' (kill, link-down)")
            }
            return fault
        }
        if profile.competitor == .keepalived, let reason = KeepalivedBenchmark.unavailableReason {
            FileHandle.standardError.write(Data("lab failover-bench: \(reason)\n".utf8))
            throw ExitCode(1)
        }
        var spec = profile.spec(prefix: "bench" + String(subnet), servers: servers, subnet: subnet)
        if sharedDisk { spec.sharedDisk = true }
        let binary = runningBinary()
        let machine = MachineFacts.now()
        LabInterruption.removeOnSignal(prefix: spec.prefix, folder: spec.folder)
        let lab = try await Lab.up(spec, binary: binary, startDaemons: false)
        defer { lab.down() }
        var bench = FailoverBenchmark(lab: lab, binary: binary) { print($0) }
        bench.settle = .milliseconds(Int(settle * 1000))
        var keepalived: KeepalivedBenchmark?
        switch profile.competitor {
        case .understudy:
            try FailoverBenchmark.writeGroup(spec: spec, probeWait: profile.probeWait)
            try await lab.startDaemonsStaggered()
            // A large cluster takes a while to form: wait (bounded, longer with more servers)
            // for the group to be online before the first fault, and say so when it is not.
            let formation = Duration.seconds(60 + 5 * servers)
            print("waiting up to \(formation) for \(servers) servers and the group web to be online")
            try await lab.waitForStatus("group web online with every server Online", on: spec.serverNames[0], timeout: formation) {
                status in
                status.groups.first?.status == .online && status.servers.allSatisfy { $0.status == .online }
            }
        case .keepalived:
            var competitor = KeepalivedBenchmark(
                lab: lab, settings: .init(advertSeconds: profile.advert, transport: profile.transport, instances: 1)
            ) { print($0) }
            competitor.failover = bench
            try await competitor.startAll()
            publishConfigurations(of: competitor, beside: json)
            keepalived = competitor
        }
        let responders = try bench.startResponders()
        defer { FailoverBenchmark.stopResponders(responders) }
        var series: [FailoverBenchmark.Series] = []
        for fault in chosen {
            let result: FailoverBenchmark.Series
            if let keepalived {
                result = try await keepalived.run(fault, runs: runs)
            } else {
                result = try await bench.run(fault, runs: runs)
            }
            series.append(result)
            let values = result.seconds
            if let summary = FailoverBenchmark.summary(values) {
                print(
                    String(
                        format: "RESULT %@ %@ servers=%d runs=%d/%d min=%.3f median=%.3f max=%.3f steal=%.1f%%", fault.rawValue,
                        profile.label, servers, values.count, runs, summary.min, summary.median, summary.max, result.stealPercent))
            } else {
                print("RESULT \(fault.rawValue) \(profile.label) servers=\(servers) runs=0/\(runs): no failover answered")
            }
            if let json {
                try writeJSON(
                    Report(
                        competitor: profile.competitor, label: profile.label, settings: profile.settings, servers: servers,
                        settleSeconds: settle, command: CommandLine.arguments, machine: machine, series: series), to: json)
            }
        }
    }
}

/// `understudy lab footprint`: CPU and memory of idle daemons (Understudy's or keepalived's)
/// in a fresh lab with some groups.
struct LabFootprint: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "footprint",
        abstract: "Measure idle CPU (seconds per minute) and memory (RSS, PSS, a breakdown per mapping) of the daemons (root).")
    @OptionGroup var profile: BenchProfileOptions
    @Option(name: .long, help: "Servers (2 to \(LabSpec.maxServers)).") var servers: Int = 2
    @Option(name: .long, help: "Groups of one floating IP each (keepalived: VRRP instances of one VIP each).") var groups: Int = 10
    @Option(name: .long, help: "Seconds to measure.") var seconds: Int = 60
    @Option(name: .long, help: "Seconds to wait once everything is online before measuring.") var warmup: Int = 10
    @Option(name: .long, help: "X in 10.200.X.0/24.") var subnet: Int = 12
    @Flag(name: .long, help: "Print the breakdown of every process's mappings.") var breakdown = false
    @Option(name: .long, help: "Write the results, the machine and the command as JSON to this file.") var json: String?

    func validate() throws {
        guard (2...LabSpec.maxServers).contains(servers) else { throw ValidationError("--servers must be 2 to \(LabSpec.maxServers)") }
        guard (1...FailoverBenchmark.maxGroups).contains(groups) else {
            throw ValidationError("--groups must be 1 to \(FailoverBenchmark.maxGroups)")
        }
        guard (1...3600).contains(seconds) else { throw ValidationError("--seconds must be 1 to 3600") }
        guard (0...600).contains(warmup) else { throw ValidationError("--warmup must be 0 to 600") }
    }

    struct Report: Codable {
        var kind = "footprint"
        var competitor: BenchCompetitor
        var label: String
        var settings: [String: String]
        var servers: Int
        var groups: Int
        var warmupSeconds: Int
        var command: [String]
        var machine: MachineFacts
        var result: IdleFootprint.Result
    }

    func run() async throws {
        if profile.competitor == .keepalived, let reason = KeepalivedBenchmark.unavailableReason {
            FileHandle.standardError.write(Data("lab footprint: \(reason)\n".utf8))
            throw ExitCode(1)
        }
        let spec = profile.spec(prefix: "foot" + String(subnet), servers: servers, subnet: subnet)
        let binary = runningBinary()
        let machine = MachineFacts.now()
        LabInterruption.removeOnSignal(prefix: spec.prefix, folder: spec.folder)
        let lab = try await Lab.up(spec, binary: binary, startDaemons: false)
        defer { lab.down() }
        var roots: [(server: String, pid: Int32)] = []
        switch profile.competitor {
        case .understudy:
            try FailoverBenchmark.writeGroups(spec: spec, count: groups, probeWait: profile.probeWait)
            try await lab.startDaemonsStaggered()
            for server in spec.serverNames { try await lab.waitForSocket(server) }
            try await lab.waitForStatus("\(groups) groups online", on: spec.serverNames[0], timeout: .seconds(60)) { status in
                status.groups.count == groups && status.groups.allSatisfy { $0.status == .online }
                    && status.servers.allSatisfy { $0.status == .online }
            }
            roots = spec.serverNames.compactMap { server in lab.pid(of: server).map { (server, $0.pid) } }
        case .keepalived:
            let competitor = KeepalivedBenchmark(
                lab: lab, settings: .init(advertSeconds: profile.advert, transport: profile.transport, instances: groups))
            try await competitor.startAll()
            publishConfigurations(of: competitor, beside: json)
            roots = spec.serverNames.compactMap { server in competitor.parent(of: server).map { (server, $0.pid) } }
        }
        guard roots.count == spec.serverNames.count else { throw ValidationError("not every daemon runs: \(roots)") }
        print("settled: \(profile.label), \(servers) servers, \(groups) groups; warming up \(warmup) s, measuring \(seconds) s")
        try await Task.sleep(for: .seconds(warmup))
        let result = try await IdleFootprint.measure(roots: roots, for: .seconds(seconds))
        for daemon in result.daemons {
            let threads = daemon.processes.map(\.threads).reduce(0, +)
            print(
                String(
                    format: "FOOTPRINT %@ server=%@ cpu=%.3f s/min rss=%.1f MiB pss=%.1f MiB processes=%d threads=%d steal=%.1f%%",
                    profile.label, daemon.server, daemon.cpuSecondsPerMinute, Double(daemon.rssKiB) / 1024, Double(daemon.pssKiB) / 1024,
                    daemon.processes.count, threads, result.stealPercent))
            for process in daemon.processes {
                let status = process.status
                let rollup = process.rollup
                print(
                    "  pid \(process.pid) \(process.command): VmRSS \(status["VmRSS"] ?? 0) kB = anon \(status["RssAnon"] ?? 0) + file \(status["RssFile"] ?? 0) + shmem \(status["RssShmem"] ?? 0); PSS \(rollup["Pss"] ?? 0) kB (anon \(rollup["Pss_Anon"] ?? 0), file \(rollup["Pss_File"] ?? 0)); threads \(process.threads)"
                )
                if breakdown { print(Footprint.breakdownTable(process)) }
            }
        }
        if let json {
            try writeJSON(
                Report(
                    competitor: profile.competitor, label: profile.label, settings: profile.settings, servers: servers, groups: groups,
                    warmupSeconds: warmup, command: CommandLine.arguments, machine: machine, result: result), to: json)
        }
    }
}
