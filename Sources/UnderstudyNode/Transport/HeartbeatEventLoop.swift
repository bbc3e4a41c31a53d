import NIOCore
import NIOPosix

#if canImport(Glibc)
    import Glibc
#endif

/// The event-loop thread that the heartbeat sockets live on, apart from the shared NIO
/// threads: a busy control channel, web API or database monitor cannot hold a heartbeat back,
/// and the heartbeat thread alone can be given a real-time priority.
public enum HeartbeatEventLoop {
    public static let group: MultiThreadedEventLoopGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)

    /// SCHED_RR priority of the heartbeat thread (1...99; kernel threads that must never wait,
    /// such as the watchdog and migration threads, run at 99). Like corosync's, so a process
    /// that hogs the CPU does not make this server miss heartbeats and look dead.
    public static let realtimePriority: Int32 = 10

    /// Linux's SCHED_RESET_ON_FORK (sched.h), which the Glibc module does not bring in.
    public static let resetOnFork: Int32 = 0x4000_0000

    /// Raises the heartbeat thread to `realtimePriority`. Returns nil when done, else why not
    /// (typically: not root and no CAP_SYS_NICE, or a container's limits). Harmless to repeat.
    public static func raisePriority() async -> String? {
        let loop = group.next()
        do {
            return try await loop.submit { () -> String? in
                #if canImport(Glibc)
                    var parameters = sched_param()
                    parameters.sched_priority = realtimePriority
                    // SCHED_RESET_ON_FORK: what this thread starts (scripts, helpers) runs at
                    // normal priority, not at the daemon's real-time one.
                    let code = pthread_setschedparam(pthread_self(), Int32(SCHED_RR) | resetOnFork, &parameters)
                    return code == 0 ? nil : String(cString: strerror(code))
                #else
                    return "real-time scheduling is only set on Linux"
                #endif
            }.get()
        } catch {
            return "the heartbeat event loop did not answer: \(error)"
        }
    }
}
