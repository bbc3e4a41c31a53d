import Foundation
import Testing

@testable import UnderstudyWeb

/// The WebManager's alert view of one server: its alert log read back across rotations.
@Suite("Web: alert log read back")
struct AlertMergeTests {
    static let logs: [String: [String]] = [
        "node1": [
            "2026-12-06T08:00:00.100Z node1 INFO [rc 10] Start of group grp1 on node1 requested.",
            "2026-12-06T08:00:02.000Z node1 ERROR [rm 9] Monitor genw1 detected an error.",
        ],
        "node3": [
            "2026-12-06T08:00:01.000Z node3 WARN [nm 2] Server node2 is down.",
            "not an alert line",
            "2026-12-06T08:00:03.500Z node3 INFO [rc 11] Group grp1 started on node3.",
        ],
    ]

    @Test("a file's newest lines across its rotated generations")
    func generations() throws {
        let folder = NSTemporaryDirectory() + "understudy-alerts-\(getpid())"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let path = folder + "/alert.log"
        try (Self.logs["node1"] ?? []).joined(separator: "\n").write(toFile: path + ".1", atomically: true, encoding: .utf8)
        try ((Self.logs["node3"] ?? []).joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        let all = AlertLogReader.read(path: path, limit: 10)
        #expect(all.count == 4)
        #expect(all.first?.server == "node1" && all.last?.message == "Group grp1 started on node3.")
        #expect(AlertLogReader.read(path: path, limit: 1).map(\.id) == [11])
        #expect(AlertLogReader.read(path: folder + "/missing.log", limit: 5).isEmpty)
    }
}
