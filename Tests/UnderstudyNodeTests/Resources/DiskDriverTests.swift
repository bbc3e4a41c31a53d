import Foundation
import Testing
import UnderstudyEngine
import UnderstudyModel
import UnderstudyTestSupport

@testable import UnderstudyNode

#if canImport(Glibc)
    import Glibc
#endif

/// A loop device over an image file the test creates, with a fresh file system; removed by
/// `remove()` (awaited by every test, also after a failure).
struct LoopDisk {
    let image: String
    let device: String
    let folder: String

    static func run(_ arguments: [String], timeout: Duration = .seconds(60)) async -> NetCommandResult {
        await NetCommandRunner().run(arguments, timeout: timeout)
    }

    /// `filesystem` nil: no file system (zeroes).
    static func make(_ name: String, filesystem: String?, sizeMiB: Int = 32, mkfsOptions: [String] = []) async throws -> LoopDisk {
        let folder = NSTemporaryDirectory() + "understudy-\(name)-\(getpid())"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let image = folder + "/disk.img"
        FileManager.default.createFile(atPath: image, contents: nil)
        try FileHandle(forWritingTo: URL(fileURLWithPath: image)).truncate(atOffset: UInt64(sizeMiB) << 20)
        let attach = await run(["losetup", "--find", "--show", image])
        guard attach.succeeded else {
            try? FileManager.default.removeItem(atPath: folder)
            throw TestFailure(attach.failureDescription)
        }
        let disk = LoopDisk(image: image, device: attach.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines), folder: folder)
        if let filesystem {
            let mkfs = await run(["mkfs.\(filesystem)", "-q"] + mkfsOptions + [disk.device])
            guard mkfs.succeeded else {
                await disk.remove()
                throw TestFailure(mkfs.failureDescription)
            }
        }
        return disk
    }

    /// Unmounts whatever of ours is still mounted (lazily), detaches the loop device and
    /// removes the folder.
    func remove() async {
        for entry in MountTable.current().reversed() where entry.mountPoint.hasPrefix(folder) {
            umount2(entry.mountPoint, Int32(MNT_DETACH))
        }
        _ = await Self.run(["losetup", "-d", device])
        try? FileManager.default.removeItem(atPath: folder)
    }

    func isMounted(at path: String) -> Bool { MountTable.entry(at: path, in: MountTable.current()) != nil }
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// The `disk` driver on real loop devices with real ext4/xfs file systems (root).
@Suite("disk resource", .serialized)
struct DiskDriverTests {
    static let loopDevices = Prerequisite.all(
        "loop-devices", [.root, .command("losetup", package: "mount"), .command("mkfs.ext4", package: "e2fsprogs")])

    func run(_ operation: ResourceOperation, _ name: String = "disk1") -> ResourceRun {
        ResourceRun(
            id: 1, group: "g", resource: name, operation: operation,
            context: ScriptContext(event: .start, isHomeServer: true, priority: 1, groupName: "g", resourceName: name))
    }

    func reason(_ outcome: ResourceOutcome) -> String? {
        if case .failure(let reason) = outcome { return reason }
        return nil
    }

    func driver(_ disk: LoopDisk, options: StorageDriverOptions = StorageDriverOptions()) -> DiskDriver {
        var options = options
        if options.fstab == "/etc/fstab" { options.fstab = disk.folder + "/fstab" }
        return DiskDriver(options: options, stateDirectory: disk.folder + "/state")
    }

    func settings(_ disk: LoopDisk, filesystem: String = "ext4") -> DiskSettings {
        var settings = DiskSettings(device: disk.device, filesystem: filesystem, mountPoint: disk.folder + "/mnt")
        settings.mount.unmountInterval = .milliseconds(200)
        settings.mount.mountTimeout = .seconds(30)
        return settings
    }

    /// Runs `body` with a fresh loop disk and always removes it.
    func withDisk(
        _ name: String, filesystem: String? = "ext4", mkfsOptions: [String] = [], _ body: (LoopDisk) async throws -> Void
    ) async throws {
        // xfs needs 300 MiB at least; the image is sparse.
        let disk = try await LoopDisk.make(name, filesystem: filesystem, sizeMiB: filesystem == "xfs" ? 320 : 32, mkfsOptions: mkfsOptions)
        do {
            try await body(disk)
        } catch {
            await disk.remove()
            throw error
        }
        await disk.remove()
    }

    @Test("start mounts (creating the mount point), data survives a stop and a start, stop unmounts", .requires(loopDevices))
    func mountAndUnmount() async throws {
        try await withDisk("disk-basic") { disk in
            let driver = driver(disk)
            let settings = settings(disk)
            #expect(await driver.perform(run(.start), settings: settings) == .success(asyncPID: nil))
            #expect(disk.isMounted(at: settings.mountPoint))
            try "record 1\n".write(toFile: settings.mountPoint + "/data", atomically: false, encoding: .utf8)
            // A second start finds it mounted already: idempotent.
            #expect(await driver.perform(run(.start), settings: settings) == .success(asyncPID: nil))
            #expect(await driver.perform(run(.stop), settings: settings) == .success(asyncPID: nil))
            #expect(!disk.isMounted(at: settings.mountPoint))
            #expect(!FileManager.default.fileExists(atPath: settings.mountPoint + "/data"))
            // A stop of what is not mounted succeeds.
            #expect(await driver.perform(run(.stop), settings: settings) == .success(asyncPID: nil))
            #expect(await driver.perform(run(.start), settings: settings) == .success(asyncPID: nil))
            #expect((try? String(contentsOfFile: settings.mountPoint + "/data", encoding: .utf8)) == "record 1\n")
            #expect(await driver.perform(run(.stop), settings: settings) == .success(asyncPID: nil))
        }
    }

    @Test("UUID= and LABEL= find the device through blkid; an unknown one fails clearly", .requires(loopDevices))
    func deviceByUUIDAndLabel() async throws {
        try await withDisk("disk-uuid", mkfsOptions: ["-L", "ustest\(getpid() % 10000)"]) { disk in
            let driver = driver(disk)
            let uuid = await LoopDisk.run(["blkid", "-s", "UUID", "-o", "value", disk.device])
            try #require(uuid.succeeded)
            for spec in ["UUID=" + uuid.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines), "LABEL=ustest\(getpid() % 10000)"] {
                var settings = settings(disk)
                settings.device = spec
                #expect(await driver.perform(run(.start), settings: settings) == .success(asyncPID: nil), "\(spec)")
                #expect(disk.isMounted(at: settings.mountPoint))
                #expect(await driver.perform(run(.stop), settings: settings) == .success(asyncPID: nil))
            }
            var unknown = settings(disk)
            unknown.device = "UUID=00000000-0000-0000-0000-000000000000"
            let failure = reason(await driver.perform(run(.start), settings: unknown))
            #expect(failure?.contains("no device with UUID=") == true, "\(failure ?? "started")")
        }
    }

    @Test("a missing device, a file that is not a block device, a missing mount point parent fail clearly", .requires(loopDevices))
    func badDevices() async throws {
        try await withDisk("disk-bad") { disk in
            let driver = driver(disk)
            var missing = settings(disk)
            missing.device = disk.folder + "/no-such-device"
            #expect(reason(await driver.perform(run(.start), settings: missing))?.contains("does not exist") == true)
            var file = settings(disk)
            file.device = disk.image
            #expect(reason(await driver.perform(run(.start), settings: file))?.contains("is not a block device") == true)
            var orphan = settings(disk)
            orphan.mount.mountPoint = disk.folder + "/missing-parent/mnt"
            let failure = reason(await driver.perform(run(.start), settings: orphan))
            #expect(failure?.contains("parent folder") == true, "\(failure ?? "started")")
        }
    }

    @Test(
        "refuses a device mounted elsewhere on this server, a busy mount point, and an fstab entry without noauto", .requires(loopDevices))
    func refusals() async throws {
        try await withDisk("disk-refuse") { disk in
            let driver = driver(disk)
            let settings = settings(disk)
            // Mounted by hand somewhere else.
            let other = disk.folder + "/other"
            try FileManager.default.createDirectory(atPath: other, withIntermediateDirectories: true)
            #expect((await LoopDisk.run(["mount", disk.device, other])).succeeded)
            let elsewhere = reason(await driver.perform(run(.start), settings: settings))
            #expect(elsewhere?.contains("is mounted at \(other)") == true, "\(elsewhere ?? "started")")
            #expect((await LoopDisk.run(["umount", other])).succeeded)

            // Something else mounted on the mount point.
            try FileManager.default.createDirectory(atPath: settings.mountPoint, withIntermediateDirectories: true)
            #expect((await LoopDisk.run(["mount", "-t", "tmpfs", "tmpfs", settings.mountPoint])).succeeded)
            let busy = reason(await driver.perform(run(.start), settings: settings))
            #expect(busy?.contains("is in use") == true, "\(busy ?? "started")")
            #expect((await LoopDisk.run(["umount", settings.mountPoint])).succeeded)

            // In fstab: refused; with noauto: fine.
            try "# comment\n\(disk.device) \(settings.mountPoint) ext4 defaults 0 2\n".write(
                toFile: disk.folder + "/fstab", atomically: true, encoding: .utf8)
            let fstab = reason(await driver.perform(run(.start), settings: settings))
            #expect(fstab?.contains("fstab line 2") == true, "\(fstab ?? "started")")
            try "\(disk.device) \(settings.mountPoint) ext4 noauto 0 0\n".write(
                toFile: disk.folder + "/fstab", atomically: true, encoding: .utf8)
            #expect(await driver.perform(run(.start), settings: settings) == .success(asyncPID: nil))
            #expect(await driver.perform(run(.stop), settings: settings) == .success(asyncPID: nil))
        }
    }

    @Test("stop kills a process keeping the mount point busy (TERM, then KILL), then unmounts", .requires(loopDevices))
    func busyUnmount() async throws {
        try await withDisk("disk-busy") { disk in
            let driver = driver(disk)
            let settings = settings(disk)
            #expect(await driver.perform(run(.start), settings: settings) == .success(asyncPID: nil))
            // One process in the mount point that ignores SIGTERM, one holding a file open.
            let stubborn = try Self.spawn("trap '' TERM; while :; do sleep 0.1; done", in: settings.mountPoint)
            let holder = try Self.spawn("exec 3>\(settings.mountPoint)/open-file; sleep 600", in: "/")
            try await Task.sleep(for: .milliseconds(300))
            #expect(await driver.perform(run(.stop), settings: settings) == .success(asyncPID: nil))
            #expect(!disk.isMounted(at: settings.mountPoint))
            stubborn.waitUntilExit()
            holder.waitUntilExit()
            #expect(stubborn.terminationReason == .uncaughtSignal && stubborn.terminationStatus == SIGKILL)
            #expect(holder.terminationReason == .uncaughtSignal && holder.terminationStatus == SIGTERM)
        }
    }

    @Test("with unmount-busy-action none a busy mount point stays mounted and the stop fails after the retries", .requires(loopDevices))
    func busyWithoutKill() async throws {
        try await withDisk("disk-nokill") { disk in
            let driver = driver(disk)
            var settings = settings(disk)
            settings.mount.busyAction = .none
            settings.mount.unmountRetries = 2
            #expect(await driver.perform(run(.start), settings: settings) == .success(asyncPID: nil))
            let holder = Process()
            holder.executableURL = URL(fileURLWithPath: "/bin/sleep")
            holder.arguments = ["600"]
            holder.currentDirectoryURL = URL(fileURLWithPath: settings.mountPoint)
            try holder.run()
            defer { kill(holder.processIdentifier, SIGKILL) }
            try await Task.sleep(for: .milliseconds(200))
            let failure = reason(await driver.perform(run(.stop), settings: settings))
            #expect(failure?.contains("after 3 attempts") == true, "\(failure ?? "stopped")")
            #expect(disk.isMounted(at: settings.mountPoint))
            kill(holder.processIdentifier, SIGKILL)
            for _ in 0..<100 where holder.isRunning { try await Task.sleep(for: .milliseconds(50)) }
            #expect(await driver.perform(run(.stop), settings: settings) == .success(asyncPID: nil))
        }
    }

    @Test("an unmount that hangs is cut at unmount-timeout and retried; the stop then fails", .requires(loopDevices))
    func unmountTimeout() async throws {
        try await withDisk("disk-hang") { disk in
            // A umount that never returns stands in for a dead disk's unmount.
            let hanging = disk.folder + "/hanging-umount"
            try "#!/bin/sh\nsleep 600\n".write(toFile: hanging, atomically: true, encoding: .utf8)
            chmod(hanging, 0o755)
            var options = StorageDriverOptions()
            options.umount = hanging
            let driver = driver(disk, options: options)
            var settings = settings(disk)
            settings.mount.unmountTimeout = .seconds(1)
            settings.mount.unmountRetries = 1
            #expect(await driver.perform(run(.start), settings: settings) == .success(asyncPID: nil))
            let started = ContinuousClock.now
            let failure = reason(await driver.perform(run(.stop), settings: settings))
            #expect(failure?.contains("timed out") == true, "\(failure ?? "stopped")")
            #expect(ContinuousClock.now - started < .seconds(30))
            #expect(await self.driver(disk).perform(run(.stop), settings: settings) == .success(asyncPID: nil))
        }
    }

    @Test("fsck: a device without a file system fails the check; a damaged mount is checked and retried", .requires(loopDevices))
    func fsckFailures() async throws {
        try await withDisk("disk-fsck", filesystem: nil) { disk in
            let driver = driver(disk)
            var settings = settings(disk)
            settings.fsck = .always
            let failure = reason(await driver.perform(run(.start), settings: settings))
            #expect(failure?.contains("file system check of \(disk.device) failed") == true, "\(failure ?? "started")")
            // Never checked: the mount fails on each attempt, fsck between them fails too.
            settings.fsck = .never
            settings.mount.mountRetries = 1
            let mount = reason(await driver.perform(run(.start), settings: settings))
            #expect(mount?.contains("after 2 attempts") == true, "\(mount ?? "started")")
            #expect(!disk.isMounted(at: settings.mountPoint))
        }
    }

    @Test("fsck every fsck-interval-th mount: the count lives in the state folder", .requires(loopDevices))
    func fsckInterval() async throws {
        try await withDisk("disk-interval") { disk in
            // An fsck that records its calls and succeeds.
            let log = disk.folder + "/fsck.log"
            let recorder = disk.folder + "/fsck"
            try "#!/bin/sh\necho \"$@\" >> \(log)\nexit 1\n".write(toFile: recorder, atomically: true, encoding: .utf8)
            chmod(recorder, 0o755)
            var options = StorageDriverOptions()
            options.fsck = recorder
            let driver = driver(disk, options: options)
            var settings = settings(disk)
            settings.fsckInterval = 3
            for _ in 1...6 {
                #expect(await driver.perform(run(.start), settings: settings) == .success(asyncPID: nil))
                #expect(await driver.perform(run(.stop), settings: settings) == .success(asyncPID: nil))
            }
            let calls = ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").split(separator: "\n")
            #expect(calls.count == 2, "\(calls)")
            #expect(calls.first == "-t ext4 -y \(disk.device)")
        }
    }

    @Test("fence kills every user at once and detaches the mount without waiting", .requires(loopDevices))
    func fence() async throws {
        try await withDisk("disk-fence") { disk in
            let driver = driver(disk)
            let settings = settings(disk)
            #expect(await driver.perform(run(.start), settings: settings) == .success(asyncPID: nil))
            let user = try Self.spawn("trap '' TERM; exec 3>\(settings.mountPoint)/f; while :; do sleep 0.1; done", in: "/")
            try await Task.sleep(for: .milliseconds(200))
            driver.fence(settings, resource: "disk1")
            #expect(!disk.isMounted(at: settings.mountPoint))
            user.waitUntilExit()
            #expect(user.terminationStatus == SIGKILL)
        }
    }

    @Test(
        "xfs mounts and unmounts; filesystem none only checks the device", .requires(loopDevices, .command("mkfs.xfs", package: "xfsprogs"))
    )
    func xfsAndRaw() async throws {
        try await withDisk("disk-xfs", filesystem: "xfs") { disk in
            let driver = driver(disk)
            var settings = settings(disk, filesystem: "xfs")
            settings.fsck = .always  // xfs is never checked before a mount
            #expect(await driver.perform(run(.start), settings: settings) == .success(asyncPID: nil))
            #expect(MountTable.entry(at: settings.mountPoint, in: MountTable.current())?.filesystem == "xfs")
            #expect(await driver.perform(run(.stop), settings: settings) == .success(asyncPID: nil))
            let raw = self.settings(disk, filesystem: "none")
            #expect(await driver.perform(run(.start), settings: raw) == .success(asyncPID: nil))
            #expect(!disk.isMounted(at: raw.mountPoint))
            #expect(await driver.perform(run(.stop), settings: raw) == .success(asyncPID: nil))
        }
    }

    @Test("ext4 with mmp: a second mount of the same device is refused by the kernel", .requires(loopDevices))
    func multiMountProtection() async throws {
        try await withDisk("disk-mmp", mkfsOptions: ["-O", "mmp", "-E", "mmp_update_interval=1"]) { disk in
            let driver = driver(disk)
            let settings = settings(disk)
            #expect(await driver.perform(run(.start), settings: settings) == .success(asyncPID: nil))
            // What a second server would do: mount the same disk, seen through its own device
            // (another loop device over the image: one kernel shares the superblock of one
            // block device between mount namespaces, so only a second device is a second host).
            let secondDevice = await LoopDisk.run(["losetup", "--find", "--show", disk.image])
            try #require(secondDevice.succeeded)
            let device2 = secondDevice.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines)
            let second = disk.folder + "/second"
            try FileManager.default.createDirectory(atPath: second, withIntermediateDirectories: true)
            let other = await LoopDisk.run(
                ["unshare", "--mount", "--propagation", "private", "mount", "-t", "ext4", device2, second], timeout: .seconds(60))
            _ = await LoopDisk.run(["losetup", "-d", device2])
            #expect(!other.succeeded, "the kernel let a second device mount the file system")
            #expect(other.standardError.contains("already mounted") || other.standardError.contains("busy"), "\(other.standardError)")
            #expect(await driver.perform(run(.stop), settings: settings) == .success(asyncPID: nil))
        }
    }

    static func spawn(_ script: String, in directory: String) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", script]
        process.currentDirectoryURL = URL(fileURLWithPath: directory)
        try process.run()
        return process
    }
}

@Suite("mount table parsing")
struct MountTableTests {
    @Test("mountinfo lines with optional fields and escaped spaces")
    func parsesMountinfo() {
        let text = """
            36 35 98:0 /mnt1 /mnt/with\\040space rw,noatime master:1 - ext3 /dev/root rw,errors=continue
            37 36 7:3 / /srv/data rw shared:5 unbindable - ext4 /dev/loop3 rw
            garbage line
            38 36 0:45 / /proc rw - proc proc rw
            """
        let entries = MountTable.parse(mountinfo: text)
        #expect(entries.count == 3)
        #expect(entries[0].mountPoint == "/mnt/with space")
        #expect(entries[0].device == DeviceNumber(major: 98, minor: 0))
        #expect(entries[1].source == "/dev/loop3" && entries[1].filesystem == "ext4")
        #expect(MountTable.entry(at: "/srv/data/", in: entries)?.device == DeviceNumber(major: 7, minor: 3))
    }

    @Test("fstab: comments, noauto, missing fields")
    func parsesFstab() {
        let lines = MountTable.parse(fstab: "# x\n\nUUID=abc /data ext4 defaults 0 2\n/dev/sdb1\t/b\text4\tnoauto,rw\n/dev/sdc\n")
        #expect(lines.count == 2)
        #expect(lines[0].number == 3 && lines[0].mountsAtBoot)
        #expect(lines[1].spec == "/dev/sdb1" && !lines[1].mountsAtBoot)
    }

    @Test("random and mutated mountinfo never crashes the parser")
    func fuzz() {
        var generator = SystemRandomNumberGenerator()
        let seed = "36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue\n"
        for _ in 0..<2000 {
            var bytes = Array(seed.utf8)
            for _ in 0..<Int.random(in: 1...8, using: &generator) {
                let index = Int.random(in: 0..<bytes.count, using: &generator)
                bytes[index] = UInt8.random(in: 0...255, using: &generator)
            }
            if Bool.random(using: &generator) { bytes = Array(bytes.prefix(Int.random(in: 0...bytes.count, using: &generator))) }
            let text = String(decoding: bytes, as: UTF8.self)
            _ = MountTable.parse(mountinfo: text)
            _ = MountTable.parse(fstab: text)
        }
    }

    @Test("device numbers from dev_t as glibc encodes them")
    func deviceNumbers() {
        #expect(DeviceNumber(UInt64(0x0803)) == DeviceNumber(major: 8, minor: 3))
        #expect(DeviceNumber(UInt64(259) << 8 | 1) == DeviceNumber(major: 259, minor: 1))
    }
}
