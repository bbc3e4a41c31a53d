import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A short command run to its end by tests (losetup, mkfs, e2fsck, openssl …): its exit status
/// and what it printed (standard output and error together, for failure messages).
///
/// Spawned with `posix_spawn` and reaped with `waitpid` on its own PID, not with Foundation's
/// `Process`: several tests waiting in `Process.waitUntilExit` at once on the two threads of
/// the test runner's pool once missed their children's exits and hung the whole unit run.
public enum Shell {
    public struct Outcome: Sendable {
        public let status: Int32
        public let output: String
        public var ok: Bool { status == 0 }
    }

    /// Runs `arguments` (the command found in PATH); a command that cannot start is status 127.
    public static func run(_ arguments: [String]) -> Outcome {
        guard let command = arguments.first else { return Outcome(status: 127, output: "no command") }
        var fds: [Int32] = [0, 0]
        // Close-on-exec: a server another test spawns meanwhile must not inherit the write end
        // (this read would then wait for that server's end).
        guard pipe(&fds) == 0 else { return Outcome(status: 127, output: "pipe: \(String(cString: strerror(errno)))") }
        let (readEnd, writeEnd) = (fds[0], fds[1])
        _ = fcntl(readEnd, F_SETFD, FD_CLOEXEC)
        _ = fcntl(writeEnd, F_SETFD, FD_CLOEXEC)
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, writeEnd, 1)
        posix_spawn_file_actions_adddup2(&actions, writeEnd, 2)
        posix_spawn_file_actions_addclose(&actions, readEnd)
        posix_spawn_file_actions_addclose(&actions, writeEnd)
        // The child starts with no signal blocked (the test runner's threads block some).
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var none = sigset_t()
        sigemptyset(&none)
        posix_spawnattr_setsigmask(&attributes, &none)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK))
        let argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        var pid: pid_t = 0
        let spawned = posix_spawnp(&pid, command, &actions, &attributes, argv, environ)
        close(writeEnd)
        guard spawned == 0 else {
            close(readEnd)
            return Outcome(status: 127, output: "\(command): \(String(cString: strerror(spawned)))")
        }
        // Read before waiting: a command printing more than a pipe holds would never end.
        var output: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(readEnd, $0.baseAddress, $0.count) }
            if count > 0 {
                output += buffer[0..<count]
            } else if count < 0 && errno == EINTR {
                continue
            } else {
                break
            }
        }
        close(readEnd)
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        // WIFEXITED / WEXITSTATUS, WTERMSIG as 128 + signal (as a shell reports it).
        let exited = status & 0x7F == 0
        let code = exited ? (status >> 8) & 0xFF : 128 + (status & 0x7F)
        return Outcome(status: code, output: String(decoding: output, as: UTF8.self))
    }
}
