import Prometheus
import UnderstudyEngine
import UnderstudyModel

/// `GET /metrics`: the status snapshot (with the daemon's counters) in the Prometheus text
/// format (docs/metrics.md lists every metric). Pure: one fresh registry per scrape, filled
/// from one snapshot, so a group or monitor removed online leaves no stale series and every
/// value of a scrape belongs to the same moment.
public enum MetricsExporter {
    public static let contentType = "text/plain; version=0.0.4; charset=utf-8"
    public static let path = "/metrics"

    public static func render(_ snapshot: ClusterStatusSnapshot, version: String = Defaults.productVersion) -> String {
        let out = Families()
        out.gauge(
            "understudy_info", "Constant 1, labelled with the cluster, this server and the product version.",
            [("cluster", snapshot.cluster), ("server", snapshot.localServer), ("version", version)], 1)
        out.gauge(
            "understudy_service_running", "1 while the cluster service runs on this server, 0 while it stops or is stopped.", [],
            snapshot.service == "running" ? 1 : 0)
        servers(snapshot, out)
        groups(snapshot, out)
        monitors(snapshot, out)
        runtime(snapshot, out)
        counters(snapshot, out)
        return out.registry.emitToString()
    }

    /// State label values: the status names in lower case, spaces as underscores.
    static func label(_ status: String) -> String { status.lowercased().replacingOccurrences(of: " ", with: "_") }

    static func servers(_ snapshot: ClusterStatusSnapshot, _ out: Families) {
        for server in snapshot.servers {
            let up = server.status == .online || server.status == .caution
            out.gauge(
                "understudy_server_up", "1 when the server is up as this server sees it (Online or Caution), else 0.",
                [("server", server.name)], up ? 1 : 0)
            out.gauge(
                "understudy_server_master", "1 for the server this server takes as master, else 0.", [("server", server.name)],
                server.isMaster ? 1 : 0)
            guard !server.isLocal else { continue }
            for path in server.heartbeats {
                let value: Double
                switch path.status {
                case .normal, .caution: value = 1
                case .error, .offline: value = 0
                case .unused, .unknown: continue
                }
                out.gauge(
                    "understudy_heartbeat_path_up", "1 while heartbeats of the peer arrive on the path within the timeout, else 0.",
                    [("server", server.name), ("path", path.name), ("type", path.type)], value)
            }
        }
    }

    static func groups(_ snapshot: ClusterStatusSnapshot, _ out: Families) {
        let failovers = snapshot.counters?.failovers ?? [:]
        let durations = snapshot.counters?.lastFailoverSeconds ?? [:]
        for group in snapshot.groups {
            for server in snapshot.servers {
                let current = group.perServer[server.name] ?? .unknown
                for state in ActivationStatus.allCases {
                    out.gauge(
                        "understudy_group_state",
                        "Group status per server as this server knows it, one-hot: 1 for the current state, 0 for the others (unknown: the server did not report).",
                        [("group", group.name), ("server", server.name), ("state", label(state.rawValue))], state == current ? 1 : 0)
                }
            }
            out.gauge(
                "understudy_group_directory_failovers",
                "The group's failover count in the cluster's directory (the count its failover limit uses).",
                [("group", group.name)], Double(group.failoverCount))
            out.counter(
                "understudy_failovers_total", "Times this server started the group as a failover target (CLP_EVENT=FAILOVER).",
                [("group", group.name)], failovers[group.name] ?? 0)
            if let seconds = durations[group.name] {
                out.gauge(
                    "understudy_failover_last_duration_seconds",
                    "Of the newest failover to this server that reached Online: seconds from the first start order to Online.",
                    [("group", group.name)], seconds)
            }
            out.counter(
                "understudy_group_fences_total", "Times the group was fenced on this server (killed and unplumbed without scripts).",
                [("group", group.name)], snapshot.counters?.fences[group.name] ?? 0)
        }
    }

    static func monitors(_ snapshot: ClusterStatusSnapshot, _ out: Families) {
        for monitor in snapshot.monitors ?? [] {
            let names = [("monitor", monitor.name), ("type", monitor.type)]
            for status in MonitorStatus.allCases {
                out.gauge(
                    "understudy_monitor_status", "Monitor status on this server, one-hot: 1 for the current status, 0 for the others.",
                    names + [("status", label(status.rawValue))], status == monitor.status ? 1 : 0)
            }
            if let millis = monitor.lastCheckMillis {
                out.gauge(
                    "understudy_monitor_check_duration_seconds", "How long the monitor's newest check on this server took.", names,
                    Double(millis) / 1000)
            }
            let steps: [(String, Int)] = [
                ("recovery_script", monitor.counters.recoveryScripts), ("reactivation", monitor.counters.reactivations),
                ("failover", monitor.counters.failovers),
            ]
            for (step, count) in steps {
                out.gauge(
                    "understudy_monitor_recovery_steps",
                    "The monitor's recovery counters on this server (reset when it returns to normal or by clpmonctrl -c).",
                    [("monitor", monitor.name), ("step", step)], Double(count))
            }
            out.gauge(
                "understudy_monitor_final_action_done", "1 when the monitor's final action ran and its counters were not reset since.",
                [("monitor", monitor.name)], monitor.counters.finalActionDone ? 1 : 0)
        }
    }

    static func runtime(_ snapshot: ClusterStatusSnapshot, _ out: Families) {
        if let runtime = snapshot.runtime {
            // A `stat` label, not `quantile`: these are gauges the daemon computes over a window,
            // not a Prometheus summary.
            let heartbeat = [
                ("p50", runtime.heartbeatLatenessP50), ("p99", runtime.heartbeatLatenessP99), ("max", runtime.heartbeatLatenessMax),
            ]
            for (stat, micros) in heartbeat {
                out.gauge(
                    "understudy_heartbeat_lateness_seconds",
                    "How late periodic heartbeats left against their schedule over the last minute (p50, p99, max).",
                    [("stat", stat)], Double(micros) / 1_000_000)
            }
            let checks = [("p50", runtime.monitorLatenessP50), ("p99", runtime.monitorLatenessP99), ("max", runtime.monitorLatenessMax)]
            for (stat, micros) in checks {
                out.gauge(
                    "understudy_monitor_check_lateness_seconds",
                    "How late monitor checks started against their schedule over the last minute (p50, p99, max).",
                    [("stat", stat)], Double(micros) / 1_000_000)
            }
        }
        for line in snapshot.transport ?? [] {
            out.counter(
                "understudy_transport_accepted_total", "Authenticated datagrams (heartbeat paths) or requests (control) accepted.",
                [("path", line.name)], line.accepted)
            if let sent = line.sent {
                out.counter(
                    "understudy_transport_sent_total", "Heartbeat datagrams written, by path.", [("path", line.name)], sent)
            }
            if let failures = line.sendFailures {
                out.counter(
                    "understudy_transport_send_failures_total",
                    "Heartbeat sends that failed, by path (socket error such as a firewall's EPERM, unresolvable name).",
                    [("path", line.name)], failures)
            }
            for (reason, count) in line.dropped.sorted(by: { $0.key < $1.key }) {
                out.counter(
                    "understudy_transport_dropped_total", "Datagrams or requests dropped, by path and reason (wrong key, replay …).",
                    [("path", line.name), ("reason", reason)], count)
            }
        }
    }

    static func counters(_ snapshot: ClusterStatusSnapshot, _ out: Families) {
        guard let counters = snapshot.counters else { return }
        out.counter(
            "understudy_stalls_total", "Stalls of the daemon: gaps between its events longer than two tick periods.", [], counters.stalls)
        for path in counters.paths {
            let names = [("server", path.server), ("path", path.path)]
            out.counter("understudy_heartbeats_received_total", "Heartbeats from the peer received on the path.", names, path.heartbeats)
            out.gauge(
                "understudy_heartbeat_last_received_seconds", "Seconds since the newest heartbeat from the peer arrived on the path.",
                names, path.lastHeardSeconds)
            if let echo = path.echoDelaySeconds {
                out.gauge(
                    "understudy_heartbeat_echo_delay_seconds",
                    "Arrival of the peer's newest heartbeat minus the send time of this server's heartbeat it echoed: the round trip plus the peer's wait for its next heartbeat (at most one interval).",
                    names, echo)
            }
        }
        for action in ["restart", "failover", "final_action"] {
            out.counter(
                "understudy_recovery_actions_total", "Recovery steps this server took: restarts, failovers, final actions.",
                [("action", action)], counters.recoveryActions[action] ?? 0)
        }
        for event in counters.events {
            out.counter(
                "understudy_events_total", "Alert-log events this server wrote, by module, event id and level.",
                [("module", event.module), ("event", String(event.id)), ("level", event.level)], event.count)
        }
        for (destination, count) in counters.alertDestinationFailures.sorted(by: { $0.key < $1.key }) {
            out.counter(
                "understudy_alert_destination_failures_total", "Alerts a destination (syslog, mail, trap …) failed to deliver.",
                [("destination", destination)], count)
        }
    }

    /// One registry, made and dropped within one scrape.
    final class Families {
        let registry = PrometheusCollectorRegistry()

        func gauge(_ name: String, _ help: String, _ labels: [(String, String)], _ value: Double) {
            let descriptor = MetricNameDescriptor(metricName: name, unitName: "", helpText: help)
            let gauge =
                labels.isEmpty ? registry.makeGauge(descriptor: descriptor) : registry.makeGauge(descriptor: descriptor, labels: labels)
            gauge.set(value)
        }

        func counter(_ name: String, _ help: String, _ labels: [(String, String)], _ value: UInt64) {
            let descriptor = MetricNameDescriptor(metricName: name, unitName: "", helpText: help)
            let counter =
                labels.isEmpty ? registry.makeCounter(descriptor: descriptor) : registry.makeCounter(descriptor: descriptor, labels: labels)
            counter.increment(by: Int64(clamping: value))
        }
    }
}
