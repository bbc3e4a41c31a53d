import Foundation
import Synchronization
import UnderstudyModel

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// One run of a forced-stop agent's program (ipmitool, a user script): spawned with
/// `SpawnedProcess` (own process group, reaped on its own PID), its standard output and error
/// read while it runs and kept up to a bound, killed with its whole process group at the
/// deadline or when the calling task is cancelled. The waiting happens on a thread of its own,
/// never on the cooperative pool.
struct FencingCommand: Sendable {
    var arguments: [String]
    var environment: [String: String]
    /// Standard error into the same capture as standard output (a script's log), or apart
    /// (ipmitool: the answer on standard output, the reason of a failure on standard error).
    var mergeError: Bool
    /// How much of each stream is kept (the rest is read and dropped).
    var captureLimit: Int = 16 * 1024

    struct Result: Sendable {
        enum Ending: Sendable, Equatable {
            case exited(Int32)
            /// Killed at the deadline, with its process group.
            case timedOut
            /// Killed because the caller was cancelled (the daemon stopping).
            case cancelled
            /// Never ran: the reason names the program and the cause.
            case launchFailed(String)
        }
        var ending: Ending
        var output: String
        var error: String
        var elapsed: Duration

        var succeeded: Bool { ending == .exited(0) }
    }

    /// Runs to the end, or to `deadline`.
    func run(until deadline: ContinuousClock.Instant) async -> Result {
        let cancelled = CancelFlag()
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Result, Never>) in
                let thread = Thread {
                    continuation.resume(returning: runBlocking(until: deadline, cancelled: cancelled))
                }
                thread.name = "understudy-fencing"
                thread.stackSize = 512 * 1024
                thread.start()
            }
        } onCancel: {
            cancelled.set()
        }
    }

    private final class CancelFlag: Sendable {
        private let value = Mutex(false)
        func set() { value.withLock { $0 = true } }
        var isSet: Bool { value.withLock { $0 } }
    }

    private func runBlocking(until deadline: ContinuousClock.Instant, cancelled: CancelFlag) -> Result {
        let started = ContinuousClock.now
        func failed(_ reason: String) -> Result {
            Result(ending: .launchFailed(reason), output: "", error: "", elapsed: ContinuousClock.now - started)
        }
        guard let outPipe = SpawnedProcess.closeOnExecPipe() else { return failed("pipe: \(String(cString: strerror(errno)))") }
        guard let errPipe = mergeError ? outPipe : SpawnedProcess.closeOnExecPipe() else {
            close(outPipe.read)
            close(outPipe.write)
            return failed("pipe: \(String(cString: strerror(errno)))")
        }
        var readEnds = [outPipe.read]
        if !mergeError { readEnds.append(errPipe.read) }
        defer { for fd in readEnds { close(fd) } }
        let child: SpawnedProcess
        do {
            child = try SpawnedProcess.spawn(
                arguments, environment: environment, input: .null, output: .descriptor(outPipe.write),
                error: .descriptor(errPipe.write))
        } catch {
            close(outPipe.write)
            if !mergeError { close(errPipe.write) }
            return failed(error.description)
        }
        close(outPipe.write)
        if !mergeError { close(errPipe.write) }

        var captured: [[UInt8]] = readEnds.map { _ in [] }
        var open = readEnds.map { _ in true }
        var buffer = [UInt8](repeating: 0, count: 16 * 1024)
        var ending: Result.Ending?
        var endedAt: ContinuousClock.Instant?
        while true {
            var quiet = true
            if open.contains(true) {
                var pollers = readEnds.indices.map { index in
                    pollfd(fd: open[index] ? readEnds[index] : -1, events: Int16(POLLIN), revents: 0)
                }
                if poll(&pollers, nfds_t(pollers.count), 50) > 0 {
                    for index in pollers.indices where open[index] && pollers[index].revents != 0 {
                        let count = buffer.withUnsafeMutableBytes { read(readEnds[index], $0.baseAddress, $0.count) }
                        if count > 0 {
                            quiet = false
                            let room = max(0, captureLimit - captured[index].count)
                            captured[index] += buffer[0..<min(count, room)]
                        } else if count == 0 || (errno != EINTR && errno != EAGAIN) {
                            open[index] = false
                        }
                    }
                }
            } else {
                // Both streams closed (the program closed them, or it ended): only its end is awaited.
                usleep(20_000)
            }
            if ending == nil, child.isRunning {
                if cancelled.isSet {
                    ending = .cancelled
                    child.signal(SIGKILL)
                } else if ContinuousClock.now >= deadline {
                    ending = .timedOut
                    child.signal(SIGKILL)
                }
            }
            // Ended, with a pipe perhaps still held by something it left behind: what is
            // written is drained (a last 100 ms, at most 1 s if it keeps writing), then the
            // caller goes on.
            if !child.isRunning {
                if !open.contains(true) { break }
                let ended = endedAt ?? ContinuousClock.now
                endedAt = ended
                let since = ContinuousClock.now - ended
                if (quiet && since > .milliseconds(100)) || since > .seconds(1) { break }
            }
        }
        let code = child.waitForExit()
        return Result(
            ending: ending ?? .exited(code), output: String(decoding: captured[0], as: UTF8.self),
            error: captured.count > 1 ? String(decoding: captured[1], as: UTF8.self) : "",
            elapsed: ContinuousClock.now - started)
    }
}

extension Duration {
    /// "1.5 s", "30 s": for details and logs.
    var fencingText: String {
        let milliseconds = inMilliseconds
        if milliseconds % 1000 == 0 { return "\(milliseconds / 1000) s" }
        return String(format: "%.1f s", Double(milliseconds) / 1000)
    }
}
