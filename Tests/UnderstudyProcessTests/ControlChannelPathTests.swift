import Foundation
import Testing
import UnderstudyEngine
import UnderstudyModel
import UnderstudyNode
import UnderstudyTestSupport

/// The control channel over every LAN path, with real daemons on loopback: each daemon
/// listens on all its LAN heartbeat addresses, `clpstat` shows the path in use, and a path
/// that carries heartbeats but not the control channel is passed over within the request.
/// (Taking a real interconnect down and back is the lab's test: LabTests.controlChannelFailover.)
@Suite("Process: control channel paths")
struct ControlChannelPathTests {
    @Test("every daemon answers the control channel on both LAN paths; clpstat marks the first path to each peer")
    func listensOnEveryPath() async throws {
        var spec = ClusterSpec(subnet: 147, servers: ["node1", "node2"])
        spec.secondPath = true
        try await withCluster(spec) { cluster in
            try cluster.start()
            try await cluster.waitUntilFormed()
            let key = try ClusterKey.load(from: cluster.keyPath)
            for server in spec.servers {
                for address in [spec.address(of: server), spec.secondAddress(of: server)] {
                    let answer = try await ControlClient.request(
                        host: address, port: spec.controlPort, key: key, localName: "node1", payload: WireJSON.encode(PeerRequest.status),
                        timeout: .seconds(5))
                    guard case .status(let snapshot) = try WireJSON.decode(PeerResponse.self, from: answer) else {
                        Issue.record("\(server) did not answer a status request on \(address)")
                        continue
                    }
                    #expect(snapshot.localServer == server)
                }
            }

            let status = try await cluster.clpstat(on: "node1")
            #expect(status.server(named: "node2")?.controlPath == "lanhb1", "\(status.summary)")
            #expect(status.server(named: "node2")?.controlAddress == spec.address(of: "node2"))
            #expect(status.server(named: "node1")?.controlPath == nil, "none to the local server")

            let text = try await cluster.cli(["clpstat"], on: "node1")
            #expect(text.exitCode == 0, "\(text)")
            let lines = text.outputLines
            let peer = try #require(lines.firstIndex { $0.contains("node2 .") }, "\(text)")
            #expect(lines[peer + 1].hasPrefix("      lanhb1") && lines[peer + 1].hasSuffix("LAN Heartbeat [control]"), "\(text)")
            #expect(lines[peer + 2].hasPrefix("      lanhb2") && lines[peer + 2].hasSuffix("LAN Heartbeat"), "\(text)")
            #expect(lines.filter { $0.contains("[control]") }.count == 1, "only to the peer: \(text)")
        }
    }

    @Test(
        "a path that carries heartbeats but not the control channel: clpgrp -t and clpstat -h go over the second path in the same request")
    func passesOverABrokenPath() async throws {
        // node2 first: it is the master and runs grp1; commands on node1 are forwarded to it.
        var spec = ClusterSpec(subnet: 148, servers: ["node2", "node1"])
        spec.secondPath = true
        // Long enough that node1 does not go back to try lanhb1 (one timeout after it moved
        // to lanhb2) while a loaded machine runs the steps below.
        spec.heartbeatTimeoutMilliseconds = 10_000
        try await withCluster(spec) { cluster in
            // node1's file gives node2 an address on lanhb1 where nothing listens (heartbeats
            // from node2 still arrive there, so lanhb1 counts as up): every request from
            // node1 tries lanhb1 first and must go on to lanhb2.
            let broken = "127.0.148.50"
            let good = "node2: \(spec.address(of: "node2")),"
            let text = spec.yaml(folder: cluster.folder)
            #expect(text.contains(good))
            let brokenConfig = cluster.folder + "/node1.yaml"
            try cluster.write(text.replacingOccurrences(of: good, with: "node2: \(broken),"), to: brokenConfig)
            try cluster.startDaemon("node2")
            try cluster.startDaemon("node1", config: brokenConfig)
            try await cluster.waitUntilFormed(on: "node2", seenBy: "node1")
            // node1's first requests to node2 are its alert exchange (alerts.md, one alert
            // log; a pull every 5 s): each tries lanhb1, gives up within its attempt bound and
            // is answered on lanhb2 in the same request; node1 then prefers lanhb2.
            let before = try await cluster.clpstat(on: "node1")
            #expect(
                [broken, spec.secondAddress(of: "node2")].contains(before.server(named: "node2")?.controlAddress ?? ""),
                "\(before.summary)")
            let learned = await eventually(within: .seconds(20), every: .milliseconds(200)) {
                (try? await cluster.clpstat(on: "node1"))?.server(named: "node2")?.controlPath == "lanhb2"
            }
            #expect(learned, "node1's alert exchange with node2 went over lanhb2")

            // node1's file differs from the master's, so node1 takes no part in placement
            // (issue 16): the command is a stop, which node1 forwards to the master.
            let stop = try await cluster.cli(["clpgrp", "-t", "grp1"], on: "node1")
            #expect(stop.exitCode == 0, "\(stop)\n\(cluster.diagnostics())")
            _ = try await cluster.waitForStatus("grp1 offline", on: "node1") { $0.group(named: "grp1")?.status == .offline }
            let after = try await cluster.clpstat(on: "node1")
            #expect(after.server(named: "node2")?.controlPath == "lanhb2", "\(after.summary)")
            #expect(after.server(named: "node2")?.controlAddress == spec.secondAddress(of: "node2"))

            let remote = try await cluster.cli(["clpstat", "-h", "node2"], on: "node1")
            #expect(remote.exitCode == 0, "\(remote)")
            #expect(remote.outputLines.contains { $0.contains("*node2") }, "node2's own view: \(remote)")
        }
    }
}

/// A peer whose heartbeats arrive while its state cannot be fetched (the control port blocked,
/// a cut one way): the daemon tells its Engine, which takes nothing of the peer's over while
/// the heartbeats keep coming (simulator seed 23002612).
@Suite("Process: heartbeats without their state")
struct HeartbeatsWithoutStateTests {
    @Test("node2's heartbeats arrive but nothing answers on its control port: node1 starts none of node2's groups until they stop")
    func heldHeartbeatsHoldTheGroupBack() async throws {
        var spec = ClusterSpec(subnet: 149, servers: ["node1", "node2"])
        spec.pingTarget = "127.0.0.1"
        spec.syncWait = "2s"
        spec.groups = [.simple("grp1", servers: ["node2", "node1"])]
        try await withCluster(spec) { cluster in
            // Only node1 runs; "node2" is a socket on node2's address that sends heartbeats
            // sealed with the cluster key, whose state (number 42, no delta) node1 must fetch
            // from node2's control port, where nothing listens.
            let key = try ClusterKey.load(from: cluster.keyPath)
            let codec = DatagramCodec(key: key)
            let sender = try RawUDPSocket(bindTo: spec.address(of: "node2"), port: 0)
            let bootID = UInt64.random(in: 1...UInt64(Int64.max))
            let target = spec.address(of: "node1")
            let port = spec.heartbeatPort
            // Sends from before node1 starts (those are lost) until cancelled, every 200 ms, so
            // that a daemon slow to start on a loaded machine still hears node2 from its first
            // moment (at most a minute: the test cancels it long before).
            let sending = Task {
                var sequence: UInt64 = 0
                while !Task.isCancelled, sequence < 300 {
                    sequence += 1
                    let core = Heartbeat(sender: "node2", bootID: bootID, sentAt: .milliseconds(Int(sequence) * 200), configHash: "other")
                    let payload = HeartbeatWire.encode(HeartbeatDatagram(core: core, stateSeq: 42), inlineJSON: nil)
                    if let sealed = try? codec.seal(payload: payload, sender: "node2", bootID: bootID, sequence: sequence) {
                        try? sender.send(sealed, to: target, port: port)
                    }
                    try? await Task.sleep(for: .milliseconds(200))
                }
            }
            defer { sending.cancel() }
            try cluster.start(["node1"])
            _ = try await cluster.waitForStatus("node1 answers", on: "node1") { _ in true }
            // Past the sync wait (2 s) and then some, with node2 present throughout.
            try await Task.sleep(for: .seconds(6))
            let log = { (try? String(contentsOfFile: cluster.stateDirectory(of: "node1") + "/alert.log", encoding: .utf8)) ?? "" }
            #expect(log().contains("[nm 13] node2's heartbeats arrive but its state cannot be fetched"), "\(log())")
            let held = await cluster.status(on: "node1")
            #expect(held?.group(named: "grp1")?.status != .online, "grp1 may run on node2: it waits while node2 is present")
            // The status says why (clpstat's note, the WebManager's notice).
            #expect(held?.withoutStateServers == ["node2"], "\(held?.summary ?? "no status")")
            let text = try await cluster.cli(["clpstat"], on: "node1")
            #expect(text.standardOutput.contains("(node2's heartbeats arrive but its state cannot be fetched"), "\(text)")
            sending.cancel()
            _ = await sending.value

            // node2 falls silent: after its presence and the ping probe, node1 starts grp1.
            let started = await eventually(within: .seconds(25), every: .milliseconds(250)) {
                let status = await cluster.status(on: "node1")
                return status?.group(named: "grp1")?.status == .online && status?.group(named: "grp1")?.current == "node1"
            }
            let final = await cluster.status(on: "node1")
            #expect(started, "\(final?.summary ?? "no status")")
        }
    }
}
