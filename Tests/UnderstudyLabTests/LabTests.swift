import Foundation
import Testing
import UnderstudyEngine
import UnderstudyLab
import UnderstudyModel
import UnderstudyTestSupport

#if canImport(Glibc)
    import Glibc
#endif

/// The lab needs root, iproute2 and the built binary; elsewhere every lab test is skipped
/// with the reason (and fails under UNDERSTUDY_REQUIRE_ALL=1).
let labPrerequisite = Prerequisite.all(
    "lab",
    [
        Prerequisite("root", missing: Lab.unavailableReason),
        Prerequisite(
            "lab-binary",
            missing: FileManager.default.isExecutableFile(atPath: labBinary)
                ? nil : "\(labBinary) is missing: build it first with `swift build --build-tests`"),
    ])

let labBinary: String = {
    var url = URL(fileURLWithPath: #filePath)
    for _ in 0..<3 { url.deleteLastPathComponent() }
    return url.path + "/.build/debug/understudy"
}()

/// Short timings: a peer is Offline 1 s after its last heartbeat.
func labSpec(servers: Int = 2, secondLink: Bool = false) -> LabSpec {
    LabSpec(
        prefix: LabSpec.uniquePrefix(), servers: servers, secondLink: secondLink, heartbeatInterval: "200ms",
        heartbeatTimeoutMilliseconds: 1000, syncWait: "1s")
}

/// Builds a lab, waits until every server sees every other Online, runs `body`, then takes
/// the lab down and checks that nothing of it is left.
func withLab(_ spec: LabSpec = labSpec(), _ body: (Lab) async throws -> Void) async throws {
    let lab = try await Lab.up(spec, binary: labBinary)
    let daemons = spec.serverNames.compactMap { lab.pid(of: $0) }
    do {
        try await waitUntilFormed(lab)
        try await body(lab)
    } catch {
        let logs = spec.serverNames.map { server in
            let text = (try? String(contentsOfFile: spec.logPath(of: server), encoding: .utf8)) ?? ""
            return "--- \(server).log\n" + text.split(separator: "\n").suffix(15).joined(separator: "\n")
        }
        print("lab \(spec.prefix) failed: \(error)\n\(lab.report())\n\(logs.joined(separator: "\n"))")
        lab.down()
        throw error
    }
    lab.down()
    try expectNothingLeft(spec, daemons: daemons)
}

func waitUntilFormed(_ lab: Lab, timeout: Duration = .seconds(15)) async throws {
    for server in lab.spec.serverNames {
        for peer in lab.spec.serverNames { try await lab.waitUntil(server, sees: peer, .online, timeout: timeout) }
    }
}

/// No namespace, interface, process or folder of the lab is left.
func expectNothingLeft(_ spec: LabSpec, daemons: [LabProcess]) throws {
    let namespaces = try LabShell.check(["ip", "netns", "list"])
    #expect(!namespaces.contains(spec.prefix + "-"), "namespaces left: \(namespaces)")
    let links = try LabShell.check(["ip", "-o", "link", "show"])
    #expect(!links.contains(spec.prefix), "interfaces left: \(links)")
    #expect(!FileManager.default.fileExists(atPath: spec.folder))
    for daemon in daemons { #expect(!daemon.isAlive, "daemon pid \(daemon.pid) still runs") }
}

@Suite(
    "Lab: network namespaces, daemons, faults", .serialized,
    .requires(labPrerequisite))
struct LabTests {
    @Test("2 servers + client: daemons see each other, pings pass, clpstat --json works, down leaves nothing")
    func upAndDown() async throws {
        try await withLab { lab in
            let spec = lab.spec
            #expect(try lab.ping(from: LabSpec.client, to: spec.publicAddress(of: "node1")))
            #expect(try lab.ping(from: LabSpec.client, to: spec.publicAddress(of: "node2")))
            #expect(try lab.ping(from: "node1", to: spec.publicAddress(of: "node2")))
            // The CLI inside the namespace, as an operator on node2 would run it.
            let outcome = try lab.exec(in: "node2", [labBinary, "clpstat", "--json", "--state-dir", spec.stateDirectory(of: "node2")])
            #expect(outcome.succeeded, "\(outcome)")
            let snapshot = try JSONDecoder().decode(ClusterStatusSnapshot.self, from: Data(outcome.output.utf8))
            #expect(snapshot.servers.map(\.status) == [.online, .online])
            #expect(lab.report().contains("daemon pid \(lab.pid(of: "node1")!.pid) running"))
        }
    }

    @Test("kill -9: the peer goes Offline; a restarted daemon is Online again")
    func killNine() async throws {
        try await withLab { lab in
            try lab.kill9("node2")
            try await lab.waitUntil("node1", sees: "node2", .offline)
            #expect(try await eventually(within: .seconds(5)) { !(lab.pid(of: "node2")?.isAlive ?? true) })
            try lab.startDaemon("node2")
            try await lab.waitUntil("node1", sees: "node2", .online, timeout: .seconds(20))
        }
    }

    @Test("SIGSTOP: the peer goes Offline; after SIGCONT it is back")
    func freezeAndResume() async throws {
        try await withLab { lab in
            try lab.freeze("node2")
            // SIGSTOP is delivered asynchronously: wait until /proc shows the stop.
            #expect(await eventually(within: .seconds(5)) { lab.pid(of: "node2")?.isStopped == true })
            try await lab.waitUntil("node1", sees: "node2", .offline)
            try lab.resume("node2")
            try await lab.waitUntil("node1", sees: "node2", .online, timeout: .seconds(20))
        }
    }

    @Test("link down: no ping, the peer goes Offline; link up: Online again")
    func linkDownAndUp() async throws {
        try await withLab { lab in
            try lab.setLink("node2", up: false)
            #expect(try !lab.ping(from: "node1", to: lab.spec.publicAddress(of: "node2")))
            try await lab.waitUntil("node1", sees: "node2", .offline)
            try await lab.waitUntil("node2", sees: "node1", .offline)
            try lab.setLink("node2", up: true)
            // A link just set up may take a moment to carry traffic (carrier, bridge port).
            let address = lab.spec.publicAddress(of: "node2")
            #expect(await eventually(within: .seconds(5)) { (try? lab.ping(from: "node1", to: address)) == true })
            try await lab.waitUntil("node1", sees: "node2", .online, timeout: .seconds(20))
        }
    }

    @Test("partition: both sides lose each other, the client still reaches both; heal: Online again")
    func partitionAndHeal() async throws {
        try await withLab { lab in
            let spec = lab.spec
            try lab.partition(["node1"], ["node2"])
            #expect(try !lab.ping(from: "node1", to: spec.publicAddress(of: "node2")))
            #expect(try !lab.ping(from: "node2", to: spec.publicAddress(of: "node1")))
            #expect(try lab.ping(from: LabSpec.client, to: spec.publicAddress(of: "node2")))
            try await lab.waitUntil("node1", sees: "node2", .offline)
            try await lab.waitUntil("node2", sees: "node1", .offline)
            try lab.heal()
            #expect(try lab.ping(from: "node1", to: spec.publicAddress(of: "node2")))
            try await lab.waitUntil("node1", sees: "node2", .online, timeout: .seconds(20))
        }
    }

    @Test("one-way partition: node1 hears nothing from node2 and marks it Offline")
    func oneWayPartition() async throws {
        try await withLab { lab in
            try lab.partition(["node2"], ["node1"], oneWay: true)
            // node2's echo requests never arrive; node1's arrive, the replies do not.
            #expect(try !lab.ping(from: "node2", to: lab.spec.publicAddress(of: "node1")))
            #expect(try !lab.ping(from: "node1", to: lab.spec.publicAddress(of: "node2")))
            try await lab.waitUntil("node1", sees: "node2", .offline)
            try lab.heal()
            try await lab.waitUntil("node1", sees: "node2", .online, timeout: .seconds(20))
        }
    }

    @Test("loss and duplication on a link: 100 % loss makes the peer Offline; duplicates show in ping; cleared: Online")
    func lossAndDuplication() async throws {
        try await withLab { lab in
            let spec = lab.spec
            try lab.netem("node2", direction: .outgoing, duplicatePercent: 100)
            let ping = try lab.exec(in: "node2", ["ping", "-c", "3", "-i", "0.05", "-W", "1", "-n", spec.publicAddress(of: "node1")])
            #expect(ping.output.contains("duplicates"), "\(ping)")
            try lab.netem("node2", direction: .outgoing, lossPercent: 100)
            #expect(try !lab.ping(from: "node2", to: spec.publicAddress(of: "node1")))
            try await lab.waitUntil("node1", sees: "node2", .offline)
            try lab.clearNetem("node2")
            #expect(try lab.ping(from: "node2", to: spec.publicAddress(of: "node1")))
            try await lab.waitUntil("node1", sees: "node2", .online, timeout: .seconds(20))
        }
    }

    @Test("second interconnect: with the public link down the peer stays Online over the interconnect")
    func secondLink() async throws {
        try await withLab(labSpec(secondLink: true)) { lab in
            let spec = lab.spec
            try lab.setLink("node2", .publicLAN, up: false)
            #expect(try lab.ping(from: "node1", to: try #require(spec.interconnectAddress(of: "node2"))))
            try await Task.sleep(for: .milliseconds(2000))
            #expect(await lab.serverStatus(of: "node2", seenBy: "node1") == .online)
            try lab.setLink("node2", .interconnect, up: false)
            try await lab.waitUntil("node1", sees: "node2", .offline)
        }
    }

    @Test("a crashed run's leftovers (lab kept running, never taken down) are removed by destroy(prefix:)")
    func leftoversOfACrashedRun() async throws {
        let spec = labSpec()
        var daemons: [LabProcess] = []
        do {
            let lab = try await Lab.up(spec, binary: labBinary)
            lab.keepRunning = true  // as if the process building it had crashed
            daemons = spec.serverNames.compactMap { lab.pid(of: $0) }
        }
        #expect(daemons.count == 2 && daemons.allSatisfy(\.isAlive))
        #expect(try Lab.existingNamespaces(prefix: spec.prefix).count == 4)
        // A second `up` with the same prefix refuses instead of clashing.
        await #expect(throws: LabError.self) { _ = try await Lab.up(spec, binary: labBinary) }
        let removed = Lab.destroy(prefix: spec.prefix)
        #expect(removed.contains("namespace \(spec.prefix)-net"), "\(removed)")
        try expectNothingLeft(spec, daemons: daemons)
    }
}
