import Foundation
import Testing

@testable import UnderstudyModel

@Suite("The reference example")
struct ExampleConfigTests {
    let loaded: LoadedConfig
    let exampleFolder = ConfigSourceMap.normalize(packageRoot + "/../shared/design")

    init() throws {
        loaded = try ConfigLoader.loadWithWarnings(path: examplePath)
    }

    @Test func clusterSettings() {
        let cluster = loaded.config.cluster
        #expect(loaded.config.sourcePath == exampleFolder + "/cluster-example.yaml")
        #expect(cluster.name == "webcluster")
        #expect(cluster.comment == "Two-server web cluster with shared disk")
        #expect(cluster.secretFile == "/etc/understudy/cluster.key")
        #expect(cluster.timing == TimingSettings(heartbeatInterval: .seconds(3), heartbeatTimeout: .seconds(90), syncWait: .seconds(300)))
        #expect(cluster.networkPartitionAction == .shutdown)
        #expect(cluster.shutdownMonitor == ShutdownMonitorSettings(method: .softdog, timeout: .heartbeat))
        #expect(cluster.recovery.maxReboots == 0)
        #expect(cluster.recovery.suppressFinalActionWhenAlone == [.activation, .deactivation, .monitor])
        #expect(cluster.recovery.disableMonitorRecovery == false)
        #expect(cluster.ports == PortSettings(control: 29001, heartbeat: 29002, http: 29003))
        #expect(cluster.osCommands.shutdown == ["/sbin/shutdown", "-h", "now"])
        #expect(cluster.osCommands.reboot == ["/sbin/shutdown", "-r", "now"])
    }

    @Test func serversHeartbeatsAndPartition() {
        let config = loaded.config
        #expect(config.servers == [ServerConfig(name: "node1", comment: "primary"), ServerConfig(name: "node2")])
        #expect(config.heartbeats.map(\.name) == ["lanhb1", "lanhb2", "diskhb1", "comhb1"])
        #expect(config.heartbeats[0].kind == .lan(addresses: ["node1": "10.0.0.1", "node2": "10.0.0.2"]))
        #expect(config.heartbeats[1].kind == .lan(addresses: ["node1": "192.168.0.1", "node2": "192.168.0.2"]))
        #expect(config.heartbeats[2].kind == .disk(device: "/dev/disk/by-id/shared-hb"))
        #expect(config.heartbeats[3].kind == .serial(devices: ["node1": "/dev/ttyS0", "node2": "/dev/ttyS0"], speed: 19200))
        #expect(config.networkPartition == [NetworkPartitionConfig(name: "pingnp1", kind: .ping(targets: ["192.168.0.254"]))])
    }

    @Test func groupsAndResources() throws {
        let config = loaded.config
        #expect(config.groups.map(\.name) == ["web", "ups-node1", "ups-node2"])
        let web = try #require(config.group(named: "web"))
        #expect(web.comment == "nginx on a shared disk")
        #expect(web.servers == ["node1", "node2"])
        #expect(web.startup == .auto && web.failover == .auto && web.failback == .manual && web.exclusive == .none)
        #expect(web.resources.map(\.name) == ["fip1", "disk1", "exec1"])
        #expect(web.resources[0].settings == .fip(FloatingIPSettings(address: "192.168.0.12/24")))
        #expect(
            web.resources[1].settings
                == .disk(DiskSettings(device: "/dev/disk/by-id/shared-data", filesystem: "ext4", mountPoint: "/mnt/web")))
        guard case .exec(let exec) = web.resources[2].settings else {
            Issue.record("exec1 is not an exec resource")
            return
        }
        #expect(exec.start == exampleFolder + "/scripts/web/exec1/start.sh")
        #expect(exec.stop == exampleFolder + "/scripts/web/exec1/stop.sh")
        #expect(exec.startMode == .async && exec.stopMode == .sync)
        #expect(exec.timeout == .seconds(1800) && exec.stopTimeout == .seconds(1800))
        #expect(web.resources[2].activation == ActivationPolicy(retry: 0, failover: 1, finalAction: .none))
        #expect(web.resources[2].deactivation == DeactivationPolicy(retry: 0, finalAction: .shutdown))
        #expect(web.effectiveDependencies(of: web.resources[2]) == ["fip1", "disk1"])

        let ups = try #require(config.group(named: "ups-node1"))
        #expect(ups.servers == ["node1"])
        #expect(ups.resources.first?.settings == .exec(ExecSettings(stop: exampleFolder + "/scripts/ups/stop.sh")))
    }

    @Test func monitors() throws {
        let monitors = loaded.config.monitors
        #expect(monitors.map(\.name) == ["userw", "pidw1", "fipw1", "diskw1", "ipw1", "genw1"])

        let userw = monitors[0]
        #expect(userw.type == .userw)
        #expect(userw.interval == .seconds(3) && userw.timeout == .seconds(90), "userw follows the heartbeat")
        #expect(userw.recovery.target == .localServer && userw.recovery.finalAction == .reboot)

        let pidw = monitors[1]
        #expect(pidw.target == "exec1" && pidw.timing == .active)
        #expect(pidw.interval == .seconds(5) && pidw.timeout == .seconds(60) && pidw.retries == 0)
        #expect(pidw.recovery == MonitorRecovery(target: .group("web"), reactivations: 3, failovers: 1, finalAction: .none))

        let fipw = monitors[2]
        #expect(fipw.target == "fip1" && fipw.timing == .active)
        #expect(fipw.bool("monitor-link") == false)
        #expect(fipw.recovery.reactivations == 0 && fipw.recovery.failovers == 1)

        let diskw = monitors[3]
        #expect(diskw.string("device") == "/dev/disk/by-id/shared-data")
        #expect(diskw.string("method") == "read-direct")
        #expect(diskw.int("size") == 512)
        #expect(diskw.retries == 1, "diskw retries once by default")
        #expect(diskw.timing == .always)
        #expect(diskw.recovery.finalAction == .stopGroup)

        let ipw = monitors[4]
        #expect(ipw.list("targets") == ["192.168.0.254"])
        #expect(ipw.interval == .seconds(30) && ipw.timeout == .seconds(120))
        #expect(ipw.recovery.reactivations == 3, "default reactivation count")

        let genw = monitors[5]
        #expect(genw.string("script") == exampleFolder + "/scripts/monitor/genw1.sh")
        #expect(genw.string("mode") == "sync")
        #expect(genw.int("normal-value") == 0)
        #expect(genw.recovery.reactivations == 1)
    }

    @Test func onlyWarningsAndTheSecretFileIsOne() {
        #expect(loaded.warnings.allSatisfy { $0.severity == .warning })
        let secret = loaded.warnings.first { $0.keyPath == "cluster.secret-file" }
        #expect(secret?.line == 10)
        #expect(secret?.message.contains("does not exist") == true)
    }

    @Test func loadsWithoutFileChecksWithoutWarnings() throws {
        let quiet = try ConfigLoader.loadWithWarnings(path: examplePath, checkFiles: false)
        #expect(quiet.warnings.isEmpty, "\(quiet.warnings)")
        #expect(quiet.config == loaded.config)
    }

    @Test func reloadingFromTextGivesTheSameModel() throws {
        let text = try String(contentsOfFile: examplePath, encoding: .utf8)
        let again = try ConfigLoader.load(yaml: text, sourcePath: examplePath)
        #expect(again == loaded.config)
    }
}
