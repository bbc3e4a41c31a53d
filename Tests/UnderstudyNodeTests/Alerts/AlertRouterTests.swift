import Foundation
import Synchronization
import Testing
import UnderstudyEngine
import UnderstudyModel
import UnderstudyTestSupport

@testable import UnderstudyNode

/// A destination under the test's control: records what it took, fails while told to, and
/// can hold an attempt until released.
final class ScriptedDestination: AlertDestination {
    let name: String
    private let state = Mutex<(taken: [AlertEvent], attempts: Int, failuresLeft: Int, holding: Bool)>(([], 0, 0, false))

    init(name: String) { self.name = name }

    var taken: [AlertEvent] { state.withLock { $0.taken } }
    var attempts: Int { state.withLock { $0.attempts } }
    func fail(next count: Int) { state.withLock { $0.failuresLeft = count } }
    func hold(_ holding: Bool) { state.withLock { $0.holding = holding } }

    func deliver(_ alert: AlertEvent) async throws {
        state.withLock { $0.attempts += 1 }
        // Bounded: a held attempt waits at most 10 s.
        for _ in 0..<1000 where state.withLock({ $0.holding }) { try await Task.sleep(for: .milliseconds(10)) }
        let fails = state.withLock { value -> Bool in
            if value.failuresLeft > 0 {
                value.failuresLeft -= 1
                return true
            }
            value.taken.append(alert)
            return false
        }
        if fails { throw AlertDeliveryError("\(name) refused") }
    }
}

@Suite("Alert router")
struct AlertRouterTests {
    static func alert(_ module: String = "rc", _ id: Int = 12, _ level: LogLevel = .error, message: String = "m") -> AlertEvent {
        AlertEvent(cluster: "c1", server: "node1", time: Date(), level: level, module: module, eventID: id, message: message)
    }

    static func settings(_ names: [String], routes: [AlertRoute]? = nil, retry: AlertRetry = AlertRetry(), queue: Int = 100)
        -> AlertSettings
    {
        AlertSettings(
            destinations: names.map { AlertDestinationConfig(name: $0, kind: .command(CommandDestinationSettings(path: "/bin/true"))) },
            routes: routes ?? [AlertRoute(match: AlertMatch(), to: names)], retry: retry, queue: queue)
    }

    static func entries(_ settings: AlertSettings, _ destinations: [ScriptedDestination]) -> [AlertRouter.Entry] {
        zip(settings.destinations, destinations).map { AlertRouter.Entry(config: $0, destination: $1) }
    }

    func line(_ router: AlertRouter, _ name: String) -> ClusterStatusSnapshot.AlertDestinationLine? {
        router.lines.first { $0.name == name }
    }

    @Test("first matching route wins; unrouted events go nowhere")
    func routing() async throws {
        let mail = ScriptedDestination(name: "mail")
        let log = ScriptedDestination(name: "log")
        let settings = Self.settings(
            ["mail", "log"],
            routes: [
                AlertRoute(match: AlertMatch(module: "rm", id: 9), to: ["mail", "log"]),
                AlertRoute(match: AlertMatch(level: .warning), to: ["log"]),
            ])
        let router = AlertRouter()
        router.configure(settings, destinations: Self.entries(settings, [mail, log]))
        await router.start()
        router.submit(Self.alert("rm", 9))
        router.submit(Self.alert("nm", 2, .warning))
        router.submit(Self.alert("nm", 1, .info))
        #expect(await eventually { log.taken.count == 2 && mail.taken.count == 1 })
        await router.drain(within: .seconds(2))
        #expect(mail.taken.map(\.eventID) == [9])
        #expect(log.taken.map(\.eventID) == [9, 2])
        #expect(line(router, "log")?.delivered == 2)
        await router.stop()
    }

    @Test("a full queue drops its oldest alerts and counts them")
    func queueBound() async throws {
        let slow = ScriptedDestination(name: "slow")
        let settings = Self.settings(["slow"], queue: 3)
        let router = AlertRouter()
        router.configure(settings, destinations: Self.entries(settings, [slow]))
        await router.start()
        slow.hold(true)
        router.submit(Self.alert(message: "0"))
        #expect(await eventually { slow.attempts == 1 })
        for index in 1...9 { router.submit(Self.alert(message: String(index))) }
        #expect(await eventually { line(router, "slow")?.dropped == 6 })
        #expect(line(router, "slow")?.queued == 3)
        slow.hold(false)
        #expect(await eventually { slow.taken.count == 4 })
        // The oldest were dropped: 1–6; 0 was already being delivered.
        #expect(slow.taken.map(\.message) == ["0", "7", "8", "9"])
        await router.stop()
    }

    @Test("a failed attempt is retried after the backoff; success needs no notice")
    func retries() async throws {
        let flaky = ScriptedDestination(name: "flaky")
        let settings = Self.settings(["flaky"], retry: AlertRetry(attempts: 3, backoff: .milliseconds(20), maxBackoff: .milliseconds(40)))
        let router = AlertRouter()
        router.configure(settings, destinations: Self.entries(settings, [flaky]))
        await router.start()
        flaky.fail(next: 2)
        let started = ContinuousClock.now
        router.submit(Self.alert())
        #expect(await eventually { flaky.taken.count == 1 })
        // Two waits: 20 ms, then 40 ms.
        #expect(started.duration(to: .now) >= .milliseconds(60))
        #expect(flaky.attempts == 3)
        let counters = try #require(line(router, "flaky"))
        #expect(counters.retried == 2 && counters.failed == 0 && counters.delivered == 1 && !counters.failing)
        await router.stop()
    }

    @Test("failing is said once, never fed its own alerts, and recovery once")
    func failingAndRecovery() async throws {
        let broken = ScriptedDestination(name: "broken")
        let settings = Self.settings(["broken"], retry: AlertRetry(attempts: 2, backoff: .milliseconds(5), maxBackoff: .milliseconds(5)))
        let router = AlertRouter()
        router.configure(settings, destinations: Self.entries(settings, [broken]))
        await router.start()
        let notices = Mutex<[AlertRouter.Notice]>([])
        let listener = Task {
            for await notice in router.notices {
                notices.withLock { $0.append(notice) }
                // What the daemon does with a notice: an alert of module `alert`, routed.
                router.submit(Self.alert("alert", 1, .error, message: "about broken"))
            }
        }
        broken.fail(next: 1000)
        for index in 0..<5 { router.submit(Self.alert(message: String(index))) }
        #expect(await eventually { line(router, "broken")?.failed == 5 })
        let failing = notices.withLock { $0 }
        #expect(failing.count == 1)
        #expect(failing.first == .failing(destination: "broken", type: "command", reason: "broken refused"))
        #expect(line(router, "broken")?.failing == true)
        // The alert about the failure was not queued for the failing destination.
        #expect(broken.attempts == 10)
        broken.fail(next: 0)
        router.submit(Self.alert(message: "works"))
        #expect(await eventually { notices.withLock { $0.count } == 2 })
        #expect(notices.withLock { $0.last } == .recovered(destination: "broken", type: "command"))
        #expect(await eventually { broken.taken.count == 2 })
        // The recovery alert goes to the destination that works again.
        #expect(broken.taken.map(\.module) == ["rc", "alert"])
        #expect(line(router, "broken")?.failing == false && line(router, "broken")?.lastError == nil)
        await router.stop()
        listener.cancel()
    }

    @Test("new settings keep the queues and counters of destinations that stay")
    func reconfigure() async throws {
        let first = ScriptedDestination(name: "a")
        let second = ScriptedDestination(name: "b")
        let settings = Self.settings(["a"])
        let router = AlertRouter()
        router.configure(settings, destinations: Self.entries(settings, [first]))
        await router.start()
        router.submit(Self.alert())
        #expect(await eventually { first.taken.count == 1 })
        let both = Self.settings(["a", "b"])
        let replacement = ScriptedDestination(name: "a")
        router.configure(both, destinations: Self.entries(both, [replacement, second]))
        router.submit(Self.alert())
        #expect(await eventually { replacement.taken.count == 1 && second.taken.count == 1 })
        #expect(line(router, "a")?.delivered == 2)
        #expect(router.lines.map(\.name) == ["a", "b"])
        let none = Self.settings([])
        router.configure(none, destinations: [])
        #expect(await eventually { router.lines.isEmpty })
        await router.stop()
    }
}
