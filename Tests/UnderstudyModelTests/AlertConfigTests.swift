import Foundation
import Testing

@testable import UnderstudyModel

/// `alerts:`: defaults, every destination type, routes against the catalogue, and each
/// mistake with its line and key.
@Suite("Config: alerts")
struct AlertConfigTests {
    /// `baseCluster` + `baseGroup` + the alerts text; the alerts text starts on line 16.
    func withAlerts(_ text: String) -> String { baseCluster + baseGroup + text }
    let firstLine = baseLines + 5

    static let full = """
        alerts:
          destinations:
            - {name: syslog, type: syslog, tag: clusterpro, facility: local3, remote: {address: 192.0.2.5, port: 1514, protocol: tcp}}
            - name: oncall
              type: mail
              smtp: {address: mail.example.com, port: 587, starttls: true, user: alert, password-file: smtp.pass, timeout: 10s}
              from: cluster@example.com
              to: [ops@example.com, dba@example.com]
            - {name: nms, type: snmp, managers: [192.0.2.9, "192.0.2.10:1162", "[2001:db8::1]:162"], community: secret, version: 1}
            - {name: chat, type: webhook, url: "https://hooks.example.com/x?y=1", secret-file: hook.key, timeout: 2s}
            - {name: agent, type: command, path: /usr/local/bin/alert-agent, arguments: [--quiet], timeout: 30s, recipient: /var/log/alerts}
          routes:
            - {match: {module: rm, id: 9}, to: [syslog, oncall, nms]}
            - {match: {level: error}, to: [syslog, oncall]}
            - {match: {module: logcmd, id: 4711}, to: [agent]}
            - {match: {}, to: [syslog]}
          retry: {attempts: 3, backoff: 500ms, max-backoff: 4s}
          queue: 50
          log-records: 2500

        """

    @Test func absentMeansAlertLogAndLocalSyslog() throws {
        let config = try load(baseCluster + baseGroup).config
        #expect(config.alerts == AlertSettings.implicit)
        #expect(config.alerts.destinations.map(\.name) == ["syslog"])
        #expect(config.alerts.destinations(module: "rc", id: 12, level: .error) == ["syslog"])
        #expect(config.alerts.retry == AlertRetry(attempts: 5, backoff: .seconds(1), maxBackoff: .seconds(60)))
        #expect(config.alerts.queue == 1000)
        #expect(config.alerts.logRecords == 10_000)
    }

    @Test func everyTypeAndRoute() throws {
        let config = try load(withAlerts(Self.full), sourcePath: "/etc/understudy/cluster.yaml").config
        let alerts = config.alerts
        #expect(alerts.destinations.map(\.kind.typeName) == ["syslog", "mail", "snmp", "webhook", "command"])
        guard case .syslog(let syslog) = alerts.destinations[0].kind, case .mail(let mail) = alerts.destinations[1].kind,
            case .snmp(let snmp) = alerts.destinations[2].kind, case .webhook(let hook) = alerts.destinations[3].kind,
            case .command(let command) = alerts.destinations[4].kind
        else {
            Issue.record("wrong kinds: \(alerts.destinations)")
            return
        }
        #expect(syslog.tag == "clusterpro" && syslog.facility == "local3" && syslog.socket == "/dev/log")
        #expect(syslog.remote == .init(address: "192.0.2.5", port: 1514, transport: .tcp))
        #expect(mail.port == 587 && mail.starttls && mail.user == "alert" && mail.passwordFile == "/etc/understudy/smtp.pass")
        #expect(mail.to == ["ops@example.com", "dba@example.com"] && mail.timeout == .seconds(10))
        #expect(snmp.managers == [.init(host: "192.0.2.9"), .init(host: "192.0.2.10", port: 1162), .init(host: "2001:db8::1")])
        #expect(snmp.version == .v1 && snmp.community == "secret")
        #expect(hook.secretFile == "/etc/understudy/hook.key" && hook.timeout == .seconds(2))
        #expect(command.arguments == ["--quiet"] && command.recipient == "/var/log/alerts")
        #expect(alerts.retry == AlertRetry(attempts: 3, backoff: .milliseconds(500), maxBackoff: .seconds(4)))
        #expect(alerts.queue == 50)
        #expect(alerts.logRecords == 2500)
        // First match wins; a level match takes that level and above.
        #expect(alerts.destinations(module: "rm", id: 9, level: .error) == ["syslog", "oncall", "nms"])
        #expect(alerts.destinations(module: "rc", id: 12, level: .error) == ["syslog", "oncall"])
        #expect(alerts.destinations(module: "rc", id: 11, level: .warning) == ["syslog"])
        #expect(alerts.destinations(module: "logcmd", id: 4711, level: .info) == ["agent"])
    }

    @Test func levelMatchTakesHigherLevels() {
        let match = AlertMatch(level: .warning)
        #expect(!match.matches(module: "nm", id: 1, level: .info))
        #expect(match.matches(module: "nm", id: 2, level: .warning))
        #expect(match.matches(module: "rc", id: 12, level: .error))
    }

    @Test func routesAbsentSendEverythingToSyslogDestinations() throws {
        let config = try load(
            withAlerts("alerts:\n  destinations:\n    - {name: local, type: syslog}\n    - {name: agent, type: command, path: /bin/true}\n")
        ).config
        #expect(config.alerts.destinations(module: "nm", id: 2, level: .warning) == ["local"])
        let none = try load(withAlerts("alerts:\n  destinations:\n    - {name: local, type: syslog}\n  routes: []\n")).config
        #expect(none.alerts.destinations(module: "nm", id: 2, level: .warning).isEmpty)
        let off = try load(withAlerts("alerts: {}\n")).config
        #expect(off.alerts.destinations.isEmpty && off.alerts.effectiveRoutes.isEmpty)
    }

    @Test func backoffDoublesUpToTheCap() {
        let retry = AlertRetry(attempts: 6, backoff: .seconds(1), maxBackoff: .seconds(5))
        #expect((1...5).map { retry.delay(after: $0) } == [.seconds(1), .seconds(2), .seconds(4), .seconds(5), .seconds(5)])
    }

    // MARK: Mistakes

    @Test func unknownDestinationInRoute() {
        expectError(
            withAlerts("alerts:\n  destinations:\n    - {name: oncall, type: syslog}\n  routes:\n    - {match: {}, to: [oncal]}\n"),
            line: firstLine + 4, keyPath: "alerts.routes[0].to[0]", "unknown alert destination \"oncal\"", "oncall")
    }

    @Test func unknownEventIDAndModule() {
        expectError(
            withAlerts("alerts:\n  destinations: [{name: s, type: syslog}]\n  routes:\n    - {match: {module: rm, id: 999}, to: [s]}\n"),
            line: firstLine + 3, keyPath: "alerts.routes[0].match.id", "no event rm 999")
        expectError(
            withAlerts("alerts:\n  destinations: [{name: s, type: syslog}]\n  routes:\n    - {match: {module: rx}, to: [s]}\n"),
            line: firstLine + 3, keyPath: "alerts.routes[0].match.module", "unknown event module \"rx\"")
        expectError(
            withAlerts("alerts:\n  destinations: [{name: s, type: syslog}]\n  routes:\n    - {match: {id: 9}, to: [s]}\n"),
            line: firstLine + 3, keyPath: "alerts.routes[0].match.id", "needs its module")
        expectError(
            withAlerts("alerts:\n  destinations: [{name: s, type: syslog}]\n  routes:\n    - {match: {level: fatal}, to: [s]}\n"),
            line: firstLine + 3, keyPath: "alerts.routes[0].match.level", "info, warning or error")
    }

    @Test func badAddressesAndPorts() {
        expectError(
            withAlerts("alerts:\n  destinations:\n    - {name: s, type: syslog, remote: {address: \"mail_relay!\"}}\n"),
            line: firstLine + 2, keyPath: "alerts.destinations[0].remote.address", "not a valid host name or IP address")
        expectError(
            withAlerts(
                "alerts:\n  destinations:\n    - {name: s, type: syslog, remote: {address: 192.0.2.3, port: 70000, protocol: tls}}\n"),
            line: firstLine + 2, keyPath: "alerts.destinations[0].remote.port", "1 to 65535")
        expectError(
            withAlerts("alerts:\n  destinations:\n    - {name: s, type: syslog, remote: {address: 192.0.2.3, protocol: tls}}\n"),
            line: firstLine + 2, keyPath: "alerts.destinations[0].remote.protocol", "udp, tcp")
        expectError(
            withAlerts("alerts:\n  destinations:\n    - {name: n, type: snmp, managers: [\"192.0.2.9:0\"]}\n"),
            line: firstLine + 2, keyPath: "alerts.destinations[0].managers[0]", "not a manager address")
        expectError(
            withAlerts("alerts:\n  destinations:\n    - {name: h, type: webhook, url: \"ftp://x.example.com/\"}\n"),
            line: firstLine + 2, keyPath: "alerts.destinations[0].url", "not an http:// or https:// URL")
        expectError(
            withAlerts("alerts:\n  destinations:\n    - {name: h, type: webhook, url: \"https://u:p@x.example.com/\"}\n"),
            line: firstLine + 2, keyPath: "alerts.destinations[0].url", "must not carry a user or password")
    }

    @Test func mailMistakes() {
        expectError(
            withAlerts(
                "alerts:\n  destinations:\n    - {name: m, type: mail, smtp: {address: mail.example.com, user: a}, from: a@x.example.com, to: [b@x.example.com]}\n"
            ), line: firstLine + 2, keyPath: "alerts.destinations[0].smtp.password-file", "needs password-file")
        expectError(
            withAlerts(
                "alerts:\n  destinations:\n    - {name: m, type: mail, smtp: {address: mail.example.com}, from: a@x.example.com, to: [\"Bob <b@x.example.com>\"]}\n"
            ), line: firstLine + 2, keyPath: "alerts.destinations[0].to[0]", "not a mail address")
        expectError(
            withAlerts("alerts:\n  destinations:\n    - {name: m, type: mail, smtp: {address: mail.example.com}, to: [b@x.example.com]}\n"),
            line: firstLine + 2, keyPath: "alerts.destinations[0].from", "missing required key")
    }

    @Test func typeMistakes() {
        expectError(
            withAlerts("alerts:\n  destinations:\n    - {name: x, type: pager}\n"), line: firstLine + 2,
            keyPath: "alerts.destinations[0].type", "unknown alert destination type \"pager\"")
        expectError(
            withAlerts("alerts:\n  destinations:\n    - {name: x, type: syslog, url: \"http://a.example.com/\"}\n"), line: firstLine + 2,
            keyPath: "alerts.destinations[0].url", "it is a key of type webhook")
        expectError(
            withAlerts("alerts:\n  destinations:\n    - {name: x, type: syslog}\n    - {name: x, type: syslog}\n"), line: firstLine + 3,
            keyPath: "alerts.destinations[1].name", "duplicate alert destination name \"x\"")
        expectError(
            withAlerts("alerts:\n  retry: {attempts: 0}\n"), line: firstLine + 1, keyPath: "alerts.retry.attempts", "from 1 to 100")
        expectError(withAlerts("alerts:\n  queue: 0\n"), line: firstLine + 1, keyPath: "alerts.queue", "from 1 to 100000")
        expectError(
            withAlerts("alerts:\n  log-records: 99\n"), line: firstLine + 1, keyPath: "alerts.log-records", "from 100 to 1000000")
    }

    @Test func missingCommandIsAWarningNamingTheFile() throws {
        let loaded = try load(
            withAlerts("alerts:\n  destinations:\n    - {name: a, type: command, path: /nonexistent/alert-agent}\n"), checkFiles: true)
        let warning = try #require(loaded.warnings.first { $0.keyPath == "alerts.destinations[0].path" })
        #expect(warning.message.contains("/nonexistent/alert-agent does not exist"))
        #expect(warning.line == firstLine + 2)
    }

    @Test func alertChangesApplyOnline() throws {
        let before = try load(withAlerts(Self.full)).config
        var after = before
        after.alerts.queue = 10
        after.alerts.routes = [AlertRoute(match: AlertMatch(), to: ["agent"])]
        let report = ConfigReflection.compare(running: before, new: after)
        #expect(!report.isEmpty)
        #expect(report.method == .uploadOnly)
        #expect(report.changes.allSatisfy { $0.path.hasPrefix("alerts") })
    }

    /// Mutations of the full alerts section (delete, duplicate, replace characters): errors
    /// or a config, never a crash; and URLs and manager addresses of random text.
    @Test func mutatedAlertsNeverCrash() {
        let original = Array(withAlerts(Self.full))
        var generator = SeededGenerator(seed: 0xA1E7)
        let alphabet: [Character] = Array(" \n\t:-[]{},#&*!|>'\"0123456789abcxyz./@%?")
        for _ in 0..<300 {
            var text = original
            for _ in 0..<Int.random(in: 1...6, using: &generator) {
                // Only inside the alerts section, so the mutations test its reader.
                let index = Int.random(in: (original.count - Self.full.count)..<text.count, using: &generator)
                switch Int.random(in: 0..<3, using: &generator) {
                case 0: text.remove(at: index)
                case 1: text.insert(text[index], at: index)
                default: text[index] = alphabet[Int.random(in: 0..<alphabet.count, using: &generator)]
                }
            }
            _ = try? load(String(text))
            let word = String(
                (0..<Int.random(in: 0..<40, using: &generator)).map { _ in
                    alphabet[Int.random(in: 0..<alphabet.count, using: &generator)]
                })
            for candidate in ["http://" + word, "https://[" + word, word] {
                if let url = WebhookURL(candidate) {
                    #expect(WebhookURL.problem(candidate) == nil && (1...65_535).contains(url.port) && url.target.hasPrefix("/"))
                }
                _ = ConfigReader.parseManager(candidate)
                _ = ConfigReader.mailAddressProblem(candidate)
            }
        }
    }

    @Test func levelWords() {
        #expect(LogLevel(word: "ERROR") == .error && LogLevel(word: "err") == .error)
        #expect(LogLevel(word: "warn") == .warning && LogLevel(word: "WARNING") == .warning)
        #expect(LogLevel(word: "Info") == .info && LogLevel(word: "debug") == nil)
    }
}
