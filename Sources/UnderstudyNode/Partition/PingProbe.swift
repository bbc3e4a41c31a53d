import UnderstudyEngine
import UnderstudyModel

/// The probe of `pingnp`: one ICMP echo to each target, all at once, with `ping` (iputils);
/// reachable when any target answers within the timeout.
struct PingProbe: Sendable {
    var runner = NetCommandRunner()

    func anyReachable(_ targets: [String], timeout: Duration) async -> Bool {
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
