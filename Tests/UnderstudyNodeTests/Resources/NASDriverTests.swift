import Foundation
import Testing
import UnderstudyEngine
import UnderstudyModel
import UnderstudyTestSupport

@testable import UnderstudyNode

#if canImport(Glibc)
    import Glibc
#endif

/// The nas resource end to end: a share of NFS-Ganesha (started by the test on loopback)
/// mounted and unmounted through `NASDriver`, and the ping check refusing a server that
/// does not answer ICMP echo.
@Suite("nas resource", .serialized)
struct NASDriverTests {
    /// The kernel's NFS client: a mount needs `nfs`/`nfs4` in /proc/filesystems (the kernels
    /// of this project's test machines have no loadable modules and no NFS client built in).
    static let nfsClient: Prerequisite = {
        let filesystems = (try? String(contentsOfFile: "/proc/filesystems", encoding: .utf8)) ?? ""
        let names = Set(filesystems.split(separator: "\n").compactMap { $0.split(separator: "\t").last.map(String.init) })
        return Prerequisite(
            "nfs-client",
            missing: names.contains("nfs") || names.contains("nfs4")
                ? nil : "the kernel has no NFS client (no nfs or nfs4 in /proc/filesystems)")
    }()
    static let mountNFS = Prerequisite.executable("/sbin/mount.nfs", package: "nfs-common")

    static func run(_ arguments: [String]) async -> NetCommandResult { await NetCommandRunner().run(arguments, timeout: .seconds(20)) }

    func run(_ driver: NASDriver, _ operation: ResourceOperation, _ settings: NASSettings) async -> ResourceOutcome {
        await driver.perform(
            ResourceRun(
                id: 1, group: "g1", resource: "nas1", operation: operation,
                context: ScriptContext(event: .start, isHomeServer: true, priority: 1, groupName: "g1", resourceName: "nas1")),
            settings: settings)
    }

    @Test(
        "nas: mounts a Ganesha NFS v4 share through NASDriver, sees its files, and unmounts it",
        .requires(.root, NFSProbeTests.ganesha, mountNFS, nfsClient))
    func mountAndUnmount() async throws {
        let folder = try TestServer.folder("nas")
        let mountPoint = folder + "/mnt"
        defer {
            if MountTable.entry(at: mountPoint, in: MountTable.current()) != nil { umount2(mountPoint, Int32(MNT_DETACH)) }
            try? FileManager.default.removeItem(atPath: folder)
        }
        let port = try FreePort.take()
        let server = try await NFSProbeTests.startGanesha(folder: folder, nfsPort: port, mountPort: nil)
        defer { server.stop() }
        try "shared\n".write(toFile: folder + "/export/file", atomically: true, encoding: .utf8)
        let ready = await eventually(within: .seconds(15), every: .milliseconds(200)) {
            await NFSProbe(host: "127.0.0.1", share: "/data", version: 4, port: port, timeout: .seconds(5)).check() == .normal
        }
        try #require(ready, "the export /data did not come up")

        let settings = NASSettings(
            server: "127.0.0.1", share: "/data", mountPoint: mountPoint, mountOptions: "vers=4.0,port=\(port),soft,timeo=50,retrans=2",
            filesystem: "nfs4", pingServer: true)
        let driver = NASDriver()
        let started = await run(driver, .start, settings)
        #expect(started == .success(asyncPID: nil), "\(started)")
        #expect(MountTable.entry(at: mountPoint, in: MountTable.current())?.source == "127.0.0.1:/data")
        #expect((try? String(contentsOfFile: mountPoint + "/file", encoding: .utf8)) == "shared\n")
        // Starting again with the share already there is a success that changes nothing.
        #expect(await run(driver, .start, settings) == .success(asyncPID: nil))

        let stopped = await run(driver, .stop, settings)
        #expect(stopped == .success(asyncPID: nil), "\(stopped)")
        #expect(MountTable.entry(at: mountPoint, in: MountTable.current()) == nil)
    }

    @Test(
        "nas: the ping check refuses a server that does not answer ICMP echo, before any mount",
        .requires(.root, .command("ping", package: "iputils-ping"), .command("ip", package: "iproute2")))
    func pingCheckFails() async throws {
        // A server address inside a namespace of the test's own that ignores ICMP echo: the
        // address exists (ARP answers), the echo goes unanswered; nothing leaves the machine.
        let tag = "\(getpid() % 10_000)\(Int.random(in: 0..<100))"
        let namespace = "us-nas-\(tag)"
        let hostEnd = "usnas\(tag)"
        let third = Int.random(in: 1...250)
        let (hostAddress, serverAddress) = ("10.251.\(third).1", "10.251.\(third).2")
        let folder = try TestServer.folder("nasping")
        defer {
            try? FileManager.default.removeItem(atPath: folder)
        }
        var created = false
        defer {
            if created {
                let delete = Process()
                delete.executableURL = URL(fileURLWithPath: "/usr/bin/env")
                delete.arguments = ["ip", "netns", "del", namespace]
                try? delete.run()
                delete.waitUntilExit()
            }
        }
        for command in [
            ["ip", "netns", "add", namespace],
            ["ip", "link", "add", hostEnd, "type", "veth", "peer", "name", "eth0", "netns", namespace],
            ["ip", "address", "add", "\(hostAddress)/30", "dev", hostEnd],
            ["ip", "link", "set", hostEnd, "up"],
            ["ip", "netns", "exec", namespace, "ip", "address", "add", "\(serverAddress)/30", "dev", "eth0"],
            ["ip", "netns", "exec", namespace, "ip", "link", "set", "eth0", "up"],
            ["ip", "netns", "exec", namespace, "sysctl", "-qw", "net.ipv4.icmp_echo_ignore_all=1"],
        ] {
            let result = await Self.run(command)
            try #require(result.succeeded, "\(result.failureDescription)")
            created = true
        }

        let mountPoint = folder + "/mnt"
        let settings = NASSettings(server: serverAddress, share: "/data", mountPoint: mountPoint, filesystem: "nfs4", pingServer: true)
        let outcome = await run(NASDriver(), .start, settings)
        #expect(outcome == .failure(reason: "NFS server \(serverAddress) does not answer ICMP echo"), "\(outcome)")
        #expect(MountTable.entry(at: mountPoint, in: MountTable.current()) == nil)
        // The address is there: only the echo is ignored (the namespace answers ARP).
        let neighbour = await Self.run(["ip", "neighbour", "show", serverAddress, "dev", hostEnd])
        #expect(neighbour.standardOutput.contains("lladdr"), "\(neighbour.standardOutput)")
    }
}
