import Foundation
import Testing
import UnderstudyEngine
import UnderstudyModel
import UnderstudyNode
import UnderstudyTestSupport

#if canImport(Glibc)
    import Glibc
#endif

/// The seed's canonical cluster on one machine: two daemons, each in a mount namespace of its
/// own (as on two hosts), sharing one disk image that each sees through its own loop device
/// (as two hosts see one LUN); ext4 with the `mmp` feature, so the kernel itself refuses a
/// second mount. A group of `disk` + `exec` moves, and fails over after kill -9; the file
/// system is never mounted by both, and what one server wrote the other reads.
@Suite("Process: shared disk", .serialized)
struct SharedDiskTests {
    static let loopDevices = Prerequisite.all(
        "loop-devices",
        [
            .root, .command("losetup", package: "mount"), .command("mkfs.ext4", package: "e2fsprogs"),
            .command("unshare", package: "util-linux"),
        ])

    struct SharedImage {
        let folder: String
        let image: String
        /// One loop device per server over the same image.
        var devices: [String: String] = [:]
        var mountPoint: String { folder + "/mnt" }
        var devicePath: String { folder + "/shared-disk" }

        static func run(_ arguments: [String]) async -> Shell.Outcome { Shell.run(arguments) }

        /// With `staleMMP`, the image is a copy taken while it was mounted: its MMP block says
        /// "in use", so every mount of it first waits twice the MMP check interval for the
        /// sequence to change, then writes its own and waits again (about 22 s in all) — long
        /// enough to fence or kill a daemon in the middle of a mount.
        static func make(servers: [String], staleMMP: Bool = false) async throws -> SharedImage {
            let folder = NSTemporaryDirectory() + "understudy-pt-disk-\(getpid())"
            try FileManager.default.createDirectory(atPath: folder + "/mnt", withIntermediateDirectories: true)
            var shared = SharedImage(folder: folder, image: folder + "/disk.img")
            FileManager.default.createFile(atPath: shared.image, contents: nil)
            try FileHandle(forWritingTo: URL(fileURLWithPath: shared.image)).truncate(atOffset: 64 << 20)
            do {
                let mkfs = await run(["mkfs.ext4", "-q", "-F", "-O", "mmp", "-E", "mmp_update_interval=1", shared.image])
                guard mkfs.ok else { throw ProcessTestError("mkfs: \(mkfs.output)") }
                if staleMMP { try await shared.freezeMMPInUse() }
                for server in servers {
                    let attach = await run(["losetup", "--find", "--show", shared.image])
                    guard attach.ok else { throw ProcessTestError("losetup: \(attach.output)") }
                    shared.devices[server] = attach.output.trimmingCharacters(in: .whitespacesAndNewlines)
                }
            } catch {
                await shared.remove()
                throw error
            }
            return shared
        }

        /// Mounts the image in this process's namespace, copies it while mounted and puts the
        /// copy in its place (before any server's loop device is attached).
        func freezeMMPInUse() async throws {
            let stage = folder + "/stage"
            try FileManager.default.createDirectory(atPath: stage, withIntermediateDirectories: true)
            let attach = await Self.run(["losetup", "--find", "--show", image])
            guard attach.ok else { throw ProcessTestError("losetup: \(attach.output)") }
            let device = attach.output.trimmingCharacters(in: .whitespacesAndNewlines)
            let mount = await Self.run(["mount", "-t", "ext4", device, stage])
            let copy = mount.ok ? await Self.run(["cp", "--sparse=always", image, image + ".in-use"]) : mount
            if mount.ok { _ = await Self.run(["umount", stage]) }
            _ = await Self.run(["losetup", "-d", device])
            guard mount.ok else { throw ProcessTestError("mount: \(mount.output)") }
            guard copy.ok else { throw ProcessTestError("cp: \(copy.output)") }
            try FileManager.default.removeItem(atPath: image)
            try FileManager.default.moveItem(atPath: image + ".in-use", toPath: image)
        }

        func remove() async {
            for device in devices.values { _ = await Self.run(["losetup", "-d", device]) }
            try? FileManager.default.removeItem(atPath: folder)
        }
    }

    /// Runs `body` with a shared image made for `servers`, and removes the image and its loop
    /// devices afterwards, also when `body` fails.
    static func withSharedImage(
        servers: [String], staleMMP: Bool = false, _ body: (SharedImage) async throws -> Void
    ) async throws {
        let shared = try await SharedImage.make(servers: servers, staleMMP: staleMMP)
        do {
            try await body(shared)
        } catch {
            await shared.remove()
            throw error
        }
        await shared.remove()
    }

    /// Whether the daemon of `server` (its mount namespace) has the shared file system mounted.
    static func mounted(_ cluster: TestCluster, _ server: String, at mountPoint: String) -> Bool {
        guard let pid = cluster.pid(of: server), cluster.isRunning(server) else { return false }
        return MountTable.entry(at: mountPoint, in: MountTable.current(path: "/proc/\(pid)/mountinfo")) != nil
    }

    @Test(
        "disk + exec: mounted only where the group runs; clpgrp -m moves the file system with its data; kill -9 fails it over",
        .requires(loopDevices))
    func moveAndFailover() async throws {
        let servers = ["node1", "node2"]
        try await Self.withSharedImage(servers: servers) { shared in try await runCluster(shared, servers: servers) }
    }

    func runCluster(_ shared: SharedImage, servers: [String]) async throws {
        var spec = ClusterSpec(subnet: 150)
        spec.servers = servers
        spec.privateMounts = true
        // Two servers: a ping target lets the survivor of a lost peer keep going.
        spec.pingTarget = "127.0.0.1"
        spec.deviceLinks = [shared.devicePath: shared.devices]
        // The service writes where it runs; the stop script must leave the mount point first.
        spec.groups = [GroupSpec(name: "grp1", resources: [ExecSpec(name: "grp1-app", start: .keepRunning, asyncStart: true)])]
        spec.extraResources["grp1"] = """
                  - name: disk1
                    type: disk
                    device: \(shared.devicePath)
                    filesystem: ext4
                    mount-point: \(shared.mountPoint)
                    unmount-interval: 500ms

            """
        try await withCluster(spec) { cluster in
            try cluster.start()
            try await cluster.waitUntilFormed()
            _ = try await cluster.waitForStatus("grp1 Online on node1", on: "node1", timeout: .seconds(20)) {
                $0.group(named: "grp1")?.status == .online && $0.group(named: "grp1")?.current == "node1"
            }
            #expect(Self.mounted(cluster, "node1", at: shared.mountPoint))
            #expect(!Self.mounted(cluster, "node2", at: shared.mountPoint))
            // The host (a third "machine") does not see the mount either.
            #expect(MountTable.entry(at: shared.mountPoint, in: MountTable.current()) == nil)
            // Data written on node1, through its namespace.
            let node1 = try #require(cluster.pid(of: "node1"))
            try "written on node1\n".write(toFile: "/proc/\(node1)/root\(shared.mountPoint)/data", atomically: false, encoding: .utf8)

            let move = try await cluster.cli(
                ["clpgrp", "-m", "grp1", "-a", "node2", "--timeout", "60"], on: "node1", timeout: .seconds(60))
            #expect(move.exitCode == 0, "\(move)")
            _ = try await cluster.waitForStatus("grp1 Online on node2", on: "node1", timeout: .seconds(30)) {
                $0.group(named: "grp1")?.status == .online && $0.group(named: "grp1")?.current == "node2"
            }
            #expect(!Self.mounted(cluster, "node1", at: shared.mountPoint))
            #expect(Self.mounted(cluster, "node2", at: shared.mountPoint))
            let node2 = try #require(cluster.pid(of: "node2"))
            let moved = try? String(contentsOfFile: "/proc/\(node2)/root\(shared.mountPoint)/data", encoding: .utf8)
            #expect(moved == "written on node1\n")

            // kill -9 of node2's daemon: its keeper kills the users, detaches the mount, waits until
            // the device is free (the file system shut down) and tells node1, which mounts at once
            // (MMP: the kernel would refuse a second mount while node2's lived).
            cluster.send(SIGKILL, to: "node2")
            _ = try await cluster.waitForExit("node2")
            _ = try await cluster.waitForStatus("grp1 Online on node1 after kill -9", on: "node1", timeout: .seconds(40)) {
                $0.group(named: "grp1")?.status == .online && $0.group(named: "grp1")?.current == "node1"
            }
            #expect(Self.mounted(cluster, "node1", at: shared.mountPoint))
            let back = try? String(contentsOfFile: "/proc/\(node1)/root\(shared.mountPoint)/data", encoding: .utf8)
            #expect(back == "written on node1\n")
            let stop = try await cluster.cli(["clpgrp", "-t", "grp1"], on: "node1", timeout: .seconds(60))
            #expect(stop.exitCode == 0, "\(stop)")
            #expect(!Self.mounted(cluster, "node1", at: shared.mountPoint))
        }
        // Both namespaces are gone with their daemons: the image is clean.
        let fsck = await SharedImage.run(["e2fsck", "-n", "-f", shared.devices["node1"] ?? ""])
        #expect(fsck.ok, "e2fsck -n: \(fsck.output)")
    }

    /// The `mount` the daemon of `server` is running, if any.
    static func mountInFlight(_ cluster: TestCluster, _ server: String) -> ProcessIdentity? {
        guard let daemon = cluster.pid(of: server) else { return nil }
        return ProcessTable.descendants(of: daemon).first { identity in
            (try? String(contentsOfFile: "/proc/\(identity.pid)/comm", encoding: .utf8))?.hasPrefix("mount") == true
        }
    }

    /// A disk-only group that only node1 may run, on the shared image.
    static func slowMountSpec(subnet: Int, servers: [String], shared: SharedImage) -> ClusterSpec {
        var spec = ClusterSpec(subnet: subnet)
        spec.servers = servers
        spec.privateMounts = true
        spec.deviceLinks = [shared.devicePath: shared.devices]
        spec.groups = [GroupSpec(name: "grp1", servers: ["node1"], resources: [])]
        spec.extraResources["grp1"] = """
                  - name: disk1
                    type: disk
                    device: \(shared.devicePath)
                    filesystem: ext4
                    mount-point: \(shared.mountPoint)
                    fsck: never
                    mount-retries: 0

            """
        return spec
    }

    @Test(
        "kill -9 of a daemon in the middle of a mount: its keeper kills the mount before it fences, so nothing mounts afterwards",
        .requires(loopDevices))
    func killDuringMount() async throws {
        try await Self.withSharedImage(servers: ["node1"], staleMMP: true) { shared in
            var sentinel: Process?
            defer {
                if let sentinel, sentinel.isRunning { kill(sentinel.processIdentifier, SIGKILL) }
            }
            var spec = Self.slowMountSpec(subnet: 162, servers: ["node1", "node2"], shared: shared)
            spec.pingTarget = "127.0.0.1"
            try await withCluster(spec) { cluster in
                try cluster.start()
                let found = try await poll(upTo: .seconds(30)) { Self.mountInFlight(cluster, "node1") != nil }
                let mount = try #require(found ? Self.mountInFlight(cluster, "node1") : nil, "node1 never started mounting")
                let daemon = try #require(cluster.pid(of: "node1"))
                // A process in node1's mount namespace that outlives the daemon (on a real
                // host the namespace is the host's and a late mount would stay).
                let watcher = Process()
                watcher.executableURL = URL(fileURLWithPath: "/usr/bin/nsenter")
                watcher.arguments = ["-t", String(daemon), "-m", "sleep", "120"]
                try watcher.run()
                sentinel = watcher
                cluster.send(SIGKILL, to: "node1")
                _ = try await cluster.waitForExit("node1")
                // The MMP wait is interruptible: the keeper's SIGKILL ends the mount at once.
                let ended = try await poll(upTo: .seconds(10)) { !mount.isAlive }
                #expect(ended, "the mount started by the dead daemon still runs: it would complete after the keeper's fence")
                try await Task.sleep(for: .milliseconds(300))
                let table = MountTable.current(path: "/proc/\(watcher.processIdentifier)/mountinfo")
                #expect(MountTable.entry(at: shared.mountPoint, in: table) == nil)
                let log = (try? String(contentsOfFile: cluster.logPath(of: "node1"), encoding: .utf8)) ?? ""
                #expect(log.contains("fencing its resources"), "the keeper did not fence")
            }
        }
    }

    @Test(
        "a mount that completes after its group was fenced (partition lost mid-start) is taken off again",
        .requires(loopDevices))
    func mountCompletingAfterFence() async throws {
        try await Self.withSharedImage(servers: ["node1"], staleMMP: true) { shared in
            let spec = Self.slowMountSpec(subnet: 163, servers: ["node1", "node2", "node3"], shared: shared)
            try await withCluster(spec) { cluster in
                try cluster.start()
                let found = try await poll(upTo: .seconds(30)) { Self.mountInFlight(cluster, "node1") != nil }
                let mount = try #require(found ? Self.mountInFlight(cluster, "node1") : nil, "node1 never started mounting")
                // node1 alone: it loses the majority and fences grp1 while the mount still waits.
                cluster.send(SIGSTOP, to: "node2")
                cluster.send(SIGSTOP, to: "node3")
                defer {
                    cluster.send(SIGCONT, to: "node2")
                    cluster.send(SIGCONT, to: "node3")
                }
                _ = try await cluster.waitForStatus("grp1 fenced on node1", on: "node1", timeout: .seconds(15)) {
                    $0.group(named: "grp1")?.status == .offline
                }
                #expect(mount.isAlive, "the mount ended before the fence: the test did not cover a late mount")
                let refenced = try await poll(upTo: .seconds(45)) {
                    let log = (try? String(contentsOfFile: cluster.logPath(of: "node1"), encoding: .utf8)) ?? ""
                    return log.contains("finished starting after group grp1 was fenced")
                }
                #expect(refenced, "the late mount was not fenced again")
                #expect(!mount.isAlive)
                // The warning comes just before the fence.
                let detached = try await poll(upTo: .seconds(5)) { !Self.mounted(cluster, "node1", at: shared.mountPoint) }
                #expect(detached, "the late mount stayed")
            }
        }
    }
}
