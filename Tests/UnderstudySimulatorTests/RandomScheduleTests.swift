import Testing

@testable import UnderstudySimulator

/// 1,200 seeded fault schedules per test run, drawn from the fault table (Faults.swift), with
/// I1 and I3 checked after every step and I4 at the end, after the regression seeds. A
/// failing seed prints the command that replays it. Each range also checks that its
/// schedules did what they are for: faults of every kind, failovers, groups checked at the end.
@Suite struct RandomScheduleTests {
    static let chunks = Array(0..<20)

    @Test("700 three-server schedules", arguments: chunks)
    func threeServers(chunk: Int) {
        let statistics = (0..<35).map { check(Simulation.run(seed: UInt64(chunk * 35 + $0 + 1), servers: 3)) }.reduce(Statistics(), +)
        expectWorkDone(statistics, schedules: 35)
    }

    @Test("300 five-server schedules", arguments: chunks)
    func fiveServers(chunk: Int) {
        let statistics = (0..<15).map { check(Simulation.run(seed: UInt64(100_000 + chunk * 15 + $0), servers: 5)) }.reduce(Statistics(), +)
        expectWorkDone(statistics, schedules: 15)
    }

    @Test("200 two-server schedules with ping resolution", arguments: chunks)
    func twoServers(chunk: Int) {
        let statistics = (0..<10).map { check(Simulation.run(seed: UInt64(200_000 + chunk * 10 + $0), servers: 2)) }.reduce(Statistics(), +)
        expectWorkDone(statistics, schedules: 10)
    }

    /// Finished runs handed to the Engine in batches (`EngineEvent.resourcesFinished`), as the
    /// daemon does while its actor is busy: the same invariants, over seeds of their own.
    @Test("batched resource completions: 60 three-server and 30 two-server schedules", arguments: [0, 1, 2])
    func batchedCompletions(chunk: Int) {
        let three = schedules(20, from: 300_000 + chunk * 20) { Simulation.run(seed: $0, servers: 3, batchedCompletions: true) }
        expectWorkDone(three, schedules: 20)
        let two = schedules(10, from: 310_000 + chunk * 10) { Simulation.run(seed: $0, servers: 2, batchedCompletions: true) }
        expectWorkDone(two, schedules: 10)
    }

    /// Servers that tick as the daemon does (`sparseTicks`): only when their Engine's
    /// `quietUntil` comes, brought forward after each step. The same invariants, over seeds of
    /// their own; every quiet tick is still checked against the full step.
    @Test("sparse ticks: 60 three-server and 30 two-server schedules with fencing", arguments: [0, 1, 2])
    func sparseTicks(chunk: Int) {
        let three = schedules(20, from: 320_000 + chunk * 20) { Simulation.run(seed: $0, servers: 3, sparseTicks: true) }
        expectWorkDone(three, schedules: 20)
        #expect(three.quietTicks > 0)
        let two = schedules(10, from: 330_000 + chunk * 10) {
            Simulation.run(seed: $0, servers: 2, fencing: true, sparseTicks: true)
        }
        expectWorkDone(two, schedules: 10)
    }

    /// Daemons that die alone now and then and whose keepers tell the peers once they fenced
    /// (`keeperNotices`, KeeperNotices.swift): the same invariants, over seeds of their own.
    @Test("keeper notices: 60 three-server and 30 two-server schedules with fencing", arguments: [0, 1, 2])
    func keeperNotices(chunk: Int) {
        // Seeds this mode once broke (each with what it found).
        let regressions: [(seed: UInt64, servers: Int, found: String)] = [
            (
                25_202_968, 3,
                "a server ended its sync wait on the word of a peer that had just lost the majority and founded beside a server still in its lease"
            ),
            (
                25_301_081, 2,
                "a server frozen while a restarted peer behind a one-way cut had not yet heard it kept a lease past that peer's founding"
            ),
        ]
        for regression in regressions where chunk == 0 {
            let result = Simulation.run(seed: regression.seed, servers: regression.servers, keeperNotices: true)
            #expect(result.passed, "\(regression.found): \(result.violations)")
        }
        let three = schedules(20, from: 340_000 + chunk * 20) { Simulation.run(seed: $0, servers: 3, keeperNotices: true) }
        expectWorkDone(three, schedules: 20)
        #expect(three.keeperNoticesTaken > 0)
        let two = schedules(10, from: 350_000 + chunk * 10) {
            Simulation.run(seed: $0, servers: 2, fencing: true, keeperNotices: true)
        }
        expectWorkDone(two, schedules: 10)
    }

    /// `count` schedules from seed `first` on, each checked; their statistics summed.
    func schedules(_ count: Int, from first: Int, _ run: (UInt64) -> Simulation.Result) -> Statistics {
        (0..<count).map { check(run(UInt64(first + $0))) }.reduce(Statistics(), +)
    }

    /// Every seed that once broke an invariant (RegressionSeeds.swift).
    @Test("regression seeds")
    func regressions() {
        for regression in RegressionSeed.all { check(Simulation.run(seed: regression.seed, servers: regression.servers)) }
    }

    /// Every fault of the table can be drawn, for every cluster size it applies to (a fault
    /// that is never injected tests nothing; the ranges above count what they injected).
    @Test("every fault of the table is drawn")
    func everyFaultDrawn() {
        for servers in [2, 3, 5] {
            var random = SeededRandom(seed: UInt64(servers))
            var drawn: Set<Fault> = []
            for _ in 0..<5_000 { drawn.insert(Fault.draw(&random, servers: servers)) }
            // A key mismatch is drawn by a generator of its own (`Simulation.scheduleKeyMismatches`).
            let expected = Set(Fault.allCases).subtracting(servers < 3 ? [.partialPartition, .keyMismatch] : [.keyMismatch])
            #expect(drawn == expected, "\(servers) servers: never drawn \(expected.subtracting(drawn))")
        }
    }

    /// A range of schedules that injected nothing, failed nothing over or checked no group at
    /// the end proves nothing: the simulator or its checks broke.
    func expectWorkDone(_ statistics: Statistics, schedules: Int) {
        #expect(statistics.faultCount >= schedules * 5, "only \(statistics.faultCount) faults in \(schedules) schedules")
        #expect(statistics.failoverStarts > 0, "no failover in \(schedules) schedules")
        if schedules >= 30 { #expect(statistics.faults[.keyMismatch, default: 0] > 0, "no key mismatch in \(schedules) schedules") }
        #expect(
            statistics.livenessChecked >= schedules * 3,
            "I4 checked only \(statistics.livenessChecked) group placements in \(schedules) schedules")
    }

    @discardableResult
    func check(_ result: Simulation.Result) -> Statistics {
        if !result.passed {
            let trace = result.trace.suffix(60).joined(separator: "\n")
            Issue.record(
                """
                Seed \(result.seed) (\(result.servers) servers) broke an invariant:
                \(result.violations.prefix(5).joined(separator: "\n"))
                Replay: \(result.replayCommand)
                Last steps:
                \(trace)
                """)
        }
        return result.statistics
    }
}
