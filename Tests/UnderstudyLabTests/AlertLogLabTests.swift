import Foundation
import Testing
import UnderstudyEngine
import UnderstudyLab
import UnderstudyModel
import UnderstudyTestSupport

/// One alert log for the cluster: three servers in namespaces; a server cut off by a real
/// partition writes alerts; after the heal every server shows them once, in order; a kill -9
/// while a server takes them in loses none; a server that is down later still shows.
@Suite("Lab: one alert log for the cluster", .serialized, .requires(labPrerequisite))
struct AlertLogLabTests {
    /// `understudy alerts --json -n 5000` on `server`: the messages of `server`'s view, in order.
    static func alerts(_ lab: Lab, on server: String, origin: String? = nil) throws -> (messages: [String], stderr: String) {
        let state = lab.spec.stateDirectory(of: server)
        let outcome = try lab.exec(
            in: server, [labBinary, "alerts", "--json", "-n", "5000", "--state-dir", state] + (origin.map { ["-h", $0] } ?? []),
            timeout: .seconds(20))
        try #require(outcome.succeeded, "\(outcome)")
        var messages: [String] = []
        var times: [String] = []
        var stderr = ""
        for line in outcome.output.split(separator: "\n") {
            guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                let message = object["message"] as? String, let time = object["time"] as? String
            else {
                stderr += line + "\n"
                continue
            }
            messages.append("\(object["server"] as? String ?? "?"): \(message)")
            times.append(time)
        }
        #expect(times == times.sorted(), "not in time order on \(server)")
        return (messages, stderr)
    }

    static func logcmd(_ lab: Lab, on server: String, _ prefix: String, count: Int) throws {
        let state = lab.spec.stateDirectory(of: server)
        let script =
            "for i in $(seq 1 \(count)); do \(labBinary) clplogcmd -m \"\(prefix) $i\" --state-dir \(state) >/dev/null || exit 1; done"
        let outcome = try lab.exec(in: server, ["sh", "-c", script], timeout: .seconds(120))
        try #require(outcome.succeeded, "\(outcome)")
    }

    /// Messages of `prefix` 1…count, each exactly once and in order, in `messages`.
    static func holdsAll(_ messages: [String], server: String, prefix: String, count: Int) -> Bool {
        messages.filter { $0.hasPrefix("\(server): \(prefix) ") } == (1...count).map { "\(server): \(prefix) \($0)" }
    }

    static func lines(inStoreOf server: String, origin: String, _ lab: Lab) -> Int {
        let path = lab.spec.stateDirectory(of: server) + "/alerts/\(origin).log"
        return ((try? String(contentsOfFile: path, encoding: .utf8)) ?? "").split(separator: "\n").count
    }

    @Test(
        "node3 cut off writes alerts; after the heal node1 and node2 show them once, in order; kill -9 of node1 while it takes them in loses none; node3 down later still shows"
    )
    func cutOffHealKillAndDown() async throws {
        try await withLab(labSpec(servers: 3)) { lab in
            _ = try await lab.waitUntil("node1", sees: "node3", .online, timeout: .seconds(20))
            // Written while connected: every server has it within the push delay.
            try Self.logcmd(lab, on: "node2", "connected", count: 3)
            let reached1 = try await eventually(within: .seconds(15), every: .milliseconds(500)) {
                let one = (try? Self.alerts(lab, on: "node1").messages) ?? []
                let three = (try? Self.alerts(lab, on: "node3").messages) ?? []
                return Self.holdsAll(one, server: "node2", prefix: "connected", count: 3)
                    && Self.holdsAll(three, server: "node2", prefix: "connected", count: 3)
            }
            try #require(reached1, "node1 and node3 show node2's entries")

            // node3 is cut off; it writes on its side, node1 on the other.
            try lab.partition(["node3"], ["node1", "node2"])
            _ = try await lab.waitUntil("node1", sees: "node3", .offline, timeout: .seconds(20))
            try Self.logcmd(lab, on: "node3", "cut-off", count: 20)
            try Self.logcmd(lab, on: "node1", "majority", count: 5)
            let duringCut = try Self.alerts(lab, on: "node2")
            #expect(!duringCut.messages.contains { $0.hasPrefix("node3: cut-off") }, "nothing crosses the partition")
            #expect(duringCut.stderr.contains("node3"), "node3 is named as not connected: \(duringCut.stderr)")

            try lab.heal()
            let reached2 = try await eventually(within: .seconds(40), every: .milliseconds(500)) {
                for server in ["node1", "node2"] {
                    let view = (try? Self.alerts(lab, on: server).messages) ?? []
                    guard Self.holdsAll(view, server: "node3", prefix: "cut-off", count: 20) else { return false }
                }
                let three = (try? Self.alerts(lab, on: "node3").messages) ?? []
                return Self.holdsAll(three, server: "node1", prefix: "majority", count: 5)
            }
            try #require(reached2, "every server shows the other side's entries")
            // node3's own partition events came along too (it lost the majority).
            let healed = try Self.alerts(lab, on: "node1")
            #expect(healed.messages.contains { $0.hasPrefix("node3: ") && $0.contains("lost the majority") }, "\(healed.messages.suffix(40))")
            #expect(Set(healed.messages.filter { $0.contains(": cut-off ") }).count == 20)

            // node3 cut off again, with more than one answer's worth (500) of entries; node1 is
            // killed as soon as it has taken in the first part after the heal.
            try lab.partition(["node3"], ["node1", "node2"])
            _ = try await lab.waitUntil("node1", sees: "node3", .offline, timeout: .seconds(20))
            try Self.logcmd(lab, on: "node3", "burst", count: 600)
            let before = Self.lines(inStoreOf: "node1", origin: "node3", lab)
            try lab.heal()
            let deadline = ContinuousClock.now + .seconds(40)
            var seen = before
            while ContinuousClock.now < deadline {
                seen = Self.lines(inStoreOf: "node1", origin: "node3", lab)
                if seen > before { break }
                try await Task.sleep(for: .milliseconds(5))
            }
            try lab.kill9("node1")
            #expect(seen > before, "node1 took in node3's entries before it was killed")
            try lab.startDaemon("node1")
            try await lab.waitForSocket("node1")
            let reached3 = try await eventually(within: .seconds(60), every: .milliseconds(500)) {
                for server in ["node1", "node2"] {
                    let view = (try? Self.alerts(lab, on: server, origin: "node3").messages) ?? []
                    guard Self.holdsAll(view, server: "node3", prefix: "burst", count: 600) else { return false }
                }
                return true
            }
            try #require(reached3, "node1 and node2 hold all 600 once")
            let stored = try String(contentsOfFile: lab.spec.stateDirectory(of: "node1") + "/alerts/node3.log", encoding: .utf8)
            let burst = stored.split(separator: "\n").filter { $0.contains(" burst ") }
            #expect(burst.count == 600, "each entry stored once on node1 (killed at \(seen - before) of 600)")

            // node3 goes down for good: the others still show what it wrote, and name it.
            try lab.kill9("node3")
            _ = try await lab.waitUntil("node2", sees: "node3", .offline, timeout: .seconds(20))
            let afterDown = try Self.alerts(lab, on: "node2", origin: "node3")
            #expect(Self.holdsAll(afterDown.messages, server: "node3", prefix: "cut-off", count: 20))
            #expect(afterDown.stderr.contains("node3"), "\(afterDown.stderr)")
        }
    }
}
