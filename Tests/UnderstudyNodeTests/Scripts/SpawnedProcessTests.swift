import Foundation
import Testing

@testable import UnderstudyNode

#if canImport(Glibc)
    import Glibc
#endif

@Suite("SpawnedProcess")
struct SpawnedProcessTests {
    @Test("a child that closed its descriptors and still runs does not hide another child's end")
    func daemonLikeChildHidesNothing() throws {
        // Foundation's Process took 5.5 s here to see /bin/true end (SpawnedProcess.swift).
        let daemonLike = try SpawnedProcess.spawn(["/bin/sh", "-c", "exec 0<&- 1>&- 2>&-; sleep 30"])
        defer {
            daemonLike.signal(SIGKILL)
            daemonLike.waitForExit()
        }
        let started = ContinuousClock.now
        let quick = try SpawnedProcess.spawn(["/bin/true"])
        #expect(quick.waitForExit(within: .seconds(10)) == 0)
        #expect(ContinuousClock.now - started < .seconds(10))
        #expect(daemonLike.isRunning)
    }

    @Test("output, exit codes, a signal as 128 + its number, a command that cannot start")
    func outcomes() throws {
        let printed = SpawnedProcess.run(["/bin/sh", "-c", "echo out; echo err >&2; exit 3"])
        #expect(printed.status == 3 && printed.output.contains("out") && printed.output.contains("err"))
        let quiet = SpawnedProcess.run(["/bin/sh", "-c", "echo out; echo err >&2"], errorToNull: true)
        #expect(quiet.ok && quiet.output == "out\n")
        #expect(SpawnedProcess.run(["/bin/sh", "-c", "kill -9 $$"]).status == 128 + 9)
        #expect(SpawnedProcess.run(["/nonexistent/command"]).status == 127)
        let big = SpawnedProcess.run(["/bin/sh", "-c", "head -c 300000 /dev/zero"])
        #expect(big.ok && big.output.utf8.count == 300_000, "more than a pipe holds")
        let named = try SpawnedProcess.spawn(["custom-name", "-c", "[ \"$0\" = custom-name ] && exit 7"], executable: "/bin/sh")
        #expect(named.waitForExit(within: .seconds(10)) == 7, "argv[0] is the name, the file is the executable")
        let environment = SpawnedProcess.run(["/bin/sh", "-c", "echo $ONLY"], environment: ["ONLY": "this", "PATH": "/usr/bin:/bin"])
        #expect(environment.output == "this\n")
    }

    @Test("a timeout kills the command and what it started; a background child holding the pipe does not hold the caller")
    func bounded() {
        let started = ContinuousClock.now
        let slow = SpawnedProcess.run(["/bin/sh", "-c", "sleep 30 & sleep 30"], timeout: .milliseconds(300))
        #expect(slow.status == 124)
        #expect(ContinuousClock.now - started < .seconds(10))
        let background = ContinuousClock.now
        let left = SpawnedProcess.run(["/bin/sh", "-c", "(sleep 30 &) ; echo done"])
        #expect(left.ok && left.output == "done\n")
        #expect(ContinuousClock.now - background < .seconds(10))
    }

    @Test("the child has only descriptors 0–2, no signal blocked, default dispositions, a process group of its own")
    func cleanStart() throws {
        let leaked = open("/dev/null", O_RDONLY)  // not close-on-exec
        defer { close(leaked) }
        let fds = SpawnedProcess.run(["/bin/sh", "-c", "ls /proc/self/fd | sort -n | tr '\\n' ' '"])
        #expect(fds.output.trimmingCharacters(in: .whitespaces) == "0 1 2 3", "3 is ls's own directory: \(fds.output)")
        let mask = SpawnedProcess.run(["/bin/sh", "-c", "grep -E '^(SigBlk|SigIgn)' /proc/self/status"])
        #expect(mask.output.contains("SigBlk:\t0000000000000000"), "\(mask.output)")
        let child = try SpawnedProcess.spawn(["/bin/sleep", "30"])
        defer {
            child.signal(SIGKILL)
            child.waitForExit()
        }
        #expect(getpgid(child.pid) == child.pid)
        child.signal(SIGTERM)
        #expect(child.waitForExit(within: .seconds(10)) == 128 + SIGTERM)
        #expect(!child.isRunning && child.exitCode == 128 + SIGTERM)
    }
}
