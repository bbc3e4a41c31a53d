import Foundation
import UnderstudyEngine

#if canImport(Glibc)
    import Glibc
#endif

/// pidw: the process an asynchronous exec start script left running is alive (and not a
/// zombie).
struct ProcessAliveProbe: MonitorProbe {
    let pid: Int32?
    let resource: String

    func check() async -> MonitorResult { result() }

    func checkNow() -> MonitorResult? { result() }

    func result() -> MonitorResult {
        guard let pid else { return .error("resource \(resource) has no asynchronous process to watch") }
        guard ProcessTable.isAlive(pid) else { return .error("process \(pid) of \(resource) is gone") }
        return .normal
    }
}

/// psw: at least `minimum` processes whose name or command line matches `pattern`
/// (shell wildcards allowed, as `ps` shows them).
struct ProcessNameProbe: MonitorProbe {
    let pattern: String
    let minimum: Int

    func check() async -> MonitorResult {
        let count = ProcessTable.count(matching: pattern)
        if count >= minimum { return .normal }
        return .error("\(count) process\(count == 1 ? "" : "es") named \(pattern) (at least \(minimum) expected)")
    }
}

/// Reading /proc.
enum ProcessTable {
    static func isAlive(_ pid: Int32) -> Bool {
        guard pid > 0 else { return false }
        if kill(pid, 0) != 0 && errno != EPERM { return false }
        // A zombie has exited; only its parent has not reaped it yet.
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { return false }
        let state = stat[stat.index(after: close)...].trimmingCharacters(in: .whitespaces).first
        return state != "Z" && state != "X"
    }

    /// Processes whose short name (`comm`), command line, or program path matches.
    static func count(matching pattern: String) -> Int {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return 0 }
        var count = 0
        for entry in entries {
            guard let pid = Int32(entry), pid != getpid() else { continue }
            guard let raw = KernelFile.bytes("/proc/\(pid)/cmdline") else { continue }
            let arguments = raw.split(separator: 0, omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
            let commandLine = arguments.filter { !$0.isEmpty }.joined(separator: " ")
            let comm =
                (try? String(contentsOfFile: "/proc/\(pid)/comm", encoding: .utf8))?
                .trimmingCharacters(in: .newlines) ?? ""
            // Kernel threads have no command line; they still match by name.
            let program = arguments.first ?? ""
            let shortProgram = (program as NSString).lastPathComponent
            // "/bin/sleep 30" also matches "sleep 30".
            let shortCommandLine = ([shortProgram] + arguments.dropFirst().filter { !$0.isEmpty }).joined(separator: " ")
            let candidates = [commandLine, shortCommandLine, comm, program, shortProgram]
            if candidates.contains(where: { !$0.isEmpty && fnmatch(pattern, $0, 0) == 0 }) { count += 1 }
        }
        return count
    }
}
