import Foundation
import Logging
import Testing
import UnderstudyModel

@testable import UnderstudyNode

#if canImport(Glibc)
    import Glibc
#endif

/// What the keeper relies on when the daemon dies: every process the daemon spawned carries
/// its instance token and can be found and killed; `keeper.lock` makes a new daemon wait.
@Suite("Keeper: instance processes and lock")
struct KeeperTests {
    func spawnSleep(token: String?) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sleep")
        process.arguments = ["30"]
        var environment = ["PATH": "/usr/bin:/bin"]
        if let token { environment[DaemonInstance.variable] = token }
        process.environment = environment
        try process.run()
        return process
    }

    @Test("processes with the token are found and killed; others are left alone")
    func findAndKill() async throws {
        let token = "test-\(getpid())-\(UInt64.random(in: 1...UInt64.max))"
        let marked = try spawnSleep(token: token)
        let other = try spawnSleep(token: token + "-other")
        let plain = try spawnSleep(token: nil)
        defer { for process in [marked, other, plain] where process.isRunning { kill(process.processIdentifier, SIGKILL) } }
        // `run()` returns once the child is forked; until it has exec'd `sleep`, its environment
        // in /proc is still the test runner's (a loaded machine showed it: CI of 2026-12-07).
        var found = InstanceProcesses.find(token: token)
        let deadline = ContinuousClock.now + .seconds(5)
        while found != [marked.processIdentifier], ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(20))
            found = InstanceProcesses.find(token: token)
        }
        #expect(found == [marked.processIdentifier])
        let survivors = await InstanceProcesses.killAll(token: token, limit: .seconds(5))
        #expect(survivors.isEmpty)
        marked.waitUntilExit()
        #expect(marked.terminationReason == .uncaughtSignal && marked.terminationStatus == SIGKILL)
        #expect(other.isRunning && plain.isRunning)
        #expect(InstanceProcesses.describe(other.processIdentifier).contains("sleep"))
    }

    @Test("processes spawned through the script runner carry this process's token")
    func scriptRunnerMarks() async throws {
        let folder = NSTemporaryDirectory() + "understudy-keeper-\(getpid())"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let output = folder + "/env"
        let outcome = await ScriptRunner().run(
            ScriptInvocation(
                executable: "/bin/sh", arguments: ["-c", "echo \"$\(DaemonInstance.variable)\" > '\(output)'"],
                environment: ["PATH": "/usr/bin:/bin"], timeout: .seconds(10)))
        #expect(outcome.isSuccess)
        #expect((try? String(contentsOfFile: output, encoding: .utf8)) == DaemonInstance.token + "\n")
        let net = await NetCommandRunner().run(["/bin/sh", "-c", "echo \"$\(DaemonInstance.variable)\""])
        #expect(net.standardOutput == DaemonInstance.token + "\n")
    }

    @Test("a daemon waits for keeper.lock and names the keeper holding it when it gives up")
    func lockWait() async throws {
        let folder = NSTemporaryDirectory() + "understudy-keeper-lock-\(getpid())"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let lock = KeeperLock(stateDirectory: folder)
        let logger = Logger(label: "test")
        try await lock.waitUntilFree(limit: .milliseconds(100), logger: logger)
        #expect(lock.acquire(logger: logger))
        do {
            try await lock.waitUntilFree(limit: .milliseconds(300), logger: logger)
            Issue.record("waited through a held lock")
        } catch {
            #expect(error.description.contains("pid \(getpid())") && error.description.contains(lock.path))
        }
        #expect(!lock.tryAcquire())
        lock.release()
        try await lock.waitUntilFree(limit: .milliseconds(100), logger: logger)
    }

    @Test("the daemon's words on the pipe: the newest run and digest, clean, malformed lines ignored")
    func daemonWords() {
        #expect(DaemonWords(text: "run 3 abc\nrun 4 def\n") == DaemonWords(text: "run 4 def"))
        let words = DaemonWords(text: "run 3 abc\nrun 4 def\n")
        #expect(words.run == 4 && words.digest == "def" && !words.clean)
        #expect(DaemonWords(text: "run 1 x\nclean\n").clean)
        let garbage = DaemonWords(text: "run x y\nrunn 3 z\nrun 5\n\n\u{0}")
        #expect(garbage.run == nil && garbage.digest == nil && !garbage.clean)
    }

    @Test("the keeper reads the daemon's words as they come, in pieces, however many: the newest run wins")
    func daemonWordsFromAPipe() throws {
        let pipe = Pipe()
        // Many lines (more than the pipe holds at once, read while written), cut mid-line.
        let writer = Thread {
            var text = ""
            for run in 1...20_000 { text += "run \(run) digest\(run)\n" }
            let bytes = Data(text.utf8)
            var offset = 0
            while offset < bytes.count {
                let end = min(offset + 997, bytes.count)
                pipe.fileHandleForWriting.write(bytes[offset..<end])
                offset = end
            }
            try? pipe.fileHandleForWriting.close()
        }
        writer.start()
        let words = DaemonWords.read(pipe.fileHandleForReading)
        #expect(words.run == 20_000 && words.digest == "digest20000" && !words.clean)
    }

    static func config(resources: String) throws -> ClusterConfig {
        try ConfigLoader.load(
            yaml: """
                cluster: {name: c, secret-file: /etc/understudy/test.key}
                servers: [{name: s1}, {name: s2}]
                heartbeats: [{name: lan1, type: lanhb, addresses: {s1: 127.0.0.61, s2: 127.0.0.62}}]
                groups:
                  - name: g
                    resources:
                \(resources)
                """, sourcePath: "keeper.yaml")
    }

    static func notice(_ change: (inout KeeperNotice) -> Void = { _ in }) throws -> KeeperNotice {
        var notice = KeeperNotice(
            server: "s1", boot: 7, run: 2, digestMatches: true, key: try ClusterKey(material: Array(repeating: 7, count: 32)),
            allKilled: true, fenced: true, daemon: getppid() == 1 ? 2 : 1)
        change(&notice)
        return notice
    }

    @Test(
        "a disk's device counts as released only once no file system holds it: mounted, lazily detached and busy, free",
        .enabled(if: getuid() == 0, "needs root: loop devices and mounts"))
    func diskReleasedOnlyWhenTheFileSystemIsGone() async throws {
        let folder = NSTemporaryDirectory() + "understudy-keeper-disk-\(getpid())"
        try FileManager.default.createDirectory(atPath: folder + "/mnt", withIntermediateDirectories: true)
        let image = folder + "/disk.img"
        FileManager.default.createFile(atPath: image, contents: nil)
        try FileHandle(forWritingTo: URL(fileURLWithPath: image)).truncate(atOffset: 64 << 20)
        func run(_ arguments: [String]) throws -> String {
            let process = Process()
            let output = Pipe()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = arguments
            process.standardOutput = output
            process.standardError = FileHandle.nullDevice
            try process.run()
            process.waitUntilExit()
            return String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
                .trimmingCharacters(in: .whitespacesAndNewlines)
        }
        _ = try run(["mkfs.ext4", "-q", "-F", image])
        let device = try run(["losetup", "-f", "--show", image])
        try #require(device.hasPrefix("/dev/loop"))
        var holder: Process?
        defer {
            if let holder, holder.isRunning { kill(holder.processIdentifier, SIGKILL) }
            _ = try? run(["umount", "-l", folder + "/mnt"])
            _ = try? run(["losetup", "-d", device])
            try? FileManager.default.removeItem(atPath: folder)
        }
        let driver = DiskDriver(stateDirectory: folder, logger: Logger(label: "test"))
        let settings = DiskSettings(device: device, filesystem: "ext4", mountPoint: folder + "/mnt")
        #expect(await driver.isReleased(settings, within: .zero))
        _ = try run(["mount", device, folder + "/mnt"])
        #expect(await !driver.isReleased(settings, within: .milliseconds(50)))
        // A user keeps the lazily detached file system alive.
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", "exec sleep 30 > '\(folder)/mnt/held'"]
        try process.run()
        holder = process
        try await Task.sleep(for: .milliseconds(200))
        _ = try run(["umount", "-l", folder + "/mnt"])
        #expect(await !driver.isReleased(settings, within: .milliseconds(50)))
        kill(process.processIdentifier, SIGKILL)
        #expect(await driver.isReleased(settings, within: .seconds(5)))
        var raw = settings
        raw.filesystem = "none"
        #expect(await !driver.isReleased(raw, within: .zero))
    }

    @Test("the keeper tells the peers only after a complete fence of resources it can vouch for, with the daemon gone")
    func noticeOnlyWhenItHolds() throws {
        let exec = try Self.config(resources: "      - {name: app, type: exec, start: /bin/true, stop: /bin/true}")
        let disk = try Self.config(
            resources: """
                      - {name: data, type: disk, device: /dev/loop9, filesystem: ext4, mount-point: /mnt/data}
                      - {name: app, type: exec, start: /bin/true, stop: /bin/true}
                """)
        let nas = try Self.config(
            resources: "      - {name: share, type: nas, server: nfs.example.com, share: /export, mount-point: /mnt/nas}")
        #expect(try Self.notice().refusal(config: exec) == nil)
        // A disk whose file system is shut down (its device opens exclusively) is vouched for.
        #expect(try Self.notice().refusal(config: disk) == nil)
        #expect(try Self.notice { $0.heldDisks = ["data"] }.refusal(config: disk)?.contains("data") == true)
        #expect(try Self.notice().refusal(config: nas)?.contains("share") == true)
        #expect(try Self.notice { $0.run = nil }.refusal(config: exec) != nil)
        #expect(try Self.notice { $0.key = nil }.refusal(config: exec) != nil)
        #expect(try Self.notice { $0.digestMatches = false }.refusal(config: exec) != nil)
        #expect(try Self.notice { $0.allKilled = false }.refusal(config: exec) != nil)
        #expect(try Self.notice { $0.fenced = false }.refusal(config: exec) != nil)
        // This process's parent is alive: as the keeper's daemon it is not gone.
        let parent = getppid()
        #expect(try Self.notice { $0.daemon = parent }.refusal(config: exec)?.contains("still runs") == true)
    }
}
