import Foundation
import Testing

@testable import UnderstudyNode

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

@Suite("Durable state")
struct StorageTests {
    @Test func atomicFileRoundTrip() async throws {
        try await withTemporaryFolder { (folder: String) async throws in
            let stateFolder = folder + "/var/state"  // created on demand
            let path = stateFolder + "/doc"
            #expect(try AtomicFile.read(path) == nil)

            try AtomicFile.write(Array("first".utf8), to: path)
            #expect(try AtomicFile.read(path) == Data("first".utf8))
            try AtomicFile.write(Data("second, longer".utf8), to: path)
            #expect(try AtomicFile.read(path) == Data("second, longer".utf8))
            try AtomicFile.write([UInt8](), to: path)
            #expect(try AtomicFile.read(path) == Data())

            // No temporary files left behind.
            #expect(try FileManager.default.contentsOfDirectory(atPath: stateFolder) == ["doc"])
            #expect(try mode(of: path) == 0o600)
            #expect(try mode(of: stateFolder) == 0o700)
        }
    }

    @Test func atomicFileLargeContent() async throws {
        try await withTemporaryFolder { (folder: String) async throws in
            let bytes = (0..<1_000_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
            try AtomicFile.write(bytes, to: folder + "/big")
            #expect(try AtomicFile.read(folder + "/big") == Data(bytes))
        }
    }

    @Test func atomicFileErrorsNameTheFile() async throws {
        try await withTemporaryFolder { (folder: String) async throws in
            // A folder where the file should be cannot be read as a file.
            try FileManager.default.createDirectory(atPath: folder + "/dir", withIntermediateDirectories: false)
            #expect {
                _ = try AtomicFile.read(folder + "/dir")
            } throws: { error in
                (error as? StorageError)?.description.contains(folder + "/dir") == true
            }
            // A file where the folder should be.
            try "x".write(toFile: folder + "/file", atomically: false, encoding: .utf8)
            #expect(throws: StorageError.self) {
                try AtomicFile.write([1], to: folder + "/file/doc")
            }
            // Removing what is not there is fine.
            try AtomicFile.remove(folder + "/absent")
        }
    }

    @Test func atomicFileFailedWriteLeavesTheOldContent() async throws {
        try await withTemporaryFolder { (folder: String) async throws in
            let path = folder + "/doc"
            try AtomicFile.write(Array("old".utf8), to: path)
            // Renaming over a non-empty folder fails after the temp file was written.
            let blocked = folder + "/blocked"
            try FileManager.default.createDirectory(atPath: blocked + "/inner", withIntermediateDirectories: true)
            #expect(throws: StorageError.self) { try AtomicFile.write(Array("new".utf8), to: blocked) }
            #expect(try AtomicFile.read(path) == Data("old".utf8))
            #expect(Set(try FileManager.default.contentsOfDirectory(atPath: folder)) == ["doc", "blocked"])
        }
    }

    struct GroupState: Codable, Equatable {
        var name: String
        var onlineServer: String?
        var failoverCount: Int
        var zeta: [String]
    }

    @Test func stateStoreRoundTripIsReadable() async throws {
        try await withTemporaryFolder { (folder: String) async throws in
            let store = StateStore(directory: folder + "/state")
            #expect(try store.load(GroupState.self, name: "groups") == nil)
            let value = GroupState(name: "failover1", onlineServer: "server1", failoverCount: 2, zeta: ["a/b"])
            try store.save(value, name: "groups")
            #expect(try store.load(GroupState.self, name: "groups") == value)

            let text = try String(contentsOfFile: folder + "/state/groups.json", encoding: .utf8)
            #expect(
                text == """
                    {
                      "failoverCount" : 2,
                      "name" : "failover1",
                      "onlineServer" : "server1",
                      "zeta" : [
                        "a/b"
                      ]
                    }

                    """)
            try store.remove(name: "groups")
            #expect(try store.load(GroupState.self, name: "groups") == nil)
        }
    }

    @Test func stateStoreCorruptFileIsAClearError() async throws {
        try await withTemporaryFolder { (folder: String) async throws in
            let store = StateStore(directory: folder)
            let path = folder + "/groups.json"
            for content in ["{ \"name\": ", "", "{\"name\": \"x\"}", "[1, 2]"] {
                try content.write(toFile: path, atomically: false, encoding: .utf8)
                #expect {
                    _ = try store.load(GroupState.self, name: "groups")
                } throws: { error in
                    guard let corrupt = error as? CorruptStateError else { return false }
                    return corrupt.path == path && corrupt.description.contains(path)
                }
            }
            // The file is left for the operator, not discarded.
            #expect(FileManager.default.fileExists(atPath: path))
        }
    }

    @Test func stateStoreRejectsPathLikeNames() async throws {
        try await withTemporaryFolder { (folder: String) async throws in
            let store = StateStore(directory: folder)
            for name in ["", "../etc/passwd", ".hidden", "a/b"] {
                #expect(throws: StorageError.self) { try store.save(1, name: name) }
            }
        }
    }

    @Test func abnormalStopMarkerAcrossRestarts() async throws {
        try await withTemporaryFolder { (folder: String) async throws in
            // First start ever: clean.
            var marker = AbnormalStopMarker(directory: folder)
            #expect(try marker.wasAbnormalStop == false)
            try marker.markStarted()
            #expect(FileManager.default.fileExists(atPath: folder + "/running"))

            // The process dies without stopping cleanly; the next start sees it.
            marker = AbnormalStopMarker(directory: folder)
            #expect(try marker.wasAbnormalStop == true)
            try marker.markStarted()
            try marker.markCleanStop()

            // After a clean stop the next start is normal again.
            marker = AbnormalStopMarker(directory: folder)
            #expect(try marker.wasAbnormalStop == false)
            // Stopping twice is harmless.
            try marker.markCleanStop()
        }
    }

    @Test func bootIDsIncreaseAcrossRestarts() async throws {
        try await withTemporaryFolder { (folder: String) async throws in
            #expect(try BootIDAllocator(directory: folder).lastAllocated() == nil)
            let first = try BootIDAllocator(directory: folder).allocate(wallClockMicroseconds: 1_000_000)
            #expect(first == 1_000_000)
            // The clock went backwards: still strictly greater.
            let second = try BootIDAllocator(directory: folder).allocate(wallClockMicroseconds: 500)
            #expect(second == 1_000_001)
            // The clock moved on: follow it.
            let third = try BootIDAllocator(directory: folder).allocate(wallClockMicroseconds: 2_000_000)
            #expect(third == 2_000_000)
            #expect(try BootIDAllocator(directory: folder).lastAllocated() == 2_000_000)
            // Real clock: microseconds since 1970, after what was persisted.
            let real = try BootIDAllocator(directory: folder).allocate()
            #expect(real > 1_700_000_000_000_000)
        }
    }

    @Test func bootIDsKeepFullUInt64Precision() async throws {
        try await withTemporaryFolder { (folder: String) async throws in
            let allocator = BootIDAllocator(directory: folder)
            let high = UInt64.max - 2
            let first = try allocator.allocate(wallClockMicroseconds: high)
            let second = try allocator.allocate(wallClockMicroseconds: 0)
            let persisted = try allocator.lastAllocated()
            #expect(first == high)
            #expect(second == high + 1)
            #expect(persisted == high + 1)
        }
    }

    @Test func bootIDCorruptFileRefusesToGuess() async throws {
        try await withTemporaryFolder { (folder: String) async throws in
            try "garbage".write(toFile: folder + "/boot-id.json", atomically: false, encoding: .utf8)
            #expect(throws: CorruptStateError.self) {
                _ = try BootIDAllocator(directory: folder).allocate()
            }
        }
    }

    private func mode(of path: String) throws -> Int {
        var info = stat()
        guard stat(path, &info) == 0 else { throw StorageError(path: path, message: "stat failed") }
        return Int(info.st_mode & 0o7777)
    }
}
