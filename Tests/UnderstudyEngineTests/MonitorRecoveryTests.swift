import Foundation
import Testing
import UnderstudyEngine
import UnderstudyModel
import UnderstudySimulator

/// Monitors and the recovery ladder: retries, reactivation → failover → final action, the
/// targets, skipped recoveries, counters, commands, computed monitors.
@Suite("Monitors and recovery")
struct MonitorRecoveryTests {
    static let checkInterval: Duration = .milliseconds(200)

    /// A group `g` of a floating IP and two exec resources: `g-app` (depends on the IP by
    /// default) and `g-side` (depends on nothing).
    static func group(servers: [ServerName] = ["s1", "s2", "s3"]) -> GroupConfig {
        Cfg.group(
            "g", servers: servers,
            resources: [Cfg.resource("g-ip", .fip), Cfg.exec("g-app"), Cfg.exec("g-side", depends: [])])
    }

    static func monitor(
        _ name: String = "mon", type: MonitorType = .pidw, target: String? = "g-app", retries: Int = 0,
        recovery: MonitorRecovery, servers: [ServerName]? = nil
    ) -> MonitorConfig {
        var monitor = MonitorConfig(
            name: name, type: type, target: target, interval: checkInterval, timeout: .seconds(1), retries: retries,
            servers: servers, recovery: recovery)
        if type == .mtw { monitor.parameters["monitors"] = .list(["a", "b"]) }
        return monitor
    }

    static func world(
        servers: Int = 3, monitors: [MonitorConfig], recovery: RecoverySettings = RecoverySettings(),
        failing: @escaping (ServerName, String, EngineTime) -> Bool
    ) -> SimulatedCluster {
        var config = Cfg.cluster(servers: servers, groups: [group(servers: Cfg.names(servers))], recovery: recovery)
        config.monitors = monitors
        let world = SimulatedCluster.make(config)
        world.monitorModel = { server, monitor, now in failing(server, monitor, now) ? .error("probe failed") : .normal }
        return world
    }

    static func counters(_ world: SimulatedCluster, _ server: ServerName, _ monitor: String = "mon") -> MonitorCounters? {
        world.engine(server)?.snapshot(now: world.now).monitors?.first { $0.name == monitor }?.counters
    }

    static func status(_ world: SimulatedCluster, _ server: ServerName, _ monitor: String = "mon") -> MonitorStatus? {
        world.engine(server)?.snapshot(now: world.now).monitors?.first { $0.name == monitor }?.status
    }

    /// Stops with the given CLP_FACTOR on a server.
    static func stops(_ world: SimulatedCluster, _ server: ServerName, factor: String) -> [SimulatedCluster.LoggedRun] {
        world.runs(group: "g", on: server, .stop).filter { $0.run.env["CLP_FACTOR"] == factor }
    }

    @Test("the ladder: reactivations on the same server, then a failover, then nothing more on the new server")
    func reactivationThenFailover() {
        let recovery = MonitorRecovery(target: .group("g"), reactivations: 2, failovers: 1, finalAction: .stopGroup)
        let world = Self.world(monitors: [Self.monitor(recovery: recovery)]) { server, _, _ in server == "s1" }
        world.run(until: .seconds(30))

        // Two group restarts on s1 (stop GROUPRESTART, start with CLP_EVENT=START), then a
        // failover (stop GROUPFAILOVER/FAILOVER) and a start on s2 with CLP_EVENT=FAILOVER.
        let restarts = Self.stops(world, "s1", factor: "GROUPRESTART")
        #expect(restarts.filter { $0.run.resource == "g-ip" }.count == 2, "\(world.recentTrace)")
        #expect(restarts.allSatisfy { $0.run.env["CLP_EVENT"] == "START" })
        let failover = Self.stops(world, "s1", factor: "GROUPFAILOVER")
        #expect(failover.map(\.run.resource) == ["g-side", "g-app", "g-ip"])
        let s2Starts = world.runs(group: "g", on: "s2", .start)
        #expect(!s2Starts.isEmpty && s2Starts.allSatisfy { $0.run.env["CLP_EVENT"] == "FAILOVER" })
        #expect(world.where_("g") == ["s2:Online"])
        #expect(Self.counters(world, "s1") == MonitorCounters(reactivations: 2, failovers: 1))
        #expect(Self.counters(world, "s2") == MonitorCounters())
        #expect(Self.status(world, "s2") == .normal)
        #expect(world.violations.isEmpty, "\(world.violations)")
    }

    @Test("the error follows the group: every server uses its reactivations and failovers, then the final action stops it")
    func finalActionStopGroup() {
        let recovery = MonitorRecovery(target: .group("g"), reactivations: 1, failovers: 1, finalAction: .stopGroup)
        let world = Self.world(servers: 2, monitors: [Self.monitor(recovery: recovery)]) { _, _, _ in true }
        world.run(until: .seconds(40))

        // s1: reactivate, fail over → s2: reactivate, fail over → s1: counters used up →
        // final action stop-group (asked of the master: GROUPSTOP, not restarted anywhere).
        #expect(world.where_("g").isEmpty, "\(world.recentTrace)")
        #expect(Self.counters(world, "s1") == MonitorCounters(reactivations: 1, failovers: 1, finalActionDone: true))
        #expect(Self.counters(world, "s2") == MonitorCounters(reactivations: 1, failovers: 1))
        #expect(Self.stops(world, "s1", factor: "GROUPSTOP").count == 3)
        let settled = world.now
        world.run(for: .seconds(10))
        #expect(world.runs(group: "g", since: settled).isEmpty)
        #expect(world.violations.isEmpty, "\(world.violations)")
    }

    @Test("retries: the error counts only after retries + 1 failed checks in a row")
    func retries() {
        let recovery = MonitorRecovery(target: .group("g"), reactivations: 1, failovers: 0, finalAction: .none)
        let failFrom: EngineTime = .seconds(12)
        // Fails every other check from 12 s on: with 1 retry never two in a row → no error.
        let alternating = Self.world(monitors: [Self.monitor(retries: 1, recovery: recovery)]) { server, _, now in
            server == "s1" && now >= failFrom && (now.ms / Self.checkInterval.ms) % 2 == 0
        }
        alternating.run(until: .seconds(20))
        #expect(Self.stops(alternating, "s1", factor: "GROUPRESTART").isEmpty, "\(alternating.recentTrace)")
        #expect(Self.status(alternating, "s1") == .normal)

        let steady = Self.world(monitors: [Self.monitor(retries: 2, recovery: recovery)]) { server, _, now in
            server == "s1" && now >= failFrom
        }
        steady.run(until: .seconds(20))
        let restart = Self.stops(steady, "s1", factor: "GROUPRESTART").first
        #expect(restart != nil, "\(steady.recentTrace)")
        // Three failed checks, 200 ms apart: the first at or after 12 s, the third ≥ 400 ms later.
        if let restart { #expect(restart.at >= failFrom + Self.checkInterval * 2) }
    }

    @Test("a resource target reactivates the resource and what depends on it, nothing else")
    func resourceReactivation() {
        let recovery = MonitorRecovery(target: .resource("g-ip"), reactivations: 1, failovers: 0, finalAction: .none)
        let world = Self.world(monitors: [Self.monitor(target: "g-ip", recovery: recovery)]) { server, _, now in
            server == "s1" && now >= .seconds(12) && now < .seconds(13)
        }
        world.run(until: .seconds(20))
        let restarts = Self.stops(world, "s1", factor: "RESOURCERESTART")
        #expect(restarts.map(\.run.resource) == ["g-app", "g-ip"], "\(world.recentTrace)")
        let restarted = world.runs(group: "g", on: "s1", .start, since: .seconds(12)).map(\.run.resource)
        #expect(restarted == ["g-ip", "g-app"])
        #expect(world.where_("g") == ["s1:Online"])
        #expect(Self.status(world, "s1") == .normal)
    }

    @Test("no recovery where the target is not active, nor while the cluster-wide switch is off")
    func skippedRecovery() {
        let recovery = MonitorRecovery(target: .group("g"), reactivations: 3, failovers: 1, finalAction: .stopGroup)
        // An always-monitor failing on the standby s2: its target group runs on s1.
        let standby = Self.world(monitors: [Self.monitor(type: .psw, target: nil, recovery: recovery)]) { server, _, _ in
            server == "s2"
        }
        standby.run(until: .seconds(20))
        #expect(Self.status(standby, "s2") == .error)
        #expect(standby.runs(group: "g", .stop).isEmpty, "\(standby.recentTrace)")
        #expect(Self.counters(standby, "s2") == MonitorCounters())
        #expect(standby.trace.contains { $0.contains("Recovery for mon on s2 is not run: group g is not active on s2") })

        let disabled = Self.world(
            monitors: [Self.monitor(recovery: recovery)], recovery: RecoverySettings(disableMonitorRecovery: true)
        ) { server, _, _ in server == "s1" }
        disabled.run(until: .seconds(20))
        #expect(Self.status(disabled, "s1") == .error)
        #expect(disabled.runs(group: "g", .stop).isEmpty)
        #expect(disabled.where_("g") == ["s1:Online"])
    }

    @Test("recovery script: alone script-count times (RECOVERY), then before the reactivation (RESTART)")
    func recoveryScript() {
        let recovery = MonitorRecovery(
            target: .group("g"), script: "/usr/local/bin/recover.sh", scriptCount: 1, runScriptBefore: [.reactivation],
            reactivations: 1, failovers: 0, finalAction: .none)
        let world = Self.world(monitors: [Self.monitor(recovery: recovery)]) { server, _, now in
            server == "s1" && now >= .seconds(12)
        }
        world.run(until: .seconds(20))
        let scripts = world.recoveryScriptLog.map {
            "\($0.server) \($0.run.action.rawValue) \($0.run.counters.recoveryScripts)/\($0.run.counters.reactivations)"
        }
        #expect(scripts == ["s1 RECOVERY 1/0", "s1 RESTART 1/1"], "\(world.recentTrace)")
        let restart = Self.stops(world, "s1", factor: "GROUPRESTART").first
        #expect(restart != nil && restart!.at > world.recoveryScriptLog[1].at)
        #expect(Self.counters(world, "s1") == MonitorCounters(recoveryScripts: 1, reactivations: 1, finalActionDone: true))
    }

    @Test("counters survive a daemon restart and reset after the monitor has been normal long enough")
    func countersPersistAndReset() {
        var recovery = MonitorRecovery(target: .group("g"), reactivations: 5, failovers: 0, finalAction: .none)
        recovery.resetCountersAfter = .seconds(8)
        let world = Self.world(monitors: [Self.monitor(recovery: recovery)]) { server, _, now in
            server == "s1" && now >= .seconds(12) && now < .seconds(12) + Self.checkInterval
        }
        world.run(until: .seconds(14))
        #expect(Self.counters(world, "s1")?.reactivations == 1, "\(world.recentTrace)")
        world.crash("s1")
        world.run(for: .seconds(1))
        world.boot("s1")
        world.run(for: .milliseconds(100))
        #expect(Self.counters(world, "s1")?.reactivations == 1)
        // The group went to s2 meanwhile; back on s1 the monitor runs Normal again.
        world.run(until: .seconds(30))
        #expect(world.command(.moveGroup("g", to: "s1"), at: "s1").code == .success, "\(world.recentTrace)")
        world.run(until: .seconds(35))
        #expect(Self.counters(world, "s1")?.reactivations == 1)
        world.run(until: .seconds(45))
        #expect(Self.counters(world, "s1") == MonitorCounters(), "\(world.recentTrace)")
    }

    @Test("clpmonctrl: suspend stops the probe, dummy failure starts the recovery, clear resets the counters")
    func operatorControl() {
        let recovery = MonitorRecovery(target: .group("g"), reactivations: 1, failovers: 0, finalAction: .none)
        let world = Self.world(monitors: [Self.monitor(recovery: recovery)]) { _, _, _ in false }
        world.run(until: .seconds(12))
        #expect(world.runningMonitors(on: "s1") == ["mon"])
        #expect(world.command(.monitor(.suspend, monitor: "mon", server: "s1"), at: "s2").code == .success)
        world.run(for: .milliseconds(100))
        #expect(world.runningMonitors(on: "s1").isEmpty)
        #expect(Self.status(world, "s1") == .suspend)
        #expect(world.engine("s2")?.snapshot(now: world.now).monitors?.first?.perServer["s1"] == .suspend)
        #expect(world.command(.monitor(.resume, monitor: nil, server: nil), at: "s1").code == .success)
        #expect(world.command(.monitor(.dummyFailureOn, monitor: "mon", server: nil), at: "s1").code == .success)
        world.run(for: .seconds(3))
        #expect(Self.stops(world, "s1", factor: "GROUPRESTART").count == 3, "\(world.recentTrace)")
        #expect(Self.counters(world, "s1") == MonitorCounters(reactivations: 1, finalActionDone: true))
        #expect(world.command(.monitor(.dummyFailureOff, monitor: "mon", server: nil), at: "s1").code == .success)
        #expect(world.command(.monitor(.clearCounters, monitor: "mon", server: nil), at: "s1").code == .success)
        world.run(for: .milliseconds(100))
        #expect(Self.counters(world, "s1") == MonitorCounters())
        #expect(world.command(.monitor(.suspend, monitor: "nope", server: nil), at: "s1").code == .badUsage)
        #expect(world.violations.isEmpty, "\(world.violations)")
    }

    @Test("a suspended active monitor stays suspended while its target runs, and runs again once the target restarts")
    func suspensionEndsWithTheTarget() {
        let recovery = MonitorRecovery(target: .group("g"), reactivations: 1, failovers: 0, finalAction: .none)
        let world = Self.world(monitors: [Self.monitor(recovery: recovery)]) { _, _, _ in false }
        world.run(until: .seconds(12))
        #expect(world.command(.monitor(.suspend, monitor: "mon", server: nil), at: "s1").code == .success)
        world.run(for: .seconds(2))
        #expect(world.runningMonitors(on: "s1").isEmpty)
        #expect(Self.status(world, "s1") == .suspend)

        #expect(world.command(.stopGroup("g"), at: "s1").code == .success)
        world.run(for: .seconds(3))
        #expect(world.where_("g").isEmpty, "\(world.recentTrace)")
        #expect(Self.status(world, "s1") == .offline)
        // With its target offline there is nothing to suspend: said, not pretended.
        let refused = world.command(.monitor(.suspend, monitor: "mon", server: nil), at: "s1")
        #expect(refused.code == .failed && refused.message.contains("not online"), "\(refused.message)")
        #expect(world.command(.monitor(.suspend, monitor: nil, server: nil), at: "s1").code == .success)
        #expect(Self.status(world, "s1") == .offline)
        #expect(world.command(.startGroup("g", on: "s1"), at: "s1").code == .success)
        world.run(for: .seconds(3))
        #expect(world.where_("g") == ["s1:Online"], "\(world.recentTrace)")
        #expect(world.runningMonitors(on: "s1") == ["mon"])
        #expect(Self.status(world, "s1") == .normal)
        #expect(world.violations.isEmpty, "\(world.violations)")
    }

    @Test("timeouts: no retry with retry-on-timeout false; no recovery with recover-on-timeout false")
    func timeouts() {
        let recovery = MonitorRecovery(target: .group("g"), reactivations: 1, failovers: 0, finalAction: .none)
        var monitor = Self.monitor(retries: 5, recovery: recovery)
        monitor.retryOnTimeout = false
        monitor.recoverOnTimeout = false
        var config = Cfg.cluster(groups: [Self.group()])
        config.monitors = [monitor]
        let world = SimulatedCluster.make(config)
        world.monitorModel = { server, _, now in server == "s1" && now >= .seconds(12) ? .timeout : .normal }
        world.run(until: .seconds(13))
        #expect(Self.status(world, "s1") == .error, "\(world.recentTrace)")
        #expect(world.runs(group: "g", .stop).isEmpty)
        #expect(world.trace.contains { $0.contains("recover-on-timeout: false") })
    }

    @Test("mtw is in error when all its monitors are; mrw takes external notices")
    func computedMonitors() {
        let recovery = MonitorRecovery(target: .group("g"), reactivations: 1, failovers: 0, finalAction: .none)
        let none = MonitorRecovery(target: .group("g"), reactivations: 0, failovers: 0, finalAction: .none)
        let monitors = [
            Self.monitor("a", type: .psw, target: nil, recovery: none),
            Self.monitor("b", type: .psw, target: nil, recovery: none),
            Self.monitor("both", type: .mtw, target: nil, recovery: recovery),
            Self.monitor("external", type: .mrw, target: nil, recovery: none),
        ]
        let world = Self.world(monitors: monitors) { server, monitor, now in
            server == "s1" && ((monitor == "a" && now >= .seconds(12)) || (monitor == "b" && now >= .seconds(15)))
        }
        world.run(until: .seconds(14))
        #expect(Self.status(world, "s1", "a") == .error)
        #expect(Self.status(world, "s1", "both") == .caution, "\(world.recentTrace)")
        #expect(Self.stops(world, "s1", factor: "GROUPRESTART").isEmpty)
        world.run(until: .seconds(17))
        #expect(Self.stops(world, "s1", factor: "GROUPRESTART").count == 3, "\(world.recentTrace)")

        let notice = ClusterCommand.externalNotice(monitor: nil, category: "NIC", keyword: nil, clear: false, server: "s2")
        #expect(world.command(notice, at: "s1").code == .success)
        #expect(Self.status(world, "s2", "external") == .error)
        #expect(world.engine("s1")?.snapshot(now: world.now).monitors?.first { $0.name == "external" }?.perServer["s2"] != .error)
        world.run(for: .milliseconds(600))
        #expect(world.engine("s1")?.snapshot(now: world.now).monitors?.first { $0.name == "external" }?.perServer["s2"] == .error)
        let clear = ClusterCommand.externalNotice(monitor: "external", category: "NIC", keyword: nil, clear: true, server: "s2")
        #expect(world.command(clear, at: "s2").code == .success)
        #expect(Self.status(world, "s2", "external") == .normal)
        let wrong = ClusterCommand.externalNotice(monitor: nil, category: "DISK", keyword: nil, clear: false, server: nil)
        #expect(world.command(wrong, at: "s2").code == .failed)
    }

    @Test("userw: a stall longer than its timeout runs the final action on the local server")
    func userSpaceStall() {
        var monitor = Self.monitor(
            "userw", type: .userw, target: nil, recovery: MonitorRecovery(target: .localServer, finalAction: .reboot))
        monitor.timeout = .seconds(2)
        var config = Cfg.cluster(groups: [Self.group()])
        config.monitors = [monitor]
        let world = SimulatedCluster.make(config)
        world.run(until: .seconds(12))
        world.freeze("s3", for: .milliseconds(1500))
        world.run(for: .seconds(3))
        #expect(world.osActionList.isEmpty, "\(world.recentTrace)")
        world.freeze("s3", for: .milliseconds(2500))
        world.run(for: .seconds(3))
        #expect(world.osActionList == ["s3:reboot"], "\(world.trace.filter { $0.contains("s3") }.suffix(60).joined(separator: "\n"))")
        #expect(world.violations.isEmpty)
    }

    @Test(
        "userw: gaps while ticks are quiet (the daemon sleeps until something is due) are no stall, even with a timeout below the heartbeat interval; a real stall still is"
    )
    func userSpaceQuietGapsAreNoStall() {
        var monitor = Self.monitor(
            "userw", type: .userw, target: nil, recovery: MonitorRecovery(target: .localServer, finalAction: .reboot))
        // Below the 500 ms heartbeat interval: a lone server's events come that far apart while
        // nothing is due.
        monitor.timeout = .milliseconds(300)
        monitor.interval = .seconds(5)
        var config = Cfg.cluster(servers: 1, groups: [Self.group(servers: ["s1"])])
        config.monitors = [monitor]
        let world = SimulatedCluster(config: config, seed: 1, scriptModel: Scripts.model(fails: { _, _ in false }))
        world.sparseTicks = true
        world.boot("s1")
        world.run(until: .seconds(20))
        #expect(world.osActionList.isEmpty, "\(world.trace.filter { $0.contains("userw") }.suffix(10).joined(separator: "\n"))")
        world.freeze("s1", for: .milliseconds(900))
        world.run(for: .seconds(3))
        #expect(world.osActionList == ["s1:reboot"], "\(world.recentTrace)")
        #expect(world.violations.isEmpty)
    }

    @Test("active monitors stop before their group's stop scripts and start again after a move")
    func activeMonitorsFollowTheGroup() {
        let recovery = MonitorRecovery(target: .group("g"), reactivations: 1, failovers: 0, finalAction: .none)
        let world = Self.world(monitors: [Self.monitor(recovery: recovery)]) { _, _, _ in false }
        world.run(until: .seconds(12))
        #expect(world.runningMonitors(on: "s1") == ["mon"])
        #expect(world.runningMonitors(on: "s2").isEmpty)
        #expect(world.command(.moveGroup("g", to: "s2"), at: "s1").code == .success)
        world.run(for: .seconds(3))
        #expect(world.runningMonitors(on: "s1").isEmpty)
        #expect(world.runningMonitors(on: "s2") == ["mon"])
        let stopMonitor = world.trace.firstIndex { $0.contains("Monitor mon stopped on s1") }
        let firstStop = world.trace.firstIndex { $0.contains("s1: stop g/") }
        #expect(stopMonitor != nil && firstStop != nil && stopMonitor! < firstStop!, "\(world.recentTrace)")
        #expect(Self.status(world, "s1") == .offline)
    }

    @Test("a failover the master cannot place expires; the ladder then goes on to the final action")
    func failoverRequestExpires() {
        // g is completely exclusive and s2 already runs another completely exclusive group:
        // s1 sees s2 up and asks for a failover, but the master finds no server for g.
        var g = Self.group(servers: ["s1", "s2"])
        g.exclusive = .complete
        let other = Cfg.group("other", servers: ["s2"], exclusive: .complete)
        var config = Cfg.cluster(servers: 2, groups: [g, other], majority: false)
        let recovery = MonitorRecovery(target: .group("g"), reactivations: 0, failovers: 1, finalAction: .stopGroup)
        config.monitors = [Self.monitor(recovery: recovery)]
        let world = SimulatedCluster.make(config)
        world.monitorModel = { server, _, now in server == "s1" && now >= .seconds(12) ? .error("probe failed") : .normal }
        world.run(until: .seconds(40))
        #expect(world.trace.contains { $0.contains("s1 asks to fail over group g") }, "\(world.recentTrace)")
        #expect(world.trace.contains { $0.contains("No other server can take group g from s1") })
        // After the request expired the final action stopped the group; it never ran on s2.
        #expect(Self.counters(world, "s1") == MonitorCounters(failovers: 1, finalActionDone: true), "\(world.recentTrace)")
        #expect(world.where_("g").isEmpty)
        #expect(world.runs(group: "g", on: "s2").isEmpty)
        #expect(world.violations.isEmpty, "\(world.violations)")
    }

    @Test("a check slower than the delay-warning share of its timeout is logged once per episode")
    func delayWarning() {
        let recovery = MonitorRecovery(target: .group("g"), reactivations: 1, failovers: 0, finalAction: .none)
        let world = Self.world(monitors: [Self.monitor(recovery: recovery)]) { _, _, _ in false }
        // Timeout 1 s, warning at 80 %: 900 ms checks on s1 from 12 s to 13 s.
        world.monitorElapsed = { server, _ in
            server == "s1" && world.now >= .seconds(12) && world.now < .seconds(13) ? .milliseconds(900) : .milliseconds(1)
        }
        world.run(until: .seconds(20))
        let warnings = world.trace.filter { $0.contains("Monitor mon on s1 is delayed") }
        #expect(warnings.count == 1, "\(world.recentTrace)")
        #expect(Self.status(world, "s1") == .normal)
    }

    @Test("all-groups reactivates every group on the server; stop-resource stops only the target resource")
    func allGroupsAndStopResource() {
        var config = Cfg.cluster(groups: [Self.group(), Cfg.group("h", servers: ["s1", "s2", "s3"])])
        config.monitors = [
            Self.monitor(
                "every", type: .psw, target: nil,
                recovery: MonitorRecovery(target: .allGroups, reactivations: 1, failovers: 0, finalAction: .none)),
            Self.monitor(
                "side", target: "g-side",
                recovery: MonitorRecovery(target: .resource("g-side"), reactivations: 0, failovers: 0, finalAction: .stopResource)),
        ]
        let world = SimulatedCluster.make(config)
        world.monitorModel = { server, monitor, now in
            server == "s1"
                && ((monitor == "every" && now >= .seconds(12) && now < .seconds(13)) || (monitor == "side" && now >= .seconds(16)))
                ? .error("probe failed") : .normal
        }
        world.run(until: .seconds(15))
        #expect(Self.stops(world, "s1", factor: "GROUPRESTART").count == 3, "\(world.recentTrace)")
        #expect(world.runs(group: "h", on: "s1", .stop).map { $0.run.env["CLP_FACTOR"] ?? "" } == ["GROUPRESTART"])
        #expect(world.where_("g") == ["s1:Online"] && world.where_("h") == ["s1:Online"])
        world.run(until: .seconds(20))
        let sideStops = world.runs(group: "g", on: "s1", .stop, since: .seconds(16))
        #expect(sideStops.map(\.run.resource) == ["g-side"], "\(world.recentTrace)")
        #expect(sideStops.first?.run.env["CLP_FACTOR"] == "")
        #expect(world.engine("s1")?.localResourceStatus(of: "g")["g-side"] == .offline)
        #expect(world.engine("s1")?.localResourceStatus(of: "g")["g-app"] == .online)
        #expect(world.violations.isEmpty, "\(world.violations)")
    }

    /// As CLUSTERPRO: `clpcl --suspend` stops monitoring and failover control while the
    /// groups keep running. A monitor error during the suspension changes nothing (before,
    /// monitors went on checking, and with failover disabled an error went from reactivation
    /// straight to the final action); after `clpcl --resume` monitoring starts again.
    @Test("a suspended cluster does not monitor: an error while suspended recovers nothing; after resume the ladder runs")
    func suspendedClusterStopsMonitoring() {
        let recovery = MonitorRecovery(target: .group("g"), reactivations: 1, failovers: 1, finalAction: .stopGroup)
        let world = Self.world(monitors: [Self.monitor(recovery: recovery)]) { server, _, now in
            server == "s1" && now >= .seconds(16)
        }
        world.run(until: .seconds(14))
        #expect(world.where_("g") == ["s1:Online"])
        #expect(world.command(.suspendCluster, at: "s2").code == .success)
        world.run(until: .seconds(40))
        #expect(world.where_("g") == ["s1:Online"], "\(world.recentTrace)")
        #expect(Self.stops(world, "s1", factor: "GROUPRESTART").isEmpty, "\(world.recentTrace)")
        #expect(world.runs(group: "g", on: "s1", .stop).isEmpty)
        // s1 runs the target: its monitor is Suspend; elsewhere the active monitor is Offline.
        #expect(Self.status(world, "s1") == .suspend)
        #expect(Self.status(world, "s2") == .offline && Self.status(world, "s3") == .offline)
        for server in ["s1", "s2", "s3"] { #expect(Self.counters(world, server) == MonitorCounters(), "\(server)") }
        #expect(world.command(.resumeCluster, at: "s3").code == .success)
        world.run(until: .seconds(60))
        // Monitoring again: the error is confirmed and the ladder climbs (reactivation first).
        #expect(Self.stops(world, "s1", factor: "GROUPRESTART").count > 0, "\(world.recentTrace)")
        #expect((Self.counters(world, "s1")?.reactivations ?? 0) >= 1)
        #expect(world.violations.isEmpty, "\(world.violations)")
    }

    @Test("a state file written before monitor counters existed still loads")
    func oldStateFileLoads() throws {
        let old = #"{"heldGroups":{"g":3},"rebootCount":1}"#
        let state = try JSONDecoder().decode(PersistentState.self, from: Data(old.utf8))
        #expect(state.heldGroups == ["g": 3] && state.rebootCount == 1 && state.monitorCounters.isEmpty && state.directory == nil)
    }
}
