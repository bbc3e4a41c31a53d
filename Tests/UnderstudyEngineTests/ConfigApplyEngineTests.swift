import Testing
import UnderstudyEngine
import UnderstudyModel
import UnderstudySimulator

/// Replacing the running configuration online (`ServerEngine.applyConfiguration`), in the
/// simulated cluster: what restarts, what is kept, what is refused, and a server that missed
/// the apply.
@Suite("Configuration apply in the Engine")
struct ConfigApplyEngineTests {
    static func config(interval: Duration = .seconds(2)) -> ClusterConfig {
        var config = Cfg.cluster(servers: 3, groups: [MonitorRecoveryTests.group()])
        var watched = MonitorConfig(
            name: "watched", type: .genw, interval: interval, timeout: .seconds(1), recovery: MonitorRecovery(target: .group("g")))
        watched.parameters["script"] = .string("/bin/true")
        var other = watched
        other.name = "other"
        other.interval = .seconds(2)
        config.monitors = [watched, other]
        return config
    }

    /// How often `monitor` was checked on `server` from `from` on.
    static func checks(_ world: SimulatedCluster, _ server: ServerName, _ monitor: String, from: EngineTime) -> Int {
        world.monitorChecks.filter { $0.server == server && $0.monitor == monitor && $0.time >= from }.count
    }

    @Test("a monitor's interval: only that monitor restarts, at its new pace; the group and counters stay")
    func monitorInterval() {
        let world = SimulatedCluster(config: Self.config(), seed: 21, scriptModel: Scripts.model())
        world.recordMonitorChecks = true
        for name in Cfg.names(3) { world.boot(name) }
        world.run(for: .seconds(15))
        #expect(world.where_("g") == ["s1:Online"], "\(world.recentTrace)")
        let startsBefore = world.runs(group: "g", .start).count

        let new = Self.config(interval: .milliseconds(250))
        let applied = world.now
        for name in Cfg.names(3) { #expect(world.applyConfiguration(new, version: 1, at: name)) }
        world.run(for: .seconds(4))
        for name in Cfg.names(3) {
            let engine = world.engine(name)
            #expect(engine?.configVersion == 1)
            #expect(engine?.config.monitors.first?.interval == .milliseconds(250))
            #expect(Self.checks(world, name, "watched", from: applied) >= 12, "\(name)")
            #expect(Self.checks(world, name, "other", from: applied) <= 3, "\(name)")
            #expect((world.logCounts["\(name) cfmgr 1"] ?? 0) == 1)
            #expect(engine?.snapshot(now: world.now).configurationMismatch == nil)
        }
        // The changed monitor restarted once (a new run), the other not at all.
        #expect((world.logCounts["s1 rm 2"] ?? 0) == 1, "monitor stops on s1")
        #expect(world.where_("g") == ["s1:Online"])
        #expect(world.runs(group: "g", .start).count == startsBefore)
        #expect(world.violations.isEmpty, "\(world.violations)")
    }

    @Test("refused online: other servers, other heartbeat timing, an active group's resources")
    func refusals() {
        let world = SimulatedCluster(config: Self.config(), seed: 22, scriptModel: Scripts.model())
        for name in Cfg.names(3) { world.boot(name) }
        world.run(for: .seconds(15))
        guard let engine = world.engine("s1") else {
            Issue.record("s1 is not running")
            return
        }
        var servers = Self.config()
        servers.servers.reverse()
        #expect(engine.refusalToApply(servers)?.contains("servers differ") == true)
        var timing = Self.config()
        timing.cluster.timing.heartbeatTimeout = .seconds(9)
        #expect(engine.refusalToApply(timing)?.contains("heartbeat timing") == true)
        var resources = Self.config()
        resources.groups[0].resources.append(Cfg.exec("g-more"))
        #expect(engine.refusalToApply(resources)?.contains("group g is active on s1") == true)
        // Not active on s2: there the group may take a new resource.
        #expect(world.engine("s2")?.refusalToApply(resources) == nil)
        #expect(!world.applyConfiguration(resources, version: 1, at: "s1"))
        #expect(world.engine("s1")?.configVersion == 0)
        var group = Self.config()
        group.groups.append(Cfg.group("h", servers: ["s2", "s3"]))
        #expect(engine.refusalToApply(group) == nil)
    }

    @Test("a server down during the apply rejoins as an outsider, takes no group, and takes part again once it runs the version")
    func lateServer() {
        let world = SimulatedCluster(config: Self.config(), seed: 23, scriptModel: Scripts.model())
        for name in Cfg.names(3) { world.boot(name) }
        world.run(for: .seconds(15))
        world.crash("s2")
        world.run(for: .seconds(5))
        let new = Self.config(interval: .seconds(1))
        for name in ["s1", "s3"] { #expect(world.applyConfiguration(new, version: 1, at: name)) }
        world.run(for: .seconds(2))
        // s2 boots with its old file: another configuration than its master's.
        world.configOverrides["s2"] = nil
        world.boot("s2")
        world.run(for: .seconds(5))
        #expect(world.engine("s2")?.configOutsider == true, "\(world.recentTrace)")
        #expect(world.engine("s1")?.currentMaster(now: world.now) == "s1")
        let refused = world.command(.moveGroup("g", to: "s2"), at: "s1")
        #expect(refused.code == .failed && refused.message.contains("another configuration"), "\(refused)")
        // Its daemon fetches the version (the Node does; here the test hands it over).
        #expect(world.applyConfiguration(new, version: 1, at: "s2"))
        world.run(for: .seconds(2))
        #expect(world.engine("s2")?.configOutsider == false)
        #expect((world.logCounts["s2 nm 82"] ?? 0) == 1)
        let moved = world.command(.moveGroup("g", to: "s2"), at: "s1")
        #expect(moved.code == .success, "\(moved)")
        world.run(for: .seconds(5))
        #expect(world.where_("g") == ["s2:Online"], "\(world.recentTrace)")
        #expect(world.violations.isEmpty, "\(world.violations)")
    }
}
