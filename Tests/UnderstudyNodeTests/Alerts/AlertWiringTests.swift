import Foundation
import Synchronization
import Testing
import UnderstudyModel
import UnderstudyTestSupport

@testable import UnderstudyNode

/// From the YAML `alerts:` section to a real receiver: the registry builds mail and SNMP
/// destinations from the loaded settings, the router delivers through them, and a mail the
/// relay accepted for some recipients is not sent again.
@Suite("Alert destinations from the configuration", .serialized)
struct AlertWiringTests {
    static func alert(_ message: String) -> AlertEvent {
        AlertEvent(cluster: "prod", server: "node1", time: Date(), level: .error, module: "rm", eventID: 9, message: message)
    }

    static func context() -> AlertDestinationContext {
        AlertDestinationContext(
            cluster: "prod", server: "node1", runner: ScriptRunner(), host: HostFacts.detect(productVersion: "t", installPath: "/"),
            logger: .init(label: "test"))
    }

    static func load(_ alerts: String, folder: String) throws -> ClusterConfig {
        try ConfigLoader.load(
            yaml: """
                cluster: {name: prod, secret-file: /etc/understudy/test.key}
                servers: [{name: node1}, {name: node2}]
                heartbeats: [{name: lan1, type: lanhb, addresses: {node1: 10.0.0.1, node2: 10.0.0.2}}]
                alerts:
                \(alerts)
                """, sourcePath: folder + "/cluster.yaml")
    }

    static func router(for config: ClusterConfig) async -> AlertRouter {
        let router = AlertRouter()
        router.configure(config.alerts, destinations: AlertDestinationRegistry.build(config.alerts, context: context()))
        await router.start()
        return router
    }

    @Test(
        "mail from the YAML: STARTTLS with the CA file, AUTH with the password file; a partly refused mail is not sent twice",
        .requires(MailTestServer.prerequisite, TestCertificates.openssl))
    func mailFromConfiguration() async throws {
        try await withTemporaryFolder { folder in
            let server = try await MailTestServer.start(security: .starttls, authentication: "PLAIN", refuse: ["gone@example.com"])
            defer { server.stop() }
            try "\(server.password)\n".write(toFile: folder + "/smtp.pass", atomically: true, encoding: .utf8)
            let config = try Self.load(
                """
                  destinations:
                    - name: oncall
                      type: mail
                      smtp: {address: 127.0.0.1, port: \(server.port), security: starttls, ca-file: \(server.certificate), user: \(server.user), password-file: \(folder)/smtp.pass, timeout: 10s}
                      from: understudy@example.com
                      to: [ops@example.com, gone@example.com]
                  routes:
                    - {match: {}, to: [oncall]}
                  retry: {attempts: 3, backoff: 50ms, max-backoff: 50ms}
                """, folder: folder)
            guard case .mail(let settings) = config.alerts.destinations.first?.kind else {
                Issue.record("not a mail destination: \(config.alerts)")
                return
            }
            #expect(settings.security == .starttls && settings.port == server.port && settings.caFile == server.certificate)
            let router = await Self.router(for: config)
            router.submit(Self.alert("fipw1 failed"))
            #expect(await eventually(within: .seconds(15)) { router.lines.first?.failed == 1 }, "\(router.lines)")
            let line = try #require(router.lines.first)
            #expect(line.retried == 0, "a mail delivered to ops@ must not be sent again: \(line)")
            #expect(line.lastError?.contains("gone@example.com") == true, "\(line)")
            let mails = try server.messages()
            #expect(mails.count == 1 && mails.first?.tls == true && mails.first?.rcpt_tos == ["ops@example.com"], "\(server.log)")
            await router.stop()
        }
    }

    @Test("a password file that cannot be read: the destination fails with that reason, the daemon goes on")
    func unreadablePasswordFile() async throws {
        try await withTemporaryFolder { folder in
            let config = try Self.load(
                """
                  destinations:
                    - {name: oncall, type: mail, smtp: {address: 127.0.0.1, port: 2525, starttls: true, user: a, password-file: \(folder)/missing.pass}, from: a@example.com, to: b@example.com}
                  retry: {attempts: 1, backoff: 10ms, max-backoff: 10ms}
                """, folder: folder)
            let built = AlertDestinationRegistry.build(config.alerts, context: Self.context())
            await #expect(throws: AlertDeliveryError.self) { try await built.first?.destination.deliver(Self.alert("x")) }
            do {
                try await built.first?.destination.deliver(Self.alert("x"))
            } catch {
                #expect("\(error)".contains("cannot read the SMTP password file \(folder)/missing.pass"))
            }
        }
    }

    @Test("security must be none, starttls or tls; tls defaults to port 465; not both security and starttls")
    func mailSecurityKeys() async throws {
        try await withTemporaryFolder { folder in
            let tls = try Self.load(
                "  destinations: [{name: m, type: mail, smtp: {address: relay.example.com, security: tls}, from: a@example.com, to: b@example.com}]",
                folder: folder)
            guard case .mail(let settings) = tls.alerts.destinations.first?.kind else {
                Issue.record("\(tls.alerts)")
                return
            }
            #expect(settings.security == .tls && settings.port == 465 && settings.verifyCertificate)
            for (smtp, words) in [
                ("{address: r.example.com, security: ssl}", "must be none, starttls or tls"),
                ("{address: r.example.com, security: tls, starttls: true}", "give security or starttls, not both"),
            ] {
                #expect(throws: ConfigErrors.self) {
                    _ = try Self.load(
                        "  destinations: [{name: m, type: mail, smtp: \(smtp), from: a@example.com, to: b@example.com}]", folder: folder)
                }
                do {
                    _ = try Self.load(
                        "  destinations: [{name: m, type: mail, smtp: \(smtp), from: a@example.com, to: b@example.com}]", folder: folder)
                } catch {
                    #expect("\(error)".contains(words) && "\(error)".contains("cluster.yaml:"), "\(error)")
                }
            }
        }
    }

    @Test("SNMP from the YAML: the trap reaches snmptrapd, decoded with the MIB", .requires(SNMPTools.snmptrapd))
    func trapFromConfiguration() async throws {
        try await withTemporaryFolder { folder in
            let receiver = try await SNMPTrapReceiver.start()
            defer { receiver.stop() }
            let config = try Self.load(
                """
                  destinations:
                    - {name: nms, type: snmp, managers: ["127.0.0.1:\(receiver.port)"], community: public, version: 2c}
                  routes:
                    - {match: {level: error}, to: [nms]}
                """, folder: folder)
            let router = await Self.router(for: config)
            router.submit(Self.alert("wiring-check-7731"))
            #expect(await eventually(within: .seconds(10)) { router.lines.first?.delivered == 1 }, "\(router.lines)")
            let log = try await receiver.waitForTrap(containing: ["understudyAlertError", "wiring-check-7731"])
            #expect(log != nil, "\(receiver.log.suffix(2000))")
            await router.stop()
        }
    }
}
