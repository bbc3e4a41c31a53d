import ArgumentParser
import Foundation
import UnderstudyLab

#if canImport(Glibc)
    import Glibc
#endif

/// `understudy lab safety`: builds a lab with a recorded service, injects faults of every
/// kind and checks that no two servers were ever active at once (docs/lab.md).
struct LabSafety: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "safety",
        abstract: "Inject faults into a fresh lab and check that no two servers were ever active at once (root).")
    @Option(name: .long, help: "Servers (2: pingnp with the client as target; 3 or more: majority).") var servers: Int = 2
    @Option(name: .long, help: "Faults of each kind.") var perKind: Int = 5
    @Option(
        name: .long, parsing: .upToNextOption,
        help: "Fault kinds (default: all): \(SafetyFault.allCases.map(\.rawValue).joined(separator: ", ")).")
    var kinds: [String] = []
    @Option(name: .long, help: "Heartbeat interval.") var interval: String = "50ms"
    @Option(name: .long, help: "Heartbeat timeout in milliseconds.") var timeoutMs: Int = 300
    @Option(name: .long, help: "Ping timeout of the pingnp resolution.") var pingTimeout: String = "100ms"
    @Option(name: .long, help: "X in 10.200.X.0/24.") var subnet: Int = 7
    @Flag(name: .long, help: "Keep the lab (and its records) afterwards.") var keep = false
    @Flag(
        name: .long,
        help:
            "Add a shared disk (ext4 with mmp, a loop device per server) with a writer of fsync'ed numbered records; check afterwards that no acknowledged record is lost, the records never interleave and fsck finds it clean."
    )
    var sharedDisk = false
    @Flag(
        name: .long,
        help: "Add a disk heartbeat (diskhb) on a loop device: LAN partitions then leave the servers hearing each other through the disk.")
    var diskhb = false

    func run() async throws {
        var chosen: [SafetyFault] = []
        for name in kinds {
            guard let kind = SafetyFault(rawValue: name) else {
                throw ValidationError(
                    "unknown fault kind '\(name)'; known: \(SafetyFault.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            chosen.append(kind)
        }
        if chosen.isEmpty { chosen = SafetyFault.allCases }
        var spec = LabSpec(
            prefix: "safety" + String(subnet), servers: servers, subnet: subnet, heartbeatInterval: interval,
            heartbeatTimeoutMilliseconds: timeoutMs, syncWait: "1s", withGroup: false, pingTimeout: pingTimeout)
        if sharedDisk { spec.sharedDisk = true }
        let binary = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        var heartbeatDisk: (image: String, device: String)?
        defer {
            if let heartbeatDisk {
                _ = try? LabShell.run(["losetup", "-d", heartbeatDisk.device])
                try? FileManager.default.removeItem(atPath: heartbeatDisk.image)
            }
        }
        if diskhb {
            let image = "/tmp/understudy-safety\(subnet)-diskhb.img"
            FileManager.default.createFile(atPath: image, contents: nil)
            try FileHandle(forWritingTo: URL(fileURLWithPath: image)).truncate(atOffset: 16 << 20)
            let device = try LabShell.check(["losetup", "--find", "--show", image]).trimmingCharacters(in: .whitespacesAndNewlines)
            heartbeatDisk = (image, device)
            try LabShell.check([binary, "diskhb", "init", device], timeout: .seconds(30))
            spec.extraHeartbeats = "  - name: diskhb1\n    type: diskhb\n    device: \(device)\n"
        }
        let disk = heartbeatDisk
        LabInterruption.removeOnSignal(prefix: spec.prefix, folder: spec.folder) {
            if let disk {
                _ = try? LabShell.run(["losetup", "-d", disk.device])
                try? FileManager.default.removeItem(atPath: disk.image)
            }
        }
        let lab: Lab
        do {
            lab = try await Lab.up(spec, binary: binary, startDaemons: false)
        } catch {
            FileHandle.standardError.write(Data("lab: \(error)\n".utf8))
            throw ExitCode(1)
        }
        lab.keepRunning = keep
        defer { if !keep { lab.down() } }
        try SafetyRun.writeGroup(spec: spec, binary: binary)
        for server in spec.serverNames { try lab.startDaemon(server) }
        let run = SafetyRun(lab: lab, binary: binary) { print($0) }
        let result = try await run.run(kinds: chosen, perKind: perKind)
        print("faults injected: " + chosen.map { "\($0.rawValue) \(result.injected[$0] ?? 0)" }.joined(separator: ", "))
        print("group online again after \(result.recovered) of \(result.injected.values.reduce(0, +)) faults; elapsed \(result.elapsed)")
        print(
            "service samples: \(result.samples); active seconds: \(result.activeSeconds.sorted { $0.key < $1.key }.map { "\($0.key) \(String(format: "%.1f", $0.value))" }.joined(separator: ", "))"
        )
        print(
            "partition-no-target: group still held afterwards: \(result.stillHeldWithoutProof.isEmpty ? "never (every side stopped)" : result.stillHeldWithoutProof.joined(separator: ", "))"
        )
        var diskFailed = false
        if sharedDisk {
            let disk = try run.checkSharedDisk()
            print(
                "shared disk: \(disk.check.records) records, \(disk.check.acknowledged) acknowledged, \(disk.check.lost.count) lost, \(disk.check.handovers) handovers, \(disk.check.interleavings.count) interleavings, \(disk.refusedMounts) mounts refused while in use; fsck -n: \(disk.fsckClean ? "clean" : "NOT CLEAN")"
            )
            print(
                "mounts sampled every 50 ms: \(disk.mountSamples) samples, mounted seconds \(disk.mountedSeconds.sorted { $0.key < $1.key }.map { "\($0.key) \(String(format: "%.1f", $0.value))" }.joined(separator: ", ")); on two servers at once: \(disk.doubleMounts.count)"
            )
            for problem in disk.doubleMounts.prefix(10) { print("  \(problem)") }
            for problem in disk.check.interleavings.prefix(10) { print("  \(problem)") }
            for record in disk.check.lost.prefix(10) { print("  lost: \(record)") }
            if !disk.fsckClean { print(disk.fsckOutput) }
            diskFailed = !disk.check.lost.isEmpty || !disk.check.interleavings.isEmpty || !disk.fsckClean || !disk.doubleMounts.isEmpty
        }
        if result.overlaps.isEmpty && result.stillHeldWithoutProof.isEmpty && !diskFailed {
            print("overlaps: none (I1 held)")
        } else {
            print("overlaps: \(result.overlaps.count)")
            for overlap in result.overlaps.prefix(20) { print("  \(overlap)") }
            throw ExitCode(1)
        }
    }
}

/// `understudy lab recorder`: the recorded service of the safety run (started by its exec
/// resource).
struct LabRecorder: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "recorder", abstract: "The safety run's service: records when its server holds a valid lease.",
        shouldDisplay: false)
    @Option(name: .long) var server: String
    @Option(name: .long) var leaseFile: String
    @Option(name: .long) var output: String
    @Option(name: .long) var pidFile: String?

    func run() throws {
        ActivityRecorder.run(server: server, leaseFile: leaseFile, output: output, pidFile: pidFile)
    }
}

/// `understudy lab disk-writer`: the safety run's shared-disk service (started by its exec
/// resource).
struct LabDiskWriter: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "disk-writer", abstract: "The safety run's shared-disk service: appends fsync'ed numbered records.",
        shouldDisplay: false)
    @Option(name: .long) var server: String
    @Option(name: .long) var file: String
    @Option(name: .long) var acknowledgements: String
    @Option(name: .long) var pidFile: String?

    func run() throws {
        SharedDiskWriter.run(server: server, file: file, acknowledgements: acknowledgements, pidFile: pidFile)
    }
}

/// `understudy lab probe`: the benchmark's client (runs in the client namespace).
struct LabProbe: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "probe", abstract: "Probe an HTTP service every 10 ms until a given server answers.", shouldDisplay: false)
    @Option(name: .long) var host: String
    @Option(name: .long) var port: UInt16 = 8080
    @Option(name: .long, help: "Print the CLOCK_BOOTTIME (ns) of this server's first answer.") var expect: String?
    @Option(name: .long, help: "Print the CLOCK_BOOTTIME (ns) and the name of the first answer from any other server.")
    var otherThan: String?
    @Flag(name: .long, help: "One request; print who answered.") var once = false
    @Option(name: .long, help: "Give up after this many seconds.") var limit: Int = 60

    func run() throws {
        if once {
            guard let answer = HTTPProbe.get(host: host, port: port, timeoutMilliseconds: 500) else { throw ExitCode(1) }
            print(answer)
            return
        }
        if let otherThan {
            guard
                let first = HTTPProbe.untilAnswer(
                    host: host, port: port, accepting: { $0 != otherThan }, interval: .milliseconds(10), limit: .seconds(limit),
                    requestTimeoutMilliseconds: 50)
            else { throw ExitCode(1) }
            print("\(first.at) \(first.answer)")
            return
        }
        guard let expect else { throw ValidationError("--expect, --other-than or --once") }
        guard
            let at = HTTPProbe.untilAnswer(
                host: host, port: port, expected: expect, interval: .milliseconds(10), limit: .seconds(limit),
                requestTimeoutMilliseconds: 50)
        else { throw ExitCode(1) }
        print(at)
    }
}

/// `understudy lab idle-watch`: false failovers of a profile over some minutes (root).
struct LabIdleWatch: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "idle-watch", abstract: "Count false failovers of an idle two-server lab, optionally under CPU load or loss (root).")
    @Option(name: .long, help: "Minutes to watch.") var minutes: Double = 10
    @Option(name: .long, help: "none, cpu (a busy loop per core) or loss (5 % on one of two interconnects).") var stress: String = "none"
    @Option(name: .long, help: "Heartbeat interval.") var interval: String = "20ms"
    @Option(name: .long, help: "Heartbeat timeout in milliseconds.") var timeoutMs: Int = 100
    @Option(name: .long, help: "Ping timeout of the pingnp resolution.") var pingTimeout: String = "30ms"
    @Option(name: .long, help: "X in 10.200.X.0/24.") var subnet: Int = 10

    func run() async throws {
        guard let kind = IdleWatch.Stress(rawValue: stress) else { throw ValidationError("unknown stress '\(stress)'") }
        let spec = LabSpec(
            prefix: "idle" + String(subnet), servers: 2, secondLink: true, subnet: subnet, heartbeatInterval: interval,
            heartbeatTimeoutMilliseconds: timeoutMs, syncWait: "1s", withGroup: false, pingTimeout: pingTimeout)
        let binary = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        LabInterruption.removeOnSignal(prefix: spec.prefix, folder: spec.folder)
        let lab = try await Lab.up(spec, binary: binary, startDaemons: false)
        defer { lab.down() }
        try FailoverBenchmark.writeGroup(spec: spec, probeWait: "20ms")
        for server in spec.serverNames { try lab.startDaemon(server) }
        _ = try await lab.waitForStatus("web online", on: "node1", timeout: .seconds(30)) {
            $0.groups.first?.status == .online
        }
        let result = try await IdleWatch(lab: lab).watch(for: .milliseconds(Int(minutes * 60_000)), stress: kind)
        for event in result.downEvents { print("  " + event) }
        for (server, use) in result.footprint.sorted(by: { $0.key < $1.key }) {
            print(String(format: "FOOTPRINT %@ cpu=%.2f%% rss=%.1fMiB", server, use.cpuPercent, use.rssMiB))
        }
        print(
            "RESULT idle-watch stress=\(kind.rawValue) interval=\(interval) timeout=\(timeoutMs)ms minutes=\(minutes) false-failovers=\(result.holderChanges) down-or-fence-events=\(result.downEvents.count)"
        )
    }
}

/// `understudy lab monitor-bench`: many monitors on one daemon; CPU, memory and how late
/// checks and heartbeats start (docs/benchmarks.md).
struct LabMonitorBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "monitor-bench", abstract: "Run many monitors on one daemon and measure CPU and check/heartbeat lateness (root).")
    @Option(name: .long, help: "Monitors on node1.") var monitors: Int = 1000
    @Option(name: .long, help: "Their interval.") var interval: String = "1s"
    @Option(name: .long, help: "Seconds to measure once they all run.") var seconds: Int = 60
    @Option(name: .long, help: "Heartbeat interval.") var heartbeatInterval: String = "1s"
    @Option(name: .long, help: "Heartbeat timeout in milliseconds.") var timeoutMs: Int = 5000
    @Option(name: .long, help: "X in 10.200.X.0/24.") var subnet: Int = 9

    func validate() throws {
        guard (1...20_000).contains(monitors) else { throw ValidationError("--monitors must be 1–20000") }
        guard (1...3600).contains(seconds) else { throw ValidationError("--seconds must be 1–3600") }
    }

    func run() async throws {
        let spec = LabSpec(
            prefix: "monbench" + String(subnet), servers: 2, subnet: subnet, heartbeatInterval: heartbeatInterval,
            heartbeatTimeoutMilliseconds: timeoutMs, syncWait: "1s", withGroup: false)
        let binary = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        LabInterruption.removeOnSignal(prefix: spec.prefix, folder: spec.folder)
        let lab = try await Lab.up(spec, binary: binary, startDaemons: false)
        defer { lab.down() }
        try spec.appendToConfig(MonitorBenchmark.monitorsYAML(count: monitors, interval: interval))
        let result = try await MonitorBenchmark(lab: lab).run(count: monitors, seconds: seconds) { print($0) }
        let runtime = result.runtime
        func ms(_ micros: Int64) -> String { String(format: "%.2f ms", Double(micros) / 1000) }
        print("monitors: \(result.monitors) at \(interval), heartbeat \(heartbeatInterval), measured \(result.seconds) s")
        print(
            String(
                format:
                    "node1 daemon: CPU %.2f %% of one core, RSS %.1f MiB (node2 without monitors: CPU %.2f %%); time stolen by the hypervisor: %.1f %%",
                result.cpuPercent, result.rssMiB, result.idleCPUPercent, result.stealPercent))
        print(
            "check start lateness (\(runtime.monitorChecks) checks): p50 \(ms(runtime.monitorLatenessP50)), p99 \(ms(runtime.monitorLatenessP99)), max \(ms(runtime.monitorLatenessMax))"
        )
        print(
            "heartbeat send lateness (\(runtime.heartbeats) heartbeats): p50 \(ms(runtime.heartbeatLatenessP50)), p99 \(ms(runtime.heartbeatLatenessP99)), max \(ms(runtime.heartbeatLatenessMax))"
        )
        if let p99 = runtime.heartbeatPreparationLatenessP99, let max = runtime.heartbeatPreparationLatenessMax {
            print("heartbeat preparation (how late the daemon woke to prepare them ahead): p99 \(ms(p99)), max \(ms(max))")
        }
        let reference = result.reference
        func ms(_ duration: Duration) -> String {
            ms(duration.components.seconds * 1_000_000 + duration.components.attoseconds / 1_000_000_000_000)
        }
        print(
            "machine reference (a bare thread per CPU, pinned, sleeping 10 ms; \(reference.wakes) wakes): p99 \(ms(reference.p99)), max \(ms(reference.max)), \(reference.over10ms) wakes over 10 ms"
        )
        // Each heartbeat over 10 ms late, with what the machine did at that moment.
        let late = runtime.lateHeartbeats ?? []
        var explained = 0
        for event in late {
            let overlap = reference.worstOverlap(deadlineNanos: event.deadlineMonotonicNanos, latenessMicros: event.latenessMicros)
            if let overlap, overlap.latenessMicros * 2 >= event.latenessMicros { explained += 1 }
            print(
                "  heartbeat \(ms(event.latenessMicros)) late; at that moment the reference on CPU \(overlap.map { String($0.cpu) } ?? "-") was "
                    + (overlap.map { "\(ms($0.latenessMicros)) late" } ?? "on time"))
        }
        if !late.isEmpty {
            print("\(explained) of \(late.count) heartbeats over 10 ms late fell into a stall of the machine at least half as long")
        }
    }
}
