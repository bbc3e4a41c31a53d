import Dispatch

/// Where the web server's request handling runs: a serial queue of its own, outside the
/// cooperative thread pool that the daemon's actor (and so heartbeat preparation, ticks and
/// monitor results) runs on. Without it, JSON building and body parsing of a burst of
/// requests would queue in front of the actor's jobs on a 2-core machine's two pool threads.
final class WebExecutor: TaskExecutor, @unchecked Sendable {
    let queue = DispatchQueue(label: "understudy.web", qos: .utility)

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        queue.async { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}
