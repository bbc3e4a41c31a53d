import Foundation
import Logging
import Testing

@testable import UnderstudyNode

#if canImport(Glibc)
    import Glibc
#endif

/// What the keeper relies on when the daemon dies: every process the daemon spawned carries
/// its instance token and can be found and killed; `keeper.lock` makes a new daemon wait.
@Suite("Keeper: instance processes and lock")
struct KeeperTests {
    func spawnSleep(token: String?) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sleep")
        process.arguments = ["30"]
        var environment = ["PATH": "/usr/bin:/bin"]
        if let token { environment[DaemonInstance.variable] = token }
        process.environment = environment
        try process.run()
        return process
    }

    @Test("processes with the token are found and killed; others are left alone")
    func findAndKill() async throws {
        let token = "test-\(getpid())-\(UInt64.random(in: 1...UInt64.max))"
        let marked = try spawnSleep(token: token)
        let other = try spawnSleep(token: token + "-other")
        let plain = try spawnSleep(token: nil)
        defer { for process in [marked, other, plain] where process.isRunning { kill(process.processIdentifier, SIGKILL) } }
        // `run()` returns once the child is forked; until it has exec'd `sleep`, its environment
        // in /proc is still the test runner's (a loaded machine showed it: CI of 2026-12-07).
        var found = InstanceProcesses.find(token: token)
        let deadline = ContinuousClock.now + .seconds(5)
        while found != [marked.processIdentifier], ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(20))
            found = InstanceProcesses.find(token: token)
        }
        #expect(found == [marked.processIdentifier])
        let survivors = await InstanceProcesses.killAll(token: token, limit: .seconds(5))
        #expect(survivors.isEmpty)
        marked.waitUntilExit()
        #expect(marked.terminationReason == .uncaughtSignal && marked.terminationStatus == SIGKILL)
        #expect(other.isRunning && plain.isRunning)
        #expect(InstanceProcesses.describe(other.processIdentifier).contains("sleep"))
    }

    @Test("processes spawned through the script runner carry this process's token")
    func scriptRunnerMarks() async throws {
        let folder = NSTemporaryDirectory() + "understudy-keeper-\(getpid())"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let output = folder + "/env"
        let outcome = await ScriptRunner().run(
            ScriptInvocation(
                executable: "/bin/sh", arguments: ["-c", "echo \"$\(DaemonInstance.variable)\" > '\(output)'"],
                environment: ["PATH": "/usr/bin:/bin"], timeout: .seconds(10)))
        #expect(outcome.isSuccess)
        #expect((try? String(contentsOfFile: output, encoding: .utf8)) == DaemonInstance.token + "\n")
        let net = await NetCommandRunner().run(["/bin/sh", "-c", "echo \"$\(DaemonInstance.variable)\""])
        #expect(net.standardOutput == DaemonInstance.token + "\n")
    }

    @Test("a daemon waits for keeper.lock and names the keeper holding it when it gives up")
    func lockWait() async throws {
        let folder = NSTemporaryDirectory() + "understudy-keeper-lock-\(getpid())"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let lock = KeeperLock(stateDirectory: folder)
        let logger = Logger(label: "test")
        try await lock.waitUntilFree(limit: .milliseconds(100), logger: logger)
        #expect(lock.acquire(logger: logger))
        do {
            try await lock.waitUntilFree(limit: .milliseconds(300), logger: logger)
            Issue.record("waited through a held lock")
        } catch {
            #expect(error.description.contains("pid \(getpid())") && error.description.contains(lock.path))
        }
        #expect(!lock.tryAcquire())
        lock.release()
        try await lock.waitUntilFree(limit: .milliseconds(100), logger: logger)
    }
}
