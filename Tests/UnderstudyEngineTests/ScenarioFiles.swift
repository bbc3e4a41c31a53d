import Foundation
import Testing
import UnderstudyEngine
import UnderstudyModel
import UnderstudySimulator
import Yams

/// Engine scenarios as data: every `Scenarios/*.yaml` beside this file is a cluster, a
/// sequence of timed steps (faults, operator commands) and what must hold after each, run
/// against the simulated cluster, or (with `engine: S`) against one Engine fed by hand. A new scenario needs no Swift; the format is described in
/// `Scenarios/README.md`. A failing scenario names its file, step and time.
@Suite("Scenario files")
struct ScenarioFileTests {
    static let folder: String = {
        var url = URL(fileURLWithPath: #filePath)
        url.deleteLastPathComponent()
        return url.appendingPathComponent("Scenarios").path
    }()

    static let files: [String] =
        ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).filter { $0.hasSuffix(".yaml") }.sorted()

    @Test("the scenario folder holds scenarios")
    func folderIsNotEmpty() {
        #expect(Self.files.count >= 10, "only \(Self.files.count) scenario files in \(Self.folder)")
    }

    @Test("scenario", arguments: files)
    func run(_ file: String) throws {
        let path = Self.folder + "/" + file
        let scenario = try Scenario.load(path: path)
        let problems = scenario.run()
        #expect(problems.isEmpty, "\(file) (\(scenario.name)):\n\(problems.joined(separator: "\n"))")
    }

    @Test("a malformed scenario is refused with its file and key")
    func malformed() {
        let cases: [(String, String)] = [
            ("name: x\ncluster: {servers: 3, groups: []}\nsteps: [{at: 1s, crash: s9}]\n", "step 1.crash: unknown server s9"),
            ("name: x\ncluster: {servers: 3}\nsteps: [{at: soon, heal: true}]\n", "step 1: at: not a duration"),
            ("name: x\ncluster: {servers: 3}\nsteps: [{at: 1s, explode: s1}]\n", "step 1: unknown key explode"),
            ("cluster: {servers: 3}\nsteps: []\n", "name: missing"),
            ("name: x\nengine: s1\nboot: {s1: 0}\ncluster: {servers: 2}\nsteps: []\n", "boot: not used with engine"),
            ("name: x\nengine: s1\ncluster: {servers: 2}\nsteps: [{at: 1s, tick: true, start-service: true}]\n", "step 1: exactly one of"),
            ("name: x\nengine: s1\npeers: [s1]\ncluster: {servers: 2}\nsteps: []\n", "peers: s1 is the engine itself"),
            ("name: x\ncluster: {servers: 2}\npeers: [s2]\nsteps: []\n", "peers: only with engine"),
        ]
        for (yaml, expected) in cases {
            do {
                _ = try Scenario.parse(yaml: yaml, file: "bad.yaml")
                Issue.record("accepted: \(yaml)")
            } catch {
                #expect("\(error)".contains("bad.yaml") && "\(error)".contains(expected), "\(error)")
            }
        }
    }
}

struct ScenarioError: Error, CustomStringConvertible {
    var description: String
}

/// One scenario file, parsed.
struct Scenario {
    var name: String
    var file: String
    var config: ClusterConfig
    var boot: [ServerName: Duration]
    var failing: [FailingRun]
    var steps: [Step]
    /// Set: one Engine (this server) fed by hand with `engineSteps` (ScenarioEngineMode.swift).
    var engine: ServerName? = nil
    var engineSteps: [EngineStep] = []
    /// With `engine`: peers that send a heartbeat every interval (until a step says `silent`).
    var peers: [ServerName] = []

    struct FailingRun {
        var server: ServerName?
        var resource: String
        var operation: ResourceOperation
        var times: Int
    }

    struct Step {
        var index: Int
        var at: Duration
        var actions: [Action]
        var expectations: [Expectation]
    }

    enum Action {
        case boot(ServerName)
        case crash(ServerName)
        case freeze(ServerName, Duration)
        case partition([ServerName], [ServerName])
        case cut(from: [ServerName], to: [ServerName])
        case heal
        case pingTargetsLost([ServerName])
        case command(at: ServerName, ClusterCommand, expect: CommandCode?, messageContains: String?)
    }

    enum Expectation {
        case placement(GroupName, [String])
        case runs(RunFilter, [String])
        case env(RunFilter, [String: String])
        case master([ServerName: ServerName?])
        case osActions([String])
        /// The first of `first` happened before the first of `then` (each "S fence G" or
        /// "S start G/R" / "S stop G/R").
        case order(first: String, then: String)
    }

    struct RunFilter {
        var group: GroupName?
        var server: ServerName?
        var operation: ResourceOperation?
        var since: Duration = .zero
        var until: Duration?
    }

    // MARK: - Running

    /// Runs the scenario; the problems found, each naming its step.
    func run() -> [String] {
        if let engine { return runEngine(engine) }
        let world = SimulatedCluster(config: config, seed: 1, scriptModel: scriptModel())
        for (server, time) in boot.sorted(by: { $0.key < $1.key }) {
            if time == .zero { world.boot(server) } else { world.at(time, "boot \(server)") { world.boot(server) } }
        }
        var problems: [String] = []
        for step in steps {
            world.run(until: step.at)
            let label = "step \(step.index) (at \(step.at.configText))"
            // What held up to this moment is checked first; then the step's faults and commands.
            for expectation in step.expectations {
                if let problem = check(expectation, in: world) { problems.append("\(label): \(problem)") }
            }
            for action in step.actions {
                if let problem = perform(action, in: world) { problems.append("\(label): \(problem)") }
            }
            if !problems.isEmpty {
                problems.append("trace:\n" + world.trace.suffix(60).joined(separator: "\n"))
                return problems
            }
        }
        if !world.violations.isEmpty { problems.append("invariants broken: \(world.violations)") }
        return problems
    }

    func scriptModel() -> SimulatedCluster.ScriptModel {
        let remaining = FailureBudget(failing)
        return { server, run, _ in
            (.milliseconds(50), remaining.take(server, run) ? .failure(reason: "exit code 1") : .success(asyncPID: nil))
        }
    }

    func perform(_ action: Action, in world: SimulatedCluster) -> String? {
        switch action {
        case .boot(let server): world.boot(server)
        case .crash(let server): world.crash(server)
        case .freeze(let server, let length): world.freeze(server, for: length)
        case .partition(let a, let b): world.partition(a, b)
        case .cut(let from, let to): world.partition(from, to, oneWay: true)
        case .heal:
            world.heal()
            world.unreachablePingTargets = []
        case .pingTargetsLost(let servers): world.unreachablePingTargets.formUnion(servers)
        case .command(let origin, let command, let expected, let text):
            let result = world.command(command, at: origin)
            if let expected, result.code != expected {
                return "command \(command) at \(origin) returned \(result.code) (\(result.message)), expected \(expected)"
            }
            if let text, !result.message.contains(text) {
                return "command \(command) at \(origin) said \"\(result.message)\", expected it to contain \"\(text)\""
            }
        }
        return nil
    }

    func check(_ expectation: Expectation, in world: SimulatedCluster) -> String? {
        switch expectation {
        case .placement(let group, let expected):
            let actual = world.where_(group)
            return actual == expected ? nil : "placement of \(group) is \(actual), expected \(expected)"
        case .runs(let filter, let expected):
            let actual = runs(filter, world).map(stepString)
            return actual == expected ? nil : "runs \(describe(filter)) are \(actual), expected \(expected)"
        case .env(let filter, let values):
            let matched = runs(filter, world)
            if matched.isEmpty { return "no runs \(describe(filter)) to check CLP_* variables of" }
            let problems = matched.flatMap { SimulatedCluster.mismatches($0, values) }
            return problems.isEmpty ? nil : problems.joined(separator: "; ")
        case .master(let expected):
            for (server, master) in expected.sorted(by: { $0.key < $1.key }) {
                let actual = world.engine(server)?.currentMaster(now: world.now)
                if actual != master { return "\(server) follows master \(actual ?? "none"), expected \(master ?? "none")" }
            }
            return nil
        case .osActions(let expected):
            return world.osActionList == expected ? nil : "OS actions are \(world.osActionList), expected \(expected)"
        case .order(let first, let then):
            guard let a = firstTime(of: first, world) else { return "\(first) never happened" }
            guard let b = firstTime(of: then, world) else { return "\(then) never happened" }
            return a < b ? nil : "\(first) (at \(a.configText)) did not happen before \(then) (at \(b.configText))"
        }
    }

    /// When "S fence G" (from the trace) or a run "S start G/R" first happened.
    func firstTime(of step: String, _ world: SimulatedCluster) -> Duration? {
        let words = step.split(separator: " ")
        if words.count == 3, words[1] == "fence" {
            return world.fenceTimes(String(words[0]), String(words[2])).first.map { .milliseconds($0) }
        }
        return world.runLog.first { stepString($0) == step }?.at
    }

    func runs(_ filter: RunFilter, _ world: SimulatedCluster) -> [SimulatedCluster.LoggedRun] {
        world.runs(group: filter.group, on: filter.server, filter.operation, since: filter.since, until: filter.until)
    }

    func describe(_ filter: RunFilter) -> String {
        var parts: [String] = []
        if let group = filter.group { parts.append("of \(group)") }
        if let server = filter.server { parts.append("on \(server)") }
        if let operation = filter.operation { parts.append("(\(operation.rawValue))") }
        if filter.since > .zero { parts.append("since \(filter.since.configText)") }
        if let until = filter.until { parts.append("until \(until.configText)") }
        return parts.joined(separator: " ")
    }
}

/// How many more times each failing run fails (shared by the script model's calls).
final class FailureBudget: @unchecked Sendable {
    private var entries: [Scenario.FailingRun]
    init(_ entries: [Scenario.FailingRun]) { self.entries = entries }

    func take(_ server: ServerName, _ run: ResourceRun) -> Bool {
        guard
            let index = entries.firstIndex(where: {
                $0.resource == run.resource && $0.operation == run.operation && ($0.server == nil || $0.server == server) && $0.times > 0
            })
        else { return false }
        entries[index].times -= 1
        return true
    }
}
