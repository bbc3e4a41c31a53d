import Foundation
import Testing
import UnderstudyEngine
import UnderstudyLab
import UnderstudyModel
import UnderstudyTestSupport

#if canImport(Glibc)
    import Glibc
#endif

/// The network monitors in real namespaces: a floating IP removed behind the cluster's back
/// (fipw reactivates it), ICMP blocked (ipw in Error until unblocked), the public link taken
/// down (miiw fails the group over; the interconnect keeps the cluster together).
@Suite("Lab: network monitors", .serialized, .requires(labPrerequisite))
struct NetworkMonitorTests {
    func monitor(_ lab: Lab, _ name: String, on server: String, seenBy observer: String = "node2") async -> MonitorStatus? {
        await lab.status(on: observer)?.monitors?.first { $0.name == name }?.perServer[server]
    }

    func holds(_ lab: Lab, _ server: String, _ address: String) throws -> Bool {
        try lab.exec(in: server, ["ip", "-o", "addr", "show", "dev", "eth0"]).output.contains(" \(address)/")
    }

    @Test("fipw reactivates a removed address, ipw sees blocked ICMP, miiw fails the group over on link loss")
    func networkMonitors() async throws {
        var spec = labSpec(secondLink: true)
        spec.withGroup = false
        let lab = try await Lab.up(spec, binary: labBinary, startDaemons: false)
        defer { lab.down() }
        let node1 = spec.publicAddress(of: "node1")
        let floating = node1.split(separator: ".").dropLast().joined(separator: ".") + ".51"
        let client = spec.publicAddress(of: LabSpec.client)
        try spec.writeScript("scripts/web/start.sh", "#!/bin/sh\nexit 0\n")
        try spec.writeScript("scripts/web/stop.sh", "#!/bin/sh\nexit 0\n")
        try spec.appendToConfig(
            """
            groups:
              - name: web
                resources:
                  - name: web-ip
                    type: fip
                    address: \(floating)/24
                  - name: web-app
                    type: exec
                    start: scripts/web/start.sh
                    stop: scripts/web/stop.sh
            monitors:
              - name: fipw1
                type: fipw
                target: web-ip
                interval: 200ms
                timeout: 3s
                recovery: {target: web-ip, reactivations: 3, failovers: 0, final-action: none}
              - name: ipw1
                type: ipw
                targets: [\(client)]
                servers: [node2]
                interval: 300ms
                timeout: 1s
                recovery: {target: local-server, final-action: none}
              - name: miiw1
                type: miiw
                interface: eth0
                interval: 200ms
                timeout: 2s
                recovery: {target: web, reactivations: 0, failovers: 1, final-action: none}

            """)
        for server in spec.serverNames { try lab.startDaemon(server) }
        try await waitUntilFormed(lab)
        _ = try await lab.waitForStatus("web online on node1", on: "node1", timeout: .seconds(20)) {
            $0.groups.first { $0.name == "web" }?.status == .online && $0.groups.first { $0.name == "web" }?.current == "node1"
        }
        #expect(try holds(lab, "node1", floating))
        let normal = await eventually(within: .seconds(10), every: .milliseconds(100)) {
            guard let monitors = await lab.status(on: "node2")?.monitors else { return false }
            let statuses = [("fipw1", "node1"), ("ipw1", "node2"), ("miiw1", "node1")].map { name, server in
                monitors.first { $0.name == name }?.perServer[server]
            }
            return statuses.allSatisfy { $0 == .normal }
        }
        let seen = await lab.status(on: "node2")?.monitors
        #expect(normal, "\(String(describing: seen))")

        // fipw: somebody removes the floating address; the monitor sees it and the resource
        // is reactivated on node1 (the address comes back, the group stays).
        _ = try lab.exec(in: "node1", ["ip", "addr", "del", "\(floating)/24", "dev", "eth0"])
        let back = await eventually(within: .seconds(15), every: .milliseconds(100)) { (try? holds(lab, "node1", floating)) == true }
        #expect(back)
        let node1Counters = await lab.status(on: "node1")?.monitors?.first { $0.name == "fipw1" }?.counters
        #expect(node1Counters?.reactivations == 1, "\(String(describing: node1Counters))")
        let current = await lab.status(on: "node1")?.groups.first { $0.name == "web" }?.current
        #expect(current == "node1")

        // ipw: echo replies dropped on node2 → Error there; back to Normal once allowed again.
        let block = try lab.exec(
            in: "node2",
            [
                "nft", "add table inet ipwtest; add chain inet ipwtest input { type filter hook input priority 0; };",
                "add rule inet ipwtest input icmp type echo-reply drop",
            ])
        #expect(block.succeeded, "\(block)")
        let failed = await eventually(within: .seconds(15), every: .milliseconds(100)) { await monitor(lab, "ipw1", on: "node2") == .error }
        #expect(failed)
        _ = try lab.exec(in: "node2", ["nft", "delete", "table", "inet", "ipwtest"])
        let recovered = await eventually(within: .seconds(15), every: .milliseconds(100)) {
            await monitor(lab, "ipw1", on: "node2") == .normal
        }
        #expect(recovered)

        // miiw: node1's public link goes down; the cluster stays together over the
        // interconnect and web fails over to node2.
        try lab.setLink("node1", .publicLAN, up: false)
        let moved = try await lab.waitForStatus("web online on node2", on: "node2", timeout: .seconds(20)) {
            $0.groups.first { $0.name == "web" }?.status == .online && $0.groups.first { $0.name == "web" }?.current == "node2"
        }
        #expect(moved.monitors?.first { $0.name == "miiw1" }?.perServer["node1"] == .error)
        #expect(try holds(lab, "node2", floating))
        #expect(try !holds(lab, "node1", floating))
        try lab.setLink("node1", .publicLAN, up: true)
    }
}
