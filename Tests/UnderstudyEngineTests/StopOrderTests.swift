import Testing
import UnderstudyEngine
import UnderstudyModel
import UnderstudySimulator

/// Ordered stop (`stop-after`, the reference's group stop wait): per-server UPS groups that
/// must stop only after the business groups, as the ESMPRO/AC guide's stop script needs.
@Suite("Ordered stop")
struct StopOrderTests {
    /// web on s1 and db on s2, each taking `businessStop` to stop; ups1 (s1 only) and ups2
    /// (s2 only) stop after both.
    static func config(
        when: [GroupConfig.StopWaitOccasion] = [.clusterStop], timeout: Duration = .seconds(1800)
    ) -> ClusterConfig {
        func ups(_ name: String, on server: ServerName) -> GroupConfig {
            var group = Cfg.group(name, servers: [server])
            group.stopAfter = ["web", "db"]
            group.stopAfterWhen = when
            group.stopAfterTimeout = timeout
            return group
        }
        return Cfg.cluster(groups: [
            Cfg.group("web", servers: ["s1", "s2", "s3"]), Cfg.group("db", servers: ["s2", "s1", "s3"]),
            ups("ups1", on: "s1"), ups("ups2", on: "s2"),
        ])
    }

    static func world(_ config: ClusterConfig, businessStop: Duration) -> SimulatedCluster {
        let world = SimulatedCluster.make(config)
        world.scriptModel = { _, run, _ in
            let slow = run.operation == .stop && (run.group == "web" || run.group == "db")
            return (slow ? businessStop : Timing.script, .success(asyncPID: nil))
        }
        world.run(until: .seconds(8))
        return world
    }

    static func stopTime(_ world: SimulatedCluster, _ group: GroupName, since: EngineTime) -> EngineTime? {
        world.runs(group: group, .stop, since: since).first?.at
    }

    @Test("cluster stop: each UPS group stops only after the business groups on every server have stopped")
    func clusterStopWaitsAcrossServers() throws {
        let world = Self.world(Self.config(), businessStop: .seconds(2))
        #expect(world.where_("web") == ["s1:Online"] && world.where_("db") == ["s2:Online"])
        let t = world.now
        #expect(world.command(.beginClusterStop, at: "s1").code == .success)
        world.run(for: .milliseconds(100))
        for server in ["s1", "s2", "s3"] {
            let stop = ClusterCommand.stopService(factor: .clusterShutdown, lastAction: .halt, then: .os(.shutdown))
            #expect(world.command(stop, at: server).code == .success)
        }
        world.run(for: .milliseconds(500))
        // Waiting: still up, shown as stopping, no stop script run yet.
        #expect(world.placement(of: "ups1")["s1"] == .offlinePending)
        #expect(world.runs(group: "ups1", .stop, since: t).isEmpty)
        world.run(for: .seconds(10))
        let web = try #require(Self.stopTime(world, "web", since: t))
        let db = try #require(Self.stopTime(world, "db", since: t))
        let businessDone = max(web, db) + .seconds(2)
        for ups in ["ups1", "ups2"] {
            let stopped = try #require(Self.stopTime(world, ups, since: t), "\(ups) never stopped")
            #expect(stopped >= businessDone, "\(ups) stopped at \(stopped), before the business groups were done at \(businessDone)")
            #expect(stopped < businessDone + .seconds(1), "\(ups) waited too long")
        }
        expectEnv(world.runs(group: "ups1", .stop, since: t), ["CLP_FACTOR": "CLUSTERSHUTDOWN", "CLP_LASTACTION": "HALT"])
        #expect(world.osActions.map(\.1) == [.shutdown, .shutdown, .shutdown])
        #expect(world.runs(.start, since: t).isEmpty)
        #expect(world.violations.isEmpty)
    }

    @Test("server stop: groups stop in parallel unless server-stop is listed; then only this server's groups are awaited")
    func serverStop() throws {
        // Default occasions (cluster stop only): ups1 does not wait at clpdown.
        var world = Self.world(Self.config(), businessStop: .seconds(2))
        var t = world.now
        let down = ClusterCommand.stopService(factor: .serverShutdown, lastAction: .reboot, then: .os(.reboot))
        #expect(world.command(down, at: "s1").code == .success)
        world.run(for: .seconds(6))
        var web = try #require(Self.stopTime(world, "web", since: t))
        var ups1 = try #require(Self.stopTime(world, "ups1", since: t))
        #expect(ups1 < web + .seconds(2), "ups1 waited although server-stop is not among its occasions")
        #expect(world.where_("web") == ["s2:Online"])

        // With server-stop: ups1 waits for web on s1 (which fails over), not for db on s2.
        world = Self.world(Self.config(when: [.clusterStop, .serverStop]), businessStop: .seconds(2))
        t = world.now
        #expect(world.command(down, at: "s1").code == .success)
        world.run(for: .seconds(6))
        web = try #require(Self.stopTime(world, "web", since: t))
        ups1 = try #require(Self.stopTime(world, "ups1", since: t))
        #expect(ups1 >= web + .seconds(2))
        #expect(ups1 < web + .seconds(3))
        expectEnv(world.runs(group: "ups1", .stop, since: t), ["CLP_FACTOR": "SERVERSHUTDOWN", "CLP_LASTACTION": "REBOOT"])
        #expect(world.where_("db") == ["s2:Online"] && world.where_("ups2") == ["s2:Online"])
        #expect(world.osActions.map(\.0) == ["s1"] && world.osActions.map(\.1) == [.reboot])
        #expect(world.violations.isEmpty)
    }

    @Test("a stop wait that times out stops the group anyway")
    func waitTimesOut() throws {
        let world = Self.world(Self.config(when: [.serverStop], timeout: .seconds(3)), businessStop: .seconds(30))
        let t = world.now
        #expect(world.command(.stopService(factor: .serverShutdown, lastAction: .none, then: .stayStopped), at: "s1").code == .success)
        world.run(for: .seconds(5))
        let ups1 = try #require(Self.stopTime(world, "ups1", since: t))
        #expect(ups1 >= t + .seconds(3) && ups1 < t + .seconds(4), "ups1 stopped at \(ups1 - t) after the request")
        #expect(world.violations.isEmpty)
    }

    @Test("group stop: waits only for groups stopped with it; a restart while waiting calls the stop off")
    func groupStop() throws {
        var config = Self.config(when: [.groupStop])
        // A monitor of ups1's resource: it keeps running while ups1 only waits (the group still
        // serves; at a cluster or server stop every monitor stops first anyway).
        config.monitors = [
            MonitorConfig(
                name: "ups1-watch", type: .genw, target: "ups1-app", interval: .milliseconds(200), timeout: .seconds(1),
                timing: .active, recovery: MonitorRecovery(target: .group("ups1"), finalAction: .none))
        ]
        let world = Self.world(config, businessStop: .seconds(2))
        var t = world.now
        // ups1 alone: web and db stay wanted, nothing to wait for.
        #expect(world.command(.stopGroup("ups1"), at: "s1").code == .success)
        world.run(for: .seconds(1))
        #expect(try #require(Self.stopTime(world, "ups1", since: t)) < t + .milliseconds(500))
        #expect(world.command(.startGroup("ups1", on: nil), at: "s1").code == .success)
        world.run(for: .seconds(1))
        #expect(world.where_("ups1") == ["s1:Online"])

        // web and ups1 together: ups1 waits for web.
        t = world.now
        #expect(world.command(.stopGroup("web"), at: "s1").code == .success)
        #expect(world.command(.stopGroup("ups1"), at: "s1").code == .success)
        world.run(for: .seconds(4))
        let web = try #require(Self.stopTime(world, "web", since: t))
        let ups1 = try #require(Self.stopTime(world, "ups1", since: t))
        #expect(ups1 >= web + .seconds(2))

        // Waiting, then wanted again: no stop at all.
        world.run(for: .seconds(1))
        #expect(world.command(.startGroup("web", on: nil), at: "s1").code == .success)
        #expect(world.command(.startGroup("ups1", on: nil), at: "s1").code == .success)
        world.run(for: .seconds(1))
        t = world.now
        #expect(world.command(.stopGroup("web"), at: "s1").code == .success)
        #expect(world.command(.stopGroup("ups1"), at: "s1").code == .success)
        world.run(for: .milliseconds(500))
        #expect(world.placement(of: "ups1")["s1"] == .offlinePending)
        #expect(world.runningMonitors(on: "s1") == ["ups1-watch"], "the monitor stopped while its group only waited")
        let restart = world.command(.startGroup("ups1", on: nil), at: "s1")
        world.run(for: .seconds(4))
        #expect(restart.code == .success || restart.code == .inTransition, "\(restart.message)")
        if restart.code == .success {
            #expect(world.runs(group: "ups1", .stop, since: t).isEmpty)
            #expect(world.where_("ups1") == ["s1:Online"])
        }
        #expect(world.violations.isEmpty)
    }

    @Test("a cluster stop that reached only some servers ends: groups can be placed again")
    func interruptedClusterStop() throws {
        let config = Cfg.cluster(groups: [Cfg.group("a", servers: ["s1", "s2", "s3"]), Cfg.group("c", servers: ["s3", "s1", "s2"])])
        let world = SimulatedCluster.make(config)
        world.run(until: .seconds(8))
        #expect(world.where_("c") == ["s3:Online"])
        let t = world.now
        #expect(world.command(.beginClusterStop, at: "s1").code == .success)
        world.run(for: .milliseconds(100))
        // Only s3 gets its stop (the operator's clpstdn died): its group stops with it and is not
        // failed over, as in any cluster stop …
        let stop = ClusterCommand.stopService(factor: .clusterShutdown, lastAction: .halt, then: .os(.shutdown))
        #expect(world.command(stop, at: "s3").code == .success)
        world.run(for: .seconds(8))
        #expect(world.where_("c").isEmpty && world.runs(group: "c", .start, since: t).isEmpty)
        #expect(world.where_("a") == ["s1:Online"])
        // … but once nobody has been stopping for timeout + interval the stop is over: an
        // operator can start the group again, here on s2 where the command ran (before, it stayed
        // unplaced).
        #expect(world.command(.startGroup("c", on: nil), at: "s2").code == .success)
        world.run(for: .seconds(2))
        #expect(world.where_("c") == ["s2:Online"], "\(world.trace.suffix(30).joined(separator: "\n"))")
        #expect(world.violations.isEmpty)
    }
}
