import Testing
import UnderstudyEngine
import UnderstudyModel
import UnderstudySimulator

// Building blocks for the Engine scenario tables: small cluster configurations built in code,
// a deterministic script model, and ways to look at what a SimulatedCluster did.

/// Timings every scenario uses (short, so the whole suite stays fast).
enum Timing {
    static let interval: Duration = .milliseconds(500)
    static let timeout: Duration = .seconds(3)
    static let syncWait: Duration = .seconds(5)
    /// Every script takes this long unless a scenario says otherwise.
    static let script: Duration = .milliseconds(50)
}

// MARK: - Configurations

enum Cfg {
    static func names(_ count: Int) -> [ServerName] { (1...count).map { "s\($0)" } }

    /// An exec resource with explicit activation/deactivation policies.
    static func exec(
        _ name: String, depends: [String]? = nil, retry: Int = 0, failover: Int = 1,
        final: FinalAction = .none, stopRetry: Int = 0, stopFinal: FinalAction = .none
    ) -> ResourceConfig {
        ResourceConfig(
            name: name, depends: depends,
            activation: ActivationPolicy(retry: retry, failover: failover, finalAction: final),
            deactivation: DeactivationPolicy(retry: stopRetry, finalAction: stopFinal),
            settings: .exec(ExecSettings(start: "start.sh", stop: "stop.sh")))
    }

    /// A resource of any type (the Engine only cares about the type and the policies).
    static func resource(
        _ name: String, _ type: ResourceType, depends: [String]? = nil, failover: Int = 1
    ) -> ResourceConfig {
        let settings: ResourceSettings
        switch type {
        case .exec: settings = .exec(ExecSettings(start: "start.sh", stop: "stop.sh"))
        case .fip: settings = .fip(FloatingIPSettings(address: "192.168.0.10/24"))
        case .vip: settings = .vip(VirtualIPSettings(address: "192.168.0.11/24"))
        case .ddns: settings = .ddns(DynamicDNSSettings(hostname: "svc.example", server: "192.168.0.1"))
        case .volmgr: settings = .volmgr(VolumeManagerSettings(manager: .lvm, volume: "vg0/data"))
        case .disk: settings = .disk(DiskSettings(device: "/dev/sdb1", filesystem: "ext4", mountPoint: "/mnt/data"))
        case .nas: settings = .nas(NASSettings(server: "nas", share: "/export", mountPoint: "/mnt/nas"))
        case .vm: settings = .vm(VirtualMachineSettings(vmName: "vm1"))
        }
        return ResourceConfig(
            name: name, depends: depends,
            activation: ActivationPolicy(retry: 0, failover: failover, finalAction: .none),
            deactivation: DeactivationPolicy(retry: 0, finalAction: .none), settings: settings)
    }

    static func group(
        _ name: String, servers: [ServerName], startup: GroupConfig.Startup = .auto,
        failover: GroupConfig.Failover = .auto, failback: GroupConfig.Failback = .manual,
        exclusive: GroupConfig.Exclusive = .none, resources: [ResourceConfig]? = nil
    ) -> GroupConfig {
        GroupConfig(
            name: name, servers: servers, startup: startup, failover: failover, failback: failback,
            exclusive: exclusive, resources: resources ?? [exec("\(name)-app")])
    }

    /// A cluster of `servers` servers (s1, s2, …) with one LAN heartbeat path and, unless
    /// told otherwise, majority network-partition resolution.
    static func cluster(
        servers count: Int = 3, groups: [GroupConfig], syncWait: Duration = Timing.syncWait,
        majority: Bool = true, pingTargets: [String] = [], recovery: RecoverySettings = RecoverySettings(),
        partitionAction: NetworkPartitionAction = .none
    ) -> ClusterConfig {
        let names = names(count)
        let addresses = Dictionary(uniqueKeysWithValues: names.enumerated().map { ($0.element, "10.0.1.\($0.offset + 1)") })
        return ClusterConfig(
            cluster: ClusterSettings(
                name: "scenario", secretFile: "/dev/null",
                timing: TimingSettings(heartbeatInterval: Timing.interval, heartbeatTimeout: Timing.timeout, syncWait: syncWait),
                networkPartitionAction: partitionAction, recovery: recovery),
            servers: names.map { ServerConfig(name: $0) },
            heartbeats: [HeartbeatConfig(name: "lanhb1", kind: .lan(addresses: addresses))],
            networkPartition: (majority ? [NetworkPartitionConfig(name: "majority1", kind: .majority)] : [])
                + (pingTargets.isEmpty ? [] : [NetworkPartitionConfig(name: "pingnp1", kind: .ping(targets: pingTargets))]),
            groups: groups)
    }
}

// MARK: - Scripts

enum Scripts {
    /// Every script takes 50 ms; it fails when `fails` says so (called once per run, in run
    /// order, so it may count).
    static func model(
        fails: @escaping (ServerName, ResourceRun) -> Bool = { _, _ in false }
    ) -> SimulatedCluster.ScriptModel {
        { server, run, _ in
            (Timing.script, fails(server, run) ? .failure(reason: "exit code 1") : .success(asyncPID: nil))
        }
    }
}

/// A mutable counter a script model can capture.
final class Counter {
    var value = 0
    func next() -> Int {
        value += 1
        return value
    }
}

// MARK: - Worlds

extension SimulatedCluster {
    typealias LoggedRun = (server: ServerName, run: ResourceRun, at: EngineTime)

    /// A world with the deterministic script model; `boot` lists servers booted at t=0.
    static func make(
        _ config: ClusterConfig, seed: UInt64 = 1, boot: [ServerName]? = nil,
        fails: @escaping (ServerName, ResourceRun) -> Bool = { _, _ in false }
    ) -> SimulatedCluster {
        let world = SimulatedCluster(config: config, seed: seed, scriptModel: Scripts.model(fails: fails))
        for name in boot ?? config.serverNames { world.boot(name) }
        return world
    }

    /// Resource runs, filtered.
    func runs(
        group: GroupName? = nil, on server: ServerName? = nil, _ operation: ResourceOperation? = nil,
        since: EngineTime = .zero, until: EngineTime? = nil
    ) -> [LoggedRun] {
        runLog.filter { entry in
            (group == nil || entry.run.group == group) && (server == nil || entry.server == server)
                && (operation == nil || entry.run.operation == operation) && entry.at >= since
                && (until.map { entry.at < $0 } ?? true)
        }
    }

    /// Runs as short strings ("s1 start g/app"), in order: easy to compare and to read.
    func steps(group: GroupName? = nil, on server: ServerName? = nil, since: EngineTime = .zero) -> [String] {
        runs(group: group, on: server, since: since).map(stepString)
    }

    /// Advances in small steps until `condition` holds; the time it first held, or nil.
    @discardableResult
    func runUntil(
        limit: Duration, step: Duration = .milliseconds(10), _ condition: () -> Bool
    ) -> EngineTime? {
        let end = now + limit
        while now < end {
            if condition() { return now }
            run(for: step)
        }
        return condition() ? now : nil
    }

    /// Placement as "server:Status" strings (stable order), for readable expectations.
    func where_(_ group: GroupName) -> [String] {
        placement(of: group).sorted { $0.key < $1.key }.map { "\($0.key):\($0.value.rawValue)" }
    }

    var osActionList: [String] { osActions.map { "\($0.0):\($0.1.rawValue)" } }

    /// Times (ms) of trace lines "<server>: fence <group>".
    func fenceTimes(_ server: ServerName, _ group: GroupName) -> [Int64] {
        trace.compactMap { line in
            guard line.hasSuffix("\(server): fence \(group)"), let ms = line.split(separator: "m").first else { return nil }
            return Int64(ms)
        }
    }

    /// What to print when an expectation fails.
    var recentTrace: String { trace.suffix(80).joined(separator: "\n") }
}

extension ResourceRun {
    var env: [String: String] { context.environment }
}

extension Array where Element == SimulatedCluster.LoggedRun {
    var servers: [ServerName] { map(\.server) }
}

extension Int64 {
    var ms: Duration { .milliseconds(self) }
}

extension Duration {
    var ms: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1000 + attoseconds / 1_000_000_000_000_000
    }
}

extension SimulatedCluster {
    /// Expected CLP_* variables of one run; only the keys given are compared.
    static func mismatches(_ entry: LoggedRun, _ expected: [String: String]) -> [String] {
        expected.sorted { $0.key < $1.key }.compactMap { key, value in
            let actual = entry.run.env[key]
            return actual == value ? nil : "\(stepString(entry)): \(key)=\(actual ?? "<unset>") (expected \(value))"
        }
    }
}

/// Checks CLP_* variables of every given run.
func expectEnv(
    _ entries: [SimulatedCluster.LoggedRun], _ expected: [String: String], sourceLocation: SourceLocation = #_sourceLocation
) {
    let problems = entries.flatMap { SimulatedCluster.mismatches($0, expected) }
    #expect(problems.isEmpty, "\(problems.joined(separator: "\n"))", sourceLocation: sourceLocation)
}

func stepString(_ entry: SimulatedCluster.LoggedRun) -> String {
    "\(entry.server) \(entry.run.operation.rawValue) \(entry.run.group)/\(entry.run.resource)"
}
