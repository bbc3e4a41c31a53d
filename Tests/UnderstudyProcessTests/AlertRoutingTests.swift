import Foundation
import Testing
import UnderstudyEngine
import UnderstudyModel

#if canImport(Glibc)
    import Glibc
#endif

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

    @Test("a webhook that never answers: alerts time out, are dropped and counted, said once; the servers stay up")
    func hangingWebhook() async throws {
        // A listener that never accepts: connections complete in the kernel, no answer comes.
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(listener) }
        let address = try makeSocketAddress("127.0.0.1", 0)
        #expect(withSocketAddress(address) { bind(listener, $0, $1) } == 0 && listen(listener, 128) == 0)
        var bound = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &bound) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &length) }
        }
        let port = Int(UInt16(bigEndian: bound.sin_port))

        var spec = ClusterSpec(subnet: 182)
        spec.servers = ["node1", "node2"]
        spec.alerts = """
            alerts:
              destinations:
                - {name: chat, type: webhook, url: "http://127.0.0.1:\(port)/hook", timeout: 500ms}
              routes:
                - {match: {}, to: [chat]}
              retry: {attempts: 2, backoff: 100ms, max-backoff: 100ms}
              queue: 5

            """
        try await withCluster(spec) { cluster in
            try cluster.start()
            try await cluster.waitUntilFormed(online: ["node1", "node2"])
            for index in 0..<30 {
                let outcome = try await cluster.cli(["clplogcmd", "-m", "burst \(index)"], on: "node1")
                #expect(outcome.exitCode == 0, "\(outcome)")
            }
            let status = try await cluster.waitForStatus("the webhook counted as failing with drops", on: "node1") { snapshot in
                guard let chat = snapshot.alertDestinations?.first(where: { $0.name == "chat" }) else { return false }
                return chat.failing && chat.dropped > 0 && chat.failed >= 2
            }
            let chat = try #require(status.alertDestinations?.first { $0.name == "chat" })
            #expect(chat.delivered == 0 && chat.queued <= 5)
            #expect(chat.lastError?.contains("no answer from the webhook 127.0.0.1:\(port) within") == true, "\(chat)")
            // Nobody was judged down while alerts waited on the receiver, and the alert log
            // has every burst line and one failure alert.
            for server in ["node1", "node2"] {
                let seen = try #require(await cluster.status(on: server))
                #expect(seen.servers.allSatisfy { $0.status == .online }, "\(seen.summary)")
            }
            let alertLog = lines(cluster.stateDirectory(of: "node1") + "/alert.log")
            #expect((0..<30).allSatisfy { index in alertLog.contains { $0.hasSuffix("[logcmd 1] burst \(index)") } })
            #expect(alertLog.filter { $0.contains("[alert 1] Alert destination chat (webhook) is failing") }.count == 1, "\(alertLog)")
            #expect(!alertLog.contains { $0.contains("[nm 2]") }, "a server was judged down: \(alertLog)")
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
