import Foundation
import UnderstudyModel
import UnderstudyNode

#if canImport(Glibc)
    import Glibc
#endif

/// An error of the lab: what failed and, for a command, what it printed.
public struct LabError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// What a finished command printed (standard output and error together) and how it ended.
public struct LabCommandOutcome: Sendable, CustomStringConvertible {
    public var arguments: [String]
    public var exitCode: Int32
    public var output: String
    public var succeeded: Bool { exitCode == 0 }
    public var description: String { "`\(arguments.joined(separator: " "))` exited \(exitCode): \(output)" }
}

/// Runs short commands (ip, nft, tc, ping) with a bounded wait.
public enum LabShell {
    /// Where the tools are looked for (the environment of a test runner may lack /usr/sbin).
    static let searchPath = ["/usr/sbin", "/usr/bin", "/sbin", "/bin", "/usr/local/sbin", "/usr/local/bin"]

    /// The full path of `tool`, or nil when it is not installed.
    public static func which(_ tool: String) -> String? {
        if tool.hasPrefix("/") { return FileManager.default.isExecutableFile(atPath: tool) ? tool : nil }
        return searchPath.map { $0 + "/" + tool }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// Runs `arguments` (the first is the tool) and waits at most `timeout`; a command still
    /// running then is killed and reported with exit code 124.
    @discardableResult
    public static func run(_ arguments: [String], timeout: Duration = .seconds(10)) throws -> LabCommandOutcome {
        guard let tool = arguments.first, let path = which(tool) else {
            throw LabError("\(arguments.first ?? "(nothing)") is not installed (looked in \(searchPath.joined(separator: ":")))")
        }
        // Not Foundation's Process: its exits go unseen while a child that closed its
        // descriptors runs (UnderstudyNode/Scripts/SpawnedProcess.swift).
        let outcome = SpawnedProcess.run([path] + arguments.dropFirst(), timeout: timeout)
        return LabCommandOutcome(arguments: arguments, exitCode: outcome.status, output: outcome.output)
    }

    /// Runs `arguments` and throws when the command fails.
    @discardableResult
    public static func check(_ arguments: [String], timeout: Duration = .seconds(10)) throws -> String {
        let outcome = try run(arguments, timeout: timeout)
        guard outcome.succeeded else { throw LabError(outcome.description) }
        return outcome.output
    }
}

/// A process named by pid and start time (field 22 of /proc/PID/stat), so that a reused pid is
/// never signalled.
public struct LabProcess: Codable, Hashable, Sendable {
    public var pid: Int32
    public var startTime: UInt64

    public init?(pid: Int32) {
        guard let start = LabProcess.startTime(of: pid) else { return nil }
        self.pid = pid
        startTime = start
    }

    static func stat(of pid: Int32) -> [Substring]? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = text.lastIndex(of: ")")
        else { return nil }
        // Fields after the command name: state is field 3, start time field 22.
        return text[text.index(after: close)...].split(separator: " ")
    }

    static func startTime(of pid: Int32) -> UInt64? {
        guard let fields = stat(of: pid), fields.count > 19 else { return nil }
        return UInt64(fields[19])
    }

    /// True while this very process exists (a zombie counts as gone).
    public var isAlive: Bool {
        guard let fields = LabProcess.stat(of: pid), fields.count > 19, UInt64(fields[19]) == startTime else { return false }
        return fields[0] != "Z" && fields[0] != "X"
    }

    /// True while it is stopped (SIGSTOP).
    public var isStopped: Bool {
        guard let fields = LabProcess.stat(of: pid), fields.count > 19, UInt64(fields[19]) == startTime else { return false }
        return fields[0] == "T"
    }

    /// Sends `signal` when the process is still this one.
    @discardableResult
    public func signal(_ signal: Int32) -> Bool {
        guard isAlive else { return false }
        return kill(pid, signal) == 0
    }
}

/// Polls `condition` every `interval` until it holds or `timeout` passed; whether it held.
public func labPoll(
    upTo timeout: Duration, every interval: Duration = .milliseconds(100), _ condition: () async throws -> Bool
) async rethrows -> Bool {
    let deadline = ContinuousClock.now + timeout
    while true {
        if try await condition() { return true }
        if ContinuousClock.now >= deadline { return false }
        try? await Task.sleep(for: interval)
    }
}
