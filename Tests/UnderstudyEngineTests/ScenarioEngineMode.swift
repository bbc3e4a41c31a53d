import Foundation
import UnderstudyEngine
import UnderstudyModel

// Scenario files with `engine: S`: one Engine (server S) fed events by hand, and the actions
// each step produced checked. What the simulated cluster would do around it (peers, scripts)
// is written in the file instead: a peer's heartbeat, a script's result. The runner plays the
// Node's clock: it delivers a tick every tick period between two steps (unless the step says
// the process was stalled) and sends this server's heartbeat every interval and when asked.
// Format: Scenarios/README.md.

/// One step of a single-Engine scenario: an event at a time, then what must hold.
struct EngineStep {
    var index: Int
    var at: Duration
    /// The process did not run since the previous step: no ticks in between (a stall).
    var stalled = false
    /// Peers that fall silent from this step on, and peers heard again.
    var silent: [ServerName] = []
    var heard: [ServerName] = []
    var event: EngineStepEvent
    /// Each must be part of one of the actions this event produced (see `render`).
    var actions: [String]
    /// None may be part of any action this event produced.
    var noActions: [String]
    /// This server's master afterwards (nil: not checked; "none": no master).
    var master: String?
    /// This server's status of each group afterwards.
    var status: [GroupName: String]
    var isolated: Bool?
}

enum EngineStepEvent {
    case startService
    case tick
    /// The newest run of this resource (and operation) finished.
    case finished(resource: ResourceName, operation: ResourceOperation, success: Bool)
    case heartbeat(PeerHeartbeat)
    /// An operator's command given on this server (`clpgrp`, `clprsc`, `clpcl`).
    case command(ClusterCommand, expect: EngineCommandOutcome?, messageContains: String?)
    /// A check of a monitor this server runs, with its result.
    case monitorCheck(monitor: String, result: MonitorResult)
}

/// What a command given on this one Engine came to: answered here, or handed on to the
/// server where it must run (a scenario expects an answer; a hand-on is a problem).
enum EngineCommandOutcome: Equatable {
    case done(CommandCode)
    case forwarded(to: ServerName)
}

/// A peer's heartbeat as a scenario writes it.
struct PeerHeartbeat {
    var from: ServerName
    var boot: UInt64
    /// It echoes this server's newest heartbeat (it hears us).
    var hearsUs = true
    /// It follows this server's directory (epoch and version), as a joined follower does.
    var followsUs = false
    var view: [ServerName]
    var groups: [GroupName: ActivationStatus] = [:]
    var leaving = false
}

extension Scenario {
    /// Runs a single-Engine scenario; the problems found, each naming its step.
    func runEngine(_ me: ServerName) -> [String] {
        var engine = ServerEngine(config: config, me: me, bootID: 1, configHash: "scenario")
        var trace: [String] = []
        var runs: [ResourceRun] = []
        /// Each monitor's current run (from `startMonitor`; a check names it).
        var monitorRuns: [String: UInt64] = [:]
        /// The Node's part: record what runs.
        func record(_ produced: [EngineAction]) -> [EngineAction] {
            for action in produced {
                switch action {
                case .runResource(let run): runs.append(run)
                case .startMonitor(let start): monitorRuns[start.monitor] = start.run
                case .stopMonitor(let monitor, let run) where monitorRuns[monitor] == run: monitorRuns[monitor] = nil
                default: break
                }
            }
            return produced
        }
        var lastSent: EngineTime?
        var problems: [String] = []
        var lastEvent: EngineTime?
        let interval = config.cluster.timing.heartbeatInterval
        func sendHeartbeat(_ now: EngineTime) {
            _ = engine.makeHeartbeat(now: now)
            lastSent = now
        }
        var live = Set(peers)
        var peersLastSent: EngineTime?
        func heartbeat(from peer: PeerHeartbeat, now: EngineTime) -> [EngineAction] {
            var hears: [ServerName: HeardHeartbeat] = [:]
            if peer.hearsUs, let lastSent { hears[me] = HeardHeartbeat(bootID: 1, sentAt: lastSent, upSince: .zero) }
            let directory = engine.directory
            let heartbeat = Heartbeat(
                sender: peer.from, bootID: peer.boot, run: 1, sentAt: now, configHash: "scenario",
                priority: config.serverNames.firstIndex(of: peer.from), leaving: peer.leaving, syncDone: true, hears: hears,
                view: peer.view, epoch: peer.followsUs ? directory?.epoch : nil,
                appliedVersion: peer.followsUs ? directory?.version ?? 0 : 0,
                groups: peer.groups.mapValues { GroupReport(status: $0) })
            return engine.handle(.heartbeat(heartbeat, path: "lan1"), now: now)
        }
        /// The live peers' heartbeats: they hear this server, see every live server and
        /// follow this server's directory once it has one.
        func livePeersSend(_ now: EngineTime) -> [EngineAction] {
            guard !live.isEmpty, now - (peersLastSent ?? .zero) >= interval || peersLastSent == nil else { return [] }
            peersLastSent = now
            let view = config.serverNames.filter { $0 == me || live.contains($0) }
            return live.sorted().flatMap { peer in
                heartbeat(
                    from: PeerHeartbeat(
                        from: peer, boot: UInt64(2 + (config.serverNames.firstIndex(of: peer) ?? 0)), followsUs: true, view: view),
                    now: now)
            }
        }
        for step in engineSteps {
            let label = "step \(step.index) (at \(step.at.configText))"
            let now = step.at
            var actions: [EngineAction] = []
            // The Node's ticks up to this step, and its heartbeats every interval.
            if var tick = lastEvent.map({ $0 + engine.tickPeriod }), !step.stalled, engine.sendsHeartbeats {
                while tick < now {
                    actions += record(livePeersSend(tick))
                    let produced = record(engine.handle(.tick, now: tick))
                    actions += produced
                    if produced.contains(.sendHeartbeatNow) || tick - (lastSent ?? .zero) >= interval { sendHeartbeat(tick) }
                    tick += engine.tickPeriod
                }
            }
            lastEvent = now
            live.subtract(step.silent)
            live.formUnion(step.heard)
            switch step.event {
            case .startService:
                actions += record(engine.startService(now: now))
            case .tick:
                actions += record(engine.handle(.tick, now: now))
            case .finished(let resource, let operation, let success):
                guard let run = runs.last(where: { $0.resource == resource && $0.operation == operation }) else {
                    problems.append("\(label): no run of \(operation.rawValue) \(resource) to finish")
                    break
                }
                actions += record(
                    engine.handle(
                        .resourceFinished(runID: run.id, outcome: success ? .success(asyncPID: nil) : .failure(reason: "exit code 1")),
                        now: now))
            case .heartbeat(let peer):
                actions += record(heartbeat(from: peer, now: now))
            case .command(let command, let expected, let text):
                let (disposition, produced) = engine.command(command, origin: me, now: now)
                actions += record(produced)
                let outcome: EngineCommandOutcome
                var message = ""
                switch disposition {
                case .done(let result):
                    outcome = .done(result.code)
                    message = result.message
                case .forward(let target):
                    outcome = .forwarded(to: target)
                }
                trace.append("\(label): \(command) -> \(outcome) \(message)")
                if case .forwarded(let target) = outcome {
                    problems.append("\(label): the command was handed on to \(target): give it where it is answered")
                } else if let expected, outcome != expected {
                    problems.append("\(label): the command came to \(outcome) (\(message)), expected \(expected)")
                }
                if let text, !message.contains(text) {
                    problems.append("\(label): the command said \"\(message)\", expected it to contain \"\(text)\"")
                }
            case .monitorCheck(let monitor, let result):
                guard let run = monitorRuns[monitor] else {
                    problems.append("\(label): monitor \(monitor) is not running here")
                    break
                }
                actions += record(
                    engine.handle(.monitorChecked(MonitorCheck(monitor: monitor, run: run, result: result, elapsed: .zero)), now: now))
            }
            guard problems.isEmpty else { break }
            // The Node's part: send a heartbeat when asked (its echo is what a peer's
            // `hearsUs` carries).
            if engine.sendsHeartbeats && (actions.contains(.sendHeartbeatNow) || now - (lastSent ?? .zero) >= interval || lastSent == nil) {
                sendHeartbeat(now)
            }
            let rendered = actions.map(Self.render)
            trace.append("\(label): \(describe(step.event))")
            trace += rendered.map { "    \($0)" }
            for pattern in step.actions where !rendered.contains(where: { $0.contains(pattern) }) {
                problems.append("\(label): no action contains \"\(pattern)\"")
            }
            for pattern in step.noActions {
                for action in rendered where action.contains(pattern) {
                    problems.append("\(label): unexpected action \"\(action)\"")
                }
            }
            if let expected = step.master {
                let actual = engine.currentMaster(now: now) ?? "none"
                if actual != expected { problems.append("\(label): master is \(actual), expected \(expected)") }
            }
            for (group, expected) in step.status.sorted(by: { $0.key < $1.key }) {
                let actual = engine.localStatus(of: group).rawValue
                if actual != expected { problems.append("\(label): \(group) is \(actual) here, expected \(expected)") }
            }
            if let expected = step.isolated, engine.isolated != expected {
                problems.append("\(label): isolated is \(engine.isolated), expected \(expected)")
            }
            if !problems.isEmpty { break }
        }
        if !problems.isEmpty { problems.append("actions:\n" + trace.suffix(60).joined(separator: "\n")) }
        return problems
    }

    func describe(_ event: EngineStepEvent) -> String {
        switch event {
        case .startService: "start service"
        case .tick: "tick"
        case .finished(let resource, let operation, let success): "\(operation.rawValue) \(resource) \(success ? "succeeded" : "failed")"
        case .heartbeat(let peer): "heartbeat from \(peer.from)"
        case .command(let command, _, _): "command \(command)"
        case .monitorCheck(let monitor, let result): "monitor \(monitor) \(result)"
        }
    }

    /// One action as a line a scenario can match: `run start g/app`, `fence g`, `heartbeat
    /// now`, `farewell`, `persist`, `probe ping`, `service stopped …`, `start monitor m`,
    /// `stop monitor m`, `recovery script m`, `power off ups`, `log rc 13: text`.
    static func render(_ action: EngineAction) -> String {
        switch action {
        case .runResource(let run): "run \(run.operation.rawValue) \(run.group)/\(run.resource) event=\(run.context.event.rawValue)"
        case .fenceGroup(let group): "fence \(group)"
        case .sendHeartbeatNow: "heartbeat now"
        case .sendHeartbeat: "farewell"
        case .persist: "persist"
        case .probePingTargets: "probe ping"
        case .serviceStopped(let then): "service stopped \(then)"
        case .startMonitor(let start): "start monitor \(start.monitor)"
        case .stopMonitor(let monitor, _): "stop monitor \(monitor)"
        case .runRecoveryScript(let run): "recovery script \(run.monitor)"
        case .powerOffUPS: "power off ups"
        case .forceStop(let run): "force stop \(run.server)"
        case .stopMachineNow(let os): "stop machine now \(os.rawValue)"
        case .log(let entry): "log \(entry.module) \(entry.eventID): \(entry.message)"
        }
    }
}

extension Scenario.Reader {
    /// One step of a single-Engine scenario: `at`, exactly one event, and `expect`.
    func engineStep(_ item: Any, index: Int) throws -> EngineStep {
        let place = "step \(index)"
        guard let map = item as? [String: Any] else { throw fail("\(place): a mapping with at, an event and expect") }
        try allow(
            map,
            ["at", "note", "stalled", "silent", "heard", "start-service", "tick", "finished", "heartbeat", "command", "monitor", "expect"],
            at: place)
        let at = try duration(map["at"], at: "\(place): at")
        var events: [EngineStepEvent] = []
        if map["start-service"] as? Bool == true { events.append(.startService) }
        if map["tick"] as? Bool == true { events.append(.tick) }
        if let value = map["finished"] {
            guard let spec = value as? [String: Any], let resource = spec["resource"] as? String else {
                throw fail("\(place).finished: {resource: app, operation: start, result: success}")
            }
            try allow(spec, ["resource", "operation", "result"], at: "\(place).finished")
            guard let operation = ResourceOperation(rawValue: (spec["operation"] as? String) ?? "start") else {
                throw fail("\(place).finished.operation: start or stop")
            }
            let result = (spec["result"] as? String) ?? "success"
            guard result == "success" || result == "failure" else { throw fail("\(place).finished.result: success or failure") }
            events.append(.finished(resource: resource, operation: operation, success: result == "success"))
        }
        if let value = map["heartbeat"] {
            guard let spec = value as? [String: Any] else { throw fail("\(place).heartbeat: {from: s2, view: [s1, s2]}") }
            let key = "\(place).heartbeat"
            try allow(spec, ["from", "boot", "hears-us", "follows-us", "view", "groups", "leaving"], at: key)
            let from = try server(spec["from"], at: "\(key).from")
            var peer = PeerHeartbeat(
                from: from, boot: UInt64((spec["boot"] as? Int) ?? 2),
                view: try spec["view"].map { try serverList($0, at: "\(key).view") } ?? servers.sorted())
            peer.hearsUs = (spec["hears-us"] as? Bool) ?? true
            peer.followsUs = (spec["follows-us"] as? Bool) ?? false
            peer.leaving = (spec["leaving"] as? Bool) ?? false
            for (group, status) in (spec["groups"] as? [String: Any]) ?? [:] {
                guard let text = status as? String, let parsed = ActivationStatus(rawValue: text) else {
                    throw fail("\(key).groups.\(group): not a status (\(status))")
                }
                peer.groups[group] = parsed
            }
            events.append(.heartbeat(peer))
        }
        if let value = map["command"] {
            // `{run: "move g to s2", result: success | failed | …, message: "…"}`
            guard let engine = self.engine, let spec = value as? [String: Any] else {
                throw fail("\(place).command: {run: \"move g to s2\", result: success} (given on this server: no at)")
            }
            guard case .command(_, let command, let code, let text) = try command(spec, at: "\(place).command", on: engine) else {
                throw fail("\(place).command: not a command")
            }
            events.append(.command(command, expect: code.map(EngineCommandOutcome.done), messageContains: text))
        }
        if let value = map["monitor"] {
            guard let spec = value as? [String: Any], let name = spec["name"] as? String else {
                throw fail("\(place).monitor: {name: m, result: error}")
            }
            try allow(spec, ["name", "result", "message"], at: "\(place).monitor")
            let message = (spec["message"] as? String) ?? "scenario"
            let result: MonitorResult
            switch (spec["result"] as? String) ?? "normal" {
            case "normal": result = .normal
            case "warning": result = .warning(message)
            case "error": result = .error(message)
            case "timeout": result = .timeout
            case let other: throw fail("\(place).monitor.result: \(other) is not normal, warning, error or timeout")
            }
            events.append(.monitorCheck(monitor: name, result: result))
        }
        guard events.count == 1, let event = events.first else {
            throw fail("\(place): exactly one of start-service, tick, finished, heartbeat, command, monitor")
        }
        var step = EngineStep(index: index, at: at, event: event, actions: [], noActions: [], status: [:])
        step.stalled = (map["stalled"] as? Bool) ?? false
        step.silent = try map["silent"].map { try serverList($0, at: "\(place).silent") } ?? []
        step.heard = try map["heard"].map { try serverList($0, at: "\(place).heard") } ?? []
        if let value = map["expect"] {
            guard let spec = value as? [String: Any] else { throw fail("\(place).expect: a mapping") }
            try allow(spec, ["actions", "no-actions", "master", "status", "isolated"], at: "\(place).expect")
            step.actions = (spec["actions"] as? [String]) ?? []
            step.noActions = (spec["no-actions"] as? [String]) ?? []
            if let master = spec["master"] as? String {
                if master != "none" { try server(master, at: "\(place).expect.master") }
                step.master = master
            }
            for (group, status) in (spec["status"] as? [String: Any]) ?? [:] {
                guard let text = status as? String, ActivationStatus(rawValue: text) != nil else {
                    throw fail("\(place).expect.status.\(group): not a status (\(status))")
                }
                step.status[group] = text
            }
            step.isolated = spec["isolated"] as? Bool
        }
        return step
    }
}
