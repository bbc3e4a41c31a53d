import Foundation
import Synchronization
import Testing
import UnderstudyModel
import UnderstudyTestSupport

@testable import UnderstudyNode

@Suite("Periodic forced-stop check")
struct ForcedStopCheckerTests {
    /// The changes a checker reported, in order.
    final class Reports: Sendable {
        private let changes = Mutex<[ForcedStopChecker.Change]>([])
        func add(_ change: ForcedStopChecker.Change) { changes.withLock { $0.append(change) } }
        var all: [ForcedStopChecker.Change] { changes.withLock { $0 } }
    }

    /// A script agent whose check result is the content of `exit-<server>` in `folder`.
    func makeChecker(_ folder: String, reports: Reports) throws -> ForcedStopChecker {
        let script = try writeScript(
            folder, "check.sh", "echo checked $CLP_SERVER_DOWN mode $CLP_FORCESTOP_MODE; exit $(cat \(folder)/exit-$CLP_SERVER_DOWN)")
        let fencing = FencingConfig(agents: [FencingAgentConfig(name: "vm", kind: .script(command: [script]))], timeout: .seconds(10))
        let stopper = ForcedStopper(fencing: fencing, localServer: "a", configFolder: folder)
        return ForcedStopChecker(stopper: stopper) { reports.add($0) }
    }

    func set(_ folder: String, _ server: String, exit code: Int) throws {
        try "\(code)\n".write(toFile: "\(folder)/exit-\(server)", atomically: true, encoding: .utf8)
    }

    @Test("ok → failed → ok reports twice; a steady state reports nothing")
    func changes() async throws {
        try await withTemporaryFolder { folder in
            let reports = Reports()
            let checker = try makeChecker(folder, reports: reports)
            try set(folder, "b", exit: 0)
            for _ in 0..<2 { #expect(await checker.checkNow(peers: ["a", "b"]).isEmpty) }
            #expect(reports.all.isEmpty)
            let working = try #require(await checker.results.first)
            #expect(working.server == "b" && working.agent == "vm" && working.type == "script" && working.ok)
            #expect(working.detail.hasSuffix("exit 0: checked b mode 0"), "\(working.detail)")
            #expect(await checker.results.count == 1, "the local server is not checked")

            try set(folder, "b", exit: 1)
            let failed = await checker.checkNow(peers: ["a", "b"])
            #expect(failed.count == 1 && failed.first?.result.ok == false && failed.first?.previouslyOK == true)
            #expect(await checker.checkNow(peers: ["a", "b"]).isEmpty, "still failing: nothing new")
            #expect(await checker.results(for: "b").first?.ok == false)

            try set(folder, "b", exit: 0)
            let back = await checker.checkNow(peers: ["a", "b"])
            #expect(back.count == 1 && back.first?.result.ok == true && back.first?.previouslyOK == false)
            #expect(await checker.checkNow(peers: ["a", "b"]).isEmpty)
            #expect(reports.all.map(\.result.ok) == [false, true], "the callback saw the same two changes")
            #expect(await checker.completedRounds == 6)
        }
    }

    @Test("a first check that fails is reported; a peer no longer listed is forgotten")
    func firstFailure() async throws {
        try await withTemporaryFolder { folder in
            let reports = Reports()
            let checker = try makeChecker(folder, reports: reports)
            try set(folder, "b", exit: 0)
            try set(folder, "c", exit: 3)
            let changes = await checker.checkNow(peers: ["b", "c"])
            #expect(changes.map(\.result.server) == ["c"] && changes.first?.previouslyOK == nil)
            #expect(changes.first?.result.detail.contains("exit 3") == true)
            #expect(await checker.results.map(\.server) == ["b", "c"])
            await checker.checkNow(peers: ["b"])
            #expect(await checker.results.map(\.server) == ["b"])
            #expect(reports.all.count == 1)
        }
    }

    @Test("run checks every interval until cancelled; an interval of zero is off")
    func periodic() async throws {
        try await withTemporaryFolder { folder in
            let reports = Reports()
            let checker = try makeChecker(folder, reports: reports)
            try set(folder, "b", exit: 0)
            await checker.run(every: .zero) { ["b"] }
            #expect(await checker.completedRounds == 0)

            let task = Task { await checker.run(every: .milliseconds(200)) { ["b"] } }
            // 30 s: at the start of the unit run, tests that block their thread (mkfs, mount)
            // can hold both threads of the cooperative pool for over 10 s.
            let enough = await eventually(within: .seconds(30), every: .milliseconds(50)) { await checker.completedRounds >= 3 }
            task.cancel()
            await task.value
            #expect(enough)
            let rounds = await checker.completedRounds
            try await Task.sleep(for: .milliseconds(500))
            #expect(await checker.completedRounds == rounds, "no round after cancellation")
            #expect(reports.all.isEmpty)
        }
    }
}
