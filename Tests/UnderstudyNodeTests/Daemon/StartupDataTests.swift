import Foundation
import Testing

@testable import UnderstudyNode

@Suite("Startup data release")
struct StartupDataTests {
    /// The test runner's own executable: a real ELF file with a `.rodata`.
    static func ownExecutable() throws -> [UInt8] {
        let path = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")
        return try #require(FileManager.default.contents(atPath: path).map { [UInt8]($0) })
    }

    /// Reads `bytes`, with the bytes of `damage` in place of theirs (the executable is large:
    /// damaged copies of it would take long to make).
    static func reader(_ bytes: [UInt8], damage: [Int: UInt8] = [:]) -> (UInt64, Int) -> [UInt8]? {
        { offset, count in
            guard count >= 0, offset <= UInt64(bytes.count), UInt64(count) <= UInt64(bytes.count) - offset else { return nil }
            var read = Array(bytes[Int(offset)..<Int(offset) + count])
            for (index, byte) in damage where index >= Int(offset) && index < Int(offset) + count { read[index - Int(offset)] = byte }
            return read
        }
    }

    @Test("the section headers of a real executable name its .rodata, allocated, with its address and size")
    func sectionsOfARealExecutable() throws {
        let sections = try #require(StartupData.sections(read: Self.reader(try Self.ownExecutable())))
        let rodata = try #require(sections.first { $0.name == ".rodata" })
        #expect(rodata.flags & StartupData.allocatedFlag != 0)
        #expect(rodata.size > 0)
        #expect(sections.contains { $0.name == ".text" })
    }

    @Test("bytes that are not an ELF file, or whose headers point outside it, give no sections and never crash")
    func malformedFiles() throws {
        let real = try Self.ownExecutable()
        #expect(StartupData.sections(read: Self.reader([])) == nil)
        #expect(
            StartupData.sections(read: Self.reader(Array("#!/bin/sh\necho hello, this is no ELF file at all, not even close\n".utf8)))
                == nil)
        // Cut short: the section headers lie at the end of the file.
        #expect(StartupData.sections(read: Self.reader(Array(real.prefix(4096)))) == nil)
        // Random damage to the first 64 KiB (the header and what it points at when the
        // headers come first), seeded: never a crash, and an answer or nil.
        var generator = SplitMix64(state: 19)
        // Also the section table and its names at the end of the file.
        let table = try #require(StartupData.sections(read: Self.reader(real))).count * 64
        for _ in 0..<500 {
            var damage: [Int: UInt8] = [:]
            for _ in 0..<8 {
                let index = Int(generator.next() % UInt64(min(real.count, 65_536)))
                damage[index] = UInt8(truncatingIfNeeded: generator.next())
                damage[real.count - 1 - Int(generator.next() % UInt64(table))] = UInt8(truncatingIfNeeded: generator.next())
            }
            // Also the header fields that size and place the section table.
            let field = [0x28, 0x29, 0x2e, 0x3a, 0x3c, 0x3d, 0x3e][Int(generator.next() % 7)]
            damage[field] = UInt8(truncatingIfNeeded: generator.next())
            _ = StartupData.sections(read: Self.reader(real, damage: damage))
        }
    }

    @Test("the pages of a section: whole pages only, inside one private mapping of the executable at its load base")
    func pagesOfASection() {
        let maps = """
            55d0a0000000-55d0a2f37000 r-xp 00000000 fe:00 5399730                    /usr/sbin/understudy
            55d0a2f38000-55d0a3072000 r--p 02f37000 fe:00 5399730                    /usr/sbin/understudy
            55d0a3072000-55d0a5634000 rw-p 03071000 fe:00 5399730                    /usr/sbin/understudy
            55d0a5634000-55d0a57a7000 rw-p 00000000 00:00 0
            garbage
            """
        let mappings = StartupData.mappings(maps: maps)
        #expect(mappings.count == 4)
        let rodata = StartupData.Section(name: ".rodata", address: 0x3072_800, size: 0x10_0000, flags: 2)
        #expect(
            StartupData.pages(of: rodata, path: "/usr/sbin/understudy", mappings: mappings, pageSize: 4096)
                == 0x55d0_a307_3000..<0x55d0_a317_2000)
        // Not this executable's, or reaching past its mapping, or less than a page: nothing.
        #expect(StartupData.pages(of: rodata, path: "/usr/sbin/other", mappings: mappings, pageSize: 4096) == nil)
        var long = rodata
        long.size = 0x4000_0000
        #expect(StartupData.pages(of: long, path: "/usr/sbin/understudy", mappings: mappings, pageSize: 4096) == nil)
        var small = rodata
        small.size = 0x100
        #expect(StartupData.pages(of: small, path: "/usr/sbin/understudy", mappings: mappings, pageSize: 4096) == nil)
        var overflowing = rodata
        overflowing.address = UInt.max - 10
        #expect(StartupData.pages(of: overflowing, path: "/usr/sbin/understudy", mappings: mappings, pageSize: 4096) == nil)
    }

    @Test("runs to drop skip every copied page (present and not the file's, or swapped) and keep the rest")
    func droppableRuns() {
        let present: UInt64 = 1 << 63
        let swapped: UInt64 = 1 << 62
        let file: UInt64 = 1 << 61
        let entries: [UInt64] = [present | file, 0, present, present | file, swapped, swapped | file, 0, present]
        let runs = StartupData.droppableRuns(pages: 0x1000..<0x9000, entries: entries, pageSize: 0x1000)
        #expect(runs == [0x1000..<0x3000, 0x4000..<0x5000, 0x7000..<0x8000])
        #expect(StartupData.droppableRuns(pages: 0x1000..<0x3000, entries: [0, present | file], pageSize: 0x1000) == [0x1000..<0x3000])
        #expect(StartupData.droppableRuns(pages: 0x1000..<0x1000, entries: [], pageSize: 0x1000).isEmpty)
    }

    /// In this test process: from here on the runner's own `.rodata` is read-only, as the
    /// daemon's is after its start, so every test that runs after this one also checks that
    /// nothing writes it (a write would fault at once).
    @Test("released, .rodata's resident pages fall and what reads them goes on working")
    func releaseInThisProcess() throws {
        let before = try #require(StartupData.residentKilobytes())
        let released = StartupData.release()
        let after = try #require(StartupData.residentKilobytes())
        #expect(released > 0)
        #expect(after < before, "resident .rodata \(before) kB before, \(after) kB after, \(released) bytes released")
        // Constants still read right: their pages come back from the file.
        let table: StaticString = "a constant that lives in .rodata"
        #expect(table.withUTF8Buffer { String(decoding: $0, as: UTF8.self) } == "a constant that lives in .rodata")
        #expect(try #require(StartupData.residentKilobytes()) >= after)
    }
}
