import Foundation
import Testing
import UnderstudyModel
import UnderstudyTestSupport

@testable import UnderstudyNode

#if canImport(Glibc)
    import Glibc
#endif

/// The versioned configuration records (running, pending) and the bundle a configuration
/// travels in: round trips, corrupt and fuzzed files (a clear error naming the file, the
/// file kept), names that would leave `scripts/`, atomic installation.
@Suite("Configuration store and bundle")
struct ConfigStoreTests {
    static let hash = String(repeating: "ab", count: 16)

    static func pending(version: UInt64 = 3) -> PendingConfiguration {
        PendingConfiguration(
            version: version, hash: hash, base: version - 1, coordinator: "node1",
            bundle: ConfigBundle(
                yaml: "cluster: {name: c}\n", scripts: ["start.sh": .init(content: Data("#!/bin/sh\nexit 0\n".utf8), executable: true)]))
    }

    @Test("running version and pending configuration survive a round trip; removal leaves none")
    func roundTrip() async throws {
        try await withTemporaryFolder { (folder: String) async throws in
            let store = ConfigStore(directory: folder)
            #expect(try store.runningVersion() == nil)
            #expect(try store.pending() == nil)
            try store.saveRunningVersion(ConfigVersionRecord(version: 2, hash: Self.hash))
            try store.savePending(Self.pending())
            #expect(try store.runningVersion() == ConfigVersionRecord(version: 2, hash: Self.hash))
            #expect(try store.pending() == Self.pending())
            // A newer pending replaces the older one whole.
            try store.savePending(Self.pending(version: 4))
            #expect(try store.pending()?.version == 4)
            try store.removePending()
            #expect(try store.pending() == nil)
            #expect(try store.runningVersion()?.version == 2)
        }
    }

    @Test("corrupt files give an error naming the file; set aside, they are kept")
    func corruptFiles() async throws {
        try await withTemporaryFolder { (folder: String) async throws in
            let store = ConfigStore(directory: folder)
            let cases: [(String, String)] = [
                ("", "empty"),
                ("{\"version\": 3", "not valid JSON"),
                ("{\"version\": 3, \"hash\": \"x\"}", "not a configuration hash"),
                ("{\"version\": \"three\", \"hash\": \"\(Self.hash)\"}", "unexpected value"),
            ]
            for (text, fragment) in cases {
                try Data(text.utf8).write(to: URL(fileURLWithPath: store.versionPath))
                do {
                    _ = try store.runningVersion()
                    Issue.record("\(text.debugDescription) was accepted")
                } catch let error as CorruptStateError {
                    #expect(error.path == store.versionPath)
                    #expect(error.description.contains(fragment), "\(error)")
                }
            }
            var bad = Self.pending()
            bad.bundle.scripts["../escape.sh"] = .init(content: Data(), executable: false)
            try store.savePending(bad)
            do {
                _ = try store.pending()
                Issue.record("a pending bundle with a script outside scripts/ was accepted")
            } catch let error as CorruptStateError {
                #expect(error.path == store.pendingPath)
                #expect(error.description.contains("not a plain path inside scripts/"), "\(error)")
            }
            let kept = try store.setAside(store.pendingPath, now: Date(timeIntervalSince1970: 1_700_000_000))
            #expect(kept == store.pendingPath + ".corrupt-1700000000")
            #expect(FileManager.default.fileExists(atPath: kept))
            #expect(try store.pending() == nil)
        }
    }

    @Test("fuzzed pending files never crash and never pass for a pending configuration unless valid")
    func fuzzedPending() async throws {
        try await withTemporaryFolder { (folder: String) async throws in
            let store = ConfigStore(directory: folder)
            try store.savePending(Self.pending())
            let valid = try Data(contentsOf: URL(fileURLWithPath: store.pendingPath))
            var generator = XorShift(state: 0x16_2026)
            for round in 0..<400 {
                var bytes = [UInt8](valid)
                switch round % 4 {
                case 0: bytes = Array(bytes.prefix(Int.random(in: 0..<bytes.count, using: &generator)))
                case 1:
                    for _ in 0..<Int.random(in: 1...8, using: &generator) {
                        bytes[Int.random(in: 0..<bytes.count, using: &generator)] = UInt8.random(in: 0...255, using: &generator)
                    }
                case 2: bytes = (0..<Int.random(in: 0...300, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) }
                default:
                    let index = Int.random(in: 0..<bytes.count, using: &generator)
                    bytes.insert(contentsOf: Array("\"version\": 0,".utf8), at: index)
                }
                try Data(bytes).write(to: URL(fileURLWithPath: store.pendingPath))
                do {
                    if let pending = try store.pending() {
                        // What decodes must be a usable pending configuration.
                        #expect(pending.version > 0)
                        #expect(ConfigStore.isHash(pending.hash))
                        try pending.bundle.check()
                    }
                } catch let error as CorruptStateError {
                    #expect(error.path == store.pendingPath)
                }
            }
        }
    }

    @Test("bundle names must stay inside scripts/; size is bounded")
    func bundleChecks() throws {
        for name in ["../x", "/etc/passwd", "a/../../b", ".hidden", "a//b", "", "a/.git/config"] {
            let bundle = ConfigBundle(yaml: "", scripts: [name: .init(content: Data(), executable: false)])
            #expect(throws: ConfigBundle.Problem.self, "\(name.debugDescription)") { try bundle.check() }
        }
        try ConfigBundle(yaml: "", scripts: ["web/start.sh": .init(content: Data(), executable: true)]).check()
        let large = ConfigBundle(yaml: String(repeating: "#", count: ConfigBundle.maximumSize + 1))
        #expect(throws: ConfigBundle.Problem.self) { try large.check() }
    }

    @Test("a bundle read from a folder installs atomically elsewhere: scripts replaced, stale ones removed, hidden files left")
    func installAndRead() async throws {
        try await withTemporaryFolder { (folder: String) async throws in
            let source = folder + "/source/cluster.yaml"
            try FileManager.default.createDirectory(atPath: folder + "/source/scripts/web", withIntermediateDirectories: true)
            try Data("servers: []\n".utf8).write(to: URL(fileURLWithPath: source))
            try Data("#!/bin/sh\n".utf8).write(to: URL(fileURLWithPath: folder + "/source/scripts/web/start.sh"))
            chmod(folder + "/source/scripts/web/start.sh", 0o755)
            try Data("backup".utf8).write(to: URL(fileURLWithPath: folder + "/source/scripts/.start.sh.swp"))
            let bundle = try ConfigBundle.read(configPath: source)
            #expect(bundle.scripts.keys.sorted() == ["web/start.sh"])
            #expect(bundle.scripts["web/start.sh"]?.executable == true)

            let target = folder + "/target/cluster.yaml"
            let old = ConfigBundle(yaml: "old\n", scripts: ["old.sh": .init(content: Data("old".utf8), executable: false)])
            try old.install(at: target, replacing: nil)
            #expect(FileManager.default.fileExists(atPath: folder + "/target/scripts/old.sh"))
            try bundle.install(at: target, replacing: old)
            #expect(!FileManager.default.fileExists(atPath: folder + "/target/scripts/old.sh"))
            #expect(FileManager.default.isExecutableFile(atPath: folder + "/target/scripts/web/start.sh"))
            #expect(try ConfigBundle.read(configPath: target) == bundle)
            #expect(bundle.changedScripts(since: old) == ["old.sh", "web/start.sh"])
        }
    }

    @Test("the identity is the model's and the scripts', not the file's text or folder")
    func identity() throws {
        let yaml = """
            cluster: {name: c1, secret-file: /etc/understudy/k}
            servers: [{name: a}, {name: b}]
            heartbeats: [{name: l, type: lanhb, addresses: {a: 10.0.0.1, b: 10.0.0.2}}]
            groups: [{name: g, resources: [{name: e, type: exec, start: scripts/s.sh, stop: /bin/true}]}]

            """
        let here = try ConfigLoader.load(yaml: yaml, sourcePath: "/srv/a/cluster.yaml")
        let there = try ConfigLoader.load(yaml: "# another comment\n" + yaml, sourcePath: "/srv/b/cluster.yaml")
        let scripts: [String: ConfigBundle.ScriptFile] = ["s.sh": .init(content: Data("x".utf8), executable: true)]
        let hash = ConfigBundle.hash(config: here, scripts: scripts)
        #expect(ConfigStore.isHash(hash))
        #expect(ConfigBundle.hash(config: there, scripts: scripts) == hash)
        #expect(ConfigBundle.hash(config: here, scripts: ["s.sh": .init(content: Data("y".utf8), executable: true)]) != hash)
        #expect(ConfigBundle.hash(config: here, scripts: ["s.sh": .init(content: Data("x".utf8), executable: false)]) != hash)
        let swapped = try ConfigLoader.load(
            yaml: yaml.replacingOccurrences(of: "[{name: a}, {name: b}]", with: "[{name: b}, {name: a}]"), sourcePath: "/srv/a/cluster.yaml"
        )
        #expect(ConfigBundle.hash(config: swapped, scripts: scripts) != hash)
        #expect(ConfigBundle.paths(in: here, under: "/srv/a/scripts/") == ["/srv/a/scripts/s.sh"])
    }
}

/// xorshift64: a fixed sequence, so a failing round replays.
private struct XorShift: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state ^= state << 13
        state ^= state >> 7
        state ^= state << 17
        return state
    }
}
