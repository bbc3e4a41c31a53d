import UnderstudyEngine

/// The probe of `pingnp`: one ICMP echo to each target, all at once, with `ping` (iputils);
/// reachable when any target answers within the timeout.
struct PingProbe: Sendable {
    var runner = NetCommandRunner()

    func anyReachable(_ targets: [String], timeout: Duration = ServerEngine.pingTimeout) async -> Bool {
        let seconds = max(1, Int(timeout.components.seconds))
        return await withTaskGroup(of: Bool.self) { group in
            for target in targets {
                let family = target.contains(":") ? "-6" : "-4"
                group.addTask {
                    // The runner's own limit is a little longer than ping's: ping decides.
                    await runner.run(
                        ["ping", family, "-n", "-q", "-c", "1", "-W", String(seconds), target], timeout: timeout + .milliseconds(500)
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
