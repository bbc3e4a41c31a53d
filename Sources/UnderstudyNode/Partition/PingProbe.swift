import Foundation
import UnderstudyEngine
import UnderstudyModel

/// The probe of `pingnp` (and of `ipw`, the `vip` in-use check and the `nas` server check):
/// one ICMP echo to each target, all at once, from the daemon's own socket (`ICMPEcho`; no
/// process is started); reachable when any target answers within the timeout.
///
/// Only for targets of a family for which no ICMP socket can be opened at all (a daemon
/// without root and outside `net.ipv4.ping_group_range`) does it fall back to iputils `ping`.
struct PingProbe: Sendable {
    /// Ask from inside this network namespace (`/run/netns/NAME`; tests).
    var namespace: String?
    /// The scheduling priority of the `ping` fallback.
    var nice = 0

    init(namespace: String? = nil, nice: Int = 0) {
        self.namespace = namespace
        self.nice = nice
    }

    func anyReachable(_ targets: [String], timeout: Duration) async -> Bool {
        guard !targets.isEmpty else { return false }
        let report = await ICMPEcho.ping(targets, timeout: timeout, namespace: namespace, firstAnswerEnough: true)
        if !report.answered.isEmpty { return true }
        if report.unavailable.isEmpty { return false }
        return await pingCommand(report.unavailable, timeout: timeout)
    }

    /// iputils `ping`, one process per target, all at once.
    private func pingCommand(_ targets: [String], timeout: Duration) async -> Bool {
        let runner = NetCommandRunner(namespace: namespace, nice: nice)
        // iputils ping takes a fraction of a second for -W.
        let seconds = String(format: "%.3f", max(0.01, timeout.inSeconds))
        return await withTaskGroup(of: Bool.self) { group in
            for target in targets {
                let family = target.contains(":") ? "-6" : "-4"
                group.addTask {
                    // The runner's own limit is a little longer than ping's: ping decides.
                    await runner.run(
                        ["ping", family, "-n", "-q", "-c", "1", "-W", seconds, target], timeout: timeout + .milliseconds(500)
                    ).succeeded
                }
            }
            for await reached in group where reached {
                group.cancelAll()
                return true
            }
            return false
        }
    }
}
