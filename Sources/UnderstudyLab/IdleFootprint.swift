import Foundation
import UnderstudyNode

#if canImport(Glibc)
    import Glibc
#endif

/// The idle cost of the daemons of a settled lab: CPU seconds per minute of each daemon with
/// its descendants (Understudy's keeper, keepalived's VRRP child, what they ran meanwhile)
/// over a window, and the memory of each of their processes at its end.
public enum IdleFootprint {
    /// One daemon: its processes' memory at the end and the CPU they spent.
    public struct Daemon: Codable, Sendable {
        public var server: String
        public var rootPid: Int32
        public var cpuSeconds: Double
        public var cpuSecondsPerMinute: Double
        /// The processes running the daemon's executable (root first), at the end.
        public var processes: [Footprint.Memory]
        /// Sums over `processes` (KiB): RSS counts shared pages once per process, PSS splits them.
        public var rssKiB: Int
        public var pssKiB: Int
    }

    public struct Result: Codable, Sendable {
        public var seconds: Double
        public var stealPercent: Double
        public var loadBefore: [Double]
        public var loadAfter: [Double]
        public var daemons: [Daemon]
    }

    /// Samples the process trees of `roots` (server → pid), waits `duration`, samples again.
    public static func measure(roots: [(server: String, pid: Int32)], for duration: Duration) async throws -> Result {
        let before = roots.map { Footprint.tree(of: $0.pid) }
        for (index, root) in roots.enumerated() where before[index].isEmpty {
            throw LabError("the daemon of \(root.server) (pid \(root.pid)) does not run")
        }
        let machine = Footprint.MachineTicks.now()
        let loadBefore = Footprint.loadAverage()
        let started = ContinuousClock.now
        try await Task.sleep(for: duration)
        let elapsed = started.duration(to: .now)
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        let after = roots.map { Footprint.tree(of: $0.pid) }
        let steal = machine.flatMap { first in Footprint.MachineTicks.now().map { first.stealPercent(until: $0) } } ?? 0
        var daemons: [Daemon] = []
        for (index, root) in roots.enumerated() {
            guard !after[index].isEmpty else { throw LabError("the daemon of \(root.server) (pid \(root.pid)) died during the watch") }
            let cpu = Footprint.ticksSpent(from: before[index], to: after[index]) / Footprint.ticksPerSecond
            // Memory of the daemon's own processes (same executable: Understudy's keeper,
            // keepalived's VRRP child), not of a script or `ip` that happened to run then.
            let executable = { (pid: Int32) in try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/exe") }
            let rootExecutable = executable(root.pid)
            let memories = after[index].filter { executable($0.pid) == rootExecutable }.compactMap { Footprint.memory(of: $0.pid) }
            daemons.append(
                Daemon(
                    server: root.server, rootPid: root.pid, cpuSeconds: cpu, cpuSecondsPerMinute: seconds > 0 ? cpu / seconds * 60 : 0,
                    processes: memories, rssKiB: memories.reduce(0) { $0 + ($1.rollup["Rss"] ?? $1.status["VmRSS"] ?? 0) },
                    pssKiB: memories.reduce(0) { $0 + ($1.rollup["Pss"] ?? 0) }))
        }
        return Result(
            seconds: seconds, stealPercent: steal, loadBefore: loadBefore, loadAfter: Footprint.loadAverage(), daemons: daemons)
    }
}

/// Facts about the machine a benchmark ran on, recorded with its results.
public struct MachineFacts: Codable, Sendable {
    public var date: String
    public var cores: Int
    public var model: String
    public var kernel: String
    public var memoryKiB: Int
    public var load: [Double]

    public static func now() -> MachineFacts {
        let cpuinfo = KernelFile.read("/proc/cpuinfo") ?? ""
        let model =
            cpuinfo.split(separator: "\n").first { $0.hasPrefix("model name") }.flatMap { line in
                line.split(separator: ":", maxSplits: 1).last.map { $0.trimmingCharacters(in: .whitespaces) }
            } ?? "unknown"
        let kernel = KernelFile.read("/proc/sys/kernel/osrelease")?.trimmingCharacters(
            in: .whitespacesAndNewlines)
        let meminfo = KernelFile.read("/proc/meminfo") ?? ""
        return MachineFacts(
            date: ISO8601DateFormatter().string(from: Date()), cores: ProcessInfo.processInfo.activeProcessorCount, model: model,
            kernel: kernel ?? "unknown", memoryKiB: Footprint.kilobyteFields(meminfo)["MemTotal"] ?? 0, load: Footprint.loadAverage())
    }
}
