import Foundation
import Testing
import UnderstudyEngine
import UnderstudyLab
import UnderstudyModel
import UnderstudyTestSupport

#if canImport(Glibc)
    import Glibc
#endif

/// diskhb and comhb in the lab: two servers with lanhb plus a disk heartbeat on a loop device
/// they share (the namespaces share the host's devices), or plus a serial heartbeat on a pty
/// pair joined by socat (the null-modem cable). With node1's LAN link down the other path
/// keeps both servers Online: no failover, no fence. With that path cut too, the usual ping
/// resolution follows: node1 (no ping target) fences, node2 takes the group over.
@Suite(
    "Lab: disk and serial heartbeats keep a LAN-cut peer up", .serialized,
    .requires(labPrerequisite, Prerequisite.command("losetup", package: "mount"), Prerequisite.command("socat", package: "socat")))
struct HeartbeatPathTests {
    static func run(_ arguments: [String]) throws -> (status: Int32, output: String) {
        let outcome = Shell.run(arguments)
        return (outcome.status, outcome.output)
    }

    /// The path of `path` on `server` as `seenBy` sees it.
    static func pathStatus(_ snapshot: ClusterStatusSnapshot, server: String, path: String) -> HeartbeatStatus? {
        snapshot.servers.first { $0.name == server }?.heartbeats.first { $0.name == path }?.status
    }

    static func group(_ snapshot: ClusterStatusSnapshot) -> ClusterStatusSnapshot.GroupLine? {
        snapshot.groups.first { $0.name == "grp1" }
    }

    /// With node1's LAN link down and `path` still carrying heartbeats: for three timeouts both
    /// servers stay Online for each other, lanhb1 shows error, `path` normal, grp1 stays on
    /// node1 and no script ran.
    static func expectNoFailover(_ lab: Lab, path: String) async throws {
        let spec = lab.spec
        _ = try await lab.waitForStatus("grp1 online on node1", on: "node2", timeout: .seconds(20)) {
            group($0).map { $0.status == .online && $0.current == "node1" } ?? false
        }
        let scriptsBefore = (try? String(contentsOfFile: spec.recordsPath, encoding: .utf8)) ?? ""
        try lab.setLink("node1", up: false)
        #expect(try !lab.ping(from: "node2", to: spec.publicAddress(of: "node1")))
        let lanDown = try await lab.waitForStatus("lanhb1 of node1 in error", on: "node2", timeout: .seconds(10)) {
            pathStatus($0, server: "node1", path: "lanhb1") == .error
        }
        #expect(pathStatus(lanDown, server: "node1", path: path) == .normal)
        try await Task.sleep(for: .milliseconds(3 * spec.heartbeatTimeoutMilliseconds))
        for (server, peer) in [("node2", "node1"), ("node1", "node2")] {
            // 10 s: beside the other lab suites the test process's own pool can be slow to
            // read the answer (2 s was missed once in CI).
            let snapshot = try #require(await lab.status(on: server, timeout: .seconds(10)), "\(server) answers")
            #expect(snapshot.servers.first { $0.name == peer }?.status == .online, "\(server) sees \(peer): \(snapshot.servers)")
            #expect(pathStatus(snapshot, server: peer, path: "lanhb1") == .error)
            #expect(pathStatus(snapshot, server: peer, path: path) == .normal)
            #expect(!snapshot.isolated, "\(server) is not cut off")
            #expect(group(snapshot)?.current == "node1" && group(snapshot)?.status == .online, "\(String(describing: group(snapshot)))")
        }
        // clpstat as an operator on node2 runs it: both paths for node1, with their states.
        let clpstat = try lab.exec(in: "node2", [labBinary, "clpstat", "--state-dir", spec.stateDirectory(of: "node2")])
        #expect(clpstat.succeeded, "\(clpstat)")
        let comment = path.hasPrefix("disk") ? "DISK Heartbeat" : "COM Heartbeat"
        let lines = clpstat.output.split(separator: "\n")
        #expect(lines.contains { $0.contains(path) && $0.contains("Normal") && $0.contains(comment) }, "\(clpstat.output)")
        #expect(lines.contains { $0.contains("lanhb1") && $0.contains("Error") }, "\(clpstat.output)")
        #expect(!lines.contains { $0.contains(path) && $0.contains("Error") }, "\(clpstat.output)")
        let info = try lab.exec(in: "node2", [labBinary, "clpstat", "-i", "--state-dir", spec.stateDirectory(of: "node2")])
        #expect(info.output.contains("Type                          : \(path.hasPrefix("disk") ? "diskhb" : "comhb")"), "\(info.output)")
        let scriptsAfter = (try? String(contentsOfFile: spec.recordsPath, encoding: .utf8)) ?? ""
        #expect(scriptsAfter == scriptsBefore, "no start or stop script ran while only the LAN was cut")
    }

    /// node1's LAN link still down and now `path` cut too: node2 sees node1 Offline and takes
    /// grp1 over; node1, which reaches no ping target, fences.
    static func expectFailover(_ lab: Lab, path: String) async throws {
        let taken = try await lab.waitForStatus("grp1 online on node2", on: "node2", timeout: .seconds(20)) {
            group($0).map { $0.status == .online && $0.current == "node2" } ?? false
        }
        #expect(taken.servers.first { $0.name == "node1" }?.status == .offline)
        #expect(pathStatus(taken, server: "node1", path: path) == .error, "\(taken.servers)")
        let loser = try await lab.waitForStatus("node1 cut off", on: "node1", timeout: .seconds(10)) { $0.isolated }
        #expect(group(loser)?.perServer["node1"] == .offline)
    }

    @Test("diskhb: LAN cut, no failover while the disk carries heartbeats; the disk gone too: failover")
    func diskHeartbeat() async throws {
        let image = NSTemporaryDirectory() + "understudy-lab-diskhb-\(getpid()).img"
        _ = FileManager.default.createFile(atPath: image, contents: nil)
        defer { try? FileManager.default.removeItem(atPath: image) }
        try FileHandle(forWritingTo: URL(fileURLWithPath: image)).truncate(atOffset: 16 << 20)
        let attach = try Self.run(["losetup", "--find", "--show", image])
        try #require(attach.status == 0, "\(attach.output)")
        let device = attach.output.trimmingCharacters(in: .whitespacesAndNewlines)
        defer { _ = try? Self.run(["losetup", "-d", device]) }
        let prepared = try Self.run([labBinary, "diskhb", "init", device])
        try #require(prepared.status == 0, "\(prepared.output)")
        #expect(prepared.output.contains("128 slots of 64 KiB"), "\(prepared.output)")

        var spec = labSpec()
        spec.extraHeartbeats = "  - name: diskhb1\n    type: diskhb\n    device: \(device)\n"
        try await withLab(spec) { lab in
            try await Self.expectNoFailover(lab, path: "diskhb1")
            // The disk path cut: the image emptied and the loop device told its new size (it
            // stays bound to this test until the end, so its number cannot pass to another
            // test while the daemons still open it).
            try FileHandle(forWritingTo: URL(fileURLWithPath: image)).truncate(atOffset: 0)
            let shrink = try Self.run(["losetup", "--set-capacity", device])
            try #require(shrink.status == 0, "\(shrink.output)")
            try await Self.expectFailover(lab, path: "diskhb1")
            let log = (try? String(contentsOfFile: lab.spec.logPath(of: "node2"), encoding: .utf8)) ?? ""
            #expect(log.components(separatedBy: "[nm 4]").count - 1 == 1, "the lost device is logged once")
        }
    }

    @Test("comhb: LAN cut, no failover while the serial line carries heartbeats; socat killed: the path is down, failover")
    func serialHeartbeat() async throws {
        let links = (1...2).map { "/tmp/understudy-lab-comhb-\(getpid())-\($0)" }
        let socat = Process()
        socat.executableURL = URL(fileURLWithPath: "/usr/bin/socat")
        socat.arguments = ["-d", "-d", "pty,raw,echo=0,link=\(links[0])", "pty,raw,echo=0,link=\(links[1])"]
        socat.standardOutput = FileHandle.nullDevice
        socat.standardError = FileHandle.nullDevice
        try socat.run()
        // SIGKILL: a process started from the test runner inherits its blocked signals.
        func pullCable() {
            if socat.isRunning {
                kill(socat.processIdentifier, SIGKILL)
                socat.waitUntilExit()
            }
            for link in links { unlink(link) }
        }
        defer { pullCable() }
        #expect(await eventually(within: .seconds(5)) { links.allSatisfy { FileManager.default.fileExists(atPath: $0) } })

        var spec = labSpec()
        spec.extraHeartbeats = "  - name: comhb1\n    type: comhb\n    devices: {node1: \(links[0]), node2: \(links[1])}\n"
        try await withLab(spec) { lab in
            try await Self.expectNoFailover(lab, path: "comhb1")
            pullCable()
            try await Self.expectFailover(lab, path: "comhb1")
            let log = (try? String(contentsOfFile: lab.spec.logPath(of: "node2"), encoding: .utf8)) ?? ""
            #expect(log.contains("[nm 4]"), "the lost line is logged")
        }
    }
}
