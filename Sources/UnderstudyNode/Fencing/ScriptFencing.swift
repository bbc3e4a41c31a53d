import Foundation
import UnderstudyModel

/// The `script` agent: the user's command, run as EXPRESSCLUSTER runs its forced-stop scripts,
/// with `CLP_SERVER_DOWN` (the server to stop), `CLP_SERVER_LOCAL` (the server running it) and
/// `CLP_FORCESTOP_MODE` (0: check, 1: stop) in its environment. Exit 0 is success. At the
/// deadline its whole process group is killed.
struct ScriptFencing: Sendable {
    var agentName: String
    /// The command; a relative path in its first word is taken from the configuration folder.
    var command: [String]
    var environment: [String: String]
    /// How much of the output is kept for the detail.
    static let captureLimit = 8 * 1024

    static func variables(server: String, local: String, mode: ForcedStopMode) -> [String: String] {
        ["CLP_SERVER_DOWN": server, "CLP_SERVER_LOCAL": local, "CLP_FORCESTOP_MODE": String(mode.rawValue)]
    }

    static func resolve(_ command: [String], configFolder: String?) -> [String] {
        guard let first = command.first, first.contains("/"), !first.hasPrefix("/"), let configFolder else { return command }
        return [configFolder + "/" + first] + command.dropFirst()
    }

    func run(until deadline: ContinuousClock.Instant) async -> FencingAttempt {
        guard !command.isEmpty else { return FencingAttempt(succeeded: false, detail: "no command") }
        let result = await FencingCommand(
            arguments: command, environment: environment, mergeError: true, captureLimit: Self.captureLimit
        ).run(until: deadline)
        // The last line a script prints is most often its verdict or its error.
        let said =
            result.output.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.last { !$0.isEmpty }
            .map { ": " + IPMIFencing.clip($0) } ?? ""
        let program = command[0]
        switch result.ending {
        case .exited(0): return FencingAttempt(succeeded: true, detail: "\(program) exit 0\(said)")
        case .exited(let code):
            let how = code > 128 ? "killed by signal \(code - 128)" : "exit \(code)"
            return FencingAttempt(succeeded: false, detail: "\(program) \(how)\(said)")
        case .timedOut:
            return FencingAttempt(
                succeeded: false, detail: "\(program) timed out after \(result.elapsed.fencingText) (process group killed)\(said)")
        case .cancelled: return FencingAttempt(succeeded: false, detail: "\(program) cancelled (process group killed)")
        case .launchFailed(let reason): return FencingAttempt(succeeded: false, detail: "\(program) cannot run: \(reason)")
        }
    }
}
