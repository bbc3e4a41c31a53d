import Foundation
import Testing
import UnderstudyEngine
import UnderstudyTestSupport

@testable import UnderstudyNode

#if canImport(Glibc)
    import Glibc
#endif

/// diskw and volmgrw on real block devices: a loop device over a file the test creates (root).
@Suite("Block device monitors", .serialized)
struct BlockDeviceProbeTests {
    static func run(_ arguments: [String]) async -> NetCommandResult {
        await NetCommandRunner().run(arguments, timeout: .seconds(30))
    }

    /// Loop devices need root and losetup.
    static let loopDevices = Prerequisite.all("loop-devices", [.root, .command("losetup", package: "mount")])

    /// The loop device still has a backing file (sysfs).
    static func isBound(_ device: String) -> Bool {
        let name = (device as NSString).lastPathComponent
        return FileManager.default.fileExists(atPath: "/sys/block/\(name)/loop/backing_file")
    }

    static func isError(_ result: MonitorResult) -> Bool {
        if case .error = result { return true }
        return false
    }

    @Test("diskw read-direct and read on a loop device; an error once the device is detached", .requires(loopDevices))
    func diskOnLoopDevice() async throws {
        let image = NSTemporaryDirectory() + "understudy-diskw-\(getpid()).img"
        FileManager.default.createFile(atPath: image, contents: nil)
        try FileHandle(forWritingTo: URL(fileURLWithPath: image)).truncate(atOffset: 8 << 20)
        defer { try? FileManager.default.removeItem(atPath: image) }
        let attach = await Self.run(["losetup", "--find", "--show", image])
        try #require(attach.succeeded, "\(attach.failureDescription)")
        let device = attach.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines)
        var attached = true
        defer { if attached { _ = try? Process.run(URL(fileURLWithPath: "/sbin/losetup"), arguments: ["-d", device]).waitUntilExit() } }

        for method: DiskProbe.Method in [.readDirect, .read] {
            let result = await DiskProbe(device: device, method: method, size: 512, diskFullIsError: true, timeout: .seconds(5)).check()
            #expect(result == .normal, "\(method): \(result)")
        }
        let tur = await DiskProbe(device: device, method: .tur, size: 512, diskFullIsError: true, timeout: .seconds(5)).check()
        // A loop device does not speak SCSI: TEST UNIT READY fails with a clear reason.
        #expect(Self.isError(tur), "\(tur)")

        let detach = await Self.run(["losetup", "-d", device])
        #expect(detach.succeeded, "\(detach.failureDescription)")
        attached = false
        // The kernel may finish a detach a moment later (a device still open elsewhere, udev's
        // probe of the new device, is cleared when it closes): wait for it, bounded.
        _ = await eventually(within: .seconds(5), every: .milliseconds(100)) { !Self.isBound(device) }
        var target = device
        var gone = await DiskProbe(device: target, method: .readDirect, size: 512, diskFullIsError: true, timeout: .seconds(5)).check()
        // Tests running beside this one attach loop devices too and may take the freed number at
        // once: then the device is someone else's, not gone. Try again with a fresh one (bounded).
        for _ in 0..<5 {
            if Self.isError(gone) { break }
            let reused = await Self.run(["losetup", target])
            guard reused.succeeded else { break }
            let again = await Self.run(["losetup", "--find", "--show", image])
            guard again.succeeded else { break }
            target = again.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines)
            _ = await Self.run(["losetup", "-d", target])
            gone = await DiskProbe(device: target, method: .readDirect, size: 512, diskFullIsError: true, timeout: .seconds(5)).check()
        }
        #expect(Self.isError(gone), "\(gone)")
    }

    @Test(
        "volmgrw: an LVM volume group over two loop devices is Normal, partial once one is detached, an error once removed",
        .requires(loopDevices, .command("vgcreate", package: "lvm2")))
    func volumeGroup() async throws {
        let images = (1...2).map { NSTemporaryDirectory() + "understudy-volmgrw-\(getpid())-\($0).img" }
        let group = "understudy\(getpid())"
        var devices: [String] = []
        var detached: [String] = []
        // Cleaned up with awaited commands, not in a `defer`: LVM commands can take seconds,
        // and blocking one of the test runner's few threads that long stalls every other test.
        func cleanUp() async {
            _ = await Self.run(["vgremove", "-f", group])
            for device in devices where !detached.contains(device) {
                _ = await Self.run(["pvremove", "-ff", "-y", device])
                _ = await Self.run(["losetup", "-d", device])
            }
            for image in images { try? FileManager.default.removeItem(atPath: image) }
        }
        do {
            for image in images {
                FileManager.default.createFile(atPath: image, contents: nil)
                try FileHandle(forWritingTo: URL(fileURLWithPath: image)).truncate(atOffset: 32 << 20)
                let attach = await Self.run(["losetup", "--find", "--show", image])
                try #require(attach.succeeded, "\(attach.failureDescription)")
                devices.append(attach.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines))
            }
            try await checkVolumeGroup(group, over: devices, detached: &detached)
        } catch {
            await cleanUp()
            throw error
        }
        await cleanUp()
    }

    /// Normal over every physical volume, partial without one, an error once removed.
    func checkVolumeGroup(_ group: String, over devices: [String], detached: inout [String]) async throws {
        let pv = await Self.run(["pvcreate", "-ff", "-y"] + devices)
        try #require(pv.succeeded, "\(pv.failureDescription)")
        let vg = await Self.run(["vgcreate", group] + devices)
        try #require(vg.succeeded, "\(vg.failureDescription)")
        let probe = VolumeGroupProbe(volumeGroup: group, timeout: .seconds(10))
        #expect(await probe.check() == .normal)

        // One physical volume disappears (its disk is gone): the group is partial. Noted, so that
        // clean-up never detaches the number again: another test may have attached it since.
        let detach = await Self.run(["losetup", "-d", devices[1]])
        if detach.succeeded { detached.append(devices[1]) }
        #expect(detach.succeeded, "\(detach.failureDescription)")
        let partial = await probe.check()
        if case .error(let reason) = partial {
            #expect(reason.contains("partial"), "\(reason)")
        } else {
            Issue.record("a volume group missing a physical volume was reported \(partial)")
        }

        let removed = await Self.run(["vgremove", "-f", group])
        #expect(removed.succeeded, "\(removed.failureDescription)")
        #expect(Self.isError(await probe.check()))
    }
}
