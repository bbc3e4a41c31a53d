import Foundation
import Testing
import UnderstudyEngine
import UnderstudyModel
import UnderstudyTestSupport

@testable import UnderstudyNode

/// The `volmgr` driver on a real LVM volume group over a loop device (root, lvm2). This
/// machine's kernel has no device-mapper, so the group holds no logical volume: activation,
/// tags, import and retries are real; mapping logical volumes is not exercised.
@Suite("volmgr resource", .serialized)
struct VolumeManagerDriverTests {
    static let lvm = Prerequisite.all(
        "lvm", [.root, .command("losetup", package: "mount"), .command("vgcreate", package: "lvm2")])

    func run(_ operation: ResourceOperation) -> ResourceRun {
        ResourceRun(
            id: 1, group: "g", resource: "volmgr1", operation: operation,
            context: ScriptContext(event: .start, isHomeServer: true, priority: 1, groupName: "g", resourceName: "volmgr1"))
    }

    func tags(_ group: String) async -> [String] {
        let result = await LoopDisk.run(["vgs", "--noheadings", "-o", "vg_tags", group])
        return result.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: ",").map(String.init)
    }

    @Test(
        "LVM: start tags the VG for this server (replacing another server's tag), stop removes it; exported VG needs force-import",
        .requires(lvm))
    func tagging() async throws {
        let disk = try await LoopDisk.make("volmgr", filesystem: nil)
        let group = "usvg\(getpid())"
        func cleanUp() async {
            _ = await LoopDisk.run(["vgremove", "-f", group])
            _ = await LoopDisk.run(["pvremove", "-ff", "-y", disk.device])
            await disk.remove()
        }
        #expect((await LoopDisk.run(["pvcreate", "-ff", "-y", disk.device])).succeeded)
        #expect((await LoopDisk.run(["vgcreate", group, disk.device])).succeeded)
        let settings = VolumeManagerSettings(manager: .lvm, volume: group, activationRetries: 0, deactivationRetries: 0)
        let node1 = VolumeManagerDriver(server: "node1", retryInterval: .milliseconds(10))
        let node2 = VolumeManagerDriver(server: "node2", retryInterval: .milliseconds(10))

        #expect(await node1.perform(run(.start), settings: settings) == .success(asyncPID: nil))
        #expect(await tags(group) == ["understudy_node1"])
        // node1 died holding it: node2 takes it over, its tag replaces node1's; a foreign tag stays.
        #expect((await LoopDisk.run(["vgchange", "--addtag", "backup", group])).succeeded)
        #expect(await node2.perform(run(.start), settings: settings) == .success(asyncPID: nil))
        #expect(await tags(group).sorted() == ["backup", "understudy_node2"])
        #expect(await node2.perform(run(.stop), settings: settings) == .success(asyncPID: nil))
        #expect(await tags(group) == ["backup"])

        // Exported by another host: refused without force-import, imported with it.
        #expect((await LoopDisk.run(["vgexport", group])).succeeded)
        let refused = await node1.perform(run(.start), settings: settings)
        #expect(refused == .failure(reason: "volume group \(group) is exported (vgexport); set force-import: true to import it"))
        var forced = settings
        forced.forceImport = true
        #expect(await node1.perform(run(.start), settings: forced) == .success(asyncPID: nil))
        #expect(await tags(group).contains("understudy_node1"))
        #expect(await node1.perform(run(.stop), settings: forced) == .success(asyncPID: nil))

        // A volume group that does not exist: every retry fails, the reason says how many.
        let missing = VolumeManagerSettings(manager: .lvm, volume: group + "x", activationRetries: 2)
        if case .failure(let reason) = await node1.perform(run(.start), settings: missing) {
            #expect(reason.contains("(3 attempts)"), "\(reason)")
        } else {
            Issue.record("a missing volume group was activated")
        }
        await cleanUp()
    }

    @Test("tags are LVM-safe for any server name")
    func tagNames() {
        #expect(VolumeManagerDriver.tag(of: "node-1.example") == "understudy_node-1.example")
        #expect(VolumeManagerDriver.tag(of: "nöde 2") == "understudy_n_de_2")
    }
}
