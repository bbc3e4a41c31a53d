import Foundation
import Testing
import UnderstudyEngine
import UnderstudyModel
import UnderstudyTestSupport

#if canImport(Glibc)
    import Glibc
#endif

/// Scenario 11: what a daemon leaves in its state folder (ARCHITECTURE.md §3, I5).
@Suite("Process: state persistence")
struct StatePersistenceTests {
    @Test("engine.json persists; SIGTERM removes the running marker, kill -9 leaves it and the next start is abnormal")
    func runningMarkerTellsCleanFromAbnormalStops() async throws {
        var spec = ClusterSpec(subnet: 112, servers: ["node1"])
        spec.syncWait = "2s"
        try await withCluster(spec) { cluster in
            let state = cluster.stateDirectory(of: "node1")
            let marker = state + "/running"
            let engineState = state + "/engine.json"

            try cluster.start()
            try await cluster.waitUntilFormed()
            #expect(FileManager.default.fileExists(atPath: marker))
            // engine.json is the Engine's own state, decoded with the type the daemon loads it
            // with: the directory that started grp1 here, and grp1 held at its generation.
            // (Written right after the start; read until it shows it.)
            func load() throws -> PersistentState {
                try JSONDecoder().decode(PersistentState.self, from: Data(contentsOf: URL(fileURLWithPath: engineState)))
            }
            _ = await eventually(within: .seconds(5)) { (try? load())?.heldGroups["grp1"] != nil }
            let persisted = try load()
            let directory = try #require(persisted.directory, "engine.json holds no directory")
            let entry = try #require(directory.entries["grp1"], "engine.json's directory has no grp1")
            #expect(entry.owner == "node1" && entry.wanted && directory.startupDone, "\(directory)")
            #expect(persisted.heldGroups["grp1"] == entry.generation, "\(persisted.heldGroups)")

            // Clean stop: the marker goes, the state stays.
            cluster.send(SIGTERM, to: "node1")
            #expect(try await cluster.waitForExit("node1") == 0)
            #expect(!FileManager.default.fileExists(atPath: marker))
            #expect(FileManager.default.fileExists(atPath: engineState))
            #expect(cluster.records.map(\.action) == ["start", "stop"])

            // A clean restart starts the group on its own.
            try cluster.startDaemon("node1")
            let clean = try await cluster.waitUntilFormed()
            #expect(!clean.autoStartSuppressed)

            // kill -9: the marker stays behind.
            cluster.send(SIGKILL, to: "node1")
            #expect(try await cluster.waitForExit("node1") == 128 + SIGKILL)
            #expect(FileManager.default.fileExists(atPath: marker))
            #expect(FileManager.default.fileExists(atPath: engineState))
            // The socket file of the dead daemon is still there; nobody answers on it.
            let unreachable = try await cluster.cli(["clpstat"], on: "node1")
            #expect(unreachable.exitCode == 3, "\(unreachable)")
            #expect(unreachable.standardError.contains("not reachable"), "\(unreachable)")

            // The next start is abnormal: the group is not started automatically.
            try cluster.startDaemon("node1")
            let suppressed = try await cluster.waitUntilFormed(group: nil)
            #expect(suppressed.autoStartSuppressed, "\(suppressed.summary)")
            try await Task.sleep(for: .seconds(1))
            let still = try await cluster.clpstat(on: "node1")
            #expect(still.group(named: "grp1")?.status == .offline, "\(still.summary)")
            #expect(cluster.records.count == 3, "\(cluster.records.summary)")

            // clpcl -r is the operator's word: the group starts again automatically.
            let restart = try await cluster.cli(["clpcl", "-r"], on: "node1")
            #expect(restart.exitCode == 0, "\(restart)")
            let lifted = try await cluster.waitUntilFormed()
            #expect(!lifted.autoStartSuppressed)
            #expect(cluster.records.count == 4, "\(cluster.records.summary)")
            #expect(cluster.records.last?["CLP_EVENT"] == "START")
        }
    }

    /// The state is written off the daemon actor (StateWriter.swift); what the daemon reports
    /// as done is on disk: `clpcl -t` returns once the stop is written (no waiting here), and
    /// a daemon that exits has written its last state.
    @Test("the last state is on disk when clpcl -t returns and when the daemon has exited")
    func lastStateIsOnDiskAfterStop() async throws {
        var spec = ClusterSpec(subnet: 132, servers: ["node1"])
        spec.syncWait = "1s"
        spec.groups = [.simple("grp1"), .simple("grp2")]
        try await withCluster(spec) { cluster in
            let state = cluster.stateDirectory(of: "node1")
            func load() throws -> PersistentState {
                try JSONDecoder().decode(PersistentState.self, from: Data(contentsOf: URL(fileURLWithPath: state + "/engine.json")))
            }
            try cluster.start()
            try await cluster.waitUntilFormed()
            _ = await eventually(within: .seconds(5)) { (try? load())?.heldGroups.count == 2 }
            #expect(try load().heldGroups.keys.sorted() == ["grp1", "grp2"])

            // clpcl -t: status says "stopped" only once the stop is durable.
            let stop = try await cluster.cli(["clpcl", "-t"], on: "node1")
            #expect(stop.exitCode == 0, "\(stop)")
            #expect(try load().heldGroups.isEmpty, "engine.json still holds groups after clpcl -t returned")
            #expect(!FileManager.default.fileExists(atPath: state + "/running"), "the running marker outlived clpcl -t")
            #expect(cluster.isRunning("node1"))

            // clpcl -s, then SIGTERM: the exit waits for the stop's state and the marker's removal.
            let start = try await cluster.cli(["clpcl", "-s"], on: "node1")
            #expect(start.exitCode == 0, "\(start)")
            try await cluster.waitUntilFormed()
            // A resource starts only once what was queued before it is on disk: the marker too.
            #expect(FileManager.default.fileExists(atPath: state + "/running"), "a group started before the running marker was written")
            _ = await eventually(within: .seconds(5)) { (try? load())?.heldGroups.count == 2 }
            cluster.send(SIGTERM, to: "node1")
            #expect(try await cluster.waitForExit("node1") == 0)
            #expect(try load().heldGroups.isEmpty, "engine.json still holds groups after the daemon exited")
            #expect(!FileManager.default.fileExists(atPath: state + "/running"))
        }
    }

    /// I5's other half: a state file that does not decode is never guessed at or overwritten.
    /// The daemon refuses to start, names the file and says what to do; the file stays.
    @Test("a corrupted engine.json: the daemon refuses to start, names the file, and leaves it for the operator")
    func corruptedStateIsRefused() async throws {
        var spec = ClusterSpec(subnet: 131, servers: ["node1"])
        spec.syncWait = "1s"
        try await withCluster(spec) { cluster in
            try cluster.start()
            try await cluster.waitUntilFormed()
            cluster.send(SIGTERM, to: "node1")
            #expect(try await cluster.waitForExit("node1") == 0)

            let engineState = cluster.stateDirectory(of: "node1") + "/engine.json"
            let corrupt = "{ \"directory\": { \"epoch\": "
            try corrupt.write(toFile: engineState, atomically: true, encoding: .utf8)
            try cluster.startDaemon("node1")
            let code = try await cluster.waitForExit("node1")
            #expect(code != 0, "the daemon started on a corrupted state file")
            let log = (try? String(contentsOfFile: cluster.logPath(of: "node1"), encoding: .utf8)) ?? ""
            #expect(log.contains(engineState) && log.contains("move the file away"), "\(log.suffix(600))")
            #expect(try String(contentsOfFile: engineState, encoding: .utf8) == corrupt, "the state file was changed")
            // Nothing ran after the refused start: the group's start and its stop on SIGTERM.
            #expect(cluster.records.map(\.action) == ["start", "stop"], "\(cluster.records.summary)")
        }
    }
}
