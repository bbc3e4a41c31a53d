import Foundation
import Testing
import UnderstudyEngine
import UnderstudyModel

/// `clprsc -s -f` / `-t -f` with real scripts, and the group-resource failover counter
/// (`clprsc -v`, `--json`, `--reset`) after a real activation failover.
@Suite("Process: clprsc -f, -v and --reset")
struct ResourceForceAndCounterTests {
    @Test("clprsc -t -f stops the dependants first and -s -f starts the dependencies first; without -f both are refused")
    func forcedStopAndStart() async throws {
        var spec = ClusterSpec(subnet: 216)
        spec.groups = [
            GroupSpec(
                name: "grp1",
                resources: [
                    ExecSpec(name: "grp1-a"), ExecSpec(name: "grp1-b", depends: ["grp1-a"]), ExecSpec(name: "grp1-c", depends: ["grp1-b"]),
                ])
        ]
        try await withCluster(spec) { cluster in
            try cluster.start()
            try await cluster.waitUntilFormed()
            #expect(cluster.records.map(\.resource) == ["grp1-a", "grp1-b", "grp1-c"], "\(cluster.records.summary)")

            // Without -f: refused (1), naming what depends on it and the way out; nothing runs.
            var before = cluster.records.count
            let refusedStop = try await cluster.cli(["clprsc", "-t", "grp1-a"], on: "node2")
            #expect(refusedStop.exitCode == 1, "\(refusedStop)")
            #expect(refusedStop.standardError.contains("grp1-b") && refusedStop.standardError.contains("-f"), "\(refusedStop)")
            #expect(cluster.records.count == before)

            // -f (after the resource, as in CLUSTERPRO's samples), asked on a server that does
            // not run the group.
            let stop = try await cluster.cli(["clprsc", "-t", "grp1-a", "-f"], on: "node3")
            #expect(stop.exitCode == 0, "\(stop)")
            #expect(stop.outputLines.last == "Command succeeded.", "\(stop)")
            #expect(stop.standardOutput.contains("grp1-c, grp1-b, grp1-a"), "\(stop)")
            var runs = Array(cluster.records.dropFirst(before))
            #expect(
                runs.map { "\($0.action) \($0.server) \($0.resource)" } == ["stop node1 grp1-c", "stop node1 grp1-b", "stop node1 grp1-a"])
            #expect(runs.allSatisfy { $0["CLP_FACTOR"] == "" }, "single-resource stops: CLP_FACTOR empty")
            var status = try await cluster.waitForStatus("every resource of grp1 offline", on: "node2") { status in
                status.group(named: "grp1")?.resources.allSatisfy { $0.status == .offline } == true
            }
            #expect(status.group(named: "grp1")?.resources.count == 3)

            before = cluster.records.count
            let refusedStart = try await cluster.cli(["clprsc", "-s", "grp1-c"], on: "node1")
            #expect(refusedStart.exitCode == 1, "\(refusedStart)")
            #expect(refusedStart.standardError.contains("grp1-b") && refusedStart.standardError.contains("-f"), "\(refusedStart)")
            #expect(cluster.records.count == before)

            let start = try await cluster.cli(["clprsc", "-f", "-s", "grp1-c"], on: "node2")
            #expect(start.exitCode == 0, "\(start)")
            #expect(start.outputLines.last == "Command succeeded.", "\(start)")
            runs = Array(cluster.records.dropFirst(before))
            #expect(
                runs.map { "\($0.action) \($0.server) \($0.resource)" } == [
                    "start node1 grp1-a", "start node1 grp1-b", "start node1 grp1-c",
                ])
            status = try await cluster.waitUntilFormed(seenBy: "node3")
            #expect(status.group(named: "grp1")?.resources.map(\.status) == [.online, .online, .online], "\(status.summary)")

            // A start -f of a resource already online does nothing.
            before = cluster.records.count
            let again = try await cluster.cli(["clprsc", "-s", "grp1-b", "-f"], on: "node1")
            #expect(again.exitCode == 0, "\(again)")
            #expect(cluster.records.count == before)
            // -f alone is a usage error.
            let alone = try await cluster.cli(["clprsc", "-f", "grp1-b"], on: "node1")
            #expect(alone.exitCode != 0 && alone.standardError.contains("-f"), "\(alone)")
        }
    }

    @Test("clprsc -v and -v --json show the group's failover count against the resource's limit; --reset sets it to 0")
    func failoverCounter() async throws {
        var spec = ClusterSpec(subnet: 217)
        spec.groups = [
            GroupSpec(
                name: "grp1",
                resources: [
                    ExecSpec(name: "grp1-app", start: .fail, activation: "{retry: 0, failover: 1, final-action: none}"),
                    ExecSpec(name: "grp1-side", activation: "{retry: 0, failover: 2, final-action: none}"),
                ]),
            // grp2-x fails to start; none-continue starts grp2-y all the same.
            GroupSpec(
                name: "grp2",
                resources: [
                    ExecSpec(name: "grp2-x", start: .fail, activation: "{retry: 0, failover: 0, final-action: none-continue}"),
                    ExecSpec(name: "grp2-y", depends: ["grp2-x"]),
                ]),
        ]
        try await withCluster(spec) { cluster in
            try cluster.start()
            // A real activation failover: node1 fails, node2 fails, the count is used up.
            try await cluster.waitForStatus("grp1 Online Failure on node2", on: "node3", timeout: .seconds(30)) { status in
                status.group(named: "grp1")?.status == .onlineFailure && status.group(named: "grp1")?.current == "node2"
            }

            let view = try await cluster.cli(["clprsc", "-v"], on: "node3")
            #expect(view.exitCode == 0, "\(view)")
            #expect(view.outputLines.first == "Server : node3", "\(view)")
            // What scripts parse: the lines containing `Resource`, the name in field 3.
            let lines = view.outputLines.filter { $0.contains("Resource") }
            let fields = lines.map { $0.split(separator: " ", omittingEmptySubsequences: true).map(String.init) }
            #expect(fields.map { $0.count > 2 ? $0[2] : "" } == ["grp1-app", "grp1-side", "grp2-x", "grp2-y"], "\(view)")
            #expect(lines.first?.contains("Group: grp1") == true && lines.first?.contains("Failover: 1/1") == true, "\(view)")
            #expect(lines.dropFirst().first?.contains("Failover: 1/2") == true, "the group's count, the resource's own limit: \(view)")
            #expect(
                lines.dropFirst(2).first?.contains("Group: grp2") == true && lines.dropFirst(2).first?.contains("Failover: 0/0") == true)
            #expect(view.standardOutput.contains("per group"), "\(view)")

            let json = try await cluster.cli(["clprsc", "-v", "grp1-app", "--json"], on: "node1")
            #expect(json.exitCode == 0, "\(json)")
            let document = try #require(try JSONSerialization.jsonObject(with: Data(json.standardOutput.utf8)) as? [String: Any])
            #expect(document["server"] as? String == "node1" && document["perGroup"] as? Bool == true, "\(json)")
            let rows = try #require(document["resources"] as? [[String: Any]])
            #expect(rows.count == 1, "\(json)")
            #expect(rows.first?["resource"] as? String == "grp1-app" && rows.first?["group"] as? String == "grp1", "\(json)")
            #expect(rows.first?["failoverCount"] as? Int == 1 && rows.first?["failoverLimit"] as? Int == 1, "\(json)")
            #expect(rows.first?["current"] as? String == "node2", "\(json)")

            let unknown = try await cluster.cli(["clprsc", "-v", "nosuch"], on: "node1")
            #expect(unknown.exitCode == 2 && unknown.standardError.contains("nosuch"), "\(unknown)")

            // The reset goes through the master (node1) and reaches every server.
            let reset = try await cluster.cli(["clprsc", "--reset", "grp1-app"], on: "node3")
            #expect(reset.exitCode == 0, "\(reset)")
            #expect(reset.standardOutput.contains("grp1") && reset.standardOutput.contains("from 1 to 0"), "\(reset)")
            try await cluster.waitForStatus("grp1's failover count 0", on: "node2") { status in
                status.group(named: "grp1")?.failoverCount == 0
            }
            let after = try await cluster.cli(["clprsc", "-v", "grp1-app"], on: "node2")
            #expect(after.outputLines.filter { $0.contains("Resource") }.count == 1, "\(after)")
            #expect(after.standardOutput.contains("Failover: 0/1"), "\(after)")
            // The group stays where it is.
            let status = try await cluster.clpstat(on: "node1")
            #expect(status.group(named: "grp1")?.current == "node2", "\(status.summary)")

            let again = try await cluster.cli(["clprsc", "-r", "grp1-side"], on: "node1")
            #expect(again.exitCode == 0 && again.standardOutput.contains("already 0"), "\(again)")
            let unknownReset = try await cluster.cli(["clprsc", "--reset", "nosuch"], on: "node1")
            #expect(unknownReset.exitCode == 2 && unknownReset.standardError.contains("nosuch"), "\(unknownReset)")

            // clprsc -s -f whose dependency fails to start: exit 1 naming it; the resource
            // depending on it is not started.
            try await cluster.waitForStatus("grp2-x Online Failure, grp2-y Online on node1", on: "node2") { status in
                let group = status.group(named: "grp2")
                return group?.current == "node1" && group?.resources.map(\.status) == [.onlineFailure, .online]
            }
            #expect(try await cluster.cli(["clprsc", "-t", "grp2-x", "-f"], on: "node2").exitCode == 0)
            let before = cluster.records.count
            let chain = try await cluster.cli(["clprsc", "-s", "grp2-y", "-f"], on: "node3")
            #expect(chain.exitCode == 1, "\(chain)")
            #expect(chain.standardError.contains("grp2-x") && chain.standardError.contains("grp2-y was not started"), "\(chain)")
            try await Task.sleep(for: .milliseconds(500))
            let runs = Array(cluster.records.dropFirst(before))
            #expect(runs.map { "\($0.action) \($0.server) \($0.resource)" } == ["start node1 grp2-x"], "\(runs.summary)")
            let seen = try await cluster.clpstat(on: "node1")
            #expect(seen.group(named: "grp2")?.resources.map(\.status) == [.onlineFailure, .offline], "\(seen.summary)")
        }
    }
}
