import Foundation

#if canImport(Glibc)
    import Glibc
#endif

extension Process {
    /// Ends a server a test started, by its PID, without an unbounded wait: `signal` first
    /// (SIGTERM gives it `grace` to clean up), then SIGKILL, each followed by a bounded poll.
    /// `waitUntilExit` is not used: with other code in the test process reaping children
    /// (Subprocess's monitor), Foundation can miss an exit and wait forever (it once held a
    /// cooperative thread of the whole unit run). A child that is a zombie has ended.
    public func stopBounded(signal: Int32 = SIGKILL, grace: Duration = .seconds(5)) {
        let pid = processIdentifier
        guard pid > 0 else { return }
        func ended() -> Bool {
            guard isRunning else { return true }
            guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8) else { return true }
            // The state follows the command name in parentheses: "Z" is a zombie, "X" dead.
            guard let close = stat.lastIndex(of: ")") else { return false }
            let state = stat[stat.index(after: close)...].trimmingCharacters(in: .whitespaces).prefix(1)
            return state == "Z" || state == "X"
        }
        func poll(_ limit: Duration) -> Bool {
            let deadline = ContinuousClock.now + limit
            while ContinuousClock.now < deadline {
                if ended() { return true }
                usleep(20_000)
            }
            return ended()
        }
        if ended() { return }
        kill(pid, signal)
        if poll(signal == SIGKILL ? .seconds(5) : grace) { return }
        kill(pid, SIGKILL)
        _ = poll(.seconds(5))
    }
}
