import Foundation
import Testing
import UnderstudyTestSupport

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// A fresh folder under the system temp folder, removed when `body` ends, whatever happens.
func withTemporaryFolder(_ body: (String) async throws -> Void) async throws {
    let temporary = URL(fileURLWithPath: NSTemporaryDirectory()).path
    var template = Array((temporary + "/understudy-test-" + mkdtempSuffix).utf8CString)
    guard let created = mkdtemp(&template) else {
        throw POSIXError(.EIO)
    }
    let folder = String(cString: created)
    defer { try? FileManager.default.removeItem(atPath: folder) }
    try await body(folder)
}

/// Writes an executable shell script and returns its path.
@discardableResult
func writeScript(_ folder: String, _ name: String, _ body: String, mode: Int = 0o755) throws -> String {
    let path = folder + "/" + name
    // Written through a close-on-exec descriptor: one inherited by a server another test
    // spawns meanwhile would keep the file open for writing, and running it would fail with
    // "Text file busy" (seen once in the alert tests).
    let descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
    guard descriptor >= 0 else { throw TestSupportError("cannot create \(path): \(String(cString: strerror(errno)))") }
    let bytes = Array(("#!/bin/sh\n" + body + "\n").utf8)
    let written = bytes.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
    close(descriptor)
    guard written == bytes.count else { throw TestSupportError("cannot write \(path)") }
    try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: path)
    return path
}

/// Reads a pid a script wrote to a file, waiting briefly for it to appear.
func readPID(_ path: String, within limit: Duration = .seconds(2)) async -> Int32? {
    let deadline = ContinuousClock.now + limit
    while ContinuousClock.now < deadline {
        if let text = try? String(contentsOfFile: path, encoding: .utf8),
            let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)), pid > 1
        {
            return pid
        }
        try? await Task.sleep(for: .milliseconds(10))
    }
    return nil
}

/// Whether the process no longer runs (gone, or a zombie waiting for init to reap it).
func processIsGone(_ pid: Int32) -> Bool {
    if kill(pid, 0) != 0 && errno == ESRCH { return true }
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
        let closing = stat.lastIndex(of: ")")
    else { return true }
    let state = stat[stat.index(after: closing)...].trimmingCharacters(in: .whitespaces).prefix(1)
    return state == "Z" || state == "X"
}

/// Polls `processIsGone` for a moment: reparented children die asynchronously.
func processIsGone(_ pid: Int32, within limit: Duration) async -> Bool {
    let deadline = ContinuousClock.now + limit
    while ContinuousClock.now < deadline {
        if processIsGone(pid) { return true }
        try? await Task.sleep(for: .milliseconds(10))
    }
    return processIsGone(pid)
}

/// Kills test processes by pid (never by name), for cleanup after a failed expectation.
final class ProcessReaper: @unchecked Sendable {
    private var pids: [Int32] = []
    private let lock = NSLock()

    func track(_ pid: Int32?) {
        guard let pid, pid > 1 else { return }
        lock.withLock { pids.append(pid) }
    }

    func killAll() {
        for pid in lock.withLock({ pids }) where !processIsGone(pid) {
            kill(pid, SIGKILL)
        }
    }
}

func residentMemoryBytes() -> Int {
    guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
    let fields = text.split(separator: " ")
    guard fields.count > 1, let pages = Int(fields[1]) else { return 0 }
    return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
}

/// The six characters mkdtemp(3) replaces with a unique name.
let mkdtempSuffix = String(repeating: "X", count: 6)
