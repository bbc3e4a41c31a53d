import Foundation
import UnderstudyNode

#if canImport(Glibc)
    import Glibc
#endif

/// What a daemon costs while idle, read from `/proc`: CPU time (utime + stime of it and of its
/// descendants), the memory counters of `/proc/PID/status` and `/proc/PID/smaps_rollup`, and a
/// breakdown of `/proc/PID/smaps` by what each mapping holds (the binary's text and data, heap,
/// thread stacks, malloc arenas, each shared library).
public enum Footprint {
    // MARK: - CPU

    /// utime + stime (and cutime + cstime: children it waited for) of one process, in clock
    /// ticks; its parent pid; nil when it is gone.
    public struct ProcessTicks: Codable, Sendable, Equatable {
        public var pid: Int32
        public var parent: Int32
        public var command: String
        public var startTime: UInt64
        public var own: Double
        public var children: Double

        public init(pid: Int32, parent: Int32, command: String, startTime: UInt64, own: Double, children: Double) {
            self.pid = pid
            self.parent = parent
            self.command = command
            self.startTime = startTime
            self.own = own
            self.children = children
        }
    }

    /// Parses `/proc/PID/stat` text.
    public static func parseStat(_ text: String, pid: Int32) -> ProcessTicks? {
        guard let open = text.firstIndex(of: "("), let close = text.lastIndex(of: ")") else { return nil }
        let command = String(text[text.index(after: open)..<close])
        let fields = text[text.index(after: close)...].split(separator: " ")
        // After the command: state(3) ppid(4) … utime(14) stime(15) cutime(16) cstime(17) … starttime(22).
        guard fields.count > 19, let parent = Int32(fields[1]), let user = Double(fields[11]), let system = Double(fields[12]),
            let childUser = Double(fields[13]), let childSystem = Double(fields[14]), let start = UInt64(fields[19])
        else { return nil }
        return ProcessTicks(
            pid: pid, parent: parent, command: command, startTime: start, own: user + system, children: childUser + childSystem)
    }

    public static func ticks(of pid: Int32) -> ProcessTicks? {
        guard let text = KernelFile.read("/proc/\(pid)/stat") else { return nil }
        return parseStat(text, pid: pid)
    }

    /// `root` and every live descendant (by the parent pids in `/proc/*/stat`), root first.
    public static func tree(of root: Int32) -> [ProcessTicks] {
        guard let rootTicks = ticks(of: root) else { return [] }
        let all = ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).compactMap(Int32.init).compactMap(ticks(of:))
        return descendants(of: rootTicks, in: all)
    }

    /// `root` and its descendants among `all`, root first (bounded by the table's size).
    public static func descendants(of root: ProcessTicks, in all: [ProcessTicks]) -> [ProcessTicks] {
        var result = [root]
        var frontier: Set<Int32> = [root.pid]
        var seen: Set<Int32> = [root.pid]
        for _ in 0..<all.count where !frontier.isEmpty {
            let next = all.filter { frontier.contains($0.parent) && !seen.contains($0.pid) }
            result += next
            frontier = Set(next.map(\.pid))
            seen.formUnion(frontier)
        }
        return result
    }

    /// CPU ticks a process tree spent between two samples: each process present in both (same
    /// pid and start time) counts its growth, one that appeared counts all it has; the
    /// `children` fields count the processes reaped meanwhile (scripts, `ip`, `ping`).
    public static func ticksSpent(from before: [ProcessTicks], to after: [ProcessTicks]) -> Double {
        var total = 0.0
        for process in after {
            if let earlier = before.first(where: { $0.pid == process.pid && $0.startTime == process.startTime }) {
                total += (process.own - earlier.own) + (process.children - earlier.children)
            } else {
                total += process.own + process.children
            }
        }
        return total
    }

    public static var ticksPerSecond: Double { Double(sysconf(Int32(_SC_CLK_TCK))) }

    // MARK: - Machine

    /// CPU ticks of the whole machine (`cpu` line of `/proc/stat`): total and stolen by the
    /// hypervisor.
    public struct MachineTicks: Codable, Sendable {
        public var total: Double
        public var steal: Double

        public static func now() -> MachineTicks? {
            IdleWatch.machineTicks().map { MachineTicks(total: $0.total, steal: $0.steal) }
        }

        /// Percent of all CPU time stolen between `self` and `later`.
        public func stealPercent(until later: MachineTicks) -> Double {
            let total = later.total - self.total
            return total > 0 ? (later.steal - steal) / total * 100 : 0
        }
    }

    /// The 1, 5 and 15 minute load averages.
    public static func loadAverage() -> [Double] {
        guard let text = KernelFile.read("/proc/loadavg") else { return [] }
        return text.split(separator: " ").prefix(3).compactMap { Double($0) }
    }

    // MARK: - Memory

    /// The memory of one process: counters of `status` and `smaps_rollup` (KiB) and the
    /// breakdown of `smaps` by category.
    public struct Memory: Codable, Sendable {
        public var pid: Int32
        public var command: String
        public var threads: Int
        /// VmRSS, RssAnon, RssFile, RssShmem, VmHWM, VmSize, VmData, VmStk, VmExe, VmLib, VmPTE (KiB).
        public var status: [String: Int]
        /// Rss, Pss, Pss_Anon, Pss_File, Pss_Shmem, Shared_Clean, Shared_Dirty, Private_Clean,
        /// Private_Dirty, Anonymous, Swap (KiB).
        public var rollup: [String: Int]
        public var categories: [Category]

        public init(pid: Int32, command: String, threads: Int, status: [String: Int], rollup: [String: Int], categories: [Category]) {
            self.pid = pid
            self.command = command
            self.threads = threads
            self.status = status
            self.rollup = rollup
            self.categories = categories
        }
    }

    /// One line of the breakdown: what the mappings hold, and their sizes (KiB).
    public struct Category: Codable, Sendable, Equatable {
        public var name: String
        public var mappings: Int
        public var size: Int
        public var rss: Int
        public var pss: Int
        /// Pages the process wrote (copy-on-write copies of file pages count here).
        public var privateDirty: Int
        public var anonymous: Int
    }

    static let statusKeys = ["VmRSS", "RssAnon", "RssFile", "RssShmem", "VmHWM", "VmSize", "VmData", "VmStk", "VmExe", "VmLib", "VmPTE"]

    /// `Key:   123 kB` lines into a dictionary (KiB); other lines are skipped.
    public static func kilobyteFields(_ text: String) -> [String: Int] {
        var fields: [String: Int] = [:]
        for line in text.split(separator: "\n") {
            guard let colon = line.firstIndex(of: ":") else { continue }
            let parts = line[line.index(after: colon)...].split(whereSeparator: \.isWhitespace)
            guard parts.count == 2, parts[1] == "kB", let value = Int(parts[0]) else { continue }
            fields[String(line[..<colon])] = value
        }
        return fields
    }

    /// One mapping of `smaps`: its header line and its counters (KiB).
    public struct Mapping: Sendable, Equatable {
        public var start: UInt64
        public var end: UInt64
        public var permissions: String
        public var path: String
        public var fields: [String: Int]
    }

    /// Parses `/proc/PID/smaps`.
    public static func parseSmaps(_ text: String) -> [Mapping] {
        var mappings: [Mapping] = []
        for line in text.split(separator: "\n", omittingEmptySubsequences: true) {
            // A header: "start-end perms offset dev inode [path]"; counters: "Key: value kB".
            let first = line.split(separator: " ", maxSplits: 1).first ?? ""
            if let dash = first.firstIndex(of: "-"), let start = UInt64(first[..<dash], radix: 16),
                let end = UInt64(first[first.index(after: dash)...], radix: 16)
            {
                let parts = line.split(separator: " ", maxSplits: 5, omittingEmptySubsequences: true)
                guard parts.count >= 5 else { continue }
                let path = parts.count == 6 ? parts[5].trimmingCharacters(in: .whitespaces) : ""
                mappings.append(Mapping(start: start, end: end, permissions: String(parts[1]), path: path, fields: [:]))
            } else if !mappings.isEmpty, let colon = line.firstIndex(of: ":") {
                let parts = line[line.index(after: colon)...].split(whereSeparator: \.isWhitespace)
                if parts.count == 2, parts[1] == "kB", let value = Int(parts[0]) {
                    mappings[mappings.count - 1].fields[String(line[..<colon])] = value
                }
            }
        }
        return mappings
    }

    /// Sorts mappings into categories:
    /// - `binary text` / `binary rodata + relro` / `binary data` / `binary bss`: the mappings
    ///   of `executable` (executable, read-only, writable) and the anonymous mapping right after
    ///   its last one (.bss beyond the file); relocated read-only data (RELRO) shows as private
    ///   dirty pages of the read-only part;
    /// - `heap`: `[heap]` (the main arena, brk);
    /// - `thread stacks`: `[stack]` and every anonymous mapping that holds a thread's stack
    ///   pointer (`stackPointers`, from `/proc/PID/task/TID/syscall`), or that sits right above
    ///   a guard page (`---p`) as glibc places them;
    /// - `malloc arenas`: anonymous writable mappings starting on a 64 MiB boundary (glibc's
    ///   per-thread heaps: NIO buffers and Swift objects allocated off the main thread);
    /// - `other anon`: the rest of the anonymous memory (Swift runtime metadata, mmap'ed
    ///   allocations over the mmap threshold, NIO pools);
    /// - `lib NAME`: each shared library, all its mappings;
    /// - `kernel`: `[vdso]`, `[vvar]`, `[vsyscall]`; `file PATH`: other files; `shmem`: SysV/memfd.
    public static func categorize(_ mappings: [Mapping], executable: String, stackPointers: [UInt64]) -> [Category] {
        var totals: [String: Category] = [:]
        var order: [String] = []
        let lastBinary = mappings.lastIndex { $0.path == executable }
        func add(_ name: String, _ mapping: Mapping) {
            if totals[name] == nil {
                totals[name] = Category(name: name, mappings: 0, size: 0, rss: 0, pss: 0, privateDirty: 0, anonymous: 0)
                order.append(name)
            }
            totals[name]?.mappings += 1
            totals[name]?.size += mapping.fields["Size"] ?? Int((mapping.end - mapping.start) / 1024)
            totals[name]?.rss += mapping.fields["Rss"] ?? 0
            totals[name]?.pss += mapping.fields["Pss"] ?? 0
            totals[name]?.privateDirty += mapping.fields["Private_Dirty"] ?? 0
            totals[name]?.anonymous += mapping.fields["Anonymous"] ?? 0
        }
        for (index, mapping) in mappings.enumerated() {
            let path = mapping.path
            let writable = mapping.permissions.hasPrefix("rw")
            if !executable.isEmpty && path == executable {
                if mapping.permissions.contains("x") {
                    add("binary text", mapping)
                } else if writable {
                    add("binary data", mapping)
                } else {
                    add("binary rodata + relro", mapping)
                }
            } else if path == "[heap]" {
                add("heap", mapping)
            } else if path == "[stack]" {
                add("thread stacks", mapping)
            } else if path == "[vdso]" || path == "[vvar]" || path == "[vsyscall]" || path == "[vvar_vclock]" {
                add("kernel", mapping)
            } else if path.isEmpty || path.hasPrefix("[anon") {
                if let lastBinary, index == lastBinary + 1, mappings[lastBinary].end == mapping.start {
                    add("binary bss", mapping)
                } else if mapping.permissions == "---p" {
                    add("guard pages and reservations", mapping)
                } else if stackPointers.contains(where: { $0 >= mapping.start && $0 < mapping.end })
                    || (writable && index > 0 && mappings[index - 1].permissions == "---p" && mappings[index - 1].end == mapping.start
                        && mappings[index - 1].path.isEmpty && mapping.start % (64 << 20) != 0
                        && (mappings[index - 1].end - mappings[index - 1].start) <= 64 << 10)
                {
                    add("thread stacks", mapping)
                } else if writable && mapping.start % (64 << 20) == 0 {
                    add("malloc arenas", mapping)
                } else {
                    add("other anon", mapping)
                }
            } else if path.hasPrefix("/SYSV") || path.hasPrefix("/memfd:") || path.hasPrefix("/dev/shm") {
                add("shmem", mapping)
            } else if path.contains(".so") {
                add("lib " + (path as NSString).lastPathComponent, mapping)
            } else {
                add("file " + path, mapping)
            }
        }
        return order.compactMap { totals[$0] }
    }

    /// The stack pointers of every thread of `pid` (`/proc/PID/task/TID/syscall`: the second
    /// to last field; "running" threads have none). Needs the right to ptrace the process (root).
    public static func stackPointers(of pid: Int32) -> [UInt64] {
        let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? []
        return tasks.compactMap { task in
            guard let text = KernelFile.read("/proc/\(pid)/task/\(task)/syscall") else { return nil }
            let fields = text.split(separator: " ")
            guard fields.count >= 3 else { return nil }
            let field = fields[fields.count - 2]
            return UInt64(field.hasPrefix("0x") ? field.dropFirst(2) : field, radix: 16)
        }
    }

    /// The memory of `pid` now, or nil when it is gone.
    public static func memory(of pid: Int32) -> Memory? {
        guard let status = KernelFile.read("/proc/\(pid)/status") else { return nil }
        let rollup = KernelFile.read("/proc/\(pid)/smaps_rollup") ?? ""
        let smaps = KernelFile.read("/proc/\(pid)/smaps") ?? ""
        let executable = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/exe")) ?? ""
        let statusFields = kilobyteFields(status)
        let threads =
            status.split(separator: "\n").first { $0.hasPrefix("Threads:") }.flatMap { line in
                line.split(separator: "\t").last.flatMap { Int($0.trimmingCharacters(in: .whitespaces)) }
            } ?? 0
        let command = KernelFile.read("/proc/\(pid)/comm")?.trimmingCharacters(in: .whitespacesAndNewlines)
        return Memory(
            pid: pid, command: command ?? "", threads: threads, status: statusFields.filter { statusKeys.contains($0.key) },
            rollup: kilobyteFields(rollup),
            categories: categorize(parseSmaps(smaps), executable: executable, stackPointers: stackPointers(of: pid)))
    }

    /// The lines of a breakdown, largest resident first, as a Markdown table.
    public static func breakdownTable(_ memory: Memory) -> String {
        var lines = [
            "| \(memory.command) pid \(memory.pid) | mappings | size KiB | RSS KiB | PSS KiB | private dirty KiB | anonymous KiB |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        for category in memory.categories.sorted(by: { $0.rss > $1.rss }) where category.rss > 0 {
            lines.append(
                "| \(category.name) | \(category.mappings) | \(category.size) | \(category.rss) | \(category.pss) | \(category.privateDirty) | \(category.anonymous) |"
            )
        }
        let rss = memory.categories.reduce(0) { $0 + $1.rss }
        let pss = memory.categories.reduce(0) { $0 + $1.pss }
        lines.append("| total | \(memory.categories.reduce(0) { $0 + $1.mappings }) | | \(rss) | \(pss) | | |")
        return lines.joined(separator: "\n")
    }
}
