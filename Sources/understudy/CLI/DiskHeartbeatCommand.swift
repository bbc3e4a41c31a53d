import ArgumentParser
import Foundation
import UnderstudyNode

/// `understudy diskhb`: the disk heartbeat device.
struct DiskHeartbeatCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "diskhb", abstract: "Disk heartbeat (diskhb) devices.", subcommands: [DiskHeartbeatInit.self])
}

/// `understudy diskhb init DEVICE [--force]`: prepares a partition for `diskhb`.
struct DiskHeartbeatInit: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init",
        abstract: "Prepare a partition of a shared disk as a disk heartbeat device (header, empty slots).",
        discussion: """
            Run once, on one server, while no daemon uses the device. Refuses a device that is \
            not a block device, is smaller than 10 MiB, is mounted or in use, or holds a file \
            system, swap or an LVM physical volume (unless --force).
            """)

    @Argument(help: "The partition, e.g. /dev/disk/by-id/...-part1.") var device: String
    @Flag(name: .long, help: "Overwrite a file system, swap or LVM signature found on the device.") var force = false

    func run() throws {
        do {
            let prepared = try DiskHeartbeatPreparation.prepare(device, force: force)
            print(
                "\(prepared.wasPrepared ? "Prepared again" : "Prepared") \(device) as a disk heartbeat device: "
                    + "\(prepared.slotCount) slots of \(DiskHeartbeatLayout.slotSize / 1024) KiB "
                    + "(a cluster of up to \(prepared.slotCount) servers).")
        } catch {
            printError("understudy diskhb init: \(error)")
            throw ExitCode(1)
        }
    }
}
