import ArgumentParser
import UnderstudySimulator

struct SimulateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "simulate", abstract: "Run seeded fault schedules through the simulator and check the invariants.",
        discussion: "A failing seed reported by the test suite replays exactly with `understudy simulate --seed N --servers S`.")

    @Option(name: .long, help: "First seed.") var seed: UInt64 = 1
    @Option(name: .long, help: "How many consecutive seeds to run.") var count: Int = 1
    @Option(name: .long, help: "Servers in the simulated cluster (3 or 5 in the test suite).") var servers: Int = 3
    @Flag(name: .long, help: "Print the trace of every schedule, not only failing ones.") var verbose = false

    func validate() throws {
        guard servers >= 2 && servers <= 9 else { throw ValidationError("--servers must be between 2 and 9.") }
        guard count >= 1 else { throw ValidationError("--count must be at least 1.") }
    }

    func run() throws {
        var failures = 0
        for current in seed..<(seed + UInt64(count)) {
            let result = Simulation.run(seed: current, servers: servers)
            if verbose || !result.passed { print(result.trace.joined(separator: "\n")) }
            if result.passed {
                print("seed \(current): ok (\(result.faults) faults, \(servers) servers)")
            } else {
                failures += 1
                print("seed \(current): FAILED")
                for violation in result.violations { print("  \(violation)") }
            }
        }
        if failures > 0 {
            print("\(failures) of \(count) schedules broke an invariant.")
            throw ExitCode(1)
        }
    }
}
