import Foundation
import UnderstudyEngine
import UnderstudyModel
import UnderstudySimulator
import Yams

// Reading a scenario file (format: Scenarios/README.md). Every error names the file and the
// key or step that is wrong.

extension Scenario {
    static func load(path: String) throws -> Scenario {
        let yaml = try String(contentsOfFile: path, encoding: .utf8)
        return try parse(yaml: yaml, file: (path as NSString).lastPathComponent)
    }

    static func parse(yaml: String, file: String) throws -> Scenario {
        func fail(_ message: String) -> ScenarioError { ScenarioError(description: "\(file): \(message)") }
        let document: Any?
        do {
            document = try Yams.load(yaml: yaml)
        } catch {
            throw fail("not valid YAML: \(error)")
        }
        guard let root = document as? [String: Any] else { throw fail("not a mapping") }
        var reader = Reader(file: file)
        try reader.allow(root, ["name", "engine", "peers", "cluster", "boot", "failing", "steps"], at: "")
        guard let name = root["name"] as? String else { throw fail("name: missing") }
        guard let cluster = root["cluster"] as? [String: Any] else { throw fail("cluster: missing") }
        let config = try reader.cluster(cluster)
        let names = config.serverNames
        reader.servers = Set(names)

        if root["peers"] != nil && root["engine"] == nil { throw fail("peers: only with engine") }
        if let engine = root["engine"] {
            let me = try reader.server(engine, at: "engine")
            reader.engine = me
            for key in ["boot", "failing"] where root[key] != nil {
                throw fail("\(key): not used with engine (one Engine is fed by hand: write the events as steps)")
            }
            guard let stepList = root["steps"] as? [Any] else { throw fail("steps: missing") }
            var steps: [EngineStep] = []
            for (offset, item) in stepList.enumerated() {
                steps.append(try reader.engineStep(item, index: offset + 1))
            }
            let peers = try root["peers"].map { try reader.serverList($0, at: "peers") } ?? []
            if peers.contains(me) { throw fail("peers: \(me) is the engine itself") }
            return Scenario(
                name: name, file: file, config: config, boot: [:], failing: [], steps: [], engine: me, engineSteps: steps,
                peers: peers)
        }
        var boot: [ServerName: Duration] = Dictionary(uniqueKeysWithValues: names.map { ($0, .zero) })
        if let given = root["boot"] {
            guard let map = given as? [String: Any] else { throw fail("boot: a map of server to time") }
            boot = [:]
            for (server, time) in map {
                try reader.server(server, at: "boot")
                boot[server] = try reader.duration(time, at: "boot.\(server)")
            }
        }
        var failing: [FailingRun] = []
        for (index, item) in ((root["failing"] as? [Any]) ?? []).enumerated() {
            let key = "failing[\(index)]"
            guard let map = item as? [String: Any], let resource = map["resource"] as? String else {
                throw fail("\(key): needs resource (and optionally server, operation, times)")
            }
            try reader.allow(map, ["resource", "server", "operation", "times"], at: key)
            let server = try (map["server"] as? String).map { try reader.server($0, at: key) }
            let operation = ResourceOperation(rawValue: (map["operation"] as? String) ?? "start") ?? .start
            failing.append(FailingRun(server: server, resource: resource, operation: operation, times: (map["times"] as? Int) ?? 1))
        }
        guard let stepList = root["steps"] as? [Any] else { throw fail("steps: missing") }
        var steps: [Step] = []
        for (offset, item) in stepList.enumerated() {
            steps.append(try reader.step(item, index: offset + 1))
        }
        return Scenario(name: name, file: file, config: config, boot: boot, failing: failing, steps: steps)
    }

    struct Reader {
        let file: String
        var servers: Set<ServerName> = []
        /// The server of a single-Engine scenario (its commands are given there).
        var engine: ServerName?

        func fail(_ message: String) -> ScenarioError { ScenarioError(description: "\(file): \(message)") }

        func allow(_ map: [String: Any], _ keys: Set<String>, at place: String) throws {
            for key in map.keys where !keys.contains(key) {
                throw fail("\(place.isEmpty ? "" : place + ": ")unknown key \(key) (allowed: \(keys.sorted().joined(separator: ", ")))")
            }
        }

        @discardableResult
        func server(_ value: Any?, at place: String) throws -> ServerName {
            guard let name = value as? String, servers.contains(name) else { throw fail("\(place): unknown server \(value ?? "nil")") }
            return name
        }

        func serverList(_ value: Any?, at place: String) throws -> [ServerName] {
            if let one = value as? String { return [try server(one, at: place)] }
            guard let list = value as? [Any] else { throw fail("\(place): a server or a list of servers") }
            return try list.map { try server($0, at: place) }
        }

        func duration(_ value: Any?, at place: String) throws -> Duration {
            if let number = value as? Int, number == 0 { return .zero }
            guard let text = value as? String, let duration = Duration(configText: text) else {
                throw fail("\(place): not a duration (\(value ?? "nil")); write 300ms, 3s or 0")
            }
            return duration
        }

        // MARK: Cluster

        func cluster(_ map: [String: Any]) throws -> ClusterConfig {
            try allow(map, ["servers", "sync-wait", "majority", "ping-targets", "groups", "monitors"], at: "cluster")
            guard let count = map["servers"] as? Int, (1...9).contains(count) else { throw fail("cluster.servers: 1 to 9") }
            let syncWait = try map["sync-wait"].map { try duration($0, at: "cluster.sync-wait") } ?? Timing.syncWait
            var config = Cfg.cluster(
                servers: count, groups: [], syncWait: syncWait, majority: (map["majority"] as? Bool) ?? true,
                pingTargets: (map["ping-targets"] as? [String]) ?? [])
            let names = Set(config.serverNames)
            for (index, item) in ((map["groups"] as? [Any]) ?? []).enumerated() {
                config.groups.append(try group(item, at: "cluster.groups[\(index)]", names: names))
            }
            for (index, item) in ((map["monitors"] as? [Any]) ?? []).enumerated() {
                config.monitors.append(try monitor(item, at: "cluster.monitors[\(index)]"))
            }
            return config
        }

        /// `{name: m, type: genw, target: g-app, retries: 0, recovery: {target: g,
        /// reactivations: 1, failovers: 1, final-action: stop-group}}`. The type's defaults
        /// (interval, timeout, retries, when it runs) apply where the file says nothing.
        func monitor(_ item: Any, at place: String) throws -> MonitorConfig {
            guard let map = item as? [String: Any], let name = map["name"] as? String else { throw fail("\(place): needs a name") }
            try allow(map, ["name", "type", "target", "retries", "recovery"], at: place)
            let typeName = (map["type"] as? String) ?? "genw"
            guard let type = MonitorType(rawValue: typeName) else { throw fail("\(place).type: unknown type \(typeName)") }
            let spec = (map["recovery"] as? [String: Any]) ?? [:]
            try allow(spec, ["target", "reactivations", "failovers", "final-action"], at: "\(place).recovery")
            let target: MonitorRecovery.Target
            switch spec["target"] as? String {
            case nil, "local-server": target = .localServer
            case "all-groups": target = .allGroups
            case let group?: target = .group(group)
            }
            let finalText = (spec["final-action"] as? String) ?? Defaults.monitorFinalAction.rawValue
            guard let finalAction = FinalAction(rawValue: finalText) else {
                throw fail("\(place).recovery.final-action: \(finalText) is not a final action")
            }
            return MonitorConfig(
                name: name, type: type, target: map["target"] as? String, retries: map["retries"] as? Int,
                recovery: MonitorRecovery(
                    target: target, reactivations: (spec["reactivations"] as? Int) ?? Defaults.monitorReactivations,
                    failovers: (spec["failovers"] as? Int) ?? Defaults.monitorFailovers, finalAction: finalAction))
        }

        func group(_ item: Any, at place: String, names: Set<ServerName>) throws -> GroupConfig {
            guard let map = item as? [String: Any], let name = map["name"] as? String else { throw fail("\(place): needs a name") }
            try allow(map, ["name", "servers", "startup", "failover", "failback", "exclusive", "resources"], at: place)
            let policy = (map["servers"] as? [String]) ?? names.sorted()
            for server in policy where !names.contains(server) { throw fail("\(place).servers: unknown server \(server)") }
            func choice<T: RawRepresentable>(_ key: String, _ fallback: T) throws -> T where T.RawValue == String {
                guard let text = map[key] as? String else { return fallback }
                guard let value = T(rawValue: text) else { throw fail("\(place).\(key): \(text) is not a valid value") }
                return value
            }
            var resources: [ResourceConfig] = []
            for (index, entry) in ((map["resources"] as? [Any]) ?? ["\(name)-app"]).enumerated() {
                resources.append(try resource(entry, at: "\(place).resources[\(index)]"))
            }
            return Cfg.group(
                name, servers: policy, startup: try choice("startup", .auto), failover: try choice("failover", .auto),
                failback: try choice("failback", .manual), exclusive: try choice("exclusive", .none), resources: resources)
        }

        /// `app` (an exec), `ip: fip`, or `{name: web, type: exec, depends: [db]}`.
        func resource(_ entry: Any, at place: String) throws -> ResourceConfig {
            if let name = entry as? String { return Cfg.exec(name) }
            guard let map = entry as? [String: Any] else { throw fail("\(place): a name, name: type, or a mapping") }
            if map.count == 1, let (name, type) = map.first, let typeName = type as? String {
                guard let type = ResourceType(rawValue: typeName) else { throw fail("\(place): unknown type \(typeName)") }
                return Cfg.resource(name, type)
            }
            try allow(map, ["name", "type", "depends"], at: place)
            guard let name = map["name"] as? String else { throw fail("\(place): needs a name") }
            let type =
                try (map["type"] as? String).map { text -> ResourceType in
                    guard let type = ResourceType(rawValue: text) else { throw fail("\(place).type: unknown type \(text)") }
                    return type
                } ?? .exec
            return Cfg.resource(name, type, depends: map["depends"] as? [String])
        }

        // MARK: Steps

        func step(_ item: Any, index: Int) throws -> Scenario.Step {
            let place = "step \(index)"
            guard let map = item as? [String: Any] else { throw fail("\(place): a mapping with at and what happens") }
            try allow(
                map, ["at", "note", "boot", "crash", "freeze", "partition", "cut", "heal", "ping-targets-lost-by", "command", "expect"],
                at: place)
            let at = try duration(map["at"], at: "\(place): at")
            var actions: [Scenario.Action] = []
            if let value = map["boot"] { actions += try serverList(value, at: "\(place).boot").map { .boot($0) } }
            if let value = map["crash"] { actions += try serverList(value, at: "\(place).crash").map { .crash($0) } }
            if let value = map["freeze"] {
                guard let spec = value as? [String: Any] else { throw fail("\(place).freeze: {server: s1, for: 5s}") }
                try allow(spec, ["server", "for"], at: "\(place).freeze")
                actions.append(
                    .freeze(try server(spec["server"], at: "\(place).freeze"), try duration(spec["for"], at: "\(place).freeze.for")))
            }
            if let value = map["partition"] {
                guard let sides = value as? [Any], sides.count == 2 else { throw fail("\(place).partition: two sides, [[s1], [s2, s3]]") }
                actions.append(
                    .partition(try serverList(sides[0], at: "\(place).partition"), try serverList(sides[1], at: "\(place).partition")))
            }
            if let value = map["cut"] {
                guard let spec = value as? [String: Any] else { throw fail("\(place).cut: {from: [s1], to: [s2]}") }
                try allow(spec, ["from", "to"], at: "\(place).cut")
                actions.append(
                    .cut(from: try serverList(spec["from"], at: "\(place).cut.from"), to: try serverList(spec["to"], at: "\(place).cut.to"))
                )
            }
            if map["heal"] as? Bool == true { actions.append(.heal) }
            if let value = map["ping-targets-lost-by"] {
                actions.append(.pingTargetsLost(try serverList(value, at: "\(place).ping-targets-lost-by")))
            }
            if let value = map["command"] { actions.append(try command(value, at: "\(place).command")) }
            var expectations: [Scenario.Expectation] = []
            if let value = map["expect"] { expectations = try expect(value, at: "\(place).expect") }
            return Scenario.Step(index: index, at: at, actions: actions, expectations: expectations)
        }

        /// `{at: s2, run: "move g to s3", result: success, message: "…"}`. A single-Engine
        /// scenario gives its commands on its own server (`on`: no `at`).
        func command(_ value: Any, at place: String, on engine: ServerName? = nil) throws -> Scenario.Action {
            guard let map = value as? [String: Any], let text = map["run"] as? String else {
                throw fail("\(place): {at: SERVER, run: \"move g to s3\", result: success}")
            }
            try allow(map, engine == nil ? ["at", "run", "result", "message"] : ["run", "result", "message"], at: place)
            let origin = try engine ?? server(map["at"], at: "\(place).at")
            let words = text.split(separator: " ").map(String.init)
            func target(_ index: Int, _ keyword: String) throws -> ServerName? {
                guard words.count > index + 1 else { return nil }
                guard words[index] == keyword else { throw fail("\(place).run: expected '\(keyword)' in \"\(text)\"") }
                return try server(words[index + 1], at: "\(place).run")
            }
            let command: ClusterCommand
            switch (words.first, words.count) {
            case ("start", 2...) where words[1] == "resource" && words.count == 3: command = .startResource(words[2])
            case ("stop", 3) where words[1] == "resource": command = .stopResource(words[2])
            case ("start", 2...): command = .startGroup(words[1], on: try target(2, "on"))
            case ("stop", 2) where words[1] == "service":
                // SIGTERM to the daemon: its groups stop cleanly and fail over, the daemon exits.
                command = .stopService(factor: .serverShutdown, lastAction: .none, then: .exitProcess)
            case ("stop", 2): command = .stopGroup(words[1])
            case ("move", 2...): command = .moveGroup(words[1], to: try target(2, "to"))
            case ("suspend", 1): command = .suspendCluster
            case ("resume", 1): command = .resumeCluster
            default:
                throw fail(
                    "\(place).run: \"\(text)\" is not one of: start G [on S], stop G, move G [to S], start resource R, stop resource R, stop service, suspend, resume"
                )
            }
            var expected: CommandCode?
            if let result = map["result"] as? String {
                let codes: [String: CommandCode] = [
                    "success": .success, "failed": .failed, "bad-usage": .badUsage, "unreachable": .unreachable,
                    "in-transition": .inTransition,
                ]
                guard let code = codes[result] else { throw fail("\(place).result: one of \(codes.keys.sorted())") }
                expected = code
            }
            return .command(at: origin, command, expect: expected, messageContains: map["message"] as? String)
        }

        func expect(_ value: Any, at place: String) throws -> [Scenario.Expectation] {
            guard let map = value as? [String: Any] else { throw fail("\(place): a mapping") }
            try allow(map, ["placement", "runs", "env", "master", "os-actions", "order"], at: place)
            var result: [Scenario.Expectation] = []
            if let placement = map["placement"] {
                guard let groups = placement as? [String: Any] else { throw fail("\(place).placement: {g: [s1:Online]}") }
                for (group, where_) in groups.sorted(by: { $0.key < $1.key }) {
                    result.append(.placement(group, (where_ as? [String]) ?? []))
                }
            }
            for (key, list) in [("runs", map["runs"]), ("env", map["env"])] {
                guard let list else { continue }
                for (index, item) in ((list as? [Any]) ?? [list]).enumerated() {
                    let entry = "\(place).\(key)[\(index)]"
                    guard let spec = item as? [String: Any] else { throw fail("\(entry): a mapping") }
                    try allow(spec, ["group", "server", "operation", "since", "until", key == "runs" ? "are" : "values"], at: entry)
                    var filter = Scenario.RunFilter()
                    filter.group = spec["group"] as? String
                    filter.server = try (spec["server"]).map { try server($0, at: entry) }
                    if let operation = spec["operation"] as? String {
                        guard let parsed = ResourceOperation(rawValue: operation) else { throw fail("\(entry).operation: start or stop") }
                        filter.operation = parsed
                    }
                    if let since = spec["since"] { filter.since = try duration(since, at: "\(entry).since") }
                    if let until = spec["until"] { filter.until = try duration(until, at: "\(entry).until") }
                    if key == "runs" {
                        result.append(.runs(filter, (spec["are"] as? [String]) ?? []))
                    } else {
                        guard let values = spec["values"] as? [String: Any] else { throw fail("\(entry).values: {CLP_EVENT: START}") }
                        result.append(.env(filter, values.mapValues { "\($0)" }))
                    }
                }
            }
            if let master = map["master"] {
                guard let followers = master as? [String: Any] else { throw fail("\(place).master: {s2: s1, s3: none}") }
                var expected: [ServerName: ServerName?] = [:]
                for (follower, leader) in followers {
                    try server(follower, at: "\(place).master")
                    let name = leader as? String
                    expected[follower] = name == "none" ? ServerName?.none : try server(name, at: "\(place).master.\(follower)")
                }
                result.append(.master(expected))
            }
            if let actions = map["os-actions"] { result.append(.osActions((actions as? [String]) ?? [])) }
            if let order = map["order"] {
                guard let spec = order as? [String: Any], let first = spec["first"] as? String, let then = spec["then"] as? String
                else { throw fail("\(place).order: {first: s1 fence g, then: s2 start g/ip}") }
                result.append(.order(first: first, then: then))
            }
            return result
        }
    }
}
