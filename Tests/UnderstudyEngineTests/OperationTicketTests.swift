import Testing
import UnderstudyEngine
import UnderstudyModel

/// How a command follows its group operation through status snapshots (OperationTicket).
@Suite("OperationTicket.verdict")
struct OperationTicketTests {
    /// A real snapshot of a founded two-server cluster, its group line set as given.
    static func snapshot(status: ActivationStatus, current: ServerName?, assignedTo: ServerName?, operation: UInt64) throws
        -> (ClusterStatusSnapshot, OperationTicket)
    {
        let config = try ConfigLoader.load(
            yaml: """
                cluster: {name: c, secret-file: /etc/understudy/test.key, timing: {heartbeat-interval: 500ms, heartbeat-timeout: 3s, sync-wait: 0s}}
                servers: [{name: s1}, {name: s2}]
                heartbeats: [{name: lan1, type: lanhb, addresses: {s1: 10.0.0.1, s2: 10.0.0.2}}]
                groups: [{name: db, servers: [s2, s1], startup: manual, resources: [{name: app, type: exec, start: /bin/true}]}]
                """, sourcePath: "ticket.yaml")
        var engine = ServerEngine(config: config, me: "s1", bootID: 1, configHash: "h")
        _ = engine.startService(now: .zero)
        for tenth in 1...30 { _ = engine.handle(.tick, now: .milliseconds(100 * tenth)) }
        var snapshot = engine.snapshot(now: .seconds(3))
        let epoch = try #require(snapshot.epoch, "s1 founded the cluster")
        let index = try #require(snapshot.groups.firstIndex { $0.name == "db" })
        snapshot.groups[index].status = status
        snapshot.groups[index].current = current
        snapshot.groups[index].assignedTo = assignedTo
        snapshot.groups[index].wanted = true
        snapshot.groups[index].operation = operation
        snapshot.directoryVersion = operation
        let ticket = OperationTicket(
            kind: .start, group: "db", target: "s1", epoch: epoch, version: operation, founding: snapshot.directoryFounding)
        return (snapshot, ticket)
    }

    /// Simulator seed 24613293: the command waited until its timeout.
    @Test("a start whose group went on to another server and failed to stop where it ran has failed")
    func startThenFailedStopElsewhere() throws {
        let (snapshot, ticket) = try Self.snapshot(status: .offlineFailure, current: "s1", assignedTo: "s2", operation: 8)
        guard case .failed(let why) = ticket.verdict(in: snapshot) else {
            Issue.record("expected failed, got \(ticket.verdict(in: snapshot))")
            return
        }
        #expect(why.contains("failed to stop on s1"), "\(why)")
    }

    @Test("a start of a group that failed where it is assigned still waits: the start there may come")
    func failedWhereAssignedWaits() throws {
        let (snapshot, ticket) = try Self.snapshot(status: .offlineFailure, current: "s1", assignedTo: "s1", operation: 8)
        #expect(ticket.verdict(in: snapshot) == .pending)
        let (online, onlineTicket) = try Self.snapshot(status: .online, current: "s1", assignedTo: "s1", operation: 8)
        #expect(onlineTicket.verdict(in: online) == .done(nil))
    }
}
