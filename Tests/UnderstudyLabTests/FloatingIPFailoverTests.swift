import Foundation
import Testing
import UnderstudyLab
import UnderstudyTestSupport

#if canImport(Glibc)
    import Glibc
#endif

/// A real floating IP in the lab: the client reaches the service through it, on whichever
/// server runs the group, without doing anything itself.
@Suite("Lab: floating IP", .serialized, .requires(labPrerequisite))
struct FloatingIPFailoverTests {
    @Test("the client follows the floating IP through a move and a server's clean stop")
    func clientFollowsTheFloatingIP() async throws {
        var spec = labSpec()
        spec.withGroup = false
        let lab = try await Lab.up(spec, binary: labBinary, startDaemons: false)
        defer { lab.down() }
        let node1 = spec.publicAddress(of: "node1")
        let floating = node1.split(separator: ".").dropLast().joined(separator: ".") + ".50"
        try writeGroup(spec: spec, floating: floating)
        for server in spec.serverNames { try lab.startDaemon(server) }
        try await waitUntilFormed(lab)
        _ = try await lab.waitForStatus("web online", on: "node1", timeout: .seconds(20)) {
            $0.groups.first { $0.name == "web" }?.status == .online
        }

        #expect(try await answer(lab, floating) == "node1")
        #expect(try holds(lab, "node1", floating))

        // Planned move: the address goes with the group; the client's ARP entry follows the
        // gratuitous ARP.
        let move = try lab.exec(
            in: "node1", [labBinary, "clpgrp", "-m", "web", "--state-dir", spec.stateDirectory(of: "node1")], timeout: .seconds(30))
        #expect(move.succeeded, "\(move)")
        #expect(try await answer(lab, floating, from: "node2") == "node2")
        #expect(try !holds(lab, "node1", floating))
        #expect(try holds(lab, "node2", floating))

        // SIGTERM of node2: its groups stop (the address leaves it) and fail over to node1.
        let daemon = try #require(lab.pid(of: "node2"))
        #expect(daemon.signal(SIGTERM))
        #expect(try await answer(lab, floating, from: "node1") == "node1")
        #expect(try !holds(lab, "node2", floating))
    }

    /// The in-use probe runs while the takeover margin passes on every server that may take the
    /// group over, master or not (design.md, *Checks ahead of a takeover*). Here the group may
    /// run on node1 and node3 only: when node1's link goes down, node2 becomes the master and
    /// places it, node3 starts it, and node3 — not the master — must have probed ahead and
    /// used that probe. node2, which may not run the group, probes nothing.
    @Test("a failover target that is not the master probes the address while the takeover margin passes")
    func nonMasterTargetProbesAhead() async throws {
        var spec = labSpec(servers: 3)
        spec.withGroup = false
        let lab = try await Lab.up(spec, binary: labBinary, startDaemons: false)
        defer { lab.down() }
        let floating = FailoverBenchmark.floatingAddress(spec: spec, group: 1)
        try spec.appendToConfig(
            """
            groups:
              - name: web
                servers: [node1, node3]
                resources:
                  - name: fip1
                    type: fip
                    address: \(floating)/24
                    probe-wait: 20ms

            """)
        for server in spec.serverNames { try lab.startDaemon(server) }
        try await waitUntilFormed(lab)
        _ = try await lab.waitForStatus("web online on node1", on: "node3", timeout: .seconds(20)) {
            $0.groups.first { $0.name == "web" }.map { $0.status == .online && $0.current == "node1" } ?? false
        }
        try lab.setLink("node1", up: false)
        _ = try await lab.waitForStatus("web online on node3", on: "node3", timeout: .seconds(20)) {
            $0.groups.first { $0.name == "web" }.map { $0.status == .online && $0.current == "node3" } ?? false
        }
        #expect(try holds(lab, "node3", floating))
        let node3Log = (try? String(contentsOfFile: spec.logPath(of: "node3"), encoding: .utf8)) ?? ""
        let node2Log = (try? String(contentsOfFile: spec.logPath(of: "node2"), encoding: .utf8)) ?? ""
        #expect(node2Log.contains("node2 is the master server"), "\(node2Log.suffix(2000))")
        #expect(!node3Log.contains("node3 is the master server"), "\(node3Log.suffix(2000))")
        #expect(node3Log.contains("probed 1 address(es) on eth0 ahead of a takeover: no answer"), "\(node3Log.suffix(3000))")
        #expect(node3Log.contains("had no answer when its holder was lost"), "\(node3Log.suffix(3000))")
        #expect(!node2Log.contains("ahead of a takeover"), "\(node2Log.suffix(2000))")
        try lab.setLink("node1", up: true)
    }

    func writeGroup(spec: LabSpec, floating: String) throws {
        try spec.writeScript(
            "scripts/web/start.sh",
            "#!/bin/sh\nexec '\(labBinary)' demo-responder --address \(floating) --port 8080 --name \"$CLP_SERVER_LOCAL\"\n")
        try spec.writeScript("scripts/web/stop.sh", "#!/bin/sh\nexit 0\n")
        let group = """
            groups:
              - name: web
                resources:
                  - name: fip1
                    type: fip
                    address: \(floating)/24
                  - name: web-app
                    type: exec
                    start: scripts/web/start.sh
                    stop: scripts/web/stop.sh
                    start-mode: async

            """
        try spec.appendToConfig(group)
    }

    /// The first answer of the service from the client, waiting (bounded) for a given server.
    func answer(_ lab: Lab, _ address: String, from expected: String? = nil) async throws -> String? {
        var last: String?
        _ = await eventually(within: .seconds(20), every: .milliseconds(100)) {
            let outcome = try? lab.exec(in: LabSpec.client, ["curl", "-s", "-m", "0.5", "http://\(address):8080/"], timeout: .seconds(3))
            last = outcome.map { $0.output.trimmingCharacters(in: .whitespacesAndNewlines) }
            guard let last, !last.isEmpty else { return false }
            return expected == nil || last == expected
        }
        return last
    }

    func holds(_ lab: Lab, _ server: String, _ address: String) throws -> Bool {
        try lab.exec(in: server, ["ip", "-o", "addr", "show"]).output.contains(" \(address)/")
    }
}
