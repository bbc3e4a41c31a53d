import Foundation
import UnderstudyNode

#if canImport(Glibc)
    import Glibc
#endif

/// The service of the safety run: it considers itself active while its server's lease
/// (`UNDERSTUDY_LEASE_FILE`) is valid, and records each moment it does, every 10 ms, as
/// `server boottime-ns lease-ns`. It is what a service that must never run twice does: check
/// the lease, then act.
public enum ActivityRecorder {
    public static let period: Duration = .milliseconds(10)

    /// Runs until killed.
    public static func run(server: String, leaseFile: String, output: String, pidFile: String?) -> Never {
        if let pidFile { try? "\(getpid())\n".write(toFile: pidFile, atomically: true, encoding: .utf8) }
        if !FileManager.default.fileExists(atPath: output) { _ = FileManager.default.createFile(atPath: output, contents: nil) }
        guard let handle = FileHandle(forWritingAtPath: output) else {
            FileHandle.standardError.write(Data("recorder: cannot open \(output)\n".utf8))
            exit(1)
        }
        handle.seekToEndOfFile()
        while true {
            let now = LeaseFile.boottimeNow()
            if let lease = LeaseFile.read(leaseFile), lease > now {
                handle.write(Data("\(server) \(now) \(lease)\n".utf8))
            }
            usleep(10_000)
        }
    }
}

/// Reads the recorders' lines and finds moments when two servers considered themselves
/// active at once (invariant I1 as a service sees it).
public struct ActivityCheck: Sendable {
    public struct Overlap: Sendable, CustomStringConvertible {
        public var servers: (String, String)
        public var start: Int64
        public var length: Int64
        public var description: String {
            "\(servers.0) and \(servers.1) active together for \(Double(length) / 1e6) ms at boottime \(Double(start) / 1e9) s"
        }
    }

    /// Per server, the intervals during which it considered itself active: each sample
    /// covers the time until the next one is due (two periods), never past its lease.
    public var intervals: [String: [(Int64, Int64)]] = [:]
    public var samples = 0

    public init(lines: [Substring]) {
        var raw: [String: [(Int64, Int64)]] = [:]
        let reach = Int64(ActivityRecorder.period.components.attoseconds / 1_000_000_000) * 2
        for line in lines {
            let parts = line.split(separator: " ")
            guard parts.count == 3, let at = Int64(parts[1]), let lease = Int64(parts[2]) else { continue }
            samples += 1
            raw[String(parts[0]), default: []].append((at, min(lease, at + reach)))
        }
        for (server, list) in raw {
            var merged: [(Int64, Int64)] = []
            for interval in list.sorted(by: { $0.0 < $1.0 }) {
                if let last = merged.last, interval.0 <= last.1 {
                    merged[merged.count - 1].1 = max(last.1, interval.1)
                } else {
                    merged.append(interval)
                }
            }
            intervals[server] = merged
        }
    }

    public init(files: [String]) {
        let lines = files.flatMap { file -> [Substring] in
            guard let text = try? String(contentsOfFile: file, encoding: .utf8) else { return [] }
            return text.split(separator: "\n")
        }
        self.init(lines: lines)
    }

    public var overlaps: [Overlap] {
        var found: [Overlap] = []
        let servers = intervals.keys.sorted()
        for (index, first) in servers.enumerated() {
            for second in servers[(index + 1)...] {
                for a in intervals[first] ?? [] {
                    for b in intervals[second] ?? [] where a.0 < b.1 && b.0 < a.1 {
                        let start = max(a.0, b.0)
                        found.append(Overlap(servers: (first, second), start: start, length: min(a.1, b.1) - start))
                    }
                }
            }
        }
        return found
    }

    /// Total active time of each server, in seconds.
    public var activeSeconds: [String: Double] {
        intervals.mapValues { list in Double(list.reduce(0) { $0 + ($1.1 - $1.0) }) / 1e9 }
    }
}
