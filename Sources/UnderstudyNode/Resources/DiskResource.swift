import Foundation
import Logging
import UnderstudyEngine
import UnderstudyModel

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// The `disk` resource: a file system on a shared disk, mounted on the one server that runs
/// the group (reference §5.3, CLUSTERPRO `disk`).
///
/// Start: find the device (`UUID=`/`LABEL=` through `blkid`); refuse one that is not a block
/// device, is mounted anywhere on this server already, or is in `/etc/fstab` without
/// `noauto` (the boot would mount it behind the cluster's back); create the mount point; run
/// fsck when due (ext3/ext4: `always`, or every `fsck-interval`-th mount by this server);
/// mount with the timeout and retries, fsck before a retry when `fsck-on-mount-failure`
/// (xfs: `xfs_repair` when `xfs-repair-on-mount-failure`). A raw device (`filesystem: none`)
/// is only checked. Stop: unmount with retries `unmount-interval` apart, stopping the users
/// of the file system before each retry. Fence: SIGKILL to the users and a lazy unmount,
/// at once.
public final class DiskDriver: Sendable {
    let options: StorageDriverOptions
    let mounter: Mounter
    let stateDirectory: String
    let logger: Logger?

    public init(options: StorageDriverOptions = StorageDriverOptions(), stateDirectory: String, logger: Logger? = nil) {
        self.options = options
        self.mounter = Mounter(options: options, logger: logger)
        self.stateDirectory = stateDirectory
        self.logger = logger
    }

    public func perform(_ run: ResourceRun, settings: DiskSettings) async -> ResourceOutcome {
        do {
            switch run.operation {
            case .start: try await activate(settings, resource: run.resource)
            case .stop: try await deactivate(settings, resource: run.resource)
            }
            return .success(asyncPID: nil)
        } catch {
            logger?.error("disk \(run.resource) \(run.operation.rawValue) failed: \(error.reason)")
            return .failure(reason: error.reason)
        }
    }

    // MARK: - Start

    func activate(_ settings: DiskSettings, resource: String) async throws(StorageFailure) {
        let device = try await resolve(settings.device)
        let number = try Self.blockDevice(device)
        let mounts = MountTable.current()
        if !settings.isRaw, let existing = MountTable.entry(at: settings.mountPoint, in: mounts) {
            // Started again after a daemon restart that kept the mount: already done.
            if existing.device == number || existing.source == device { return }
            throw StorageFailure("mount point \(settings.mountPoint) is in use: \(existing.source) is mounted there")
        }
        if let elsewhere = mounts.first(where: { $0.device == number || $0.source == device }) {
            throw StorageFailure(
                "\(device) is mounted at \(elsewhere.mountPoint) on this server already; the cluster must be its only user")
        }
        try checkFstab(settings, device: device)
        if settings.isRaw { return }
        try mounter.prepareMountPoint(settings.mountPoint)
        let counter = MountCounter(directory: stateDirectory + "/disk", resource: resource)
        if settings.isChecked(mountsSinceCheck: counter.mountsSinceCheck) {
            try await check(device, settings, resource: resource, why: "due")
            counter.checked()
        }
        _ = try await mounter.mount(source: device, filesystem: settings.filesystem, settings: settings.mount, resource: resource) {
            failure in
            // In use by another host (MMP) or mounted here: a check cannot help, and an fsck
            // killed half-way leaves MMP saying "fsck running", which refuses every mount after.
            if Self.isInUse(failure) {
                self.logger?.warning("\(resource): \(device) is in use elsewhere; no file system check before the retry")
                return
            }
            if settings.filesystem == "xfs" {
                if settings.xfsRepairOnMountFailure { try? await self.repairXFS(device, settings, resource: resource) }
            } else if settings.fsckOnMountFailure, settings.filesystem.hasPrefix("ext") {
                if (try? await self.check(device, settings, resource: resource, why: "after a failed mount")) != nil {
                    counter.checked()
                }
            }
        }
        counter.mounted()
    }

    /// `UUID=`/`LABEL=` become the device path (`blkid -t`); a path stays as written.
    func resolve(_ spec: String) async throws(StorageFailure) -> String {
        guard spec.hasPrefix("UUID=") || spec.hasPrefix("LABEL=") else { return spec }
        let result = await commands.run([options.blkid, "-l", "-o", "device", "-t", spec], timeout: .seconds(30))
        let path = result.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines)
        guard result.succeeded, !path.isEmpty, !path.contains("\n") else {
            throw StorageFailure("no device with \(spec) on this server (blkid found none)")
        }
        return path
    }

    var commands: NetCommandRunner { mounter.commands }

    /// No file system holds the device of `settings` here any more: it opens with `O_EXCL`,
    /// which a mounted file system refuses (EBUSY) — also one detached lazily whose last user
    /// has not gone yet; once it opens, the file system was shut down, its last writes done.
    /// Waits up to `limit`. A raw device (nothing mounted) cannot be checked this way: false.
    func isReleased(_ settings: DiskSettings, within limit: Duration) async -> Bool {
        guard !settings.isRaw, let path = try? await resolve(settings.device) else { return false }
        let deadline = ContinuousClock.now + limit
        while true {
            let descriptor = open(path, O_RDONLY | O_EXCL | O_CLOEXEC)
            if descriptor >= 0 {
                close(descriptor)
                return true
            }
            guard errno == EBUSY, ContinuousClock.now < deadline else { return false }
            try? await Task.sleep(for: .milliseconds(5))
        }
    }

    /// A mount failure that says the file system is in use (ext4 MMP, EBUSY), not damaged.
    static func isInUse(_ failure: String) -> Bool {
        let text = failure.lowercased()
        return text.contains("already mounted") || text.contains("busy") || text.contains("mmp")
    }

    /// The device's number, or why it cannot be used.
    static func blockDevice(_ path: String) throws(StorageFailure) -> DeviceNumber {
        var info = stat()
        guard stat(path, &info) == 0 else {
            throw StorageFailure("device \(path) does not exist on this server: \(String(cString: strerror(errno)))")
        }
        guard info.st_mode & S_IFMT == S_IFBLK else { throw StorageFailure("\(path) is not a block device") }
        return DeviceNumber(UInt64(info.st_rdev))
    }

    /// A shared file system in fstab without `noauto` would be mounted by every server's boot.
    func checkFstab(_ settings: DiskSettings, device: String) throws(StorageFailure) {
        guard let text = try? String(contentsOfFile: options.fstab, encoding: .utf8) else { return }
        let names = Set([settings.device, device, Self.realPath(device)])
        for line in MountTable.parse(fstab: text) where line.mountsAtBoot {
            let sameDevice = names.contains(line.spec) || names.contains(Self.realPath(line.spec))
            let samePoint = !settings.isRaw && MountTable.normalize(line.mountPoint) == MountTable.normalize(settings.mountPoint)
            if sameDevice || samePoint {
                throw StorageFailure(
                    "\(options.fstab) line \(line.number) mounts \(line.spec) on \(line.mountPoint) at boot: a shared disk must not be in fstab (remove the line or add noauto)"
                )
            }
        }
    }

    static func realPath(_ path: String) -> String {
        guard path.hasPrefix("/"), let resolved = realpath(path, nil) else { return path }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    /// fsck of an ext file system; exit 0–2 (clean, repaired) is fine, 4 and up is not.
    /// e2fsck refuses a file system another server holds when it has the `mmp` feature.
    func check(_ device: String, _ settings: DiskSettings, resource: String, why: String) async throws(StorageFailure) {
        guard settings.filesystem.hasPrefix("ext") else { return }
        logger?.notice("\(resource): checking \(device) (\(why))")
        let arguments = [options.fsck, "-t", settings.filesystem] + Self.words(settings.fsckOptions) + [device]
        let result = await commands.run(arguments, timeout: settings.fsckTimeout)
        guard let code = result.exitCode, !result.timedOut, code < 4 else {
            throw StorageFailure("file system check of \(device) failed: \(result.failureDescription)")
        }
    }

    func repairXFS(_ device: String, _ settings: DiskSettings, resource: String) async throws(StorageFailure) {
        logger?.notice("\(resource): repairing \(device) with xfs_repair after a failed mount")
        let result = await commands.run(
            [options.xfsRepair] + Self.words(settings.xfsRepairOptions) + [device], timeout: settings.fsckTimeout)
        if !result.succeeded { throw StorageFailure("xfs_repair of \(device) failed: \(result.failureDescription)") }
    }

    static func words(_ text: String) -> [String] { text.split(whereSeparator: \.isWhitespace).map(String.init) }

    // MARK: - Stop and fence

    func deactivate(_ settings: DiskSettings, resource: String) async throws(StorageFailure) {
        if settings.isRaw { return }
        try await mounter.unmount(settings: settings.mount, resource: resource)
    }

    func fence(_ settings: DiskSettings, resource: String) {
        if settings.isRaw { return }
        mounter.detach(settings: settings.mount, resource: resource)
    }
}

extension DiskDriver: ResourceDriver {
    public convenience init(context: ResourceDriverContext) {
        self.init(stateDirectory: context.stateDirectory, logger: context.logger)
    }

    public func perform(_ run: ResourceRun, resource: ResourceConfig) async -> ResourceOutcome {
        guard case .disk(let settings) = resource.settings else { return .failure(reason: "\(resource.name) is not a disk resource") }
        return await perform(run, settings: settings)
    }

    /// Kills the users and detaches every mount of the group's disks at once: nothing is left
    /// to finish.
    public func fence(group: GroupConfig, resources: [ResourceConfig], server: ServerName) -> Task<Bool, Never>? {
        for resource in resources {
            if case .disk(let settings) = resource.settings { fence(settings, resource: resource.name) }
        }
        return nil
    }
}

extension DiskSettings {
    /// Whether this mount is preceded by a check: `always`, or the `fsck-interval`-th mount
    /// since the last check (xfs and btrfs are never checked before a mount: their tools
    /// repair, they do not check, and xfs replays its log itself).
    func isChecked(mountsSinceCheck: Int) -> Bool {
        guard filesystem.hasPrefix("ext") else { return false }
        switch fsck {
        case .never: return false
        case .always: return true
        case .interval: return mountsSinceCheck + 1 >= fsckInterval
        }
    }
}

/// How many times this server mounted a disk resource since its last check, in the state
/// folder (a lost count only moves the next check).
struct MountCounter: Sendable {
    let path: String

    init(directory: String, resource: String) {
        try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        path = directory + "/" + resource + ".mounts"
    }

    var mountsSinceCheck: Int {
        (try? String(contentsOfFile: path, encoding: .utf8)).flatMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
            ?? 0
    }

    func mounted() { save(mountsSinceCheck + 1) }
    func checked() { save(-1) }

    private func save(_ value: Int) {
        try? AtomicFile.write(Array("\(value)\n".utf8), to: path)
    }
}
