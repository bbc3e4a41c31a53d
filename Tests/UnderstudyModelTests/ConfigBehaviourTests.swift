import Foundation
import Testing

@testable import UnderstudyModel

@Suite("Defaults, paths and warnings")
struct ConfigBehaviourTests {
    @Test func defaultsAreApplied() throws {
        let yaml =
            baseCluster + """
                groups:
                  - name: g1
                    resources:
                      - {name: exec1, type: exec, start: start.sh, start-mode: async}
                      - {name: disk1, type: disk, device: /dev/sdb1, filesystem: xfs, mount-point: /data}
                monitors:
                  - {name: g, type: genw, script: check.sh, recovery: {target: g1}}
                  - {name: p, type: pidw, target: exec1}
                  - {name: d, type: diskw, device: /dev/sdb1, recovery: {target: g1}}
                  - {name: db, type: psqlw, database: app, recovery: {target: g1}}

                """
        let config = try load(yaml).config
        let cluster = config.cluster
        #expect(cluster.timing == TimingSettings())
        #expect(cluster.timing.heartbeatInterval == .seconds(3))
        #expect(cluster.timing.heartbeatTimeout == .seconds(90))
        #expect(cluster.timing.syncWait == .seconds(300))
        #expect(cluster.ports == PortSettings(control: 29001, heartbeat: 29002, http: 29003))
        #expect(cluster.networkPartitionAction == .shutdown)
        #expect(cluster.shutdownMonitor == ShutdownMonitorSettings(method: .none, timeout: .heartbeat))
        #expect(cluster.recovery == RecoverySettings())
        #expect(cluster.comment == "")

        let group = try #require(config.groups.first)
        #expect(group.servers == ["node1", "node2"], "all servers in cluster order")
        #expect(group.startup == .auto && group.failover == .auto && group.failback == .manual)
        #expect(group.exclusive == .none && group.stopAfter.isEmpty)
        #expect(group.stopAfterWhen == [.clusterStop] && group.stopAfterTimeout == .seconds(1800))

        let exec = group.resources[0]
        #expect(exec.depends == nil)
        #expect(exec.activation == ActivationPolicy(retry: 0, failover: 1, finalAction: .none))
        #expect(exec.deactivation == DeactivationPolicy(retry: 0, finalAction: .shutdown))
        guard case .exec(let settings) = exec.settings else {
            Issue.record("not exec")
            return
        }
        #expect(settings.timeout == .seconds(1800) && settings.stopTimeout == .seconds(1800))
        #expect(settings.stop == nil && settings.log == nil && settings.stopMode == .sync)
        #expect(settings.logRotateSize == 1_000_000)
        #expect(
            group.resources[1].settings
                == .disk(DiskSettings(device: "/dev/sdb1", filesystem: "xfs", mountPoint: "/data", mountOptions: "rw")))
        #expect(group.effectiveDependencies(of: group.resources[0]) == ["disk1"])

        let genw = config.monitors[0]
        #expect(genw.interval == .seconds(60) && genw.timeout == .seconds(120))
        #expect(genw.retries == 0 && genw.firstWait == .zero && genw.timing == .always && genw.nice == 0)
        #expect(genw.servers == nil && genw.runs(on: "node2"))
        #expect(genw.recovery == MonitorRecovery(target: .group("g1")))
        #expect(genw.recovery.reactivations == 3 && genw.recovery.failovers == 1 && genw.recovery.finalAction == .none)
        #expect(genw.recovery.scriptCount == 0 && genw.recovery.runScriptBefore.isEmpty && genw.recovery.scriptTimeout == .seconds(5))
        #expect(genw.parameters["mode"] == .string("sync") && genw.parameters["normal-value"] == .int(0))

        let pidw = config.monitors[1]
        #expect(pidw.timing == .active)
        #expect(pidw.recovery.target == .resource("exec1"), "recovery goes to the monitored resource by default")

        #expect(config.monitors[2].retries == 1)
        #expect(config.monitors[2].parameters["method"] == .string("read-direct"))
        let psqlw = config.monitors[3]
        #expect(psqlw.string("host") == "127.0.0.1" && psqlw.int("port") == 5432 && psqlw.string("user") == "postgres")
        #expect(psqlw.string("table") == "psqlwatch" && psqlw.int("level") == 2)
    }

    @Test func stopAfterShortAndLongForms() throws {
        let yaml =
            baseCluster + """
                groups:
                  - {name: web, resources: [{name: e1, type: exec, stop: /bin/true}]}
                  - {name: ups1, servers: [node1], stop-after: [web], resources: [{name: e2, type: exec, stop: /bin/true}]}
                  - name: ups2
                    servers: [node2]
                    stop-after: {groups: [web], when: [cluster-stop, server-stop], timeout: 2m}
                    resources: [{name: e3, type: exec, stop: /bin/true}]

                """
        let groups = try load(yaml).config.groups
        #expect(groups[1].stopAfter == ["web"] && groups[1].stopAfterWhen == [.clusterStop])
        #expect(groups[2].stopAfter == ["web"] && groups[2].stopAfterWhen == [.clusterStop, .serverStop])
        #expect(groups[2].stopAfterTimeout == .seconds(120))
    }

    @Test func relativePathsResolveAgainstTheConfigFolder() throws {
        let yaml =
            baseCluster.replacingOccurrences(of: "/etc/understudy/test.key", with: "keys/../cluster.key") + """
                groups:
                  - name: g1
                    resources:
                      - {name: exec1, type: exec, start: scripts/g1/start.sh, stop: /opt/stop.sh, log: ./logs/exec1.log}
                monitors:
                  - {name: g, type: genw, script: scripts/monitor/genw.sh, recovery: {target: g1, script: pre.sh, script-count: 1}}

                """
        let config = try load(yaml, sourcePath: "/srv/conf/cluster.yaml").config
        #expect(config.sourcePath == "/srv/conf/cluster.yaml")
        #expect(config.cluster.secretFile == "/srv/conf/cluster.key")
        guard case .exec(let exec) = config.groups[0].resources[0].settings else {
            Issue.record("not exec")
            return
        }
        #expect(exec.start == "/srv/conf/scripts/g1/start.sh")
        #expect(exec.stop == "/opt/stop.sh")
        #expect(exec.log == "/srv/conf/logs/exec1.log")
        #expect(config.monitors[0].string("script") == "/srv/conf/scripts/monitor/genw.sh")
        #expect(config.monitors[0].recovery.script == "/srv/conf/pre.sh")
    }

    @Test func relativeConfigPathUsesTheCurrentDirectory() throws {
        let config = try load(
            baseCluster.replacingOccurrences(of: "/etc/understudy/test.key", with: "test.key") + baseGroup, sourcePath: "conf/cluster.yaml"
        ).config
        let cwd = FileManager.default.currentDirectoryPath
        #expect(config.cluster.secretFile == ConfigSourceMap.normalize(cwd + "/conf/test.key"))
    }

    @Test func missingSecretFileIsOnlyAWarning() throws {
        let loaded = try load(baseCluster + baseGroup, checkFiles: true)
        let warning = try #require(loaded.warnings.first { $0.keyPath == "cluster.secret-file" })
        #expect(warning.severity == .warning && warning.line == 3)
        #expect(
            warning.description
                == "cluster.yaml:3:16: warning: cluster.secret-file: secret file /etc/understudy/test.key does not exist on this machine; the daemon will not start without it"
        )
    }

    @Test func secretFileReadableByOthersIsAWarning() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("understudy-model-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let key = folder.appendingPathComponent("cluster.key").path
        #expect(FileManager.default.createFile(atPath: key, contents: Data("secret".utf8), attributes: [.posixPermissions: 0o644]))
        let yaml = baseCluster.replacingOccurrences(of: "/etc/understudy/test.key", with: "cluster.key") + baseGroup
        let configPath = folder.appendingPathComponent("cluster.yaml").path
        try yaml.write(toFile: configPath, atomically: true, encoding: .utf8)
        let loaded = try ConfigLoader.loadWithWarnings(path: configPath)
        #expect(loaded.warnings.contains { $0.message.contains("readable by other users") })
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: key)
        let quiet = try ConfigLoader.loadWithWarnings(path: configPath)
        #expect(!quiet.warnings.contains { $0.keyPath == "cluster.secret-file" })
    }

    @Test func missingScriptIsAWarning() throws {
        let yaml = baseCluster + "groups:\n  - name: g1\n    resources: [{name: e, type: exec, start: /nonexistent/start.sh}]\n"
        let loaded = try load(yaml, checkFiles: true)
        #expect(loaded.warnings.contains { $0.keyPath == "groups[0].resources[0].start" && $0.message.contains("does not exist") })
    }

    @Test func noNetworkPartitionResolutionWarns() throws {
        let yaml = baseCluster.replacingOccurrences(
            of: "network-partition:\n  - {name: np1, type: pingnp, targets: [10.0.0.254]}\n", with: "")
        let loaded = try load(yaml + baseGroup)
        let warning = try #require(loaded.warnings.first { $0.keyPath == "network-partition" })
        #expect(warning.message.contains("a network partition will leave both sides running"))
    }

    @Test func singleLanPathWarns() throws {
        let yaml = baseCluster.replacingOccurrences(
            of: "  - {name: lan2, type: lanhb, addresses: {node1: 10.0.1.1, node2: 10.0.1.2}}\n", with: "")
        let loaded = try load(yaml + baseGroup)
        let warning = try #require(loaded.warnings.first { $0.keyPath == "heartbeats" })
        #expect(warning.message.contains("only one lanhb path"))
        #expect(warning.line == 8)
    }

    @Test func majorityWithTwoServersWarns() throws {
        let loaded = try load(
            baseCluster.replacingOccurrences(of: "type: pingnp, targets: [10.0.0.254]", with: "type: majority") + baseGroup)
        #expect(loaded.warnings.contains { $0.keyPath == "network-partition[0].type" && $0.message.contains("majority") })
    }

    @Test func cleanConfigHasNoWarnings() throws {
        #expect(try load(baseCluster + baseGroup).warnings.isEmpty)
    }

    @Test func singleServerClusterNeedsNoHeartbeat() throws {
        let yaml =
            "cluster: {name: solo, secret-file: /k}\nservers: [solo1]\ngroups:\n  - {name: g, resources: [{name: e, type: exec, stop: /bin/true}]}\n"
        let loaded = try load(yaml)
        #expect(loaded.config.servers == [ServerConfig(name: "solo1")])
        #expect(loaded.warnings.isEmpty)
    }

    @Test func everyMonitorTypeLoadsWithItsRequiredKeys() throws {
        let yaml =
            baseCluster + """
                groups:
                  - name: g1
                    resources:
                      - {name: fip1, type: fip, address: 10.0.0.9/24}
                      - {name: vip1, type: vip, address: 'fd00::9/64'}
                      - {name: ddns1, type: ddns, hostname: web.example.com, server: 10.0.0.53, ttl: 60}
                      - {name: vol1, type: volmgr, manager: lvm, volume: vg0}
                      - {name: nas1, type: nas, server: nfs.example.com, share: /export, mount-point: /mnt/nas}
                      - {name: exec1, type: exec, start: /bin/true, start-mode: async}
                      - {name: vm1, type: vm, vm-name: guest}
                monitors:
                  - {name: m-userw, type: userw}
                  - {name: m-pidw, type: pidw, target: exec1}
                  - {name: m-psw, type: psw, process-name: nginx, min-count: 2, recovery: {target: g1}}
                  - {name: m-genw, type: genw, script: /bin/true, mode: async, recovery: {target: g1}}
                  - {name: m-mtw, type: mtw, monitors: [m-psw, m-genw], recovery: {target: g1}}
                  - {name: m-mrw, type: mrw, keyword: disk, recovery: {target: all-groups}}
                  - {name: m-ipw, type: ipw, targets: [10.0.0.254, 'fd00::1'], recovery: {target: g1}}
                  - {name: m-fipw, type: fipw, target: fip1, monitor-link: true}
                  - {name: m-miiw, type: miiw, interface: eth0, recovery: {target: g1}}
                  - {name: m-diskw, type: diskw, device: /dev/sdb, method: tur, recovery: {target: g1}}
                  - {name: m-volmgrw, type: volmgrw, manager: zfs, volume: tank, recovery: {target: vol1}}
                  - {name: m-psqlw, type: psqlw, database: app, level: 1, recovery: {target: g1}}
                  - {name: m-mysqlw, type: mysqlw, database: app, user: watch, password-file: /etc/pw, recovery: {target: g1}}
                  - {name: m-httpw, type: httpw, url: 'http://127.0.0.1:8080/health', body-match: ok, recovery: {target: g1}}
                  - {name: m-nfsw, type: nfsw, share: /export, recovery: {target: g1}}
                  - {name: m-sambaw, type: sambaw, share: data, recovery: {target: g1}}
                  - {name: m-oraclew, type: oraclew, connect-string: orcl, recovery: {target: g1}}
                  - {name: m-vmw, type: vmw, target: vm1}
                  - {name: m-ddnsw, type: ddnsw, target: ddns1}
                  - {name: m-vipw, type: vipw, target: vip1}
                  - {name: m-upsw, type: upsw, ups: ups1, user: admin, password-file: /etc/pw, recovery: {target: local-server}}

                """
        let config = try load(yaml).config
        #expect(Set(config.monitors.map(\.type)) == Set(MonitorType.allCases))
        #expect(config.monitors.first { $0.type == .mrw }?.string("category") == "NIC")
        #expect(config.monitors.first { $0.type == .mrw }?.recovery.target == .allGroups)
        #expect(config.monitors.first { $0.type == .volmgrw }?.recovery.target == .resource("vol1"))
        #expect(config.monitors.first { $0.type == .mysqlw }?.int("port") == 3306)
    }

    @Test func validatorWorksOnConfigsBuiltInCode() {
        let config = ClusterConfig(
            cluster: ClusterSettings(name: "c", secretFile: "/k"),
            servers: [ServerConfig(name: "a"), ServerConfig(name: "B")],
            groups: [
                GroupConfig(
                    name: "g", servers: ["a", "c"], resources: [ResourceConfig(name: "e", settings: .exec(ExecSettings(stop: "/bin/true")))]
                )
            ],
            monitors: [
                MonitorConfig(
                    name: "m", type: .diskw, recovery: MonitorRecovery(target: .group("nope")), parameters: ["devise": .string("/dev/x")])
            ]
        )
        let problems = ConfigValidator.validate(config, checkFiles: false)
        let paths = Set(problems.filter { $0.severity == .error }.map(\.keyPath))
        #expect(
            paths.isSuperset(of: [
                "servers[1].name", "groups[0].servers[1]", "heartbeats", "monitors[0].recovery.target",
                "monitors[0].devise", "monitors[0].device",
            ]))
        #expect(problems.allSatisfy { $0.line == 0 })
        #expect(problems.first?.description.hasPrefix("<config>: ") == true)
    }

    @Test func loadingAFileReportsFileProblems() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("understudy-model-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }

        func firstError(_ path: String) -> String {
            do {
                _ = try ConfigLoader.load(path: path)
                return "loaded"
            } catch {
                return error.errors.first?.description ?? "no error"
            }
        }
        #expect(firstError(folder.path + "/missing.yaml") == folder.path + "/missing.yaml: no such file")
        #expect(firstError(folder.path).contains("is a directory"))
        let binary = folder.appendingPathComponent("binary.yaml")
        try Data([0xFF, 0xFE, 0x00, 0xC3, 0x28, 0x80]).write(to: binary)
        #expect(firstError(binary.path).contains("not UTF-8 text"))
        let empty = folder.appendingPathComponent("empty.yaml")
        try Data().write(to: empty)
        #expect(firstError(empty.path).contains("the file is empty"))
    }
}
