import UnderstudyEngine
import UnderstudyModel

extension ClusterDaemon {
    /// About once a second: says so when this server's heartbeats on a LAN path fail to leave,
    /// and when they leave again (HeartbeatSendWatch).
    func checkHeartbeatSends() {
        for transport in transports {
            switch heartbeatSendWatch.observe(path: transport.path, counters: transport.counters) {
            case nil: break
            case .failing(let path, let detail, let failed, let sent):
                record(
                    LogEntry(
                        .heartbeatSendFailing,
                        "Heartbeats on \(path) cannot be sent: \(detail) (\(failed) of \(failed + sent) sends failed). The peers do not hear this server on \(path) while this lasts: check firewall rules and routes for the heartbeat port."
                    ))
            case .recovered(let path, let failed):
                record(LogEntry(.heartbeatSendRecovered, "Heartbeats on \(path) are sent again (\(failed) sends failed in all)."))
            }
        }
    }
}
