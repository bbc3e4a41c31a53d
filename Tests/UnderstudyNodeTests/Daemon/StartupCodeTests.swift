import Foundation
import Testing

@testable import UnderstudyNode

@Suite("Startup code release")
struct StartupCodeTests {
    @Test("only the executable's r-xp mappings are code: not its data, not libraries, not anonymous memory; a replaced file keeps its name")
    func codeRangesFromMaps() {
        let maps = """
            55d0a0000000-55d0a2f37000 r-xp 00000000 fe:00 5399730                    /usr/sbin/understudy
            55d0a2f38000-55d0a3072000 r--p 02f37000 fe:00 5399730                    /usr/sbin/understudy
            55d0a3072000-55d0a5634000 rw-p 03071000 fe:00 5399730                    /usr/sbin/understudy
            55d0a5634000-55d0a57a7000 rw-p 00000000 00:00 0
            7f2ccc644000-7f2ccc79a000 r-xp 00026000 fe:00 333151                     /usr/lib/x86_64-linux-gnu/libc.so.6
            7f2cd0000000-7f2cd0001000 r-xp 00000000 fe:00 77                         /opt/my tools/understudy (deleted)
            7fff0000-7fff1000 r-xp 00000000 00:00 0                                  [vdso]
            garbage line
            """
        let ranges = StartupCode.codeRanges(maps: maps, executable: "/usr/sbin/understudy")
        #expect(ranges.count == 1)
        #expect(ranges.first?.start == 0x55d0_a000_0000)
        #expect(ranges.first?.length == 0x2f37000)
        let replaced = StartupCode.codeRanges(maps: maps, executable: "/opt/my tools/understudy (deleted)")
        #expect(replaced.count == 1 && replaced.first?.length == 0x1000)
        #expect(StartupCode.codeRanges(maps: maps, executable: "/usr/sbin/other").isEmpty)
    }

    @Test("releasing this process's code pages lowers its resident code and the code goes on running")
    func releaseLowersResidentCode() throws {
        let before = try #require(StartupCode.residentKilobytes())
        #expect(before > 0, "the test binary's code is resident while it runs")
        let released = StartupCode.release()
        #expect(released > 0)
        let after = try #require(StartupCode.residentKilobytes())
        #expect(after < before, "resident code \(before) kB before, \(after) kB after")
        // The code runs on: pages come back as they are needed.
        let text = (1...1000).map { String($0) }.joined(separator: ",")
        #expect(text.split(separator: ",").count == 1000)
        #expect(
            StartupCode.codeRanges(maps: KernelFile.read("/proc/self/maps") ?? "", executable: StartupCode.executablePath() ?? "").count
                >= 1)
    }
}
