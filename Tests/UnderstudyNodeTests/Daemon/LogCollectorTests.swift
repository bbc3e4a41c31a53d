import Crypto
import Foundation
import Testing
import UnderstudyEngine
import UnderstudyModel
import UnderstudyTestSupport

@testable import UnderstudyNode

/// `LogCollector` without a daemon: one collection at a time, the archive served in chunks
/// that add up to its size and digest, abandoned collections expire with their files, and
/// the archive builder's search for configured secrets.
@Suite("clplogcc: the collector of one server")
struct LogCollectorTests {
    /// A state folder with an alert log holding a pasted secret, a script log, a key file
    /// and a configuration naming both.
    static func makeState(_ root: String, largeLog: Bool = true) throws -> LogArchiveSources {
        let state = root + "/state"
        try FileManager.default.createDirectory(atPath: state + "/logs", withIntermediateDirectories: true)
        try "0123456789abcdef0123456789abcdef\n".write(toFile: root + "/cluster.key", atomically: true, encoding: .utf8)
        try "2026-12-06 12:00:00 node1 INFO [logcmd 1] key 0123456789abcdef0123456789abcdef and Comm-unity-1\n"
            .write(toFile: state + "/alert.log", atomically: true, encoding: .utf8)
        // Incompressible: the archive takes several chunks.
        var noise = SystemRandomNumberGenerator()
        let words = (0..<(largeLog ? 3 * 1024 * 1024 / 8 : 16)).map { _ in noise.next() as UInt64 }
        let random = words.withUnsafeBytes { Data($0) }
        try (random.base64EncodedString(options: .lineLength76Characters) + "\n").write(
            toFile: state + "/logs/app.log", atomically: true, encoding: .utf8)
        let yaml = """
            cluster: {name: c1, secret-file: cluster.key}
            servers: [{name: node1}]
            alerts:
              destinations:
                - {name: nms, type: snmp, managers: [192.0.2.9:162], community: Comm-unity-1}

            """
        try yaml.write(toFile: root + "/cluster.yaml", atomically: true, encoding: .utf8)
        return LogArchiveSources(
            server: "node1", cluster: "c1", type: .type3, label: "20261206-120000", stateDirectory: state,
            configPath: root + "/cluster.yaml", runningYAML: yaml, scripts: [:], statusJSON: Data("{}".utf8), daemonLogPath: nil,
            journalUnit: "understudy-test-none.service", version: "test")
    }

    func withFolder<T>(_ body: (String) async throws -> T) async throws -> T {
        let root = FileManager.default.temporaryDirectory.path + "/logcollector-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: root) }
        return try await body(root)
    }

    func waitReady(_ collector: LogCollector, _ id: String, sources: LogArchiveSources) async throws -> LogArchiveInfo {
        for _ in 0..<600 {
            switch await collector.handle(.poll(collection: id), sources: { _, _ in sources }) {
            case .ready(let info): return info
            case .building: try await Task.sleep(for: .milliseconds(50))
            case let other: throw LogArchiveError("unexpected \(other)")
            }
        }
        throw LogArchiveError("not ready within 30 s")
    }

    @Test func oneCollectionAtATimeServedInChunksAndExpired() async throws {
        try await withFolder { root in
            let sources = try Self.makeState(root)
            let work = root + "/work"
            // Long: tests beside this one block the pool's threads for seconds at a time (mounts
            // waiting for MMP); expiry is checked below with a collector of its own.
            let collector = LogCollector(workRoot: work, idleLimit: .seconds(300))
            let first = await collector.handle(
                .prepare(collection: "first", type: .type3, label: sources.label, collector: "node1"), sources: { _, _ in sources })
            #expect(first == .building)
            let second = await collector.handle(
                .prepare(collection: "second", type: .type3, label: sources.label, collector: "node2"), sources: { _, _ in sources })
            guard case .busy(let reason) = second else {
                Issue.record("a second collection was not refused: \(second)")
                return
            }
            #expect(reason.contains("from node1"))
            let info = try await waitReady(collector, "first", sources: sources)
            #expect(info.fileName == "understudy-logs-node1-20261206-120000.tar.gz")
            // Chunks from offset 0 to the end: the archive, byte for byte.
            var received = Data()
            for _ in 0..<1000 where UInt64(received.count) < info.size {
                let answer = await collector.handle(
                    .read(collection: "first", offset: UInt64(received.count)), sources: { _, _ in sources })
                guard case .chunk(let offset, let bytes) = answer, offset == UInt64(received.count), !bytes.isEmpty else {
                    Issue.record("unexpected \(answer)")
                    return
                }
                #expect(bytes.count <= LogCollector.chunkSize)
                received.append(bytes)
            }
            #expect(UInt64(received.count) == info.size)
            #expect(info.size > UInt64(2 * LogCollector.chunkSize), "the archive should take several chunks")
            #expect(SHA256.hash(data: received).map { String(format: "%02x", $0) }.joined() == info.sha256)
            // The pasted key and community are out of the alert log.
            #expect(info.notes.contains("logs/alert.log: 2 occurrence(s) of configured secrets replaced with <redacted>"), "\(info.notes)")
            #expect(await collector.currentArchivePath != nil)
            #expect(await collector.handle(.finish(collection: "first"), sources: { _, _ in sources }) == .finished)
            #expect(((try? FileManager.default.contentsOfDirectory(atPath: work)) ?? []).isEmpty)

            // Left alone past the idle limit: expired, its files removed, the next one starts.
            let expiring = LogCollector(workRoot: root + "/expiring", idleLimit: .milliseconds(200))
            #expect(
                await expiring.handle(
                    .prepare(collection: "first", type: .type3, label: sources.label, collector: "node1"), sources: { _, _ in sources })
                    == .building)
            try await Task.sleep(for: .milliseconds(400))
            let third = await expiring.handle(
                .prepare(collection: "third", type: .type3, label: sources.label, collector: "node2"), sources: { _, _ in sources })
            #expect(third == .building)
            let gone = await expiring.handle(.read(collection: "first", offset: 0), sources: { _, _ in sources })
            guard case .failed = gone else {
                Issue.record("an expired collection still answers: \(gone)")
                return
            }
            #expect(await expiring.handle(.finish(collection: "third"), sources: { _, _ in sources }) == .finished)
            // A build cut short removes what it wrote when it ends.
            let emptied = await eventually(within: .seconds(30), every: .milliseconds(100)) {
                ((try? FileManager.default.contentsOfDirectory(atPath: root + "/expiring")) ?? []).isEmpty
            }
            #expect(emptied)
        }
    }

    @Test func malformedRequestsAreRefused() async throws {
        try await withFolder { root in
            let sources = try Self.makeState(root, largeLog: false)
            let collector = LogCollector(workRoot: root + "/work")
            for step in [
                LogCollectionStep.prepare(collection: "../escape", type: .type3, label: "20261206-120000", collector: "node1"),
                .prepare(collection: "ok", type: .type3, label: "../../x", collector: "node1"),
            ] {
                guard case .failed = await collector.handle(step, sources: { _, _ in sources }) else {
                    Issue.record("\(step) was accepted")
                    continue
                }
            }
            #expect(!FileManager.default.fileExists(atPath: root + "/escape"))
        }
    }

    @Test func replaceFindsEveryOccurrence() {
        let (bytes, count) = Staging.replace(Array("ab".utf8), in: Array("xabyababz".utf8), with: Array("<r>".utf8))
        #expect(String(decoding: bytes, as: UTF8.self) == "x<r>y<r><r>z")
        #expect(count == 3)
        #expect(Staging.replace(Array("zz".utf8), in: Array("abc".utf8), with: []).1 == 0)
    }
}
