import Foundation
import UnderstudyEngine

#if canImport(Glibc)
    import Glibc
#endif

/// False failovers: a lab left alone (optionally with both cores busy or loss on one link)
/// while its servers' views and the group's place are watched. Any server judged down, any
/// move of the group, any stall hold or fence counts.
public struct IdleWatch {
    public enum Stress: String, CaseIterable, Sendable {
        case none
        /// A busy loop per core.
        case cpu
        /// 5 % loss on node1's interconnect (the lab has two links).
        case loss
    }

    public struct Result: Sendable {
        public var duration: Duration
        public var downEvents: [String]
        public var holderChanges: Int
        public var polls: Int
        /// Per daemon: CPU share over the watch (percent of one core) and resident memory (MiB).
        public var footprint: [String: (cpuPercent: Double, rssMiB: Double)]
    }

    /// utime + stime in clock ticks, and VmRSS in KiB, of a process.
    static func usage(of pid: Int32) -> (ticks: Double, rssKiB: Double)? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8), let close = stat.lastIndex(of: ")"),
            let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
        else { return nil }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 13, let user = Double(fields[11]), let system = Double(fields[12]) else { return nil }
        let rss = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") }?.split(separator: " ").dropFirst().first.flatMap {
            Double($0)
        }
        return (user + system, rss ?? 0)
    }

    /// The machine's CPU time so far (all CPUs, in clock ticks): total and stolen by the
    /// hypervisor. On a virtual machine whose host is busy, stolen time delays every timer:
    /// benchmarks print it so a reader can tell the machine's lateness from the program's.
    static func machineTicks() -> (total: Double, steal: Double)? {
        guard let stat = try? String(contentsOfFile: "/proc/stat", encoding: .utf8),
            let line = stat.split(separator: "\n").first(where: { $0.hasPrefix("cpu ") })
        else { return nil }
        let values = line.split(separator: " ").dropFirst().compactMap { Double($0) }
        // user nice system idle iowait irq softirq steal [guest guest_nice, already in user]
        guard values.count >= 8 else { return nil }
        return (values.prefix(8).reduce(0, +), values[7])
    }

    public let lab: Lab

    public init(lab: Lab) { self.lab = lab }

    /// Watches for `duration`; the alert logs say what happened in between.
    public func watch(for duration: Duration, stress: Stress) async throws -> Result {
        var busy: [Process] = []
        defer {
            for process in busy where process.isRunning {
                kill(process.processIdentifier, SIGKILL)
                process.waitUntilExit()
            }
            if stress == .loss { try? lab.clearNetem("node1", .interconnect) }
        }
        switch stress {
        case .none: break
        case .cpu:
            for _ in 0..<max(1, ProcessInfo.processInfo.activeProcessorCount) {
                let process = Process()
                process.executableURL = URL(fileURLWithPath: "/bin/sh")
                process.arguments = ["-c", "while :; do :; done"]
                try process.run()
                busy.append(process)
            }
        case .loss:
            try lab.netem("node1", .interconnect, direction: .both, lossPercent: 5)
        }
        let daemons = lab.spec.serverNames.compactMap { server in lab.pid(of: server).map { (server, $0.pid) } }
        let startUsage = daemons.map { Self.usage(of: $0.1) }
        let startedAt = ContinuousClock.now
        let alertLogs = lab.spec.serverNames.map { lab.spec.stateDirectory(of: $0) + "/alert.log" }
        let before = alertLogs.map { (try? String(contentsOfFile: $0, encoding: .utf8))?.count ?? 0 }
        var holder: String?
        var changes = 0
        var polls = 0
        let end = ContinuousClock.now + duration
        while ContinuousClock.now < end {
            if let status = await lab.status(on: lab.spec.serverNames[0]),
                let group = status.groups.first, let current = group.current
            {
                if let holder, holder != current { changes += 1 }
                holder = current
            }
            polls += 1
            try await Task.sleep(for: .milliseconds(250))
        }
        var footprint: [String: (cpuPercent: Double, rssMiB: Double)] = [:]
        let seconds = Double(startedAt.duration(to: .now).components.seconds)
        let ticksPerSecond = Double(sysconf(Int32(_SC_CLK_TCK)))
        for (index, (server, pid)) in daemons.enumerated() {
            guard let first = startUsage[index], let last = Self.usage(of: pid), seconds > 0 else { continue }
            footprint[server] = ((last.ticks - first.ticks) / ticksPerSecond / seconds * 100, last.rssKiB / 1024)
        }
        var events: [String] = []
        for (index, path) in alertLogs.enumerated() {
            guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { continue }
            let fresh = text.dropFirst(before[index])
            for line in fresh.split(separator: "\n")
            where line.contains("[nm 2]") || line.contains("[nm 30]") || line.contains("[nm 31]") || line.contains("[rc 60]")
                || line.contains("[rc 46]")
            {
                events.append(String(line))
            }
        }
        return Result(duration: duration, downEvents: events, holderChanges: changes, polls: polls, footprint: footprint)
    }
}
