import Foundation
import Testing

@testable import UnderstudyModel

/// `ConfigRedaction`: the configuration copy `clplogcc` puts in an archive.
@Suite("Configuration redaction")
struct ConfigRedactionTests {
    /// The reference example holds no secret value: the copy loads to the same configuration,
    /// its comments are gone, and the cluster key's file is named (to be kept out).
    @Test func exampleConfigurationIsUnchangedButForComments() throws {
        let original = try String(contentsOfFile: examplePath, encoding: .utf8)
        let result = try ConfigRedaction.redact(yaml: original)
        #expect(!result.yaml.contains("#"), "comments must be dropped")
        #expect(!result.yaml.contains(ConfigRedaction.placeholder))
        #expect(result.inlineSecrets.isEmpty)
        #expect(result.secretFiles == ["/etc/understudy/cluster.key"])
        let before = try ConfigLoader.loadWithWarnings(yaml: original, sourcePath: examplePath, checkFiles: false).config
        let after = try ConfigLoader.loadWithWarnings(yaml: result.yaml, sourcePath: examplePath, checkFiles: false).config
        #expect(before == after)
    }

    static let secrets = [
        "c0mmunity-Secret", "hunter2hunter2", "webhook-path-token", "qs-token-123", "oracle-pass-9",
        "inline-api-token-77", "ipmi-pass-42", "dsn-pass-55", "argpass-66",
    ]

    /// A configuration with every kind of secret the schema (and a careless operator) can put
    /// in the file.
    static let everySecret = """
        cluster:
          name: c1
          secret-file: /etc/understudy/cluster.key   # key: hunter2hunter2
          os-commands:
            shutdown: [/usr/bin/ipmitool, -H, 10.0.0.9, -U, admin, -P, ipmi-pass-42, chassis, power, off]
            reboot: [/usr/local/bin/bmc, --password=argpass-66, reboot]
          web:
            certificate: tls/web.crt
            key: tls/web.key
            users-file: /etc/understudy/users.yaml
        servers:
          - name: node1
          - name: node2
        heartbeats:
          - {name: lan1, type: lanhb, addresses: {node1: 10.0.0.1, node2: 10.0.0.2}}
        groups:
          - name: g1
            resources:
              - {name: exec1, type: exec, start: /bin/true, stop: /bin/true}
              - {name: ddns1, type: ddns, hostname: www.example.com, server: 10.0.0.53, key-file: /etc/understudy/tsig.key}
        monitors:
          - {name: psqlw1, type: psqlw, database: app, password-file: /etc/understudy/pg.pass, recovery: {target: g1}}
          - {name: httpw1, type: httpw, url: "https://monitor:hunter2hunter2@10.0.0.5:8443/health?token=qs-token-123", recovery: {target: g1}}
          - {name: oraclew1, type: oraclew, connect-string: "app/oracle-pass-9@orcl", recovery: {target: g1}}
          - {name: httpw2, type: httpw, url: "http://10.0.0.6/", body-match: "password=dsn-pass-55", recovery: {target: g1}}
        alerts:
          destinations:
            - {name: oncall, type: mail, smtp: {address: mail.example.com, port: 587, security: starttls, user: alert, password-file: smtp.pass}, from: cluster@example.com, to: [ops@example.com]}
            - {name: nms, type: snmp, managers: [192.0.2.9:162], community: c0mmunity-Secret, version: 2c}
            - {name: chat, type: webhook, url: "https://hooks.example.com/services/webhook-path-token", secret-file: hook.key}
            - {name: agent, type: command, path: /usr/local/bin/agent, arguments: [--token, inline-api-token-77]}

        """

    @Test func everySecretBearingKeyIsRedacted() throws {
        let result = try ConfigRedaction.redact(yaml: Self.everySecret)
        for secret in Self.secrets {
            #expect(!result.yaml.contains(secret), "\(secret) is still in:\n\(result.yaml)")
        }
        // Inline secrets are reported, so the archive can be searched for them too.
        for secret in Self.secrets {
            #expect(result.inlineSecrets.contains { $0.contains(secret) }, "\(secret) not reported: \(result.inlineSecrets)")
        }
        // The files that hold secrets: named, paths kept.
        #expect(
            Set(result.secretFiles)
                == [
                    "/etc/understudy/cluster.key", "tls/web.key", "/etc/understudy/users.yaml", "/etc/understudy/tsig.key",
                    "/etc/understudy/pg.pass", "smtp.pass", "hook.key",
                ])
        for path in result.secretFiles { #expect(result.yaml.contains(path)) }
        // What support needs stays.
        for kept in [
            "https://monitor:<redacted>@10.0.0.5:8443/health?<redacted>", "https://hooks.example.com/<redacted>",
            "app/<redacted>@orcl", "mail.example.com", "-P", "<redacted>", "--password=<redacted>", "ipmitool", "ops@example.com",
        ] {
            #expect(result.yaml.contains(kept), "\(kept) missing from:\n\(result.yaml)")
        }
        // The copy is still a configuration.
        let loaded = try ConfigLoader.loadWithWarnings(yaml: result.yaml, sourcePath: "/etc/understudy/cluster.yaml", checkFiles: false)
        #expect(loaded.config.monitors.count == 4)
        #expect(loaded.config.alerts.destinations.count == 4)
    }

    @Test func secretsUnderAnyNameOrNestingAreRedacted() throws {
        let yaml = """
            extra:
              api-token: tok-1234
              nested: {db-password: pw-5678, list-secret: [s-one1, s-two2]}
              psk: psk-9999
              dsn: "host=db user=app password='pw with space' sslmode=require"
              credentials: &a anchor-secret
              copy: *a

            """
        let result = try ConfigRedaction.redact(yaml: yaml)
        for secret in ["tok-1234", "pw-5678", "s-one1", "s-two2", "psk-9999", "pw with space", "anchor-secret"] {
            #expect(!result.yaml.contains(secret), "\(secret) is still in:\n\(result.yaml)")
        }
        #expect(result.yaml.contains("sslmode=require"))
        #expect(result.yaml.contains("user=app"))
    }

    @Test func notYAMLGivesNoCopy() {
        #expect(throws: ConfigRedaction.RedactionError.self) { try ConfigRedaction.redact(yaml: "a: [unclosed\n  community: x") }
    }
}
