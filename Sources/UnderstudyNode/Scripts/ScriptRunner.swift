import Foundation
import Logging
import Subprocess
import Synchronization
import UnderstudyModel

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// Where a script's output goes, and how its runs are labelled there.
public struct ScriptLog: Sendable {
    public var file: RotatingLog
    /// What the run is for, as the header shows it: `start`, `stop`, `monitor`, `recovery`.
    public var action: String

    public init(file: RotatingLog, action: String) {
        self.file = file
        self.action = action
    }
}

/// One script run, fully described: nothing of the daemon's own process state leaks in.
public struct ScriptInvocation: Sendable {
    /// Absolute path, or relative to `workingDirectory`.
    public var executable: String
    public var arguments: [String]
    /// The complete environment of the script (see `ScriptEnvironment.compose`).
    public var environment: [String: String]
    /// Nil keeps the daemon's working directory.
    public var workingDirectory: String?
    /// Nil means no limit (an asynchronous start process runs until it is stopped).
    public var timeout: Duration?
    /// Nil discards the output (it is still drained, so the script never blocks on it).
    public var log: ScriptLog?

    public init(
        executable: String, arguments: [String] = [], environment: [String: String],
        workingDirectory: String? = nil, timeout: Duration?, log: ScriptLog? = nil
    ) {
        self.executable = executable
        self.arguments = arguments
        self.environment = environment
        self.workingDirectory = workingDirectory
        self.timeout = timeout
        self.log = log
    }
}

/// How a script run ended.
public enum ScriptOutcome: Sendable, Equatable, CustomStringConvertible {
    case exited(Int32)
    /// Killed by this signal (not by the runner's timeout: see `timedOut`).
    case signaled(Int32)
    /// The runner killed the script's process group when its time was up.
    case timedOut(after: Duration)
    /// The script never ran; the reason names the path and the cause.
    case launchFailed(String)

    public var isSuccess: Bool { self == .exited(0) }

    public var description: String {
        switch self {
        case .exited(let code): "exit \(code)"
        case .signaled(let signal): "killed by signal \(signal) (\(signalName(signal)))"
        case .timedOut(let limit): "timed out after \(formatSeconds(limit)), process group killed"
        case .launchFailed(let reason): "launch failed: \(reason)"
        }
    }
}

/// `start` could not launch the script; `reason` names the path and the cause.
public struct ScriptLaunchError: Error, Sendable, Equatable, CustomStringConvertible {
    public var reason: String
    public init(reason: String) { self.reason = reason }
    public var description: String { reason }
}

/// Runs resource scripts, each in its own session and process group, with its output drained
/// continuously into the resource's log.
public struct ScriptRunner: Sendable {
    /// Time between SIGTERM and SIGKILL to the process group on timeout or `terminate()`.
    public var killGrace: Duration
    /// Gets one line per launch failure and per timeout (the script's own log gets details).
    public var logger: Logger?
    /// The descriptor limit a launch keeps its reserve below (`makeOutputPipe`); nil: the
    /// process's soft RLIMIT_NOFILE. Tests set a small one.
    public var descriptorLimit: Int?

    public init(killGrace: Duration = .seconds(5), logger: Logger? = nil) {
        self.killGrace = killGrace
        self.logger = logger
    }

    /// Descriptors kept free for Subprocess and the rest of the daemon (`makeOutputPipe`).
    static let descriptorReserve = 64

    /// The soft RLIMIT_NOFILE, nil when unlimited or unknown.
    static func descriptorLimit() -> Int? {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur != rlim_t.max else { return nil }
        return Int(clamping: limit.rlim_cur)
    }

    /// Runs the script to its end (or its timeout). If the calling task is cancelled, the
    /// script's process group is terminated and the outcome of that is returned.
    public func run(_ invocation: ScriptInvocation) async -> ScriptOutcome {
        let script: RunningScript
        do {
            script = try await start(invocation)
        } catch {
            return .launchFailed(error.reason)
        }
        return await withTaskCancellationHandler {
            await script.wait()
        } onCancel: {
            Task { await script.terminate() }
        }
    }

    /// Launches the script and returns at once, with its pid known (`start-mode: async`).
    /// A timeout in the invocation still applies; pass nil for a process that runs until
    /// it is stopped.
    public func start(_ invocation: ScriptInvocation) async throws(ScriptLaunchError) -> RunningScript {
        let supervisor = ScriptSupervisor(
            invocation: invocation, killGrace: killGrace, logger: logger, descriptorLimit: descriptorLimit ?? Self.descriptorLimit())
        let pid = try await supervisor.launch()
        return RunningScript(pid: pid, supervisor: supervisor)
    }
}

/// A launched script. The process is supervised whether or not anyone keeps this handle.
public final class RunningScript: Sendable {
    /// The script's process id, which is also its process group and session id.
    public let pid: Int32
    private let supervisor: ScriptSupervisor

    fileprivate init(pid: Int32, supervisor: ScriptSupervisor) {
        self.pid = pid
        self.supervisor = supervisor
    }

    public var invocation: ScriptInvocation { supervisor.invocation }

    /// True until the script's own process (the group leader) has exited.
    public var isRunning: Bool { supervisor.isLeaderRunning }

    /// The outcome, once the run has ended and its log footer is written.
    public var outcome: ScriptOutcome? { supervisor.finalOutcome }

    /// Waits for the script's end. Waiting is not cut short by task cancellation: call
    /// `terminate` to end the script instead.
    public func wait() async -> ScriptOutcome {
        await supervisor.waitForOutcome()
    }

    /// SIGTERM to the whole process group, SIGKILL to what is left of it after `grace`;
    /// returns once the script has exited. Does nothing once the script has exited: any
    /// processes it left behind are no longer addressed by its (reusable) process group id.
    public func terminate(grace: Duration) async {
        await supervisor.terminate(grace: grace, dueToTimeout: false)
    }

    /// `terminate(grace:)` with the runner's grace period.
    public func terminate() async {
        await supervisor.terminate(grace: supervisor.killGrace, dueToTimeout: false)
    }
}

// MARK: - Supervision

/// Owns one script process from launch to its log footer.
final class ScriptSupervisor: Sendable {
    let invocation: ScriptInvocation
    let killGrace: Duration
    private let logger: Logger?
    private let descriptorLimit: Int?
    private let leaderExited = OneShotEvent()
    private let finished = OneShotEvent()
    private let state = Mutex(State())

    private struct State {
        var pid: Int32?
        var launchContinuation: CheckedContinuation<Int32, any Error>?
        var leaderRunning = false
        var timedOut = false
        var termination: Task<Void, Never>?
        var watchdog: TimeoutWatchdog?
        var outcome: ScriptOutcome?
    }

    init(invocation: ScriptInvocation, killGrace: Duration, logger: Logger?, descriptorLimit: Int?) {
        self.invocation = invocation
        self.killGrace = killGrace
        self.logger = logger
        self.descriptorLimit = descriptorLimit
    }

    var isLeaderRunning: Bool { state.withLock { $0.leaderRunning } }
    var finalOutcome: ScriptOutcome? { state.withLock { $0.outcome } }

    func waitForOutcome() async -> ScriptOutcome {
        await finished.waitIgnoringCancellation()
        // `finished` fires only after the outcome is stored.
        return state.withLock { $0.outcome } ?? .launchFailed("internal error: no outcome recorded")
    }

    // MARK: Launch

    func launch() async throws(ScriptLaunchError) -> Int32 {
        let startedAt = ContinuousClock.now
        let executable = resolvedExecutablePath()
        writeHeader(executable: executable)

        let configuration: Configuration
        let pipe: (read: Int32, write: Int32)
        do {
            configuration = try makeConfiguration(executable: executable)
            pipe = try makeOutputPipe()
        } catch {
            writeFooter(executable: executable, outcome: .launchFailed(error.reason), startedAt: startedAt, pid: nil)
            logger?.error("script launch failed: \(error.reason)")
            throw error
        }

        // Drain from the first byte on; the thread closes the read end at end of file, which
        // comes when the script and every child holding the pipe are gone (or at once if the
        // launch fails, as the supervisor closes the write end either way).
        let drain = ScriptOutputDrain.start(readEnd: pipe.read, log: invocation.log?.file)

        let pid: Int32
        do {
            pid = try await withCheckedThrowingContinuation { continuation in
                state.withLock { $0.launchContinuation = continuation }
                Task.detached {
                    await self.superviseProcess(
                        configuration: configuration, outputWriteEnd: pipe.write, drain: drain,
                        executable: executable, startedAt: startedAt)
                }
            }
        } catch {
            let reason = ScriptLaunchDiagnosis.reason(
                executable: executable, workingDirectory: invocation.workingDirectory, error: error)
            _ = await drain.ended.wait(atMost: .milliseconds(250))
            writeFooter(executable: executable, outcome: .launchFailed(reason), startedAt: startedAt, pid: nil)
            state.withLock { $0.outcome = .launchFailed(reason) }
            finished.fire()
            logger?.error("script launch failed: \(reason)")
            throw ScriptLaunchError(reason: reason)
        }

        return pid
    }

    /// A Dispatch timer, not a sleeping task: the SIGTERM goes out at the deadline even when
    /// Swift's task pool is saturated. Cancelled when the script ends first.
    private func armWatchdog(pid: Int32, executable: String) -> TimeoutWatchdog? {
        guard let timeout = invocation.timeout else { return nil }
        return TimeoutWatchdog(after: timeout) {
            guard self.beginTermination(grace: self.killGrace, dueToTimeout: true) != nil else { return }
            self.logger?.warning(
                "script \(executable) (pid \(pid)) timed out after \(formatSeconds(timeout)), process group terminated")
        }
    }

    /// Runs for the whole life of the process, in a task of its own, so `start` can return.
    private func superviseProcess(
        configuration: Configuration, outputWriteEnd: Int32, drain: ScriptOutputDrain,
        executable: String, startedAt: ContinuousClock.Instant
    ) async {
        let status: TerminationStatus
        do {
            let result = try await Subprocess.run(
                configuration,
                input: .none,
                // The write end stays this supervisor's to close (once the script runs, or when
                // the launch fails): Subprocess, asked to close it, stopped the whole daemon
                // with a fatal error when a launch failed for want of descriptors (1,000 groups
                // starting at once) without closing it.
                output: .fileDescriptor(.init(rawValue: outputWriteEnd), closeAfterSpawningProcess: false),
                error: .combinedWithOutput
            ) { execution in
                close(outputWriteEnd)
                let pid = execution.processIdentifier.value
                let continuation = self.state.withLock { state in
                    state.pid = pid
                    state.leaderRunning = true
                    defer { state.launchContinuation = nil }
                    return state.launchContinuation
                }
                // The clock starts as soon as the process exists (and is known to be running,
                // so even a zero timeout finds something to terminate). `finish` cannot run
                // before this closure returns, so the watchdog is stored in time to be cancelled.
                let watchdog = self.armWatchdog(pid: pid, executable: executable)
                self.state.withLock { $0.watchdog = watchdog }
                continuation?.resume(returning: pid)
            }
            status = result.terminationStatus
        } catch {
            let pendingLaunch = state.withLock { state in
                defer { state.launchContinuation = nil }
                return state.launchContinuation
            }
            if let pendingLaunch {
                // Never started: `launch` reports it.
                close(outputWriteEnd)
                pendingLaunch.resume(throwing: error)
                return
            }
            // Started, then lost track of (the monitor failed): report what is known.
            leaderExited.fire()
            await finish(
                outcome: .launchFailed("lost track of \(executable): \(error)"), drain: drain,
                executable: executable, startedAt: startedAt)
            return
        }

        let (pid, termination, timedOut) = state.withLock { state in
            state.leaderRunning = false
            return (state.pid, state.termination, state.timedOut)
        }
        leaderExited.fire()
        // A timeout or terminate in progress finishes first, so the outcome is reported only
        // once the whole process group is gone.
        await termination?.value

        let outcome: ScriptOutcome
        if timedOut, let limit = invocation.timeout {
            outcome = .timedOut(after: limit)
        } else {
            switch status {
            case .exited(let code): outcome = .exited(code)
            case .signaled(let signal): outcome = .signaled(signal)
            }
        }
        await finish(outcome: outcome, drain: drain, executable: executable, startedAt: startedAt, pid: pid)
    }

    private func finish(
        outcome: ScriptOutcome, drain: ScriptOutputDrain, executable: String,
        startedAt: ContinuousClock.Instant, pid: Int32? = nil
    ) async {
        // Let the last output land before the footer; children that keep the pipe open (a
        // daemon started in the background) go on logging after it.
        _ = await drain.ended.wait(atMost: .milliseconds(100))
        writeFooter(executable: executable, outcome: outcome, startedAt: startedAt, pid: pid)
        let watchdog = state.withLock { state in
            state.outcome = outcome
            state.leaderRunning = false
            return state.watchdog
        }
        watchdog?.cancel()
        finished.fire()
    }

    // MARK: Termination

    func terminate(grace: Duration, dueToTimeout: Bool) async {
        await beginTermination(grace: grace, dueToTimeout: dueToTimeout)?.value
    }

    /// Sends SIGTERM to the group at once (synchronously, so a timeout is exact) and starts the
    /// rest of the sequence; joins a sequence already under way.
    private func beginTermination(grace: Duration, dueToTimeout: Bool) -> Task<Void, Never>? {
        state.withLock { state -> Task<Void, Never>? in
            guard state.leaderRunning, let pid = state.pid else { return state.termination }
            if dueToTimeout { state.timedOut = true }
            if let running = state.termination { return running }
            // Under the lock, with the leader not yet reported as exited: at most it was reaped
            // an instant ago, far too recently for its id to name someone else's group.
            ScriptProcessGroup.signal(pid, SIGTERM)
            // A stopped process only acts on SIGTERM once continued.
            ScriptProcessGroup.signal(pid, SIGCONT)
            let deadline = ContinuousClock.now + grace
            let task = Task.detached { await self.finishTermination(pid, killAt: deadline) }
            state.termination = task
            return task
        }
    }

    private func finishTermination(_ pid: Int32, killAt deadline: ContinuousClock.Instant) async {
        let grace = max(.zero, deadline - ContinuousClock.now)
        _ = await leaderExited.wait(atMost: grace)
        // Children that outlive the leader get the rest of the grace period too.
        while ContinuousClock.now < deadline && ScriptProcessGroup.exists(pid) {
            try? await Task.sleep(for: .milliseconds(20))
        }
        if ScriptProcessGroup.exists(pid) {
            ScriptProcessGroup.signal(pid, SIGKILL)
        }
        await leaderExited.waitIgnoringCancellation()
        // SIGKILL is delivered at once but dying takes a moment; report only when it is done.
        let killDeadline = ContinuousClock.now + .seconds(1)
        while ContinuousClock.now < killDeadline && ScriptProcessGroup.exists(pid) {
            try? await Task.sleep(for: .milliseconds(10))
        }
    }

    // MARK: Helpers

    private func resolvedExecutablePath() -> String {
        let executable = invocation.executable
        guard !executable.hasPrefix("/"), let folder = invocation.workingDirectory else { return executable }
        return (folder as NSString).appendingPathComponent(executable)
    }

    private func makeConfiguration(executable: String) throws(ScriptLaunchError) -> Configuration {
        var entries: [Environment.Key: String] = [:]
        for (name, value) in invocation.environment {
            guard !name.isEmpty, !name.contains("="), !name.utf8.contains(0), !value.utf8.contains(0),
                let key = Environment.Key(rawValue: name)
            else {
                throw ScriptLaunchError(
                    reason: "cannot run \(executable): invalid environment variable \(name.debugDescription)")
            }
            entries[key] = value
        }
        if let marker = Environment.Key(rawValue: DaemonInstance.variable) { entries[marker] = DaemonInstance.token }
        guard !invocation.arguments.contains(where: { $0.utf8.contains(0) }) else {
            throw ScriptLaunchError(reason: "cannot run \(executable): an argument contains a NUL byte")
        }
        var options = PlatformOptions()
        // Own session and process group: a timeout or stop reaches every child of the script.
        options.createSession = true
        options.teardownSequence = [
            .gracefulShutDown(toProcessGroup: true, allowedDurationToNextStep: killGrace)
        ]
        return Configuration(
            executable: .path(.init(executable)),
            arguments: Arguments(invocation.arguments),
            environment: .custom(entries),
            workingDirectory: invocation.workingDirectory.map { .init($0) },
            platformOptions: options)
    }

    private func makeOutputPipe() throws(ScriptLaunchError) -> (read: Int32, write: Int32) {
        var descriptors: [Int32] = [-1, -1]
        guard pipe(&descriptors) == 0 else {
            throw ScriptLaunchError(
                reason: "cannot run \(invocation.executable): cannot create output pipe: \(errnoText())")
        }
        // Other processes the daemon spawns must not inherit either end, or end of file
        // would never come.
        for descriptor in descriptors {
            _ = fcntl(descriptor, F_SETFD, FD_CLOEXEC)
        }
        // The kernel hands out the lowest free numbers: a pipe this close to the limit means
        // nearly every descriptor is in use. Subprocess needs a few more to start the script
        // and stops the whole process (a fatal error) when it cannot close what it opened on
        // the way, so the launch fails here, with a reason, while there is room.
        if let limit = descriptorLimit, Int(max(descriptors[0], descriptors[1])) >= limit - ScriptRunner.descriptorReserve {
            close(descriptors[0])
            close(descriptors[1])
            throw ScriptLaunchError(
                reason:
                    "cannot run \(invocation.executable): too many open files (descriptor \(max(descriptors[0], descriptors[1])) of a limit of \(limit)): too many scripts run at once for the daemon's RLIMIT_NOFILE (raise LimitNOFILE)"
            )
        }
        return (descriptors[0], descriptors[1])
    }

    private func writeHeader(executable: String) {
        guard let log = invocation.log else { return }
        var details: [String] = []
        for name in ["CLP_EVENT", "CLP_FACTOR", "CLP_ACTION"] {
            if let value = invocation.environment[name] { details.append("\(name)=\(value)") }
        }
        let suffix = details.isEmpty ? "" : " (\(details.joined(separator: " ")))"
        log.file.appendLine("--- \(logTimestamp()) \(log.action) \(executable)\(suffix)")
    }

    private func writeFooter(
        executable: String, outcome: ScriptOutcome, startedAt: ContinuousClock.Instant, pid: Int32?
    ) {
        guard let log = invocation.log else { return }
        let elapsed = formatSeconds(ContinuousClock.now - startedAt)
        let pidText = pid.map { ", pid \($0)" } ?? ""
        log.file.appendLine(
            "--- \(logTimestamp()) \(log.action) \(executable): \(outcome) (\(elapsed)\(pidText))")
    }
}

/// Runs an action once after a delay on a Dispatch thread, unless cancelled first.
final class TimeoutWatchdog: @unchecked Sendable {
    // DispatchWorkItem is thread-safe (cancel may race with execution) but not marked Sendable.
    private let item: DispatchWorkItem

    init(after delay: Duration, _ action: @escaping @Sendable () -> Void) {
        item = DispatchWorkItem(block: action)
        DispatchQueue.global().asyncAfter(deadline: .now() + dispatchInterval(delay), execute: item)
    }

    func cancel() { item.cancel() }
}

// MARK: - Output

/// Copies a pipe into a log on a dedicated thread, in bounded chunks, until end of file: the
/// script can never block on a full pipe, and memory stays at one buffer however much it
/// prints.
final class ScriptOutputDrain: Sendable {
    let ended = OneShotEvent()

    static func start(readEnd: Int32, log: RotatingLog?) -> ScriptOutputDrain {
        let drain = ScriptOutputDrain()
        let thread = Thread {
            let chunkSize = 64 * 1024
            let buffer = UnsafeMutableRawPointer.allocate(byteCount: chunkSize, alignment: 16)
            defer {
                buffer.deallocate()
                close(readEnd)
                drain.ended.fire()
            }
            while true {
                let count = read(readEnd, buffer, chunkSize)
                if count > 0 {
                    log?.append(UnsafeRawBufferPointer(start: buffer, count: count))
                } else if count < 0 && (errno == EINTR || errno == EAGAIN) {
                    continue
                } else {
                    return
                }
            }
        }
        thread.name = "script-output"
        thread.stackSize = 256 * 1024
        thread.start()
        return drain
    }
}

// MARK: - Process groups

enum ScriptProcessGroup {
    /// Signals every process of the group led by `leader`. Never addresses "all processes"
    /// or the caller's own group, whatever the value.
    static func signal(_ leader: Int32, _ signal: Int32) {
        guard leader > 1 else { return }
        _ = kill(-leader, signal)
    }

    /// Whether a live process is still in the group. Zombies do not count: they are dead
    /// already, and reparented ones wait for init, which may reap them slowly.
    static func exists(_ leader: Int32) -> Bool {
        guard leader > 1 else { return false }
        guard kill(-leader, 0) == 0 || errno == EPERM else { return false }
        return hasLiveMember(leader)
    }

    private static func hasLiveMember(_ group: Int32) -> Bool {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else {
            return true  // cannot tell: assume the worst
        }
        for entry in entries where entry.first?.isNumber == true {
            guard let stat = try? String(contentsOfFile: "/proc/\(entry)/stat", encoding: .utf8),
                let commandEnd = stat.lastIndex(of: ")")
            else { continue }
            // After "pid (command)": state, parent pid, process group, …
            let fields = stat[stat.index(after: commandEnd)...].split(separator: " ", maxSplits: 3)
            guard fields.count >= 3, Int32(fields[2]) == group else { continue }
            if fields[0] != "Z" && fields[0] != "X" { return true }
        }
        return false
    }
}

// MARK: - Launch failures

/// Turns a failed launch into one line that names the path and the real cause: the
/// underlying error alone cannot tell "missing" from "not executable" from "bad #! line".
enum ScriptLaunchDiagnosis {
    static func reason(executable: String, workingDirectory: String?, error: any Error) -> String {
        if let folder = workingDirectory {
            var info = stat()
            if stat(folder, &info) != 0 {
                return "cannot run \(executable): working directory \(folder): \(errnoText())"
            }
            if info.st_mode & S_IFMT != S_IFDIR {
                return "cannot run \(executable): working directory \(folder): Not a directory"
            }
        }
        var info = stat()
        guard stat(executable, &info) == 0 else {
            return "cannot run \(executable): \(errnoText())"
        }
        if info.st_mode & S_IFMT == S_IFDIR {
            return "cannot run \(executable): Is a directory"
        }
        if info.st_mode & S_IFMT != S_IFREG {
            return "cannot run \(executable): not a regular file"
        }
        if access(executable, X_OK) != 0 || info.st_mode & 0o111 == 0 {
            return "cannot run \(executable): Permission denied (the file is not executable)"
        }
        if let firstLine = firstLine(of: executable) {
            if firstLine.hasPrefix("#!") {
                let interpreterLine = firstLine.dropFirst(2).drop(while: { $0 == " " || $0 == "\t" })
                let interpreter = String(interpreterLine.prefix(while: { $0 != " " && $0 != "\t" }))
                if interpreter.hasSuffix("\r") {
                    return "cannot run \(executable): bad interpreter \(interpreter.dropLast().debugDescription)"
                        + "\\r: the script has Windows (CRLF) line endings"
                }
                var interpreterInfo = stat()
                if stat(interpreter, &interpreterInfo) != 0 {
                    return "cannot run \(executable): bad interpreter \(interpreter): \(errnoText())"
                }
                if access(interpreter, X_OK) != 0 {
                    return "cannot run \(executable): bad interpreter \(interpreter): \(errnoText())"
                }
            } else if !firstLine.hasPrefix("\u{7F}ELF") {
                return "cannot run \(executable): Exec format error (no #! line at the top of the script?)"
            }
        }
        return "cannot run \(executable): \(describe(error))"
    }

    private static func firstLine(of path: String) -> String? {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return nil }
        defer { close(descriptor) }
        var bytes = [UInt8](repeating: 0, count: 256)
        let count = bytes.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
        guard count > 0 else { return nil }
        let line = bytes[..<count].prefix(while: { $0 != UInt8(ascii: "\n") })
        return String(decoding: line, as: UTF8.self)
    }

    private static func describe(_ error: any Error) -> String {
        if let subprocessError = error as? SubprocessError {
            if let underlying = subprocessError.underlyingError {
                return "\(underlying)"
            }
            return "\(subprocessError)"
        }
        return "\(error)"
    }
}

// MARK: - Formatting

fileprivate func errnoText(_ code: Int32 = errno) -> String {
    String(cString: strerror(code))
}

fileprivate func logTimestamp(_ date: Date = Date()) -> String {
    date.formatted(.iso8601)
}

fileprivate func dispatchInterval(_ duration: Duration) -> DispatchTimeInterval {
    let (seconds, attoseconds) = duration.components
    guard seconds >= 0 else { return .nanoseconds(0) }
    let nanoseconds = seconds.multipliedReportingOverflow(by: 1_000_000_000)
    guard !nanoseconds.overflow, nanoseconds.partialValue < Int64(Int.max / 2) else { return .never }
    return .nanoseconds(Int(nanoseconds.partialValue + attoseconds / 1_000_000_000))
}

fileprivate func formatSeconds(_ duration: Duration) -> String {
    let milliseconds = duration.inMilliseconds
    if milliseconds % 1000 == 0 { return "\(milliseconds / 1000)s" }
    return String(format: "%.3fs", Double(milliseconds) / 1000)
}

fileprivate func signalName(_ signal: Int32) -> String {
    switch signal {
    case SIGHUP: "SIGHUP"
    case SIGINT: "SIGINT"
    case SIGQUIT: "SIGQUIT"
    case SIGILL: "SIGILL"
    case SIGABRT: "SIGABRT"
    case SIGBUS: "SIGBUS"
    case SIGFPE: "SIGFPE"
    case SIGKILL: "SIGKILL"
    case SIGUSR1: "SIGUSR1"
    case SIGSEGV: "SIGSEGV"
    case SIGUSR2: "SIGUSR2"
    case SIGPIPE: "SIGPIPE"
    case SIGALRM: "SIGALRM"
    case SIGTERM: "SIGTERM"
    default: "signal \(signal)"
    }
}
