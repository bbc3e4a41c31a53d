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
