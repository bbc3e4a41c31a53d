import Foundation
import Testing
import UnderstudyModel
import UnderstudyTestSupport

#if canImport(Glibc)
    import Glibc
#endif

/// The ESMPRO/AC guide's acceptance story (seed 000, chapters 2–5) with real daemons:
/// per-server groups whose exec resource has the guide's sample `stop.sh` (retry 0, final
/// action none), run by `clpdown -r` and `clpstdn` with the right `amccmd` option, after the
/// business group has stopped; a plain group stop runs nothing.
@Suite("Process: clpdown, clpstdn and the ESMPRO/AC sample stop script")
struct ShutdownCommandTests {
    /// A stand-in for ESMPRO/AC's `amccmd` at the path the sample script calls: records the
    /// calling server, the time and its arguments.
    struct FakeAmccmd {
        static let folder = "/usr/local/AUTORC"
        static let path = folder + "/amccmd"
        static let logPath = folder + "/amccmd-calls.log"
        static let marker = "# Stand-in for amccmd written by UnderstudyProcessTests."
        let createdFolder: Bool

        /// Writing the stand-in needs root (the sample stop.sh calls \(path)), and a real
        /// ESMPRO/AC installed there is left alone.
        static let prerequisite = Prerequisite.all(
            "amccmd-stand-in",
            [
                .root,
                Prerequisite(
                    "amccmd-stand-in",
                    missing: (try? String(contentsOfFile: path, encoding: .utf8)).map { !$0.contains(marker) } == true
                        ? "\(path) exists and is not this test's stand-in (a real ESMPRO/AC?); left alone" : nil),
            ])

        static func install() throws -> FakeAmccmd {
            let manager = FileManager.default
            let createdFolder = !manager.fileExists(atPath: folder)
            try manager.createDirectory(atPath: folder, withIntermediateDirectories: true)
            let script = """
                #!/bin/sh
                \(marker)
                printf '%s\\t%s\\t%s\\n' "$CLP_SERVER_LOCAL" "$(date +%s%N)" "$*" >> '\(logPath)'

                """
            try script.write(toFile: path, atomically: true, encoding: .utf8)
            try manager.setAttributes([.posixPermissions: 0o755], ofItemAtPath: path)
            try? manager.removeItem(atPath: logPath)
            return FakeAmccmd(createdFolder: createdFolder)
        }

        func remove() {
            try? FileManager.default.removeItem(atPath: Self.path)
            try? FileManager.default.removeItem(atPath: Self.logPath)
            if createdFolder { try? FileManager.default.removeItem(atPath: Self.folder) }
        }

        struct Call {
            var server: String
            var nanoseconds: UInt64
            var arguments: [String]
        }

        var calls: [Call] {
            let text = (try? String(contentsOfFile: Self.logPath, encoding: .utf8)) ?? ""
            return text.split(separator: "\n").compactMap { line in
                let fields = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
                guard fields.count == 3, let nanoseconds = UInt64(fields[1]) else { return nil }
                return Call(server: fields[0], nanoseconds: nanoseconds, arguments: fields[2].split(separator: " ").map(String.init))
            }
        }
    }

    static func shortHostName() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        gethostname(&buffer, buffer.count)
        let name = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return String(name.split(separator: ".").first ?? "")
    }

    static func spec() -> ClusterSpec {
        var spec = ClusterSpec(subnet: 123)
        spec.groups = [GroupSpec(name: "web", resources: [ExecSpec(name: "web-app", stop: .sleepThenSucceed(seconds: 1))])]
        for server in spec.servers {
            // Chapter 2's settings: one server, one exec resource, retry 0, final action none.
            let exec = ExecSpec(
                name: "exec-ac-\(server)", activation: "{retry: 0, failover: 0, final-action: none}",
                deactivation: "{retry: 0, final-action: none}", stopScript: ESMPROSample.stopScript)
            spec.groups.append(
                GroupSpec(
                    name: "ac-\(server)", servers: [server], resources: [exec],
                    stopAfter: "{groups: [web], when: [cluster-stop, server-stop]}"))
        }
        return spec
    }

    @Test(
        "clpdown -r, then clpstdn: the sample stop.sh calls amccmd with ShutdownReboot / ShutdownOff after web stopped",
        .requires(FakeAmccmd.prerequisite))
    func sampleStopScript() async throws {
        let amccmd = try FakeAmccmd.install()
        defer { amccmd.remove() }
        let host = Self.shortHostName()
        try await withCluster(Self.spec()) { cluster in
            try cluster.start()
            try await cluster.waitUntilFormed(group: "web")
            for server in cluster.servers {
                try await cluster.waitForStatus("ac-\(server) Online on \(server)", on: "node1") {
                    $0.group(named: "ac-\(server)")?.status == .online && $0.group(named: "ac-\(server)")?.current == server
                }
            }

            // An unknown server is refused before anything stops.
            for command in [["clpdown", "-h", "node9"], ["clpstdn", "-h", "node9"]] {
                let refused = try await cluster.cli(command, on: "node1")
                #expect(refused.exitCode == 2 && refused.standardError.contains("Unknown server node9"), "\(command): \(refused)")
            }

            // A plain group stop (CLP_FACTOR=GROUPSTOP): the script runs and does nothing.
            #expect(try await cluster.cli(["clpgrp", "-t", "ac-node3"], on: "node1").exitCode == 0)
            #expect(try await cluster.cli(["clpgrp", "-s", "ac-node3"], on: "node1").exitCode == 0)
            #expect(amccmd.calls.isEmpty, "amccmd was called on a group stop")

            // clpdown -r on node1: web stops there (SERVERSHUTDOWN, REBOOT) and fails over;
            // then ac-node1's stop.sh asks for ShutdownReboot; then the OS reboot command.
            let down = try await cluster.cli(["clpdown", "-r"], on: "node1", timeout: .seconds(60))
            #expect(down.exitCode == 0, "\(down)")
            #expect(try await cluster.waitForExit("node1") == 0)
            let webStopped = try #require(
                cluster.records.of("web-app").on("node1").first { $0.action == "stop-done" }, "\(cluster.records.summary)")
            let webStop = try #require(cluster.records.stops.of("web-app").on("node1").first)
            #expect(webStop["CLP_FACTOR"] == "SERVERSHUTDOWN" && webStop["CLP_LASTACTION"] == "REBOOT")
            var calls = amccmd.calls
            #expect(calls.count == 1, "\(calls.map(\.arguments))")
            let reboot = try #require(calls.first)
            #expect(reboot.server == "node1")
            #expect(reboot.arguments == ["-downrequest", "ShutdownReboot", "127.0.0.1", host, "ESMACnet"])
            #expect(reboot.nanoseconds >= webStopped.nanoseconds, "amccmd ran before the business group had stopped")
            #expect(cluster.osActions == ["reboot"])
            try await cluster.waitForStatus("web Online on node2", on: "node2") {
                $0.group(named: "web")?.current == "node2" && $0.group(named: "web")?.status == .online
            }

            // node1 is back; clpstdn from node3: every server stops its groups (nothing fails
            // over), each ac group asks for ShutdownOff after web stopped, every OS shuts down.
            try cluster.startDaemon("node1")
            try await cluster.waitForStatus("ac-node1 Online on node1 again", on: "node3") {
                $0.group(named: "ac-node1")?.status == .online && $0.server(named: "node1")?.status == .online
            }
            let before = cluster.records.count
            let stdn = try await cluster.cli(["clpstdn"], on: "node3", timeout: .seconds(60))
            #expect(stdn.exitCode == 0, "\(stdn)")
            for server in cluster.servers { #expect(try await cluster.waitForExit(server) == 0) }
            let records = Array(cluster.records.dropFirst(before))
            #expect(records.starts.isEmpty, "a group started during the cluster shutdown:\n\(records.summary)")
            let clusterWebStopped = try #require(records.of("web-app").first { $0.action == "stop-done" }, "\(records.summary)")
            let clusterWebStop = try #require(records.stops.of("web-app").first)
            #expect(clusterWebStop["CLP_FACTOR"] == "CLUSTERSHUTDOWN" && clusterWebStop["CLP_LASTACTION"] == "HALT")
            calls = Array(amccmd.calls.dropFirst())
            #expect(Set(calls.map(\.server)) == ["node1", "node2", "node3"] && calls.count == 3, "\(calls.map(\.server))")
            for call in calls {
                #expect(call.arguments == ["-downrequest", "ShutdownOff", "127.0.0.1", host, "ESMACnet"])
                #expect(call.nanoseconds >= clusterWebStopped.nanoseconds, "\(call.server) called amccmd before web had stopped")
            }
            #expect(cluster.osActions == ["reboot", "shutdown", "shutdown", "shutdown"])
        }
    }
}
