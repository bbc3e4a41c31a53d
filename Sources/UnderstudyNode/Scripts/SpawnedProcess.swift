import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// A child process spawned with `posix_spawn` and reaped with `waitpid` on its own PID.
///
/// Why not Foundation's `Process`: on Linux it learns of a child's exit through a socket the
/// child inherits, and one manager thread then waits for that child with a *blocking*
/// `waitpid`. A child that closes its inherited descriptors while it runs (any daemon-like
/// program does) wakes that thread early and holds it until the child exits; meanwhile no
/// other `Process` in the whole program is seen to end (`waitUntilExit` never returns,
/// `isRunning` stays true). Measured: `/bin/true` took 5.5 s to be seen as exited while a
/// Python child that had closed its descriptors slept 6 s. It hung the unit tests, and the
/// daemon's keeper supervision, power commands and blkid depended on the same thread.
///
/// Every child here starts with no signal blocked, in a process group of its own, with only
/// descriptors 0–2 open (close-on-exec for the rest, so a server started meanwhile inherits
/// nothing of another child's pipes).
public final class SpawnedProcess: Sendable {
    public let pid: pid_t
    /// The raw wait status once reaped.
    private let status = Mutex<Int32?>(nil)

    /// What a child's standard input, output or error is.
    public enum Stream: Sendable {
        /// /dev/null.
        case null
        /// This process's own.
        case inherit
        /// A descriptor of this process (duplicated onto the child's).
        case descriptor(Int32)
    }

    public struct SpawnError: Error, CustomStringConvertible {
        public let description: String
    }

    private init(pid: pid_t) { self.pid = pid }

    /// Starts `arguments` (an absolute path, or a name looked up in PATH); `executable`, when
    /// given, is the file run instead of `arguments[0]` (which stays the program's name).
    public static func spawn(
        _ arguments: [String], executable: String? = nil, environment: [String: String]? = nil, input: Stream = .null,
        output: Stream = .null, error: Stream = .null
    ) throws(SpawnError) -> SpawnedProcess {
        guard let command = executable ?? arguments.first else { throw SpawnError(description: "no command") }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        for (target, stream, mode) in [(Int32(0), input, O_RDONLY), (1, output, O_WRONLY), (2, error, O_WRONLY)] {
            switch stream {
            case .null: posix_spawn_file_actions_addopen(&actions, target, "/dev/null", mode, 0)
            case .inherit: break
            case .descriptor(let fd): posix_spawn_file_actions_adddup2(&actions, fd, target)
            }
        }
        closeOthers(&actions)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var none = sigset_t()
        sigemptyset(&none)
        posix_spawnattr_setsigmask(&attributes, &none)
        // Default dispositions too: an ignored SIGPIPE or SIGCHLD must not reach the child.
        var all = sigset_t()
        sigfillset(&all)
        posix_spawnattr_setsigdefault(&attributes, &all)
        posix_spawnattr_setpgroup(&attributes, 0)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP))
        let argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        let envp: [UnsafeMutablePointer<CChar>?]? = environment.map { $0.map { strdup("\($0.key)=\($0.value)") } + [nil] }
        defer { for pointer in envp ?? [] { free(pointer) } }
        var pid: pid_t = 0
        let result: Int32
        if let envp {
            result = envp.withUnsafeBufferPointer { posix_spawnp(&pid, command, &actions, &attributes, argv, $0.baseAddress) }
        } else {
            result = posix_spawnp(&pid, command, &actions, &attributes, argv, environ)
        }
        guard result == 0 else { throw SpawnError(description: "\(command): \(String(cString: strerror(result)))") }
        return SpawnedProcess(pid: pid)
    }

    /// Whether the child still runs (reaping it when it has ended).
    public var isRunning: Bool { reap(blocking: false) == nil }

    /// The exit code once ended: the status, or 128 + the signal that ended it (as a shell
    /// reports it); nil while it runs.
    public var exitCode: Int32? { reap(blocking: false).map(Self.code) }

    /// Waits for the end; the exit code as `exitCode`.
    @discardableResult
    public func waitForExit() -> Int32 { Self.code(reap(blocking: true) ?? 0) }

    /// Waits at most `timeout`; nil when it still runs.
    public func waitForExit(within timeout: Duration) -> Int32? {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let code = exitCode { return code }
            usleep(5_000)
        }
        return exitCode
    }

    /// Sends `signal` to the child (and its process group: what it started goes too), unless
    /// it was reaped already (its PID may then belong to another process).
    public func signal(_ signal: Int32 = SIGTERM, group: Bool = true) {
        status.withLock { status in
            guard status == nil else { return }
            _ = kill(group ? -pid : pid, signal)
        }
    }

    private func reap(blocking: Bool) -> Int32? {
        status.withLock { status in
            if let status { return status }
            var raw: Int32 = 0
            while true {
                let result = waitpid(pid, &raw, blocking ? 0 : WNOHANG)
                if result == pid {
                    status = raw
                    return raw
                }
                if result < 0 && errno == EINTR { continue }
                // 0: still running; ECHILD: reaped elsewhere (counted as ended, status unknown).
                if result < 0 && errno == ECHILD {
                    status = 0
                    return 0
                }
                return nil
            }
        }
    }

    private static func code(_ raw: Int32) -> Int32 {
        raw & 0x7F == 0 ? (raw >> 8) & 0xFF : 128 + (raw & 0x7F)
    }

    // MARK: - Running to the end

    public struct Outcome: Sendable {
        public let status: Int32
        public let output: String
        public var ok: Bool { status == 0 }
    }

    /// Runs `arguments` to its end and returns its exit code and output (standard output, and
    /// standard error too unless `errorToNull`). A command that cannot start is status 127; one
    /// still running after `timeout` is killed (its process group) and is status 124. Output
    /// is read while the command runs (a command printing more than a pipe holds would never
    /// end otherwise) and no longer than until it ends: something it left running in the
    /// background with the pipe open cannot hold the caller.
    public static func run(
        _ arguments: [String], environment: [String: String]? = nil, errorToNull: Bool = false, timeout: Duration? = nil
    ) -> Outcome {
        guard let (readEnd, writeEnd) = closeOnExecPipe() else {
            return Outcome(status: 127, output: "pipe: \(String(cString: strerror(errno)))")
        }
        defer { close(readEnd) }
        let child: SpawnedProcess
        do {
            child = try spawn(
                arguments, environment: environment, output: .descriptor(writeEnd), error: errorToNull ? .null : .descriptor(writeEnd))
        } catch {
            close(writeEnd)
            return Outcome(status: 127, output: error.description)
        }
        close(writeEnd)
        let deadline = timeout.map { ContinuousClock.now + $0 }
        var output: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65_536)
        var timedOut = false
        var endedAt: ContinuousClock.Instant?
        while true {
            var poller = pollfd(fd: readEnd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&poller, 1, 50)
            var quiet = ready == 0
            if ready > 0 {
                let count = buffer.withUnsafeMutableBytes { read(readEnd, $0.baseAddress, $0.count) }
                if count == 0 { break }
                if count > 0 {
                    output += buffer[0..<count]
                } else if errno != EINTR && errno != EAGAIN {
                    break
                } else {
                    quiet = true
                }
            }
            if let deadline, ContinuousClock.now >= deadline, child.isRunning {
                timedOut = true
                child.signal(SIGKILL)
            }
            // Ended, with the pipe still held by something it left behind: what is already
            // written is drained (a last 100 ms, at most 1 s if it keeps writing), then the
            // caller goes on.
            if !child.isRunning {
                let ended = endedAt ?? ContinuousClock.now
                endedAt = ended
                let since = ContinuousClock.now - ended
                if (quiet && since > .milliseconds(100)) || since > .seconds(1) { break }
            }
        }
        let code = child.waitForExit()
        return Outcome(status: timedOut ? 124 : code, output: String(decoding: output, as: UTF8.self))
    }

    // MARK: - Descriptors

    /// A pipe whose ends are close-on-exec (set at once after `pipe`: glibc's `pipe2` is not
    /// visible to Swift; every child spawned here or by Subprocess closes what it did not ask
    /// for anyway).
    public static func closeOnExecPipe() -> (read: Int32, write: Int32)? {
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { return nil }
        _ = fcntl(fds[0], F_SETFD, FD_CLOEXEC)
        _ = fcntl(fds[1], F_SETFD, FD_CLOEXEC)
        return (fds[0], fds[1])
    }

    /// Closes every descriptor above 2 in the child: glibc's `addclosefrom_np` (2.34) where it
    /// exists, else each open descriptor listed in /proc/self/fd.
    private static func closeOthers(_ actions: inout posix_spawn_file_actions_t) {
        if let closefrom = addClosefrom {
            _ = closefrom(&actions, 3)
            return
        }
        let listed = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
        for fd in listed.compactMap({ Int32($0) }) where fd > 2 {
            posix_spawn_file_actions_addclose(&actions, fd)
        }
    }

    private typealias AddClosefrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32
    private static let addClosefrom: AddClosefrom? = {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "posix_spawn_file_actions_addclosefrom_np") else { return nil }
        return unsafeBitCast(symbol, to: AddClosefrom.self)
    }()
}
