import Foundation
import Logging
import Testing

@testable import UnderstudyNode

@Suite("exec: the record of script processes")
struct ExecProcessRecordTests {
    /// Fencing many groups at once (a stall, a lost partition) fenced each with a rewrite and
    /// an fsync of the same record on the daemon actor: with 500 groups, seconds.
    @Test("a fence that changes nothing in the record does not rewrite it; a new driver (a new daemon) writes it once")
    func unchangedRecordIsNotRewritten() throws {
        let folder = NSTemporaryDirectory() + "understudy-execrecord-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        func driver() -> ExecResourceDriver {
            ExecResourceDriver(
                localServer: "node1", runner: ScriptRunner(), host: HostFacts.detect(productVersion: "t", installPath: "/"),
                logDirectory: folder, stateDirectory: folder, logger: Logger(label: "test"))
        }
        func inode() -> UInt64? {
            var info = stat()
            return stat(folder + "/processes.json", &info) == 0 ? UInt64(info.st_ino) : nil
        }
        let first = driver()
        first.fence(group: "g1")
        let written = try #require(inode(), "the first fence writes the record")
        #expect(String(decoding: try Data(contentsOf: URL(fileURLWithPath: folder + "/processes.json")), as: UTF8.self) == "[]")
        for index in 2...50 { first.fence(group: "g\(index)") }
        #expect(inode() == written, "49 fences with nothing to change: no rewrite (a write replaces the file)")
        driver().fence(group: "g1")
        #expect(inode() != written, "a new daemon's driver writes its record once")
    }
}
