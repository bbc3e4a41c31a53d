import Foundation
import Testing

@testable import UnderstudyModel

/// `cluster.rexec-clients`: hosts outside the cluster that may send clprexec requests, each
/// with its own key and allow list.
@Suite("Config: rexec clients")
struct RexecClientConfigTests {
    /// `baseCluster` with the clients after `secret-file:` (line 3): the list starts on line 4,
    /// its first item on line 5.
    func withClients(_ items: String) -> String {
        baseCluster.replacingOccurrences(
            of: "  secret-file: /etc/understudy/test.key\n", with: "  secret-file: /etc/understudy/test.key\n  rexec-clients:\n" + items)
    }

    @Test func clientsLoadIntoExactValues() throws {
        let loaded = try load(
            withClients(
                """
                    - {name: vcenter1, key-file: /etc/understudy/rexec/vcenter1.key, allow: [failover, script, notice]}
                    - name: zabbix.mon
                      comment: the monitoring server
                      key-file: rexec/zabbix.key
                      allow: [notice]

                """), sourcePath: "/etc/understudy/cluster.yaml")
        #expect(
            loaded.config.cluster.rexecClients == [
                RexecClient(name: "vcenter1", keyFile: "/etc/understudy/rexec/vcenter1.key", allow: [.failover, .script, .notice]),
                RexecClient(name: "zabbix.mon", keyFile: "/etc/understudy/rexec/zabbix.key", allow: [.notice]),
            ])
        #expect(try load(baseCluster).config.cluster.rexecClients.isEmpty)
    }

    @Test func mistakesNameTheLineAndKey() {
        expectError(
            withClients("    - {name: v1, key-file: /k, allow: [failover, reboot]}\n"), line: 5,
            keyPath: "cluster.rexec-clients[0].allow[1]", "unknown request \"reboot\"", "failover, script, notice")
        expectError(
            withClients("    - {name: v1, key-file: /k, allow: []}\n"), line: 5, keyPath: "cluster.rexec-clients[0].allow",
            "at least one request")
        expectError(
            withClients("    - {name: v1, allow: [notice]}\n"), line: 5, keyPath: "cluster.rexec-clients[0].key-file",
            "missing required key",
            "understudy keygen")
        expectError(
            withClients("    - {name: v1, key-file: /k, allow: notice}\n"), line: 5, keyPath: "cluster.rexec-clients[0].allow",
            "expected a list")
        expectError(
            withClients("    - {name: \"bad name\", key-file: /k, allow: [notice]}\n"), line: 5, keyPath: "cluster.rexec-clients[0].name",
            "letters, digits")
        expectError(
            withClients("    - {name: v1, key-file: /k, allow: [notice], source: 10.0.0.9}\n"), line: 5,
            keyPath: "cluster.rexec-clients[0].source", "unknown key \"source\"")
        expectError(
            withClients("    - {name: v1, key-file: /k, allow: [notice]}\n    - {name: v1, key-file: /k2, allow: [notice]}\n"), line: 6,
            keyPath: "cluster.rexec-clients[1].name", "listed twice")
        expectError(
            withClients("    - {name: node2, key-file: /k, allow: [notice]}\n"), line: 5, keyPath: "cluster.rexec-clients[0].name",
            "name of a server")
        expectError(
            withClients("    - {name: v1, key-file: /etc/understudy/test.key, allow: [notice]}\n"), line: 5,
            keyPath: "cluster.rexec-clients[0].key-file", "uses the cluster key file")
    }

    @Test func namesAreWhatTheControlChannelCarries() {
        #expect(RexecClient.isValidName("vcenter1"))
        #expect(RexecClient.isValidName("mon_1.example-2"))
        #expect(RexecClient.isValidName(String(repeating: "a", count: 63)))
        for bad in ["", "-x", ".x", "a b", "x;y", String(repeating: "a", count: 64), "ü"] {
            #expect(!RexecClient.isValidName(bad), "\(bad)")
        }
    }
}
