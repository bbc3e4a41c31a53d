import Foundation
import Testing
import UnderstudyEngine
import UnderstudyModel
import UnderstudyNode
import UnderstudyTestSupport

#if canImport(Glibc)
    import Glibc
#endif

/// Scenario 8: a fourth process on the cluster's network — a daemon with another key, a raw
/// UDP socket sending garbage, truncated, corrupted and replayed heartbeats, garbage and
/// wrongly keyed requests on the control port — never joins or disturbs the cluster.
@Suite("Process: authentication and hostile traffic")
struct SecurityTests {
    /// Four servers in the configuration; node4 never runs with the cluster's key. With node2
    /// killed, node1 and node3 are an exact half: the ping target lets the half holding node1
    /// survive.
    static func spec() -> ClusterSpec {
        var spec = ClusterSpec(subnet: 116, servers: ["node1", "node2", "node3", "node4"])
        spec.pingTarget = "127.0.0.1"
        spec.syncWait = "2s"
        spec.groups = [.simple("grp1", servers: ["node1", "node2", "node3"])]
        return spec
    }

    @Test("a daemon with another key never joins; wrongly keyed control requests are refused")
    func daemonWithAnotherKeyNeverJoins() async throws {
        let spec = Self.spec()
        try await withCluster(spec) { cluster in
            let rogueKeyPath = cluster.folder + "/rogue.key"
            let rogueKey = try ClusterKey.generate(to: rogueKeyPath)
            let rogueConfig = cluster.folder + "/rogue.yaml"
            try cluster.write(spec.yaml(folder: cluster.folder, secretFile: "rogue.key"), to: rogueConfig)

            try cluster.start(["node1", "node2", "node3"])
            try cluster.startDaemon("node4", config: rogueConfig)
            try await cluster.waitUntilFormed(online: ["node1", "node2", "node3"])
            // Give the rogue a dozen heartbeat rounds to try.
            try await Task.sleep(for: .seconds(2))

            for server in ["node1", "node2", "node3"] {
                let status = try await cluster.clpstat(on: server)
                #expect(status.server(named: "node4")?.status == .offline, "\(status.summary)")
                #expect(status.servers.filter { $0.status == .online }.map(\.name) == ["node1", "node2", "node3"], "\(status.summary)")
                #expect(
                    status.group(named: "grp1")?.status == .online && status.group(named: "grp1")?.current == "node1", "\(status.summary)")
            }
            let rogueView = try await cluster.clpstat(on: "node4")
            #expect(rogueView.servers.filter { $0.status == .online }.map(\.name) == ["node4"], "\(rogueView.summary)")
            #expect(rogueView.master == nil, "\(rogueView.summary)")
            let refused = try await cluster.cli(["clpgrp", "-s", "grp1"], on: "node4")
            #expect(refused.exitCode == 1, "a server without a majority refuses plainly, not 'retry': \(refused)")
            #expect(rogueView.group(named: "grp1")?.status == .offline, "\(rogueView.summary)")
            #expect(cluster.isRunning("node4"))

            // A control request signed with the rogue key is refused; the same request with
            // the cluster key is answered (the channel itself works).
            let address = spec.address(of: "node1")
            let stopOrder = WireJSON.encode(PeerRequest.command(.stopGroup("grp1"), origin: "node4", forwarded: false))
            await #expect(throws: ControlChannelError.self) {
                _ = try await ControlClient.request(
                    host: address, port: spec.controlPort, key: rogueKey, localName: "node4", payload: stopOrder, timeout: .seconds(5))
            }
            let clusterKey = try ClusterKey.load(from: cluster.keyPath)
            let answer = try await ControlClient.request(
                host: address, port: spec.controlPort, key: clusterKey, localName: "node2",
                payload: WireJSON.encode(PeerRequest.status), timeout: .seconds(5))
            guard case .status(let snapshot) = try WireJSON.decode(PeerResponse.self, from: answer) else {
                Issue.record("node1 did not answer a status request with the cluster key")
                return
            }
            #expect(snapshot.localServer == "node1")

            try await Task.sleep(for: .milliseconds(500))
            let after = try await cluster.clpstat(on: "node2")
            #expect(after.group(named: "grp1")?.status == .online && after.group(named: "grp1")?.current == "node1", "\(after.summary)")
            // The rogue's heartbeats and request did arrive, and were rejected as forgeries.
            let counters = try await cluster.clpstat(on: "node1").transportCounters
            #expect((counters["lanhb1"]?.dropped["badMAC"] ?? 0) >= 5, "\(counters)")
            #expect((counters["control"]?.dropped["badMAC"] ?? 0) >= 1, "\(counters)")
            // Each side names the other as keyed differently, once (lanhb 13).
            let said = await eventually(within: .seconds(10), every: .milliseconds(200)) {
                let log = (try? String(contentsOfFile: cluster.stateDirectory(of: "node1") + "/alert.log", encoding: .utf8)) ?? ""
                let rogue = (try? String(contentsOfFile: cluster.stateDirectory(of: "node4") + "/alert.log", encoding: .utf8)) ?? ""
                return log.contains("[lanhb 13] Heartbeats from node4's address \(spec.address(of: "node4"))")
                    && rogue.contains("[lanhb 13] Heartbeats from node1's address")
            }
            #expect(said, "the key mismatch is named on both sides")
            let node1Log = (try? String(contentsOfFile: cluster.stateDirectory(of: "node1") + "/alert.log", encoding: .utf8)) ?? ""
            #expect(node1Log.components(separatedBy: "[lanhb 13]").count - 1 == 1, "once, not per datagram")
            // The daemon tells its Engine: node4 is present with another key, never judged down
            // (nm 12 once, and the status names it).
            let present = await eventually(within: .seconds(10), every: .milliseconds(200)) {
                let log = (try? String(contentsOfFile: cluster.stateDirectory(of: "node1") + "/alert.log", encoding: .utf8)) ?? ""
                let status = await cluster.status(on: "node1")
                return log.contains("[nm 12] node4 is present but its heartbeats fail authentication")
                    && status?.unauthenticatedServers == ["node4"]
            }
            #expect(present, "node1's Engine knows node4 is present with another key")
            let text = try await cluster.cli(["clpstat"], on: "node1")
            #expect(text.standardOutput.contains("(node4 is present but its heartbeats fail authentication"), "\(text)")
            #expect(cluster.records.count == 1, "\(cluster.records.summary)")
            #expect(["node1", "node2", "node3", "node4"].allSatisfy(cluster.isRunning))
        }
    }

    @Test(
        "garbage, truncated, corrupted and replayed datagrams and control-port garbage change nothing; replays do not keep a dead server alive"
    )
    func hostileTrafficIsIgnored() async throws {
        var spec = Self.spec()
        spec.subnet = 117
        // The group runs on node2, so that after node2 is killed node1 and node3 still hold
        // the majority (two of four, with the first server).
        spec.groups = [.simple("grp1", servers: ["node2", "node3", "node1"])]
        try await withCluster(spec) { cluster in
            try cluster.start(["node1", "node2", "node3"])
            try await cluster.waitUntilFormed(online: ["node1", "node2", "node3"], on: "node2")

            // Listen where node4 would: every daemon sends it real heartbeats.
            let listener = try RawUDPSocket(bindTo: spec.address(of: "node4"), port: spec.heartbeatPort)
            var captured: [[UInt8]] = []
            let captureUntil = ContinuousClock.now + .seconds(3)
            while captured.count < 6, ContinuousClock.now < captureUntil {
                if let datagram = listener.receive(timeout: .milliseconds(500)), heartbeatSender(of: datagram) == "node2" {
                    captured.append(datagram)
                }
            }
            #expect(captured.count >= 3, "captured \(captured.count) heartbeats of node2 sent to node4")
            guard let sample = captured.last else { return }

            // A silent connection must be closed by the daemon (handshake timeout).
            let silent = try RawTCPConnection(to: spec.address(of: "node1"), port: spec.controlPort)

            var generator = SystemRandomNumberGenerator()
            func randomBytes(_ count: Int) -> [UInt8] { (0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) } }
            var hostile: [[UInt8]] = [[], [0], Array("USHB".utf8), Array("USHB".utf8) + [1], Array("USHB".utf8) + [9] + randomBytes(60)]
            hostile += (0..<50).map { _ in randomBytes(Int.random(in: 1...1400, using: &generator)) }
            hostile += (0..<40).map { _ in Array("USHB".utf8) + [1] + randomBytes(Int.random(in: 1...600, using: &generator)) }
            hostile.append(randomBytes(65_507))
            // Every truncation of a real heartbeat, and a copy with each byte flipped.
            hostile += (0..<sample.count).map { Array(sample.prefix($0)) }
            hostile += (0..<sample.count).map { index in
                var corrupted = sample
                corrupted[index] ^= 0x5a
                return corrupted
            }
            // The real heartbeat with bytes appended after its MAC.
            hostile.append(sample + [0])

            let attacker = try RawUDPSocket(bindTo: "127.0.\(spec.subnet).9", port: 0)
            for (index, datagram) in hostile.enumerated() {
                for server in ["node1", "node2", "node3"] {
                    try attacker.send(datagram, to: spec.address(of: server), port: spec.heartbeatPort)
                }
                // Paced, so that the daemons' receive buffers never overflow (the kernel
                // would drop real heartbeats too): a flood is another test.
                if index % 10 == 9 { try await Task.sleep(for: .milliseconds(5)) }
            }
            // Replays: the very same authentic datagrams, again and again. (The first copy
            // of each is new to node1 and node3 — it was addressed to node4 — and passes
            // the replay guard once; it is older than what they heard from node2 directly.)
            for _ in 0..<5 {
                for datagram in captured {
                    for server in ["node1", "node2", "node3"] {
                        try attacker.send(datagram, to: spec.address(of: server), port: spec.heartbeatPort)
                    }
                }
                try await Task.sleep(for: .milliseconds(50))
            }

            // Garbage on the control port.
            let controlGarbage: [[UInt8]] = [
                randomBytes(512),
                [0xff, 0xff, 0xff, 0xff] + randomBytes(64),  // announces 4 GiB
                [0, 0, 0, 22, 0x01] + Array("USCX".utf8) + [1] + randomBytes(16),  // a hello with the wrong magic
                [0, 0, 0, 22, 0x01] + Array("USCC".utf8) + [7] + randomBytes(16),  // a hello of an unknown version
                [0, 0, 0, 0],
                Array("GET / HTTP/1.1\r\nHost: x\r\n\r\n".utf8),
            ]
            for garbage in controlGarbage {
                let connection = try RawTCPConnection(to: spec.address(of: "node1"), port: spec.controlPort)
                connection.send(garbage)
                #expect(connection.waitForClose(timeout: .seconds(8)), "the daemon keeps a garbage connection open: \(garbage.prefix(8))")
            }
            #expect(silent.waitForClose(timeout: .seconds(8)), "the daemon keeps a silent connection open")

            // Nothing changed.
            for server in ["node1", "node2", "node3"] {
                #expect(cluster.isRunning(server), "\(server) died")
                let status = try await cluster.clpstat(on: server)
                #expect(status.servers.filter { $0.status == .online }.map(\.name) == ["node1", "node2", "node3"], "\(status.summary)")
                #expect(status.master == "node1", "\(status.summary)")
                #expect(
                    status.group(named: "grp1")?.status == .online && status.group(named: "grp1")?.current == "node2", "\(status.summary)")
            }
            #expect(cluster.records.count == 1, "\(cluster.records.summary)")
            // It all arrived and was dropped, for the right reasons.
            for server in ["node1", "node2", "node3"] {
                let heartbeat = try #require(try await cluster.clpstat(on: server).transportCounters["lanhb1"])
                for reason in ["badMagic", "badVersion", "truncated", "badMAC"] {
                    #expect((heartbeat.dropped[reason] ?? 0) > 0, "\(server) dropped no datagram as \(reason): \(heartbeat.dropped)")
                }
                #expect(
                    (heartbeat.dropped["replayed"] ?? 0) + (heartbeat.dropped["staleSequence"] ?? 0) > 0, "\(server): \(heartbeat.dropped)")
            }
            let control = try #require(try await cluster.clpstat(on: "node1").transportCounters["control"])
            #expect(control.dropped.values.reduce(0, +) >= UInt64(controlGarbage.count + 1), "\(control.dropped)")
            for reason in ["badHello", "oversize", "timedOut"] {
                #expect((control.dropped[reason] ?? 0) > 0, "no control connection dropped as \(reason): \(control.dropped)")
            }

            // Replayed heartbeats of a dead server do not keep it alive: kill node2 and keep
            // replaying what it sent; grp1 still fails over within the timeout and margin. (Its
            // keeper is stopped first: its notice would end the wait at once.)
            #expect(cluster.silenceKeeper(of: "node2") != nil)
            let killedAt = cluster.send(SIGKILL, to: "node2")
            let deadline = ContinuousClock.now + spec.heartbeatTimeout + .seconds(5)
            var failedOver = false
            while ContinuousClock.now < deadline, !failedOver {
                for datagram in captured {
                    try attacker.send(datagram, to: spec.address(of: "node1"), port: spec.heartbeatPort)
                    try attacker.send(datagram, to: spec.address(of: "node3"), port: spec.heartbeatPort)
                }
                try await Task.sleep(for: .milliseconds(50))
                failedOver = cluster.records.starts.contains { $0.server == "node3" }
            }
            #expect(failedOver, "grp1 did not fail over while node2's old heartbeats were replayed")
            if let takeover = cluster.records.starts.last, takeover.server == "node3" {
                #expect(takeover["CLP_EVENT"] == "FAILOVER")
                #expect(
                    takeover.time.timeIntervalSince(killedAt) <= 1.5 + 3, "failover took \(takeover.time.timeIntervalSince(killedAt)) s")
            }
        }
    }
}

extension ClusterStatusSnapshot {
    /// The daemon's transport counters by path name (`lanhb1`, …, `control`).
    var transportCounters: [String: TransportLine] {
        Dictionary((transport ?? []).map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
    }
}
