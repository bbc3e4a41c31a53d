import Foundation
import Logging
import NIOCore
import UnderstudyEngine
import UnderstudyModel

#if canImport(Glibc)
    import Glibc
#endif

/// Where a daemon keeps its files.
public struct DaemonPaths: Sendable {
    /// State (engine state, boot id, abnormal-stop marker, alert log, script logs).
    public var stateDirectory: String
    /// The local control socket.
    public var socketPath: String

    /// The lease file (see `LeaseFile`).
    public var leasePath: String { stateDirectory + "/lease" }

    /// The daemon's pid file, next to the socket.
    public var pidPath: String { (socketPath as NSString).deletingLastPathComponent + "/understudy.pid" }

    /// `--state-dir DIR` puts everything, the socket included, in DIR (several servers on
    /// one host); otherwise state goes to /var/lib/understudy and the socket to
    /// /run/understudy.
    public static func resolve(stateDirectory: String?) -> DaemonPaths {
        if let stateDirectory {
            return DaemonPaths(stateDirectory: stateDirectory, socketPath: stateDirectory + "/understudy.sock")
        }
        return DaemonPaths(stateDirectory: Defaults.stateDirectory, socketPath: Defaults.runDirectory + "/understudy.sock")
    }

    /// The socket the CLI talks to: `--state-dir`, then `UNDERSTUDY_STATE_DIR`, then the default.
    public static func socketForCLI(stateDirectory: String?) -> String {
        let directory = stateDirectory ?? ProcessInfo.processInfo.environment["UNDERSTUDY_STATE_DIR"]
        return resolve(stateDirectory: directory).socketPath
    }
}

public struct DaemonStartError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// The daemon of one server: turns the world into Engine events and carries out the
/// Engine's actions. All Engine access is serialized by this actor.
public actor ClusterDaemon {
    /// The running configuration; replaced with the Engine's by an online apply
    /// (ClusterDaemon+Configuration.swift).
    var config: ClusterConfig
    /// The running configuration's files (served to peers that fetch it).
    var runningBundle: ConfigBundle
    /// The version records (running, pending) in the state folder.
    let configStore: ConfigStore
    /// A fetch of a newer configuration from a peer, while one runs.
    var configFetch: Task<Void, Never>?
    /// When fetching each version last failed (retried after `fetchRetryPause`).
    var configFetchFailedAt: [UInt64: ContinuousClock.Instant] = [:]
    /// An apply coordinated by this server runs.
    var configApplyRunning = false
    /// Said at start, once the alert log is open (a pending file that could not be used).
    var startNotes: [LogEntry] = []
    let me: ServerName
    let paths: DaemonPaths
    let key: ClusterKey
    let logger: Logger
    var engine: ServerEngine
    let origin: ContinuousClock.Instant
    /// The lease this server publishes to its services (`UNDERSTUDY_LEASE_FILE`).
    let leaseFile: LeaseFile
    let store: StateStore
    let marker: AbnormalStopMarker
    /// Writes the Engine's state and the marker's changes off this actor, in order
    /// (StateWriter.swift; ClusterDaemon+Persistence.swift).
    let stateWriter: StateWriter
    /// The writer's ticket of the last clean-stop mark (see `reportedService`).
    var cleanStopTicket: StateWriter.Ticket?
    /// The newest Engine state queued for the disk (heartbeats made after it wait for it).
    var lastPersistTicket: StateWriter.Ticket?
    /// The drivers of the resource types this daemon runs (ResourceDriver.swift).
    let resources: ResourceDrivers
    let alertLog: RotatingLog
    /// Every server's alerts as this server holds them (ClusterDaemon+AlertSync.swift).
    let clusterAlerts: ClusterAlertLog
    /// Own entries written since the last push to the peers, and whether a push is due.
    var alertPushPending: [ReplicatedAlert] = []
    var alertPushScheduled = false
    var alertLastPush: ContinuousClock.Instant?
    var alertPushCursor = 0
    /// Alert destinations beside the alert log (syslog, mail, traps, webhooks, commands).
    let alertRouter = AlertRouter()
    /// Followers of the alert log (`alertLines()`: the web server's event stream).
    var alertSubscribers: [Int: AsyncStream<String>.Continuation] = [:]
    var nextAlertSubscriber = 0
    /// The heartbeat paths this server takes part in (HeartbeatTransport.swift).
    var transports: [any HeartbeatTransport] = []
    /// How many times each group was fenced on this server: a start that was under way when
    /// its group was fenced (a mount, an address) is fenced again when it ends.
    var fenceCounts: [GroupName: Int] = [:]
    /// Counters for `GET /metrics` and `clpperfc` (DaemonCounters.swift).
    var counters = DaemonCounters()
    /// The probes of the network-partition resolvers (pingnp, httpnp).
    var partitionProbes: [any PartitionProbe] = []
    /// The control server on each of this server's LAN heartbeat addresses, in path order;
    /// nil where binding failed so far (`ClusterDaemon+Control.swift` retries it).
    var controlServers: [(address: String, server: ControlServer?)] = []
    var controlListenRetry: Task<Void, Never>?
    var controlServersClosed = false
    /// Which LAN path the control channel takes to each peer.
    var controlPaths: ControlPathTable
    /// The keys of `cluster.rexec-clients` that loaded, and the refusals alerted so far
    /// (ClusterDaemon+Rexec.swift).
    var rexecClientKeys: [String: ClusterKey] = [:]
    var rexecRefusalsReported: Set<String> = []
    var rexecKeyFileStamps: [String: String] = [:]
    var lastRexecKeyCheck = ContinuousClock.now
    var localServer: LocalControlServer?
    var exitRequested = false
    var exitWaiters: [CheckedContinuation<Void, Never>] = []
    var lastTick: EngineTime = .zero
    /// The tick loop's sleep while it sleeps (see `tickLoop`).
    var tickSleep: TickSleep?
    /// The farewell heartbeat being sent when the service stops.
    var pendingFarewell: Task<Void, Never>?
    /// The power-off commands to the UPSes after a power-failure stop, awaited before the OS stops.
    var pendingPowerOff: Task<Void, Never>?
    /// Forced stop (`fencing:`), built for the running configuration (ClusterDaemon+ForcedStop.swift).
    var forcedStopper: ForcedStopper?
    var forcedStopperFencing: FencingConfig?
    /// The last periodic check of every agent against every peer, for status.
    var fencingChecks: [ForcedStopChecker.Result] = []
    /// Armed before the OS stops; kept (open) for the rest of the process's life.
    var shutdownWatchdog: KernelWatchdog?
    /// userw `method: softdog`: armed while the monitor runs, kept alive by every tick.
    var stallWatchdog: KernelWatchdog?
    var oversizeReported = false
    /// This daemon's heartbeat state as sender (behind a lock: peers' fetches are answered
    /// without the actor) and as receiver (HeartbeatStateSync.swift).
    let outbox = HeartbeatStateBoard()
    var inbox: HeartbeatInbox
    var heartbeatEncoder = HeartbeatEncoder()
    /// Undecodable heartbeat payloads are logged once per sender.
    var undecodableReported: Set<ServerName> = []
    /// Resource runs finished and not yet handed to the Engine (`runFinished`).
    var finishedRuns: [FinishedRun] = []
    /// Repetitions beyond a few a minute are summed up, not written (see `LogRateLimiter`).
    var logLimiter: LogRateLimiter
    /// The keeper (see `Keeper`), supervised: restarted when it dies.
    var keeper: Keeper.Running?
    /// When the keeper was restarted lately (for the restart limit).
    var keeperRestarts: [ContinuousClock.Instant] = []
    var keeperGivenUp = false
    /// What the keeper was last told (`tellKeeper`).
    var keeperTold: (run: UInt64, hash: String)?
    /// The OS still ran after an immediate stop of the machine (panic, reset, …): the daemon
    /// exits as after a crash (the keeper is not dismissed and fences again; the abnormal-stop
    /// marker stays).
    var exitAsCrash = false
    /// Servers named once for sending heartbeats that fail authentication (another key), and
    /// the counts of such datagrams per path and address seen so far (ClusterDaemon+KeyMismatch.swift).
    var keyMismatchReported: Set<ServerName> = []
    var badMACSeen: [String: UInt64] = [:]
    /// Senders whose heartbeats waited for their state (a fetch) since the last housekeeping:
    /// reported to the Engine as present (`EngineEvent.heartbeatsWithoutState`).
    var heldWithoutState: Set<ServerName> = []
    var heartbeatSendWatch = HeartbeatSendWatch()
    /// The Engine's view after the last step (`noticeLostPeers`).
    var viewAtLastStep: Set<ServerName> = []
    var lastKeyMismatchCheck = ContinuousClock.now
    let monitorRunner = MonitorRunner()
    /// How late heartbeats leave against their schedule.
    let heartbeatLateness = LatenessRecorder()
    /// How late this actor woke to prepare them (they are prepared `heartbeatLead` ahead).
    let heartbeatPreparationLateness = LatenessRecorder()
    var probeContext: MonitorProbes.Context
    let scriptRunner: ScriptRunner
    let host: HostFacts
    /// `clplogcc`: the collection this server takes part in (LogCollection.swift).
    let logCollector: LogCollector

    /// Checks everything that can be checked before touching the network, and builds the
    /// Engine from the persisted state.
    public init(config: ClusterConfig, server: ServerName, paths: DaemonPaths, logger: Logger) throws {
        guard config.server(named: server) != nil else {
            throw DaemonStartError(
                "server \"\(server)\" is not in servers: of \(config.sourcePath) (servers: \(config.serverNames.joined(separator: ", ")))")
        }
        try Self.checkSupported(config)
        inbox = HeartbeatInbox(fetchTimeout: Self.stateFetchTimeout(config.cluster.timing))
        guard Self.address(of: server, in: config) != nil else {
            throw DaemonStartError("server \(server) has no address in any lanhb heartbeat of \(config.sourcePath)")
        }
        do {
            key = try ClusterKey.load(from: config.cluster.secretFile)
        } catch {
            throw DaemonStartError("\(error)")
        }
        self.config = config
        self.me = server
        self.paths = paths
        self.logger = logger
        logLimiter = LogRateLimiter(
            objects: config.servers.count + config.groups.count + config.groups.map(\.resources.count).reduce(0, +) + config.monitors.count)
        do {
            try FileManager.default.createDirectory(
                atPath: paths.stateDirectory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            let socketFolder = (paths.socketPath as NSString).deletingLastPathComponent
            try FileManager.default.createDirectory(
                atPath: socketFolder, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
        } catch {
            throw DaemonStartError("cannot create \(paths.stateDirectory): \(error.localizedDescription)")
        }
        origin = ContinuousClock.now
        do {
            leaseFile = try LeaseFile(path: paths.leasePath, originBoottime: LeaseFile.boottimeNow())
        } catch {
            throw DaemonStartError("\(error)")
        }
        store = StateStore(directory: paths.stateDirectory)
        marker = AbnormalStopMarker(directory: paths.stateDirectory)
        stateWriter = StateWriter(name: "state writer", logger: logger)
        let persisted: PersistentState
        do {
            persisted = try store.load(PersistentState.self, name: "engine") ?? PersistentState()
        } catch {
            throw DaemonStartError("\(error) — move the file away to start from scratch")
        }
        let bootID: UInt64
        do {
            bootID = try BootIDAllocator(directory: paths.stateDirectory).allocate()
        } catch {
            throw DaemonStartError("cannot allocate a boot id in \(paths.stateDirectory): \(error)")
        }
        let abnormal: Bool
        do {
            abnormal = try marker.wasAbnormalStop
        } catch {
            throw DaemonStartError("\(error)")
        }
        configStore = ConfigStore(directory: paths.stateDirectory)
        var bundleNote: LogEntry?
        do {
            runningBundle = try ConfigBundle.read(configPath: config.sourcePath)
        } catch {
            // A scripts/ folder that cannot be distributed (too large, unreadable) does not
            // keep the server from running; its configuration is then the file alone.
            guard let data = FileManager.default.contents(atPath: config.sourcePath), let yaml = String(data: data, encoding: .utf8)
            else { throw DaemonStartError("\(error)") }
            runningBundle = ConfigBundle(yaml: yaml)
            bundleNote = LogEntry(
                .configurationFetchFailed, "The scripts/ folder beside \(config.sourcePath) is not part of the configuration: \(error).")
        }
        let hash = ConfigBundle.hash(config: config, scripts: runningBundle.scripts)
        let (version, notes) = try Self.configVersion(hash: hash, store: configStore)
        startNotes = notes + (bundleNote.map { [$0] } ?? [])
        engine = ServerEngine(
            config: config, me: server, bootID: bootID, configHash: hash, configVersion: version, persisted: persisted,
            abnormalStop: abnormal)
        let host = HostFacts.detect(productVersion: Defaults.productVersion, installPath: Defaults.installPath)
        self.host = host
        scriptRunner = ScriptRunner(logger: logger)
        var monitorEnvironment = ScriptEnvironment.compose(base: ScriptEnvironment.base(), host: host, variables: [:])
        monitorEnvironment["CLP_SERVER_LOCAL"] = server
        monitorEnvironment["UNDERSTUDY_LEASE_FILE"] = paths.leasePath
        probeContext = MonitorProbes.Context(
            config: config, runner: scriptRunner, environment: monitorEnvironment, logDirectory: paths.stateDirectory + "/logs",
            logger: logger)
        resources = ResourceDrivers(
            context: ResourceDriverContext(
                server: server, runner: scriptRunner, host: host, logDirectory: paths.stateDirectory + "/logs",
                stateDirectory: paths.stateDirectory, leaseFile: paths.leasePath, interfaceAddress: Self.address(of: server, in: config),
                logger: logger))
        alertLog = RotatingLog(
            path: paths.stateDirectory + "/alert.log", keptGenerations: 1, rotateRecords: config.alerts.logRecords, logger: logger)
        clusterAlerts = ClusterAlertLog(
            directory: paths.stateDirectory + "/alerts", me: server, servers: config.serverNames,
            recordsPerFile: config.alerts.logRecords, logger: logger)
        controlPaths = ControlPathTable(config: config)
        logCollector = LogCollector(workRoot: paths.stateDirectory + "/logcc")
        let alertContext = AlertDestinationContext(
            cluster: config.cluster.name, server: server, runner: scriptRunner, host: host, logger: logger)
        alertRouter.configure(config.alerts, destinations: AlertDestinationRegistry.build(config.alerts, context: alertContext))
    }

    /// What alert destinations are built with.
    var alertContext: AlertDestinationContext {
        AlertDestinationContext(cluster: config.cluster.name, server: me, runner: scriptRunner, host: host, logger: logger)
    }

    func now() -> EngineTime { origin.duration(to: .now) }

    /// This server's name, its configuration and where its files are (for the web server).
    public nonisolated var serverName: ServerName { me }
    public nonisolated var alertLogPath: String { paths.stateDirectory + "/alert.log" }

    // MARK: - Running

    /// Binds every socket, starts the cluster service and runs until the daemon is told to
    /// exit (SIGTERM, or a final action that ends in an OS shutdown).
    public func run() async throws {
        // A daemon restarted at once after a crash starts nothing while the previous one's
        // keeper still fences this server.
        try await KeeperLock(stateDirectory: paths.stateDirectory).waitUntilFree(
            limit: Keeper.killLimit + .seconds(40), logger: logger)
        transports = try await HeartbeatTransports.open(
            HeartbeatTransportContext(config: config, me: me, key: key, bootID: engine.bootID) { [weak self] event in
                Task { await self?.heartbeatPathChanged(event) }
            })
        partitionProbes = PartitionResolvers.open(
            PartitionProbeContext(config: config, me: me, key: key, bootID: engine.bootID) { [weak self] failed, name, reason in
                Task { await self?.partitionProbeChanged(failed: failed, name: name, reason: reason) }
            })
        do {
            try await startControlServers()
            localServer = try await LocalControlServer.start(path: paths.socketPath) { [weak self] request in
                guard let self else { return [] }
                return await self.handleLocal(request)
            }
        } catch {
            await closeSockets()
            throw DaemonStartError("\(error)")
        }
        do {
            try marker.markStarted()
            try AtomicFile.write(Array("\(getpid())\n".utf8), to: paths.pidPath)
        } catch {
            logger.error("cannot write the running marker or pid file: \(error)")
        }
        if let reason = await HeartbeatEventLoop.raisePriority() {
            logger.notice("heartbeat thread stays at normal priority (SCHED_RR \(HeartbeatEventLoop.realtimePriority) refused: \(reason))")
        }
        let listening = controlServers.filter { $0.server != nil }.map(\.address).joined(separator: ", ")
        logger.info(
            "understudy daemon \(me) started (boot \(engine.bootID)); control \(listening) port \(config.cluster.ports.control), socket \(paths.socketPath)"
        )
        keeper = Keeper.launch(
            configPath: config.sourcePath, server: me, stateDirectory: paths.stateDirectory, boot: engine.bootID, logger: logger)
        if keeper == nil { helperFailed("the keeper process could not be started") }
        // systemd (Type=notify): sockets bound, keeper running; commands are answered from now on.
        SystemdNotify.notify("READY=1\nSTATUS=server \(me) runs, boot \(engine.bootID)\nMAINPID=\(getpid())")
        await alertRouter.start()
        let (results, resultSink) = AsyncStream<[MonitorCheck]>.makeStream()
        monitorRunner.onReport { checks in resultSink.yield(checks) }
        for note in startNotes { record(note) }
        startNotes = []
        perform(engine.startService(now: now()))
        tellKeeper()

        await withTaskGroup(of: Void.self) { tasks in
            for path in transports.map(\.path) {
                tasks.addTask { [weak self] in await self?.receiveLoop(path: path) }
            }
            tasks.addTask { [weak self] in await self?.tickLoop() }
            tasks.addTask { [weak self] in await self?.heartbeatLoop() }
            tasks.addTask { [weak self] in
                for await batch in results { await self?.monitorsChecked(batch) }
            }
            tasks.addTask { [weak self, alertRouter] in
                for await notice in alertRouter.notices { await self?.alertDestinationChanged(notice) }
            }
            tasks.addTask { [weak self] in await self?.alertSyncLoop() }
            tasks.addTask { [weak self] in await self?.fencingCheckLoop() }
            tasks.addTask { [clusterAlerts] in await ClusterDaemon.alertFlushLoop(clusterAlerts) }
            await waitForExit()
            tasks.cancelAll()
            resultSink.finish()
            await closeSockets()
        }
        await monitorRunner.stopAll()
        // Every state and marker change is on disk before the daemon says it exits.
        await stateWriter.drain()
        stateWriter.stop()
        // The last alerts (the service stopping) reach destinations that work, briefly.
        await alertRouter.drain(within: .seconds(1))
        await alertRouter.stop()
        try? AtomicFile.remove(paths.pidPath)
        if exitAsCrash {
            // End of file without `clean`: the keeper fences as after a crash; exit status 1.
            throw DaemonStartError("the OS still ran after the machine was to stop at once; groups fenced, exiting as after a crash")
        }
        Keeper.dismiss(keeper?.handle)
        logger.info("understudy daemon \(me) exits")
    }

    /// Receives on one heartbeat path for the daemon's life. When NIO closes the channel after
    /// a fatal socket error, the path is bound again, so a transient local error never leaves
    /// the server deaf. (Sends do not go through NIO: a failed `sendto` is only counted.)
    func receiveLoop(path: String) async {
        var attempt = 0
        while !exitRequested && !Task.isCancelled {
            guard let transport = transports.first(where: { $0.path == path }) else { return }
            for await datagram in transport.received {
                received(datagram, path: path)
                attempt = 0
            }
            if exitRequested || Task.isCancelled { return }
            attempt += 1
            record(
                LogEntry(
                    .heartbeatPathReopening, "Heartbeat socket of \(path) closed after an error; binding it again (attempt \(attempt)).")
            )
            try? await Task.sleep(for: .milliseconds(min(1000, 100 * attempt)))
            await rebind(path: path)
        }
    }

    /// A disk or serial heartbeat path stopped or started working (said once per change).
    func heartbeatPathChanged(_ event: HeartbeatPathEvent) {
        switch event {
        case .failed(let path, let type, let reason):
            record(LogEntry(.heartbeatResourceDown, "Heartbeat path \(path) (\(type)) is down: \(reason); retrying every interval."))
        case .recovered(let path, let type):
            record(LogEntry(.heartbeatResourceUp, "Heartbeat path \(path) (\(type)) works again."))
        }
    }

    /// The witness of an httpnp entry stopped or started answering (said once per change).
    func partitionProbeChanged(failed: Bool, name: String, reason: String) {
        if failed {
            record(LogEntry(.heartbeatResourceDown, "The witness of \(name) (httpnp) does not answer: \(reason)."))
        } else {
            record(LogEntry(.heartbeatResourceUp, "The witness of \(name) (httpnp) answers again."))
        }
    }

    func rebind(path: String) async {
        guard let index = transports.firstIndex(where: { $0.path == path }) else { return }
        do {
            transports[index] = try await transports[index].reopened()
        } catch {
            record(LogEntry(.heartbeatPathReopenFailed, "Cannot bind the heartbeat socket of \(path) again: \(error)"))
        }
    }

    func waitForExit() async {
        if exitRequested { return }
        await withCheckedContinuation { exitWaiters.append($0) }
    }

    func requestExit() {
        exitRequested = true
        for waiter in exitWaiters { waiter.resume() }
        exitWaiters = []
    }

    func closeSockets() async {
        for transport in transports { await transport.close() }
        await closeControlServers()
        await localServer?.close()
    }

    /// SIGTERM: stop the local groups cleanly (SERVERSHUTDOWN, NONE), then exit.
    public func terminate() {
        SystemdNotify.notify("STOPPING=1\nSTATUS=stopping the local groups")
        if engine.service == .stopped {
            requestExit()
            return
        }
        let (_, actions) = engine.command(
            .stopService(factor: .serverShutdown, lastAction: .none, then: .exitProcess), origin: me, now: now())
        perform(actions)
    }

    // MARK: - Timers

    /// Ticks every `engine.tickPeriod` on deadlines that do not drift, except while ticks are
    /// quiet (QuietTicks.swift): nothing the Engine watches can turn before its `quietUntil`,
    /// so the loop sleeps until then (or the housekeeping), and `perform` brings the sleep
    /// forward when a step brings `quietUntil` forward. The Engine reads an event later than
    /// it expected as a stall of this process (StallsAndLease.swift); the heartbeat loop ticks
    /// every interval whatever this loop does.
    /// The daemon's own periodic checks, which need no tick's precision, run every
    /// `housekeepingPeriod`.
    func tickLoop() async {
        let period = engine.tickPeriod
        var deadline = ContinuousClock.now
        var nextHousekeeping = deadline
        // Once started (configuration read, groups placed), the code and read-only data only
        // the start used need not stay resident (StartupCode.swift, StartupData.swift).
        var releaseStartupCodeAt: ContinuousClock.Instant? = deadline + Self.startupCodeRelease
        while !Task.isCancelled {
            let regular = max(deadline + period, .now)
            let ceiling = min(nextHousekeeping, deadline + tickLoopCeiling)
            // A stopped service has nothing to tick (the Engine ignores every event until it
            // starts again; the start's step brings the sleep forward).
            let quiet = engine.service == .stopped ? ceiling : max(regular, origin + engine.quietUntil)
            let id = DeadlineTimer.shared.newSleepID()
            tickSleep = TickSleep(id: id, until: min(quiet, max(regular, ceiling)))
            await DeadlineTimer.shared.sleep(until: tickSleep?.until ?? regular, id: id)
            deadline = tickSleep?.until ?? regular
            tickSleep = nil
            perform(engine.handle(.tick, now: now()))
            stallWatchdog?.keepAlive()
            guard deadline >= nextHousekeeping else { continue }
            nextHousekeeping = deadline + Self.housekeepingPeriod
            expireTimeoutRatioIfDue()
            checkKeyMismatch()
            checkHeartbeatSends()
            checkRexecKeyFiles()
            for summary in logLimiter.rollWindow(now: now()) { write(summary) }
            superviseKeeper()
            tellKeeper()
            if let due = releaseStartupCodeAt, deadline >= due {
                releaseStartupCodeAt = nil
                // (Data first: finding it runs code that the code's release then drops too.)
                StartupData.release()
                StartupCode.release()
            }
        }
    }

    /// The tick loop's sleep: its id at the deadline timer and until when.
    struct TickSleep {
        var id: UInt64
        var until: ContinuousClock.Instant
    }

    /// After a step: a tick loop sleeping past the Engine's new `quietUntil` (or, when ticks are
    /// not quiet, past the next tick period) wakes then instead.
    func wakeTickLoopIfDue() {
        guard let sleep = tickSleep, engine.service != .stopped else { return }
        let due = max(origin + engine.quietUntil, ContinuousClock.now + engine.tickPeriod)
        guard due < sleep.until else { return }
        tickSleep?.until = due
        DeadlineTimer.shared.bringForward(sleep.id, to: due)
    }

    /// How long after its start the daemon gives back the code pages only the start used.
    static let startupCodeRelease: Duration = .seconds(20)

    /// How often the tick loop checks the keeper, the key files, the timeout ratio's expiry
    /// and the log limiter's window (each of which has a coarser clock of its own or none).
    /// Also the longest the tick loop sleeps while ticks are quiet.
    static let housekeepingPeriod: Duration = .seconds(1)

    /// The longest the tick loop sleeps: the housekeeping period, or a quarter of the kernel
    /// watchdog's timeout while userw's watchdog is armed (each tick keeps it alive).
    var tickLoopCeiling: Duration {
        guard let watchdog = stallWatchdog, watchdog.seconds > 0 else { return Self.housekeepingPeriod }
        return min(Self.housekeepingPeriod, .seconds(Int64(watchdog.seconds)) / 4)
    }

    // MARK: - Internal monitoring

    /// The keeper died (reference §3.6, alerts rm 140–143): start it again, at most
    /// `keeperRestartLimit` times in `keeperRestartWindow`; beyond that, or when it cannot be
    /// started, the configured `cluster.recovery.process-failure-action`.
    static let keeperRestartLimit = 3
    static let keeperRestartWindow: Duration = .seconds(600)

    func superviseKeeper() {
        guard let current = keeper, !current.process.isRunning, !exitRequested, !keeperGivenUp else { return }
        try? current.handle.close()
        keeper = nil
        let now = ContinuousClock.now
        keeperRestarts = keeperRestarts.filter { $0.duration(to: now) < Self.keeperRestartWindow }
        guard keeperRestarts.count < Self.keeperRestartLimit else {
            helperFailed("the keeper process died \(Self.keeperRestartLimit + 1) times within \(Self.keeperRestartWindow)")
            return
        }
        keeperRestarts.append(now)
        record(
            LogEntry(
                .keeperRestarted,
                "The keeper process of \(me) died; starting it again (\(keeperRestarts.count)/\(Self.keeperRestartLimit))."))
        keeper = Keeper.launch(
            configPath: config.sourcePath, server: me, stateDirectory: paths.stateDirectory, boot: engine.bootID, logger: logger)
        if keeper == nil { helperFailed("the keeper process could not be started again") }
        keeperTold = nil
        tellKeeper()
    }

    /// Tells the keeper the service run and the configuration running now (`Keeper.tell`), when
    /// either changed since it was last told.
    func tellKeeper() {
        guard let keeper else { return }
        // The Engine's hash changes with the configuration: the digest is worked out only then.
        let current = (run: engine.serviceRun, hash: engine.configHash)
        guard keeperTold.map({ $0 != current }) ?? true else { return }
        Keeper.tell(keeper.handle, run: current.run, config: config)
        keeperTold = current
    }

    func helperFailed(_ reason: String) {
        keeperGivenUp = true
        let action = config.cluster.recovery.processFailureAction
        record(LogEntry(.internalMonitorFailed, "\(reason.prefix(1).uppercased() + reason.dropFirst()); action: \(action.rawValue)."))
        let then: AfterServiceStop
        let last: LastAction
        switch action {
        case .none: return
        case .stopService: (then, last) = (.stayStopped, .none)
        case .shutdown: (then, last) = (.os(.shutdown), .halt)
        case .reboot: (then, last) = (.os(.reboot), .reboot)
        case .panic, .reset, .keepaliveReset, .bmcPowerOff, .bmcReset, .bmcPowerCycle, .bmcNMI:
            // At once, without stopping the groups (ClusterDaemon+Power.swift stopMachine).
            if let os = OSAction(action) { perform(engine.stopMachineNow(os, reason: "process failure action", now: now())) }
            return
        }
        let (_, actions) = engine.command(.stopService(factor: .serverShutdown, lastAction: last, then: then), origin: me, now: now())
        perform(actions)
    }

    /// How far ahead of its deadline a periodic heartbeat is prepared and sent: a quarter of
    /// the interval, at most 50 ms. The sockets write it at once from the actor's thread
    /// (`HeartbeatSocket.send(_:toHosts:port:at:freshUntil:sent:)`, one `sendto`, no event-loop
    /// wake-up), so a busy actor or a busy cooperative pool makes a heartbeat late only when
    /// it is late by more than this; the lateness recorded is measured from the deadline.
    /// Safe: the heartbeat's `sentAt` (and so this server's lease) is the time it was
    /// prepared, never later than it leaves; a payload is sent once, for one deadline, and
    /// not at all once the next one is due (the process stood still: what it held before
    /// must not reach the peers as news; the tick after the stall acts first, then a fresh
    /// heartbeat goes out).
    static func heartbeatLead(interval: Duration) -> Duration {
        min(interval / 4, .milliseconds(50))
    }

    func heartbeatLoop() async {
        let period = config.cluster.timing.heartbeatInterval
        let lead = Self.heartbeatLead(interval: period)
        var deadline = ContinuousClock.now + lead
        while !Task.isCancelled {
            heartbeatPreparationLateness.record((deadline - lead).duration(to: .now))
            // A tick first: a process that was stalled fences its groups before it tells
            // anyone what it holds.
            perform(engine.handle(.tick, now: now()))
            if engine.sendsHeartbeats {
                let payload = heartbeatPayload(engine.makeHeartbeat(now: now()))
                await sendWhenDurable(payload, after: lastPersistTicket, at: deadline)
            }
            deadline += period
            if deadline < .now { deadline = .now }
            await DeadlineTimer.shared.sleep(until: deadline - lead)
        }
    }

    /// The keeper of a peer's dead daemon says it fenced what that daemon held (Keeper.swift):
    /// authenticated as that peer, of the boot it names.
    func receivedKeeperNotice(_ datagram: ReceivedDatagram, path: String) {
        guard let notice = try? KeeperNoticeWire.decode(datagram.payload), notice.server == datagram.sender,
            notice.instance.boot == datagram.bootID
        else {
            logger.warning("keeper notice from \(datagram.sender) on \(path): malformed or not its own; dropped")
            return
        }
        let receivedAt = max(origin.duration(to: datagram.receivedAt), lastTick)
        perform(engine.handle(.peerDaemonDied(server: notice.server, instance: notice.instance), now: receivedAt))
    }

    /// Sends one heartbeat payload on every path to every peer, at once (the periodic
    /// heartbeat with its lateness from `deadline` recorded).
    func send(_ payload: [UInt8], at deadline: ContinuousClock.Instant? = nil) async {
        if payload.count > DatagramCodec.maximumPayloadSize && !oversizeReported {
            // Too many servers for one datagram (config check refuses it): the peers would hear nothing. Say so once.
            oversizeReported = true
            record(
                LogEntry(
                    .heartbeatTooLarge,
                    "The heartbeat of \(me) is \(payload.count) bytes, more than a datagram can carry (\(DatagramCodec.maximumPayloadSize)); the configuration has more servers (or longer server names) than one heartbeat can carry."
                ))
        }
        let lateness = heartbeatLateness
        // Not sent once the next one is due: that one replaces it, fresh.
        let start: ContinuousClock.Instant = deadline ?? .now
        let freshUntil: ContinuousClock.Instant = max(ContinuousClock.now, start) + config.cluster.timing.heartbeatInterval
        var record: (@Sendable (Duration) -> Void)?
        if deadline != nil { record = { lateness.record($0) } }
        for transport in transports {
            await transport.send(payload, at: deadline, freshUntil: freshUntil, sent: record)
        }
    }

    func received(_ datagram: ReceivedDatagram, path: String) {
        if KeeperNoticeWire.isNotice(datagram.payload) {
            receivedKeeperNotice(datagram, path: path)
            return
        }
        let parsed: HeartbeatWire.Parsed
        do {
            parsed = try HeartbeatWire.decode(datagram.payload)
        } catch {
            if undecodableReported.insert(datagram.sender).inserted {
                logger.warning(
                    "heartbeat from \(datagram.sender) on \(path): undecodable payload dropped (\(error)); is it another version?")
            }
            return
        }
        // The authenticated sender must be the one the payload speaks for.
        guard parsed.core.sender == datagram.sender, parsed.core.bootID == datagram.bootID else {
            logger.warning("heartbeat on \(path): sender \(datagram.sender) claims to be \(parsed.core.sender); dropped")
            return
        }
        let sender = parsed.core.sender
        let receivedAt = max(origin.duration(to: datagram.receivedAt), lastTick)
        heardOnPath(sender, path: path, at: receivedAt)
        let echo = parsed.core.hears[me].flatMap { $0.bootID == engine.bootID ? $0.sentAt : nil }
        counters.heard(sender, path: path, at: receivedAt, echoed: echo)
        let inbox = self.inbox
        let heartbeatDatagram: HeartbeatDatagram
        do {
            heartbeatDatagram = try HeartbeatWire.datagram(from: parsed) { instance, stateSeq, inlineFrom in
                inbox.wants(sender, instance: instance, stateSeq: stateSeq, inlineFrom: inlineFrom)
            }
        } catch {
            logger.warning("heartbeat from \(sender) on \(path): unreadable state dropped (\(error))")
            return
        }
        switch self.inbox.receive(heartbeatDatagram, now: receivedAt) {
        case .deliver(let heartbeat):
            deliver(heartbeat, path: path, at: receivedAt)
        case .held:
            noteHeldWithoutState(sender, at: receivedAt)
        case .late:
            break
        case .fetch(let since, let instance):
            fetchHeartbeatState(from: sender, since: since, of: instance, path: path)
            noteHeldWithoutState(sender, at: receivedAt)
        }
    }

    /// A heartbeat of `sender` waits for its state: the sender is present, what it runs
    /// unknown (`EngineEvent.heartbeatsWithoutState`). The first since the last housekeeping
    /// is told at once — a takeover of the sender's groups may be a moment away — the others
    /// at the housekeeping (`checkKeyMismatch`), about once a second.
    func noteHeldWithoutState(_ sender: ServerName, at time: EngineTime) {
        guard heldWithoutState.insert(sender).inserted else { return }
        perform(engine.handle(.heartbeatsWithoutState(from: [sender]), now: time))
    }

    /// Hands a complete heartbeat to the Engine.
    func deliver(_ heartbeat: Heartbeat, path: String, at time: EngineTime) {
        perform(engine.handle(.heartbeat(heartbeat, path: path), now: time))
        noticeConfiguration(of: heartbeat)
    }

}
