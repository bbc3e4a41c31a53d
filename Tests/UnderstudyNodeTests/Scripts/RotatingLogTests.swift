import Foundation
import Testing

@testable import UnderstudyNode

@Suite("RotatingLog")
struct RotatingLogTests {
    @Test func rotatesAtTheSizeThresholdKeepingTwoGenerations() async throws {
        try await withTemporaryFolder { (folder: String) async throws in
            let path = folder + "/nested/res.log"
            let log = RotatingLog(path: path, rotateSize: 100, keptGenerations: 2)
            let line = String(repeating: "a", count: 38)  // 40 bytes with the digit and newline
            for index in 0..<3 { log.appendLine(line + String(index % 10)) }
            // 120 bytes passed the threshold: the file was rotated, the next write starts anew.
            #expect(!FileManager.default.fileExists(atPath: path))
            #expect(try fileSize(path + ".1") == 120)

            for _ in 0..<3 { log.appendLine(line + "b") }
            for _ in 0..<1 { log.appendLine("last") }
            #expect(try fileSize(path + ".2") == 120)
            #expect(try fileSize(path + ".1") == 120)
            #expect(try String(contentsOfFile: path, encoding: .utf8) == "last\n")

            // A third rotation drops the oldest generation.
            for _ in 0..<3 { log.appendLine(line + "c") }
            #expect(try String(contentsOfFile: path + ".2", encoding: .utf8).hasPrefix(line + "b"))
            #expect(!FileManager.default.fileExists(atPath: path + ".3"))
            #expect(log.failureCount == 0)
        }
    }

    @Test func continuesAnExistingFileAndCountsItsSize() async throws {
        try await withTemporaryFolder { (folder: String) async throws in
            let path = folder + "/res.log"
            try String(repeating: "x", count: 90).write(toFile: path, atomically: false, encoding: .utf8)
            let log = RotatingLog(path: path, rotateSize: 100)
            log.appendLine("0123456789")
            #expect(try fileSize(path + ".1") == 101)
        }
    }

    @Test func linesStartOnTheirOwnLine() async throws {
        try await withTemporaryFolder { (folder: String) async throws in
            let path = folder + "/res.log"
            let log = RotatingLog(path: path)
            log.append(Array("partial".utf8))
            log.appendLine("--- footer")
            #expect(try String(contentsOfFile: path, encoding: .utf8) == "partial\n--- footer\n")
        }
    }

    @Test func writeFailuresAreCountedNotThrown() async throws {
        try await withTemporaryFolder { (folder: String) async throws in
            try "x".write(toFile: folder + "/file", atomically: false, encoding: .utf8)
            let log = RotatingLog(path: folder + "/file/res.log")
            log.appendLine("one")
            log.appendLine("two")
            #expect(log.failureCount == 2)
        }
    }

    @Test func recordCountedLogRotatesAfterThatManyLinesCountingWhatIsThere() async throws {
        try await withTemporaryFolder { (folder: String) async throws in
            let path = folder + "/alert.log"
            // A file left by an earlier run, cut mid-line by a crash: 2 lines and a torn one.
            try "one\ntwo\nto".write(toFile: path, atomically: false, encoding: .utf8)
            let log = RotatingLog(path: path, keptGenerations: 1, rotateRecords: 5)
            log.appendLine("three")
            #expect(try String(contentsOfFile: path, encoding: .utf8) == "one\ntwo\nto\nthree\n", "the torn line is ended first")
            log.appendLine("four")
            // Five lines (the torn one counts): rotated.
            #expect(try String(contentsOfFile: path + ".1", encoding: .utf8) == "one\ntwo\nto\nthree\nfour\n")
            #expect(!FileManager.default.fileExists(atPath: path))
            log.setRotateRecords(2)
            log.appendLine("five")
            log.appendLine("six")
            #expect(try String(contentsOfFile: path + ".1", encoding: .utf8) == "five\nsix\n", "one older generation kept")
            #expect(log.failureCount == 0)
        }
    }

    private func fileSize(_ path: String) throws -> Int {
        try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int ?? -1
    }
}
