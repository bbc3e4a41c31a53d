import Foundation
import Testing
import UnderstudyLab
import UnderstudyModel
import UnderstudyTestSupport

#if canImport(Glibc)
    import Glibc
#endif

/// The benchmark harness in real labs: keepalived measured by the failover benchmark's loop,
/// Understudy with four servers, and the idle footprint of both. Short runs: they prove the
/// harness works, not how fast anything is.
@Suite(
    "Bench harness in the lab: keepalived and Understudy through the same prober, idle footprint", .serialized,
    .requires(labPrerequisite, Prerequisite.command("keepalived", package: "keepalived")))
struct BenchHarnessLabTests {
    /// Runs `body` with a lab of `spec` (no Understudy daemons) and the responders; afterwards
    /// (also on failure) kills the responders and keepalived, takes the lab down and checks
    /// nothing is left.
    func withKeepalivedLab(
        _ spec: LabSpec, _ settings: KeepalivedBenchmark.Settings, _ body: (KeepalivedBenchmark) async throws -> Void
    ) async throws {
        let lab = try await Lab.up(spec, binary: labBinary, startDaemons: false)
        var responders: [Process] = []
        var started: [LabProcess] = []
        let bench = KeepalivedBenchmark(lab: lab, settings: settings) { print($0) }
        do {
            responders = try bench.failover.startResponders()
            try await bench.startAll()
            started = spec.serverNames.flatMap { bench.processes(of: $0) }
            try await body(bench)
            started += spec.serverNames.flatMap { bench.processes(of: $0) }
        } catch {
            let logs = spec.serverNames.map { server in
                "--- keepalived \(server)\n"
                    + ((try? String(contentsOfFile: bench.logPath(of: server), encoding: .utf8)) ?? "")
                    .split(separator: "\n").suffix(20).joined(separator: "\n")
            }
            print("lab \(spec.prefix) failed: \(error)\n\(lab.report())\n\(logs.joined(separator: "\n"))")
            FailoverBenchmark.stopResponders(responders)
            lab.down()
            throw error
        }
        FailoverBenchmark.stopResponders(responders)
        lab.down()
        try expectNothingLeft(spec, daemons: started)
    }

    @Test("keepalived, multicast, advert_int 0.1: link down and kill -9 of the MASTER fail over within a second; idle footprint")
    func keepalivedMulticast() async throws {
        let spec = LabSpec(prefix: LabSpec.uniquePrefix(), servers: 2, subnet: 17, withGroup: false)
        try await withKeepalivedLab(spec, .init(advertSeconds: 0.1, transport: .multicast)) { bench in
            let text = try String(contentsOfFile: bench.configPath(of: "node1"), encoding: .utf8)
            #expect(text.contains("advert_int 0.1\n"))
            #expect(bench.holders().count == 1)
            for fault in [FailoverBenchmark.Fault.linkDown, .kill] {
                let series = try await bench.run(fault, runs: fault == .linkDown ? 2 : 1)
                #expect(series.runs.count == (fault == .linkDown ? 2 : 1))
                for run in series.runs {
                    let seconds = try #require(run.seconds, "\(fault.rawValue): no answer from another server")
                    // 3 adverts and the skew: about 0.35 s; a loaded machine gets 3 s.
                    #expect(seconds > 0.2 && seconds < 3, "\(fault.rawValue) of \(run.holder): \(seconds) s")
                    #expect(run.answeredBy != nil && run.answeredBy != run.holder)
                }
                #expect(series.stealPercent >= 0 && series.stealPercent <= 100)
            }
            // After a kill and its restore: two processes per server again (parent, VRRP child).
            for server in bench.lab.spec.serverNames { #expect(bench.processes(of: server).count == 2) }
            let roots: [(server: String, pid: Int32)] = try bench.lab.spec.serverNames.map { server in
                (server, try #require(bench.parent(of: server), "no keepalived parent on \(server)").pid)
            }
            let footprint = try await IdleFootprint.measure(roots: roots, for: .seconds(3))
            #expect(footprint.daemons.count == 2)
            for daemon in footprint.daemons {
                #expect(daemon.processes.count == 2, "\(daemon.processes.map(\.command))")
                #expect(daemon.processes.allSatisfy { $0.command == "keepalived" })
                #expect(daemon.rssKiB > 0 && daemon.pssKiB > 0 && daemon.pssKiB <= daemon.rssKiB)
                #expect(daemon.cpuSecondsPerMinute >= 0 && daemon.cpuSecondsPerMinute < 60)
                #expect(daemon.processes.allSatisfy { $0.categories.contains { $0.name == "binary text" && $0.rss > 0 } })
            }
        }
    }

    @Test("keepalived, unicast, three servers, advert_int 0.05: link down of the MASTER; another server answers")
    func keepalivedUnicastThreeServers() async throws {
        let spec = LabSpec(prefix: LabSpec.uniquePrefix(), servers: 3, subnet: 18, withGroup: false)
        try await withKeepalivedLab(spec, .init(advertSeconds: 0.05, transport: .unicast)) { bench in
            let text = try String(contentsOfFile: bench.configPath(of: "node3"), encoding: .utf8)
            #expect(text.contains("unicast_peer {\n        10.200.18.11\n        10.200.18.12\n"))
            let series = try await bench.run(.linkDown, runs: 1)
            let run = try #require(series.runs.first)
            let seconds = try #require(run.seconds, "no answer from another server")
            #expect(seconds > 0.1 && seconds < 3)
            #expect(run.answeredBy != nil && run.answeredBy != run.holder)
        }
    }

    @Test("Understudy, four servers, fast profile: link down of the holder, another answers; footprint counts daemon and keeper")
    func understudyFourServers() async throws {
        let spec = LabSpec(
            prefix: LabSpec.uniquePrefix(), servers: 4, subnet: 19, heartbeatInterval: "50ms", heartbeatTimeoutMilliseconds: 300,
            syncWait: "1s", withGroup: false)
        let lab = try await Lab.up(spec, binary: labBinary, startDaemons: false)
        var responders: [Process] = []
        var daemons: [LabProcess] = []
        do {
            try FailoverBenchmark.writeGroups(spec: spec, count: 1, probeWait: "20ms")
            for server in spec.serverNames { try lab.startDaemon(server) }
            daemons = spec.serverNames.compactMap { lab.pid(of: $0) }
            var bench = FailoverBenchmark(lab: lab, binary: labBinary) { print($0) }
            bench.settle = .milliseconds(500)
            responders = try bench.startResponders()
            try await lab.waitForStatus("web online", on: "node1", timeout: .seconds(30)) {
                $0.groups.first?.status == .online && $0.servers.allSatisfy { $0.status == .online }
            }
            let series = try await bench.run(.linkDown, runs: 1)
            let run = try #require(series.runs.first)
            let seconds = try #require(run.seconds, "no answer from another server")
            #expect(seconds > 0.3 && seconds < 10, "\(seconds) s")
            #expect(run.answeredBy != nil && run.answeredBy != run.holder)
            // The new holder probed the address while the takeover margin ran, and its
            // activation used that probe instead of waiting for one of its own.
            let newHolder = try #require(run.answeredBy)
            let log = (try? String(contentsOfFile: spec.logPath(of: newHolder), encoding: .utf8)) ?? ""
            #expect(log.contains("ahead of a takeover: no answer"), "\(log.suffix(3000))")
            #expect(log.contains("had no answer when its holder was lost"), "\(log.suffix(3000))")
            let roots: [(server: String, pid: Int32)] = spec.serverNames.compactMap { server in
                lab.pid(of: server).map { (server, $0.pid) }
            }
            let footprint = try await IdleFootprint.measure(roots: roots, for: .seconds(2))
            #expect(footprint.daemons.count == 4)
            for daemon in footprint.daemons {
                // The daemon and its keeper (the same binary).
                #expect(daemon.processes.count >= 2, "\(daemon.server): \(daemon.processes.map(\.command))")
                #expect(daemon.cpuSecondsPerMinute > 0)
                #expect(daemon.processes[0].threads > 1)
                #expect(daemon.processes[0].categories.contains { $0.name == "heap" })
            }
        } catch {
            print("lab \(spec.prefix) failed: \(error)\n\(lab.report())")
            FailoverBenchmark.stopResponders(responders)
            lab.down()
            throw error
        }
        FailoverBenchmark.stopResponders(responders)
        lab.down()
        try expectNothingLeft(spec, daemons: daemons)
    }
}
