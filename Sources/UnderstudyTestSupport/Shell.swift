import Foundation
import UnderstudyNode

#if canImport(Glibc)
    import Glibc
#endif

/// A short command run to its end by tests (losetup, mkfs, e2fsck, openssl …): its exit status
/// and what it printed (standard output and error together, for failure messages).
///
/// Spawned with `posix_spawn` and reaped with `waitpid` on its own PID (`SpawnedProcess`), not
/// with Foundation's `Process`, whose exits go unseen while any child that closed its inherited
/// descriptors runs (SpawnedProcess.swift says why).
public enum Shell {
    public struct Outcome: Sendable {
        public let status: Int32
        public let output: String
        public var ok: Bool { status == 0 }
    }

    /// Runs `arguments` (the command found in PATH); a command that cannot start is status 127.
    public static func run(_ arguments: [String]) -> Outcome {
        let outcome = SpawnedProcess.run(arguments)
        return Outcome(status: outcome.status, output: outcome.output)
    }
}
