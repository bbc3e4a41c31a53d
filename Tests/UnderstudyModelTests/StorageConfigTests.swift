import Testing

@testable import UnderstudyModel

/// The keys of `disk`, `nas` and `volmgr`: defaults, and an error naming line and key for
/// each kind of mistake.
@Suite("Config: shared storage resources")
struct StorageConfigTests {
    func group(_ resources: String) -> String {
        baseCluster + "groups:\n  - name: g1\n    resources:\n" + resources
    }

    @Test func diskDefaultsFollowTheReference() throws {
        let config = try load(group("      - {name: disk1, type: disk, device: /dev/sdb1, filesystem: ext4, mount-point: /data}\n"))
        guard case .disk(let disk) = config.config.groups.first?.resources.first?.settings else {
            Issue.record("not a disk")
            return
        }
        #expect(disk.mount.options == "rw")
        #expect(disk.mount.mountTimeout == .seconds(180) && disk.mount.mountRetries == 3)
        #expect(disk.mount.unmountTimeout == .seconds(120) && disk.mount.unmountRetries == 3)
        #expect(disk.mount.unmountInterval == .seconds(5) && disk.mount.busyAction == .kill)
        #expect(disk.fsck == .interval && disk.fsckInterval == 10 && disk.fsckOptions == "-y")
        #expect(disk.fsckTimeout == .seconds(7200) && disk.fsckOnMountFailure && !disk.xfsRepairOnMountFailure)
    }

    @Test func diskKeysAreRead() throws {
        let config = try load(
            group(
                """
                      - name: disk1
                        type: disk
                        device: UUID=0b6f3c2e-1111-2222-3333-444455556666
                        filesystem: xfs
                        mount-point: /data
                        mount-options: rw,noatime
                        mount-timeout: 30s
                        mount-retries: 1
                        fsck: never
                        xfs-repair-on-mount-failure: true
                        unmount-busy-action: none
                        unmount-interval: 1s

                """))
        guard case .disk(let disk) = config.config.groups.first?.resources.first?.settings else {
            Issue.record("not a disk")
            return
        }
        #expect(disk.device == "UUID=0b6f3c2e-1111-2222-3333-444455556666")
        #expect(disk.mount.options == "rw,noatime" && disk.mount.mountTimeout == .seconds(30) && disk.mount.mountRetries == 1)
        #expect(disk.fsck == .never && disk.xfsRepairOnMountFailure && disk.mount.busyAction == .none)
    }

    @Test func unknownFileSystem() {
        expectError(
            group("      - {name: disk1, type: disk, device: /dev/sdb1, filesystem: ext5, mount-point: /data}\n"),
            line: baseLines + 4, keyPath: "groups[0].resources[0].filesystem", "unknown file system \"ext5\"")
    }

    @Test func zfsIsAVolumeManagerPool() {
        expectError(
            group("      - {name: disk1, type: disk, device: /dev/sdb1, filesystem: zfs, mount-point: /data}\n"),
            line: baseLines + 4, keyPath: "groups[0].resources[0].filesystem", "volmgr resource (manager: zfs)")
    }

    @Test func badFsckTiming() {
        expectError(
            group("      - {name: disk1, type: disk, device: /dev/sdb1, filesystem: ext4, mount-point: /data, fsck: weekly}\n"),
            line: baseLines + 4, keyPath: "groups[0].resources[0].fsck", "expected one of")
    }

    @Test func mountOptionsWithSpaces() {
        expectError(
            group(
                "      - {name: disk1, type: disk, device: /dev/sdb1, filesystem: ext4, mount-point: /data, mount-options: rw noatime}\n"),
            line: baseLines + 4, keyPath: "groups[0].resources[0].mount-options", "one comma-separated word")
    }

    @Test func emptyUUID() {
        expectError(
            group("      - {name: disk1, type: disk, device: UUID=, filesystem: ext4, mount-point: /data}\n"),
            line: baseLines + 4, keyPath: "groups[0].resources[0].device", "UUID= needs a value")
    }

    @Test func rootIsNotAMountPoint() {
        expectError(
            group("      - {name: disk1, type: disk, device: /dev/sdb1, filesystem: ext4, mount-point: /}\n"),
            line: baseLines + 4, keyPath: "groups[0].resources[0].mount-point", "root file system")
    }

    @Test func sameDeviceInTwoResources() {
        let yaml =
            baseCluster + """
                groups:
                  - name: g1
                    resources:
                      - {name: disk1, type: disk, device: /dev/sdb1, filesystem: ext4, mount-point: /a}
                  - name: g2
                    resources:
                      - {name: disk2, type: disk, device: /dev/sdb1, filesystem: ext4, mount-point: /b}

                """
        expectError(yaml, line: baseLines + 7, keyPath: "groups[1].resources[0].device", "already used by another resource")
    }

    @Test func volumeManagerRetriesAndName() {
        expectError(
            group("      - {name: vg1, type: volmgr, manager: lvm, volume: /dev/vg1}\n"), line: baseLines + 4,
            keyPath: "groups[0].resources[0].volume", "expected a volume group name")
        expectError(
            group("      - {name: vg1, type: volmgr, manager: lvm, volume: vg1, activation-retries: 100}\n"), line: baseLines + 4,
            keyPath: "groups[0].resources[0].activation-retries", "from 0 to 99")
    }
}
