import Testing

@testable import UnderstudyModel

/// `clpcfget -e/-g`: each query shape EXPRESSCLUSTER's exporters and scripts use
/// (integration-contracts §2), answered from the YAML.
@Suite("Config: clpcfget queries")
struct ConfigQueryTests {
    let config: ClusterConfig

    init() throws {
        let yaml =
            baseCluster + """
                groups:
                  - name: g1
                    comment: the web service
                    resources:
                      - {name: exec1, type: exec, start: /bin/true, stop: /bin/true, start-mode: async}
                      - {name: vip1, type: fip, address: 10.0.0.10}
                  - name: g2
                    resources:
                      - {name: exec2, type: exec, start: /bin/true, stop: /bin/true}
                monitors:
                  - {name: genw1, type: genw, script: /bin/true, interval: 30s, timeout: 60s, recovery: {target: g1}}
                  - {name: pidw1, type: pidw, target: exec1, recovery: {target: g1}}
                  - {name: genw2, type: genw, script: /bin/true, recovery: {target: g2}}

                """
        config = try load(yaml).config
    }

    @Test("-e /root/monitor/types: each type in use once, in file order")
    func monitorTypes() throws {
        #expect(try ConfigQuery.enumerate("/root/monitor/types", in: config) == ["genw", "pidw"])
    }

    @Test("-e /root/monitor/TYPE: the monitors of that type; an unused or unknown type answers nothing")
    func monitorsOfType() throws {
        #expect(try ConfigQuery.enumerate("/root/monitor/genw", in: config) == ["genw1", "genw2"])
        #expect(try ConfigQuery.enumerate("/root/monitor/pidw", in: config) == ["pidw1"])
        #expect(try ConfigQuery.enumerate("/root/monitor/mysqlw", in: config).isEmpty)
        #expect(try ConfigQuery.enumerate("/root/monitor/nosuchw", in: config).isEmpty)
    }

    @Test("mirror disks: none, and the parameter of the empty name is empty (the exporter asks both)")
    func mirrorDisks() throws {
        #expect(try ConfigQuery.enumerate("/root/resource/md", in: config).isEmpty)
        #expect(try ConfigQuery.get("/root/resource/md@/parameters/nmppath", in: config) == nil)
        #expect(try ConfigQuery.get("/root/resource/md@md1/parameters/nmppath", in: config) == nil)
    }

    @Test("-e for resources, servers, groups and heartbeats")
    func otherLists() throws {
        #expect(try ConfigQuery.enumerate("/root/resource/types", in: config) == ["exec", "fip"])
        #expect(try ConfigQuery.enumerate("/root/resource/exec", in: config) == ["exec1", "exec2"])
        #expect(try ConfigQuery.enumerate("/root/server", in: config) == ["node1", "node2"])
        #expect(try ConfigQuery.enumerate("/root/group/", in: config) == ["g1", "g2"])
        #expect(try ConfigQuery.enumerate("/root/heartbeat/types", in: config) == ["lanhb"])
        #expect(try ConfigQuery.enumerate("/root/heartbeat/lanhb", in: config) == ["lan1", "lan2"])
        #expect(try ConfigQuery.enumerate("/root/monitor/genw@genw1", in: config).isEmpty)
        #expect(try ConfigQuery.enumerate("/root", in: config).isEmpty)
    }

    @Test("-g values: cluster, heartbeat timing in ms as clp.conf, server priority, monitor settings")
    func values() throws {
        #expect(try ConfigQuery.get("/root/cluster/name", in: config) == "c1")
        #expect(
            try ConfigQuery.get("/root/cluster/heartbeat/timeout", in: config)
                == String(Defaults.heartbeatTimeout.components.seconds * 1000))
        #expect(try ConfigQuery.get("/root/server@node2/priority", in: config) == "1")
        #expect(try ConfigQuery.get("/root/server@node9/priority", in: config) == nil)
        #expect(try ConfigQuery.get("/root/group@g1/comment", in: config) == "the web service")
        #expect(try ConfigQuery.get("/root/monitor/pidw@pidw1/target", in: config) == "exec1")
        #expect(try ConfigQuery.get("/root/monitor/genw@genw1/polling/interval", in: config) == "30")
        #expect(try ConfigQuery.get("/root/monitor/genw@genw1/polling/timeout", in: config) == "60")
        #expect(try ConfigQuery.get("/root/monitor/pidw@genw1/polling/interval", in: config) == nil, "wrong type")
        #expect(try ConfigQuery.get("/root/cluster/nothing", in: config) == nil)
    }

    @Test("a path outside /root or with an empty element is refused with the path named")
    func badPaths() {
        for path in ["monitor/types", "/rootx/monitor", "", "/root//monitor", "/etc/passwd"] {
            #expect(throws: ConfigQuery.BadPath.self, "\(path)") { try ConfigQuery.enumerate(path, in: config) }
            #expect(throws: ConfigQuery.BadPath.self, "\(path)") { try ConfigQuery.get(path, in: config) }
        }
        let error = #expect(throws: ConfigQuery.BadPath.self) { try ConfigQuery.enumerate("/etc/passwd", in: config) }
        #expect(error?.description.contains("/etc/passwd") == true && error?.description.contains("/root") == true)
    }

    @Test("random paths: an answer or BadPath, never a crash")
    func fuzzedPaths() {
        var generator = SystemRandomNumberGenerator()
        let pieces = ["/", "root", "@", "monitor", "types", "genw", "genw1", "resource", "md", "", "/root", "é", "\u{0}", "polling", ".."]
        for _ in 0..<2000 {
            let path = (0..<Int.random(in: 0...8, using: &generator)).map { _ in pieces.randomElement(using: &generator) ?? "" }.joined()
            do {
                _ = try ConfigQuery.enumerate(path, in: config)
                _ = try ConfigQuery.get(path, in: config)
            } catch {
                #expect("\(error)".contains("/root") || "\(error)".contains("empty element"), "\(path)")
            }
        }
    }
}
