import Foundation
import Glibc
import Testing
import UnderstudyTestSupport

@testable import UnderstudyNode

@Suite("Heartbeat event loop")
struct HeartbeatEventLoopTests {
    /// As root the heartbeat thread runs SCHED_RR at `realtimePriority`, with
    /// SCHED_RESET_ON_FORK; otherwise the refusal is reported, never thrown.
    @Test func heartbeatThreadGetsRealtimePriorityAsRoot() async throws {
        let refusal = await HeartbeatEventLoop.raisePriority()
        let (policy, priority) = try await HeartbeatEventLoop.group.next().submit { () -> (Int32, Int32) in
            var policy: Int32 = 0
            var parameters = sched_param()
            pthread_getschedparam(pthread_self(), &policy, &parameters)
            return (policy, parameters.sched_priority)
        }.get()
        let base = policy & ~HeartbeatEventLoop.resetOnFork
        if getuid() == 0 {
            #expect(refusal == nil)
            #expect(base == Int32(SCHED_RR) && priority == HeartbeatEventLoop.realtimePriority)
            #expect(policy & HeartbeatEventLoop.resetOnFork != 0)
        } else {
            print("not root: the priority is refused (\(refusal ?? "not refused?"))")
            #expect(refusal != nil || base == Int32(SCHED_RR))
        }
    }

    /// What the heartbeat thread starts (a process spawned from code running on it) runs at
    /// normal priority, not at the thread's real-time one.
    @Test(.requires(.root)) func scriptsStartedOnTheHeartbeatThreadRunAtNormalPriority() async throws {
        #expect(await HeartbeatEventLoop.raisePriority() == nil)
        let folder = NSTemporaryDirectory() + "understudy-hbloop-\(getpid())"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let output = folder + "/policy"
        // Field 41 of /proc/PID/stat: the scheduling policy (0 SCHED_OTHER, 2 SCHED_RR).
        let script = "awk '{print $41}' /proc/$$/stat > '\(output)'"
        let status = try await HeartbeatEventLoop.group.next().submit { () throws -> Int32? in
            try SpawnedProcess.spawn(["/bin/sh", "-c", script], executable: "/bin/sh").waitForExit(within: .seconds(10))
        }.get()
        #expect(status == 0)
        let policy = try String(contentsOfFile: output, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(policy == "0", "policy of a child of the heartbeat thread: \(policy)")
    }
}
