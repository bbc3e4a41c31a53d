import Foundation
import Testing

@testable import UnderstudyModel

/// The clp.conf fixtures (Tests/Fixtures/clpconf/…), written from the documented format.
let clpFixtures = packageRoot + "/Tests/Fixtures/clpconf"

private func fixture(_ name: String) throws -> Data {
    try Data(contentsOf: URL(fileURLWithPath: "\(clpFixtures)/\(name)/clp.conf"))
}

private let importDate = Date(timeIntervalSince1970: 1_800_000_000)

private func convert(_ data: Data) throws(ClpImportError) -> ClpImportResult {
    try ClpConfImporter.convert(data, sourceName: "clp.conf", date: importDate)
}

/// Loads converted YAML as `config check` does (files are not on this machine).
private func loadConverted(_ result: ClpImportResult) throws -> ClusterConfig {
    try ConfigLoader.loadWithWarnings(yaml: result.yaml, sourcePath: "/etc/understudy/cluster.yaml", checkFiles: false).config
}

private func resource(_ config: ClusterConfig, _ name: String) -> ResourceConfig? {
    config.groups.flatMap(\.resources).first { $0.name == name }
}

/// Text as EUC-JP bytes, by the arithmetic between Shift_JIS and EUC-JP (JIS X 0208).
private func eucJP(_ text: String) -> Data? {
    guard let shiftJIS = text.data(using: .shiftJIS) else { return nil }
    var output = Data()
    var index = shiftJIS.startIndex
    while index < shiftJIS.endIndex {
        let lead = Int(shiftJIS[index])
        if lead < 0x80 {
            output.append(UInt8(lead))
            index += 1
        } else if (0xA1...0xDF).contains(lead) {
            output += [0x8E, UInt8(lead)]
            index += 1
        } else {
            guard index + 1 < shiftJIS.endIndex else { return nil }
            let trail = Int(shiftJIS[index + 1])
            let adjusted = lead >= 0xE0 ? lead - 0x40 : lead
            let row: Int
            let cell: Int
            if trail >= 0x9F {
                row = (adjusted - 0x70) * 2
                cell = trail - 0x7E
            } else {
                row = (adjusted - 0x70) * 2 - 1
                cell = trail - (trail >= 0x80 ? 0x20 : 0x1F)
            }
            output += [UInt8(row | 0x80), UInt8(cell | 0x80)]
            index += 2
        }
    }
    return output
}

@Suite("clp.conf import")
struct ClpImportTests {
    @Test("a two-server shared-disk configuration converts and loads")
    func twoServerSharedDisk() throws {
        let result = try convert(try fixture("two-server-shared-disk"))
        let config = try loadConverted(result)
        let paths = result.unmapped.map(\.path)
        #expect(config.cluster.name == "webcluster")
        #expect(config.cluster.comment == "two servers, shared disk")
        #expect(config.cluster.timing.heartbeatTimeout == .seconds(50))
        #expect(config.cluster.timing.heartbeatInterval == .seconds(3))
        #expect(config.servers.map(\.name) == ["server1", "server2"])
        #expect(config.heartbeats.map(\.name) == ["lankhb1", "lankhb2", "diskhb1"])
        #expect(config.networkPartition.map(\.name) == ["pingnp1"])
        #expect(result.yaml.contains("addresses: {server1: 192.168.137.71, server2: 192.168.137.72}"))
        #expect(result.yaml.contains("device: /dev/disk/by-id/scsi-hb"))
        #expect(result.yaml.contains("targets: [192.168.137.1]"))
        #expect(result.yaml.contains("action: reboot"))
        #expect(result.yaml.contains("suppress-final-action-when-alone: [activation, monitor]"))
        #expect(result.yaml.contains("method: softdog"))
        #expect(config.groups.map(\.name) == ["failover1"])
        #expect(config.groups.first?.comment == "nginx on a shared disk")
        #expect(config.groups.first?.resources.map(\.name) == ["fip1", "disk1", "exec1"])
        let exec = try #require(resource(config, "exec1"))
        #expect(exec.depends == ["disk1", "fip1"])
        #expect(exec.activation.retry == 1)
        #expect(exec.activation.finalAction == .stopGroup)
        #expect(exec.deactivation.finalAction == .reboot)
        #expect(result.yaml.contains("start: scripts/failover1/exec1/start.sh"))
        #expect(result.yaml.contains("start-mode: async"), "a pidw watches exec1, so it must start asynchronously")
        #expect(result.yaml.contains("log-rotate-size: 2000000"))
        #expect(result.yaml.contains("mount-options: \"rw,noatime\"") || result.yaml.contains("mount-options: rw,noatime"))
        #expect(result.yaml.contains("fsck: always"))
        #expect(config.monitors.map(\.name) == ["userw", "fipw1", "diskw1", "pidw1", "ipw1", "genw1", "miiw1", "psw1"])
        #expect(result.yaml.contains("targets: [192.168.137.1, 192.168.137.2]"))
        #expect(result.yaml.contains("recovery: {target: failover1, reactivations: 0, failovers: 1, final-action: stop-group}"))
        #expect(result.yaml.contains("recovery: {target: local-server, final-action: shutdown}"))
        #expect(result.yaml.contains("script: scripts/monitor.s/genw1/preaction.sh, script-before: [reactivation]"))
        // A device no converted path uses: one line for the device, with its value.
        #expect(paths.contains("server@server1/device@3 = 10.99.0.1"), "\(paths)")
        #expect(result.unmapped.count == 3, "\(result.unmapped)")
        #expect(result.yaml.contains("retry-on-timeout: false"))
        #expect(result.yaml.contains("timing: active"))
        #expect(result.yaml.contains("first-wait: 30s"))
        #expect(result.yaml.contains("process-name: \"nginx: master process\""))
        // The scripts of the exported folder, copied to the same place beside the YAML.
        #expect(
            result.scripts.map(\.source) == [
                "scripts/failover1/exec1/start.sh", "scripts/failover1/exec1/stop.sh", "scripts/monitor.s/genw1/genw.sh",
                "scripts/monitor.s/genw1/preaction.sh",
            ])
        #expect(result.scripts.map(\.destination) == result.scripts.map(\.source))
        // The mirror disk and its monitor are listed, not dropped.
        #expect(paths.contains("resource/md@md1"), "\(result.unmapped)")
        #expect(paths.contains("monitor/mdw@mdw1"), "\(result.unmapped)")
        #expect(result.unmapped.first { $0.path == "resource/md@md1" }?.reason.contains("mirror") == true)
        #expect(result.yaml.contains("#   resource/md@md1: mirror disk resource"))
        #expect(result.yaml.hasPrefix("# Converted from clp.conf by `understudy config import` on 2027-01-15."))
        // Bookkeeping (all/, trekking/, objectnumber) is not worth a line.
        #expect(!paths.contains { $0.hasPrefix("all/") || $0.hasPrefix("trekking/") || $0.hasPrefix("webmgr/") }, "\(paths)")
    }

    @Test("a three-server configuration in any element order, types after their instances, converts and loads")
    func threeServerAnyOrder() throws {
        let result = try convert(try fixture("three-server-lvm"))
        let config = try loadConverted(result)
        #expect(config.cluster.name == "lvmcluster")
        #expect(config.cluster.comment == "三台構成")
        #expect(config.servers.map(\.name) == ["node-a", "node-b", "node-c"], "priority order, not file order")
        #expect(config.heartbeats.map(\.name) == ["lankhb1", "lanhb1"], "priority order; bmchb not converted")
        #expect(result.yaml.contains("addresses: {node-a: 10.1.0.1, node-b: 10.1.0.2, node-c: 10.1.0.3}"))
        #expect(result.yaml.contains("targets: [10.1.0.254, 10.2.0.254, 10.2.0.253]"))
        #expect(result.yaml.contains("action: stop-service"))
        #expect(config.groups.map(\.name) == ["web", "batch"], "gid order; the management group is not converted")
        let web = try #require(config.groups.first)
        #expect(web.comment == "ウェブ")
        #expect(web.failback == .auto)
        #expect(web.resources.map(\.name) == ["fip-web", "volmgr1", "disk1", "exec-web"])
        #expect(result.yaml.contains("groups: [batch]"))
        #expect(result.yaml.contains("when: [cluster-stop, server-stop]"))
        #expect(result.yaml.contains("timeout: 600s"))
        let batch = try #require(config.groups.last)
        #expect(batch.servers == ["node-c", "node-b"])
        #expect(batch.startup == .manual)
        #expect(batch.failover == .manual)
        #expect(batch.exclusive == .normal)
        #expect(result.yaml.contains("manager: lvm"))
        #expect(result.yaml.contains("volume: vg_shared"))
        #expect(result.yaml.contains("filesystem: xfs"))
        #expect(result.yaml.contains("unmount-busy-action: none"))
        #expect(result.yaml.contains("timeout: 300s"))
        #expect(result.yaml.contains("stop-timeout: 120s"))
        #expect(result.yaml.contains("start: /opt/batch/bin/start-batch"), "an absolute script path stays as it is")
        #expect(result.scripts.map(\.destination) == ["scripts/web/exec-web/start.sh", "scripts/web/exec-web/stop.sh"])
        #expect(config.monitors.map(\.name) == ["volmgrw1", "psqlw1", "userw"])
        #expect(result.yaml.contains("servers: [node-a, node-b]"))
        #expect(result.yaml.contains("port: 5433"))
        let paths = result.unmapped.map(\.path)
        for expected in [
            "group@ManagementGroup", "resource/fip@fip-mgmt", "heartbeat/bmchb@bmchb1", "resource/fip@fip-web/server@node-c",
            "monitor/psqlw@psqlw1/parameters/password", "monitor/userw@userw/parameters/method",
        ] {
            #expect(paths.contains(expected), "\(expected) missing from \(paths)")
        }
        // Leaves no rule knows are listed with their value.
        #expect(paths.contains("cluster/rsctimeout/rsctoaction = 0"), "\(paths)")
        #expect(result.yaml.contains("level: 2"))
        #expect(!paths.contains { $0.hasPrefix("server@node-a/device@600") }, "the BMC devices are part of the bmchb line: \(paths)")
    }

    @Test("Shift_JIS, EUC-JP and UTF-8 files give the same configuration")
    func encodings() throws {
        let text = try #require(String(data: try fixture("three-server-lvm"), encoding: .utf8))
        let reference = try convert(Data(text.utf8))
        // Foundation on Linux cannot write EUC-JP; the test turns Shift_JIS into it (checked
        // against known bytes below).
        #expect(eucJP("三台") == Data([0xBB, 0xB0, 0xC2, 0xE6]))
        #expect(eucJP("ウェブ ｶﾅ") == Data([0xA5, 0xA6, 0xA5, 0xA7, 0xA5, 0xD6, 0x20, 0x8E, 0xB6, 0x8E, 0xC5]))
        for declared in ["Shift_JIS", "EUC-JP", "SJIS", "EUC-JP"] {
            let recoded = text.replacingOccurrences(of: "encoding=\"UTF-8\"", with: "encoding=\"\(declared)\"")
            let bytes = try #require(declared.hasPrefix("EUC") ? eucJP(recoded) : recoded.data(using: .shiftJIS), "\(declared)")
            #expect(bytes != Data(recoded.utf8), "the fixture's Japanese text must differ in \(declared)")
            let result = try convert(bytes)
            #expect(result.yaml == reference.yaml, "\(declared)")
            #expect(try loadConverted(result).cluster.comment == "三台構成")
        }
        // A file declared ASCII (the GUI's usual header) that holds Shift_JIS bytes still reads.
        let ascii = text.replacingOccurrences(of: "encoding=\"UTF-8\"", with: "encoding=\"ASCII\"")
        let result = try convert(try #require(ascii.data(using: .shiftJIS)))
        #expect(try loadConverted(result).cluster.comment == "三台構成")
    }

    @Test("CRLF line ends and a byte order mark change nothing")
    func crlf() throws {
        let text = try #require(String(data: try fixture("two-server-shared-disk"), encoding: .utf8))
        let reference = try convert(Data(text.utf8))
        let crlf = Data([0xEF, 0xBB, 0xBF]) + Data(text.replacingOccurrences(of: "\n", with: "\r\n").utf8)
        #expect(try convert(crlf).yaml == reference.yaml)
    }

    @Test("unreadable input names its line")
    func unreadable() {
        let cases: [(String, Int, String)] = [
            ("<?xml version=\"1.0\"?>\n<root>\n  <cluster>\n    <name>c</nam>\n  </cluster>\n</root>\n", 4, "</nam> closes <name>"),
            ("<?xml version=\"1.0\"?>\n<root>\n  <cluster>\n", 3, "not closed"),
            ("<?xml version=\"1.0\"?>\n<config>\n</config>\n", 2, "not a clp.conf"),
            ("\n\n<root><a b=c/></root>", 3, "not quoted"),
            ("<root><a>&bogus;</a></root>", 1, "unknown entity"),
            ("", 1, "no XML element"),
        ]
        for (text, line, message) in cases {
            do {
                _ = try convert(Data(text.utf8))
                Issue.record("no error for \(text)")
            } catch {
                #expect(error.line == line, "\(error)")
                #expect(error.message.contains(message), "\(error)")
            }
        }
        // Bytes that are no Japanese encoding at all.
        let garbage =
            Data("<?xml version=\"1.0\" encoding=\"EUC-JP\"?>\n<root>\n<a>".utf8) + Data([0xFF, 0xFF, 0xFE]) + Data("</a></root>".utf8)
        #expect(throws: ClpImportError.self) { try convert(garbage) }
        do {
            _ = try convert(garbage)
        } catch {
            #expect(error.line == 3, "\(error)")
        }
    }

    @Test("every element with a value is converted or listed")
    func nothingSilentlyDropped() throws {
        let text = try #require(String(data: try fixture("two-server-shared-disk"), encoding: .utf8))
        let extended = text.replacingOccurrences(
            of: "<parameters><ip>192.168.137.70</ip></parameters>",
            with: "<parameters><ip>192.168.137.70</ip><mystery>42</mystery></parameters><act><timeout>90</timeout></act>"
        ).replacingOccurrences(of: "<webmgr>", with: "<webmgr><security><clientlist><iprest>1</iprest></clientlist></security>")
        let result = try convert(Data(extended.utf8))
        let paths = result.unmapped.map(\.path)
        #expect(paths.contains("resource/fip@fip1/parameters/mystery = 42"), "\(paths)")
        #expect(paths.contains("resource/fip@fip1/act/timeout = 90"), "\(paths)")
        #expect(paths.contains("webmgr/security/clientlist/iprest = 1"), "\(paths)")
        _ = try loadConverted(result)
    }

    @Test("names Understudy does not accept are renamed, references follow")
    func renames() throws {
        let text = try #require(String(data: try fixture("two-server-shared-disk"), encoding: .utf8))
        let renamed = text.replacingOccurrences(of: "server1", with: "Server1").replacingOccurrences(of: "exec1\"", with: "exec 1\"")
            .replacingOccurrences(of: ">exec1<", with: ">exec 1<")
        let result = try convert(Data(renamed.utf8))
        let config = try loadConverted(result)
        #expect(config.servers.map(\.name) == ["server1", "server2"])
        #expect(resource(config, "exec_1") != nil)
        #expect(config.monitors.first { $0.name == "pidw1" }?.target == "exec_1")
        #expect(result.notes.contains { $0.contains("\"exec 1\"") }, "\(result.notes)")
        #expect(result.scripts.first?.source == "scripts/failover1/exec 1/start.sh")
        #expect(result.scripts.first?.destination == "scripts/failover1/exec_1/start.sh")
    }

    @Test("serial and witness heartbeats, HTTP network partition; a disk heartbeat with different paths is listed")
    func otherPaths() throws {
        let text = """
            <?xml version="1.0" encoding="ASCII"?>
            <root>
              <cluster><name>c2</name></cluster>
              <server name="n1"><priority>0</priority>
                <device id="0"><type>lan</type><info>10.0.0.1</info></device>
                <device id="200"><type>com</type><info>/dev/ttyS0</info></device>
                <device id="300"><type>disk</type><info>/dev/sdb1</info></device>
                <device id="700"><type>witness</type><info>1</info></device>
                <device id="10700"><type>http</type><info>1</info></device>
              </server>
              <server name="n2"><priority>1</priority>
                <device id="0"><type>lan</type><info>10.0.0.2</info></device>
                <device id="200"><type>com</type><info>/dev/ttyS1</info></device>
                <device id="300"><type>disk</type><info>/dev/sdc1</info></device>
                <device id="700"><type>witness</type><info>1</info></device>
                <device id="10700"><type>http</type><info>1</info></device>
              </server>
              <heartbeat>
                <lankhb name="lankhb1"><priority>0</priority><device>0</device></lankhb>
                <comhb name="comhb1"><priority>1</priority><device>200</device></comhb>
                <diskhb name="diskhb1"><priority>2</priority><device>300</device></diskhb>
                <witnesshb name="witnesshb1"><priority>3</priority><device>700</device><host>10.0.9.9</host><port>8080</port></witnesshb>
                <types name="lankhb"/><types name="comhb"/><types name="diskhb"/><types name="witnesshb"/>
              </heartbeat>
              <networkpartition>
                <httpnp name="httpnp1"><priority>0</priority><device>10700</device><host>10.0.9.9</host><port>8080</port></httpnp>
                <types name="httpnp"/>
              </networkpartition>
            </root>
            """
        let result = try convert(Data(text.utf8))
        let config = try loadConverted(result)
        #expect(config.heartbeats.map(\.typeName) == ["lanhb", "comhb", "witnesshb"])
        #expect(config.heartbeats[1].kind == .serial(devices: ["n1": "/dev/ttyS0", "n2": "/dev/ttyS1"], speed: 19200))
        #expect(config.networkPartition.map(\.typeName) == ["httpnp"])
        #expect(result.yaml.contains("host: 10.0.9.9"))
        #expect(result.yaml.contains("port: 8080"))
        let diskLine = try #require(result.unmapped.first { $0.path == "heartbeat/diskhb@diskhb1" })
        #expect(diskLine.reason.contains("n1: /dev/sdb1, n2: /dev/sdc1"), "\(diskLine)")
        #expect(result.unmapped.count == 1, "the devices the other paths use are converted with them: \(result.unmapped)")
    }

    @Test("the minimal example of the reference converts")
    func referenceExample() throws {
        let text = """
            <?xml version="1.0" encoding="ASCII"?>
            <root>
              <all><charset>ASCII</charset><encode>ASCII</encode><serveros>linux</serveros></all>
              <cluster><name>c1</name><comment/><heartbeat><timeout>90000</timeout></heartbeat></cluster>
              <server name="n1"><priority>0</priority><device id="0"><type>lan</type><info>10.0.0.1</info></device></server>
              <server name="n2"><priority>1</priority><device id="0"><type>lan</type><info>10.0.0.2</info></device></server>
              <heartbeat><types name="lankhb"/><lankhb name="lankhb1"><priority>0</priority><device>0</device></lankhb></heartbeat>
              <group name="failover1"><comment/><gid>0</gid><resource name="fip@fip1"/><resource name="exec@exec1"/></group>
              <resource><types name="fip"/><types name="exec"/>
                <fip name="fip1"><comment/><parameters><ip>10.0.0.10</ip></parameters></fip>
                <exec name="exec1"><comment/><parameters><act><path>start.sh</path></act><deact><path>stop.sh</path></deact></parameters></exec>
              </resource>
              <monitor><types name="userw"/><userw name="userw"><comment/><target/><relation><type>cls</type><name>LocalServer</name></relation></userw></monitor>
            </root>
            """
        let result = try convert(Data(text.utf8))
        let config = try loadConverted(result)
        #expect(config.servers.map(\.name) == ["n1", "n2"])
        #expect(config.groups.first?.resources.map(\.name) == ["fip1", "exec1"])
        #expect(config.monitors.map(\.name) == ["userw"])
        #expect(result.unmapped.isEmpty, "\(result.unmapped)")
        #expect(result.yaml.contains("# Everything in clp.conf was converted."))
    }
}
