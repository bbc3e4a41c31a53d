import Testing
import UnderstudyEngine
import UnderstudyModel
import UnderstudySimulator

/// Scenarios 3–6: server crash and failover, planned operations, failback, exclusivity.
@Suite("Failover, operations, failback, exclusivity")
struct FailoverAndOperationTests {
    /// Heartbeats of servers booted at t=0 leave at 1 ms + k·interval. Crashing 2 ms after
    /// one of them means the peers heard the victim at `crashAt` at the latest: no peer may
    /// act on the loss before `crashAt + timeout`.
    static let crashAt: Duration = .milliseconds(10_003)

    // MARK: 3. Crash → failover after the heartbeat timeout

    // The crash table is data: Scenarios/crash-*.yaml.

    @Test("failover: manual keeps the group offline after its server crashed")
    func manualFailover() {
        let config = Cfg.cluster(groups: [
            Cfg.group("g", servers: ["s1", "s2", "s3"], failover: .manual),
            Cfg.group("auto", servers: ["s1", "s3", "s2"]),
        ])
        let world = SimulatedCluster.make(config)
        world.run(until: Self.crashAt)
        world.crash("s1")
        world.run(for: .seconds(10))
        #expect(world.where_("g").isEmpty)
        #expect(world.runs(group: "g", since: Self.crashAt).isEmpty)
        #expect(world.where_("auto") == ["s3:Online"])
        // An operator can still start it.
        #expect(world.command(.startGroup("g", on: nil), at: "s2").code == .success)
        world.run(for: .seconds(2))
        #expect(world.where_("g") == ["s2:Online"])
        expectEnv(world.runs(group: "g", .start, since: Self.crashAt), ["CLP_EVENT": "START", "CLP_PRIORITY": "2"])
        #expect(world.violations.isEmpty)
    }

    // MARK: 4. Planned operations

    struct MoveCase: Sendable, CustomTestStringConvertible {
        var name: String
        var policy: [ServerName]
        var destination: ServerName?
        var commandAt: ServerName
        var expectedTarget: ServerName
        /// The group runs on the master (s1) when moved.
        var fromMaster: Bool { policy[0] == "s1" }
        var testDescription: String { name }
    }

    static let moveCases: [MoveCase] = [
        MoveCase(
            name: "s2 → s3, asked at the destination", policy: ["s2", "s1", "s3"], destination: "s3", commandAt: "s3", expectedTarget: "s3"),
        MoveCase(
            name: "s2 → next in policy (the master s1), asked at s2", policy: ["s2", "s1", "s3"], destination: nil, commandAt: "s2",
            expectedTarget: "s1"),
        MoveCase(
            name: "s3 → next in its policy (s2), asked at s1", policy: ["s3", "s2", "s1"], destination: nil, commandAt: "s1",
            expectedTarget: "s2"),
        MoveCase(
            name: "master s1 → s3, asked at s2", policy: ["s1", "s2", "s3"], destination: "s3", commandAt: "s2", expectedTarget: "s3"),
        MoveCase(
            name: "master s1 → next in policy, asked at s1", policy: ["s1", "s2", "s3"], destination: nil, commandAt: "s1",
            expectedTarget: "s2"),
    ]

    @Test("move: stop on the source (GROUPMOVE, START), then start on the destination (START)", arguments: moveCases)
    func move(_ row: MoveCase) {
        let config = Cfg.cluster(groups: [Cfg.group("g", servers: row.policy, resources: [Cfg.resource("ip", .fip), Cfg.exec("app")])])
        let world = SimulatedCluster.make(config)
        world.run(until: .seconds(8))
        let source = row.policy[0]
        #expect(world.where_("g") == ["\(source):Online"])
        let t = world.now
        let result = world.command(.moveGroup("g", to: row.destination), at: row.commandAt)
        #expect(result.code == .success, "\(result.message)")
        world.run(for: .seconds(4))
        let priority = row.policy.firstIndex(of: row.expectedTarget)! + 1
        #expect(world.where_("g") == ["\(row.expectedTarget):Online"])
        #expect(
            world.steps(group: "g", since: t) == [
                "\(source) stop g/app", "\(source) stop g/ip", "\(row.expectedTarget) start g/ip", "\(row.expectedTarget) start g/app",
            ])
        let stops = world.runs(group: "g", .stop, since: t)
        let starts = world.runs(group: "g", .start, since: t)
        expectEnv(stops, ["CLP_FACTOR": "GROUPMOVE", "CLP_EVENT": "START", "CLP_SERVER": "HOME", "CLP_PRIORITY": "1"])
        expectEnv(
            starts,
            ["CLP_EVENT": "START", "CLP_SERVER": priority == 1 ? "HOME" : "OTHER", "CLP_PRIORITY": "\(priority)"])
        #expect(starts.allSatisfy { $0.run.env["CLP_FACTOR"] == nil })
        // The destination starts only after the source finished stopping.
        if let firstStart = starts.first, let lastStop = stops.last {
            #expect(firstStart.at >= lastStop.at + Timing.script)
        }
        #expect(world.violations.isEmpty)
    }

    @Test("stop: CLP_FACTOR=GROUPSTOP, the group stays offline")
    func stop() {
        let config = Cfg.cluster(groups: [Cfg.group("g", servers: ["s2", "s1", "s3"])])
        let world = SimulatedCluster.make(config)
        world.run(until: .seconds(8))
        let t = world.now
        #expect(world.command(.stopGroup("g"), at: "s3").code == .success)
        world.run(for: .seconds(10))
        #expect(world.where_("g").isEmpty)
        #expect(world.steps(group: "g", since: t) == ["s2 stop g/g-app"])
        expectEnv(
            world.runs(group: "g", since: t), ["CLP_FACTOR": "GROUPSTOP", "CLP_EVENT": "START", "CLP_SERVER": "HOME", "CLP_PRIORITY": "1"])
        // Stopping an offline group again is a no-op success.
        #expect(world.command(.stopGroup("g"), at: "s1").code == .success)
        world.run(for: .seconds(2))
        #expect(world.runs(group: "g", since: t).count == 1)
    }

    struct CommandCase: Sendable, CustomTestStringConvertible {
        enum Setup: Sendable { case online, justMoved, justStarted, justStopped }
        var name: String
        var setup: Setup
        var command: ClusterCommand
        var expectedCode: CommandCode
        var testDescription: String { name }
    }

    static let commandCases: [CommandCase] = [
        CommandCase(name: "stop while a move is in progress → 4", setup: .justMoved, command: .stopGroup("g"), expectedCode: .inTransition),
        CommandCase(
            name: "second move while a move is in progress → 4", setup: .justMoved, command: .moveGroup("g", to: "s3"),
            expectedCode: .inTransition),
        CommandCase(
            name: "second move to the same destination while a move is in progress → 4", setup: .justMoved,
            command: .moveGroup("g", to: "s1"), expectedCode: .inTransition),
        CommandCase(
            name: "start while a move is in progress → 4", setup: .justMoved, command: .startGroup("g", on: "s3"),
            expectedCode: .inTransition),
        CommandCase(
            name: "stop while starting (Online Pending) → 4", setup: .justStarted, command: .stopGroup("g"), expectedCode: .inTransition),
        CommandCase(
            name: "move while starting (Online Pending) → 4", setup: .justStarted, command: .moveGroup("g", to: "s3"),
            expectedCode: .inTransition),
        CommandCase(
            name: "start while stopping (Offline Pending) → 4", setup: .justStopped, command: .startGroup("g", on: nil),
            expectedCode: .inTransition),
        CommandCase(name: "start of an online group → 1", setup: .online, command: .startGroup("g", on: nil), expectedCode: .failed),
        CommandCase(
            name: "start of an online group on another server → 1", setup: .online, command: .startGroup("g", on: "s3"),
            expectedCode: .failed),
        CommandCase(name: "move to the server it runs on → 1", setup: .online, command: .moveGroup("g", to: "s2"), expectedCode: .failed),
        CommandCase(name: "unknown group → 2", setup: .online, command: .stopGroup("nope"), expectedCode: .badUsage),
    ]

    /// A refused command changes nothing: the world ends exactly as it would without it.
    @Test("commands on a group in transition are refused and change nothing", arguments: commandCases)
    func refusedCommands(_ row: CommandCase) {
        func scenario(withCommand: Bool) -> (SimulatedCluster, CommandResult?) {
            // The group runs on s2, a non-master.
            let config = Cfg.cluster(groups: [
                Cfg.group("g", servers: ["s2", "s1", "s3"], startup: row.setup == .justStarted ? .manual : .auto)
            ])
            let world = SimulatedCluster.make(config)
            world.run(until: .seconds(8))
            switch row.setup {
            case .online: break
            case .justMoved: #expect(world.command(.moveGroup("g", to: "s1"), at: "s1").code == .success)
            case .justStarted: #expect(world.command(.startGroup("g", on: "s2"), at: "s1").code == .success)
            case .justStopped: #expect(world.command(.stopGroup("g"), at: "s1").code == .success)
            }
            world.run(for: .milliseconds(20))  // scripts take 50 ms: still in transition
            let result = withCommand ? world.command(row.command, at: "s3") : nil
            world.run(for: .seconds(6))
            return (world, result)
        }
        let (world, result) = scenario(withCommand: true)
        let (reference, _) = scenario(withCommand: false)
        #expect(result?.code == row.expectedCode, "\(result?.message ?? "")")
        #expect(result?.code.rawValue == row.expectedCode.rawValue)
        #expect(world.where_("g") == reference.where_("g"))
        #expect(world.steps() == reference.steps())
        #expect(world.violations.isEmpty)
    }

    // MARK: 5. Failback

    // Failback is data: Scenarios/failback-*.yaml.

    // MARK: 6. Exclusivity

    struct ExclusiveCase: Sendable, CustomTestStringConvertible {
        var name: String
        var kind: GroupConfig.Exclusive
        /// Policy of group b (a runs on s1 with policy [s1, s2, s3]; b starts on s2).
        var bPolicy: [ServerName]
        /// Where b must be after s2 crashed (nil = nowhere).
        var bAfter: ServerName?
        var bPriority: Int?
        var testDescription: String { name }
    }

    static let exclusiveCases: [ExclusiveCase] = [
        ExclusiveCase(
            name: "complete, only s1 left in b's policy: failover refused", kind: .complete, bPolicy: ["s2", "s1"], bAfter: nil,
            bPriority: nil),
        ExclusiveCase(
            name: "complete, s3 free: b skips s1 and goes to s3", kind: .complete, bPolicy: ["s2", "s1", "s3"], bAfter: "s3", bPriority: 3),
        ExclusiveCase(
            name: "normal, s3 free: b prefers the free s3 over s1", kind: .normal, bPolicy: ["s2", "s1", "s3"], bAfter: "s3", bPriority: 3),
        ExclusiveCase(name: "normal, no free server: b shares s1", kind: .normal, bPolicy: ["s2", "s1"], bAfter: "s1", bPriority: 2),
        ExclusiveCase(
            name: "none: b simply goes to the next server s1", kind: .none, bPolicy: ["s2", "s1", "s3"], bAfter: "s1", bPriority: 2),
    ]

    @Test("exclusive groups after a crash", arguments: exclusiveCases)
    func exclusivity(_ row: ExclusiveCase) {
        let config = Cfg.cluster(groups: [
            Cfg.group("a", servers: ["s1", "s2", "s3"], exclusive: row.kind),
            Cfg.group("b", servers: row.bPolicy, exclusive: row.kind),
        ])
        let world = SimulatedCluster.make(config)
        world.run(until: Self.crashAt)
        #expect(world.where_("a") == ["s1:Online"])
        #expect(world.where_("b") == ["s2:Online"])
        world.crash("s2")
        world.run(for: .seconds(10))
        #expect(world.where_("a") == ["s1:Online"])
        if let target = row.bAfter, let priority = row.bPriority {
            #expect(world.where_("b") == ["\(target):Online"], "\(world.recentTrace)")
            expectEnv(world.runs(group: "b", .start, since: Self.crashAt), ["CLP_EVENT": "FAILOVER", "CLP_PRIORITY": "\(priority)"])
        } else {
            #expect(world.where_("b").isEmpty)
            #expect(world.runs(group: "b", since: Self.crashAt).isEmpty)
        }
        if row.kind == .complete {
            // Never two completely exclusive groups on one server.
            for server in ["s1", "s3"] {
                let here = ["a", "b"].filter { world.placement(of: $0)[server] != nil }
                #expect(here.count <= 1)
            }
        }
        #expect(world.violations.isEmpty)
    }

    @Test("complete exclusivity refuses an operator start or move onto an occupied server")
    func completeRefusesOperator() {
        let config = Cfg.cluster(groups: [
            Cfg.group("a", servers: ["s1", "s2", "s3"], exclusive: .complete),
            Cfg.group("b", servers: ["s2", "s1", "s3"], exclusive: .complete),
        ])
        let world = SimulatedCluster.make(config)
        world.run(until: .seconds(8))
        #expect(world.command(.moveGroup("b", to: "s1"), at: "s1").code == .failed)
        world.run(for: .seconds(3))
        #expect(world.where_("a") == ["s1:Online"])
        #expect(world.where_("b") == ["s2:Online"])
        #expect(world.command(.moveGroup("b", to: "s3"), at: "s1").code == .success)
        world.run(for: .seconds(3))
        #expect(world.where_("b") == ["s3:Online"])
    }

    /// Found by the simulator's resource-command fault: once clprsc -t had stopped every
    /// resource of a group, the group held nothing, so clprsc -s answered "not online on any
    /// server" and clpgrp -s / -t "is starting": nothing could bring it back or stop it.
    @Test("clprsc -t of a group's only resource: clprsc -s starts it again, from any server; clpgrp -t stops the group")
    func resourceStoppedAndStartedAgain() {
        let world = SimulatedCluster.make(Cfg.cluster(groups: [Cfg.group("g", servers: ["s1", "s2", "s3"])]))
        world.run(until: .seconds(8))
        #expect(world.where_("g") == ["s1:Online"])
        #expect(world.command(.stopResource("g-app"), at: "s3").code == .success)
        world.run(for: .seconds(2))
        #expect(world.where_("g").isEmpty && world.engine("s1")?.isStoppedByOperator("g") == true)
        // Not re-placed by anyone while the operator has it stopped.
        world.run(for: .seconds(10))
        #expect(world.where_("g").isEmpty)
        let start = world.command(.startGroup("g", on: nil), at: "s2")
        #expect(start.code == .failed && start.message.contains("clprsc -s"), "\(start)")
        #expect(world.command(.startResource("g-app"), at: "s2").code == .success)
        world.run(for: .seconds(2))
        #expect(world.where_("g") == ["s1:Online"])
        #expect(world.engine("s1")?.isStoppedByOperator("g") == false)

        #expect(world.command(.stopResource("g-app"), at: "s1").code == .success)
        world.run(for: .seconds(2))
        #expect(world.command(.stopGroup("g"), at: "s3").code == .success)
        world.run(for: .seconds(2))
        #expect(world.where_("g").isEmpty)
        #expect(world.command(.startGroup("g", on: "s2"), at: "s3").code == .success)
        world.run(for: .seconds(3))
        #expect(world.where_("g") == ["s2:Online"])
        #expect(world.violations.isEmpty, "\(world.violations)")
    }
}
