import Foundation
import Testing

@testable import UnderstudyModel

/// docs/quickstart-two-servers.md tells readers to start from docs/examples/two-servers: the
/// file must load as `understudy config check` loads it, and its scripts must be in place.
@Suite("docs/examples/two-servers is a valid configuration")
struct ExampleConfigurationTests {
    let folder = packageRoot + "/docs/examples/two-servers"

    @Test("cluster.yaml loads; the only warning is the key that exists on real servers only")
    func loads() throws {
        let loaded = try ConfigLoader.loadWithWarnings(path: folder + "/cluster.yaml")
        #expect(loaded.warnings.map(\.keyPath) == ["cluster.secret-file"], "\(loaded.warnings)")
        let config = loaded.config
        #expect(config.serverNames == ["node1", "node2"])
        #expect(config.heartbeats.filter { $0.typeName == "lanhb" }.count == 2)
        #expect(config.networkPartition.map(\.typeName) == ["pingnp"])
        #expect(config.groups.map(\.name) == ["pg"])
        #expect(config.groups.first?.resources.map(\.name) == ["fip1", "disk1", "postgres"])
        #expect(config.monitors.contains { $0.type == .psqlw })
    }

    @Test("the start and stop scripts exist and are executable", arguments: ["start.sh", "stop.sh"])
    func scripts(_ name: String) {
        let path = folder + "/scripts/pg/postgres/" + name
        #expect(FileManager.default.isExecutableFile(atPath: path), "\(path) is missing or not executable")
    }
}
