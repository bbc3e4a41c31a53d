import Testing
import UnderstudyEngine
import UnderstudyModel
import UnderstudySimulator

/// Power events from upsw monitors: on battery past the grace time or battery low shuts the
/// servers the UPS feeds down as clpdown does (or the whole cluster as clpstdn, for a UPS of
/// shared storage); line power back within the grace time changes nothing.
@Suite("Power events")
struct PowerEventTests {
    static func world(feeds: String, servers: [ServerName]?, power: @escaping (ServerName, EngineTime) -> PowerState)
        -> SimulatedCluster
    {
        var config = Cfg.cluster(groups: [Cfg.group("web", servers: ["s1", "s2", "s3"]), Cfg.group("db", servers: ["s2", "s3", "s1"])])
        config.monitors = [
            MonitorConfig(
                name: "ups1", type: .upsw, interval: .milliseconds(500), timeout: .seconds(2), servers: servers,
                recovery: MonitorRecovery(target: .localServer, finalAction: .none),
                parameters: [
                    "ups": .string("ups1"), "feeds": .string(feeds), "on-battery-grace": .duration(.seconds(5)),
                    "power-off-command": .string("shutdown.return"), "user": .string("admin"),
                    "password-file": .string("/etc/understudy/nut.password"),
                ])
        ]
        let world = SimulatedCluster.make(config)
        world.monitorModel = { server, _, now in power(server, now) == .online ? .normal : .warning("on battery") }
        world.powerModel = { server, _, now in power(server, now) }
        world.run(until: .seconds(8))
        return world
    }

    @Test(
        "on battery shorter than the grace time: nothing; longer: the fed server stops as with clpdown, then its UPS is told to power off")
    func serverUPS() throws {
        let world = Self.world(feeds: "servers", servers: ["s1"]) { _, now in
            if now >= .seconds(10) && now < .seconds(13) { return .onBattery }
            return now >= .seconds(20) ? .onBattery : .online
        }
        world.run(until: .seconds(19))
        #expect(world.osActions.isEmpty && world.runs(.stop).isEmpty, "a short battery episode stopped something")
        #expect(world.where_("web") == ["s1:Online"])

        world.run(until: .seconds(32))
        let stop = try #require(world.runs(group: "web", on: "s1", .stop).first)
        #expect(stop.at >= .seconds(25) && stop.at < .seconds(26), "stopped at \(stop.at), not after the 5 s grace")
        expectEnv([stop], ["CLP_FACTOR": "SERVERSHUTDOWN", "CLP_LASTACTION": "HALT"])
        #expect(world.osActionList == ["s1:shutdown"])
        #expect(world.powerOffs.map(\.0) == ["s1"] && world.powerOffs.first?.1 == ["ups1"])
        // Its group failed over; the others keep running.
        #expect(world.where_("web") == ["s2:Online"] && world.where_("db") == ["s2:Online"])
        #expect(world.violations.isEmpty)
    }

    @Test("battery low: the fed server stops at once")
    func lowBattery() throws {
        let world = Self.world(feeds: "servers", servers: ["s1"]) { _, now in now >= .seconds(10) ? .lowBattery : .online }
        world.run(until: .seconds(14))
        let stop = try #require(world.runs(group: "web", on: "s1", .stop).first)
        #expect(stop.at < .seconds(11))
        #expect(world.osActionList == ["s1:shutdown"])
        #expect(world.violations.isEmpty)
    }

    @Test("a UPS of shared storage on battery past the grace time: the whole cluster stops as with clpstdn, nothing fails over")
    func sharedUPS() throws {
        let world = Self.world(feeds: "cluster", servers: nil) { _, now in now >= .seconds(10) ? .onBattery : .online }
        world.run(until: .seconds(30))
        #expect(world.runs(.start, since: .seconds(10)).isEmpty, "a group started during the power shutdown")
        let stops = world.runs(.stop, since: .seconds(10))
        #expect(Set(stops.map(\.run.group)) == ["web", "db"])
        expectEnv(stops, ["CLP_FACTOR": "CLUSTERSHUTDOWN", "CLP_LASTACTION": "HALT"])
        #expect(stops.allSatisfy { $0.at >= .seconds(15) })
        #expect(world.osActionList.sorted() == ["s1:shutdown", "s2:shutdown", "s3:shutdown"])
        #expect(Set(world.powerOffs.map(\.0)) == ["s1", "s2", "s3"])
        #expect(world.violations.isEmpty)
    }
}
