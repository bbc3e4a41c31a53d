import Foundation
import Testing
import UnderstudyModel
import UnderstudyTestSupport

@testable import UnderstudyNode

#if canImport(Glibc)
    import Glibc
#endif

/// `understudy diskhb init` and the diskhb transport on real loop devices over image files
/// the tests create (root). Every loop device is detached and every image removed, also when
/// a test fails.
@Suite("Disk heartbeat on loop devices", .serialized)
struct DiskHeartbeatDeviceTests {
    static let loopDevices = Prerequisite.all("loop-devices", [.root, .command("losetup", package: "mount")])
    let key = TransportTestSupport.key

    /// A loop device over a fresh image of `megabytes`, detached and removed after `body`.
    func withLoopDevice(megabytes: Int, _ body: (_ device: String, _ image: String) async throws -> Void) async throws {
        let image = NSTemporaryDirectory() + "understudy-diskhb-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).img"
        _ = FileManager.default.createFile(atPath: image, contents: nil)
        defer { try? FileManager.default.removeItem(atPath: image) }
        try FileHandle(forWritingTo: URL(fileURLWithPath: image)).truncate(atOffset: UInt64(megabytes) << 20)
        let attach = await BlockingPathTestSupport.run(["losetup", "--find", "--show", image])
        try #require(attach.succeeded, "\(attach.failureDescription)")
        let device = attach.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines)
        do {
            try await body(device, image)
        } catch {
            _ = await BlockingPathTestSupport.run(["losetup", "-d", device])
            throw error
        }
        _ = await BlockingPathTestSupport.run(["losetup", "-d", device])
    }

    func context(_ config: ClusterConfig, _ me: String, _ recorder: PathRecorder) -> HeartbeatTransportContext {
        HeartbeatTransportContext(config: config, me: me, key: key, bootID: me == "node1" ? 100 : 200, events: recorder.eventSink)
    }

    @Test("init prepares a 16 MiB device (128 slots); refuses a regular file and a device under 10 MiB", .requires(loopDevices))
    func initChecksSizeAndType() async throws {
        try await withLoopDevice(megabytes: 16) { device, image in
            let prepared = try DiskHeartbeatPreparation.prepare(device, force: false)
            #expect(prepared.slotCount == 128 && !prepared.wasPrepared)
            #expect(try DiskHeartbeatDevice(path: device).header() == DiskHeartbeatHeader(slotCount: 128))
            #expect(try DiskHeartbeatPreparation.prepare(device, force: false).wasPrepared)
            let notBlock = #expect(throws: DiskHeartbeatDeviceError.self) { try DiskHeartbeatPreparation.prepare(image, force: true) }
            #expect(notBlock?.description.contains("is not a block device") == true, "\(String(describing: notBlock))")
        }
        try await withLoopDevice(megabytes: 8) { device, _ in
            let small = #expect(throws: DiskHeartbeatDeviceError.self) { try DiskHeartbeatPreparation.prepare(device, force: true) }
            #expect(small?.description.contains("at least 10485760") == true, "\(String(describing: small))")
        }
    }

    @Test(
        "init refuses an ext4 file system (naming it) unless --force, and a mounted device even with --force",
        .requires(loopDevices, .command("mkfs.ext4", package: "e2fsprogs"), .command("mount", package: "mount")))
    func initRefusesFileSystems() async throws {
        try await withLoopDevice(megabytes: 16) { device, _ in
            let mkfs = await BlockingPathTestSupport.run(["mkfs.ext4", "-q", "-F", device])
            try #require(mkfs.succeeded, "\(mkfs.failureDescription)")
            let refused = #expect(throws: DiskHeartbeatDeviceError.self) { try DiskHeartbeatPreparation.prepare(device, force: false) }
            #expect(refused?.description.contains("ext2/ext3/ext4") == true, "\(String(describing: refused))")
            #expect(refused?.description.contains("--force") == true)

            let mountPoint = NSTemporaryDirectory() + "understudy-diskhb-mnt-\(getpid())"
            try FileManager.default.createDirectory(atPath: mountPoint, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: mountPoint) }
            let mount = await BlockingPathTestSupport.run(["mount", device, mountPoint])
            try #require(mount.succeeded, "\(mount.failureDescription)")
            let mounted = #expect(throws: DiskHeartbeatDeviceError.self) { try DiskHeartbeatPreparation.prepare(device, force: true) }
            _ = await BlockingPathTestSupport.run(["umount", mountPoint])
            #expect(mounted?.description.contains("is mounted on \(mountPoint)") == true, "\(String(describing: mounted))")

            let forced = try DiskHeartbeatPreparation.prepare(device, force: true)
            #expect(forced.slotCount == 128)
            #expect(DiskHeartbeatDevice.foreignSignature(in: try DiskHeartbeatDevice(path: device).read(at: 0, length: 72 * 1024)) == nil)
        }
    }

    @Test("the transport refuses a device without a header and a path that is not a block device, naming the key", .requires(loopDevices))
    func transportRefusesUnpreparedDevices() async throws {
        try await withLoopDevice(megabytes: 16) { device, image in
            let recorder = PathRecorder()
            let config = try BlockingPathTestSupport.config("  - {name: disk1, type: diskhb, device: \(device)}")
            let unprepared = await #expect(throws: (any Error).self) {
                _ = try await DiskHeartbeatTransport.open(config.heartbeats[1], context(config, "node1", recorder))
            }
            let text = "\(String(describing: unprepared))"
            #expect(text.contains("no disk heartbeat header") && text.contains("understudy diskhb init \(device)"), "\(text)")

            let file = try BlockingPathTestSupport.config("  - {name: disk1, type: diskhb, device: \(image)}")
            let notBlock = await #expect(throws: (any Error).self) {
                _ = try await DiskHeartbeatTransport.open(file.heartbeats[1], context(file, "node1", recorder))
            }
            #expect("\(String(describing: notBlock))".contains("device: \(image) is not a block device"))
        }
    }

    /// Two servers' transports on one device: each sees the other's heartbeats; the device
    /// detached makes both paths fail once (logged once, counted), attached again they work.
    @Test(
        "two servers exchange heartbeats through the device; the device gone (size 0): the path fails once; back: it recovers",
        .requires(loopDevices))
    func exchangeAndDeviceLoss() async throws {
        try await withLoopDevice(megabytes: 16) { device, image in
            _ = try DiskHeartbeatPreparation.prepare(device, force: false)
            let config = try BlockingPathTestSupport.config("  - {name: disk1, type: diskhb, device: \(device)}")
            let (one, two) = (PathRecorder(), PathRecorder())
            let first = try #require(try await DiskHeartbeatTransport.open(config.heartbeats[1], context(config, "node1", one)))
            let second = try #require(try await DiskHeartbeatTransport.open(config.heartbeats[1], context(config, "node2", two)))
            let followers = [one.follow(first), two.follow(second)]
            defer { for follower in followers { follower.cancel() } }
            // Closed however the test ends: a transport left running would go on opening
            // the loop device, which another test may attach next.
            do {
                try await exchange(first, second, one, two, device: device, image: image)
            } catch {
                await first.close()
                await second.close()
                throw error
            }
            await first.close()
            await second.close()
        }
    }

    func exchange(
        _ first: any HeartbeatTransport, _ second: any HeartbeatTransport, _ one: PathRecorder, _ two: PathRecorder, device: String,
        image: String
    ) async throws {
        do {
            func beat(_ count: Int, from offset: Int) async {
                for index in 0..<count {
                    await first.sendNow(Array("one-\(offset + index)".utf8))
                    await second.sendNow(Array("two-\(offset + index)".utf8))
                    try? await Task.sleep(for: .milliseconds(120))
                }
            }
            await beat(10, from: 0)
            #expect(await eventually(within: .seconds(5)) { one.count >= 3 && two.count >= 3 }, "\(one.count) \(two.count)")
            #expect(one.datagrams.withLock { $0.allSatisfy { $0.sender == "node2" } })
            #expect(two.datagrams.withLock { $0.allSatisfy { $0.sender == "node1" } })
            // Never the same heartbeat twice, although each slot is read many times.
            let sequences = one.datagrams.withLock { $0.map(\.sequence) }
            #expect(Set(sequences).count == sequences.count && sequences == sequences.sorted())
            #expect(first.counters.sent >= 10 && first.counters.dropped(.deviceError) == 0)

            // The device "disappears": its image cut to nothing and the loop device told its
            // new size (it stays bound to this test: detaching it would free its number for
            // another test on the machine, and attaching it again could take someone else's).
            let saved = try #require(FileManager.default.contents(atPath: image)?.prefix(1 << 20))
            try FileHandle(forWritingTo: URL(fileURLWithPath: image)).truncate(atOffset: 0)
            let shrink = await BlockingPathTestSupport.run(["losetup", "--set-capacity", device])
            try #require(shrink.succeeded, "\(shrink.failureDescription)")
            let before = one.count
            await beat(10, from: 100)
            #expect(await eventually(within: .seconds(5)) { one.failures == 1 && two.failures == 1 }, "\(one.events.withLock { $0 })")
            #expect(first.counters.dropped(.deviceError) >= 2, "counted every failed cycle")
            await beat(5, from: 200)
            #expect(one.failures == 1, "logged once while it stays failed: \(one.events.withLock { $0 })")
            #expect(one.count <= before + 1, "nothing delivered while the device is gone")

            // It comes back as it was.
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: image))
            try handle.write(contentsOf: saved)
            try handle.truncate(atOffset: 16 << 20)
            try handle.close()
            let grow = await BlockingPathTestSupport.run(["losetup", "--set-capacity", device])
            try #require(grow.succeeded, "\(grow.failureDescription)")
            await beat(15, from: 300)
            #expect(await eventually(within: .seconds(5)) { one.recoveries == 1 && two.recoveries == 1 }, "\(one.events.withLock { $0 })")
            let after = one.count
            await beat(10, from: 400)
            #expect(await eventually(within: .seconds(5)) { one.count >= after + 3 }, "heartbeats flow again")
        }
    }
}
