import Foundation
import Testing
import UnderstudyEngine
import UnderstudyModel

/// Operators on several servers moving the same group at the same moment (issue 13): every
/// command returns within seconds with 0 (its move happened) or 4 (refused, or superseded
/// by another command before it was done), and the group never runs on two servers.
@Suite("Process: concurrent operations")
struct ConcurrentOperationTests {
    @Test("three moves of one group issued at once (or moments apart) from three servers all return with 0 or 4; it never runs twice")
    func concurrentMoves() async throws {
        let spec = ClusterSpec(subnet: 127)
        try await withCluster(spec) { cluster in
            try cluster.start()
            try await cluster.waitUntilFormed()
            var outcomes: [CommandOutcome] = []
            for round in 0..<8 {
                let owner = try await settledOwner(of: "grp1", in: cluster)
                let others = spec.servers.filter { $0 != owner }
                // node1 and node2 name a destination each (the two other servers, in turn);
                // node3 asks for the next server of the policy.
                let commands: [(server: String, arguments: [String])] = [
                    ("node1", ["clpgrp", "-m", "grp1", "-a", others[round % 2], "--timeout", "60"]),
                    ("node2", ["clpgrp", "-m", "grp1", "-a", others[(round + 1) % 2], "--timeout", "60"]),
                    ("node3", ["clpgrp", "-m", "grp1", "--timeout", "60"]),
                ]
                // At the same moment, or a little apart so that a later command finds the group
                // moved by an earlier one (or on its way); a command that still waits after
                // 20 s fails the test.
                let spacing = Duration.milliseconds([0, 0, 100, 200, 300, 150, 400, 250][round])
                let results = try await withThrowingTaskGroup(of: CommandOutcome.self) { tasks in
                    for (index, command) in commands.enumerated() {
                        tasks.addTask {
                            try await Task.sleep(for: spacing * index)
                            return try await cluster.cli(command.arguments, on: command.server, timeout: .seconds(20))
                        }
                    }
                    var all: [CommandOutcome] = []
                    for try await outcome in tasks { all.append(outcome) }
                    return all
                }
                outcomes += results
                for outcome in results {
                    #expect(outcome.exitCode == 0 || outcome.exitCode == 4, "round \(round): \(outcome)")
                    if outcome.exitCode == 4 { #expect(outcome.standardError.contains("grp1"), "\(outcome)") }
                }
                #expect(results.contains { $0.exitCode == 0 }, "round \(round): one move happens\n\(results)")
            }
            _ = try await settledOwner(of: "grp1", in: cluster)
            let overlaps = Self.overlaps(in: cluster.records.of("grp1-app"))
            #expect(
                overlaps.isEmpty, "the group ran on two servers at once:\n\(overlaps.joined(separator: "\n"))\n\(cluster.records.summary)")
            #expect(outcomes.count == 24)
        }
    }

    /// The server the group is Online on once nothing is in transition (as node1 sees it).
    func settledOwner(of group: String, in cluster: TestCluster) async throws -> String {
        let status = try await cluster.waitForStatus("\(group) Online and settled", on: "node1") { snapshot in
            guard let line = snapshot.group(named: group), line.status == .online, let current = line.current else { return false }
            return line.assignedTo == current && line.perServer.filter({ $0.value.holdsResources }).count == 1
        }
        return try #require(status.group(named: group)?.current)
    }

    /// Moments when the group's start script had run on a server that had not stopped it yet
    /// while another server started it.
    static func overlaps(in records: [ScriptRecord]) -> [String] {
        var active: [String: ScriptRecord] = [:]
        var found: [String] = []
        for record in records.sorted(by: { $0.nanoseconds < $1.nanoseconds }) {
            if record.isStart {
                for (server, start) in active where server != record.server {
                    found.append("\(record) while \(server) had started at \(start.nanoseconds)")
                }
                active[record.server] = record
            } else if record.isStop {
                active[record.server] = nil
            }
        }
        return found
    }
}
