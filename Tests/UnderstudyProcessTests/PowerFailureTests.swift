import Foundation
import Testing
import UnderstudyEngine
import UnderstudyModel
import UnderstudyTestSupport

/// A power failure end to end: three daemons, node1 fed by a UPS that a real NUT upsd serves
/// (a dummy-ups driver whose status the test sets, under a clone driver that carries out
/// shutdown.return). A short battery episode changes nothing; a long one stops node1 as
/// clpdown does, tells the UPS to power off after its delay, and shuts the OS down; the UPS
/// powers the load on again when line power returns.
@Suite("Process: power failure from a real upsd")
struct PowerFailureTests {
    @Test(
        "on battery past the grace time: node1's group fails over, the UPS gets shutdown.return, the OS shuts down",
        .requires(NUTServer.prerequisite))
    func powerFailure() async throws {
        let nut = try await NUTServer.start(upses: ["ups1"], clones: ["outlet1": "ups1"], offDelay: 2, onDelay: 1)
        defer { nut.stop() }
        var spec = ClusterSpec(subnet: 126)
        spec.monitors = """
              - name: ups-node1
                type: upsw
                ups: outlet1
                port: \(nut.port)
                servers: [node1]
                interval: 300ms
                timeout: 2s
                on-battery-grace: 2s
                user: \(nut.user)
                password-file: \(nut.passwordFile)
                recovery: {target: local-server, final-action: none}

            """
        try await withCluster(spec) { cluster in
            try cluster.start()
            try await cluster.waitUntilFormed()
            try await cluster.waitForStatus("ups-node1 Normal on node1", on: "node1") { status in
                status.monitors?.first { $0.name == "ups-node1" }?.perServer["node1"] == .normal
            }

            // One second on battery: warned about, nothing stops.
            try nut.setStatus("ups1", "OB")
            try await cluster.waitForStatus("ups-node1 Caution (on battery)", on: "node1") { status in
                status.monitors?.first { $0.name == "ups-node1" }?.perServer["node1"] == .caution
            }
            try await Task.sleep(for: .milliseconds(500))
            try nut.setStatus("ups1", "OL")
            try await cluster.waitForStatus("ups-node1 Normal again", on: "node1") { status in
                status.monitors?.first { $0.name == "ups-node1" }?.perServer["node1"] == .normal
            }
            try await Task.sleep(for: .seconds(3))
            #expect(cluster.records.count == 1, "\(cluster.records.summary)")
            #expect(cluster.osActions.isEmpty)

            // On battery for good: after the 2 s grace node1 stops as with clpdown.
            let failedAt = Date()
            try nut.setStatus("ups1", "OB")
            #expect(try await cluster.waitForExit("node1", timeout: .seconds(20)) == 0)
            let stop = try #require(cluster.records.stops.first, "\(cluster.records.summary)")
            #expect(stop.server == "node1" && stop["CLP_FACTOR"] == "SERVERSHUTDOWN" && stop["CLP_LASTACTION"] == "HALT")
            #expect(stop.time.timeIntervalSince(failedAt) >= 2, "stopped before the grace time")
            #expect(cluster.osActions == ["shutdown"])
            try await cluster.waitForStatus("grp1 Online on node2", on: "node2") {
                $0.group(named: "grp1")?.current == "node2" && $0.group(named: "grp1")?.status == .online
            }
            // The UPS was told to power off (the clone is in forced shutdown) and does so after
            // its delay; once line power returns it powers the load on again.
            #expect(nut.variable("ups.status", of: "outlet1")?.contains("FSD") == true)
            let log = try String(contentsOfFile: cluster.logPath(of: "node1"), encoding: .utf8)
            #expect(log.contains("told to run shutdown.return"), "node1's log has no power-off command")
            try await waitFor("the UPS powering the load off") { nut.log(of: "driver-ups1").contains("[load.off]") }
            try nut.setStatus("ups1", "OL")
            try await waitFor("the UPS powering the load on again") { nut.log(of: "driver-ups1").contains("[load.on]") }
        }
    }

    func waitFor(_ what: String, timeout: Duration = .seconds(10), _ condition: () -> Bool) async throws {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if condition() { return }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw ProcessTestError("timed out after \(timeout) waiting for \(what)")
    }
}
