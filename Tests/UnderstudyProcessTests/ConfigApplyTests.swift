import Foundation
import Testing
import UnderstudyEngine
import UnderstudyModel
import UnderstudyNode

#if canImport(Glibc)
    import Glibc
#endif

/// `understudy config apply` against three real daemons, each with its own copy of the
/// configuration (as separate hosts have): online changes, refusals that name the reflection
/// method, a server that was down, kill -9 between the two phases.
@Suite("Process: configuration apply", .serialized)
struct ConfigApplyTests {
    /// A genw monitor whose script appends a line per check to `watch-<server>.log`.
    static func spec(subnet: Int, interval: String = "3s") -> ClusterSpec {
        var spec = ClusterSpec(subnet: subnet)
        spec.monitors = """
              - name: watch1
                type: genw
                script: scripts/watch.sh
                interval: \(interval)
                recovery: {target: grp1}

            """
        return spec
    }

    /// Each server's configuration folder: `etc-<server>/cluster.yaml`, the key and `scripts/`.
    static func separate(_ cluster: TestCluster) throws -> [String: String] {
        let watch = "#!/bin/sh\ndate +%s%N >> '\(cluster.folder)/watch-'\"$CLP_SERVER_LOCAL\"'.log'\nexit 0\n"
        try cluster.write(watch, to: cluster.folder + "/scripts/watch.sh", mode: 0o755)
        var paths: [String: String] = [:]
        for server in cluster.servers {
            let etc = cluster.folder + "/etc-" + server
            try FileManager.default.createDirectory(atPath: etc, withIntermediateDirectories: true)
            for item in ["cluster.yaml", "cluster.key", "scripts"] {
                try FileManager.default.copyItem(atPath: cluster.folder + "/" + item, toPath: etc + "/" + item)
            }
            paths[server] = etc + "/cluster.yaml"
        }
        return paths
    }

    /// A new configuration in a folder of its own (with the scripts), from the original text.
    static func proposal(_ cluster: TestCluster, name: String, _ edit: (String) -> String) throws -> String {
        let folder = cluster.folder + "/" + name
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: cluster.folder + "/scripts", toPath: folder + "/scripts")
        try FileManager.default.copyItem(atPath: cluster.keyPath, toPath: folder + "/cluster.key")
        let text = try String(contentsOfFile: cluster.configPath, encoding: .utf8)
        let edited = edit(text)
        #expect(edited != text, "the edit changed nothing")
        try cluster.write(edited, to: folder + "/cluster.yaml")
        return folder + "/cluster.yaml"
    }

    static func start(_ cluster: TestCluster, _ paths: [String: String], _ servers: [String]? = nil) throws {
        for server in servers ?? cluster.servers { try cluster.startDaemon(server, config: paths[server]) }
    }

    static func lines(_ path: String) -> [String] {
        ((try? String(contentsOfFile: path, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
    }

    /// Waits until `server` runs configuration `version`.
    static func waitForVersion(_ cluster: TestCluster, _ version: UInt64, on server: String, timeout: Duration = .seconds(20)) async throws
    {
        _ = try await cluster.waitForStatus("configuration version \(version) on \(server)", on: server, timeout: timeout) {
            $0.configuration?.version == version && $0.configuration?.outsider == false
        }
    }

    @Test("a monitor's interval changes online on three servers: no restart, no group touched, no false monitor error")
    func monitorIntervalOnline() async throws {
        try await withCluster(Self.spec(subnet: 171)) { cluster in
            let paths = try Self.separate(cluster)
            try Self.start(cluster, paths)
            _ = try await cluster.waitUntilFormed(group: "grp1", on: "node1")
            let proposal = try Self.proposal(cluster, name: "new") { $0.replacingOccurrences(of: "interval: 3s", with: "interval: 300ms") }
            // The monitor's own script changes too: it is replaced (atomically) while the
            // monitors run it every 300 ms, which must never look like an error.
            let script = cluster.folder + "/new/scripts/watch.sh"
            try cluster.write(try String(contentsOfFile: script, encoding: .utf8) + "# version 1\n", to: script, mode: 0o755)

            let preview = try await cluster.cli(["config", "apply", "--dry-run", proposal], on: "node2")
            #expect(preview.exitCode == 0, "\(preview)")
            #expect(preview.standardOutput.contains("monitor watch1: interval: 3s → 300ms"), "\(preview)")
            #expect(preview.standardOutput.contains("Reflection method: suspend and resume the changed monitors"), "\(preview)")
            #expect(preview.standardOutput.contains("script watch.sh changed [upload only]"), "\(preview)")

            let applied = try await cluster.cli(["config", "apply", proposal], on: "node2")
            #expect(applied.exitCode == 0, "\(applied)")
            #expect(applied.standardOutput.contains("Configuration version 1 runs on node1, node2, node3"), "\(applied)")
            for server in cluster.servers {
                try await Self.waitForVersion(cluster, 1, on: server)
                let onDisk = try String(contentsOfFile: paths[server] ?? "", encoding: .utf8)
                #expect(onDisk.contains("interval: 300ms"), "\(server)'s file")
                let installed = (paths[server].map { ($0 as NSString).deletingLastPathComponent } ?? "") + "/scripts/watch.sh"
                #expect(try String(contentsOfFile: installed, encoding: .utf8).hasSuffix("# version 1\n"), "\(server)'s script")
            }
            // The monitor runs every 300 ms now on every server (it checked every 3 s before).
            let before = Dictionary(
                uniqueKeysWithValues: cluster.servers.map { ($0, Self.lines("\(cluster.folder)/watch-\($0).log").count) })
            try await Task.sleep(for: .seconds(3))
            for server in cluster.servers {
                let checks = Self.lines("\(cluster.folder)/watch-\(server).log").count - (before[server] ?? 0)
                #expect(checks >= 5, "\(server) checked \(checks) times in 3 s")
            }
            // Nothing else moved: the group started once, no monitor ever reported an error.
            #expect(cluster.records.starts.count == 1, "\(cluster.records.summary)")
            for server in cluster.servers {
                let log = try String(contentsOfFile: cluster.logPath(of: server), encoding: .utf8)
                #expect(!log.contains("[rm 9]") && !log.contains("[rm 8]"), "\(server) reported a monitor error:\n\(log)")
                #expect(log.contains("[cfmgr 1]"), "\(server)")
                let status = try await cluster.clpstat(on: server)
                #expect(status.monitors?.first { $0.name == "watch1" }?.status == .normal)
                #expect(status.configurationMismatch == nil, "\(server): \(status.configurationMismatch ?? [])")
            }
        }
    }

    @Test("a new resource in a running group is refused, naming the method; applied once the group is stopped")
    func resourceNeedsTheGroupStopped() async throws {
        try await withCluster(Self.spec(subnet: 172)) { cluster in
            let paths = try Self.separate(cluster)
            try Self.start(cluster, paths)
            _ = try await cluster.waitUntilFormed(group: "grp1", on: "node1")
            let proposal = try Self.proposal(cluster, name: "new") { text in
                text.replacingOccurrences(
                    of: "      - name: grp1-app\n",
                    with:
                        "      - name: grp1-extra\n        type: exec\n        start: /bin/true\n        stop: /bin/true\n      - name: grp1-app\n"
                )
            }
            let refused = try await cluster.cli(["config", "apply", proposal], on: "node3")
            #expect(refused.exitCode == 1, "\(refused)")
            #expect(refused.standardError.contains("stop and start the affected groups"), "\(refused)")
            #expect(refused.standardError.contains("Stop grp1 first"), "\(refused)")
            // Never half-way: nothing pending, nothing switched, anywhere.
            for server in cluster.servers {
                let status = try await cluster.clpstat(on: server)
                #expect(status.configuration?.version == 0)
                #expect(!FileManager.default.fileExists(atPath: cluster.stateDirectory(of: server) + "/config-pending.json"))
                #expect(try String(contentsOfFile: paths[server] ?? "", encoding: .utf8).contains("grp1-extra") == false)
            }

            // Stopped, the group takes its new resource online.
            let stop = try await cluster.cli(["clpgrp", "-t", "grp1"], on: "node1")
            #expect(stop.exitCode == 0, "\(stop)")
            let applied = try await cluster.cli(["config", "apply", proposal], on: "node3")
            #expect(applied.exitCode == 0, "\(applied)")
            for server in cluster.servers { try await Self.waitForVersion(cluster, 1, on: server) }
            let start = try await cluster.cli(["clpgrp", "-s", "grp1"], on: "node1")
            #expect(start.exitCode == 0, "\(start)")
            let status = try await cluster.waitForStatus("grp1 online with both resources", on: "node2") { status in
                guard let group = status.group(named: "grp1") else { return false }
                return group.status == .online && group.resources.count == 2 && group.resources.allSatisfy { $0.status == .online }
            }
            #expect(status.group(named: "grp1")?.current == "node1")
        }
    }

    @Test("a server that was down during the apply gets the new configuration when it rejoins")
    func serverDownDuringApply() async throws {
        try await withCluster(Self.spec(subnet: 173)) { cluster in
            let paths = try Self.separate(cluster)
            try Self.start(cluster, paths)
            _ = try await cluster.waitUntilFormed(group: "grp1", on: "node1")
            cluster.send(SIGTERM, to: "node3")
            _ = try await cluster.waitForExit("node3")
            let proposal = try Self.proposal(cluster, name: "new") { $0.replacingOccurrences(of: "interval: 3s", with: "interval: 2s") }
            let applied = try await cluster.cli(["config", "apply", proposal], on: "node1")
            #expect(applied.exitCode == 0, "\(applied)")
            for server in ["node1", "node2"] { try await Self.waitForVersion(cluster, 1, on: server) }
            #expect(try String(contentsOfFile: paths["node3"] ?? "", encoding: .utf8).contains("interval: 3s"))

            // node3 starts with its old file, sees version 1 in the heartbeats and fetches it.
            try cluster.startDaemon("node3", config: paths["node3"])
            try await Self.waitForVersion(cluster, 1, on: "node3")
            #expect(try String(contentsOfFile: paths["node3"] ?? "", encoding: .utf8).contains("interval: 2s"))
            let log = try String(contentsOfFile: cluster.logPath(of: "node3"), encoding: .utf8)
            #expect(log.contains("[cfmgr 4]"), "\(log)")
            let status = try await cluster.clpstat(on: "node1")
            #expect(status.configurationMismatch == nil)
        }
    }

    @Test("kill -9 between the two phases: every server ends on one version")
    func killBetweenPhases() async throws {
        try await withCluster(Self.spec(subnet: 174)) { cluster in
            let paths = try Self.separate(cluster)
            try Self.start(cluster, paths)
            _ = try await cluster.waitUntilFormed(group: "grp1", on: "node1")

            // The coordinator dies after phase 1: nobody switched, everybody stays on version 0.
            let first = try Self.proposal(cluster, name: "first") { $0.replacingOccurrences(of: "interval: 3s", with: "interval: 2s") }
            let staged = try await cluster.cli(["config", "apply", "--prepare-only", first], on: "node2")
            #expect(staged.exitCode == 0, "\(staged)")
            #expect(staged.standardOutput.contains("understudy config commit 1"), "\(staged)")
            for server in cluster.servers {
                #expect(FileManager.default.fileExists(atPath: cluster.stateDirectory(of: server) + "/config-pending.json"), "\(server)")
            }
            cluster.send(SIGKILL, to: "node2")
            _ = try await cluster.waitForExit("node2")
            try cluster.startDaemon("node2", config: paths["node2"])
            _ = try await cluster.waitUntilFormed(group: "grp1", on: "node1")
            for server in cluster.servers {
                let status = try await cluster.clpstat(on: server)
                #expect(status.configuration?.version == 0, "\(server)")
                #expect(status.configurationMismatch == nil, "\(server)")
            }

            // A participant dies after phase 1; the commit switches the others, and the dead
            // one takes the version when it comes back.
            let second = try Self.proposal(cluster, name: "second") { $0.replacingOccurrences(of: "interval: 3s", with: "interval: 1s") }
            let prepared = try await cluster.cli(["config", "apply", "--prepare-only", second], on: "node1")
            #expect(prepared.exitCode == 0, "\(prepared)")
            let version = prepared.standardOutput.contains("commit 2") ? "2" : "1"
            cluster.send(SIGKILL, to: "node3")
            _ = try await cluster.waitForExit("node3")
            let committed = try await cluster.cli(["config", "commit", version], on: "node1")
            #expect(committed.exitCode == 0, "\(committed)")
            for server in ["node1", "node2"] { try await Self.waitForVersion(cluster, UInt64(version) ?? 0, on: server) }
            try cluster.startDaemon("node3", config: paths["node3"])
            try await Self.waitForVersion(cluster, UInt64(version) ?? 0, on: "node3")
            var hashes: Set<String> = []
            for server in cluster.servers {
                let status = try await cluster.clpstat(on: server)
                hashes.insert(status.configuration?.hash ?? "?")
                #expect(try String(contentsOfFile: paths[server] ?? "", encoding: .utf8).contains("interval: 1s"), "\(server)")
            }
            #expect(hashes.count == 1, "\(hashes)")
        }
    }

    @Test("clpcfctrl --pull writes the running configuration; --push applies a folder; -w is refused")
    func clpcfctrl() async throws {
        try await withCluster(Self.spec(subnet: 175)) { cluster in
            let paths = try Self.separate(cluster)
            try Self.start(cluster, paths)
            _ = try await cluster.waitUntilFormed(group: "grp1", on: "node1")
            let pulled = cluster.folder + "/pulled"
            let pull = try await cluster.cli(["clpcfctrl", "--pull", "-l", "-x", pulled], on: "node2")
            #expect(pull.exitCode == 0, "\(pull)")
            #expect(try String(contentsOfFile: pulled + "/cluster.yaml", encoding: .utf8) == String(contentsOfFile: paths["node2"] ?? ""))
            #expect(FileManager.default.isExecutableFile(atPath: pulled + "/scripts/watch.sh"))

            let text = try String(contentsOfFile: pulled + "/cluster.yaml", encoding: .utf8)
            try cluster.write(
                text.replacingOccurrences(of: "comment: process test cluster", with: "comment: pushed"), to: pulled + "/cluster.yaml")
            try FileManager.default.copyItem(atPath: cluster.keyPath, toPath: pulled + "/cluster.key")
            let push = try await cluster.cli(["clpcfctrl", "--push", "-l", "-x", pulled], on: "node3")
            #expect(push.exitCode == 0, "\(push)")
            #expect(push.standardOutput.contains("cluster comment"), "\(push)")
            for server in cluster.servers { try await Self.waitForVersion(cluster, 1, on: server) }
            let status = try await cluster.clpstat(on: "node1")
            #expect(status.comment == "pushed")

            let windows = try await cluster.cli(["clpcfctrl", "--push", "-w", "-x", pulled], on: "node3")
            #expect(windows.exitCode == 2, "\(windows)")

            // A file the validator refuses: its problems with line and key, exit 2.
            try cluster.write(text.replacingOccurrences(of: "interval: 3s", with: "interval: fast"), to: pulled + "/cluster.yaml")
            let invalid = try await cluster.cli(["clpcfctrl", "--push", "-x", pulled], on: "node3")
            #expect(invalid.exitCode == 2, "\(invalid)")
            #expect(invalid.standardError.contains("monitors[0].interval"), "\(invalid)")
        }
    }

    @Test("files that differ only in comments, spacing and key order, in folders of their own, are one configuration")
    func commentsDoNotCount() async throws {
        try await withCluster(Self.spec(subnet: 177)) { cluster in
            let paths = try Self.separate(cluster)
            let path = paths["node3"] ?? ""
            let text = try String(contentsOfFile: path, encoding: .utf8)
            let edited =
                "# node3's copy, edited by hand\n"
                + text.replacingOccurrences(of: "  name: ptest177\n", with: "  name:    ptest177   # the name\n")
            #expect(edited != text)
            try cluster.write(edited, to: path)
            try Self.start(cluster, paths)
            _ = try await cluster.waitUntilFormed(group: "grp1", on: "node1")
            for server in cluster.servers {
                let status = try await cluster.clpstat(on: server)
                #expect(status.configurationMismatch == nil, "\(server): \(status.configurationMismatch ?? [])")
                #expect(status.configuration?.outsider == false)
            }
            let log = try String(contentsOfFile: cluster.logPath(of: "node1"), encoding: .utf8)
            #expect(!log.contains("[nm 80]"), "\(log)")
        }
    }
}
