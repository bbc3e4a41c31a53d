import Foundation
import Testing
import UnderstudyEngine
import UnderstudyModel

/// Alerts beside the alert log, end to end on a real daemon: routes to a command destination,
/// `clplogcmd` and its flags and exit codes, a failing destination counted in `clpstat` and
/// alerted once, and a routing change applied online.
@Suite("Process: alert routing and clplogcmd")
struct AlertRoutingTests {
    static func alerts(folder: String, logcmdTo: String) -> String {
        """
        alerts:
          destinations:
            - {name: agent, type: command, path: \(folder)/agent.sh, timeout: 5s}
            - {name: other-agent, type: command, path: \(folder)/other-agent.sh, timeout: 5s}
            - {name: local, type: syslog, socket: \(folder)/no-syslog-here.sock, journal-socket: null}
          routes:
            - {match: {module: logcmd}, to: [\(logcmdTo)]}
            - {match: {module: rc, id: 11}, to: [agent]}
          retry: {attempts: 2, backoff: 100ms, max-backoff: 100ms}

        """
    }

    static func agent(_ path: String) -> String {
        "#!/bin/sh\nprintf '%s %s %s %s %s\\n' \"$CLP_EVENT_MODULE\" \"$CLP_EVENT_ID\" \"$CLP_EVENT_LEVEL\" \"$CRM_alert_kind\" \"$CLP_EVENT_MESSAGE\" >> '\(path)'\n"
    }

    func lines(_ path: String) -> [String] {
        ((try? String(contentsOfFile: path, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
    }

    @Test("routes, clplogcmd, a failing destination said once, and a routing change online")
    func endToEnd() async throws {
        var spec = ClusterSpec(subnet: 181)
        spec.servers = ["node1"]
        spec.syncWait = "0s"
        try await withCluster(spec) { cluster in
            let folder = cluster.folder
            let received = folder + "/agent.out"
            let otherReceived = folder + "/other-agent.out"
            try cluster.write(Self.agent(received), to: folder + "/agent.sh", mode: 0o755)
            try cluster.write(Self.agent(otherReceived), to: folder + "/other-agent.sh", mode: 0o755)
            var withAlerts = spec
            withAlerts.alerts = Self.alerts(folder: folder, logcmdTo: "agent")
            try cluster.write(withAlerts.yaml(folder: folder), to: cluster.configPath)
            try cluster.start()
            try await cluster.waitUntilFormed(online: ["node1"])

            // A routed daemon event: the group online (rc 11) reaches the command.
            #expect(await within10s { lines(received).contains { $0.hasPrefix("rc 11 INFO resource ") } }, "\(lines(received))")

            // clplogcmd without flags: the alert log and the routes.
            let written = try await cluster.cli(["clplogcmd", "-m", "backup finished", "-i", "42", "-l", "warn"], on: "node1")
            #expect(written.exitCode == 0, "\(written)")
            #expect(written.standardOutput.contains("Command succeeded."))
            #expect(await within10s { lines(received).contains("logcmd 42 WARN node backup finished") }, "\(lines(received))")
            let alertLog = cluster.stateDirectory(of: "node1") + "/alert.log"
            #expect(lines(alertLog).contains { $0.hasSuffix("WARN [logcmd 42] backup finished") })

            // --syslog: only the syslog destination (whose socket is missing: it fails, once).
            let toSyslog = try await cluster.cli(["clplogcmd", "-m", "to syslog only", "--syslog", "-l", "ERROR"], on: "node1")
            #expect(toSyslog.exitCode == 0, "\(toSyslog)")
            let status = try await cluster.waitForStatus("the syslog destination failing", on: "node1") { snapshot in
                snapshot.alertDestinations?.first { $0.name == "local" }?.failing == true
            }
            let local = try #require(status.alertDestinations?.first { $0.name == "local" })
            #expect(local.failed == 1 && local.retried == 1 && local.type == "syslog")
            #expect(local.lastError?.contains("no-syslog-here.sock") == true)
            #expect(!lines(alertLog).contains { $0.contains("to syslog only") }, "--syslog without --alert skips the alert log")
            _ = try await cluster.cli(["clplogcmd", "-m", "again", "--syslog"], on: "node1")
            try await cluster.waitForStatus("a second alert given up", on: "node1") {
                $0.alertDestinations?.first { $0.name == "local" }?.failed == 2
            }
            #expect(lines(alertLog).filter { $0.contains("[alert 1]") }.count == 1, "\(lines(alertLog))")
            #expect(lines(alertLog).contains { $0.contains("[alert 1] Alert destination local (syslog) is failing") })

            // clpstat shows the counters.
            let shown = try await cluster.cli(["clpstat"], on: "node1")
            #expect(shown.standardOutput.contains("local"), "\(shown)")
            #expect(shown.standardOutput.contains("Alert destinations"), "\(shown)")

            // Flags for types that have no destination, bad levels, empty messages.
            let mail = try await cluster.cli(["clplogcmd", "-m", "to mail", "--mail", "--alert"], on: "node1")
            #expect(mail.exitCode == 0 && mail.standardOutput.contains("no mail destination is configured"), "\(mail)")
            let badLevel = try await cluster.cli(["clplogcmd", "-m", "x", "-l", "fatal"], on: "node1")
            #expect(badLevel.exitCode == 2 && badLevel.standardError.contains("fatal"), "\(badLevel)")
            let empty = try await cluster.cli(["clplogcmd", "-m", " "], on: "node1")
            #expect(empty.exitCode == 2 && empty.standardError.contains("empty"), "\(empty)")
            let long = try await cluster.cli(["clplogcmd", "-m", String(repeating: "x", count: 600)], on: "node1")
            #expect(long.exitCode == 2 && long.standardError.contains("511"), "\(long)")

            // The routing changes online: logcmd now goes to the other agent.
            var changed = spec
            changed.alerts = Self.alerts(folder: folder, logcmdTo: "other-agent")
            let proposal = folder + "/proposal.yaml"
            try cluster.write(changed.yaml(folder: folder), to: proposal)
            let preview = try await cluster.cli(["config", "apply", "--dry-run", proposal], on: "node1")
            #expect(preview.standardOutput.contains("Reflection method: upload only"), "\(preview)")
            let applied = try await cluster.cli(["config", "apply", proposal], on: "node1")
            #expect(applied.exitCode == 0, "\(applied)")
            _ = try await cluster.cli(["clplogcmd", "-m", "after the change"], on: "node1")
            #expect(await within10s { lines(otherReceived).contains("logcmd 1 INFO node after the change") }, "\(lines(otherReceived))")
            #expect(!lines(received).contains { $0.hasSuffix("after the change") })
            // Counters of destinations that stayed are kept.
            let after = try #require(await cluster.status(on: "node1"))
            #expect(after.alertDestinations?.first { $0.name == "local" }?.failed == 2)
        }
    }

    /// Polls `condition` every 50 ms for up to 10 s.
    func within10s(_ condition: () -> Bool) async -> Bool {
        for _ in 0..<200 {
            if condition() { return true }
            try? await Task.sleep(for: .milliseconds(50))
        }
        return condition()
    }
}
