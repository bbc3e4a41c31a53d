import Foundation
import Testing
import UnderstudyLab
import UnderstudyTestSupport

#if canImport(Glibc)
    import Glibc
#endif

/// A benchmark killed in the middle (Ctrl-C, `timeout`, SIGTERM) removes its lab: before
/// `LabInterruption`, a 32-server run stopped by `timeout` left 64 processes and 34 namespaces.
@Suite("Lab: an interrupted benchmark removes its lab", .requires(labPrerequisite))
struct LabInterruptionTests {
    @Test("SIGTERM to lab footprint while its daemons run: it exits 143 and leaves no process, namespace or folder")
    func interruptedBenchmarkRemovesItsLab() async throws {
        let subnet = 29
        let prefix = "foot\(subnet)"
        let folder = LabSpec.defaultFolder(prefix: prefix)
        defer { Lab.destroy(prefix: prefix) }
        let bench = Process()
        bench.executableURL = URL(fileURLWithPath: labBinary)
        bench.arguments = [
            "lab", "footprint", "--interval", "200ms", "--timeout-ms", "1000", "--groups", "1", "--seconds", "300",
            "--subnet", String(subnet),
        ]
        bench.standardOutput = FileHandle.nullDevice
        let errors = Pipe()
        bench.standardError = errors
        try bench.run()
        defer { if bench.isRunning { kill(bench.processIdentifier, SIGKILL) } }

        // Both daemons run (their pids recorded in the lab's state file).
        func daemons() -> [Int32] {
            guard let data = FileManager.default.contents(atPath: folder + "/lab.json"),
                let state = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
                let recorded = state["daemons"] as? [String: Any]
            else { return [] }
            return recorded.values.compactMap { ($0 as? [String: Any])?["pid"] as? Int }.map { Int32($0) }
        }
        let running = await eventually(within: .seconds(60)) { daemons().count == 2 }
        #expect(running, "the lab's two daemons never ran")
        // Named with their start times: a pid the system reuses later is not mistaken for them.
        let namespaced = try LabShell.check(["ip", "netns", "pids", prefix + "-node1"])
            .split(whereSeparator: \.isWhitespace).compactMap { Int32($0) }
        let processes = (daemons() + namespaced).compactMap { LabProcess(pid: $0) }
        #expect(!namespaced.isEmpty && processes.count >= 2)

        kill(bench.processIdentifier, SIGTERM)
        let exited = await eventually(within: .seconds(30)) { !bench.isRunning }
        #expect(exited, "lab footprint did not end after SIGTERM")
        guard exited else { return }
        #expect(bench.terminationStatus == 128 + SIGTERM)
        let said = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(said.contains("removing lab \(prefix)"), "\(said)")

        // Killed processes whose parent went too are reaped by init a moment later: a zombie
        // counts as gone.
        for process in processes { #expect(!process.isAlive, "process \(process.pid) of the lab still runs") }
        let namespaces = try LabShell.check(["ip", "netns", "list"])
        #expect(!namespaces.contains(prefix + "-"), "namespaces left: \(namespaces)")
        #expect(!FileManager.default.fileExists(atPath: folder))
    }
}
