import Foundation
import Synchronization
import UnderstudyEngine

/// genw: a custom script. Synchronous: each check runs it and compares the exit code with
/// the normal value. Asynchronous: the first check starts it, later checks find it alive;
/// when it has died the check reports an error and the next one starts it again.
final class ScriptProbe: MonitorProbe {
    let monitor: String
    let script: String
    let asynchronous: Bool
    let normalValue: Int32
    let nice: Int
    let timeout: Duration
    let runner: ScriptRunner
    let environment: [String: String]
    let log: ScriptLog?
    private let process = Mutex<RunningScript?>(nil)

    init(
        monitor: String, script: String, asynchronous: Bool, normalValue: Int32, nice: Int, timeout: Duration,
        runner: ScriptRunner, environment: [String: String], log: ScriptLog?
    ) {
        self.monitor = monitor
        self.script = script
        self.asynchronous = asynchronous
        self.normalValue = normalValue
        self.nice = nice
        self.timeout = timeout
        self.runner = runner
        self.environment = environment
        self.log = log
    }

    func invocation(timeout: Duration?) -> ScriptInvocation {
        let folder = (script as NSString).deletingLastPathComponent
        // A nice value other than 0 runs the script through nice(1).
        let (executable, arguments) = nice == 0 ? (script, []) : ("/usr/bin/nice", ["-n", String(nice), script])
        return ScriptInvocation(
            executable: executable, arguments: arguments, environment: environment,
            workingDirectory: folder.isEmpty ? nil : folder, timeout: timeout, log: log)
    }

    func check() async -> MonitorResult {
        if asynchronous { return await checkAsynchronous() }
        // The runner kills the script's process group a little after the monitor timeout:
        // the monitor has abandoned the check by then.
        let outcome = await runner.run(invocation(timeout: timeout + .milliseconds(500)))
        switch outcome {
        case .exited(let code) where code == normalValue: return .normal
        default: return .error("\(script): \(outcome)")
        }
    }

    func checkAsynchronous() async -> MonitorResult {
        if let current = process.withLock({ $0 }) {
            if current.isRunning { return .normal }
            process.withLock { $0 = nil }
            return .error("\(script) is no longer running (\(current.outcome.map { "\($0)" } ?? "ended"))")
        }
        do {
            let started = try await runner.start(invocation(timeout: nil))
            process.withLock { $0 = started }
            return .normal
        } catch {
            return .error("cannot start \(script): \(error.reason)")
        }
    }

    func stop() async {
        guard
            let current = process.withLock({ value -> RunningScript? in
                defer { value = nil }
                return value
            })
        else { return }
        await current.terminate()
    }
}
