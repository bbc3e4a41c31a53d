import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// A failure of the test machinery itself (a wait that timed out, a command that hung),
/// with everything that helps to understand it in the message.
struct ProcessTestError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Where the package and the `understudy` binary built by SwiftPM are.
enum ProcessTestPaths {
    /// `<package>/Tests/UnderstudyProcessTests/Support/CommandRunner.swift` → `<package>`.
    static let packageRoot: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<4 { url.deleteLastPathComponent() }
        return url.path
    }()

    static var binary: String { packageRoot + "/.build/debug/understudy" }

    /// The binary, or a clear error telling how to build it.
    static func requireBinary() throws -> String {
        guard FileManager.default.isExecutableFile(atPath: binary) else {
            throw ProcessTestError("\(binary) is missing: build it first with `swift build --build-tests`.")
        }
        return binary
    }
}

/// What a finished command printed and how it ended.
struct CommandOutcome: CustomStringConvertible {
    var arguments: [String]
    var exitCode: Int32
    var standardOutput: String
    var standardError: String

    var description: String {
        "`\(arguments.joined(separator: " "))` exited \(exitCode)\n--- stdout\n\(standardOutput)--- stderr\n\(standardError)---"
    }

    var outputLines: [String] { standardOutput.split(separator: "\n", omittingEmptySubsequences: true).map(String.init) }
}

/// Runs short-lived commands (the CLI) with a bounded wait; output goes through files in a
/// scratch folder so a chatty command can never block on a full pipe.
enum CommandRunner {
    private static let counter = Atomic<Int>(0)

    /// The environment of every command the tests start: the test process's own, without
    /// `UNDERSTUDY_STATE_DIR` (each call names its daemon with `--state-dir`).
    static var environment: [String: String] {
        var environment = ProcessInfo.processInfo.environment
        environment["UNDERSTUDY_STATE_DIR"] = nil
        return environment
    }

    static func run(
        _ executable: String, _ arguments: [String], scratch: String, timeout: Duration = .seconds(30)
    ) async throws -> CommandOutcome {
        let number = counter.wrappingAdd(1, ordering: .relaxed).oldValue
        let outputPath = scratch + "/command-\(number).out"
        let errorPath = scratch + "/command-\(number).err"
        _ = FileManager.default.createFile(atPath: outputPath, contents: nil)
        _ = FileManager.default.createFile(atPath: errorPath, contents: nil)
        guard let output = FileHandle(forWritingAtPath: outputPath), let error = FileHandle(forWritingAtPath: errorPath) else {
            throw ProcessTestError("cannot create output files in \(scratch)")
        }
        defer {
            try? output.close()
            try? error.close()
            try? FileManager.default.removeItem(atPath: outputPath)
            try? FileManager.default.removeItem(atPath: errorPath)
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.environment = environment
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = output
        process.standardError = error
        try process.run()
        let deadline = ContinuousClock.now + timeout
        while process.isRunning {
            if ContinuousClock.now >= deadline {
                kill(process.processIdentifier, SIGKILL)
                process.waitUntilExit()
                let shown = ([executable] + arguments).joined(separator: " ")
                throw ProcessTestError("`\(shown)` did not finish within \(timeout); killed")
            }
            do {
                try await Task.sleep(for: .milliseconds(10))
            } catch {
                // Cancelled (the test is ending): the command must not outlive it.
                kill(process.processIdentifier, SIGKILL)
                process.waitUntilExit()
                throw error
            }
        }
        let printed = (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
        let complained = (try? String(contentsOfFile: errorPath, encoding: .utf8)) ?? ""
        let code = process.terminationReason == .exit ? process.terminationStatus : 128 + process.terminationStatus
        return CommandOutcome(
            arguments: [(executable as NSString).lastPathComponent] + arguments, exitCode: code,
            standardOutput: printed, standardError: complained)
    }
}

/// Bounded polling: every `interval` until `condition` holds or `timeout` has passed.
func poll(
    every interval: Duration = .milliseconds(50), upTo timeout: Duration, _ condition: () async throws -> Bool
) async throws -> Bool {
    let deadline = ContinuousClock.now + timeout
    while true {
        if try await condition() { return true }
        if ContinuousClock.now >= deadline { return false }
        try await Task.sleep(for: interval)
    }
}
