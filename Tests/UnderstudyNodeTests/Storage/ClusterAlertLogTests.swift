import Foundation
import Testing
import UnderstudyModel

@testable import UnderstudyNode

@Suite("Cluster alert log")
struct ClusterAlertLogTests {
    static func line(_ server: String, _ second: Int, _ text: String = "event") -> String {
        let stamp = String(format: "2026-12-06T10:%02d:%02d.000Z", second / 60, second % 60)
        return "\(stamp) \(server) INFO [logcmd 1] \(text)"
    }

    static let servers = ["node1", "node2", "node3"]

    @Test func ownEntriesAreNumberedAndSurviveARestartUnderANewRun() async throws {
        try await withTemporaryFolder { (folder: String) async throws in
            let first = ClusterAlertLog(directory: folder, me: "node1", servers: Self.servers, recordsPerFile: 100)
            let a = first.appendOwn(Self.line("node1", 1))
            let b = first.appendOwn(Self.line("node1", 2))
            #expect((a.seq, b.seq) == (1, 2) && a.run == b.run)
            let second = ClusterAlertLog(directory: folder, me: "node1", servers: Self.servers, recordsPerFile: 100)
            #expect(second.run != first.run, "each start draws a new run")
            let c = second.appendOwn(Self.line("node1", 3))
            #expect(c.seq == 1)
            #expect(second.newest(limit: 10).map(\.line) == [a.line, b.line, c.line])
            #expect(second.summary().origins["node1"]?.runs.count == 2)
        }
    }

    @Test func aPeerGetsExactlyWhatItLacksAndNothingTwice() async throws {
        try await withTemporaryFolder { (folder: String) async throws in
            let one = ClusterAlertLog(directory: folder + "/1", me: "node1", servers: Self.servers, recordsPerFile: 1000)
            let two = ClusterAlertLog(directory: folder + "/2", me: "node2", servers: Self.servers, recordsPerFile: 1000)
            let pushed = (1...5).map { one.appendOwn(Self.line("node1", $0)) }
            // Two of them were pushed (out of order, one twice); the pull brings the rest.
            #expect(two.accept([pushed[3], pushed[1], pushed[3]]).count == 2)
            let (missing, more) = one.missing(from: two.summary(), limit: 100)
            #expect(!more)
            #expect(Set(missing) == Set([pushed[0], pushed[2], pushed[4]]))
            #expect(two.accept(missing).count == 3)
            #expect(one.missing(from: two.summary(), limit: 100).entries.isEmpty)
            #expect(two.newest(limit: 100).map(\.seq) == [1, 2, 3, 4, 5], "merged by time")
            // A third server's entries travel through node2 (node1 never reached node3).
            let three = ClusterAlertLog(directory: folder + "/3", me: "node3", servers: Self.servers, recordsPerFile: 1000)
            three.appendOwn(Self.line("node3", 6))
            two.accept(three.missing(from: two.summary(), limit: 100).entries)
            let relayed = two.missing(from: one.summary(), limit: 100).entries
            #expect(relayed.map(\.origin) == ["node3"])
            one.accept(relayed)
            #expect(one.newest(limit: 100).count == 6)
            #expect(one.newest(limit: 100, origin: "node3").count == 1)
            // The answer is bounded; the rest follows in the next round.
            let fresh = ClusterAlertLog(directory: folder + "/4", me: "node3", servers: Self.servers, recordsPerFile: 1000)
            let firstRound = one.missing(from: fresh.summary(), limit: 4)
            #expect(firstRound.entries.count == 4 && firstRound.more)
            fresh.accept(firstRound.entries)
            let secondRound = one.missing(from: fresh.summary(), limit: 4)
            #expect(secondRound.entries.count == 2 && !secondRound.more)
        }
    }

    @Test func whatWasStoredIsKnownAfterARestartSoNothingIsStoredTwice() async throws {
        try await withTemporaryFolder { (folder: String) async throws in
            let one = ClusterAlertLog(directory: folder + "/1", me: "node1", servers: Self.servers, recordsPerFile: 1000)
            let entries = (1...3).map { one.appendOwn(Self.line("node1", $0)) }
            var two = ClusterAlertLog(directory: folder + "/2", me: "node2", servers: Self.servers, recordsPerFile: 1000)
            two.accept(Array(entries.prefix(2)))
            // node2 is killed and starts again: what it wrote is what it holds.
            two = ClusterAlertLog(directory: folder + "/2", me: "node2", servers: Self.servers, recordsPerFile: 1000)
            #expect(two.accept(entries).map(\.seq) == [3])
            let file = try String(contentsOfFile: folder + "/2/node1.log", encoding: .utf8)
            #expect(file.split(separator: "\n").count == 3)
        }
    }

    @Test func aPeerThatLacksOnlyRecentEntriesIsAnsweredFromMemoryOlderGapsFromTheFiles() async throws {
        try await withTemporaryFolder { (folder: String) async throws in
            let one = ClusterAlertLog(directory: folder + "/1", me: "node1", servers: Self.servers, recordsPerFile: 10_000)
            let two = ClusterAlertLog(directory: folder + "/2", me: "node2", servers: Self.servers, recordsPerFile: 10_000)
            let written = (1...300).map { one.appendOwn(Self.line("node1", $0 % 3_600)) }
            // node2 got everything but two recent entries and one old one.
            two.accept(written.filter { ![5, 290, 295].contains($0.seq) })
            let lacking = one.missing(from: two.summary(), limit: 100)
            #expect(lacking.entries.map(\.seq) == [5, 290, 295] && !lacking.more)
            // Once it has the old one, what it lacks is recent: the files are not read (here
            // they are gone, and the answer is still complete).
            two.accept([written[4]])
            try FileManager.default.removeItem(atPath: one.path(of: "node1"))
            #expect(one.missing(from: two.summary(), limit: 100).entries.map(\.seq) == [290, 295])
            // An old gap needs the files: without them nothing is made up.
            let three = ClusterAlertLog(directory: folder + "/3", me: "node3", servers: Self.servers, recordsPerFile: 10_000)
            three.accept(written.filter { $0.seq != 5 })
            #expect(one.missing(from: three.summary(), limit: 100).entries.isEmpty)
        }
    }

    @Test func rangeCountsAndOverlaps() {
        var mine = SequenceRanges()
        for seq: UInt32 in [1, 2, 3, 7, 8, 20] { mine.insert(seq) }
        var theirs = SequenceRanges()
        for seq: UInt32 in [2, 3, 4, 8, 9, 10, 20, 21] { theirs.insert(seq) }
        #expect(mine.count == 6 && theirs.count == 8)
        #expect(mine.commonCount(with: theirs) == 4 && theirs.commonCount(with: mine) == 4)
        #expect(mine.commonCount(with: nil) == 0 && mine.commonCount(with: SequenceRanges()) == 0)
        var top = SequenceRanges()
        top.insert(.max)
        top.insert(.max - 1)
        #expect(top.count == 2 && top.commonCount(with: top) == 2)
    }

    @Test func aTornLastLineIsSkippedAndTheNextEntryStartsOnItsOwnLine() async throws {
        try await withTemporaryFolder { (folder: String) async throws in
            let one = ClusterAlertLog(directory: folder, me: "node1", servers: Self.servers, recordsPerFile: 1000)
            one.appendOwn(Self.line("node1", 1))
            let path = folder + "/node1.log"
            let handle = try #require(FileHandle(forWritingAtPath: path))
            try handle.seekToEnd()
            try handle.write(contentsOf: Data("1a2b 2 2026-12-06T10:00:0".utf8))
            try handle.close()
            let again = ClusterAlertLog(directory: folder, me: "node1", servers: Self.servers, recordsPerFile: 1000)
            again.appendOwn(Self.line("node1", 3))
            #expect(again.newest(limit: 10).map(\.line) == [Self.line("node1", 1), Self.line("node1", 3)])
        }
    }

    @Test func rotationKeepsOneOlderFileAndOlderEntriesAreNotTakenBack() async throws {
        try await withTemporaryFolder { (folder: String) async throws in
            let one = ClusterAlertLog(directory: folder + "/1", me: "node1", servers: Self.servers, recordsPerFile: 1000)
            let entries = (1...10).map { one.appendOwn(Self.line("node1", $0)) }
            let two = ClusterAlertLog(directory: folder + "/2", me: "node2", servers: Self.servers, recordsPerFile: 3)
            two.accept(entries)
            // 10 entries, 3 per file: the oldest files are gone, 7–9 in .1 and 10 in the current.
            #expect(two.newest(limit: 100).map(\.seq) == [7, 8, 9, 10])
            #expect(two.summary().origins["node1"]?.floor == String(entries[6].time))
            // node1 still holds 1–6: node2 does not want them back.
            #expect(one.missing(from: two.summary(), limit: 100).entries.isEmpty)
            #expect(two.accept(entries).isEmpty)
        }
    }

    @Test func entriesThatAreNotAlertLinesOfTheirOriginAreRefusedAndCounted() async throws {
        try await withTemporaryFolder { (folder: String) async throws in
            let log = ClusterAlertLog(directory: folder, me: "node1", servers: Self.servers, recordsPerFile: 1000)
            let bad = [
                ReplicatedAlert(origin: "node9", run: 1, seq: 1, line: Self.line("node9", 1)),
                ReplicatedAlert(origin: "node2", run: 1, seq: 1, line: Self.line("node3", 1)),
                ReplicatedAlert(origin: "node2", run: 1, seq: 0, line: Self.line("node2", 1)),
                ReplicatedAlert(origin: "node2", run: 1, seq: 2, line: Self.line("node2", 1) + "\n" + Self.line("node2", 2)),
                ReplicatedAlert(origin: "node2", run: 1, seq: 3, line: "garbage"),
                ReplicatedAlert(origin: "node2", run: 1, seq: 4, line: Self.line("node2", 1) + String(repeating: "x", count: 9000)),
                ReplicatedAlert(origin: "../etc", run: 1, seq: 5, line: Self.line("../etc", 1)),
            ]
            #expect(log.accept(bad).isEmpty)
            #expect(log.counts.rejected == bad.count)
            #expect(try FileManager.default.contentsOfDirectory(atPath: folder).isEmpty)
        }
    }

    @Test func malformedSummariesAndRandomEntriesNeverCrash() async throws {
        try await withTemporaryFolder { (folder: String) async throws in
            let log = ClusterAlertLog(directory: folder, me: "node1", servers: Self.servers, recordsPerFile: 50)
            for second in 1...20 { log.appendOwn(Self.line("node1", second)) }
            var generator = SystemRandomNumberGenerator()
            for _ in 0..<500 {
                var summary = AlertSyncSummary()
                var origin = AlertSyncSummary.Origin()
                // Ranges of any shape, decoded from JSON as a peer would send them.
                let ranges = (0..<Int.random(in: 0...4, using: &generator)).map { _ in
                    (0..<Int.random(in: 0...3, using: &generator)).map { _ in UInt32.random(in: 0...25, using: &generator) }
                }
                let json = "{\"ranges\":\(ranges)}"
                if let decoded = try? JSONDecoder().decode(SequenceRanges.self, from: Data(json.utf8)) {
                    origin.runs[String(log.run, radix: 16)] = decoded
                    origin.runs["zz"] = decoded
                }
                origin.floor = Bool.random(using: &generator) ? nil : String(UUID().uuidString.prefix(Int.random(in: 0...8)))
                summary.origins["node1"] = origin
                _ = log.missing(from: summary, limit: Int.random(in: 0...30, using: &generator))
                let bytes = (0..<Int.random(in: 0...120, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) }
                log.accept([
                    ReplicatedAlert(origin: "node2", run: 7, seq: UInt32.random(in: 0...3), line: String(decoding: bytes, as: UTF8.self))
                ])
            }
            #expect(log.newest(limit: 100).filter { $0.origin == "node1" }.count == 20)
        }
    }

    @Test func rangesMergeAndCompare() {
        var ranges = SequenceRanges()
        for seq: UInt32 in [5, 1, 3, 2, 9, 4, 4] { ranges.insert(seq) }
        #expect(ranges.ranges == [[1, 5], [9, 9]])
        #expect(ranges.contains(3) && !ranges.contains(6) && ranges.contains(9))
        var fewer = SequenceRanges()
        for seq: UInt32 in 1...5 { fewer.insert(seq) }
        #expect(ranges.hasMore(than: fewer) && !fewer.hasMore(than: ranges) && ranges.hasMore(than: nil))
        #expect(ranges.isWellFormed)
    }
}
