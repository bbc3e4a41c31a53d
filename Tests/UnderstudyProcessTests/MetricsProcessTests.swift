import Foundation
import Testing
import UnderstudyModel
import UnderstudyTestSupport

#if canImport(Glibc)
    import Glibc
#endif

/// Issue 17, metrics: GET /metrics of three real daemons on loopback, checked by Prometheus's
/// own `promtool`, before and after a kill -9 of the group's holder; and the commands NEC's
/// exporters run on every scrape, by name from PATH, exactly as they call them
/// (integration-contracts §2).
@Suite("Process: Prometheus metrics")
struct MetricsProcessTests {
    static let promtool = Prerequisite.command("promtool", package: "prometheus")
    static let viewerPassword = "scr4pe-Pa55word-zq"

    /// One scrape's samples by series (`name{labels}` → value).
    struct Scrape {
        var text: String
        var values: [String: String] = [:]

        init(_ text: String) {
            self.text = text
            for line in text.split(separator: "\n") where !line.hasPrefix("#") {
                guard let space = line.lastIndex(of: " ") else { continue }
                values[String(line[..<space])] = String(line[line.index(after: space)...])
            }
        }

        func number(_ series: String) -> Double? { values[series].flatMap(Double.init) }
    }

    func scrape(_ probe: HTTPProbe, _ url: String) async throws -> (Int, Scrape) {
        let answer = try await probe.request("GET", url, maxTime: 10)
        return (answer.status, Scrape(answer.body))
    }

    /// `promtool check metrics` on the text (its lint included): exit 0 and nothing to say.
    func expectPromtoolAccepts(_ text: String, in folder: String, sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let file = folder + "/scrape-\(UUID().uuidString.prefix(8)).txt"
        try text.write(toFile: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: file) }
        let check = try await CommandRunner.run("/bin/sh", ["-c", "promtool check metrics < '\(file)'"], scratch: folder)
        #expect(check.exitCode == 0, "\(check)", sourceLocation: sourceLocation)
        #expect(check.standardError.isEmpty && check.standardOutput.isEmpty, "\(check)", sourceLocation: sourceLocation)
    }

    @Test(
        "promtool accepts /metrics; kill -9 of the holder: group state moves, the failover is counted, the peer is down; clpperfc and clpcfget as NEC's exporters run them",
        .requires(promtool))
    func scrapeAcrossFailover() async throws {
        var spec = ClusterSpec(subnet: 193)
        spec.monitors = """
              - name: genw1
                type: genw
                script: check.sh
                interval: 500ms
                timeout: 5s
                recovery: {target: local-server, final-action: none}

            """
        spec.web = """
                listen: heartbeat-addresses
                tls: false
                metrics:
                  unauthenticated-from: [127.0.193.60]

            """
        try await withCluster(spec) { cluster in
            // A check that takes a measurable while: clpperfc must show it.
            try cluster.write("#!/bin/sh\nsleep 0.05\nexit 0\n", to: cluster.folder + "/check.sh", mode: 0o755)
            try await cluster.addWebUser("scraper", role: "viewer", password: Self.viewerPassword)
            try cluster.start()
            try await cluster.waitUntilFormed()
            let url = { (server: Int) in "http://127.0.193.\(server):\(spec.httpPort)/metrics" }
            let viewer = HTTPProbe(scratch: cluster.folder, user: "scraper", password: Self.viewerPassword, from: "127.0.193.61")
            let prometheus = HTTPProbe(scratch: cluster.folder, from: "127.0.193.60")
            let stranger = HTTPProbe(scratch: cluster.folder, from: "127.0.193.62")

            // Access: a login, or the allow-listed address; anyone else is asked to log in.
            var before = Scrape("")
            let scraped = try await poll(every: .milliseconds(200), upTo: .seconds(15)) {
                let (status, result) = try await scrape(viewer, url(2))
                before = result
                return status == 200 && result.number(#"understudy_monitor_check_duration_seconds{monitor="genw1",type="genw"}"#) != nil
            }
            #expect(scraped, "no scrape with a check duration from node2:\n\(before.text)")
            let (anonymousStatus, _) = try await scrape(prometheus, url(3))
            #expect(anonymousStatus == 200)
            let (strangerStatus, _) = try await scrape(stranger, url(3))
            #expect(strangerStatus == 401)
            try await expectPromtoolAccepts(before.text, in: cluster.folder)

            #expect(before.number(#"understudy_group_state{group="grp1",server="node1",state="online"}"#) == 1)
            #expect(before.number(#"understudy_group_state{group="grp1",server="node2",state="offline"}"#) == 1)
            #expect(before.number(#"understudy_server_up{server="node1"}"#) == 1)
            #expect(before.number(#"understudy_failovers_total{group="grp1"}"#) == 0)
            #expect(before.number(#"understudy_heartbeat_path_up{server="node1",path="lanhb1",type="lanhb"}"#) == 1)
            #expect((before.number(#"understudy_heartbeats_received_total{server="node1",path="lanhb1"}"#) ?? 0) > 0)
            #expect(before.number(#"understudy_heartbeat_echo_delay_seconds{server="node1",path="lanhb1"}"#) != nil)
            #expect(before.number(#"understudy_monitor_status{monitor="genw1",type="genw",status="normal"}"#) == 1)
            let duration = before.number(#"understudy_monitor_check_duration_seconds{monitor="genw1",type="genw"}"#) ?? 0
            #expect(duration >= 0.04 && duration < 5, "\(duration)")

            // kill -9 of node1, which runs grp1: node2 takes it over.
            _ = cluster.send(SIGKILL, to: "node1")
            try await cluster.waitForStatus("grp1 Online on node2", on: "node2", timeout: .seconds(20)) {
                $0.group(named: "grp1")?.current == "node2" && $0.group(named: "grp1")?.status == .online
            }
            var after = Scrape("")
            let down = EventKind.serverDown
            let downSeries = "understudy_events_total{module=\"\(down.module)\",event=\"\(down.id)\",level=\"\(down.level.rawValue)\"}"
            // The keeper's notice lets node2 take over before it has confirmed node1 down (nm 2).
            let moved = try await poll(every: .milliseconds(200), upTo: .seconds(10)) {
                let (status, result) = try await scrape(viewer, url(2))
                after = result
                return status == 200 && result.number(#"understudy_failovers_total{group="grp1"}"#) == 1
                    && result.number(#"understudy_group_state{group="grp1",server="node2",state="online"}"#) == 1
                    && (result.number(downSeries) ?? 0) >= 1
            }
            #expect(moved, "node2's metrics after the failover:\n\(after.text)")
            #expect(after.number(#"understudy_server_up{server="node1"}"#) == 0)
            #expect(after.number(#"understudy_heartbeat_path_up{server="node1",path="lanhb1",type="lanhb"}"#) == 0)
            #expect(after.number(#"understudy_group_state{group="grp1",server="node1",state="unknown"}"#) == 1)
            #expect(after.number(#"understudy_group_state{group="grp1",server="node1",state="online"}"#) == 0)
            let took = after.number(#"understudy_failover_last_duration_seconds{group="grp1"}"#) ?? -1
            #expect(took >= 0 && took < 20, "\(took)")
            #expect((after.number(downSeries) ?? 0) >= 1, "\(downSeries) in:\n\(after.text)")
            try await expectPromtoolAccepts(after.text, in: cluster.folder)

            try await exporterCommands(cluster)
        }
    }

    /// What NEC's clp_exporter runs on each scrape, by name from PATH, and the older
    /// exporter's monitor list (`clpmonctrl -v | grep Resource | awk '{print $3}'`).
    func exporterCommands(_ cluster: TestCluster) async throws {
        let bin = cluster.folder + "/bin"
        try FileManager.default.createDirectory(atPath: bin, withIntermediateDirectories: true)
        #expect(try await cluster.understudy(["install-aliases", bin]).exitCode == 0)
        let environment = "PATH='\(bin)':/usr/bin:/bin UNDERSTUDY_STATE_DIR='\(cluster.stateDirectory(of: "node2"))'"
        func run(_ line: String) async throws -> CommandOutcome {
            try await CommandRunner.run("/bin/sh", ["-c", "\(environment) \(line)"], scratch: cluster.folder)
        }
        var outcome = try await run("clpcfget -e /root/monitor/types")
        #expect(outcome.exitCode == 0 && outcome.standardOutput == "genw\n", "\(outcome)")
        outcome = try await run("clpcfget -e /root/monitor/genw")
        #expect(outcome.exitCode == 0 && outcome.standardOutput == "genw1\n", "\(outcome)")
        outcome = try await run("clpperfc -m genw1")
        #expect(outcome.exitCode == 0, "\(outcome)")
        let millis = outcome.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(UInt64(millis).map { $0 >= 40 && $0 < 5000 } == true, "\(outcome)")
        // No mirror disks: empty answers, exit 0, for the list and for the empty name.
        outcome = try await run("clpcfget -e /root/resource/md")
        #expect(outcome.exitCode == 0 && outcome.standardOutput.isEmpty, "\(outcome)")
        outcome = try await run("clpcfget -g /root/resource/md@/parameters/nmppath")
        #expect(outcome.exitCode == 0 && outcome.standardOutput.isEmpty, "\(outcome)")
        outcome = try await run("clpmonctrl -v | grep Resource | awk '{print $3}'")
        #expect(outcome.standardOutput == "genw1\n", "\(outcome)")
        // Refusals: one line on stderr, nothing on stdout.
        outcome = try await run("clpperfc -m nosuch")
        #expect(outcome.exitCode == 2 && outcome.standardOutput.isEmpty && outcome.standardError.contains("nosuch"), "\(outcome)")
        outcome = try await run("clpcfget -e monitor/types")
        #expect(outcome.exitCode == 2 && outcome.standardOutput.isEmpty && outcome.standardError.contains("/root"), "\(outcome)")
        // The daemon gone: exit 3.
        outcome = try await CommandRunner.run(
            "/bin/sh",
            ["-c", "PATH='\(bin)':/usr/bin:/bin UNDERSTUDY_STATE_DIR='\(cluster.stateDirectory(of: "node1"))' clpperfc -m genw1"],
            scratch: cluster.folder)
        #expect(outcome.exitCode == 3 && outcome.standardOutput.isEmpty, "\(outcome)")
    }
}
