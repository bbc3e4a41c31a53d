import Foundation
import Testing
import UnderstudyModel

@testable import UnderstudyNode

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

@Suite("ScriptRunner")
struct ScriptRunnerTests {
    let runner = ScriptRunner(killGrace: .milliseconds(300))
    let environment = ScriptEnvironment.base()

    func invocation(
        _ path: String, timeout: Duration? = .seconds(5), log: ScriptLog? = nil,
        environment: [String: String]? = nil
    ) -> ScriptInvocation {
        ScriptInvocation(
            executable: path, environment: environment ?? self.environment, timeout: timeout, log: log)
    }

    // MARK: Synchronous runs

    @Test func exitCodeZero() async throws {
        try await withTemporaryFolder { (folder: String) async throws in
            let script = try writeScript(folder, "ok.sh", "exit 0")
            #expect(await runner.run(invocation(script)) == .exited(0))
        }
    }

    /// Near the descriptor limit a launch fails with a reason instead of reaching Subprocess,
    /// which stops the whole daemon (a fatal error) when it runs out of descriptors mid-launch
    /// (seen with 1,000 groups started at once). A tiny limit stands for a nearly full table.
    @Test func launchNearTheDescriptorLimitFailsWithAReason() async throws {
        try await withTemporaryFolder { (folder: String) async throws in
            let script = try writeScript(folder, "ok.sh", "exit 0")
            var tight = runner
            tight.descriptorLimit = 16
            let outcome = await tight.run(invocation(script))
            guard case .launchFailed(let reason) = outcome else {
                Issue.record("launched near the limit: \(outcome)")
                return
            }
            #expect(reason.contains("too many open files") && reason.contains("of a limit of 16"), "\(reason)")
            // With room to spare it runs.
            var roomy = runner
            roomy.descriptorLimit = 1_000_000
            #expect(await roomy.run(invocation(script)) == .exited(0))
            #expect(ScriptRunner.descriptorLimit().map { $0 > ScriptRunner.descriptorReserve } ?? true)
        }
    }

    @Test func exitCodeThree() async throws {
        try await withTemporaryFolder { (folder: String) async throws in
            let script = try writeScript(folder, "fail.sh", "exit 3")
            let outcome = await runner.run(invocation(script))
            #expect(outcome == .exited(3))
            #expect(!outcome.isSuccess)
        }
    }

    @Test func killedBySignal() async throws {
        try await withTemporaryFolder { (folder: String) async throws in
            let script = try writeScript(folder, "suicide.sh", "kill -KILL $$")
            #expect(await runner.run(invocation(script)) == .signaled(SIGKILL))
        }
    }

    @Test func environmentIsExactlyTheGivenOne() async throws {
        try await withTemporaryFolder { (folder: String) async throws in
            // Something in the daemon's own environment that must not reach scripts.
            setenv("UNDERSTUDY_DAEMON_ONLY", "leak", 1)
            let host = HostFacts(productVersion: "1.2.3", installPath: "/opt/understudy", osName: "TestOS", osVersion: "9")
            let context = ScriptContext(
                event: .failover, isHomeServer: false, priority: 2, groupName: "failover1",
                resourceName: "exec1", factor: .groupStop, lastAction: LastAction.none)
            let expected = ScriptEnvironment.compose(
                base: ScriptEnvironment.base(home: "/root"), host: host, context: context, asyncStartPID: 4242)
            let logPath = folder + "/env.log"
            let log = RotatingLog(path: logPath)
            let outcome = await runner.run(
                ScriptInvocation(
                    executable: "/usr/bin/env", environment: expected, timeout: .seconds(5),
                    log: ScriptLog(file: log, action: "stop")))
            #expect(outcome == .exited(0))

            let lines = try String(contentsOfFile: logPath, encoding: .utf8)
                .split(separator: "\n").map(String.init)
                .filter { !$0.hasPrefix("--- ") }
            var seen: [String: String] = [:]
            for line in lines {
                guard let equals = line.firstIndex(of: "=") else { continue }
                seen[String(line[..<equals])] = String(line[line.index(after: equals)...])
            }
            // Exactly the given variables, plus the daemon's instance token (for its keeper).
            #expect(seen == expected.merging([DaemonInstance.variable: DaemonInstance.token]) { given, _ in given })
            #expect(seen["CLP_EVENT"] == "FAILOVER")
            #expect(seen["CLP_FACTOR"] == "GROUPSTOP")
            #expect(seen["CLP_LASTACTION"] == "NONE")
            #expect(seen["CLP_PID"] == "4242")
            #expect(seen["CLP_VERSION_FULL"] == "1.2.3")
            #expect(seen["PATH"] == ScriptEnvironment.standardPath)
            #expect(seen["UNDERSTUDY_DAEMON_ONLY"] == nil)
        }
    }

    @Test func workingDirectoryAndArguments() async throws {
        try await withTemporaryFolder { (folder: String) async throws in
            try writeScript(folder, "args.sh", #"pwd > out.txt; echo "$1|$2" >> out.txt"#)
            let outcome = await runner.run(
                ScriptInvocation(
                    executable: "args.sh", arguments: ["one", "two words"], environment: environment,
                    workingDirectory: folder, timeout: .seconds(5)))
            #expect(outcome == .exited(0))
            let text = try String(contentsOfFile: folder + "/out.txt", encoding: .utf8)
            let realFolder = URL(fileURLWithPath: folder).resolvingSymlinksInPath().path
            #expect(text == "\(realFolder)\none|two words\n")
        }
    }

    @Test func stdinIsDevNull() async throws {
        try await withTemporaryFolder { (folder: String) async throws in
            // `cat` would hang on an open terminal or pipe; /dev/null gives it end of file.
            let script = try writeScript(folder, "stdin.sh", "cat; exit 7")
            #expect(await runner.run(invocation(script, timeout: .seconds(2))) == .exited(7))
        }
    }

    // MARK: Timeouts

    @Test func timeoutKillsTheScriptAndItsChildren() async throws {
        try await withTemporaryFolder { (folder: String) async throws in
            let reaper = ProcessReaper()
            defer { reaper.killAll() }
            let script = try writeScript(
                folder, "hang.sh",
                """
                sleep 1000 &
                echo $! > "\(folder)/child1.pid"
                (sleep 1000 & echo $! > "\(folder)/child2.pid"; wait) &
                wait
                """)
            let started = ContinuousClock.now
            let running = try await runner.start(invocation(script, timeout: .milliseconds(500)))
            reaper.track(running.pid)
            let child1 = await readPID(folder + "/child1.pid")
            let child2 = await readPID(folder + "/child2.pid")
            reaper.track(child1)
            reaper.track(child2)
            #expect(child1 != nil && child2 != nil)

            let outcome = await running.wait()
            let elapsed = ContinuousClock.now - started
            #expect(outcome == .timedOut(after: .milliseconds(500)))
            #expect(elapsed >= .milliseconds(500))
            // Only "killed, not left to run its 1000 s": a loaded CI machine may be slow to
            // schedule anything, so no tighter bound (speed is for benchmarks, not tests).
            #expect(elapsed < .seconds(60), "killed at its timeout, not left running: \(elapsed)")
            #expect(processIsGone(running.pid))
            for child in [child1, child2].compactMap({ $0 }) {
                #expect(processIsGone(child), "child \(child) survived the timeout")
            }
        }
    }

    @Test func timeoutEscalatesToSIGKILLWhenTERMIsIgnored() async throws {
        try await withTemporaryFolder { (folder: String) async throws in
            let reaper = ProcessReaper()
            defer { reaper.killAll() }
            // The ignored disposition is inherited by the child as well.
            let script = try writeScript(
                folder, "stubborn.sh",
                """
                trap '' TERM
                sleep 1000 &
                echo $! > "\(folder)/child.pid"
                while true; do sleep 0.05; done
                """)
            let started = ContinuousClock.now
            let outcome = await runner.run(invocation(script, timeout: .milliseconds(800)))
            let elapsed = ContinuousClock.now - started
            let child = await readPID(folder + "/child.pid", within: .milliseconds(100))
            reaper.track(child)
            #expect(outcome == .timedOut(after: .milliseconds(800)))
            #expect(elapsed >= .milliseconds(1100), "SIGKILL only after the grace period")
            #expect(elapsed < .seconds(60))
            if let child {
                #expect(processIsGone(child))
            }
        }
    }

    @Test func zeroTimeoutStillTerminates() async throws {
        try await withTemporaryFolder { (folder: String) async throws in
            let script = try writeScript(folder, "sleepy.sh", "sleep 1000")
            #expect(await runner.run(invocation(script, timeout: .zero)) == .timedOut(after: .zero))
        }
    }

    @Test func syncRunReturnsWhenTheScriptExitsEvenIfAChildKeepsTheOutputOpen() async throws {
        try await withTemporaryFolder { (folder: String) async throws in
            let reaper = ProcessReaper()
            defer { reaper.killAll() }
            // A start script that launches a daemon in the background and exits.
            let script = try writeScript(
                folder, "daemonize.sh",
                """
                (echo daemon says hi; sleep 1000) &
                echo $! > "\(folder)/daemon.pid"
                echo script done
                exit 0
                """)
            let logPath = folder + "/daemonize.log"
            let started = ContinuousClock.now
            let outcome = await runner.run(
                invocation(script, log: ScriptLog(file: RotatingLog(path: logPath), action: "start")))
            let daemon = await readPID(folder + "/daemon.pid")
            reaper.track(daemon)
            #expect(outcome == .exited(0))
            // Not held up by the background process (bounds are loose: CI machines stall).
            #expect(ContinuousClock.now - started < .seconds(20))
            // The background process is the script's business: it keeps running.
            if let daemon { #expect(!processIsGone(daemon)) }
            let text = try String(contentsOfFile: logPath, encoding: .utf8)
            #expect(text.contains("script done"))
            #expect(text.contains("daemon says hi"))
        }
    }

    // MARK: Asynchronous runs

    @Test func asyncStartReturnsAtOnceWithALivePID() async throws {
        try await withTemporaryFolder { (folder: String) async throws in
            let reaper = ProcessReaper()
            defer { reaper.killAll() }
            // Runs until the test says so: `start` must not wait for it.
            let script = try writeScript(
                folder, "async.sh", "while [ ! -e \"\(folder)/go\" ]; do sleep 0.01; done; exit 4")
            let started = ContinuousClock.now
            let running = try await runner.start(invocation(script, timeout: nil))
            reaper.track(running.pid)
            #expect(ContinuousClock.now - started < .seconds(20))
            #expect(running.pid > 1)
            #expect(running.isRunning)
            #expect(kill(running.pid, 0) == 0)
            #expect(running.outcome == nil)

            try "".write(toFile: folder + "/go", atomically: false, encoding: .utf8)
            #expect(await running.wait() == .exited(4))
            #expect(!running.isRunning)
            #expect(running.outcome == .exited(4))
            // Waiting again gives the same answer at once.
            #expect(await running.wait() == .exited(4))
        }
    }

    @Test func terminateKillsTheWholeProcessGroup() async throws {
        try await withTemporaryFolder { (folder: String) async throws in
            let reaper = ProcessReaper()
            defer { reaper.killAll() }
            let script = try writeScript(
                folder, "service.sh",
                """
                sleep 1000 &
                echo $! > "\(folder)/child.pid"
                wait
                """)
            let running = try await runner.start(invocation(script, timeout: nil))
            reaper.track(running.pid)
            let child = await readPID(folder + "/child.pid")
            reaper.track(child)
            #expect(child != nil)

            let started = ContinuousClock.now
            await running.terminate(grace: .seconds(30))
            #expect(ContinuousClock.now - started < .seconds(25), "SIGTERM was enough")
            #expect(!running.isRunning)
            #expect(await running.wait() == .signaled(SIGTERM))
            #expect(processIsGone(running.pid))
            if let child { #expect(processIsGone(child)) }
            // Terminating an ended script is harmless.
            await running.terminate(grace: .milliseconds(100))
        }
    }

    @Test func terminateEscalatesToSIGKILL() async throws {
        try await withTemporaryFolder { (folder: String) async throws in
            let reaper = ProcessReaper()
            defer { reaper.killAll() }
            let script = try writeScript(
                folder, "deaf.sh", "trap '' TERM\necho $$ > \"\(folder)/ready\"\nwhile true; do sleep 0.05; done")
            let running = try await runner.start(invocation(script, timeout: nil))
            reaper.track(running.pid)
            #expect(await readPID(folder + "/ready") == running.pid)  // the trap is set
            let started = ContinuousClock.now
            await running.terminate(grace: .milliseconds(300))
            let elapsed = ContinuousClock.now - started
            #expect(elapsed >= .milliseconds(300))
            #expect(elapsed < .seconds(60))
            #expect(await running.wait() == .signaled(SIGKILL))
        }
    }

    @Test func concurrentWaitersAllGetTheOutcome() async throws {
        try await withTemporaryFolder { (folder: String) async throws in
            let script = try writeScript(folder, "short.sh", "sleep 0.2; exit 5")
            let running = try await runner.start(invocation(script))
            let outcomes = await withTaskGroup(of: ScriptOutcome.self) { group in
                for _ in 0..<5 { group.addTask { await running.wait() } }
                return await group.reduce(into: []) { $0.append($1) }
            }
            #expect(outcomes == Array(repeating: .exited(5), count: 5))
        }
    }

    @Test func cancellingASyncRunTerminatesTheScript() async throws {
        try await withTemporaryFolder { (folder: String) async throws in
            let reaper = ProcessReaper()
            defer { reaper.killAll() }
            let script = try writeScript(folder, "long.sh", "echo $$ > \"\(folder)/self.pid\"; sleep 1000")
            let task = Task { await runner.run(invocation(script, timeout: nil)) }
            let pid = await readPID(folder + "/self.pid")
            reaper.track(pid)
            task.cancel()
            let outcome = await task.value
            #expect(outcome == .signaled(SIGTERM))
            if let pid { #expect(processIsGone(pid)) }
        }
    }

    // MARK: Launch failures

    @Test func missingScript() async throws {
        try await withTemporaryFolder { (folder: String) async throws in
            let path = folder + "/nope.sh"
            let outcome = await runner.run(invocation(path))
            guard case .launchFailed(let reason) = outcome else {
                Issue.record("expected launchFailed, got \(outcome)")
                return
            }
            #expect(reason.contains(path))
            #expect(reason.contains("No such file or directory"))

            await #expect(throws: ScriptLaunchError.self) {
                _ = try await runner.start(invocation(path))
            }
        }
    }

    @Test func scriptThatIsNotExecutable() async throws {
        try await withTemporaryFolder { (folder: String) async throws in
            let path = try writeScript(folder, "plain.sh", "exit 0", mode: 0o644)
            let outcome = await runner.run(invocation(path))
            guard case .launchFailed(let reason) = outcome else {
                Issue.record("expected launchFailed, got \(outcome)")
                return
            }
            #expect(reason.contains(path))
            #expect(reason.contains("not executable"))
        }
    }

    @Test func scriptWithABadInterpreter() async throws {
        try await withTemporaryFolder { (folder: String) async throws in
            let path = folder + "/bad.sh"
            try "#!/nonexistent/shell\nexit 0\n".write(toFile: path, atomically: false, encoding: .utf8)
            chmod(path, 0o755)
            let logPath = folder + "/bad.log"
            let outcome = await runner.run(
                invocation(path, log: ScriptLog(file: RotatingLog(path: logPath), action: "start")))
            guard case .launchFailed(let reason) = outcome else {
                Issue.record("expected launchFailed, got \(outcome)")
                return
            }
            #expect(reason.contains(path))
            #expect(reason.contains("bad interpreter /nonexistent/shell"))
            let text = try String(contentsOfFile: logPath, encoding: .utf8)
            #expect(text.contains("launch failed: \(reason)"))
        }
    }

    @Test func scriptWithWindowsLineEndings() async throws {
        try await withTemporaryFolder { (folder: String) async throws in
            let path = folder + "/crlf.sh"
            try "#!/bin/sh\r\nexit 0\r\n".write(toFile: path, atomically: false, encoding: .utf8)
            chmod(path, 0o755)
            guard case .launchFailed(let reason) = await runner.run(invocation(path)) else {
                Issue.record("expected launchFailed")
                return
            }
            #expect(reason.contains("CRLF"))
        }
    }

    @Test func scriptWithoutAnInterpreterLine() async throws {
        try await withTemporaryFolder { (folder: String) async throws in
            let path = folder + "/noshebang.sh"
            try "exit 0\n".write(toFile: path, atomically: false, encoding: .utf8)
            chmod(path, 0o755)
            guard case .launchFailed(let reason) = await runner.run(invocation(path)) else {
                Issue.record("expected launchFailed")
                return
            }
            #expect(reason.contains("Exec format error"))
        }
    }

    @Test func missingWorkingDirectory() async throws {
        try await withTemporaryFolder { (folder: String) async throws in
            let script = try writeScript(folder, "ok.sh", "exit 0")
            let outcome = await runner.run(
                ScriptInvocation(
                    executable: script, environment: environment, workingDirectory: folder + "/gone",
                    timeout: .seconds(1)))
            guard case .launchFailed(let reason) = outcome else {
                Issue.record("expected launchFailed, got \(outcome)")
                return
            }
            #expect(reason.contains("working directory \(folder)/gone"))
        }
    }

    // MARK: Logging

    @Test func outputLandsInTheLogBetweenHeaderAndFooter() async throws {
        try await withTemporaryFolder { (folder: String) async throws in
            let script = try writeScript(folder, "talk.sh", "echo to stdout\necho to stderr >&2\nprintf 'no newline'\nexit 2")
            let logPath = folder + "/logs/exec1.log"  // the folder does not exist yet
            let log = RotatingLog(path: logPath)
            var env = environment
            env["CLP_EVENT"] = "START"
            let outcome = await runner.run(
                invocation(script, log: ScriptLog(file: log, action: "start"), environment: env))
            #expect(outcome == .exited(2))

            let lines = try String(contentsOfFile: logPath, encoding: .utf8).split(separator: "\n").map(String.init)
            try #require(lines.count == 5)
            let header = try #require(
                lines[0].wholeMatch(of: /--- \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ start (.+) \(CLP_EVENT=START\)/))
            #expect(header.1 == script)
            #expect(lines[1] == "to stdout")
            #expect(lines[2] == "to stderr")
            #expect(lines[3] == "no newline")
            #expect(lines[4].hasPrefix("--- "))
            #expect(lines[4].contains("start \(script): exit 2 ("))
            #expect(log.failureCount == 0)
        }
    }

    @Test func timeoutIsRecordedInTheFooter() async throws {
        try await withTemporaryFolder { (folder: String) async throws in
            let script = try writeScript(folder, "slow.sh", "sleep 1000")
            let logPath = folder + "/slow.log"
            let outcome = await runner.run(
                invocation(
                    script, timeout: .milliseconds(200),
                    log: ScriptLog(file: RotatingLog(path: logPath), action: "stop")))
            #expect(outcome == .timedOut(after: .milliseconds(200)))
            let text = try String(contentsOfFile: logPath, encoding: .utf8)
            #expect(text.contains("stop \(script): timed out after 0.200s, process group killed"))
        }
    }

    @Test func logFailuresDoNotFailTheRun() async throws {
        try await withTemporaryFolder { (folder: String) async throws in
            let script = try writeScript(folder, "chatty.sh", "echo hello; exit 0")
            // The log's folder cannot be created: a file is in the way.
            try "x".write(toFile: folder + "/blocker", atomically: false, encoding: .utf8)
            let log = RotatingLog(path: folder + "/blocker/exec.log")
            let outcome = await runner.run(invocation(script, log: ScriptLog(file: log, action: "start")))
            #expect(outcome == .exited(0))
            #expect(log.failureCount > 0)
        }
    }

    @Test func twoHundredMegabytesOfOutputNeitherHangNorBalloon() async throws {
        try await withTemporaryFolder { (folder: String) async throws in
            // 200 MB: far more than the noise of the ~580 tests beside it in this process (one
            // measured 58 MB of growth with 50 MB), so a runner that kept the output would show.
            let script = try writeScript(folder, "flood.sh", "head -c 209715200 /dev/zero | tr '\\0' x; echo; echo end")
            let logPath = folder + "/flood.log"
            let log = RotatingLog(path: logPath, rotateSize: 4 * 1024 * 1024, keptGenerations: 2)
            let memoryBefore = residentMemoryBytes()
            let started = ContinuousClock.now
            let outcome = await runner.run(
                invocation(script, timeout: .seconds(60), log: ScriptLog(file: log, action: "start")))
            let elapsed = ContinuousClock.now - started
            let memoryGrowth = residentMemoryBytes() - memoryBefore
            #expect(outcome == .exited(0))
            #expect(elapsed < .seconds(240))
            #expect(memoryGrowth < 120 * 1024 * 1024, "resident memory grew by \(memoryGrowth) bytes")
            // Rotation kept the disk use bounded too.
            let sizes = try [logPath, logPath + ".1", logPath + ".2"].map {
                try FileManager.default.attributesOfItem(atPath: $0)[.size] as? Int ?? 0
            }
            #expect(sizes.allSatisfy { $0 < 4 * 1024 * 1024 + 128 * 1024 })
            #expect(!FileManager.default.fileExists(atPath: logPath + ".3"))
            let lastTwo =
                try String(contentsOfFile: logPath + ".1", encoding: .utf8)
                + String(contentsOfFile: logPath, encoding: .utf8)
            #expect(lastTwo.contains("end\n--- "))
            #expect(lastTwo.contains("start \(script): exit 0 ("))
        }
    }
}
