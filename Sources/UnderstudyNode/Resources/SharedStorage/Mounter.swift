import Foundation
import Logging
import UnderstudyModel

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// Tunables of the storage drivers that the Model does not carry: where the tools are, for
/// tests that stand a hanging `umount` in for a dead disk.
public struct StorageDriverOptions: Sendable, Equatable {
    public var mount = "mount"
    public var umount = "umount"
    public var fsck = "fsck"
    public var xfsRepair = "xfs_repair"
    public var blkid = "blkid"
    public var fstab = "/etc/fstab"
    /// How long users of a busy mount get between SIGTERM and SIGKILL (at most the unmount
    /// interval).
    public var killGrace: Duration = .seconds(3)

    public init() {}
}

/// What a failed storage step says: a sentence for the alert log and `clpstat`.
struct StorageFailure: Error, Sendable {
    var reason: String
    init(_ reason: String) { self.reason = reason }
}

/// Mounting and unmounting with the reference's timeouts and retries; what `disk` and `nas`
/// share (`MountSettings`).
struct Mounter: Sendable {
    let options: StorageDriverOptions
    let commands: NetCommandRunner
    let logger: Logger?

    init(options: StorageDriverOptions, logger: Logger?) {
        self.options = options
        self.commands = NetCommandRunner()
        self.logger = logger
    }

    /// Creates the mount point when missing (its parent must exist: a missing parent is a
    /// typo far more often than a wish for a new tree).
    func prepareMountPoint(_ path: String) throws(StorageFailure) {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) {
            if !isDirectory.boolValue { throw StorageFailure("mount point \(path) exists and is not a directory") }
            return
        }
        let parent = (path as NSString).deletingLastPathComponent
        guard FileManager.default.fileExists(atPath: parent, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw StorageFailure("cannot create mount point \(path): its parent folder \(parent) does not exist")
        }
        if mkdir(path, 0o755) != 0 && errno != EEXIST {
            throw StorageFailure("cannot create mount point \(path): \(String(cString: strerror(errno)))")
        }
    }

    /// One `mount -t TYPE -o OPTIONS SOURCE POINT`, bounded by the mount timeout.
    func mountOnce(source: String, filesystem: String, settings: MountSettings) async -> NetCommandResult {
        await commands.run(
            [options.mount, "-t", filesystem, "-o", settings.options, source, settings.mountPoint], timeout: settings.mountTimeout)
    }

    /// Mounts with `1 + mountRetries` attempts; `beforeRetry` runs after each failed one
    /// (fsck on mount failure). Returns the attempts it took.
    func mount(
        source: String, filesystem: String, settings: MountSettings, resource: String,
        beforeRetry: (_ failure: String) async -> Void
    ) async throws(StorageFailure) -> Int {
        var lastFailure = ""
        for attempt in 1...(1 + settings.mountRetries) {
            if attempt > 1 { await beforeRetry(lastFailure) }
            let result = await mountOnce(source: source, filesystem: filesystem, settings: settings)
            if result.succeeded { return attempt }
            lastFailure = result.failureDescription
            logger?.warning("\(resource): mount attempt \(attempt) of \(1 + settings.mountRetries) failed: \(lastFailure)")
            // A mount that timed out may still complete in the kernel: never retry on top of it.
            if MountTable.entry(at: settings.mountPoint, in: MountTable.current()) != nil {
                throw StorageFailure("mount of \(source) on \(settings.mountPoint) timed out but the file system is mounted now")
            }
        }
        throw StorageFailure("cannot mount \(source) on \(settings.mountPoint) after \(1 + settings.mountRetries) attempts: \(lastFailure)")
    }

    /// Unmounts whatever is mounted at the mount point with `1 + unmountRetries` attempts,
    /// `unmountInterval` apart; before each retry the users of the file system are stopped
    /// (`unmount-busy-action: kill`). Success when nothing is mounted there any more.
    func unmount(settings: MountSettings, resource: String) async throws(StorageFailure) {
        var lastFailure = ""
        for attempt in 1...(1 + settings.unmountRetries) {
            guard let entry = MountTable.entry(at: settings.mountPoint, in: MountTable.current()) else { return }
            if attempt > 1 {
                if settings.busyAction == .kill {
                    let grace = min(options.killGrace, settings.unmountInterval)
                    let count = await MountUsers.stop(device: entry.device, grace: grace)
                    if count > 0 {
                        logger?.warning("\(resource): stopped \(count) process(es) using \(settings.mountPoint) before unmounting")
                    }
                }
                try? await Task.sleep(for: settings.unmountInterval)
                // The kill alone may have let a pending unmount finish.
                if MountTable.entry(at: settings.mountPoint, in: MountTable.current()) == nil { return }
            }
            let result = await commands.run([options.umount, settings.mountPoint], timeout: settings.unmountTimeout)
            if result.succeeded, MountTable.entry(at: settings.mountPoint, in: MountTable.current()) == nil { return }
            lastFailure = result.succeeded ? "still mounted after umount" : result.failureDescription
            logger?.warning("\(resource): unmount attempt \(attempt) of \(1 + settings.unmountRetries) failed: \(lastFailure)")
        }
        throw StorageFailure(
            "cannot unmount \(settings.mountPoint) after \(1 + settings.unmountRetries) attempts: \(lastFailure)")
    }

    /// The fence: every user gets SIGKILL, then the mount is detached at once (MNT_DETACH:
    /// new opens fail, the kernel finishes the unmount when the last user is gone). Never
    /// blocks on the device, so a dead disk cannot hold the fence up.
    func detach(settings: MountSettings, resource: String) {
        let mounts = MountTable.current()
        guard let entry = MountTable.entry(at: settings.mountPoint, in: mounts) else { return }
        let killed = MountUsers.killNow(device: entry.device)
        // Several mounts may be stacked at the point: detach them all (bounded by the count).
        for _ in mounts where MountTable.entry(at: settings.mountPoint, in: MountTable.current()) != nil {
            if umount2(settings.mountPoint, Int32(MNT_DETACH)) != 0 {
                logger?.error("\(resource): fence: cannot detach \(settings.mountPoint): \(String(cString: strerror(errno)))")
                break
            }
        }
        logger?.warning("\(resource): fenced: \(settings.mountPoint) detached, \(killed.count) process(es) killed")
    }
}
