import Foundation
import Testing

@testable import UnderstudyModel

/// docs/configuration.md promises the same defaults as the code; these tests keep them together.
@Suite("docs/configuration.md matches the code")
struct DocumentationTests {
    let lines: [Substring]

    init() throws {
        let text = try String(contentsOfFile: packageRoot + "/docs/configuration.md", encoding: .utf8)
        lines = text.split(separator: "\n")
    }

    /// The table row for a key (the first one, or the first after a heading).
    func row(_ key: String, after heading: String? = nil) -> Substring? {
        var candidates = lines[...]
        if let heading, let start = lines.firstIndex(where: { $0 == heading }) {
            candidates = lines[start...]
        }
        return candidates.first { $0.hasPrefix("| `\(key)` |") }
    }

    @Test(arguments: [
        ("timing.heartbeat-interval", Defaults.heartbeatInterval.configText),
        ("timing.heartbeat-timeout", Defaults.heartbeatTimeout.configText),
        ("timing.sync-wait", Defaults.syncWait.configText),
        ("ports.control", String(Defaults.controlPort)),
        ("ports.heartbeat", String(Defaults.heartbeatPort)),
        ("ports.http", String(Defaults.httpPort)),
        ("network-partition.action", ClusterSettings(name: "", secretFile: "").networkPartitionAction.rawValue),
        ("shutdown-monitor.method", ShutdownMonitorSettings().method.rawValue),
        ("activation.retry", String(Defaults.activationRetry)),
        ("activation.failover", String(Defaults.activationFailover)),
        ("activation.final-action", Defaults.activationFinalAction.rawValue),
        ("deactivation.retry", String(Defaults.deactivationRetry)),
        ("deactivation.final-action", Defaults.deactivationFinalAction.rawValue),
        ("first-wait", Defaults.monitorFirstWait.configText),
        ("recovery.reactivations", String(Defaults.monitorReactivations)),
        ("recovery.failovers", String(Defaults.monitorFailovers)),
        ("recovery.final-action", Defaults.monitorFinalAction.rawValue),
        ("recovery.script-timeout", Defaults.monitorRecoveryScriptTimeout.configText),
        ("recovery.script-count", String(Defaults.monitorRecoveryScriptCount)),
        ("nice", String(Defaults.monitorNice)),
    ])
    func defaultIsDocumented(key: String, value: String) throws {
        let line = try #require(row(key), "no row for \(key)")
        #expect(line.contains("`\(value)`"), "\(line)")
    }

    /// True when some `code` span of the line is this duration, however it is written
    /// (`60s` and `1m` are the same).
    func mentions(_ duration: Duration, in line: Substring) -> Bool {
        line.split(separator: "`", omittingEmptySubsequences: false).enumerated().contains { index, part in
            index % 2 == 1 && Duration(configText: String(part)) == duration
        }
    }

    @Test func monitorTimingDefaultsAreDocumented() throws {
        #expect(mentions(Defaults.monitorInterval, in: try #require(row("interval"))))
        #expect(mentions(Defaults.monitorTimeout, in: try #require(row("timeout", after: "## monitors"))))
        #expect(try #require(row("retries")).contains("`\(Defaults.monitorRetries)`"))
    }

    @Test func fencingDefaultsAreDocumented() throws {
        let heading = "## fencing"
        #expect(mentions(Defaults.fencingTimeout, in: try #require(row("timeout", after: heading))))
        #expect(mentions(Defaults.fencingCheckInterval, in: try #require(row("check-interval", after: heading))))
        #expect(mentions(Defaults.fencingDelay, in: try #require(row("delay", after: heading))))
        #expect(mentions(Defaults.fencingRetryInterval, in: try #require(row("retry-interval", after: heading))))
        #expect(try #require(row("on-failure", after: heading)).contains("`\(FencingConfig(agents: []).onFailure.rawValue)`"))
        let agentRow = { (type: String, key: String) in self.lines.first { $0.hasPrefix("| `\(type)` | `\(key)` |") } }
        let ipmi = IPMIAgent(bmcs: [:])
        #expect(agentRow("ipmi", "action")?.contains("`\(ipmi.action.rawValue)`") == true)
        #expect(agentRow("ipmi", "interface")?.contains("`\(ipmi.interface)`") == true)
        #expect(agentRow("ipmi", "bmc.SERVER.port")?.contains("`\(Defaults.ipmiPort)`") == true)
        for action in IPMIAgent.Action.allCases {
            #expect(agentRow("ipmi", "action")?.contains("`\(action.rawValue)`") == true, "\(action) is not documented")
        }
    }

    @Test func execDefaultsAreDocumented() {
        let timeout = lines.first { $0.hasPrefix("| `exec` | `timeout` |") }
        #expect(timeout?.contains("`\(Defaults.scriptTimeout.configText)`") == true)
        let rotate = lines.first { $0.hasPrefix("| `exec` | `log-rotate-size` |") }
        #expect(rotate?.contains("`\(Defaults.scriptLogRotateSize)`") == true)
    }

    @Test(arguments: MonitorType.allCases)
    func monitorParametersAreDocumented(type: MonitorType) throws {
        let heading = "#### `\(type.rawValue)`"
        #expect(lines.contains { $0 == heading }, "no section for \(type.rawValue)")
        for spec in type.parameterSpecs {
            let line = try #require(row(spec.key, after: heading), "\(type.rawValue).\(spec.key) is not documented")
            let expected = spec.defaultValue.map { "`\($0)`" } ?? (spec.isRequired ? "**required**" : "—")
            #expect(line.contains(expected), "\(type.rawValue): \(line)")
        }
    }
}
