import Foundation
import Testing

@testable import UnderstudyNode

@Suite("Startup code release")
struct StartupCodeTests {
    @Test(
        "code is every r-xp mapping of a file without an anonymous page: the executable and libraries, not data, not anonymous or vdso code, not a library with a written page; a replaced file keeps its name"
    )
    func codeMappingsFromSmaps() {
        func mapping(_ header: String, rss: Int, anonymous: Int) -> String {
            """
            \(header)
            Size:               4096 kB
            Rss:                \(rss) kB
            Pss:                \(rss / 2) kB
            Anonymous:          \(anonymous) kB
            VmFlags: rd ex mr mw me dw
            """
        }
        let smaps = [
            mapping(
                "55d0a0000000-55d0a2f37000 r-xp 00000000 fe:00 5399730                    /usr/sbin/understudy", rss: 14000, anonymous: 0),
            mapping(
                "55d0a2f38000-55d0a3072000 r--p 02f37000 fe:00 5399730                    /usr/sbin/understudy", rss: 1200, anonymous: 1200),
            mapping(
                "55d0a3072000-55d0a5634000 rw-p 03071000 fe:00 5399730                    /usr/sbin/understudy", rss: 4000, anonymous: 480),
            mapping("55d0a5634000-55d0a57a7000 rw-p 00000000 00:00 0", rss: 700, anonymous: 700),
            mapping(
                "7f2ccc644000-7f2ccc79a000 r-xp 00026000 fe:00 333151                     /usr/lib/x86_64-linux-gnu/libc.so.6", rss: 1300,
                anonymous: 0),
            mapping(
                "7f2ccd000000-7f2ccd100000 r-xp 00001000 fe:00 333152                     /usr/lib/libtextrel.so", rss: 900, anonymous: 4),
            mapping(
                "7f2cd0000000-7f2cd0001000 r-xp 00000000 fe:00 77                         /opt/my tools/understudy (deleted)", rss: 4,
                anonymous: 0),
            mapping("7f2cd1000000-7f2cd1001000 r-xp 00000000 00:00 0", rss: 4, anonymous: 4),
            mapping("7fff0000-7fff1000 r-xp 00000000 00:00 0                                  [vdso]", rss: 4, anonymous: 0),
            "garbage line",
        ].joined(separator: "\n")
        let mappings = StartupCode.codeMappings(smaps: smaps)
        #expect(
            mappings.map(\.path) == ["/usr/sbin/understudy", "/usr/lib/x86_64-linux-gnu/libc.so.6", "/opt/my tools/understudy (deleted)"])
        #expect(mappings.first?.start == 0x55d0_a000_0000)
        #expect(mappings.first?.length == 0x2f37000)
        #expect(mappings.map(\.residentKilobytes) == [14000, 1300, 4])
        #expect(StartupCode.codeMappings(smaps: "").isEmpty)
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
        #expect(StartupCode.codeMappings(smaps: KernelFile.read("/proc/self/smaps") ?? "").contains { $0.path.contains("libc.so") })
    }
}
