import Foundation
import Testing

@testable import UnderstudyNode

@Suite("Cluster key file")
struct ClusterKeyTests {
    private func write(_ text: String, to path: String, mode: mode_t) throws {
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        #expect(chmod(path, mode) == 0)
    }

    @Test func generatedKeyLoadsBackWithMode0600() async throws {
        try await TransportTestSupport.withTemporaryDirectory { directory in
            let path = directory + "/cluster.key"
            let generated = try ClusterKey.generate(to: path)
            #expect(TransportTestSupport.fileMode(path) == 0o600)

            let text = try String(contentsOfFile: path, encoding: .utf8)
            #expect(text.count == 65 && text.hasSuffix("\n"))
            #expect(text.dropLast().allSatisfy { "0123456789abcdef".contains($0) })

            let loaded = try ClusterKey.load(from: path)
            #expect(loaded.fingerprint == generated.fingerprint)
            // No temporary files are left behind.
            #expect(try FileManager.default.contentsOfDirectory(atPath: directory) == ["cluster.key"])
        }
    }

    @Test func generateRefusesToReplaceUnlessAsked() async throws {
        try await TransportTestSupport.withTemporaryDirectory { directory in
            let path = directory + "/cluster.key"
            let first = try ClusterKey.generate(to: path)
            #expect(throws: ClusterKeyError(path: path, reason: .alreadyExists)) { try ClusterKey.generate(to: path) }
            #expect(try ClusterKey.load(from: path).fingerprint == first.fingerprint)

            let second = try ClusterKey.generate(to: path, overwrite: true)
            #expect(second.fingerprint != first.fingerprint)
            #expect(try ClusterKey.load(from: path).fingerprint == second.fingerprint)
            #expect(TransportTestSupport.fileMode(path) == 0o600)
        }
    }

    @Test func missingFileIsNamed() async throws {
        try await TransportTestSupport.withTemporaryDirectory { directory in
            let path = directory + "/absent.key"
            let error = #expect(throws: ClusterKeyError.self) { try ClusterKey.load(from: path) }
            #expect(error?.reason == .missing)
            #expect(error?.description.contains(path) == true)
        }
    }

    @Test func groupOrWorldAccessIsRefusedWithTheFix() async throws {
        try await TransportTestSupport.withTemporaryDirectory { directory in
            let path = directory + "/cluster.key"
            for mode: mode_t in [0o644, 0o640, 0o604, 0o660, 0o601] {
                try write(String(repeating: "k", count: 32) + "\n", to: path, mode: mode)
                let error = #expect(throws: ClusterKeyError.self) { try ClusterKey.load(from: path) }
                #expect(error?.reason == .insecurePermissions(mode: UInt32(mode)))
                #expect(error?.description.contains("chmod 600 \(path)") == true)
            }
            #expect(chmod(path, 0o400) == 0)
            #expect(throws: Never.self) { try ClusterKey.load(from: path) }
        }
    }

    @Test func shortKeysAreRefusedAndTrailingWhitespaceIsNotKey() async throws {
        try await TransportTestSupport.withTemporaryDirectory { directory in
            let path = directory + "/cluster.key"
            try write("0123456789abcde\n\n  \t", to: path, mode: 0o600)
            let error = #expect(throws: ClusterKeyError.self) { try ClusterKey.load(from: path) }
            #expect(error?.reason == .tooShort(byteCount: 15))
            #expect(error?.description.contains(path) == true)

            try write("0123456789abcdef \r\n", to: path, mode: 0o600)
            let loaded = try ClusterKey.load(from: path)
            let direct = try ClusterKey(material: Array("0123456789abcdef".utf8))
            #expect(loaded.fingerprint == direct.fingerprint)

            try write("", to: path, mode: 0o600)
            #expect(throws: ClusterKeyError(path: path, reason: .tooShort(byteCount: 0))) { try ClusterKey.load(from: path) }
        }
    }

    @Test func directoriesAndHugeFilesAreRefused() async throws {
        try await TransportTestSupport.withTemporaryDirectory { directory in
            let subdirectory = directory + "/keydir"
            #expect(mkdir(subdirectory, 0o700) == 0)
            #expect(throws: ClusterKeyError(path: subdirectory, reason: .notRegularFile)) { try ClusterKey.load(from: subdirectory) }

            let path = directory + "/huge.key"
            try write(String(repeating: "x", count: ClusterKey.maximumFileSize + 1), to: path, mode: 0o600)
            let error = #expect(throws: ClusterKeyError.self) { try ClusterKey.load(from: path) }
            #expect(error?.reason == .tooLarge(byteCount: ClusterKey.maximumFileSize + 1))
        }
    }

    @Test func unreadableFileIsRefused() async throws {
        try await TransportTestSupport.withTemporaryDirectory { directory in
            var path = directory + "/cluster.key"
            if getuid() == 0 {
                // Root reads files regardless of their mode: make the open fail another way
                // (a path through a regular file: ENOTDIR), which is "unreadable" too.
                try write(String(repeating: "k", count: 32), to: path, mode: 0o600)
                path += "/cluster.key"
            } else {
                try write(String(repeating: "k", count: 32), to: path, mode: 0o000)
            }
            let error = #expect(throws: ClusterKeyError.self) { try ClusterKey.load(from: path) }
            if case .unreadable = error?.reason {} else { Issue.record("expected unreadable, got \(String(describing: error))") }
        }
    }

    @Test func descriptionsNeverShowKeyMaterial() throws {
        let material = "super-secret-material-that-must-not-leak"
        let key = try ClusterKey(material: Array(material.utf8))
        for text in [key.description, key.debugDescription, String(describing: key), String(reflecting: key), "\(key)"] {
            #expect(!text.contains(material))
            #expect(!text.contains("super-secret"))
        }
        #expect(key.fingerprint.count == 16)
    }
}
