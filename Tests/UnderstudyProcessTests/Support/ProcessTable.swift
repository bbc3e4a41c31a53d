import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A process known by pid and start time, so that a pid reused later by an unrelated
/// process is never signalled.
struct ProcessIdentity: Hashable, Sendable {
    var pid: pid_t
    var startTime: UInt64

    /// Still the same process, and not a zombie.
    var isAlive: Bool {
        guard let entry = ProcessTable.entry(of: pid) else { return false }
        return entry.startTime == startTime && entry.state != "Z"
    }

    func kill(_ signal: Int32 = SIGKILL) {
        if isAlive { _ = Glibc.kill(pid, signal) }
    }
}

/// Reads `/proc`: parents and start times of processes, to find what a daemon started.
enum ProcessTable {
    struct Entry {
        var pid: pid_t
        var state: Character
        var parent: pid_t
        var startTime: UInt64
    }

    /// Fields of `/proc/PID/stat` after the command name: state (3), ppid (4), starttime (22).
    static func entry(of pid: pid_t) -> Entry? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = text.lastIndex(of: ")")
        else { return nil }
        let fields = text[text.index(after: close)...].split(separator: " ")
        guard fields.count > 19, let state = fields[0].first, let parent = pid_t(fields[1]), let start = UInt64(fields[19]) else {
            return nil
        }
        return Entry(pid: pid, state: state, parent: parent, startTime: start)
    }

    static func identity(of pid: pid_t) -> ProcessIdentity? {
        entry(of: pid).map { ProcessIdentity(pid: pid, startTime: $0.startTime) }
    }

    /// Living processes whose working directory is `folder` or inside it (exec scripts run
    /// in the folder of their script, and so do the processes they leave behind).
    static func processes(workingIn folder: String) -> [ProcessIdentity] {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return [] }
        return names.compactMap { pid_t($0) }.compactMap { pid -> ProcessIdentity? in
            guard pid != getpid(), let cwd = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/cwd"),
                cwd == folder || cwd.hasPrefix(folder + "/")
            else { return nil }
            return identity(of: pid)
        }
    }

    /// Every living descendant of `root` (children, their children, …).
    static func descendants(of root: pid_t) -> [ProcessIdentity] {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return [] }
        let entries = names.compactMap { pid_t($0) }.compactMap { entry(of: $0) }
        var children: [pid_t: [Entry]] = [:]
        for entry in entries { children[entry.parent, default: []].append(entry) }
        var found: [ProcessIdentity] = []
        var queue = [root]
        while let parent = queue.popLast() {
            for child in children[parent] ?? [] where child.state != "Z" {
                found.append(ProcessIdentity(pid: child.pid, startTime: child.startTime))
                queue.append(child.pid)
            }
        }
        return found
    }
}
