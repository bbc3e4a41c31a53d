import Foundation
import Testing
import UnderstudyEngine
import UnderstudyModel

#if canImport(Glibc)
    import Glibc
#endif

/// Scenarios 9 and 10: exit codes and messages of the command line, and the clp* aliases.
@Suite("Process: command line")
struct CommandLineTests {
    @Test("exit 3 with a clear message when no daemon listens")
    func unreachableDaemon() async throws {
        let binary = try ProcessTestPaths.requireBinary()
        try await withScratchFolder { folder in
            for command in [["clpstat"], ["clpstat", "--json"], ["clpgrp", "-s", "grp1"], ["clpcl", "-s"], ["clprsc", "-n", "x"]] {
                let outcome = try await CommandRunner.run(binary, command + ["--state-dir", folder], scratch: folder)
                #expect(outcome.exitCode == 3, "\(outcome)")
                #expect(outcome.standardError.contains("not reachable"), "\(outcome)")
                #expect(outcome.standardError.contains(folder + "/understudy.sock"), "\(outcome)")
                #expect(outcome.standardOutput.isEmpty, "\(outcome)")
            }
        }
    }

    @Test("exit 2 for bad usage and for an unknown group; 1 for an operation that fails")
    func badUsage() async throws {
        try await withCluster(ClusterSpec(subnet: 113, servers: ["node1"])) { cluster in
            // Usage errors are found before any daemon is asked.
            for command in [["clpstat", "--bogus"], ["clpgrp", "-x", "grp1"], ["clpgrp", "grp1"], ["clpcl"], ["frobnicate"]] {
                let outcome = try await cluster.understudy(command + ["--state-dir", cluster.stateDirectory(of: "node1")])
                #expect(outcome.exitCode == 2, "\(outcome)")
                #expect(!outcome.standardError.isEmpty, "\(outcome)")
            }

            try cluster.start()
            try await cluster.waitUntilFormed()
            let unknownGroup = try await cluster.cli(["clpgrp", "-s", "nosuch"], on: "node1")
            #expect(unknownGroup.exitCode == 2, "\(unknownGroup)")
            #expect(unknownGroup.standardError.contains("Unknown group nosuch"), "\(unknownGroup)")
            let unknownResource = try await cluster.cli(["clprsc", "-t", "nosuch"], on: "node1")
            #expect(unknownResource.exitCode == 2, "\(unknownResource)")
            #expect(unknownResource.standardError.contains("nosuch"), "\(unknownResource)")
            let unknownServer = try await cluster.cli(["clpcl", "-s", "-h", "node9"], on: "node1")
            #expect(unknownServer.exitCode == 2, "\(unknownServer)")
            #expect(unknownServer.standardError.contains("node9"), "\(unknownServer)")

            // An operation that cannot be done: 1, with one line naming the object.
            let alreadyRunning = try await cluster.cli(["clpcl", "-s"], on: "node1")
            #expect(alreadyRunning.exitCode == 1, "\(alreadyRunning)")
            #expect(alreadyRunning.standardError.contains("node1"), "\(alreadyRunning)")
            let alreadyThere = try await cluster.cli(["clpgrp", "-s", "grp1"], on: "node1")
            #expect(alreadyThere.exitCode == 1, "\(alreadyThere)")
            #expect(alreadyThere.standardError.contains("grp1"), "\(alreadyThere)")
        }
    }

    @Test("config check exits 2 on a broken file with file:line:col: key: message lines")
    func configCheckReportsPlaces() async throws {
        let binary = try ProcessTestPaths.requireBinary()
        try await withScratchFolder { folder in
            let path = folder + "/cluster.yaml"
            let broken = """
                cluster:
                  name: broken
                  secret-file: cluster.key
                  timing:
                    heartbeat-interval: abc
                    heartbeat-timout: 10s
                servers:
                  - node1

                """
            try broken.write(toFile: path, atomically: true, encoding: .utf8)
            let outcome = try await CommandRunner.run(binary, ["config", "check", path], scratch: folder)
            #expect(outcome.exitCode == 2, "\(outcome)")
            let lines = outcome.standardError.split(separator: "\n").map(String.init)
            #expect(lines.contains { $0.hasPrefix("\(path):5:25: cluster.timing.heartbeat-interval: ") }, "\(outcome)")
            #expect(
                lines.contains {
                    $0.hasPrefix("\(path):6:5: cluster.timing.heartbeat-timout: unknown key") && $0.contains("heartbeat-timeout")
                }, "\(outcome)")
            #expect(lines.last == "\(path): 2 errors", "\(outcome)")

            // The same file repaired passes.
            try broken.replacingOccurrences(of: "abc", with: "1s").replacingOccurrences(of: "timout", with: "timeout")
                .write(toFile: path, atomically: true, encoding: .utf8)
            let repaired = try await CommandRunner.run(binary, ["config", "check", "--no-file-checks", path], scratch: folder)
            #expect(repaired.exitCode == 0, "\(repaired)")
            #expect(repaired.standardOutput.hasPrefix("\(path): OK (1 servers, 0 groups"), "\(repaired)")
        }
    }

    @Test("keygen writes a mode 0600 key and refuses to replace it without --force")
    func keygen() async throws {
        let binary = try ProcessTestPaths.requireBinary()
        try await withScratchFolder { folder in
            let path = folder + "/cluster.key"
            let first = try await CommandRunner.run(binary, ["keygen", path], scratch: folder)
            #expect(first.exitCode == 0, "\(first)")
            let attributes = try FileManager.default.attributesOfItem(atPath: path)
            #expect((attributes[.posixPermissions] as? Int) == 0o600)
            let key = try String(contentsOfFile: path, encoding: .utf8)
            let again = try await CommandRunner.run(binary, ["keygen", path], scratch: folder)
            #expect(again.exitCode == 1, "\(again)")
            #expect(again.standardError.contains(path), "\(again)")
            #expect(try String(contentsOfFile: path, encoding: .utf8) == key, "the key was replaced")
            let forced = try await CommandRunner.run(binary, ["keygen", "--force", path], scratch: folder)
            #expect(forced.exitCode == 0, "\(forced)")
            #expect(try String(contentsOfFile: path, encoding: .utf8) != key)
        }
    }

    @Test("the daemon refuses to start (exit 2) when a disk resource's device is missing here, naming file, line and key")
    func daemonRefusesMissingDevice() async throws {
        var spec = ClusterSpec(subnet: 114, servers: ["node1"])
        spec.groups = []
        try await withCluster(spec) { cluster in
            let withDisk =
                try String(contentsOfFile: cluster.configPath, encoding: .utf8) + """
                    groups:
                      - name: web
                        resources:
                          - name: disk1
                            type: disk
                            device: /dev/disk/by-id/shared-data
                            filesystem: ext4
                            mount-point: /mnt/web

                    """
            try cluster.write(withDisk, to: cluster.configPath)
            #expect(try await cluster.understudy(["config", "check", cluster.configPath]).exitCode == 0)
            try cluster.startDaemon("node1")
            #expect(try await cluster.waitForExit("node1", timeout: .seconds(10)) == 2)
            let log = try String(contentsOfFile: cluster.logPath(of: "node1"), encoding: .utf8)
            #expect(log.contains("cluster.yaml:"), "\(log)")
            #expect(log.contains("groups[0].resources[0].device: device /dev/disk/by-id/shared-data does not exist on node1"), "\(log)")
            #expect(!FileManager.default.fileExists(atPath: cluster.stateDirectory(of: "node1") + "/running"))
        }
    }

    @Test("install-aliases creates clp* symlinks that behave as the understudy subcommands")
    func multiCallAliases() async throws {
        try await withCluster(ClusterSpec(subnet: 115, servers: ["node1"])) { cluster in
            let aliases = cluster.folder + "/bin"
            try FileManager.default.createDirectory(atPath: aliases, withIntermediateDirectories: true)
            let install = try await cluster.understudy(["install-aliases", aliases])
            #expect(install.exitCode == 0, "\(install)")
            let resolvedBinary = realPath(cluster.binary)
            #expect(resolvedBinary != nil)
            for alias in ["clpstat", "clpcl", "clpgrp", "clprsc"] {
                let link = aliases + "/" + alias
                #expect(try FileManager.default.attributesOfItem(atPath: link)[.type] as? FileAttributeType == .typeSymbolicLink)
                #expect(realPath(link) == resolvedBinary, "\(alias) resolves to \(realPath(link) ?? "nothing")")
            }
            // Installing again is harmless.
            #expect(try await cluster.understudy(["install-aliases", aliases]).exitCode == 0)

            try cluster.start()
            try await cluster.waitUntilFormed()
            let state = cluster.stateDirectory(of: "node1")
            let viaAlias = try await CommandRunner.run(aliases + "/clpstat", ["--state-dir", state], scratch: cluster.folder)
            let viaSubcommand = try await cluster.cli(["clpstat"], on: "node1")
            #expect(viaAlias.exitCode == 0, "\(viaAlias)")
            // The alert destinations' counters move between the two calls (a syslog destination
            // retrying): compare the rest.
            func stable(_ text: String) -> String {
                text.split(separator: "\n").filter { !$0.contains(": delivered ") }.joined(separator: "\n")
            }
            #expect(stable(viaAlias.standardOutput) == stable(viaSubcommand.standardOutput), "\(viaAlias)\n\(viaSubcommand)")
            #expect(viaAlias.standardOutput.contains("Cluster : ptest115"))

            let json = try await CommandRunner.run(aliases + "/clpstat", ["--json", "--state-dir", state], scratch: cluster.folder)
            let snapshot = try JSONDecoder().decode(ClusterStatusSnapshot.self, from: Data(json.standardOutput.utf8))
            #expect(snapshot.group(named: "grp1")?.status == .online)

            let whereRuns = try await CommandRunner.run(aliases + "/clpgrp", ["-n", "grp1", "--state-dir", state], scratch: cluster.folder)
            #expect(whereRuns.outputLines == ["node1"], "\(whereRuns)")
            let stop = try await CommandRunner.run(aliases + "/clpgrp", ["-t", "grp1", "--state-dir", state], scratch: cluster.folder)
            #expect(stop.exitCode == 0, "\(stop)")
            let resource = try await CommandRunner.run(
                aliases + "/clprsc", ["-n", "grp1-app", "--state-dir", state], scratch: cluster.folder)
            #expect(resource.exitCode == 1, "\(resource)")
            let usage = try await CommandRunner.run(aliases + "/clpcl", ["--bogus", "--state-dir", state], scratch: cluster.folder)
            #expect(usage.exitCode == 2, "\(usage)")
        }
    }
}

/// The path with every symlink resolved (realpath(3)).
func realPath(_ path: String) -> String? {
    guard let resolved = realpath(path, nil) else { return nil }
    defer { free(resolved) }
    return String(cString: resolved)
}
