import Foundation
import Testing
import UnderstudyEngine
import UnderstudyModel
import UnderstudyTestSupport

#if canImport(Glibc)
    import Glibc
#endif

/// Forced stop with real daemons: a script agent that cannot stop anything (a BMC that died with
/// its server). The master's daemon is killed: its group waits (rc 433), the stop is retried,
/// `clpstat -f` shows it failed; `clpcl --confirm-stopped` lets the group move.
@Suite("Process: forced stop that fails, and the operator's confirmation")
struct FencingProcessTests {
    @Test("a failing agent holds the group back; clpcl --confirm-stopped lets it move; refused for a server that is heard")
    func confirmStopped() async throws {
        var spec = ClusterSpec(subnet: 219)
        // Checks pass; a stop never does (its hypervisor is gone with it).
        let fence = try FenceScript("[ \"$CLP_FORCESTOP_MODE\" = 0 ] && exit 0\necho 'hypervisor unreachable'; exit 1")
        defer { fence.remove() }
        let script = fence.path
        spec.fencing = """
            fencing:
              check-interval: 0s
              delay: 500ms
              retry-interval: 1s
              agents:
                - name: vm
                  type: script
                  command: \(script)

            """
        try await withCluster(spec) { cluster in
            try cluster.start()
            try await cluster.waitUntilFormed()
            _ = try await cluster.waitForStatus("grp1 online on node1", on: "node2") {
                $0.groups.first { $0.name == "grp1" }.map { $0.status == .online && $0.current == "node1" } ?? false
            }
            let heard = try await cluster.cli(["clpcl", "--confirm-stopped", "node3"], on: "node2")
            #expect(heard.exitCode == 1 && heard.standardError.contains("not confirmed down"), "\(heard)")

            _ = cluster.send(SIGKILL, to: "node1")
            let cancelled = await eventually(within: .seconds(20), every: .milliseconds(200)) {
                ((try? String(contentsOfFile: cluster.logPath(of: "node2"), encoding: .utf8)) ?? "").contains("[rc 433]")
            }
            #expect(cancelled, "the failover is cancelled")
            try await Task.sleep(for: .seconds(3))
            let waiting = try #require(await cluster.status(on: "node2"))
            #expect(waiting.groups.first { $0.name == "grp1" }?.current != "node2", "grp1 does not move while node1 is not stopped")
            #expect(waiting.groups.first { $0.name == "grp1" }?.current != "node3")
            // Between two attempts (every second) the stop shows as Failed, with the agent's words.
            var view = try await cluster.cli(["clpstat", "-f"], on: "node2")
            let failedShown = await eventually(within: .seconds(10), every: .milliseconds(200)) {
                view = (try? await cluster.cli(["clpstat", "-f"], on: "node2")) ?? view
                return view.standardOutput.contains("Forced stop of node1 : Failed")
            }
            #expect(failedShown && view.standardOutput.contains("hypervisor unreachable"), "\(view)")

            let confirmed = try await cluster.cli(["clpcl", "--confirm-stopped", "node1"], on: "node3")
            #expect(confirmed.exitCode == 0 && confirmed.standardOutput.contains("node1 is taken as stopped"), "\(confirmed)")
            let moved = try await cluster.waitForStatus("grp1 online on node2 or node3", on: "node2", timeout: .seconds(20)) {
                $0.groups.first { $0.name == "grp1" }.map { $0.status == .online && ($0.current == "node2" || $0.current == "node3") }
                    ?? false
            }
            #expect(moved.fencing?.stops.first { $0.server == "node1" }?.state == "stopped")
            let log = try String(contentsOfFile: cluster.logPath(of: "node2"), encoding: .utf8)
            #expect(log.contains("The operator confirmed that server node1 is stopped"), "the confirmation is in the alert log")
        }
    }
}

/// A script agent's command in a folder of its own (removed by `remove`).
struct FenceScript {
    let folder: String
    var path: String { folder + "/fence.sh" }

    init(_ body: String) throws {
        folder = NSTemporaryDirectory() + "understudy-fence-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        try ("#!/bin/sh\n" + body + "\n").write(toFile: folder + "/fence.sh", atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: folder + "/fence.sh")
    }

    func remove() { try? FileManager.default.removeItem(atPath: folder) }
}
