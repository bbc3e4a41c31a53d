import Testing
import UnderstudyModel

@testable import UnderstudyEngine

/// One monitor's check results as a value: retries, the error, the return to normal.
@Suite("LocalMonitor.take")
struct LocalMonitorTests {
    static func monitor(retries: Int, retryOnTimeout: Bool = true, recoverOnTimeout: Bool = true) -> MonitorConfig {
        MonitorConfig(
            name: "m", type: .genw, timeout: .seconds(2), retries: retries, recovery: MonitorRecovery(target: .localServer),
            retryOnTimeout: retryOnTimeout, recoverOnTimeout: recoverOnTimeout)
    }

    @Test("failures within the retries retry; the next is an error that recovers; normal resets and remembers since when")
    func retriesThenError() {
        let config = Self.monitor(retries: 2)
        var monitor = LocalMonitor()
        monitor.status = .normal
        #expect(monitor.take(.error("exit 2"), of: config, now: .seconds(1)) == .retrying(failures: 1, detail: "exit 2"))
        #expect(monitor.take(.error("exit 2"), of: config, now: .seconds(2)) == .retrying(failures: 2, detail: "exit 2"))
        #expect(monitor.take(.error("exit 3"), of: config, now: .seconds(3)) == .failed(before: .normal, detail: "exit 3", recovers: true))
        #expect(monitor.status == .error && monitor.failures == 0 && monitor.normalSince == nil)
        #expect(monitor.take(.warning("slow"), of: config, now: .seconds(4)) == .fine(before: .error))
        #expect(monitor.status == .caution && monitor.detail == "slow" && monitor.normalSince == .seconds(4))
        #expect(monitor.take(.normal, of: config, now: .seconds(5)) == .fine(before: .caution))
        #expect(monitor.status == .normal && monitor.detail.isEmpty && monitor.normalSince == .seconds(4))
    }

    @Test("a timeout: no retry when retry-on-timeout is off, and no recovery when recover-on-timeout is off")
    func timeouts() {
        var monitor = LocalMonitor()
        let noRetry = Self.monitor(retries: 3, retryOnTimeout: false)
        #expect(
            monitor.take(.timeout, of: noRetry, now: .seconds(1))
                == .failed(before: .offline, detail: "no answer within 2.0 s", recovers: true))
        var quiet = LocalMonitor()
        let noRecovery = Self.monitor(retries: 0, recoverOnTimeout: false)
        #expect(
            quiet.take(.timeout, of: noRecovery, now: .seconds(1))
                == .failed(before: .offline, detail: "no answer within 2.0 s", recovers: false))
        #expect(quiet.status == .error)
    }
}
