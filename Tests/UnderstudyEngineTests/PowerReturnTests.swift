import Testing
import UnderstudyEngine
import UnderstudyModel
import UnderstudySimulator

/// Power returning (the ESMPRO/AC guide, chapter 4): the shared disk's UPS powers on later
/// than the servers. The disk monitor finds the disk missing; its final action reboots the
/// servers, but no more than `max-reboots` times; once the disk is there the group starts on
/// one server; after a healthy while the reboot count is reset.
@Suite("Power return")
struct PowerReturnTests {
    @Test("shared disk late: reboots stop at max-reboots, the group starts once the disk is there, the count resets")
    func sharedDiskLate() {
        var config = Cfg.cluster(
            groups: [Cfg.group("g", servers: ["s1", "s2", "s3"])],
            recovery: RecoverySettings(maxReboots: 2, rebootCountResetAfter: .seconds(20)))
        var recovery = MonitorRecovery(target: .localServer, reactivations: 0, failovers: 0, finalAction: .reboot)
        recovery.resetCountersAfter = .seconds(10)
        config.monitors = [
            MonitorConfig(
                name: "diskw1", type: .diskw, interval: .milliseconds(200), timeout: .seconds(1), retries: 1, recovery: recovery)
        ]
        let world = SimulatedCluster.make(config)
        let diskBack: EngineTime = .seconds(40)
        // The disk is missing until 40 s; later, for a moment, on s1 only.
        world.monitorModel = { server, _, now in
            now < diskBack || (server == "s1" && now >= .seconds(80) && now < .seconds(82)) ? .error("no such device") : .normal
        }
        world.run(until: diskBack)
        let reboots = { (server: ServerName) in world.osActionList.filter { $0 == "\(server):reboot" }.count }
        for server in ["s1", "s2", "s3"] {
            #expect(reboots(server) == 2, "\(server) rebooted \(reboots(server)) times while the disk was missing")
            #expect(world.engine(server)?.service == .running, "\(server) is not up after its reboots")
        }

        world.run(until: diskBack + .seconds(10))
        #expect(world.where_("g").count == 1 && world.where_("g").first?.hasSuffix(":Online") == true, "\(world.where_("g"))")
        #expect(world.osActionList.count == 6)

        // Healthy for 20 s: the reboot count is back to 0 (and the monitor's counters after 10 s
        // of Normal), so a new disk error on s1 reboots it again.
        world.run(until: .seconds(90))
        #expect(reboots("s1") == 3, "\(world.osActionList)")
        #expect(reboots("s2") == 2 && reboots("s3") == 2)
        #expect(world.violations.isEmpty, "\(world.violations)")
    }
}
