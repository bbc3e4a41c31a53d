import Foundation
import Testing
import UnderstudyWeb

/// `understudy user add|passwd|list|remove` on a users file, as an administrator runs them.
@Suite("Process: understudy user")
struct UserCommandTests {
    func run(_ shell: String, in folder: String) async throws -> CommandOutcome {
        let binary = try ProcessTestPaths.requireBinary()
        return try await CommandRunner.run("/bin/sh", ["-c", shell.replacingOccurrences(of: "BIN", with: "'\(binary)'")], scratch: folder)
    }

    @Test("add, passwd, list, remove; refusals with exit codes; hashes only, mode 0600")
    func lifecycle() async throws {
        try await withScratchFolder { folder in
            let file = folder + "/users.yaml"
            var outcome = try await run("printf 'first-pass-1\\n' | BIN user add alice --role operator --users-file '\(file)'", in: folder)
            #expect(outcome.exitCode == 0, "\(outcome)")
            outcome = try await run("printf 'second-pass-2\\n' | BIN user add bob --role viewer --users-file '\(file)'", in: folder)
            #expect(outcome.exitCode == 0, "\(outcome)")
            outcome = try await run("printf 'again-pass-3\\n' | BIN user add alice --role viewer --users-file '\(file)'", in: folder)
            #expect(outcome.exitCode == 1 && outcome.standardError.contains("exists"), "\(outcome)")
            outcome = try await run("printf 'short\\n' | BIN user add carol --role viewer --users-file '\(file)'", in: folder)
            #expect(outcome.exitCode == 2 && outcome.standardError.contains("at least 8"), "\(outcome)")
            outcome = try await run("printf 'whatever-1\\n' | BIN user add carol --role boss --users-file '\(file)'", in: folder)
            #expect(outcome.exitCode == 2, "\(outcome)")
            outcome = try await run("printf 'whatever-1\\n' | BIN user add 'bad:name' --role viewer --users-file '\(file)'", in: folder)
            #expect(outcome.exitCode == 2, "\(outcome)")

            let before = try UsersFile.load(path: file)
            outcome = try await run("printf 'changed-pass-4\\n' | BIN user passwd alice --role viewer --users-file '\(file)'", in: folder)
            #expect(outcome.exitCode == 0, "\(outcome)")
            let after = try UsersFile.load(path: file)
            #expect(after.first?.role == .viewer)
            #expect(after.first?.password.verify("changed-pass-4") == true)
            #expect(after.first?.password != before.first?.password)
            #expect(after.last?.password.verify("second-pass-2") == true)
            outcome = try await run("printf 'changed-pass-4\\n' | BIN user passwd nobody --users-file '\(file)'", in: folder)
            #expect(outcome.exitCode == 1, "\(outcome)")

            outcome = try await run("BIN user list --users-file '\(file)'", in: folder)
            #expect(outcome.outputLines == ["alice\tviewer", "bob\tviewer"], "\(outcome)")
            outcome = try await run("BIN user remove bob --users-file '\(file)'", in: folder)
            #expect(outcome.exitCode == 0, "\(outcome)")
            outcome = try await run("BIN user remove bob --users-file '\(file)'", in: folder)
            #expect(outcome.exitCode == 1, "\(outcome)")
            outcome = try await run("BIN user list --users-file '\(file)'", in: folder)
            #expect(outcome.outputLines == ["alice\tviewer"], "\(outcome)")

            let text = try String(contentsOfFile: file, encoding: .utf8)
            for password in ["first-pass-1", "second-pass-2", "changed-pass-4"] { #expect(!text.contains(password)) }
            #expect((try FileManager.default.attributesOfItem(atPath: file)[.posixPermissions] as? Int) == 0o600)

            // A users file with a mistake is named with its line and key, and nothing is written.
            try "users:\n  - name: x\n    role: admin\n".write(toFile: file, atomically: true, encoding: .utf8)
            outcome = try await run("BIN user list --users-file '\(file)'", in: folder)
            #expect(outcome.exitCode == 2 && outcome.standardError.contains("users.yaml:3:11: users[0].role"), "\(outcome)")
        }
    }
}
