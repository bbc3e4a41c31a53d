import Foundation
import Testing
import UnderstudyEngine
import UnderstudyLab
import UnderstudyModel
import UnderstudyTestSupport

#if canImport(Glibc)
    import Glibc
#endif

/// The control channel over both LAN paths of a lab with a second link: `lanhb1` on the
/// interconnect (first, preferred) and `lanhb2` on the public LAN.
@Suite("Lab: control channel path failover", .serialized, .requires(labPrerequisite))
struct ControlChannelLabTests {
    /// The status of `peer`'s heartbeat path `path` and the control path, as `server` sees them.
    static func paths(_ snapshot: ClusterStatusSnapshot, peer: String) -> (interconnect: HeartbeatStatus?, control: String?) {
        let line = snapshot.servers.first { $0.name == peer }
        return (line?.heartbeats.first { $0.name == "lanhb1" }?.status, line?.controlPath)
    }

    static func grp1(_ snapshot: ClusterStatusSnapshot) -> ClusterStatusSnapshot.GroupLine? {
        snapshot.groups.first { $0.name == "grp1" }
    }

    @Test(
        "interconnect down: clpgrp -m forwarded from a non-holder and clpstat -h go over the public LAN, clpstat shows it; interconnect up: back to it"
    )
    func interconnectDownAndBack() async throws {
        try await withLab(labSpec(servers: 3, secondLink: true)) { lab in
            let spec = lab.spec
            let node3 = spec.stateDirectory(of: "node3")
            func clp(_ arguments: [String], timeout: Duration = .seconds(20)) throws -> LabCommandOutcome {
                try lab.exec(in: "node3", [labBinary] + arguments + ["--state-dir", node3], timeout: timeout)
            }
            func alerts() -> String { (try? String(contentsOfFile: node3 + "/alert.log", encoding: .utf8)) ?? "" }

            // grp1 runs on node1, the master; node3 holds nothing: its commands are forwarded.
            try await lab.waitForStatus("grp1 Online on node1", on: "node3") { Self.grp1($0)?.current == "node1" }
            let first = try await lab.waitForStatus("node1 reached over lanhb1", on: "node3") {
                Self.paths($0, peer: "node1") == (.normal, "lanhb1")
            }
            #expect(first.servers.first { $0.name == "node1" }?.controlAddress == spec.interconnectAddress(of: "node1"))
            let before = try clp(["clpstat", "-h", "node1"])
            #expect(before.succeeded, "\(before)")

            // The interconnect goes down everywhere; heartbeats still flow on the public LAN.
            for server in spec.serverNames { try lab.setLink(server, .interconnect, up: false) }
            // At once, before the heartbeats on lanhb1 time out: the request tries lanhb1, gives
            // up after its attempt bound (half the 1 s heartbeat timeout) and is answered on lanhb2.
            let started = ContinuousClock.now
            let early = try clp(["clpstat", "-h", "node1"])
            let took = ContinuousClock.now - started
            #expect(early.succeeded, "\(early)")
            #expect(early.output.contains("*node1"), "node1's own view: \(early)")
            #expect(took < .seconds(5), "clpstat -h took \(took)")

            let down = try await lab.waitForStatus("lanhb1 to node1 Error, control over lanhb2", on: "node3") {
                Self.paths($0, peer: "node1") == (.error, "lanhb2")
            }
            #expect(down.servers.first { $0.name == "node1" }?.controlAddress == spec.publicAddress(of: "node1"))
            #expect(down.servers.first { $0.name == "node1" }?.status == .online, "node1 is still heard on the public LAN")

            let move = try clp(["clpgrp", "-m", "grp1"], timeout: .seconds(60))
            #expect(move.succeeded, "\(move)")
            let moved = try await lab.waitForStatus("grp1 Online on node2", on: "node3") {
                Self.grp1($0)?.current == "node2" && Self.grp1($0)?.status == .online
            }
            #expect(Self.grp1(moved)?.current == "node2")
            let remote = try clp(["clpstat", "-h", "node1"])
            #expect(remote.succeeded, "\(remote)")
            let shown = try clp(["clpstat"])
            let lines = shown.output.split(separator: "\n").map(String.init)
            let peer = try #require(lines.firstIndex { $0.contains("node1 .") }, "\(shown)")
            #expect(
                lines[peer + 1].contains("lanhb1") && lines[peer + 1].contains("Error") && !lines[peer + 1].contains("[control]"),
                "\(shown)")
            #expect(lines[peer + 2].contains("lanhb2") && lines[peer + 2].hasSuffix("[control]"), "\(shown)")
            #expect(
                alerts().contains("Requests to node1 take lanhb2 (\(spec.publicAddress(of: "node1"))) now, no longer lanhb1"), "\(alerts())"
            )

            // The interconnect comes back: as soon as heartbeats are heard on it, requests use it again.
            for server in spec.serverNames { try lab.setLink(server, .interconnect, up: true) }
            try await lab.waitForStatus("lanhb1 to node1 Normal, control over lanhb1", on: "node3", timeout: .seconds(20)) {
                Self.paths($0, peer: "node1") == (.normal, "lanhb1")
            }
            // Requests go over lanhb1 again. (Right after a link returns, the first connection
            // may wait for ARP longer than the 500 ms attempt bound of this lab's 1 s timeout:
            // it is then answered on lanhb2 and lanhb1 is tried again a heartbeat timeout later.)
            let returnedTo = "Requests to node1 take lanhb1 (\(spec.interconnectAddress(of: "node1") ?? "?")) now, no longer lanhb2"
            var requests = 0
            let returned = await eventually(within: .seconds(15), every: .milliseconds(300)) {
                requests += 1
                let back = try? clp(["clpstat", "-h", "node1"])
                return back?.succeeded == true && alerts().contains(returnedTo)
            }
            #expect(returned, "\(alerts())")
            #expect(requests <= 10, "back within a few requests: \(requests)")
            let now = try await lab.waitForStatus("control over lanhb1", on: "node3") {
                Self.paths($0, peer: "node1") == (.normal, "lanhb1")
            }
            #expect(now.servers.first { $0.name == "node1" }?.controlAddress == spec.interconnectAddress(of: "node1"))
            let backAgain = try clp(["clpgrp", "-m", "grp1", "-a", "node1"], timeout: .seconds(60))
            #expect(backAgain.succeeded, "\(backAgain)")
        }
    }

    @Test(
        "a second address that cannot be bound at start is no reason to stop: logged, retried, and once free the control channel answers there"
    )
    func secondAddressBoundLater() async throws {
        let spec = labSpec(secondLink: true)
        let lab = try await Lab.up(spec, binary: labBinary, startDaemons: false)
        let node2Alerts = spec.stateDirectory(of: "node2") + "/alert.log"
        func alerts() -> String { (try? String(contentsOfFile: node2Alerts, encoding: .utf8)) ?? "" }
        // Something else holds node2's control port on its public address (lanhb2, its second path).
        let blocker = Process()
        blocker.executableURL = URL(fileURLWithPath: try #require(LabShell.which("ip")))
        blocker.arguments = [
            "netns", "exec", spec.namespace(of: "node2"), labBinary, "demo-responder", "--address", spec.publicAddress(of: "node2"),
            "--port", "29001", "--name", "blocker",
        ]
        blocker.standardOutput = FileHandle.nullDevice
        blocker.standardError = FileHandle.nullDevice
        do {
            try blocker.run()
            let listening = await eventually(within: .seconds(10)) {
                (try? lab.exec(in: "node2", ["ss", "-Hltn", "src", spec.publicAddress(of: "node2") + ":29001"]).output.contains("29001"))
                    == true
            }
            #expect(listening, "the blocker listens")
            for server in spec.serverNames { try lab.startDaemon(server) }
            for server in spec.serverNames { try await lab.waitForSocket(server) }
            try await waitUntilFormed(lab)
            #expect(await eventually(within: .seconds(5)) { alerts().contains("[trnsv 80]") }, "\(alerts())")
            #expect(lab.pid(of: "node2")?.isAlive == true)

            kill(blocker.processIdentifier, SIGTERM)
            blocker.waitUntilExit()
            // Retried 1 s, 2 s, 4 s … apart: bound within the next rounds.
            #expect(await eventually(within: .seconds(30), every: .milliseconds(200)) { alerts().contains("[trnsv 81]") }, "\(alerts())")

            // With the interconnect down, node1 reaches node2's control channel on the public address.
            for server in spec.serverNames { try lab.setLink(server, .interconnect, up: false) }
            try await lab.waitForStatus("control to node2 over lanhb2", on: "node1") {
                $0.servers.first { $0.name == "node2" }?.controlPath == "lanhb2"
            }
            let remote = try lab.exec(
                in: "node1", [labBinary, "clpstat", "-h", "node2", "--state-dir", spec.stateDirectory(of: "node1")], timeout: .seconds(20))
            #expect(remote.succeeded && remote.output.contains("*node2"), "\(remote)")
        } catch {
            print("lab \(spec.prefix) failed: \(error)\n\(lab.report())\n\(alerts())")
            if blocker.isRunning { kill(blocker.processIdentifier, SIGKILL) }
            let daemons = spec.serverNames.compactMap { lab.pid(of: $0) }
            lab.down()
            try expectNothingLeft(spec, daemons: daemons)
            throw error
        }
        if blocker.isRunning { kill(blocker.processIdentifier, SIGKILL) }
        let daemons = spec.serverNames.compactMap { lab.pid(of: $0) }
        lab.down()
        try expectNothingLeft(spec, daemons: daemons)
    }
}
