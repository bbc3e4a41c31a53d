import Foundation

/// A short command run to its end by tests (losetup, mkfs, e2fsck …): its exit status and what
/// it printed (standard output and error together, for failure messages).
public enum Shell {
    public struct Outcome: Sendable {
        public let status: Int32
        public let output: String
        public var ok: Bool { status == 0 }
    }

    /// Runs `arguments` (the command found in PATH); a command that cannot start is status 127.
    public static func run(_ arguments: [String]) -> Outcome {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        do { try process.run() } catch { return Outcome(status: 127, output: "\(error)") }
        // Read before waiting: a command printing more than a pipe holds would never end.
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return Outcome(status: process.terminationStatus, output: output)
    }
}
