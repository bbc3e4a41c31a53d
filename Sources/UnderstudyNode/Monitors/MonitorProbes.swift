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

/// The monitor types the daemon runs, each with the factory of its probe. A new monitor type
/// is its probe file and one line here (and its Model schema row, which declares its keys and
/// their defaults: the factories read parameters through the schema, never with a default of
/// their own).
enum MonitorProbes {
    struct Context: Sendable {
        var config: ClusterConfig
        var runner: ScriptRunner
        var environment: [String: String]
        var logDirectory: String
        var logger: Logger
    }

    typealias Factory = @Sendable (_ monitor: MonitorConfig, _ start: MonitorStart, _ context: Context) -> any MonitorProbe

    /// Probes by monitor type. mtw, mrw and userw have none: the Engine computes them.
    static let registry: [MonitorType: Factory] = [
        .pidw: { monitor, start, _ in ProcessAliveProbe(pid: start.targetPID, resource: monitor.target ?? "?") },
        .psw: { monitor, _, _ in ProcessNameProbe(pattern: monitor.text("process-name"), minimum: monitor.number("min-count")) },
        .genw: { monitor, _, context in
            let logPath = monitor.string("log") ?? "\(context.logDirectory)/monitor-\(monitor.name).log"
            let log = RotatingLog(path: logPath, rotateSize: monitor.number("log-rotate-size"), logger: context.logger)
            var environment = context.environment
            environment["CLP_MONITORNAME"] = monitor.name
            return ScriptProbe(
                monitor: monitor.name, script: monitor.text("script"), asynchronous: monitor.string("mode") == "async",
                normalValue: Int32(monitor.number("normal-value")), nice: monitor.nice, timeout: monitor.timeout,
                runner: context.runner, environment: environment, log: ScriptLog(file: log, action: "monitor"))
        },
        .ipw: { monitor, _, _ in
            // Leave room within the timeout (for the `ping` fallback to start).
            let wait = max(monitor.timeout * 8 / 10, .milliseconds(10))
            return PingTargetsProbe(targets: monitor.list("targets") ?? [], wait: wait, nice: monitor.nice)
        },
        .miiw: { monitor, _, _ in LinkStateProbe(interface: monitor.text("interface")) },
        .fipw: { monitor, _, context in
            var address = ""
            if let target = monitor.target, case .fip(let settings)? = context.config.resource(named: target)?.resource.settings {
                address = settings.address
            }
            return FloatingAddressProbe(address: address, resource: monitor.target ?? "?", monitorLink: monitor.flag("monitor-link"))
        },
        .diskw: { monitor, _, _ in
            guard let method = DiskProbe.Method(rawValue: monitor.text("method")) else {
                return FailingProbe(reason: "diskw method \(monitor.text("method")) is unknown")
            }
            return DiskProbe(
                device: monitor.text("device"), method: method, size: monitor.number("size"),
                diskFullIsError: monitor.flag("disk-full-is-error"), timeout: monitor.timeout, nice: monitor.nice)
        },
        .httpw: { monitor, _, _ in
            guard
                let probe = WebRequestProbe(
                    url: monitor.text("url"), expectedStatus: monitor.number("expected-status"),
                    bodyMatch: monitor.string("body-match"), timeout: monitor.timeout)
            else { return FailingProbe(reason: "its url is not an http:// or https:// URL with a host") }
            return probe
        },
        .upsw: { monitor, _, _ in UPSProbe(ups: monitor.text("ups"), client: monitor.nutClient(timeout: monitor.timeout * 9 / 10)) },
        .psqlw: { monitor, _, _ in database(.postgres, monitor) },
        .mysqlw: { monitor, _, _ in database(.mysql, monitor) },
        .volmgrw: { monitor, _, _ in VolumeGroupProbe(volumeGroup: monitor.text("volume"), timeout: monitor.timeout, nice: monitor.nice) },
        .sambaw: { monitor, _, _ in
            SambaProbe(
                host: monitor.text("host"), port: monitor.number("port"), share: monitor.text("share"), user: monitor.string("user"),
                passwordFile: monitor.string("password-file"), timeout: monitor.timeout * 9 / 10, nice: monitor.nice)
        },
        .nfsw: { monitor, _, _ in
            NFSProbe(
                host: monitor.text("host"), share: monitor.string("share"), version: monitor.number("version"),
                port: monitor.number("port"), timeout: monitor.timeout * 9 / 10)
        },
    ]

    static func database(_ engine: DatabaseProbe.Engine, _ monitor: MonitorConfig) -> any MonitorProbe {
        DatabaseProbe(
            engine: engine, host: monitor.text("host"), port: monitor.number("port"), database: monitor.text("database"),
            user: monitor.text("user"), passwordFile: monitor.string("password-file"), table: monitor.text("table"),
            level: monitor.number("level"), timeout: monitor.timeout, nice: monitor.nice)
    }

    /// Monitor types the daemon runs: those with a probe, and those the Engine computes.
    static let supported: Set<MonitorType> = Set(registry.keys).union(MonitorType.allCases.filter(\.isComputedByEngine))

    /// Why a monitor cannot run in this version; nil when it can.
    static func unsupportedReason(_ monitor: MonitorConfig) -> String? {
        if !supported.contains(monitor.type) { return "type '\(monitor.type.rawValue)'" }
        if monitor.type == .volmgrw && monitor.string("manager") != "lvm" {
            return "volmgrw manager '\(monitor.string("manager") ?? "?")' (only lvm)"
        }
        return nil
    }

    static func make(_ monitor: MonitorConfig, start: MonitorStart, context: Context) -> any MonitorProbe {
        guard let factory = registry[monitor.type] else {
            return FailingProbe(reason: "monitor type \(monitor.type.rawValue) is not supported by this version")
        }
        return factory(monitor, start, context)
    }
}

extension MonitorConfig {
    // Parameters the Model has validated: given in the file or defaulted by its schema row
    // (`MonitorType.parameterSpec`). A key with neither is one the validator requires, so the
    // empty value below is never what a probe gets.
    func text(_ key: String) -> String { string(key) ?? "" }
    func number(_ key: String) -> Int { int(key) ?? 0 }
    func flag(_ key: String) -> Bool { bool(key) ?? false }

    /// The upsd client of a upsw monitor.
    func nutClient(timeout: Duration) -> NUTClient { NUTClient(host: text("host"), port: number("port"), timeout: timeout) }
}

/// A monitor that cannot run as configured: every check is an error naming why.
struct FailingProbe: MonitorProbe {
    let reason: String
    func check() async -> MonitorResult { .error(reason) }
    func checkNow() -> MonitorResult? { .error(reason) }
}
