import Foundation
import Testing

@testable import UnderstudyModel

/// The final actions that stop the machine at once (panic, reset, keepalive-reset, bmc-*):
/// every place that reads a final action or a partition action takes them, their commands
/// in `cluster.os-commands` load and default, and clp.conf codes map to them.
@Suite("Immediate final actions: configuration")
struct ImmediateFinalActionConfigTests {
    static let names = ["panic", "reset", "keepalive-reset", "bmc-power-off", "bmc-reset", "bmc-power-cycle", "bmc-nmi"]

    static func yaml(_ action: String, partition: String = "shutdown", process: String = "shutdown", osCommands: String = "") -> String {
        baseCluster.replacingOccurrences(
            of: "  name: c1\n",
            with: """
                  name: c1
                  network-partition: {action: \(partition)}
                  recovery: {process-failure-action: \(process)}
                \(osCommands)
                """)
                + """
                groups:
                  - name: g1
                    resources:
                      - name: exec1
                        type: exec
                        start: /bin/true
                        stop: /bin/true
                        activation: {final-action: \(action)}
                        deactivation: {final-action: \(action)}
                monitors:
                  - {name: m1, type: genw, script: /bin/true, recovery: {target: g1, final-action: \(action)}}

                """
    }

    @Test(
        "each immediate action loads as activation, deactivation and monitor final action, partition and process-failure action",
        arguments: names)
    func loads(_ name: String) throws {
        let config = try load(Self.yaml(name, partition: name, process: name)).config
        let action = try #require(FinalAction(rawValue: name))
        #expect(action.isImmediate)
        #expect(action.stopsOS)
        let resource = try #require(config.groups.first?.resources.first)
        #expect(resource.activation.finalAction == action)
        #expect(resource.deactivation.finalAction == action)
        #expect(config.monitors.first?.recovery.finalAction == action)
        #expect(config.cluster.networkPartitionAction.rawValue == name)
        #expect(config.cluster.networkPartitionAction.isImmediate)
        #expect(config.cluster.recovery.processFailureAction.rawValue == name)
        // Each has its own command, with a default.
        let command = try #require(config.cluster.osCommands[name])
        #expect(!command.isEmpty)
    }

    @Test("a misspelt action is refused with the key and a suggestion")
    func misspelt() {
        expectError(
            Self.yaml("keepalive-rest"), keyPath: "groups[0].resources[0].activation.final-action", "did you mean \"keepalive-reset\"?")
        expectError(
            Self.yaml("shutdown", partition: "bmc-powr-off"), keyPath: "cluster.network-partition.action", "did you mean \"bmc-power-off\"?"
        )
        expectError(
            Self.yaml("shutdown", process: "panik"), keyPath: "cluster.recovery.process-failure-action", "did you mean \"panic\"?")
    }

    @Test("the documented default commands")
    func defaults() {
        let commands = OSCommands()
        #expect(commands.panic == ["/bin/sh", "-c", "echo 1 > /proc/sys/kernel/sysrq; echo c > /proc/sysrq-trigger"])
        #expect(commands.reset == ["/bin/sh", "-c", "echo 1 > /proc/sys/kernel/sysrq; echo b > /proc/sysrq-trigger"])
        #expect(commands.keepaliveReset.last?.contains("exec 3>/dev/watchdog") == true)
        #expect(commands.bmcPowerOff == ["ipmitool", "-I", "open", "chassis", "power", "off"])
        #expect(commands.bmcReset == ["ipmitool", "-I", "open", "chassis", "power", "reset"])
        #expect(commands.bmcPowerCycle == ["ipmitool", "-I", "open", "chassis", "power", "cycle"])
        #expect(commands.bmcNMI == ["ipmitool", "-I", "open", "chassis", "power", "diag"])
        #expect(OSCommands.keys.allSatisfy { commands[$0] != nil })
        #expect(commands["halt"] == nil)
        // Every key of the docs' table.
        let docs = (try? String(contentsOfFile: packageRoot + "/docs/configuration.md", encoding: .utf8)) ?? ""
        for key in OSCommands.keys { #expect(docs.contains("`os-commands.\(key)`"), "docs/configuration.md lacks os-commands.\(key)") }
    }

    @Test("os-commands keys load, replace the defaults one by one; an empty one and an unknown key are refused")
    func osCommands() throws {
        let commands = """
              os-commands:
                panic: [/bin/sh, -c, "echo panic >> /tmp/x"]
                bmc-nmi: [/bin/echo, nmi]

            """
        let config = try load(Self.yaml("reset", osCommands: commands)).config
        #expect(config.cluster.osCommands.panic == ["/bin/sh", "-c", "echo panic >> /tmp/x"])
        #expect(config.cluster.osCommands.bmcNMI == ["/bin/echo", "nmi"])
        #expect(config.cluster.osCommands.reset == Defaults.resetCommand)

        expectError(
            Self.yaml("reset", osCommands: "  os-commands: {keepalive-reset: []}\n"), keyPath: "cluster.os-commands.keepalive-reset",
            "expected a command")
        expectError(
            Self.yaml("reset", osCommands: "  os-commands: {bmc-powercycle: [/bin/true]}\n"), keyPath: "cluster.os-commands.bmc-powercycle",
            "did you mean \"bmc-power-cycle\"?")
    }

    // MARK: clp.conf

    static func clpConf(npaction: Int, recover: Int, act: Int, deact: Int, emergency: Int) -> Data {
        Data(
            """
            <?xml version="1.0" encoding="ASCII"?>
            <root>
              <cluster><name>c1</name><networkpartition><npaction>\(npaction)</npaction></networkpartition></cluster>
              <pm><exec0><recover>\(recover)</recover></exec0><exec1><recover>\(recover)</recover></exec1></pm>
              <server name="n1"><priority>0</priority><device id="0"><type>lan</type><info>10.0.0.1</info></device></server>
              <server name="n2"><priority>1</priority><device id="0"><type>lan</type><info>10.0.0.2</info></device></server>
              <heartbeat><types name="lankhb"/><lankhb name="lankhb1"><priority>0</priority><device>0</device></lankhb></heartbeat>
              <group name="failover1"><comment/><gid>0</gid><resource name="exec@exec1"/></group>
              <resource><types name="exec"/>
                <exec name="exec1"><comment/><act><action>\(act)</action></act><deact><action>\(deact)</action></deact>
                  <parameters><act><path>start.sh</path></act><deact><path>stop.sh</path></deact></parameters></exec>
              </resource>
              <monitor><types name="genw"/><genw name="genw1"><comment/><target>exec1</target>
                <relation><type>grp</type><name>failover1</name></relation><emergency><action>\(emergency)</action></emergency>
                <parameters><path>genw.sh</path></parameters></genw></monitor>
            </root>
            """.utf8)
    }

    struct ClpCase: Sendable, CustomTestStringConvertible {
        var npaction: Int
        var recover: Int
        var final: Int
        var expected: String
        var testDescription: String { expected }
    }

    @Test(
        "clp.conf codes for sysrq panic, keepalive reset and BMC actions map to the immediate actions",
        arguments: [
            ClpCase(npaction: 4, recover: 5, final: 8, expected: "panic"),
            ClpCase(npaction: 5, recover: 6, final: 9, expected: "keepalive-reset"),
            ClpCase(npaction: 7, recover: 8, final: 11, expected: "bmc-reset"),
            ClpCase(npaction: 8, recover: 9, final: 12, expected: "bmc-power-off"),
            ClpCase(npaction: 9, recover: 10, final: 13, expected: "bmc-power-cycle"),
            ClpCase(npaction: 10, recover: 11, final: 14, expected: "bmc-nmi"),
        ])
    func clpImport(_ row: ClpCase) throws {
        let data = Self.clpConf(npaction: row.npaction, recover: row.recover, act: row.final, deact: row.final, emergency: row.final)
        let result = try ClpConfImporter.convert(data, sourceName: "clp.conf", date: Date(timeIntervalSince1970: 1_800_000_000))
        let config = try ConfigLoader.loadWithWarnings(yaml: result.yaml, sourcePath: "/etc/understudy/cluster.yaml", checkFiles: false)
            .config
        let expected = try #require(FinalAction(rawValue: row.expected))
        #expect(config.cluster.networkPartitionAction.rawValue == row.expected)
        #expect(config.cluster.recovery.processFailureAction.rawValue == row.expected)
        let resource = try #require(config.groups.first?.resources.first)
        #expect(resource.activation.finalAction == expected)
        #expect(resource.deactivation.finalAction == expected)
        #expect(config.monitors.first?.recovery.finalAction == expected, "\(result.yaml)")
        let finalActionItems = result.unmapped.filter {
            $0.path.hasSuffix("action") || $0.path.hasSuffix("npaction") || $0.path.hasSuffix("recover")
        }
        #expect(finalActionItems.isEmpty, "\(result.unmapped)")
    }

    @Test("keepalive panic and I/O fencing stay listed as unmapped")
    func clpImportUnmapped() throws {
        let data = Self.clpConf(npaction: 6, recover: 12, act: 10, deact: 15, emergency: 15)
        let result = try ClpConfImporter.convert(data, sourceName: "clp.conf", date: Date(timeIntervalSince1970: 1_800_000_000))
        let paths = Set(result.unmapped.map(\.path))
        #expect(paths.contains("cluster/networkpartition/npaction"), "\(result.unmapped)")
        #expect(paths.contains("pm/exec*/recover"), "\(result.unmapped)")
        #expect(paths.contains { $0.hasSuffix("/act/action") }, "\(result.unmapped)")
        #expect(paths.contains { $0.hasSuffix("/deact/action") }, "\(result.unmapped)")
        #expect(paths.contains { $0.hasSuffix("/emergency/action") }, "\(result.unmapped)")
    }
}
