import ArgumentParser
import Foundation
import UnderstudyLab

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
        let spec = LabSpec(
            prefix: "safety" + String(subnet), servers: servers, subnet: subnet, heartbeatInterval: interval,
            heartbeatTimeoutMilliseconds: timeoutMs, syncWait: "1s", withGroup: false, pingTimeout: pingTimeout)
        let binary = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
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
        if result.overlaps.isEmpty {
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
