import Foundation
import Logging
import Testing
import UnderstudyEngine
import UnderstudyModel
import UnderstudyTestSupport

@testable import UnderstudyNode

@Suite("exec: the record of script processes")
struct ExecProcessRecordTests {
    /// A state folder for the test, removed afterwards.
    func withFolder(_ body: (String) async throws -> Void) async throws {
        let folder = NSTemporaryDirectory() + "understudy-execrecord-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try await body(folder)
    }

    func driver(_ folder: String) -> ExecResourceDriver {
        ExecResourceDriver(
            localServer: "node1", runner: ScriptRunner(), host: HostFacts.detect(productVersion: "t", installPath: "/"),
            logDirectory: folder, stateDirectory: folder, logger: Logger(label: "test"))
    }

    /// Fencing many groups at once (a stall, a lost partition) fenced each with a rewrite and
    /// an fsync of the same record on the daemon actor: with 500 groups, seconds.
    @Test("a fence that changes nothing in the record does not rewrite it; a new driver (a new daemon) writes it once")
    func unchangedRecordIsNotRewritten() async throws {
        try await withFolder { folder in
            func inode() -> UInt64? {
                var info = stat()
                return stat(folder + "/processes.json", &info) == 0 ? UInt64(info.st_ino) : nil
            }
            let first = driver(folder)
            first.fence(group: "g1")
            let written = try #require(inode(), "the first fence writes the record")
            #expect(String(decoding: try Data(contentsOf: URL(fileURLWithPath: folder + "/processes.json")), as: UTF8.self) == "[]")
            for index in 2...50 { first.fence(group: "g\(index)") }
            #expect(inode() == written, "49 fences with nothing to change: no rewrite (a write replaces the file)")
            driver(folder).fence(group: "g1")
            #expect(inode() != written, "a new daemon's driver writes its record once")
        }
    }

    /// A fence looks only where the group's processes were tracked: it kills that group's
    /// asynchronous processes, under every resource they ran under, and no other group's.
    @Test("a fence kills its group's processes under each of its resources, and no other group's")
    func fenceKillsOnlyItsGroup() async throws {
        try await withFolder { folder in
            let script = folder + "/start.sh"
            try "#!/bin/sh\nexec sleep 60\n".write(toFile: script, atomically: true, encoding: .utf8)
            chmod(script, 0o755)
            let exec = driver(folder)
            let settings = ExecSettings(start: script, startMode: .async)
            var pids: [String: Int32] = [:]
            // Whatever happens below, no `sleep` outlives the test (by pid).
            defer { for pid in pids.values { kill(-pid, SIGKILL) } }
            func start(_ group: String, _ resource: String) async throws {
                let run = ResourceRun(
                    id: 1, group: group, resource: resource, operation: .start,
                    context: ScriptContext(event: .start, isHomeServer: true, priority: 1, groupName: group, resourceName: resource))
                guard case .success(let pid?) = await exec.perform(run, settings: settings) else {
                    throw TestSupportError("\(group)/\(resource) did not start")
                }
                pids["\(group)/\(resource)"] = pid
            }
            for group in ["g1", "g2"] {
                for resource in ["app", "db"] { try await start(group, "\(group)-\(resource)") }
            }
            // The same resource name under two groups (a group renamed by an online apply).
            try await start("g2", "shared")
            try await start("g1", "shared")
            let keys = { (group: String) in ["\(group)/\(group)-app", "\(group)/\(group)-db", "\(group)/shared"] }
            func alive(_ key: String) -> Bool {
                guard let pid = pids[key], kill(pid, 0) == 0 else { return false }
                return !((try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)) ?? "").contains(") Z ")
            }
            #expect(pids.count == 6 && pids.keys.allSatisfy(alive))
            let deadline = ContinuousClock.now + .seconds(10)
            exec.fence(group: "g1")
            while keys("g1").contains(where: alive) && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
            #expect(!keys("g1").contains(where: alive))
            #expect(keys("g2").allSatisfy(alive))
            // The record names what still runs: g2's three, and nothing of g1.
            let records = exec.recordedProcesses()
            #expect(Set(records.map(\.group)) == ["g2"] && records.count == 3, "\(records)")
            exec.fence(group: "g2")
            while keys("g2").contains(where: alive) && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
            #expect(!pids.keys.contains(where: alive))
        }
    }
}
