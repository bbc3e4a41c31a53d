import Foundation
import Testing
import UnderstudyLab
import UnderstudyTestSupport

#if canImport(Glibc)
    import Glibc
#endif

/// A real virtual IP in the lab: the client namespace is a RIP router (BIRD 2). The address
/// lives on no subnet the client knows; it reaches the service only through the route the
/// server holding the vip advertises, and follows it when the group moves.
@Suite(
    "Lab: virtual IP with a RIP router", .serialized,
    .requires(labPrerequisite, .command("bird", package: "bird2"), .command("birdc", package: "bird2")))
struct VirtualIPTests {
    @Test("the router learns the vip's route from its holder and follows a move and a clean stop")
    func routerFollowsTheVirtualIP() async throws {
        var spec = labSpec()
        spec.withGroup = false
        let lab = try await Lab.up(spec, binary: labBinary, startDaemons: false)
        defer { lab.down() }
        let virtual = "10.210.\(spec.subnet).50"
        try writeGroup(spec: spec, virtual: virtual)
        let router = try startRouter(lab)
        defer { router.stop() }

        for server in spec.serverNames { try lab.startDaemon(server) }
        try await waitUntilFormed(lab)
        _ = try await lab.waitForStatus("web online", on: "node1", timeout: .seconds(20)) {
            $0.groups.first { $0.name == "web" }?.status == .online
        }
        #expect(try await answer(lab, virtual, from: "node1") == "node1", "\(router.routes(lab))")
        #expect(router.routes(lab).contains("\(virtual) via \(spec.publicAddress(of: "node1"))"))

        // Planned move: node1 withdraws the route (metric 16), node2 advertises it.
        let move = try lab.exec(
            in: "node1", [labBinary, "clpgrp", "-m", "web", "--state-dir", spec.stateDirectory(of: "node1")], timeout: .seconds(30))
        #expect(move.succeeded, "\(move)")
        #expect(try await answer(lab, virtual, from: "node2") == "node2", "\(router.routes(lab))")
        #expect(try !holds(lab, "node1", virtual))

        // SIGTERM of node2: the group stops there and fails over to node1.
        let daemon = try #require(lab.pid(of: "node2"))
        #expect(daemon.signal(SIGTERM))
        #expect(try await answer(lab, virtual, from: "node1") == "node1", "\(router.routes(lab))")
        #expect(try !holds(lab, "node2", virtual))
    }

    func writeGroup(spec: LabSpec, virtual: String) throws {
        try spec.writeScript(
            "scripts/web/start.sh",
            "#!/bin/sh\nexec '\(labBinary)' demo-responder --address \(virtual) --port 8080 --name \"$CLP_SERVER_LOCAL\"\n")
        try spec.writeScript("scripts/web/stop.sh", "#!/bin/sh\nexit 0\n")
        let group = """
            groups:
              - name: web
                resources:
                  - name: vip1
                    type: vip
                    address: \(virtual)/32
                    rip-interval: 1s
                  - name: web-app
                    type: exec
                    start: scripts/web/start.sh
                    stop: scripts/web/stop.sh
                    start-mode: async

            """
        try spec.appendToConfig(group)
    }

    /// BIRD in the client namespace: RIP on eth0 into the kernel table, short timers.
    struct Router {
        var process: Process
        var pidFile: String

        /// Stops BIRD by the pid it wrote (`ip netns exec` may run it as a child), bounded.
        func stop() {
            let pid = (try? String(contentsOfFile: pidFile, encoding: .utf8)).flatMap {
                Int32($0.trimmingCharacters(in: .whitespacesAndNewlines))
            }
            if let pid, pid > 1 { kill(pid, SIGTERM) }
            for _ in 0..<50 where process.isRunning { usleep(100_000) }
            if process.isRunning {
                if let pid, pid > 1 { kill(pid, SIGKILL) }
                kill(process.processIdentifier, SIGKILL)
            }
        }

        func routes(_ lab: Lab) -> String {
            (try? lab.exec(in: LabSpec.client, ["ip", "-4", "route", "show"]).output) ?? "?"
        }
    }

    func startRouter(_ lab: Lab) throws -> Router {
        let folder = lab.spec.folder
        let config = folder + "/bird.conf"
        let socket = folder + "/bird.ctl"
        let pidFile = folder + "/bird.pid"
        try """
        router id \(lab.spec.publicAddress(of: LabSpec.client));
        protocol device { scan time 1; }
        protocol kernel { ipv4 { import none; export all; }; }
        protocol rip {
          ipv4 { import all; export none; };
          interface "eth0" { version 2; update time 1; timeout time 6; };
        }

        """.write(toFile: config, atomically: true, encoding: .utf8)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try #require(LabShell.which("ip")))
        process.arguments = [
            "netns", "exec", lab.spec.clientNamespace, try #require(LabShell.which("bird")), "-f", "-c", config, "-s", socket, "-P",
            pidFile,
        ]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle(forWritingAtPath: "/dev/null")
        try process.run()
        return Router(process: process, pidFile: pidFile)
    }

    func answer(_ lab: Lab, _ address: String, from expected: String) async throws -> String? {
        var last: String?
        _ = await eventually(within: .seconds(30), every: .milliseconds(200)) {
            let outcome = try? lab.exec(in: LabSpec.client, ["curl", "-s", "-m", "0.5", "http://\(address):8080/"], timeout: .seconds(3))
            last = outcome.map { $0.output.trimmingCharacters(in: .whitespacesAndNewlines) }
            return last == expected
        }
        return last
    }

    func holds(_ lab: Lab, _ server: String, _ address: String) throws -> Bool {
        try lab.exec(in: server, ["ip", "-o", "addr", "show"]).output.contains(" \(address)/")
    }
}
