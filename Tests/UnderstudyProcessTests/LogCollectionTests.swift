import Foundation
import Testing
import UnderstudyEngine
import UnderstudyModel
import UnderstudyNode

#if canImport(Glibc)
    import Glibc
#endif

/// `clplogcc` on three real daemons (subnet 184): one archive per server that answers, the
/// stopped one named, the members each type promises, and no secret anywhere — the cluster
/// key, the web user's password and its hash, the SMTP password, the webhook secret and the
/// SNMP community, even when an operator wrote one into the alert log. Then `-t type3`, `-l`,
/// an unknown `-h`, and a second collection refused while one is in progress.
@Suite("Process: clplogcc")
struct LogCollectionTests {
    static let webPassword = "Web-Pa55word-logcc-1"
    static let mailPassword = "Mail-Pa55word-logcc-2"
    static let webhookSecret = "Hook-S3cret-logcc-3"
    static let community = "Comm-S3cret-logcc-4"

    static func alerts(folder: String) -> String {
        """
        alerts:
          destinations:
            - {name: oncall, type: mail, smtp: {address: 127.0.184.250, port: 2525, security: none, user: alert, password-file: \(folder)/mail.pass}, from: cluster@example.com, to: [ops@example.com]}
            - {name: nms, type: snmp, managers: [127.0.184.251:162], community: \(community), version: 2c}
            - {name: chat, type: webhook, url: "http://127.0.184.252:8080/hook", secret-file: \(folder)/hook.key}
          routes: []

        """
    }

    /// Extracts `archive` into a fresh folder under `scratch`; the folder.
    func extract(_ archive: String, scratch: String) async throws -> String {
        let target = scratch + "/x-" + UUID().uuidString.prefix(8)
        try FileManager.default.createDirectory(atPath: target, withIntermediateDirectories: true)
        let tar = try await CommandRunner.run("/bin/tar", ["-xzf", archive, "-C", target], scratch: scratch)
        #expect(tar.exitCode == 0, "\(tar)")
        return target
    }

    /// Every regular file under `folder`, relative paths.
    func members(of folder: String) -> [String] {
        guard let enumerator = FileManager.default.enumerator(atPath: folder) else { return [] }
        var found: [String] = []
        while let path = enumerator.nextObject() as? String, found.count < 10_000 {
            var isFolder: ObjCBool = false
            if FileManager.default.fileExists(atPath: folder + "/" + path, isDirectory: &isFolder), !isFolder.boolValue {
                found.append(path)
            }
        }
        return found.sorted()
    }

    /// Members of `folder` whose bytes contain `secret`.
    func holding(_ secret: String, in folder: String) -> [String] {
        let pattern = Data(secret.utf8)
        return members(of: folder).filter { member in
            guard let data = FileManager.default.contents(atPath: folder + "/" + member) else { return false }
            return data.range(of: pattern) != nil
        }
    }

    @Test("archives of the servers that answer, the stopped one named, no secret in any member")
    func collectsWithoutSecrets() async throws {
        var spec = ClusterSpec(subnet: 184)
        spec.web = "    listen: heartbeat-addresses\n    tls: false\n"
        try await withCluster(spec) { cluster in
            let folder = cluster.folder
            try cluster.write(Self.mailPassword + "\n", to: folder + "/mail.pass", mode: 0o600)
            try cluster.write(Self.webhookSecret + "\n", to: folder + "/hook.key", mode: 0o600)
            var withAlerts = spec
            withAlerts.alerts = Self.alerts(folder: folder)
            try cluster.write(withAlerts.yaml(folder: folder), to: cluster.configPath)
            try await cluster.addWebUser("admin", role: "operator", password: Self.webPassword)
            try cluster.start()
            try await cluster.waitUntilFormed()
            // An operator pasting secrets into the alert log: the archive must not carry them.
            let key = try String(contentsOfFile: cluster.keyPath, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
            let pasted = try await cluster.cli(
                ["clplogcmd", "-m", "oops \(Self.mailPassword) \(Self.community) \(key)", "--alert"], on: "node2")
            #expect(pasted.exitCode == 0, "\(pasted)")
            let users = try String(contentsOfFile: folder + "/users.yaml", encoding: .utf8)
            let hash = try #require(
                users.split(separator: "\n").first { $0.contains("password:") }.map {
                    $0.split(separator: ":", maxSplits: 1)[1].trimmingCharacters(in: .whitespaces)
                })

            // An incompressible 3 MiB script log on node2: its archive crosses the control
            // channel in several chunks.
            var noise = SystemRandomNumberGenerator()
            let words = (0..<(3 * 1024 * 1024 / 8)).map { _ in noise.next() as UInt64 }
            let random = words.withUnsafeBytes { Data($0) }.base64EncodedString(options: .lineLength76Characters)
            try FileManager.default.createDirectory(
                atPath: cluster.stateDirectory(of: "node2") + "/logs", withIntermediateDirectories: true)
            try cluster.write(random + "\n", to: cluster.stateDirectory(of: "node2") + "/logs/bulk.log")

            // node3 stops: it is named, the others' archives are written.
            cluster.send(SIGTERM, to: "node3")
            _ = try await cluster.waitForExit("node3", timeout: .seconds(20))
            let output = folder + "/collected"
            let run = try await cluster.cli(["clplogcc", "-o", output], on: "node1", timeout: .seconds(180))
            #expect(run.exitCode == 1, "\(run)")
            #expect(run.standardError.contains("node3: not collected"), "\(run)")
            #expect(!run.standardError.contains("node1:") && !run.standardError.contains("node2:"), "\(run)")
            let archives = (try FileManager.default.contentsOfDirectory(atPath: output)).sorted()
            #expect(archives.count == 2, "\(archives)")
            for server in ["node1", "node2"] {
                let name = try #require(
                    archives.first { $0.hasPrefix("understudy-logs-\(server)-") && $0.hasSuffix(".tar.gz") }, "\(archives)")
                #expect(run.standardOutput.contains("\(server): \(output)/\(name)"), "\(run)")
                let attributes = try FileManager.default.attributesOfItem(atPath: output + "/" + name)
                #expect((attributes[.posixPermissions] as? Int) == 0o600)
                if server == "node2" {
                    #expect((attributes[.size] as? Int ?? 0) > 2 * LogCollector.chunkSize, "node2's archive should take several chunks")
                }
                let extracted = try await extract(output + "/" + name, scratch: folder)
                let top = name.replacingOccurrences(of: ".tar.gz", with: "")
                let found = Set(members(of: extracted))
                for expected in [
                    "MANIFEST.txt", "status.json", "logs/alert.log", "logs/daemon.log", "config/cluster.yaml", "config/scripts.txt",
                    "state/engine.json", "state/listing.txt", "system/uname.txt", "system/ip-addr.txt", "system/ip-route.txt",
                    "system/mounts.txt", "system/df.txt", "system/meminfo.txt", "system/uptime.txt",
                    "logs/cluster-alerts/node1.log", "logs/cluster-alerts/node2.log",
                ] {
                    #expect(found.contains(top + "/" + expected), "\(server): \(expected) missing from \(found.sorted())")
                }
                if server == "node1" {
                    // grp1 runs on node1: its start script's log.
                    #expect(found.contains(top + "/logs/scripts/grp1-app.log"), "no script log in \(found.sorted())")
                } else {
                    let bulk = try String(contentsOfFile: "\(extracted)/\(top)/logs/scripts/bulk.log", encoding: .utf8)
                    #expect(bulk == random + "\n", "the bulk log arrived changed")
                }
                let status = try JSONDecoder().decode(
                    ClusterStatusSnapshot.self, from: Data(contentsOf: URL(fileURLWithPath: "\(extracted)/\(top)/status.json")))
                #expect(status.localServer == server)
                let config = try String(contentsOfFile: "\(extracted)/\(top)/config/cluster.yaml", encoding: .utf8)
                #expect(config.contains(ConfigRedaction.placeholder) && config.contains("mail.pass") && config.contains("hook.key"))
                let manifest = try String(contentsOfFile: "\(extracted)/\(top)/MANIFEST.txt", encoding: .utf8)
                #expect(manifest.contains("server:   \(server)"))
                // No secret in any member: the key, the web password and its hash, the SMTP
                // password, the webhook secret, the community.
                for (what, secret) in [
                    ("cluster key", key), ("web password", Self.webPassword), ("web password hash", hash),
                    ("SMTP password", Self.mailPassword), ("webhook secret", Self.webhookSecret), ("SNMP community", Self.community),
                ] {
                    #expect(holding(secret, in: extracted).isEmpty, "\(server): the \(what) is in \(holding(secret, in: extracted))")
                }
                if server == "node2" {
                    #expect(manifest.contains("logs/alert.log: 3 occurrence(s) of configured secrets replaced"), "\(manifest)")
                }
            }
            // Nothing is left behind in the state folders.
            for server in ["node1", "node2"] {
                let work = cluster.stateDirectory(of: server) + "/logcc"
                #expect(((try? FileManager.default.contentsOfDirectory(atPath: work)) ?? []).isEmpty, "\(server): \(work) not emptied")
            }

            // On node3, whose daemon is stopped: clplogcc builds node3's archive itself (no
            // status), and names the servers it cannot ask.
            let offline = folder + "/offline"
            let alone = try await cluster.cli(
                ["clplogcc", "-o", offline, "--config", cluster.configPath, "--server", "node3"], on: "node3", timeout: .seconds(120))
            #expect(alone.exitCode == 1, "\(alone)")
            #expect(alone.standardOutput.contains("node3: \(offline)/understudy-logs-node3-"), "\(alone)")
            #expect(alone.standardError.contains("node1: not collected: the local daemon is not running"), "\(alone)")
            let offlineArchives = (try? FileManager.default.contentsOfDirectory(atPath: offline)) ?? []
            #expect(offlineArchives.count == 1, "\(offlineArchives)")
            if let name = offlineArchives.first {
                let extracted = try await extract(offline + "/" + name, scratch: folder)
                let found = members(of: extracted)
                #expect(
                    found.contains { $0.hasSuffix("/config/cluster.yaml") } && found.contains { $0.hasSuffix("/logs/alert.log") },
                    "\(found)")
                #expect(!found.contains { $0.hasSuffix("/status.json") }, "\(found)")
                for secret in [key, Self.webPassword, hash, Self.mailPassword, Self.webhookSecret, Self.community] {
                    #expect(holding(secret, in: extracted).isEmpty, "node3 (offline): a secret is in \(holding(secret, in: extracted))")
                }
            }

            // type3: logs and status only, from the local server only.
            let minimal = folder + "/minimal"
            let local = try await cluster.cli(["clplogcc", "-t", "type3", "-l", "-o", minimal], on: "node2", timeout: .seconds(120))
            #expect(local.exitCode == 0, "\(local)")
            let only = try FileManager.default.contentsOfDirectory(atPath: minimal)
            #expect(only.count == 1 && only.first?.hasPrefix("understudy-logs-node2-") == true, "\(only)")
            if let name = only.first {
                let extracted = try await extract(minimal + "/" + name, scratch: folder)
                let found = members(of: extracted)
                #expect(found.contains { $0.hasSuffix("/logs/alert.log") } && found.contains { $0.hasSuffix("/status.json") }, "\(found)")
                #expect(!found.contains { $0.contains("/config/") || $0.contains("/system/") || $0.contains("/state/") }, "\(found)")
            }

            // -h of a server that does not exist: bad usage.
            let unknown = try await cluster.cli(["clplogcc", "-h", "node9", "-o", minimal], on: "node1")
            #expect(unknown.exitCode == 2 && unknown.standardError.contains("Unknown server node9"), "\(unknown)")

            // A collection in progress on node2 (from elsewhere): a second one is refused.
            let socket = cluster.stateDirectory(of: "node1") + "/understudy.sock"
            let other = LogCollectionStep.prepare(collection: "other-collector", type: .type3, label: "20260101-000000", collector: "node1")
            let answer = try await LocalControlClient.request(
                path: socket, payload: WireJSON.encode(LocalRequest.logCollection(other, target: "node2")), timeout: .seconds(20))
            guard case .logCollection(let prepared) = try WireJSON.decode(LocalResponse.self, from: answer) else {
                Issue.record("unexpected answer to prepare")
                return
            }
            #expect(prepared == .building || { if case .ready = prepared { true } else { false } }(), "\(prepared)")
            let refused = try await cluster.cli(["clplogcc", "-o", folder + "/refused"], on: "node1", timeout: .seconds(60))
            #expect(refused.exitCode == 4, "\(refused)")
            #expect(refused.standardError.contains("node2: Another log collection (from node1"), "\(refused)")
            let leftovers = (try? FileManager.default.contentsOfDirectory(atPath: folder + "/refused")) ?? []
            #expect(leftovers.isEmpty, "\(leftovers)")
            // node1 took part first and was released (its build, if still running, removes its
            // files when it ends).
            let node1Work = cluster.stateDirectory(of: "node1") + "/logcc"
            #expect(
                try await poll(upTo: .seconds(30)) { ((try? FileManager.default.contentsOfDirectory(atPath: node1Work)) ?? []).isEmpty },
                "\(node1Work) not emptied")
            _ = try await LocalControlClient.request(
                path: socket, payload: WireJSON.encode(LocalRequest.logCollection(.finish(collection: "other-collector"), target: "node2")),
                timeout: .seconds(20))
            // Free again; type2 from node2 alone.
            let again = try await cluster.cli(
                ["clplogcc", "-t", "type2", "-h", "node2", "-o", folder + "/again"], on: "node1", timeout: .seconds(120))
            #expect(again.exitCode == 0, "\(again)")
            let broad = (try? FileManager.default.contentsOfDirectory(atPath: folder + "/again")) ?? []
            #expect(broad.count == 1 && broad.first?.hasPrefix("understudy-logs-node2-") == true, "\(broad)")
            if let name = broad.first {
                let extracted = try await extract(folder + "/again/" + name, scratch: folder)
                let found = members(of: extracted)
                #expect(
                    found.contains { $0.hasSuffix("/system/uname.txt") } && found.contains { $0.hasSuffix("/config/cluster.yaml") },
                    "\(found)")
                if FileManager.default.isExecutableFile(atPath: "/usr/bin/journalctl")
                    || FileManager.default.isExecutableFile(atPath: "/bin/journalctl")
                {
                    #expect(found.contains { $0.hasSuffix("/system/journal.txt") }, "\(found)")
                }
                let manifest = try String(
                    contentsOfFile: extracted + "/" + (found.first { $0.hasSuffix("/MANIFEST.txt") } ?? ""), encoding: .utf8)
                #expect(manifest.contains("clplogcc -t type2"))
            }
        }
    }
}
