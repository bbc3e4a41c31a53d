import Testing
import UnderstudyEngine
import UnderstudyModel
import UnderstudySimulator

/// Servers whose files list the servers in different orders (issue 13: both claimed
/// mastership hundreds of times a second and never started the group). Mastership and the
/// tie-break of an exact half follow each server's own declared priority, which every
/// server reads alike.
@Suite("Configuration mismatch")
struct ConfigurationMismatchTests {
    /// `servers:` rotated so that `first` comes first.
    static func listing(_ config: ClusterConfig, first: ServerName) -> ClusterConfig {
        var other = config
        guard let index = config.servers.firstIndex(where: { $0.name == first }) else { return config }
        other.servers = Array(config.servers[index...]) + Array(config.servers[..<index])
        return other
    }

    @Test("two servers that each list themselves first agree on one master and start the group once", arguments: [2, 3])
    func agreeOnOneMaster(servers count: Int) {
        let names = Cfg.names(count)
        let config = Cfg.cluster(
            servers: count, groups: [Cfg.group("g", servers: names)], majority: count > 2, pingTargets: count == 2 ? ["192.0.2.254"] : [])
        let world = SimulatedCluster(config: config, seed: 3, scriptModel: Scripts.model())
        world.configOverrides["s2"] = Self.listing(config, first: "s2")
        for name in names { world.boot(name) }
        world.run(for: .seconds(15))

        let masters = Set(names.compactMap { world.engine($0)?.currentMaster(now: world.now) })
        #expect(masters == ["s1"], "\(world.recentTrace)")
        #expect(world.where_("g") == ["s1:Online"], "\(world.recentTrace)")
        #expect(world.runs(group: "g", .start).count == 1)
        for name in names {
            #expect((world.logCounts["\(name) nm 10"] ?? 0) <= 1, "\(name) became master \(world.logCounts["\(name) nm 10"] ?? 0) times")
        }
        // Each side reports the other's file once (log) and in its status.
        #expect(world.logCounts["s1 nm 80"] == 1)
        #expect(world.logCounts["s2 nm 80"] == count - 1)
        #expect(world.engine("s1")?.snapshot(now: world.now).configurationMismatch?.map(\.server) == ["s2"])
        #expect(world.engine("s2")?.snapshot(now: world.now).configurationMismatch?.count == count - 1)
        #expect(world.violations.isEmpty, "\(world.violations)")
    }

    /// Four servers, majority with a ping target: a 2|2 split survives on the half with the
    /// first server. s3 and s4 list s3 first; s1 and s2 list s1 first. By their own files both
    /// halves would survive; by declared priorities (both 0) and names, only s1's does.
    @Test("an exact half is broken alike on both sides when the files list the servers differently")
    func exactHalfTieBreak() {
        let names = Cfg.names(4)
        let config = Cfg.cluster(servers: 4, groups: [Cfg.group("g", servers: ["s3", "s4", "s1", "s2"])], pingTargets: ["192.0.2.254"])
        let world = SimulatedCluster(config: config, seed: 5, scriptModel: Scripts.model())
        for name in ["s3", "s4"] { world.configOverrides[name] = Self.listing(config, first: "s3") }
        for name in names { world.boot(name) }
        world.run(for: .seconds(12))
        #expect(world.where_("g") == ["s3:Online"], "\(world.recentTrace)")

        let splitAt = world.now
        world.partition(["s1", "s2"], ["s3", "s4"])
        world.run(for: .seconds(10))
        #expect(world.engine("s3")?.isolated == true && world.engine("s4")?.isolated == true, "\(world.recentTrace)")
        #expect(world.engine("s1")?.isolated == false && world.engine("s2")?.isolated == false)
        #expect(world.where_("g") == ["s1:Online"], "\(world.recentTrace)")
        #expect(world.runs(group: "g", .start, since: splitAt).map(\.server) == ["s1"])
        #expect(world.violations.isEmpty, "\(world.violations)")
    }
}
