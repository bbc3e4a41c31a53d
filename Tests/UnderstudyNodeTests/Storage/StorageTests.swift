import Foundation
import Synchronization
import Testing
import UnderstudyTestSupport

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

    /// I5 on a full file system: the new content cannot be written whole, so the file keeps its
    /// old content (a write in place would leave it truncated or half new) and no temporary
    /// file is left. A small tmpfs of the test's own (root).
    @Test(.requires(.root)) func atomicFileFailedWriteLeavesTheOldContent() async throws {
        try await withTemporaryFolder { (folder: String) async throws in
            let mount = folder + "/small"
            try FileManager.default.createDirectory(atPath: mount, withIntermediateDirectories: true)
            #expect(Prerequisite.exitStatus("/bin/mount", ["-t", "tmpfs", "-o", "size=256k", "tmpfs", mount]) == 0)
            defer { _ = Prerequisite.exitStatus("/bin/umount", [mount]) }
            let path = mount + "/doc"
            let old = Array("old content, complete".utf8)
            try AtomicFile.write(old, to: path)
            // Fill the file system, leaving less room than the new content needs.
            _ = FileManager.default.createFile(atPath: mount + "/filler", contents: Data(repeating: 1, count: 200 * 1024))
            let new = [UInt8](repeating: 0x6E, count: 128 * 1024)
            #expect(throws: StorageError.self) { try AtomicFile.write(new, to: path) }
            #expect(try AtomicFile.read(path) == Data(old))
            #expect(Set(try FileManager.default.contentsOfDirectory(atPath: mount)) == ["doc", "filler"])
            // Once there is room again, the write goes through.
            try FileManager.default.removeItem(atPath: mount + "/filler")
            try AtomicFile.write(new, to: path)
            #expect(try AtomicFile.read(path) == Data(new))
        }
    }

    /// A reader never sees a mix of old and new or a truncated file while writes go on: the
    /// file is replaced by a rename, never rewritten in place.
    @Test func atomicFileReadersSeeOldOrNewNeverAMix() async throws {
        try await withTemporaryFolder { (folder: String) async throws in
            let path = folder + "/doc"
            let contents = [[UInt8](repeating: 0x61, count: 96 * 1024), [UInt8](repeating: 0x62, count: 160 * 1024)]
            try AtomicFile.write(contents[0], to: path)
            let finished = Mutex(false)
            let writer = Task.detached {
                defer { finished.withLock { $0 = true } }
                for index in 1...150 { try AtomicFile.write(contents[index % 2], to: path) }
            }
            var reads = 0
            var mixed: [Int] = []
            // Bounded: at most 20,000 reads, however slow the writer.
            while reads < 20_000, !finished.withLock({ $0 }) {
                let data = try AtomicFile.read(path) ?? Data()
                reads += 1
                if data != Data(contents[0]) && data != Data(contents[1]) { mixed.append(data.count) }
            }
            try await writer.value
            #expect(mixed.isEmpty, "\(mixed.count) of \(reads) reads saw partial content (sizes \(mixed.prefix(5)))")
            #expect(try FileManager.default.contentsOfDirectory(atPath: folder) == ["doc"])
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
