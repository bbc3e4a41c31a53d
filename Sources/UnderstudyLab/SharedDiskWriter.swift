import Foundation
import UnderstudyNode

#if canImport(Glibc)
    import Glibc
#endif

/// The shared-disk service of the safety run: appends numbered records to a file on the
/// shared file system, `fsync`s each, and only then acknowledges it in a file of its own
/// server (outside the shared disk, fsync'ed too). A record acknowledged but missing from the
/// disk afterwards is a lost write; records of two servers interleaved in time mean two
/// servers wrote at once.
public enum SharedDiskWriter {
    public static let period: Duration = .milliseconds(20)

    /// Runs until killed. Record line: `server pid seq boottime-ns`.
    public static func run(server: String, file: String, acknowledgements: String, pidFile: String?) -> Never {
        if let pidFile { try? "\(getpid())\n".write(toFile: pidFile, atomically: true, encoding: .utf8) }
        let records = open(file, O_WRONLY | O_APPEND | O_CREAT, 0o644)
        let acks = open(acknowledgements, O_WRONLY | O_APPEND | O_CREAT, 0o644)
        guard records >= 0, acks >= 0 else {
            FileHandle.standardError.write(Data("disk-writer: cannot open \(file) or \(acknowledgements)\n".utf8))
            exit(1)
        }
        let me = getpid()
        var sequence: UInt64 = 0
        while true {
            sequence += 1
            let line = "\(server) \(me) \(sequence) \(LeaseFile.boottimeNow())\n"
            // A failed write or fsync is not acknowledged: the writer stops (the disk is gone).
            guard write(records, line, line.utf8.count) == line.utf8.count, fsync(records) == 0 else { exit(2) }
            let ack = "\(server) \(me) \(sequence)\n"
            guard write(acks, ack, ack.utf8.count) == ack.utf8.count, fsync(acks) == 0 else { exit(3) }
            usleep(UInt32(period.components.attoseconds / 1_000_000_000_000))
        }
    }
}

/// What the shared disk held after a safety run, checked against what the writers
/// acknowledged.
public struct SharedDiskCheck: Sendable {
    public struct Record: Hashable, Sendable {
        public var server: String
        public var pid: Int
        public var sequence: Int

        public init(server: String, pid: Int, sequence: Int) {
            self.server = server
            self.pid = pid
            self.sequence = sequence
        }
    }

    /// Records the writers acknowledged that the disk does not hold.
    public var lost: [Record] = []
    /// Places where the file switches to another server's records and back while the first
    /// server's writer was still writing: two writers at once.
    public var interleavings: [String] = []
    public var records = 0
    public var acknowledged = 0
    /// How often the file changed hands (one writer's run to another's).
    public var handovers = 0

    public init(diskRecords: String, acknowledgements: [String]) {
        var onDisk: Set<Record> = []
        // Runs of consecutive records of one writer (server and pid), in file order.
        var runs: [(writer: String, first: Int64, last: Int64)] = []
        for line in diskRecords.split(separator: "\n") {
            let fields = line.split(separator: " ")
            guard fields.count == 4, let pid = Int(fields[1]), let sequence = Int(fields[2]), let at = Int64(fields[3]) else {
                continue
            }
            records += 1
            onDisk.insert(Record(server: String(fields[0]), pid: pid, sequence: sequence))
            let writer = "\(fields[0])/\(pid)"
            if let last = runs.last, last.writer == writer {
                runs[runs.count - 1].last = at
            } else {
                runs.append((writer, at, at))
            }
        }
        handovers = max(0, runs.count - 1)
        // The same writer appearing again after another one: the other wrote while it lived.
        var lastRunOf: [String: Int] = [:]
        for (index, run) in runs.enumerated() {
            if let previous = lastRunOf[run.writer], previous != index - 1 {
                interleavings.append(
                    "\(run.writer) wrote again after \(runs[previous + 1].writer) had written (record times \(runs[previous].last) … \(run.first))"
                )
            }
            lastRunOf[run.writer] = index
        }
        // Runs must follow each other in time too: a later run starting before an earlier ended.
        for index in runs.indices.dropFirst() where runs[index].first < runs[index - 1].last {
            interleavings.append(
                "\(runs[index].writer) wrote at \(runs[index].first), before \(runs[index - 1].writer)'s last record at \(runs[index - 1].last)"
            )
        }
        for text in acknowledgements {
            for line in text.split(separator: "\n") {
                let fields = line.split(separator: " ")
                guard fields.count == 3, let pid = Int(fields[1]), let sequence = Int(fields[2]) else { continue }
                acknowledged += 1
                let record = Record(server: String(fields[0]), pid: pid, sequence: sequence)
                if !onDisk.contains(record) { lost.append(record) }
            }
        }
    }
}

/// Samples, every `period`, whether each lab server has the shared file system mounted: in
/// any mount namespace of any process inside the server's network namespace (the daemon's,
/// and after a kill -9 its keeper's and services'). Afterwards, the intervals during which
/// two servers had it mounted at once.
public final class MountSampler: @unchecked Sendable {
    public static let period: Duration = .milliseconds(50)

    let mountPoint: String
    /// Server → the inode of its network namespace file.
    let namespaces: [String: UInt64]
    private let lock = NSLock()
    private var samples: [(at: Int64, mounted: Set<String>)] = []

    public init(spec: LabSpec) {
        mountPoint = spec.sharedMountPoint
        var namespaces: [String: UInt64] = [:]
        for server in spec.serverNames {
            var info = stat()
            if stat("/run/netns/" + spec.namespace(of: server), &info) == 0 { namespaces[server] = UInt64(info.st_ino) }
        }
        self.namespaces = namespaces
    }

    /// One sample: the servers that have it mounted now.
    public func mountedNow() -> Set<String> {
        guard let pids = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return [] }
        var seenMountNamespaces: Set<UInt64> = []
        var mounted: Set<String> = []
        for name in pids where name.first?.isNumber == true {
            var net = stat()
            var mnt = stat()
            guard stat("/proc/\(name)/ns/net", &net) == 0, stat("/proc/\(name)/ns/mnt", &mnt) == 0,
                let server = namespaces.first(where: { $0.value == UInt64(net.st_ino) })?.key,
                !mounted.contains(server), seenMountNamespaces.insert(UInt64(mnt.st_ino)).inserted
            else { continue }
            if MountTable.entry(at: mountPoint, in: MountTable.current(path: "/proc/\(name)/mountinfo")) != nil {
                mounted.insert(server)
            }
        }
        return mounted
    }

    /// Samples until the task is cancelled.
    public func run() async {
        while !Task.isCancelled {
            let now = LeaseFile.boottimeNow()
            let mounted = mountedNow()
            lock.withLock { samples.append((now, mounted)) }
            try? await Task.sleep(for: Self.period)
        }
    }

    public var sampleCount: Int { lock.withLock { samples.count } }

    /// Samples at which more than one server had the file system mounted.
    public var doubleMounts: [String] {
        lock.withLock { samples.filter { $0.mounted.count > 1 } }.map {
            "\($0.mounted.sorted().joined(separator: " and ")) had it mounted at boottime \(Double($0.at) / 1e9) s"
        }
    }

    /// Seconds each server had it mounted (by samples).
    public var mountedSeconds: [String: Double] {
        let list = lock.withLock { samples }
        var seconds: [String: Double] = [:]
        for (index, sample) in list.enumerated().dropFirst() {
            let length = Double(sample.at - list[index - 1].at) / 1e9
            for server in list[index - 1].mounted { seconds[server, default: 0] += length }
        }
        return seconds
    }
}
