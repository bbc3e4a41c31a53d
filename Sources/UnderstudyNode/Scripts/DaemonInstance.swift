import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Marks every process this daemon spawns (scripts, mount, fsck, `ip` …) with a variable
/// unique to this daemon's life, so that its keeper can find and kill them when the daemon
/// dies. A `mount` started just before a kill -9 would otherwise go on in the kernel, finish
/// after the keeper's fence and leave the file system mounted on a server nobody manages.
/// The environment is set before exec: unlike a pid list the daemon would write after the
/// spawn, no process can escape it, and children of scripts inherit it.
public enum DaemonInstance {
    public static let variable = "UNDERSTUDY_INSTANCE"

    /// This process's token: its pid and a random number (pids are reused).
    public static let token: String = "\(getpid())-\(String(UInt64.random(in: 1...UInt64.max), radix: 16))"

    /// The environment entry every spawned process gets.
    static var entry: String { variable + "=" + token }
}

/// The processes that carry a daemon's instance token: everything it spawned that still runs.
public enum InstanceProcesses {
    /// Live processes (zombies excluded) whose environment holds `token`, the caller excluded.
    public static func find(token: String, procRoot: String = "/proc") -> [Int32] {
        let wanted = Array((DaemonInstance.variable + "=" + token).utf8)
        let me = getpid()
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: procRoot) else { return [] }
        var found: [Int32] = []
        for entry in entries {
            guard let pid = Int32(entry), pid > 1, pid != me else { continue }
            // A zombie's environ reads empty; a process gone meanwhile reads nothing.
            guard let environ = FileManager.default.contents(atPath: "\(procRoot)/\(entry)/environ") else { continue }
            if environ.split(separator: 0, omittingEmptySubsequences: true).contains(where: { $0.elementsEqual(wanted) }) {
                found.append(pid)
            }
        }
        return found.sorted()
    }

    /// SIGKILLs every process of `token` until none is left or `limit` has passed; returns
    /// those still alive then (a process blocked in the kernel dies only when it wakes).
    public static func killAll(token: String, limit: Duration, procRoot: String = "/proc") async -> [Int32] {
        let deadline = ContinuousClock.now + limit
        var alive = find(token: token, procRoot: procRoot)
        // Bounded: at most one pass every 20 ms until the deadline.
        while !alive.isEmpty && ContinuousClock.now < deadline {
            for pid in alive { _ = kill(pid, SIGKILL) }
            try? await Task.sleep(for: .milliseconds(20))
            alive = find(token: token, procRoot: procRoot)
        }
        return alive
    }

    /// "1234 (mount)" for a log line.
    public static func describe(_ pid: Int32, procRoot: String = "/proc") -> String {
        let command = (try? String(contentsOfFile: "\(procRoot)/\(pid)/comm", encoding: .utf8))?
            .trimmingCharacters(in: .whitespacesAndNewlines)
        return command.map { "\(pid) (\($0))" } ?? "\(pid)"
    }
}
