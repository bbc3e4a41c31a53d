import Foundation
import Logging
import Synchronization
import UnderstudyEngine
import UnderstudyModel

#if canImport(Glibc)
    import Glibc
#endif

/// A small process beside the daemon that outlives it: when the daemon dies without saying
/// goodbye (kill -9, crash), the keeper fences at once what the daemon held on this server —
/// it kills the resources' processes and removes the floating and virtual addresses — so
/// that the server taking the groups over does not find them still in use. (A daemon that
/// restarts would do the same, but maybe never.)
///
/// The daemon holds the write end of the keeper's stdin; end of file without the word
/// `clean` first means the daemon is gone. As its service starts, and whenever its
/// configuration changes, the daemon writes `run N DIGEST` there: its service run and the
/// digest of its configuration. With them, once its fence is complete, the keeper tells the
/// peers that this run died and holds nothing (KeeperNotices.swift in the Engine), so that
/// they take its groups over at once instead of after a timeout.
public enum Keeper {
    /// A running keeper: the process and the write end of its stdin.
    struct Running {
        var process: SpawnedProcess
        var handle: FileHandle
    }

    /// Starts the keeper of this daemon; returns it with the handle the daemon keeps open.
    static func launch(configPath: String, server: ServerName, stateDirectory: String, boot: UInt64, logger: Logger) -> Running? {
        // Run through /proc/self/exe: the keeper is this very binary even after a package
        // upgrade replaced the file (the link then reads "… (deleted)" and that path is gone).
        let binary = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? "understudy"
        let name = binary.hasSuffix(" (deleted)") ? String(binary.dropLast(10)) : binary
        // Both ends close-on-exec: scripts must not inherit the write end, or the keeper never
        // sees the daemon go (the keeper gets the read end as its standard input).
        guard let (readEnd, writeEnd) = SpawnedProcess.closeOnExecPipe() else {
            logger.error("cannot start the keeper: pipe: \(String(cString: strerror(errno)))")
            return nil
        }
        defer { close(readEnd) }
        let process: SpawnedProcess
        do {
            process = try SpawnedProcess.spawn(
                [
                    name, "keeper", "--config", configPath, "--server", server, "--state-dir", stateDirectory, "--instance",
                    DaemonInstance.token, "--boot", String(boot),
                ], executable: "/proc/self/exe", input: .descriptor(readEnd), output: .inherit, error: .inherit)
        } catch {
            close(writeEnd)
            logger.error("cannot start the keeper: \(error); a crash of this daemon would leave its resources in place")
            return nil
        }
        return Running(process: process, handle: FileHandle(fileDescriptor: writeEnd, closeOnDealloc: true))
    }

    /// Tells the keeper the service run and the configuration the daemon runs now.
    static func tell(_ handle: FileHandle?, run: UInt64, config: ClusterConfig) {
        guard let handle else { return }
        try? handle.write(contentsOf: Data("run \(run) \(digest(config))\n".utf8))
    }

    /// The configuration's identity for the keeper: its canonical form (scripts left out: a
    /// fence runs none).
    static func digest(_ config: ClusterConfig) -> String { ConfigBundle.hash(config: config, scripts: [:]) }

    /// The daemon exits normally: the keeper has nothing to do.
    static func dismiss(_ handle: FileHandle?) {
        guard let handle else { return }
        try? handle.write(contentsOf: Data("clean\n".utf8))
        try? handle.close()
    }

    /// How long the keeper goes on killing what the dead daemon spawned before it fences
    /// anyway (a process blocked in the kernel on a dead device dies only when it wakes).
    public static let killLimit: Duration = .seconds(20)
    /// How long it then waits for such a process, to fence again once it is gone.
    public static let lateProcessLimit: Duration = .seconds(600)

    /// Keeper side: waits for the daemon to go, then fences if it did not say goodbye.
    ///
    /// The keeper holds `KeeperLock` from its start to the end of its fence, and a new daemon
    /// on this server waits for that lock before it starts anything: a daemon restarted at
    /// once (systemd) cannot start a group while the previous one's keeper still fences it.
    /// Before fencing, the keeper kills every process the daemon spawned (`DaemonInstance`)
    /// and waits until they are gone: a `mount` that was on its way cannot complete after the
    /// fence and leave the disk mounted here.
    public static func run(
        config: ClusterConfig, server: ServerName, stateDirectory: String, instance: String?, boot: UInt64?, logger: Logger
    ) async {
        let daemon = getppid()
        // Read now: when the daemon dies the file may be anywhere in an upgrade or an edit
        // (read again then: a key put in place since, as the daemons take it, is preferred).
        let keptKey = boot == nil ? nil : try? ClusterKey.load(from: config.cluster.secretFile)
        let lock = KeeperLock(stateDirectory: stateDirectory)
        let held = lock.acquire(logger: logger)
        // It waits, maybe for months: what its start ran need not stay resident meanwhile.
        // (Data first: finding it runs code that the code's release then drops too.)
        StartupData.release()
        StartupCode.release()
        let words = DaemonWords.read(FileHandle.standardInput)
        if words.clean { return }
        logger.critical("the daemon of \(server) died: fencing its resources on this server")
        var config = config
        if let digest = words.digest, digest != Self.digest(config), let reloaded = try? ConfigLoader.load(path: config.sourcePath) {
            // Applied online since this keeper started: fence what the daemon ran.
            config = reloaded
        }
        var late: [Int32] = []
        if let instance {
            late = await InstanceProcesses.killAll(token: instance, limit: killLimit)
            if !late.isEmpty {
                let names = late.map { InstanceProcesses.describe($0) }.joined(separator: ", ")
                logger.critical(
                    "processes of the dead daemon do not die within \(killLimit) (blocked in the kernel?): \(names); fencing now, and again once they are gone"
                )
            }
        }
        let fenced = await fence(config: config, server: server, stateDirectory: stateDirectory, logger: logger)
        let notice = KeeperNotice(
            server: server, boot: boot, run: words.run, digestMatches: words.digest == Self.digest(config),
            key: keptKey.flatMap { kept in (try? ClusterKey.load(from: config.cluster.secretFile)) ?? kept },
            allKilled: late.isEmpty, fenced: fenced, daemon: daemon,
            heldDisks: await disksStillHeld(config: config, server: server, stateDirectory: stateDirectory, logger: logger))
        await notice.send(config: config, logger: logger)
        if held { lock.release() }
        guard let instance, !late.isEmpty else { return }
        // A process that was blocked may still complete a mount: once they are all gone, fence
        // again — unless a new daemon runs here by then (its keeper holds the lock): it
        // manages this server now, and its start checks see what is mounted.
        let remaining = await InstanceProcesses.killAll(token: instance, limit: lateProcessLimit)
        guard remaining.isEmpty else {
            logger.critical("processes of the dead daemon still run after \(lateProcessLimit): \(remaining); giving up")
            return
        }
        guard lock.tryAcquire() else {
            logger.warning("the last processes of the dead daemon are gone, but a new daemon runs on this server: not fencing again")
            return
        }
        logger.critical("the last processes of the dead daemon are gone: fencing again")
        await fence(config: config, server: server, stateDirectory: stateDirectory, logger: logger)
        lock.release()
    }

    /// The `disk` resources of `server`'s groups whose device a file system here still holds
    /// after the fence (`DiskDriver.isReleased`, at most 5 s in all).
    static func disksStillHeld(config: ClusterConfig, server: ServerName, stateDirectory: String, logger: Logger) async -> [String] {
        let disks = config.groups.filter { $0.servers.contains(server) }.flatMap(\.resources).compactMap {
            resource -> (String, DiskSettings)? in
            guard case .disk(let settings) = resource.settings else { return nil }
            return (resource.name, settings)
        }
        guard !disks.isEmpty else { return [] }
        let driver = DiskDriver(stateDirectory: stateDirectory, logger: logger)
        let deadline = ContinuousClock.now + .seconds(5)
        var held: [String] = []
        for (name, settings) in disks
        where await !driver.isReleased(settings, within: max(.zero, ContinuousClock.now.duration(to: deadline))) {
            held.append(name)
        }
        return held
    }

    /// Fences every group of `server`; true when every driver's fence succeeded.
    @discardableResult
    static func fence(config: ClusterConfig, server: ServerName, stateDirectory: String, logger: Logger) async -> Bool {
        let drivers = ResourceDrivers(
            context: ResourceDriverContext(
                server: server, runner: ScriptRunner(logger: logger),
                host: HostFacts.detect(productVersion: Defaults.productVersion, installPath: Defaults.installPath),
                logDirectory: stateDirectory + "/logs", stateDirectory: stateDirectory, leaseFile: nil, interfaceAddress: nil,
                logger: logger))
        var fenced = true
        for group in config.groups where group.servers.contains(server) {
            for task in drivers.fence(group: group, server: server) where await !task.value { fenced = false }
        }
        return fenced
    }
}

/// `keeper.lock` in the state directory: held by the keeper while it may still fence. A
/// daemon starting on this server waits until it is free (`waitUntilFree`).
public struct KeeperLock: Sendable {
    public let path: String

    public init(stateDirectory: String) { path = stateDirectory + "/keeper.lock" }

    /// Blocks until the lock is this process's (the previous keeper ends its fence first);
    /// writes this pid into the file for the messages of a waiting daemon.
    func acquire(logger: Logger) -> Bool {
        let descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else {
            logger.error(
                "cannot open \(path): \(String(cString: strerror(errno))); a daemon restarted at once would not wait for this keeper")
            return false
        }
        var locked = flock(descriptor, LOCK_EX) == 0
        while !locked && errno == EINTR { locked = flock(descriptor, LOCK_EX) == 0 }
        guard locked else {
            logger.error(
                "cannot lock \(path): \(String(cString: strerror(errno))); a daemon restarted at once would not wait for this keeper")
            close(descriptor)
            return false
        }
        Self.held.withLock { $0 = descriptor }
        _ = ftruncate(descriptor, 0)
        let text = Array("\(getpid())\n".utf8)
        _ = text.withUnsafeBytes { pwrite(descriptor, $0.baseAddress, $0.count, 0) }
        return true
    }

    /// Takes the lock only if nobody holds it.
    func tryAcquire() -> Bool {
        let descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { return false }
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
            close(descriptor)
            return false
        }
        Self.held.withLock { $0 = descriptor }
        return true
    }

    func release() {
        Self.held.withLock { descriptor in
            if descriptor >= 0 { close(descriptor) }
            descriptor = -1
        }
    }

    /// The descriptor holding the lock in this process (a keeper holds at most one).
    private static let held = Mutex<Int32>(-1)

    /// Daemon side: returns once no keeper holds the lock, or throws after `limit` naming the
    /// keeper that still does. Bounded: one try every 100 ms.
    public func waitUntilFree(limit: Duration, logger: Logger) async throws(DaemonStartError) {
        let deadline = ContinuousClock.now + limit
        var told = false
        while true {
            let descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
            guard descriptor >= 0 else {
                throw DaemonStartError("cannot open \(path): \(String(cString: strerror(errno)))")
            }
            let free = flock(descriptor, LOCK_EX | LOCK_NB) == 0
            close(descriptor)
            if free { return }
            let holder = (try? String(contentsOfFile: path, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "?"
            guard ContinuousClock.now < deadline else {
                throw DaemonStartError(
                    "the keeper of a previous daemon (pid \(holder)) still fences this server after \(limit) (\(path) is locked); start again once it has finished, or stop it"
                )
            }
            if !told {
                logger.warning("waiting for the keeper of the previous daemon (pid \(holder)) to finish fencing this server")
                told = true
            }
            try? await Task.sleep(for: .milliseconds(100))
        }
    }
}
