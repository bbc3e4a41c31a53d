import Foundation
import Logging
import UnderstudyEngine
import UnderstudyModel

/// volmgrw (LVM): the volume group exists and is not partial (a physical volume missing).
struct VolumeGroupProbe: MonitorProbe {
    let volumeGroup: String
    let timeout: Duration
    /// The monitor's `nice`, applied to `vgs`.
    var nice = 0

    func check() async -> MonitorResult {
        let result = await NetCommandRunner(nice: nice).run(
            ["vgs", "--noheadings", "--options", "vg_attr", volumeGroup], timeout: timeout)
        if result.exitCode == 127 { return .error("vgs is not installed (Debian package lvm2)") }
        guard result.succeeded else { return .error("volume group \(volumeGroup): \(result.failureDescription)") }
        let attributes = Array(result.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines))
        // vg_attr: permissions, resizeable, exported, partial, allocation, clustered.
        if attributes.count >= 4 && attributes[3] == "p" {
            return .error("volume group \(volumeGroup) is partial: a physical volume is missing")
        }
        if attributes.count >= 3 && attributes[2] == "x" { return .error("volume group \(volumeGroup) is exported") }
        return .normal
    }
}

/// Monitor types the daemon runs probes for (mtw, mrw and userw are computed by the Engine).
enum MonitorProbes {
    static let supported: Set<MonitorType> = [
        .pidw, .psw, .genw, .ipw, .fipw, .miiw, .diskw, .httpw, .mtw, .mrw, .userw, .volmgrw, .psqlw, .mysqlw, .upsw,
    ]

    /// Why a monitor cannot run in this version; nil when it can.
    static func unsupportedReason(_ monitor: MonitorConfig) -> String? {
        if !supported.contains(monitor.type) { return "type '\(monitor.type.rawValue)'" }
        if monitor.type == .volmgrw && monitor.string("manager") != "lvm" {
            return "volmgrw manager '\(monitor.string("manager") ?? "?")' (only lvm)"
        }
        return nil
    }

    struct Context: Sendable {
        var config: ClusterConfig
        var runner: ScriptRunner
        var environment: [String: String]
        var logDirectory: String
        var logger: Logger
    }

    static func make(_ monitor: MonitorConfig, start: MonitorStart, context: Context) -> any MonitorProbe {
        switch monitor.type {
        case .pidw:
            return ProcessAliveProbe(pid: start.targetPID, resource: monitor.target ?? "?")
        case .psw:
            return ProcessNameProbe(pattern: monitor.string("process-name") ?? "", minimum: monitor.int("min-count") ?? 1)
        case .genw:
            let script = monitor.string("script") ?? ""
            let logPath = monitor.string("log") ?? "\(context.logDirectory)/monitor-\(monitor.name).log"
            let log = RotatingLog(
                path: logPath, rotateSize: monitor.int("log-rotate-size") ?? Defaults.scriptLogRotateSize, logger: context.logger)
            var environment = context.environment
            environment["CLP_MONITORNAME"] = monitor.name
            return ScriptProbe(
                monitor: monitor.name, script: script, asynchronous: monitor.string("mode") == "async",
                normalValue: Int32(monitor.int("normal-value") ?? 0), nice: monitor.nice, timeout: monitor.timeout,
                runner: context.runner, environment: environment, log: ScriptLog(file: log, action: "monitor"))
        case .ipw:
            // Leave room within the timeout for starting ping.
            let wait = max(monitor.timeout * 8 / 10, .milliseconds(10))
            return PingTargetsProbe(targets: monitor.list("targets") ?? [], wait: wait, nice: monitor.nice)
        case .miiw:
            return LinkStateProbe(interface: monitor.string("interface") ?? "")
        case .fipw:
            var address = ""
            if let target = monitor.target, case .fip(let settings)? = context.config.resource(named: target)?.resource.settings {
                address = settings.address
            }
            return FloatingAddressProbe(
                address: address, resource: monitor.target ?? "?", monitorLink: monitor.bool("monitor-link") ?? false,
                runner: NetCommandRunner(nice: monitor.nice))
        case .diskw:
            return DiskProbe(
                device: monitor.string("device") ?? "",
                method: DiskProbe.Method(rawValue: monitor.string("method") ?? "") ?? .readDirect,
                size: monitor.int("size") ?? 512, diskFullIsError: monitor.bool("disk-full-is-error") ?? true,
                timeout: monitor.timeout, nice: monitor.nice)
        case .httpw:
            guard let url = URL(string: monitor.string("url") ?? "") else {
                return FailingProbe(reason: "url \(monitor.string("url") ?? "") cannot be parsed")
            }
            return WebRequestProbe(
                url: url, expectedStatus: monitor.int("expected-status") ?? 200, bodyMatch: monitor.string("body-match"),
                timeout: monitor.timeout)
        case .upsw:
            let client = NUTClient(
                host: monitor.string("host") ?? "127.0.0.1", port: monitor.int("port") ?? 3493, timeout: monitor.timeout * 9 / 10)
            return UPSProbe(ups: monitor.string("ups") ?? "", client: client)
        case .psqlw, .mysqlw:
            return DatabaseProbe(
                engine: monitor.type == .psqlw ? .postgres : .mysql, host: monitor.string("host") ?? "127.0.0.1",
                port: monitor.int("port") ?? (monitor.type == .psqlw ? 5432 : 3306), database: monitor.string("database") ?? "",
                user: monitor.string("user") ?? "postgres", passwordFile: monitor.string("password-file"),
                table: monitor.string("table") ?? "psqlwatch", level: monitor.int("level") ?? 2, timeout: monitor.timeout,
                nice: monitor.nice)
        case .volmgrw:
            return VolumeGroupProbe(volumeGroup: monitor.string("volume") ?? "", timeout: monitor.timeout, nice: monitor.nice)
        default:
            return FailingProbe(reason: "monitor type \(monitor.type.rawValue) is not supported by this version")
        }
    }
}

/// A probe that cannot work (kept as an error the operator sees, never a silent Normal).
struct FailingProbe: MonitorProbe {
    let reason: String
    func check() async -> MonitorResult { .error(reason) }
    func checkNow() -> MonitorResult? { .error(reason) }
}
