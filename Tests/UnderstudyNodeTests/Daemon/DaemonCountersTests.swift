import Testing
import UnderstudyEngine
import UnderstudyModel

@testable import UnderstudyNode

/// What the daemon counts for GET /metrics and clpperfc (DaemonCounters.swift).
@Suite("Daemon counters")
struct DaemonCountersTests {
    func run(_ id: UInt64, _ group: String, _ event: ScriptEvent, _ operation: ResourceOperation = .start) -> ResourceRun {
        ResourceRun(
            id: id, group: group, resource: "r\(id)", operation: operation,
            context: ScriptContext(event: event, isHomeServer: false, priority: 2, groupName: group, resourceName: "r\(id)"))
    }

    @Test("a failover opens at its first start order and ends Online: counted once, its duration kept")
    func failoverDuration() {
        var counters = DaemonCounters()
        counters.runStarted(run(1, "g", .failover), now: .seconds(10))
        counters.runStarted(run(2, "g", .failover), now: .seconds(11))
        counters.runFinished(group: "g", status: .onlinePending, now: .seconds(12))
        counters.runFinished(group: "g", status: .online, now: .milliseconds(13_500))
        // A plain start and a stop are no failovers.
        counters.runStarted(run(3, "h", .start), now: .seconds(20))
        counters.runStarted(run(4, "h", .failover, .stop), now: .seconds(20))
        let line = counters.line(fences: ["g": 2], stalls: 3, now: .seconds(30))
        #expect(line.failovers == ["g": 1])
        #expect(line.lastFailoverSeconds == ["g": 3.5])
        #expect(line.fences == ["g": 2] && line.stalls == 3)
    }

    @Test("a failover that ends in failure keeps no duration; the next one is counted again")
    func failedFailover() {
        var counters = DaemonCounters()
        counters.runStarted(run(1, "g", .failover), now: .seconds(1))
        counters.runFinished(group: "g", status: .onlineFailure, now: .seconds(2))
        counters.runStarted(run(2, "g", .failover), now: .seconds(5))
        counters.runFinished(group: "g", status: .online, now: .seconds(6))
        let line = counters.line(fences: [:], stalls: 0, now: .seconds(7))
        #expect(line.failovers == ["g": 2])
        #expect(line.lastFailoverSeconds == ["g": 1])
    }

    @Test("events by catalogue entry; recovery steps by kind")
    func events() {
        var counters = DaemonCounters()
        for kind in [EventKind.groupReactivating, .resourceReactivating, .failoverRequested, .finalActionNone, .serverDown, .serverDown] {
            counters.logged(LogEntry(kind, "x"))
        }
        let line = counters.line(fences: [:], stalls: 0, now: .zero)
        #expect(line.recoveryActions == ["restart": 2, "failover": 1, "final_action": 1])
        let down = line.events.first { $0.module == EventKind.serverDown.module && $0.id == EventKind.serverDown.id }
        #expect(down?.count == 2 && down?.level == EventKind.serverDown.level.rawValue)
        #expect(line.events.count == 5)
    }

    @Test("heartbeats per peer and path: count, age, echo delay; check durations in whole milliseconds")
    func heartbeatsAndChecks() {
        var counters = DaemonCounters()
        counters.heard("s2", path: "lan1", at: .seconds(10), echoed: .milliseconds(9_970))
        counters.heard("s2", path: "lan1", at: .seconds(11), echoed: nil)
        counters.heard("s3", path: "lan1", at: .seconds(11), echoed: .seconds(12))
        let line = counters.line(fences: [:], stalls: 0, now: .milliseconds(11_250))
        let s2 = line.paths.first { $0.server == "s2" }
        #expect(s2?.heartbeats == 2 && s2?.lastHeardSeconds == 0.25)
        #expect(s2?.echoDelaySeconds.map { abs($0 - 0.03) < 1e-9 } == true, "the echo of the newest that had one")
        #expect(line.paths.first { $0.server == "s3" }?.echoDelaySeconds == nil, "an echo from the future is ignored")
        counters.checked([MonitorCheck(monitor: "m1", run: 1, result: .normal, elapsed: .microseconds(52_700))])
        #expect(counters.lastCheckMillis("m1") == 52)
        #expect(counters.lastCheckMillis("m2") == nil)
        counters.alertDestinationFailed("mail")
        #expect(counters.line(fences: [:], stalls: 0, now: .zero).alertDestinationFailures == ["mail": 1])
    }
}
