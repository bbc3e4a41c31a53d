import Testing
import UnderstudyEngine
import UnderstudyModel
import UnderstudySimulator

/// Final actions after monitor errors that session 3 covered only by reading: the script
/// before the final action, suppression when no other server is alive, stop-cluster-service.
@Suite("Monitor final actions")
struct MonitorFinalActionTests {
    static func world(
        servers: Int, finalAction: FinalAction, scriptBefore: Bool = false, suppress: Set<RecoverySettings.SuppressCase> = []
    ) -> SimulatedCluster {
        var recovery = MonitorRecovery(target: .localServer, reactivations: 0, failovers: 0, finalAction: finalAction)
        if scriptBefore {
            recovery.script = "/etc/understudy/recover.sh"
            recovery.scriptCount = 0
            recovery.runScriptBefore = [.finalAction]
        }
        let monitor = MonitorConfig(
            name: "mon", type: .genw, interval: .milliseconds(200), timeout: .seconds(1), retries: 0, recovery: recovery)
        var config = Cfg.cluster(
            servers: servers, groups: [Cfg.group("g", servers: Cfg.names(servers))], majority: servers > 1,
            recovery: RecoverySettings(suppressFinalActionWhenAlone: suppress))
        config.monitors = [monitor]
        let world = SimulatedCluster.make(config)
        // s1's monitor fails from 8 s on.
        world.monitorModel = { server, _, now in server == "s1" && now >= .seconds(8) ? .error("probe failed") : .normal }
        return world
    }

    @Test("the recovery script runs before the final action (CLP_ACTION=FINALACTION), then the reboot")
    func scriptBeforeFinalAction() throws {
        let world = Self.world(servers: 3, finalAction: .reboot, scriptBefore: true)
        world.run(until: .seconds(12))
        let script = try #require(world.recoveryScriptLog.first { $0.server == "s1" })
        #expect(script.run.action == .finalAction)
        #expect(world.osActionList.first == "s1:reboot")
        let reboot = try #require(world.runs(group: "g", on: "s1", .stop).first)
        #expect(script.at <= reboot.at, "the group stopped for the reboot before the script ran")
        #expect(world.violations.isEmpty)
    }

    @Test("reboot suppressed when no other server is alive and monitor is listed; taken when it is not")
    func suppressedWhenAlone() {
        let suppressed = Self.world(servers: 1, finalAction: .reboot, suppress: [.monitor])
        suppressed.run(until: .seconds(12))
        #expect(suppressed.osActions.isEmpty)
        #expect(suppressed.engine("s1")?.service == .running)

        let taken = Self.world(servers: 1, finalAction: .reboot, suppress: [.activation])
        taken.run(until: .seconds(12))
        #expect(taken.osActionList.first == "s1:reboot")
    }

    @Test("stop-cluster-service: s1 stops its service (SERVERSHUTDOWN, NONE), its group fails over, the OS stays up")
    func stopClusterService() throws {
        let world = Self.world(servers: 3, finalAction: .stopClusterService)
        world.run(until: .seconds(12))
        #expect(world.engine("s1")?.service == .stopped)
        #expect(world.osActions.isEmpty)
        let stop = try #require(world.runs(group: "g", on: "s1", .stop).first)
        expectEnv([stop], ["CLP_FACTOR": "SERVERSHUTDOWN", "CLP_LASTACTION": "NONE"])
        #expect(world.where_("g") == ["s2:Online"])
        #expect(world.violations.isEmpty)
    }
}
