import Foundation
import Testing

@testable import UnderstudyModel

/// The reflection method of each class of change (reference §9), and the canonical form the
/// configuration's identity is computed from.
@Suite("Configuration reflection")
struct ConfigReflectionTests {
    static let running =
        baseCluster + """
            groups:
              - name: g1
                resources:
                  - {name: exec1, type: exec, start: /bin/true, stop: /bin/true}
              - name: g2
                resources:
                  - {name: exec2, type: exec, start: /bin/true, stop: /bin/true}
            monitors:
              - {name: mon1, type: genw, script: /bin/true, interval: 3s, recovery: {target: g1}}
              - {name: mon2, type: genw, script: /bin/true, recovery: {target: g1}}

            """

    static func report(_ edit: (String) -> String, scripts: [String] = []) throws -> ReflectionReport {
        let old = try load(running).config
        let new = try load(edit(running)).config
        return ConfigReflection.compare(running: old, new: new, changedScripts: scripts)
    }

    @Test("the same configuration, comments, spacing and key order aside, is no change and has one canonical text")
    func sameConfiguration() throws {
        let reformatted = Self.running.replacingOccurrences(of: "  name: c1\n", with: "  name: c1   # the cluster\n")
            .replacingOccurrences(
                of: "{name: lan1, type: lanhb, addresses: {node1: 10.0.0.1, node2: 10.0.0.2}}",
                with: "{type: lanhb, addresses: {node2: 10.0.0.2, node1: 10.0.0.1}, name: lan1}")
        #expect(reformatted != Self.running)
        let report = try Self.report { _ in reformatted }
        #expect(report.isEmpty, "\(report.lines)")
        #expect(report.method == .uploadOnly)
        let a = try load(Self.running).config
        let b = try load(reformatted).config
        #expect(CanonicalForm.text(of: a) == CanonicalForm.text(of: b))
    }

    @Test("the canonical text ignores the folder the file is kept in, not the servers' order")
    func canonicalText() throws {
        let yaml =
            baseCluster + """
                groups:
                  - name: g1
                    resources:
                      - {name: exec1, type: exec, start: scripts/start.sh, stop: /bin/true}

                """
        let here = try load(yaml, sourcePath: "/srv/node1/cluster.yaml").config
        let there = try load(yaml, sourcePath: "/srv/node2/cluster.yaml").config
        #expect(CanonicalForm.text(of: here) == CanonicalForm.text(of: there))
        #expect(CanonicalForm.text(of: here).contains("<config>/scripts/start.sh"))
        let swapped = yaml.replacingOccurrences(of: "  - name: node1\n  - name: node2\n", with: "  - name: node2\n  - name: node1\n")
        #expect(swapped != yaml)
        #expect(CanonicalForm.text(of: try load(swapped).config) != CanonicalForm.text(of: here))
    }

    @Test("a monitor's interval: the monitor restarts, nothing else")
    func monitorInterval() throws {
        let report = try Self.report { $0.replacingOccurrences(of: "interval: 3s", with: "interval: 1s") }
        #expect(report.method == .restartMonitors)
        #expect(report.monitorsToRestart == ["mon1"])
        #expect(report.groupsToStop.isEmpty)
        #expect(report.changes.count == 1)
        #expect(report.changes.first?.path == "monitors.mon1.interval", "\(report.changes)")
        #expect(report.changes.first?.text == "monitor mon1: interval: 3s → 1s", "\(report.changes)")
        #expect(report.method.appliesOnline)
    }

    @Test("monitors added and removed restart only themselves")
    func monitorsAddedRemoved() throws {
        let report = try Self.report {
            $0.replacingOccurrences(
                of: "  - {name: mon2, type: genw, script: /bin/true, recovery: {target: g1}}\n",
                with: "  - {name: mon3, type: genw, script: /bin/true, recovery: {target: g2}}\n")
        }
        #expect(report.method == .restartMonitors)
        #expect(Set(report.monitorsToRestart) == ["mon2", "mon3"])
        #expect(report.lines.contains("monitor mon3 added [suspend and resume the changed monitors]"), "\(report.lines)")
    }

    @Test("group attributes, comments, scripts and a new group are upload only")
    func uploadOnly() throws {
        let edited = Self.running.replacingOccurrences(
            of: "  - name: g2\n", with: "  - name: g2\n    failback: auto\n    comment: the second\n"
        )
        .replacingOccurrences(
            of: "monitors:\n",
            with: "  - name: g3\n    resources:\n      - {name: exec3, type: exec, start: /bin/true, stop: /bin/true}\nmonitors:\n")
        let proper = ConfigReflection.compare(
            running: try load(Self.running).config, new: try load(edited).config, changedScripts: ["start.sh"])
        #expect(proper.method == .uploadOnly, "\(proper.lines)")
        #expect(proper.groupsToStop.isEmpty)
        let texts = proper.changes.map(\.text)
        #expect(texts.contains("group g3 added (offline until started)"), "\(texts)")
        #expect(texts.contains("group g2: failback: .manual → .auto"), "\(texts)")
        #expect(texts.contains("script start.sh changed"), "\(texts)")
    }

    @Test("a resource added, removed or changed needs its group stopped; a group removed too")
    func resourcesNeedTheGroupStopped() throws {
        let added = try Self.report {
            $0.replacingOccurrences(
                of: "      - {name: exec2, type: exec, start: /bin/true, stop: /bin/true}\n",
                with:
                    "      - {name: exec2, type: exec, start: /bin/true, stop: /bin/true}\n      - {name: exec4, type: exec, start: /bin/true, stop: /bin/true}\n"
            )
        }
        #expect(added.method == .stopStartGroups)
        #expect(added.groupsToStop == ["g2"])
        #expect(added.summary.contains("groups to stop first: g2"), "\(added.summary)")
        #expect(added.method.appliesOnline)

        let changed = try Self.report {
            $0.replacingOccurrences(
                of: "{name: exec1, type: exec, start: /bin/true, stop: /bin/true}",
                with: "{name: exec1, type: exec, start: /bin/true, stop: /bin/true, timeout: 90s}")
        }
        #expect(changed.method == .stopStartGroups)
        #expect(changed.groupsToStop == ["g1"])
        #expect(changed.changes.first?.path.hasPrefix("groups.g1.resources.exec1.settings") == true, "\(changed.changes)")

        let removed = try Self.report {
            $0.replacingOccurrences(
                of: "  - name: g2\n    resources:\n      - {name: exec2, type: exec, start: /bin/true, stop: /bin/true}\n", with: "")
        }
        #expect(removed.method == .stopStartGroups)
        #expect(removed.groupsToStop == ["g2"])
    }

    @Test("a server taken out of a group's policy needs the group stopped")
    func policyShrinks() throws {
        let report = try Self.report { $0.replacingOccurrences(of: "  - name: g1\n", with: "  - name: g1\n    servers: [node1]\n") }
        #expect(report.method == .stopStartGroups)
        #expect(report.groupsToStop == ["g1"])
    }

    @Test("servers, heartbeat paths, partition resolution, timing and ports need the service restarted")
    func restartService() throws {
        let edits: [(String, (String) -> String)] = [
            ("servers", { $0.replacingOccurrences(of: "  - name: node1\n  - name: node2\n", with: "  - name: node2\n  - name: node1\n") }),
            ("heartbeats.lan2", { $0.replacingOccurrences(of: "10.0.1.2", with: "10.0.1.3") }),
            ("network-partition.np1", { $0.replacingOccurrences(of: "10.0.0.254", with: "10.0.0.253") }),
            (
                "cluster.timing.heartbeatTimeout",
                {
                    $0.replacingOccurrences(
                        of: "  secret-file: /etc/understudy/test.key\n",
                        with: "  secret-file: /etc/understudy/test.key\n  timing: {heartbeat-timeout: 20s}\n")
                }
            ),
            (
                "cluster.ports.control",
                {
                    $0.replacingOccurrences(
                        of: "  secret-file: /etc/understudy/test.key\n",
                        with: "  secret-file: /etc/understudy/test.key\n  ports: {control: 29011}\n")
                }
            ),
        ]
        for (path, edit) in edits {
            let report = try Self.report(edit)
            #expect(report.method == .restartService, "\(path): \(report.lines)")
            #expect(report.changes.contains { $0.path.hasPrefix(path) }, "\(path): \(report.changes.map(\.path))")
            #expect(!report.method.appliesOnline)
        }
    }

    @Test("the strongest change decides; the report round-trips as JSON")
    func strongestWins() throws {
        let report = try Self.report {
            $0.replacingOccurrences(of: "interval: 3s", with: "interval: 1s").replacingOccurrences(of: "10.0.1.2", with: "10.0.1.3")
        }
        #expect(report.method == .restartService)
        #expect(report.changes.count == 2)
        #expect(report.summary.hasPrefix("Reflection method: stop and start the cluster service"), "\(report.summary)")
        let decoded = try WireJSON.decode(ReflectionReport.self, from: WireJSON.encode(report))
        #expect(decoded == report)
    }

    @Test("every method has a title and only the first three apply online")
    func methods() {
        #expect(ReflectionMethod.allCases.filter(\.appliesOnline) == [.uploadOnly, .restartMonitors, .stopStartGroups])
        #expect(Set(ReflectionMethod.allCases.map(\.title)).count == ReflectionMethod.allCases.count)
    }
}
