import Glibc
import Testing

@testable import UnderstudyNode

@Suite("Heartbeat event loop")
struct HeartbeatEventLoopTests {
    /// As root the heartbeat thread runs SCHED_RR at `realtimePriority`; otherwise the
    /// refusal is reported, never thrown.
    @Test func heartbeatThreadGetsRealtimePriorityAsRoot() async throws {
        let refusal = await HeartbeatEventLoop.raisePriority()
        let (policy, priority) = try await HeartbeatEventLoop.group.next().submit { () -> (Int32, Int32) in
            var policy: Int32 = 0
            var parameters = sched_param()
            pthread_getschedparam(pthread_self(), &policy, &parameters)
            return (policy, parameters.sched_priority)
        }.get()
        if getuid() == 0 {
            #expect(refusal == nil)
            #expect(policy == Int32(SCHED_RR) && priority == HeartbeatEventLoop.realtimePriority)
        } else {
            print("not root: the priority is refused (\(refusal ?? "not refused?"))")
            #expect(refusal != nil || policy == Int32(SCHED_RR))
        }
    }
}
