import Foundation
import Logging
import UnderstudyModel

/// What a forced-stop script is asked to do (`CLP_FORCESTOP_MODE`).
public enum ForcedStopMode: Int, Sendable {
    /// Check that stopping the server would work (the periodic check).
    case check = 0
    /// Stop the server.
    case stop = 1
}

/// The end of a forced stop or check of one server.
public struct ForcedStopOutcome: Sendable, Equatable {
    public var succeeded: Bool
    /// The agent that succeeded, or the last one tried (nil when none was).
    public var agent: String?
    /// One line for the alert: what was done, or why each agent failed. Never a password.
    public var detail: String

    public init(succeeded: Bool, agent: String?, detail: String) {
        self.succeeded = succeeded
        self.agent = agent
        self.detail = detail
    }
}

/// What one agent did for one server (the periodic check keeps one per server and agent).
public struct ForcedStopAgentResult: Sendable, Equatable {
    public var agent: String
    /// `ipmi` or `script`.
    public var type: String
    public var succeeded: Bool
    public var detail: String
    public var elapsed: Duration

    public init(agent: String, type: String, succeeded: Bool, detail: String, elapsed: Duration) {
        self.agent = agent
        self.type = type
        self.succeeded = succeeded
        self.detail = detail
        self.elapsed = elapsed
    }
}

/// Runs the forced-stop agents of the `fencing:` section against one server: in order until
/// one succeeds, all of them within `fencing.timeout`. The master calls `stop` before it starts
/// a lost server's groups elsewhere; `ForcedStopChecker` calls `checkEach` periodically.
///
/// Every program (ipmitool, a script) runs through `SpawnedProcess` in a process group of its
/// own, waited for on a thread of its own; at the deadline, or when the calling task is
/// cancelled, its whole process group is killed.
public actor ForcedStopper {
    public private(set) var fencing: FencingConfig
    public let localServer: String
    /// Where relative paths (password files, script commands) are taken from.
    public let configFolder: String?
    private let logger: Logger?
    private let ipmitool: String
    private let ipmitoolArguments: [String]
    private let environment: [String: String]

    /// - Parameters:
    ///   - host: adds `CLP_VERSION_FULL`, `CLP_PATH`, `CLP_OSNAME`, `CLP_OSVER` to scripts'
    ///     environment, as for every other script the daemon runs.
    ///   - ipmitool: the program, looked up in PATH unless a path.
    ///   - ipmitoolArguments: options put before the chassis command of every ipmitool run
    ///     (e.g. `-C 3` for a BMC that does not answer Get Channel Cipher Suites).
    public init(
        fencing: FencingConfig, localServer: String, configFolder: String?, logger: Logger? = nil, host: HostFacts? = nil,
        ipmitool: String = "ipmitool", ipmitoolArguments: [String] = []
    ) {
        self.fencing = fencing
        self.localServer = localServer
        self.configFolder = configFolder
        self.logger = logger
        self.ipmitool = ipmitool
        self.ipmitoolArguments = ipmitoolArguments
        let base = ScriptEnvironment.base()
        environment = host.map { ScriptEnvironment.compose(base: base, host: $0, variables: [:]) } ?? base
    }

    /// A new `fencing:` section (configuration applied); runs already started keep the old one.
    public func update(_ fencing: FencingConfig) {
        self.fencing = fencing
    }

    /// Stop `server` (mode 1): the agents covering it in order until one succeeds, all within
    /// `fencing.timeout`.
    public func stop(_ server: String) async -> ForcedStopOutcome {
        await run(server, mode: .stop)
    }

    /// Check (mode 0) that some agent could stop `server`: in order until one answers.
    public func check(_ server: String) async -> ForcedStopOutcome {
        await run(server, mode: .check)
    }

    public func run(_ server: String, mode: ForcedStopMode) async -> ForcedStopOutcome {
        let what = mode == .stop ? "forced stop" : "forced-stop check"
        if let refused = refusal(server) {
            logger?.error("\(what) of \(server) refused: \(refused)")
            return ForcedStopOutcome(succeeded: false, agent: nil, detail: refused)
        }
        let agents = fencing.agents(for: server)
        let deadline = ContinuousClock.now + fencing.timeout
        var failures: [String] = []
        var last: String?
        for agent in agents {
            if Task.isCancelled {
                failures.append("\(agent.name): not tried (cancelled)")
                break
            }
            guard ContinuousClock.now < deadline else {
                failures.append("\(agent.name): not tried (the \(fencing.timeout.fencingText) timeout had passed)")
                continue
            }
            if mode == .stop { logger?.notice("Forced stop of \(server): trying agent \(agent.name) (\(agent.typeName))") }
            last = agent.name
            let attempt = await attempt(agent, server: server, mode: mode, until: deadline)
            if attempt.succeeded {
                if mode == .stop { logger?.notice("Forced stop of \(server) done by agent \(agent.name): \(attempt.detail)") }
                return ForcedStopOutcome(succeeded: true, agent: agent.name, detail: "\(agent.name): \(attempt.detail)")
            }
            if mode == .stop { logger?.error("Forced stop of \(server) by agent \(agent.name) failed: \(attempt.detail)") }
            failures.append("\(agent.name): \(attempt.detail)")
        }
        return ForcedStopOutcome(succeeded: false, agent: last, detail: failures.joined(separator: "; "))
    }

    /// Mode 0 with every agent covering `server`, each within `fencing.timeout` of its own
    /// (the periodic check wants to know which agents work, not only whether one does).
    public func checkEach(_ server: String) async -> [ForcedStopAgentResult] {
        if let refused = refusal(server) {
            return [ForcedStopAgentResult(agent: "", type: "", succeeded: false, detail: refused, elapsed: .zero)]
        }
        var results: [ForcedStopAgentResult] = []
        for agent in fencing.agents(for: server) {
            if Task.isCancelled { break }
            let started = ContinuousClock.now
            let attempt = await attempt(agent, server: server, mode: .check, until: started + fencing.timeout)
            results.append(
                ForcedStopAgentResult(
                    agent: agent.name, type: agent.typeName, succeeded: attempt.succeeded, detail: attempt.detail,
                    elapsed: ContinuousClock.now - started))
        }
        return results
    }

    private func refusal(_ server: String) -> String? {
        if server == localServer { return "a server does not stop itself (\(server) is the local server)" }
        if !fencing.covers(server) { return "no forced-stop agent covers server \(server)" }
        return nil
    }

    private func attempt(
        _ agent: FencingAgentConfig, server: String, mode: ForcedStopMode, until deadline: ContinuousClock.Instant
    ) async -> FencingAttempt {
        switch agent.kind {
        case .ipmi(let ipmi):
            guard let bmc = ipmi.bmcs[server] else { return FencingAttempt(succeeded: false, detail: "no BMC listed for \(server)") }
            let fencing = IPMIFencing(
                agentName: agent.name, agent: ipmi, server: server, bmc: bmc, passwordFile: resolve(bmc.passwordFile),
                ipmitool: ipmitool, extraArguments: ipmitoolArguments, environment: environment)
            return mode == .stop ? await fencing.stop(until: deadline) : await fencing.check(until: deadline)
        case .script(let command):
            let variables = ScriptFencing.variables(server: server, local: localServer, mode: mode)
            let script = ScriptFencing(
                agentName: agent.name, command: ScriptFencing.resolve(command, configFolder: configFolder),
                environment: environment.merging(variables) { _, variable in variable })
            return await script.run(until: deadline)
        }
    }

    private func resolve(_ path: String) -> String {
        guard !path.hasPrefix("/"), let configFolder else { return path }
        return configFolder + "/" + path
    }
}
