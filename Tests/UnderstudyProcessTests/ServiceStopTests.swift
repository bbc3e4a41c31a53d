import Foundation
import Testing
import UnderstudyEngine
import UnderstudyModel

#if canImport(Glibc)
    import Glibc
#endif

/// Scenarios 5, 6 and 7: clean stops of one daemon (SIGTERM) and of the whole cluster
/// (`clpcl -t -a`), and failback when a server returns.
@Suite("Process: service stop, failback and cluster stop")
struct ServiceStopTests {
    @Test("SIGTERM: stop script sees SERVERSHUTDOWN/NONE and the async start's CLP_PID; exit 0; the group fails over")
    func sigtermStopsGroupAndFailsOver() async throws {
        var spec = ClusterSpec(subnet: 107)
        spec.groups = [GroupSpec(name: "grp1", resources: [ExecSpec(name: "grp1-app", start: .keepRunning, asyncStart: true)])]
        try await withCluster(spec) { cluster in
            try cluster.start()
            try await cluster.waitUntilFormed()
            // An async start is Online once launched; its record may come a moment later.
            let asyncStart = try #require(try await cluster.waitForRecords("the async start on node1") { !$0.starts.isEmpty }.first)
            #expect(asyncStart.server == "node1")
            // The start script exec'd into the long-running process: its pid is the script's.
            let asyncProcess = try #require(ProcessTable.identity(of: asyncStart.pid))
            #expect(asyncProcess.isAlive)

            cluster.send(SIGTERM, to: "node1")
            #expect(try await cluster.waitForExit("node1") == 0)
            // The farewell heartbeat tells the others at once that node1 left.
            try await cluster.waitForStatus("node1 Offline right after its exit", on: "node3", timeout: .milliseconds(500)) {
                $0.server(named: "node1")?.status == .offline
            }
            let runs = try await cluster.waitForRecords("grp1 started on node2") { $0.starts.count == 2 }
            #expect(runs.count == 3, "\(runs.summary)")
            let stop = try #require(runs.stops.first)
            #expect(stop.server == "node1")
            #expect(stop["CLP_FACTOR"] == "SERVERSHUTDOWN")
            #expect(stop["CLP_LASTACTION"] == "NONE")
            #expect(stop["CLP_EVENT"] == "START")
            #expect(stop["CLP_PID"] == String(asyncStart.pid))
            #expect(!asyncProcess.isAlive, "the async start process ends with its resource")

            let takeover = try #require(runs.starts.last)
            #expect(takeover.server == "node2")
            #expect(takeover["CLP_EVENT"] == "FAILOVER")
            #expect(takeover["CLP_SERVER"] == "OTHER")
            #expect(stop.nanoseconds < takeover.nanoseconds)
            let status = try await cluster.waitForStatus("grp1 Online on node2 and node1 Offline", on: "node3") {
                $0.group(named: "grp1")?.status == .online && $0.group(named: "grp1")?.current == "node2"
                    && $0.server(named: "node1")?.status == .offline
            }
            #expect(status.master == "node2", "\(status.summary)")
            // A clean stop removes the running marker and keeps the engine state.
            #expect(!FileManager.default.fileExists(atPath: cluster.stateDirectory(of: "node1") + "/running"))
            #expect(FileManager.default.fileExists(atPath: cluster.stateDirectory(of: "node1") + "/engine.json"))
        }
    }

    @Test("failback: auto returns to the restarted first server with RECOVER, manual stays")
    func failbackAutoAndManual() async throws {
        var spec = ClusterSpec(subnet: 108)
        spec.groups = [.simple("back", failback: "auto"), .simple("stay", failback: "manual")]
        try await withCluster(spec) { cluster in
            try cluster.start()
            try await cluster.waitUntilFormed(group: "back")
            try await cluster.waitUntilFormed(group: "stay")

            // A clean stop, so that node1's return is not an abnormal one.
            cluster.send(SIGTERM, to: "node1")
            #expect(try await cluster.waitForExit("node1") == 0)
            try await cluster.waitUntilFormed(online: ["node2", "node3"], group: "back", on: "node2", seenBy: "node2")
            try await cluster.waitUntilFormed(online: ["node2", "node3"], group: "stay", on: "node2", seenBy: "node2")
            let before = cluster.records.count
            #expect(before == 6, "\(cluster.records.summary)")

            try cluster.startDaemon("node1")
            let back = try await cluster.waitUntilFormed(group: "back", on: "node1", seenBy: "node1")
            #expect(!back.autoStartSuppressed)
            let failback = cluster.records.dropFirst(before)
            #expect(failback.map(\.action) == ["stop", "start"], "\(Array(failback).summary)")
            let leave = try #require(failback.first)
            #expect(leave.server == "node2")
            #expect(leave.resource == "back-app")
            #expect(leave["CLP_FACTOR"] == "GROUPMOVE")
            let recover = try #require(failback.last)
            #expect(recover.server == "node1")
            #expect(recover.resource == "back-app")
            #expect(recover["CLP_EVENT"] == "RECOVER")
            #expect(recover["CLP_SERVER"] == "HOME")
            #expect(recover["CLP_PRIORITY"] == "1")

            // The manual group stays where it runs, with no script run, for a while.
            try await Task.sleep(for: .seconds(1))
            let status = try await cluster.clpstat(on: "node3")
            #expect(status.group(named: "stay")?.current == "node2", "\(status.summary)")
            #expect(status.group(named: "back")?.current == "node1", "\(status.summary)")
            #expect(cluster.records.count == before + 2, "\(cluster.records.summary)")
        }
    }

    @Test("clpcl -t -a stops every server with CLUSTERSHUTDOWN and no failover; clpcl -s -a starts them again")
    func clusterStopAndStart() async throws {
        var spec = ClusterSpec(subnet: 109)
        // A stop that takes a while: the servers without groups finish leaving first.
        spec.groups = [GroupSpec(name: "grp1", resources: [ExecSpec(name: "grp1-app", stop: .sleepThenSucceed(seconds: 2))])]
        try await withCluster(spec) { cluster in
            try cluster.start()
            try await cluster.waitUntilFormed()

            let stop = try await cluster.cli(["clpcl", "-t", "-a"], on: "node2")
            #expect(stop.exitCode == 0, "\(stop)")
            for server in cluster.servers {
                #expect(stop.outputLines.contains("Stop \(server) : Command succeeded."), "\(stop)")
            }
            for server in cluster.servers {
                let status = try await cluster.clpstat(on: server)
                #expect(status.service == "stopped", "\(status.summary)")
            }
            #expect(try await cluster.clpstat(on: "node1").group(named: "grp1")?.status == .offline)
            for server in ["node2", "node3"] {
                let status = try await cluster.clpstat(on: server)
                #expect(status.group(named: "grp1")?.status == .offline, "\(status.summary)")
            }

            // The stop script ran to its end: the leaving server was not cut short.
            let alertLog = (try? String(contentsOfFile: cluster.stateDirectory(of: "node1") + "/alert.log", encoding: .utf8)) ?? ""
            #expect(cluster.records.map(\.action) == ["start", "stop", "stop-done"], "\(cluster.records.summary)")
            #expect(!alertLog.contains("lost the majority"), "\(alertLog)")
            // No failover: wait past the heartbeat timeout, nothing else ran.
            try await Task.sleep(for: cluster.spec.heartbeatTimeout + .milliseconds(500))
            let runs = cluster.records
            #expect(runs.starts.count == 1, "\(runs.summary)")
            let clusterStop = try #require(runs.stops.first)
            #expect(clusterStop.server == "node1")
            #expect(clusterStop["CLP_FACTOR"] == "CLUSTERSHUTDOWN")
            #expect(clusterStop["CLP_LASTACTION"] == "NONE")
            for server in cluster.servers {
                let status = try await cluster.clpstat(on: server)
                #expect(status.group(named: "grp1")?.status == .offline, "\(status.summary)")
                // The daemons stay up (service stopped) and clean: no abnormal-stop marker.
                #expect(cluster.isRunning(server))
                #expect(!FileManager.default.fileExists(atPath: cluster.stateDirectory(of: server) + "/running"))
            }

            let before = cluster.records.count
            let start = try await cluster.cli(["clpcl", "-s", "-a"], on: "node3")
            #expect(start.exitCode == 0, "\(start)")
            for server in cluster.servers {
                #expect(start.outputLines.contains("Start \(server) : Command succeeded."), "\(start)")
            }
            let status = try await cluster.waitUntilFormed(seenBy: "node3")
            #expect(!status.autoStartSuppressed)
            let restarted = Array(cluster.records.dropFirst(before))
            #expect(restarted.map(\.action) == ["start"], "\(restarted.summary)")
            let restart = try #require(restarted.first)
            #expect(restart.server == "node1")
            #expect(restart["CLP_SERVER"] == "HOME")
            #expect(restart["CLP_EVENT"] == "START")
        }
    }
}
