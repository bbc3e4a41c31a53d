import Testing
import UnderstudyEngine
import UnderstudyModel
import UnderstudySimulator

/// Servers whose files list the servers in different orders (issue 13: both claimed
/// mastership hundreds of times a second and never started the group). Mastership and the
/// tie-break of an exact half follow each server's own declared priority, which every
/// server reads alike; a server whose configuration differs from the one the cluster was
/// founded with joins as an outsider: never master, never given a group (issue 16).
@Suite("Configuration mismatch")
struct ConfigurationMismatchTests {
    /// `servers:` rotated so that `first` comes first.
    static func listing(_ config: ClusterConfig, first: ServerName) -> ClusterConfig {
        var other = config
        guard let index = config.servers.firstIndex(where: { $0.name == first }) else { return config }
        other.servers = Array(config.servers[index...]) + Array(config.servers[..<index])
        return other
    }

    @Test(
        "two servers that each list themselves first agree on one master, start the group once, and the other one stays out",
        arguments: [2, 3])
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
        // No flapping: at most one founding race (two servers whose sync ended in the same
        // instant both found; the first in rank takes the other's directory over at once).
        #expect(names.map { world.logCounts["\($0) nm 10"] ?? 0 }.reduce(0, +) <= 3, "\(world.recentTrace)")
        for name in names {
            #expect(
                (world.logCounts["\(name) nm 10"] ?? 0) <= 2,
                "\(name) became master \(world.logCounts["\(name) nm 10"] ?? 0) times\n\(world.recentTrace)")
        }
        // Each side reports the other's file once (log) and in its status.
        #expect(world.logCounts["s1 nm 80"] == 1)
        #expect(world.logCounts["s2 nm 80"] == count - 1)
        #expect(world.engine("s1")?.snapshot(now: world.now).configurationMismatch?.map(\.server) == ["s2"])
        #expect(world.engine("s2")?.snapshot(now: world.now).configurationMismatch?.count == count - 1)
        // s2 joined with another configuration than its master's: it says so, and s1 sees it excluded.
        #expect(world.engine("s2")?.configOutsider == true)
        #expect(world.engine("s2")?.snapshot(now: world.now).configuration?.outsider == true)
        #expect(world.engine("s1")?.snapshot(now: world.now).configurationMismatch?.first?.excluded == true)
        #expect((world.logCounts["s2 nm 81"] ?? 0) == 1)
        #expect(world.violations.isEmpty, "\(world.violations)")
    }

    @Test("an outsider never becomes master and never gets a group, even when it is the only server left")
    func outsiderStaysOut() {
        let names = Cfg.names(3)
        let config = Cfg.cluster(servers: 3, groups: [Cfg.group("g", servers: ["s2", "s1", "s3"])], majority: true)
        let world = SimulatedCluster(config: config, seed: 11, scriptModel: Scripts.model())
        // s2 lists itself first: by priority it would tie with s1 and lose on the name only;
        // the group prefers s2.
        world.configOverrides["s2"] = Self.listing(config, first: "s2")
        for name in names { world.boot(name) }
        world.run(for: .seconds(15))
        #expect(world.where_("g") == ["s1:Online"], "\(world.recentTrace)")
        #expect(world.engine("s2")?.configOutsider == true)

        // A move to the outsider is refused, with the reason.
        let refused = world.command(.moveGroup("g", to: "s2"), at: "s1")
        #expect(refused.code == .failed, "\(refused)")
        #expect(refused.message.contains("runs another configuration"), "\(refused.message)")

        // s1 fails: s3 (same configuration as s1) takes over as master and gets the group.
        world.crash("s1")
        world.run(for: .seconds(15))
        #expect(world.engine("s3")?.currentMaster(now: world.now) == "s3", "\(world.recentTrace)")
        #expect(world.where_("g") == ["s3:Online"], "\(world.recentTrace)")
        #expect(world.runs(group: "g", .start).allSatisfy { $0.server != "s2" })
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
        // Founded with s1's configuration (s1 ranks first): s3 and s4 joined as outsiders, so
        // the group runs on s1 although it prefers s3.
        #expect(world.where_("g") == ["s1:Online"], "\(world.recentTrace)")
        #expect(world.engine("s3")?.configOutsider == true && world.engine("s4")?.configOutsider == true)

        let splitAt = world.now
        world.partition(["s1", "s2"], ["s3", "s4"])
        world.run(for: .seconds(10))
        #expect(world.engine("s3")?.isolated == true && world.engine("s4")?.isolated == true, "\(world.recentTrace)")
        #expect(world.engine("s1")?.isolated == false && world.engine("s2")?.isolated == false)
        #expect(world.where_("g") == ["s1:Online"], "\(world.recentTrace)")
        #expect(world.runs(group: "g", .start, since: splitAt).isEmpty)
        #expect(world.violations.isEmpty, "\(world.violations)")
    }
}
