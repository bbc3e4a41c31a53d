import Foundation
import UnderstudyTestSupport

@testable import UnderstudyNode

#if canImport(Glibc)
    import Glibc
#endif

/// A server a test starts in the foreground (smbd, ganesha.nfsd, rpcbind) and ends by its
/// pid: SIGCONT (the test may have stopped it), SIGTERM, then SIGKILL for it and the children
/// it forked (smbd forks one per client and a few helpers).
final class TestServer: @unchecked Sendable {
    let process = Process()
    let name: String

    init(_ name: String, executable: String, arguments: [String], log: String) throws {
        self.name = name
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        process.standardOutput = handle
        process.standardError = handle
        process.standardInput = FileHandle.nullDevice
        try process.run()
    }

    var pid: Int32 { process.processIdentifier }

    func signal(_ number: Int32) { if process.isRunning { kill(pid, number) } }

    /// The pids whose parent is `parent` (from /proc).
    static func children(of parent: Int32) -> [Int32] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap { Int32($0) }.filter { child in
            guard let stat = try? String(contentsOfFile: "/proc/\(child)/stat", encoding: .utf8),
                let close = stat.lastIndex(of: ")")
            else { return false }
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            return fields.count > 2 && Int32(fields[1]) == parent
        }
    }

    /// Ends the server and its children; bounded (a few seconds at most).
    func stop() {
        let children = Self.children(of: pid)
        for child in children { kill(child, SIGCONT) }
        if process.isRunning {
            kill(pid, SIGCONT)
            kill(pid, SIGTERM)
            for _ in 0..<50 where process.isRunning { usleep(100_000) }
            if process.isRunning {
                kill(pid, SIGKILL)
                for _ in 0..<50 where process.isRunning { usleep(100_000) }
            }
        }
        for child in children where kill(child, 0) == 0 { kill(child, SIGKILL) }
    }

    /// Waits until something accepts TCP connections on 127.0.0.1:`port`.
    static func waitForListener(port: Int, within timeout: Duration = .seconds(20)) async -> Bool {
        await eventually(within: timeout, every: .milliseconds(100)) {
            do {
                _ = try ONCRPC.Connection(host: "127.0.0.1", port: port, deadline: .now + .seconds(1))
                return true
            } catch {
                return false
            }
        }
    }

    static func folder(_ name: String) throws -> String {
        let path = NSTemporaryDirectory() + "understudy-\(name)-\(getpid())-\(UUID().uuidString.prefix(6))"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    static func run(_ arguments: [String], timeout: Duration = .seconds(30)) async -> NetCommandResult {
        await NetCommandRunner().run(arguments, timeout: timeout)
    }
}
