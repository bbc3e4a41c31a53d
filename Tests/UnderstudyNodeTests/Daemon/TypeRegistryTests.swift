import Foundation
import Testing
import UnderstudyModel

@testable import UnderstudyNode

/// The registries are the one place that says which types the daemon runs: the daemon's
/// refusal, and the Status column of docs/configuration.md, follow them.
@Suite("Type registries")
struct TypeRegistryTests {
    static let configurationDoc: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<4 { url.deleteLastPathComponent() }
        return (try? String(contentsOf: url.appendingPathComponent("docs/configuration.md"), encoding: .utf8)) ?? ""
    }()

    /// The rows `| \`type\` | … | Status |` of the docs whose first cell is a type name, with
    /// their Status ("runs", "parsed only", or "runs with …" for a monitor that runs with some
    /// settings only).
    static func documentedStatus() -> [String: Set<String>] {
        var result: [String: Set<String>] = [:]
        for line in configurationDoc.split(separator: "\n") where line.hasPrefix("| `") {
            let cells = line.split(separator: "|", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
            guard cells.count >= 3, let status = cells.dropLast().last,
                status == "runs" || status == "parsed only" || status.hasPrefix("runs with")
            else { continue }
            for name in cells[1].split(separator: ",") {
                let type = name.trimmingCharacters(in: CharacterSet(charactersIn: " `"))
                result[type, default: []].insert(status.hasPrefix("runs") ? "runs" : "parsed only")
            }
        }
        return result
    }

    @Test("docs/configuration.md marks exactly the registered types as running")
    func docsFollowTheRegistries() throws {
        let documented = Self.documentedStatus()
        try #require(!documented.isEmpty, "no type rows with a Status column found in docs/configuration.md")
        let checks: [(String, [String], Set<String>)] = [
            ("resource", ResourceType.allCases.map(\.rawValue), Set(ResourceDrivers.supportedTypes.map(\.rawValue))),
            ("monitor", MonitorType.allCases.map(\.rawValue), Set(MonitorProbes.supported.map(\.rawValue))),
            ("heartbeat", ["lanhb", "diskhb", "comhb", "witnesshb"], HeartbeatTransports.supportedTypes),
            ("network-partition", ["pingnp", "httpnp"], PartitionResolvers.supportedTypes),
        ]
        for (kind, all, running) in checks {
            for type in all {
                guard let statuses = documented[type] else {
                    Issue.record("\(kind) type \(type) has no row with a Status in docs/configuration.md")
                    continue
                }
                let expected = running.contains(type) ? "runs" : "parsed only"
                #expect(statuses == [expected], "\(kind) type \(type): documented \(statuses.sorted()), the daemon \(expected)")
            }
        }
    }

    @Test("the daemon refuses every type it has no driver, transport, resolver or probe for, naming each")
    func daemonRefusesUnregisteredTypes() throws {
        let yaml = """
            cluster: {name: c, secret-file: /etc/understudy/cluster.key}
            servers: [{name: s1}, {name: s2}]
            heartbeats:
              - {name: lan1, type: lanhb, addresses: {s1: 10.0.0.1, s2: 10.0.0.2}}
              - {name: wit1, type: witnesshb, host: witness.example.com}
            network-partition:
              - {name: witness, type: httpnp, host: witness.example.com}
            groups:
              - name: g
                resources:
                  - {name: data, type: vm, vm-name: web}
                  - {name: app, type: exec, start: /bin/true, stop: /bin/true}
            monitors:
              - {name: ora, type: oraclew, connect-string: orcl, password-file: /etc/pw, recovery: {target: g}}

            """
        let config = try ConfigLoader.loadWithWarnings(yaml: yaml, sourcePath: "/tmp/types.yaml", checkFiles: false).config
        let error = #expect(throws: DaemonStartError.self) { try ClusterDaemon.checkSupported(config) }
        let message = error?.description ?? ""
        for part in [
            "resource data (group g) has type 'vm'", "monitor ora has type 'oraclew'",
        ] {
            #expect(message.contains(part), "\(message)")
        }
        #expect(!message.contains("resource app"), "\(message)")
        // witnesshb and httpnp run now.
        #expect(!message.contains("wit1 has type") && !message.contains("witness has type"), "\(message)")
    }
}
