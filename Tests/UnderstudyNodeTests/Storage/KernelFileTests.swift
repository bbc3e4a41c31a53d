import Foundation
import Testing
import UnderstudyTestSupport

@testable import UnderstudyNode

#if canImport(Glibc)
    import Glibc
#endif

/// `/proc` files are read whole (KernelFile.swift): Foundation's readers return only their
/// first page.
@Suite("Kernel files")
struct KernelFileTests {
    @Test func procFilesLongerThanAPageAreReadWhole() throws {
        let maps = try #require(KernelFile.read("/proc/self/maps"))
        let smaps = try #require(KernelFile.read("/proc/self/smaps"))
        #expect(smaps.utf8.count > 16_384, "\(smaps.utf8.count) bytes")
        #expect(smaps.hasSuffix("\n"), "the last line is complete")
        // Every mapping of maps is in smaps: nothing was cut off at the end.
        let lastMapping = try #require(maps.split(separator: "\n").last?.split(separator: " ").first)
        #expect(smaps.contains("\n" + lastMapping + " "), "smaps ends before the last mapping \(lastMapping)")
        #expect(KernelFile.read("/proc/self/no-such-file") == nil)
        #expect(KernelFile.bytes("/proc/self/maps", limit: 100)?.count == 100)
    }

    /// 80 mounts make mountinfo about 10 KiB: every one of them is seen (the disk resources
    /// decide from this table whether a device is mounted already).
    @Test("a mount table longer than a page is parsed whole", .requires(.root, .command("unshare", package: "util-linux")))
    func mountTableLongerThanAPage() async throws {
        let folder = "/tmp/understudy-mountinfo-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        // The mounts live in a mount namespace of their own and go with it: nothing to unmount.
        let holder = Process()
        holder.executableURL = URL(fileURLWithPath: "/usr/bin/unshare")
        holder.arguments = [
            "--mount", "--propagation", "private", "sh", "-c",
            "for i in $(seq 1 80); do mkdir -p \(folder)/$i && mount -t tmpfs -o size=64k none \(folder)/$i || exit 1; done; exec sleep 60",
        ]
        try holder.run()
        defer {
            if holder.isRunning { kill(holder.processIdentifier, SIGKILL) }
            holder.waitUntilExit()
        }
        let path = "/proc/\(holder.processIdentifier)/mountinfo"
        func ours() -> [MountEntry] { MountTable.current(path: path).filter { $0.mountPoint.hasPrefix(folder + "/") } }
        let all = await eventually(within: .seconds(20), every: .milliseconds(50)) { ours().count == 80 || !holder.isRunning }
        #expect(all && ours().count == 80, "\(ours().count) of 80 mounts seen")
        #expect((KernelFile.read(path)?.utf8.count ?? 0) > 8_192)
        #expect(Set(ours().map(\.mountPoint)) == Set((1...80).map { "\(folder)/\($0)" }))
    }
}
