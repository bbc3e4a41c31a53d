import Foundation
import Testing
import UnderstudyEngine
import UnderstudyModel

#if canImport(Glibc)
    import Glibc
#endif

/// Scenario 4: a daemon killed with SIGKILL; its keeper fences what it held and tells the
/// peers, and its group comes Online on the next server well before the heartbeat timeout;
/// the killed daemon rejoins with automatic start suspended until `clpcl -r`. Scenario 11
/// (the abnormal-stop marker) is checked on the way. Without the keeper's word the peers wait
/// for the timeout (SecurityTests stops the keeper first).
@Suite("Process: failover after kill -9")
struct FailoverTests {
    /// After the heartbeat timeout, and within the timeout plus this.
    static let failoverMargin: Duration = .seconds(3)

    @Test("kill -9 of the master running the group: Online on node2 with FAILOVER/OTHER; the master rejoins suspended; clpcl -r lifts it")
    func killMasterRunningGroup() async throws {
        var spec = ClusterSpec(subnet: 105)
        spec.groups = [GroupSpec(name: "grp1", resources: [ExecSpec(name: "grp1-app", start: .keepRunning, asyncStart: true)])]
        try await withCluster(spec) { cluster in
            try cluster.start()
            try await cluster.waitUntilFormed()
            // An async start is Online once launched; its record may come a moment later.
            let first = try #require(try await cluster.waitForRecords("the async start on node1") { !$0.starts.isEmpty }.first)
            let leftover = try #require(ProcessTable.identity(of: first.pid))
            try await expectFailover(
                in: cluster, killing: "node1", group: "grp1", to: "node2", priority: "2", watchedFrom: "node3")
            // kill -9 of a daemon: its keeper kills what its scripts left running at once.
            var gone = false
            for _ in 0..<100 where !gone {
                gone = !leftover.isAlive
                if !gone { try await Task.sleep(for: .milliseconds(50)) }
            }
            #expect(gone, "the async process of the killed daemon still runs")
            try await expectRejoinSuspended(in: cluster, server: "node1", group: "grp1", stillOn: "node2")
        }
    }

    @Test("kill -9 of a non-master running the group: Online on the next server of its policy with FAILOVER/OTHER")
    func killNonMasterRunningGroup() async throws {
        var spec = ClusterSpec(subnet: 106)
        spec.groups = [.simple("grp1", servers: ["node2", "node3", "node1"])]
        try await withCluster(spec) { cluster in
            try cluster.start()
            let formed = try await cluster.waitUntilFormed(on: "node2")
            #expect(formed.master == "node1")
            let home = try #require(cluster.records.starts.first)
            #expect(home["CLP_SERVER"] == "HOME")
            #expect(home["CLP_PRIORITY"] == "1")
            try await expectFailover(
                in: cluster, killing: "node2", group: "grp1", to: "node3", priority: "2", watchedFrom: "node1")
            try await expectRejoinSuspended(in: cluster, server: "node2", group: "grp1", stillOn: "node3")
        }
    }

    func expectFailover(
        in cluster: TestCluster, killing victim: String, group: String, to target: String, priority: String,
        watchedFrom observer: String
    ) async throws {
        let timeout = cluster.spec.heartbeatTimeout
        let killedAt = cluster.send(SIGKILL, to: victim)
        #expect(try await cluster.waitForExit(victim) == 128 + SIGKILL)
        let status = try await cluster.waitForStatus(
            "\(group) Online on \(target)", on: observer, timeout: timeout + Self.failoverMargin + .seconds(2)
        ) { status in
            status.group(named: group)?.status == .online && status.group(named: group)?.current == target
        }
        #expect(status.server(named: victim)?.status == .offline, "\(status.summary)")

        let runs = try await cluster.waitForRecords("the start on \(target)", timeout: .seconds(5)) { $0.starts.count == 2 }
        #expect(runs.count == 2, "one start before, one after the kill (the killed server runs no stop script): \(runs.summary)")
        let takeover = try #require(runs.starts.last)
        #expect(takeover.server == target)
        #expect(takeover["CLP_EVENT"] == "FAILOVER")
        #expect(takeover["CLP_SERVER"] == "OTHER")
        #expect(takeover["CLP_PRIORITY"] == priority)
        #expect(takeover["CLP_GROUPNAME"] == group)
        let elapsed = takeover.time.timeIntervalSince(killedAt)
        let timeoutSeconds = Double(timeout.components.seconds) + Double(timeout.components.attoseconds) / 1e18
        // Only the keeper's notice lets a peer go before the timeout.
        #expect(elapsed < timeoutSeconds, "the group started on \(target) \(elapsed) s after the kill: the keeper's notice did not arrive")

        // The killed daemon left its running marker: the next start is an abnormal one.
        #expect(FileManager.default.fileExists(atPath: cluster.stateDirectory(of: victim) + "/running"))
        #expect(FileManager.default.fileExists(atPath: cluster.stateDirectory(of: victim) + "/engine.json"))
    }

    func expectRejoinSuspended(in cluster: TestCluster, server: String, group: String, stillOn holder: String) async throws {
        try cluster.startDaemon(server)
        try await cluster.waitUntilFormed(group: group, on: holder, seenBy: server)
        try await cluster.waitUntilFormed(group: group, on: holder, seenBy: holder)
        let own = try await cluster.clpstat(on: server)
        #expect(own.autoStartSuppressed, "\(own.summary)")
        let text = try await cluster.cli(["clpstat"], on: server)
        #expect(text.standardOutput.contains("Automatic group start is suspended on \(server)"), "\(text)")

        let restart = try await cluster.cli(["clpcl", "-r"], on: server)
        #expect(restart.exitCode == 0, "\(restart)")
        #expect(restart.outputLines.contains("Restart \(server) : Command succeeded."), "\(restart)")
        let lifted = try await cluster.waitForStatus("automatic start no longer suspended on \(server)", on: server) { status in
            !status.autoStartSuppressed && status.service == "running"
                && status.servers.allSatisfy { $0.status == .online }
        }
        #expect(lifted.group(named: group)?.current == holder, "the group stays where it runs: \(lifted.summary)")
        #expect(!(try await cluster.clpstat(on: server).autoStartSuppressed))
        let text2 = try await cluster.cli(["clpstat"], on: server)
        #expect(!text2.standardOutput.contains("Automatic group start is suspended"), "\(text2)")
        #expect(cluster.isRunning(server))
        #expect(cluster.records.count == 2, "rejoining and clpcl -r run no script: \(cluster.records.summary)")
    }
}
