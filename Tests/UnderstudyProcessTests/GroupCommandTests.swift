import Foundation
import Testing
import UnderstudyEngine
import UnderstudyModel
import UnderstudyTestSupport

/// Scenarios 2 and 3: `clpgrp` moves, stops and starts a group; a group in transition
/// refuses commands with exit code 4.
@Suite("Process: group commands")
struct GroupCommandTests {
    @Test("clpgrp -m, -m -a, -n, -t and -s move, locate, stop and start the group with the right CLP_FACTOR")
    func moveStopStart() async throws {
        try await withCluster(ClusterSpec(subnet: 103)) { cluster in
            try cluster.start()
            try await cluster.waitUntilFormed()

            // Move to the next server of the policy, asked on a server that does not run it.
            let move = try await cluster.cli(["clpgrp", "-m", "grp1"], on: "node3")
            #expect(move.exitCode == 0, "\(move)")
            #expect(move.outputLines.last == "Command succeeded.", "\(move)")
            var status = try await cluster.clpstat(on: "node1")
            #expect(status.group(named: "grp1")?.status == .online)
            #expect(status.group(named: "grp1")?.current == "node2")
            var runs = cluster.records
            #expect(runs.count == 3, "\(runs.summary)")
            let moveStop = try #require(runs.stops.first)
            #expect(moveStop.server == "node1")
            #expect(moveStop["CLP_FACTOR"] == "GROUPMOVE")
            #expect(moveStop["CLP_EVENT"] == "START")
            #expect(moveStop["CLP_LASTACTION"] == "NONE")
            let moveStart = try #require(runs.starts.last)
            #expect(moveStart.server == "node2")
            #expect(moveStart["CLP_EVENT"] == "START")
            #expect(moveStart["CLP_SERVER"] == "OTHER")
            #expect(moveStart["CLP_PRIORITY"] == "2")
            #expect(moveStop.nanoseconds < moveStart.nanoseconds, "the source stops before the destination starts")

            // Move to a named server.
            let moveTo = try await cluster.cli(["clpgrp", "-m", "grp1", "-a", "node3"], on: "node1")
            #expect(moveTo.exitCode == 0, "\(moveTo)")
            #expect(moveTo.outputLines.last == "Command succeeded.", "\(moveTo)")
            runs = cluster.records
            #expect(runs.count == 5, "\(runs.summary)")
            #expect(runs.last?.server == "node3")
            #expect(runs.last?["CLP_PRIORITY"] == "3")
            #expect(runs.stops.last?.server == "node2")
            #expect(runs.stops.last?["CLP_FACTOR"] == "GROUPMOVE")

            let whereRuns = try await cluster.cli(["clpgrp", "-n", "grp1"], on: "node2")
            #expect(whereRuns.exitCode == 0, "\(whereRuns)")
            #expect(whereRuns.outputLines == ["node3"], "\(whereRuns)")
            let whereResource = try await cluster.cli(["clprsc", "-n", "grp1-app"], on: "node1")
            #expect(whereResource.outputLines == ["node3"], "\(whereResource)")

            // Stop.
            let stop = try await cluster.cli(["clpgrp", "-t", "grp1"], on: "node1")
            #expect(stop.exitCode == 0, "\(stop)")
            #expect(stop.outputLines.last == "Command succeeded.", "\(stop)")
            status = try await cluster.clpstat(on: "node2")
            #expect(status.group(named: "grp1")?.status == .offline, "\(status.summary)")
            #expect(status.group(named: "grp1")?.current == nil)
            runs = cluster.records
            #expect(runs.count == 6, "\(runs.summary)")
            #expect(runs.last?.isStop == true)
            #expect(runs.last?.server == "node3")
            #expect(runs.last?["CLP_FACTOR"] == "GROUPSTOP")
            #expect(runs.last?["CLP_LASTACTION"] == "NONE")

            // -n of an offline group fails (1) with a message naming it.
            let whereOffline = try await cluster.cli(["clpgrp", "-n", "grp1"], on: "node1")
            #expect(whereOffline.exitCode == 1, "\(whereOffline)")
            #expect(whereOffline.standardError.contains("grp1"), "\(whereOffline)")

            // Start: without -h, on the server the command is given on.
            let start = try await cluster.cli(["clpgrp", "-s", "grp1"], on: "node2")
            #expect(start.exitCode == 0, "\(start)")
            #expect(start.outputLines.last == "Command succeeded.", "\(start)")
            status = try await cluster.clpstat(on: "node3")
            #expect(status.group(named: "grp1")?.status == .online)
            #expect(status.group(named: "grp1")?.current == "node2")
            runs = cluster.records
            #expect(runs.count == 7, "\(runs.summary)")
            #expect(runs.last?.isStart == true)
            #expect(runs.last?.server == "node2")
            #expect(runs.last?["CLP_EVENT"] == "START")
            #expect(runs.last?["CLP_SERVER"] == "OTHER")

            // Start on a named server after another stop.
            #expect(try await cluster.cli(["clpgrp", "-t", "grp1"], on: "node1").exitCode == 0)
            let startOn = try await cluster.cli(["clpgrp", "-s", "grp1", "-h", "node1"], on: "node3")
            #expect(startOn.exitCode == 0, "\(startOn)")
            status = try await cluster.clpstat(on: "node1")
            #expect(status.group(named: "grp1")?.current == "node1")
            #expect(cluster.records.last?["CLP_SERVER"] == "HOME")
        }
    }

    @Test("clprsc -t and -s stop and start one resource where its group runs; the stop sees an empty CLP_FACTOR")
    func singleResourceStopAndStart() async throws {
        var spec = ClusterSpec(subnet: 118)
        spec.groups = [GroupSpec(name: "grp1", resources: [ExecSpec(name: "grp1-first"), ExecSpec(name: "grp1-second")])]
        try await withCluster(spec) { cluster in
            try cluster.start()
            try await cluster.waitUntilFormed()
            #expect(cluster.records.map(\.resource) == ["grp1-first", "grp1-second"], "\(cluster.records.summary)")

            // Asked on node3: forwarded to node1, which runs the group.
            let stop = try await cluster.cli(["clprsc", "-t", "grp1-second"], on: "node3")
            #expect(stop.exitCode == 0, "\(stop)")
            #expect(stop.outputLines.last == "Command succeeded.", "\(stop)")
            let single = try #require(cluster.records.last)
            #expect(single.isStop && single.server == "node1" && single.resource == "grp1-second", "\(single)")
            #expect(single["CLP_FACTOR"] == "", "set, but empty")
            var status = try await cluster.clpstat(on: "node2")
            let group = try #require(status.group(named: "grp1"))
            #expect(group.current == "node1", "\(status.summary)")
            #expect(group.resources.map(\.status) == [.online, .offline], "\(status.summary)")

            let start = try await cluster.cli(["clprsc", "-s", "grp1-second"], on: "node2")
            #expect(start.exitCode == 0, "\(start)")
            #expect(cluster.records.last?.isStart == true && cluster.records.last?.server == "node1")
            status = try await cluster.waitUntilFormed()
            #expect(status.group(named: "grp1")?.resources.map(\.status) == [.online, .online])

            // Stopping every resource of the group by hand leaves them stopped.
            #expect(try await cluster.cli(["clprsc", "-t", "grp1-second"], on: "node1").exitCode == 0)
            let before = cluster.records.count
            let last = try await cluster.cli(["clprsc", "-t", "grp1-first", "--timeout", "5"], on: "node1")
            try await Task.sleep(for: .seconds(1))
            let after = Array(cluster.records.dropFirst(before))
            #expect(after.first?.isStop == true && after.first?.resource == "grp1-first", "\(after.summary)")
            #expect(last.exitCode == 0, "\(last)")
            #expect(after.count == 1, "only the stop ran: \(after.summary)")
        }
    }

    @Test("a command on a group in transition exits 4 with a clear message; afterwards it works")
    func groupInTransitionRefuses() async throws {
        var spec = ClusterSpec(subnet: 104)
        spec.groups = [
            GroupSpec(name: "grp1", resources: [ExecSpec(name: "grp1-app", start: .waitForRelease, stop: .waitForRelease)])
        ]
        try await withCluster(spec) { cluster in
            try cluster.start()
            // The start script waits for the test: the group stays Online Pending on node1.
            try await cluster.waitForStatus("grp1 Online Pending on node1", on: "node2") { status in
                status.group(named: "grp1")?.status == .onlinePending && status.group(named: "grp1")?.current == "node1"
            }
            for command in [["clpgrp", "-t", "grp1"], ["clpgrp", "-m", "grp1"], ["clpgrp", "-s", "grp1"]] {
                let refused = try await cluster.cli(command, on: "node2")
                #expect(refused.exitCode == 4, "\(refused)")
                #expect(refused.standardError.contains("grp1"), "\(refused)")
                #expect(refused.standardError.contains("transition") || refused.standardError.contains("already"), "\(refused)")
            }
            let pendingRefusal = try await cluster.cli(["clpgrp", "-t", "grp1"], on: "node3")
            #expect(
                pendingRefusal.standardError.trimmingCharacters(in: .whitespacesAndNewlines)
                    == "Group grp1 is in transition (Online Pending on node1); try again when it has finished.",
                "\(pendingRefusal)")
            #expect(cluster.records.map(\.action) == ["start"], "the refused commands did nothing: \(cluster.records.summary)")
            cluster.release("grp1-app", "start")
            try await cluster.waitUntilFormed(timeout: .seconds(10))

            // While a stop runs, a second command is refused too.
            async let stopping = cluster.cli(["clpgrp", "-t", "grp1"], on: "node1")
            try await cluster.waitForStatus("grp1 Offline Pending", on: "node3") { $0.group(named: "grp1")?.status == .offlinePending }
            for command in [["clpgrp", "-s", "grp1"], ["clpgrp", "-t", "grp1"], ["clpgrp", "-m", "grp1"]] {
                let refused = try await cluster.cli(command, on: "node3")
                #expect(refused.exitCode == 4, "\(refused)")
                #expect(refused.standardError.contains("grp1"), "\(refused)")
            }
            cluster.release("grp1-app", "stop")
            let stopped = try await stopping
            #expect(stopped.exitCode == 0, "\(stopped)")
            #expect(try await cluster.clpstat(on: "node2").group(named: "grp1")?.status == .offline)
            // Exactly one start and one stop ran: the refused commands did nothing.
            #expect(cluster.records.map(\.action) == ["start", "start-done", "stop", "stop-done"], "\(cluster.records.summary)")
        }
    }

    @Test("clpgrp -f fails a group over to the next server of its policy; -s/-t accept -f; clpcl -w and --suspend --force are taken")
    func failoverAndCompatibilityOptions() async throws {
        try await withCluster(ClusterSpec(subnet: 198)) { cluster in
            try cluster.start()
            try await cluster.waitUntilFormed()
            let failover = try await cluster.cli(["clpgrp", "-f", "grp1"], on: "node3")
            #expect(failover.exitCode == 0 && failover.outputLines.last == "Command succeeded.", "\(failover)")
            let moved = try await cluster.clpstat(on: "node1")
            #expect(moved.group(named: "grp1")?.current == "node2" && moved.group(named: "grp1")?.status == .online, "\(moved.summary)")
            #expect(cluster.records.stops.first?["CLP_FACTOR"] == "GROUPMOVE", "\(cluster.records.summary)")

            let stop = try await cluster.cli(["clpgrp", "-t", "grp1", "-f"], on: "node1")
            #expect(stop.exitCode == 0, "\(stop)")
            let start = try await cluster.cli(["clpgrp", "-s", "grp1", "-h", "node3", "-f"], on: "node1")
            #expect(start.exitCode == 0, "\(start)")
            #expect(try await cluster.clpstat(on: "node2").group(named: "grp1")?.current == "node3")

            let suspend = try await cluster.cli(["clpcl", "--suspend", "--force", "-w", "30"], on: "node2")
            #expect(suspend.exitCode == 0, "\(suspend)")
            let resume = try await cluster.cli(["clpcl", "--resume", "-w", "30"], on: "node2")
            #expect(resume.exitCode == 0, "\(resume)")
            for bad in [
                ["clpgrp", "-f", "-m", "grp1"], ["clpgrp", "-f", "grp1", "-a", "node1"], ["clpcl", "-s", "--force"],
                ["clpcl", "-s", "-w", "0"],
            ] {
                let refused = try await cluster.cli(bad, on: "node1")
                #expect(refused.exitCode == 2, "\(bad): \(refused)")
            }
        }
    }

    @Test("clpgrp -l: only this server's groups (-t, -m, -f act on what runs here; -s starts here; a group elsewhere is refused)")
    func localOnly() async throws {
        var spec = ClusterSpec(subnet: 220)
        spec.groups = [.simple("grp1", servers: ["node1", "node2", "node3"]), .simple("grp2", servers: ["node2", "node1", "node3"])]
        try await withCluster(spec) { cluster in
            try cluster.start()
            try await cluster.waitUntilFormed()
            func current(_ group: String) async -> String? {
                await cluster.status(on: "node1")?.groups.first { $0.name == group }.flatMap { $0.status == .online ? $0.current : nil }
            }
            #expect(
                await eventually(within: .seconds(15), every: .milliseconds(200)) {
                    let (one, two) = (await current("grp1"), await current("grp2"))
                    return one == "node1" && two == "node2"
                })
            let elsewhere = try await cluster.cli(["clpgrp", "-t", "-l", "grp2"], on: "node1")
            #expect(elsewhere.exitCode == 1 && elsewhere.standardError.contains("does not run on node1"), "\(elsewhere)")
            // Stops only node2's group.
            let stopped = try await cluster.cli(["clpgrp", "-t", "-l"], on: "node2")
            #expect(stopped.exitCode == 0, "\(stopped)")
            let afterStop = (await current("grp1"), await current("grp2"))
            #expect(afterStop.0 == "node1" && afterStop.1 == nil, "\(afterStop)")
            // Starts it here on node3, which is not the first of its policy.
            let started = try await cluster.cli(["clpgrp", "-s", "-l", "grp2"], on: "node3")
            #expect(started.exitCode == 0, "\(started)")
            #expect(await current("grp2") == "node3")
            // Fails over only what runs on node1.
            let failed = try await cluster.cli(["clpgrp", "-f", "-l"], on: "node1")
            #expect(failed.exitCode == 0, "\(failed)")
            let afterFailover = (await current("grp1"), await current("grp2"))
            #expect(afterFailover.0 != "node1" && afterFailover.0 != nil, "\(afterFailover)")
            #expect(afterFailover.1 == "node3", "node3's group did not move")
            for bad in [["clpgrp", "-n", "-l", "grp1"], ["clpgrp", "-s", "-l", "-h", "node2"]] {
                #expect(try await cluster.cli(bad, on: "node1").exitCode == 2, "\(bad)")
            }
        }
    }
}
