import Foundation
import Testing
import UnderstudyEngine
import UnderstudyModel
import UnderstudyNode
import UnderstudyTestSupport

#if canImport(Glibc)
    import Glibc
#endif

/// A real `understudy witness` process with two daemons on loopback (127.0.160.x): the
/// witness heartbeat path and httpnp are Normal in clpstat while the witness runs; a witness
/// that dies turns both to Error without moving anything (the LAN still carries the
/// heartbeats) and is picked up again when it comes back. Also the command's argument checks.
/// (Cuts between servers need namespaces: see UnderstudyLabTests/WitnessTests.)
@Suite("Process: witness server", .serialized)
struct WitnessProcessTests {
    /// `understudy witness` for the cluster of `cluster`, output appended to `witness.log`.
    final class WitnessProcess: @unchecked Sendable {
        let process = Process()
        let log: String

        init(cluster: TestCluster, port: Int) throws {
            log = cluster.folder + "/witness.log"
            _ = FileManager.default.createFile(atPath: log, contents: nil)
            guard let handle = FileHandle(forWritingAtPath: log) else { throw ProcessTestError("cannot open \(log)") }
            handle.seekToEndOfFile()
            process.executableURL = URL(fileURLWithPath: cluster.binary)
            process.arguments = [
                "witness", "--listen", "\(cluster.spec.witnessAddress):\(port)", "--cluster",
                "ptest\(cluster.spec.subnet)=\(cluster.keyPath)",
            ]
            process.standardInput = FileHandle.nullDevice
            process.standardOutput = handle
            process.standardError = handle
            try process.run()
            try? handle.close()
        }

        /// SIGTERM, then waits (bounded) for the exit; SIGKILL if it did not go.
        func stop() async {
            guard process.isRunning else { return }
            kill(process.processIdentifier, SIGTERM)
            let deadline = ContinuousClock.now + .seconds(5)
            while process.isRunning && ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(20)) }
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
            process.waitUntilExit()
        }

        deinit { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }

        var output: String { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }
    }

    func lines(_ status: ClusterStatusSnapshot, peer: String) -> (witness: HeartbeatStatus?, resolution: HeartbeatStatus?) {
        (
            status.servers.first { $0.name == peer }?.heartbeats.first { $0.type == "witnesshb" }?.status,
            status.servers.first { $0.isLocal }?.networkPartition.first { $0.type == "httpnp" }?.status
        )
    }

    @Test("witnesshb and httpnp are Normal with the witness up; Error while it is down, nothing moves; Normal again after its restart")
    func witnessUpDownUp() async throws {
        var spec = ClusterSpec(subnet: 160, servers: ["node1", "node2"])
        let port = try FreePort.take()
        spec.witnessPort = port
        try await withCluster(spec) { cluster in
            let config = try String(contentsOfFile: cluster.configPath, encoding: .utf8)
            #expect(config.contains("type: witnesshb") && config.contains("type: httpnp"), "\(config)")
            var witness = try WitnessProcess(cluster: cluster, port: port)
            defer { if witness.process.isRunning { kill(witness.process.processIdentifier, SIGKILL) } }
            try cluster.start()
            try await cluster.waitUntilFormed()
            // httpnp: Normal after its first question (at the latest its status question 10 s in).
            try await cluster.waitForStatus("witness lines Normal", on: "node2", timeout: .seconds(20)) {
                let l = self.lines($0, peer: "node1")
                return l.witness == .normal && l.resolution == .normal
            }
            let clpstat = try await cluster.cli(["clpstat"], on: "node1")
            #expect(clpstat.standardOutput.contains("witnesshb1"), "\(clpstat)")
            #expect(
                clpstat.standardOutput.contains("Witness Heartbeat") && clpstat.standardOutput.contains("http resolution"), "\(clpstat)")

            let info = try await cluster.cli(["clpstat", "-i"], on: "node1")
            #expect(
                info.standardOutput.components(separatedBy: "Witness                       : \(spec.witnessAddress):\(port)").count == 3,
                "\(info)")

            // The witness's status page counts the heartbeats and shows no key.
            let key = try String(contentsOfFile: cluster.keyPath, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
            let page = try await WitnessStatusPage.fetch(host: spec.witnessAddress, port: port)
            #expect(page.contains("cluster ptest160: heartbeats"), "\(page)")
            #expect(!page.contains(key))
            #expect(!witness.output.contains(key))

            await witness.stop()
            try await cluster.waitForStatus("witness lines Error", on: "node1", timeout: .seconds(20)) {
                let l = self.lines($0, peer: "node2")
                return l.witness == .error && l.resolution == .error
            }
            let during = try #require(await cluster.status(on: "node2"))
            #expect(during.servers.allSatisfy { $0.status == .online }, "\(during.summary)")
            #expect(during.group(named: "grp1")?.current == "node1")
            #expect(!during.isolated)

            witness = try WitnessProcess(cluster: cluster, port: port)
            try await cluster.waitForStatus("witness lines Normal again", on: "node1", timeout: .seconds(20)) {
                let l = self.lines($0, peer: "node2")
                return l.witness == .normal && l.resolution == .normal
            }
            #expect(cluster.records.starts.count == 1, "nothing moved: \(cluster.records.summary)")
            let log = try String(contentsOfFile: cluster.logPath(of: "node1"), encoding: .utf8)
            #expect(log.contains("[nm 4]") && log.contains("[nm 3]"), "the path's failure and recovery are logged")
            await witness.stop()
        }
    }

    @Test("understudy witness refuses bad arguments and unsafe key files with exit 2, naming the problem")
    func argumentErrors() async throws {
        let spec = ClusterSpec(subnet: 161, servers: ["node1", "node2"])
        try await withCluster(spec) { cluster in
            let none = try await cluster.understudy(["witness", "--listen", "127.0.161.200:0"])
            #expect(none.exitCode == 2 && none.standardError.contains("no cluster"), "\(none)")
            let badListen = try await cluster.understudy(["witness", "--listen", "nowhere", "--cluster", "c=\(cluster.keyPath)"])
            #expect(badListen.exitCode == 2 && badListen.standardError.contains("--listen"), "\(badListen)")
            let open = cluster.folder + "/open.key"
            try cluster.write("0123456789abcdef0123456789abcdef\n", to: open, mode: 0o644)
            let unsafe = try await cluster.understudy(["witness", "--listen", "127.0.161.200:0", "--cluster", "c=\(open)"])
            #expect(unsafe.exitCode == 2 && unsafe.standardError.contains("chmod 600"), "\(unsafe)")
            let missing = try await cluster.understudy([
                "witness", "--listen", "127.0.161.200:0", "--cluster-dir", cluster.folder + "/none",
            ])
            #expect(missing.exitCode == 2, "\(missing)")
        }
    }
}

/// `GET /v1/status` of a witness, with a raw socket (bounded).
enum WitnessStatusPage {
    static func fetch(host: String, port: Int) async throws -> String {
        let outcome = try await CommandRunner.run(
            "/bin/bash",
            [
                "-c",
                "exec 3<>/dev/tcp/\(host)/\(port) 2>/dev/null || exit 1; printf 'GET /v1/status HTTP/1.1\\r\\nHost: w\\r\\n\\r\\n' >&3; timeout 5 cat <&3",
            ],
            scratch: FileManager.default.temporaryDirectory.path, timeout: .seconds(10))
        return outcome.standardOutput
    }
}
