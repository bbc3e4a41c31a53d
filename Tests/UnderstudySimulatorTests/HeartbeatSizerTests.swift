import Testing
import UnderstudyEngine
import UnderstudyModel

@testable import UnderstudySimulator

/// The sizer adds up a heartbeat's size from its parts and reuses the sizes of an unchanged
/// directory and unchanged reports: it must give exactly the size of the full encoding.
@Suite("Heartbeat sizer")
struct HeartbeatSizerTests {
    static func heartbeat(directory: Directory?, groups: [GroupName: GroupReport], monitors: [String: MonitorStatus]? = nil) -> Heartbeat {
        Heartbeat(
            sender: "s1", bootID: 7, run: 2, sentAt: .milliseconds(123_456), configHash: "abc", priority: 0, syncDone: true,
            hears: ["s2": HeardHeartbeat(bootID: 9, sentAt: .milliseconds(123_000), upSince: .seconds(3))], view: ["s1", "s2"],
            epoch: Epoch(term: 4, master: "s1"), appliedVersion: 17, groups: groups, monitors: monitors, directory: directory)
    }

    @Test("the sum of the parts is the full encoding, with and without a directory, reused or not")
    func partsAddUp() {
        var entry = DirectoryEntry(wanted: true, owner: "s1", generation: 17)
        entry.failedOn = ["s2"]
        var directory = Directory(epoch: Epoch(term: 4, master: "s1"), version: 17, startupDone: true, entries: ["web": entry])
        let online = ["web": GroupReport(status: .online, resources: ["web-ip": .online, "web-app": .online], generation: 17)]
        var sizer = HeartbeatSizer()
        let cases = [
            Self.heartbeat(directory: nil, groups: [:]),
            Self.heartbeat(directory: nil, groups: online),
            Self.heartbeat(directory: directory, groups: online),
            Self.heartbeat(directory: directory, groups: online, monitors: ["web-watch": .error]),
            Self.heartbeat(directory: directory, groups: [:]),
        ]
        for heartbeat in cases + cases.reversed() {
            #expect(sizer.size(of: heartbeat, remeasure: true) == WireJSON.encode(heartbeat).count)
        }
        // A changed directory of the same version is measured again, not taken from the cache.
        directory.entries["db"] = DirectoryEntry(wanted: true, owner: "s2", generation: 12)
        let changed = Self.heartbeat(directory: directory, groups: online)
        #expect(sizer.size(of: changed, remeasure: false) == WireJSON.encode(changed).count)
        // A base of a known shape is taken from the cache: the same size when only the digits
        // of its numbers could differ, and here they do not.
        #expect(sizer.size(of: cases[2], remeasure: false) == WireJSON.encode(cases[2]).count)
        // Shapes are shared by the servers, so a name of another length is another shape; and
        // each server's directory and reports are its own.
        var other = cases[2]
        other.sender = "server-two"
        other.groups = [:]
        #expect(sizer.size(of: other, remeasure: false) == WireJSON.encode(other).count)
        #expect(sizer.size(of: cases[1], remeasure: false) == WireJSON.encode(cases[1]).count)
    }

    @Test("every heartbeat of simulated schedules: the sizer agrees with the encoding")
    func simulatedSchedulesAgree() {
        for seed in UInt64(1)...3 {
            let result = Simulation.run(seed: seed, servers: 3, heartbeatSizeCheckInterval: 1)
            #expect(result.violations.isEmpty, "seed \(seed): \(result.violations)")
        }
    }
}
