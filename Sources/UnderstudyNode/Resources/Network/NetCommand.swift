import Foundation
import Subprocess
import UnderstudyModel

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// What one network command (`ip`, `arping`, `ndisc6`) did.
struct NetCommandResult: Sendable {
    /// The command as a reader would type it (without the timeout wrapper).
    var commandLine: String
    /// Exit code; nil when the command could not be started.
    var exitCode: Int32?
    var standardOutput: String
    var standardError: String
    var timedOut: Bool

    var succeeded: Bool { exitCode == 0 }

    /// "`ip addr add …` failed (exit 2): RTNETLINK answers: File exists".
    var failureDescription: String {
        let detail = standardError.trimmingCharacters(in: .whitespacesAndNewlines)
        let fallback = standardOutput.trimmingCharacters(in: .whitespacesAndNewlines)
        let text = detail.isEmpty ? fallback : detail
        let how: String
        if timedOut {
            how = "timed out"
        } else if let exitCode {
            how = "failed (exit \(exitCode))"
        } else {
            how = "could not be started"
        }
        return "`\(commandLine)` \(how)" + (text.isEmpty ? "" : ": \(text)")
    }
}

/// Runs network commands with a hard time limit, optionally inside a network namespace
/// (`ip netns exec NS …`; used by the tests, which build their own namespaces).
///
/// Every command runs under coreutils `timeout --kill-after=1s`, so a wedged command (a hung
/// netlink call, an arping that never gets a reply on a dead link) cannot stall a resource
/// start or stop: it gets SIGTERM at the limit and SIGKILL one second later.
struct NetCommandRunner: Sendable {
    var namespace: String?
    var defaultTimeout: Duration
    /// The command's whole environment; nil inherits the daemon's.
    var environment: [String: String]?
    /// Scheduling priority of the command (`nice -n`); 0 runs it as the daemon runs.
    var nice: Int

    init(
        namespace: String? = nil, defaultTimeout: Duration = .seconds(5), environment: [String: String]? = nil, nice: Int = 0
    ) {
        self.namespace = namespace
        self.defaultTimeout = defaultTimeout
        self.environment = environment
        self.nice = nice
    }

    func run(_ arguments: [String], timeout: Duration? = nil) async -> NetCommandResult {
        let limit = timeout ?? defaultTimeout
        var command = arguments
        if let namespace { command = ["ip", "netns", "exec", namespace] + command }
        let commandLine = command.joined(separator: " ")
        // nice(1) execs the command: `timeout` still signals the command itself.
        if nice != 0 { command = ["nice", "-n", String(nice)] + command }
        let seconds = max(0.1, limit.inSeconds)
        let wrapped = ["--kill-after=1", String(format: "%.3f", seconds)] + command
        do {
            var custom: [Environment.Key: String] = [:]
            for (key, value) in environment ?? [:] {
                if let name = Environment.Key(rawValue: key) { custom[name] = value }
            }
            // The keeper kills what a dead daemon left running (a mount finishing late).
            let marker = Environment.Key(rawValue: DaemonInstance.variable)
            if let marker { custom[marker] = DaemonInstance.token }
            let inherited = marker.map { Environment.inherit.updating([$0: DaemonInstance.token]) } ?? .inherit
            let result = try await Subprocess.run(
                .name("timeout"), arguments: Arguments(wrapped),
                environment: environment == nil ? inherited : .custom(custom),
                output: .string(limit: 1 << 20), error: .string(limit: 1 << 20))
            var code: Int32?
            var timedOut = false
            switch result.terminationStatus {
            case .exited(let value):
                code = value
                // coreutils `timeout` exits 124 when the limit struck (137 after SIGKILL).
                timedOut = value == 124 || value == 137
            case .signaled(let signal):
                code = 128 + signal
            }
            return NetCommandResult(
                commandLine: commandLine, exitCode: code, standardOutput: result.standardOutput,
                standardError: result.standardError, timedOut: timedOut)
        } catch {
            return NetCommandResult(
                commandLine: commandLine, exitCode: nil, standardOutput: "", standardError: "\(error)", timedOut: false)
        }
    }
}
