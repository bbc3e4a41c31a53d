import ArgumentParser
import Foundation
import UnderstudyModel
import UnderstudySimulator

struct SimulateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "simulate", abstract: "Run seeded fault schedules through the simulator and check the invariants.",
        discussion: """
            A failing seed reported by the test suite replays exactly with `understudy simulate --seed N --servers S`. \
            A run of more than one schedule replays the regression seeds first (seeds that once broke an invariant). \
            With --for, schedules run from --seed on until the time is up (a soak: `--for 8h`).
            """)

    @Option(name: .long, help: "First seed.") var seed: UInt64 = 1
    @Option(name: .long, help: "How many consecutive seeds to run.") var count: Int = 1
    @Option(name: .customLong("for"), help: ArgumentHelp("Run consecutive seeds for this long instead (30s, 10m, 8h).", valueName: "time"))
    var duration: String?
    @Option(name: .long, help: "Servers in the simulated cluster (2, 3 or 5 in the test suite).") var servers: Int = 3
    @Flag(name: .long, help: "Do not replay the regression seeds first.") var noRegressions = false
    @Flag(
        name: .long,
        help:
            "Size every heartbeat by its full encoding against the heartbeat budget (default: from its parts, the base of a known shape from a cache)."
    )
    var measureEveryHeartbeat = false
    @Flag(name: .long, help: "Print the trace of every schedule, not only failing ones.") var verbose = false
    @Flag(name: .long, help: "Resolve partitions with httpnp against a simulated witness (restarts and outages).") var witness = false
    @Flag(name: .long, help: "Forced stop of lost servers (fencing) with agents that succeed, fail and are slow.") var fencing = false
    @Flag(
        name: .long,
        help: "Hand finished resource runs to the Engine in batches after up to 20 ms, as a busy daemon does (default: each at once).")
    var batchedCompletions = false
    @Flag(
        name: .long,
        help:
            "Tick as the daemon does: only when the Engine's quietUntil comes, brought forward after each step (default: every tick period)."
    )
    var sparseTicks = false
    @Flag(
        name: .long,
        help: "Daemons also die alone (kill -9) now and then; their keepers fence and tell the peers (default: only whole servers crash).")
    var keeperNotices = false

    func validate() throws {
        guard servers >= 2 && servers <= 9 else { throw ValidationError("--servers must be between 2 and 9.") }
        guard count >= 1 else { throw ValidationError("--count must be at least 1.") }
        if let duration, Duration(configText: duration).map({ $0 > .zero }) != true {
            throw ValidationError("--for takes a time with a unit, such as 30s, 10m or 8h; got \"\(duration)\".")
        }
    }

    func run() throws {
        let limit = duration.flatMap { Duration(configText: $0) }
        let interval = measureEveryHeartbeat ? 1 : 16
        let clock = ContinuousClock()
        let started = clock.now
        var failures = 0
        var schedules = 0
        var statistics = Statistics()

        func report(_ result: Simulation.Result) {
            schedules += 1
            statistics = statistics + result.statistics
            if verbose || !result.passed { print(result.trace.joined(separator: "\n")) }
            if result.passed {
                print("seed \(result.seed): ok (\(result.statistics.faultCount) faults, \(result.servers) servers)")
            } else {
                failures += 1
                print("seed \(result.seed): FAILED (\(result.servers) servers); replay: \(result.replayCommand)")
                for violation in result.violations { print("  \(violation)") }
            }
        }

        if !noRegressions && (count > 1 || limit != nil) {
            for regression in RegressionSeed.all {
                report(Simulation.run(seed: regression.seed, servers: regression.servers, heartbeatSizeCheckInterval: interval))
            }
        }
        var current = seed
        while limit.map({ clock.now - started < $0 }) ?? (current < seed + UInt64(count)) {
            report(
                Simulation.run(
                    seed: current, servers: servers, heartbeatSizeCheckInterval: interval, witness: witness, fencing: fencing,
                    batchedCompletions: batchedCompletions, sparseTicks: sparseTicks, keeperNotices: keeperNotices))
            current += 1
        }
        let elapsed = clock.now - started
        let seconds = elapsed.inSeconds
        if schedules > 1 {
            let rate = seconds > 0 ? Double(schedules) / seconds : 0
            print(
                String(
                    format:
                        "%d schedules (seeds %llu–%llu) in %.1f s: %.1f per second; %d faults, %d group placements checked at the end, %d starts (%d failovers), %d commands followed",
                    schedules, seed, current - 1, seconds, rate, statistics.faultCount, statistics.livenessChecked, statistics.starts,
                    statistics.failoverStarts, statistics.commandsAccepted))
            print(
                "faults: " + statistics.faults.sorted { $0.key < $1.key }.map { "\($0.key.rawValue) \($0.value)" }.joined(separator: ", "))
            print(
                "ticks: \(statistics.ticks), of which \(statistics.quietTicks) quiet (answered without the full step, each checked against it)"
            )
            if keeperNotices { print("keeper notices acted on: \(statistics.keeperNoticesTaken)") }
            print("OS actions: " + statistics.osActions.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
        }
        if failures > 0 {
            print("\(failures) of \(schedules) schedules broke an invariant.")
            throw ExitCode(1)
        }
    }
}
