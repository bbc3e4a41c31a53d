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
    let config: ClusterConfig
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
    /// The drivers of the resource types this daemon runs (ResourceDriver.swift).
    let resources: ResourceDrivers
    let alertLog: RotatingLog
    /// The heartbeat paths this server takes part in (HeartbeatTransport.swift).
    var transports: [any HeartbeatTransport] = []
    var controlServer: ControlServer?
    var localServer: LocalControlServer?
    var exitRequested = false
    var exitWaiters: [CheckedContinuation<Void, Never>] = []
    var lastTick: EngineTime = .zero
    /// The farewell heartbeat being sent when the service stops.
    var pendingFarewell: Task<Void, Never>?
    /// The power-off commands to the UPSes after a power-failure stop, awaited before the OS stops.
    var pendingPowerOff: Task<Void, Never>?
    /// Armed before the OS stops; kept (open) for the rest of the process's life.
    var shutdownWatchdog: KernelWatchdog?
    /// userw `method: softdog`: armed while the monitor runs, kept alive by every tick.
    var stallWatchdog: KernelWatchdog?
    var oversizeReported = false
    /// Repetitions beyond a few a minute are summed up, not written (see `LogRateLimiter`).
    var logLimiter: LogRateLimiter
    /// The keeper (see `Keeper`), supervised: restarted when it dies.
    var keeper: Keeper.Running?
    /// When the keeper was restarted lately (for the restart limit).
    var keeperRestarts: [ContinuousClock.Instant] = []
    var keeperGivenUp = false
    let monitorRunner = MonitorRunner()
    /// How late heartbeats leave against their schedule.
    let heartbeatLateness = LatenessRecorder()
    /// How late this actor woke to prepare them (they are prepared `heartbeatLead` ahead).
    let heartbeatPreparationLateness = LatenessRecorder()
    let probeContext: MonitorProbes.Context
    let scriptRunner: ScriptRunner
    let host: HostFacts

    /// Checks everything that can be checked before touching the network, and builds the
    /// Engine from the persisted state.
    public init(config: ClusterConfig, server: ServerName, paths: DaemonPaths, logger: Logger) throws {
        guard config.server(named: server) != nil else {
            throw DaemonStartError(
                "server \"\(server)\" is not in servers: of \(config.sourcePath) (servers: \(config.serverNames.joined(separator: ", ")))")
        }
        try Self.checkSupported(config)
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
        engine = ServerEngine(
            config: config, me: server, bootID: bootID, configHash: Self.configHash(config), persisted: persisted,
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
        alertLog = RotatingLog(path: paths.stateDirectory + "/alert.log", rotateSize: 4 * 1024 * 1024, keptGenerations: 3, logger: logger)
    }

    // MARK: - Configuration checks

    /// The daemon refuses configurations with types it does not run yet, naming them.
    static func checkSupported(_ config: ClusterConfig) throws {
        var problems: [String] = []
        for group in config.groups {
            for resource in group.resources where !ResourceDrivers.supportedTypes.contains(resource.type) {
                problems.append("resource \(resource.name) (group \(group.name)) has type '\(resource.type.rawValue)'")
            }
        }
        for heartbeat in config.heartbeats where !HeartbeatTransports.supportedTypes.contains(heartbeat.typeName) {
            problems.append("heartbeat \(heartbeat.name) has type '\(heartbeat.typeName)'")
        }
        for np in config.networkPartition where !PartitionResolvers.supportedTypes.contains(np.typeName) {
            problems.append("network-partition \(np.name) has type '\(np.typeName)'")
        }
        for monitor in config.monitors {
            if let reason = MonitorProbes.unsupportedReason(monitor) { problems.append("monitor \(monitor.name) has \(reason)") }
        }
        if !problems.isEmpty {
            throw DaemonStartError(
                "\(config.sourcePath): this version of the daemon does not run these types yet: "
                    + problems.joined(separator: "; ")
                    + " (supported now: resources "
                    + ResourceDrivers.supportedTypes.map(\.rawValue).sorted().joined(separator: ", ") + "; heartbeats "
                    + HeartbeatTransports.supportedTypes.sorted().joined(separator: ", ") + "; network-partition "
                    + PartitionResolvers.supportedTypes.sorted().joined(separator: ", ") + "; monitors "
                    + MonitorProbes.supported.map(\.rawValue).sorted().joined(separator: ", ") + ")")
        }
        if !config.heartbeats.contains(where: { $0.typeName == "lanhb" }) {
            throw DaemonStartError("\(config.sourcePath): at least one lanhb heartbeat is needed")
        }
        if let problem = HeartbeatBudget.estimate(config).problem { throw DaemonStartError("\(config.sourcePath): \(problem)") }
    }

    /// The address of a server on its first LAN heartbeat path: where its control channel
    /// listens.
    static func address(of server: ServerName, in config: ClusterConfig) -> String? {
        for heartbeat in config.heartbeats {
            if case .lan(let addresses) = heartbeat.kind, let address = addresses[server] { return address }
        }
        return nil
    }

    static func serverName(forNameOrAddress text: String, in config: ClusterConfig) -> String {
        if config.server(named: text) != nil { return text }
        for heartbeat in config.heartbeats {
            if case .lan(let addresses) = heartbeat.kind, let match = addresses.first(where: { $0.value == text }) { return match.key }
        }
        return text
    }

    static func configHash(_ config: ClusterConfig) -> String {
        guard let text = try? String(contentsOfFile: config.sourcePath, encoding: .utf8) else { return "unknown" }
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in text.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x100_0000_01b3
        }
        return String(hash, radix: 16)
    }

    func now() -> EngineTime { origin.duration(to: .now) }

    // MARK: - Running

    /// Binds every socket, starts the cluster service and runs until the daemon is told to
    /// exit (SIGTERM, or a final action that ends in an OS shutdown).
    public func run() async throws {
        transports = try await HeartbeatTransports.open(
            HeartbeatTransportContext(config: config, me: me, key: key, bootID: engine.bootID))
        guard let controlAddress = Self.address(of: me, in: config) else { throw DaemonStartError("no control address") }
        do {
            controlServer = try await ControlServer.start(host: controlAddress, port: config.cluster.ports.control, key: key, localName: me)
            {
                [weak self] request in
                guard let self else { return [] }
                return await self.handlePeer(request)
            }
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
        logger.info(
            "understudy daemon \(me) started (boot \(engine.bootID)); control \(controlAddress):\(config.cluster.ports.control), socket \(paths.socketPath)"
        )
        keeper = Keeper.launch(configPath: config.sourcePath, server: me, stateDirectory: paths.stateDirectory, logger: logger)
        if keeper == nil { helperFailed("the keeper process could not be started") }
        let (results, resultSink) = AsyncStream<[MonitorCheck]>.makeStream()
        monitorRunner.onReport { checks in resultSink.yield(checks) }
        perform(engine.startService(now: now()))

        await withTaskGroup(of: Void.self) { tasks in
            for path in transports.map(\.path) {
                tasks.addTask { [weak self] in await self?.receiveLoop(path: path) }
            }
            tasks.addTask { [weak self] in await self?.tickLoop() }
            tasks.addTask { [weak self] in await self?.heartbeatLoop() }
            tasks.addTask { [weak self] in
                for await batch in results { await self?.monitorsChecked(batch) }
            }
            await waitForExit()
            tasks.cancelAll()
            resultSink.finish()
            await closeSockets()
        }
        await monitorRunner.stopAll()
        try? AtomicFile.remove(paths.pidPath)
        Keeper.dismiss(keeper?.handle)
        logger.info("understudy daemon \(me) exits")
    }

    /// Receives on one heartbeat path for the daemon's life. NIO closes a UDP channel on a
    /// fatal send error (e.g. EPERM from a firewall rule): the path is then bound again, so
    /// a transient local error never leaves the server deaf.
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
                LogEntry(.warning, "lanhb", 71, "Heartbeat socket of \(path) closed after an error; binding it again (attempt \(attempt)).")
            )
            try? await Task.sleep(for: .milliseconds(min(1000, 100 * attempt)))
            await rebind(path: path)
        }
    }

    func rebind(path: String) async {
        guard let index = transports.firstIndex(where: { $0.path == path }) else { return }
        do {
            transports[index] = try await transports[index].reopened()
        } catch {
            record(LogEntry(.error, "lanhb", 72, "Cannot bind the heartbeat socket of \(path) again: \(error)"))
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
        await controlServer?.close()
        await localServer?.close()
    }

    /// SIGTERM: stop the local groups cleanly (SERVERSHUTDOWN, NONE), then exit.
    public func terminate() {
        if engine.service == .stopped {
            requestExit()
            return
        }
        let (_, actions) = engine.command(
            .stopService(factor: .serverShutdown, lastAction: .none, then: .exitProcess), origin: me, now: now())
        perform(actions)
    }

    // MARK: - Timers

    /// Ticks every `engine.tickPeriod` on deadlines that do not drift. The Engine reads a
    /// longer gap between two events as a stall of this process (StallsAndLease.swift).
    func tickLoop() async {
        let period = engine.tickPeriod
        var deadline = ContinuousClock.now
        while !Task.isCancelled {
            deadline += period
            if deadline < .now { deadline = .now }
            try? await PreciseSleep.until(deadline)
            perform(engine.handle(.tick, now: now()))
            for summary in logLimiter.rollWindow(now: now()) { write(summary) }
            stallWatchdog?.keepAlive()
            superviseKeeper()
        }
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
                .warning, "rm", 141,
                "The keeper process of \(me) died; starting it again (\(keeperRestarts.count)/\(Self.keeperRestartLimit))."))
        keeper = Keeper.launch(configPath: config.sourcePath, server: me, stateDirectory: paths.stateDirectory, logger: logger)
        if keeper == nil { helperFailed("the keeper process could not be started again") }
    }

    func helperFailed(_ reason: String) {
        keeperGivenUp = true
        let action = config.cluster.recovery.processFailureAction
        record(LogEntry(.error, "rm", 143, "\(reason.prefix(1).uppercased() + reason.dropFirst()); action: \(action.rawValue)."))
        let then: AfterServiceStop
        let last: LastAction
        switch action {
        case .none: return
        case .stopService: (then, last) = (.stayStopped, .none)
        case .shutdown: (then, last) = (.os(.shutdown), .halt)
        case .reboot: (then, last) = (.os(.reboot), .reboot)
        }
        let (_, actions) = engine.command(.stopService(factor: .serverShutdown, lastAction: last, then: then), origin: me, now: now())
        perform(actions)
    }

    /// How far ahead of its deadline a periodic heartbeat is prepared: a quarter of the
    /// interval, at most 50 ms. The sockets' event loops send it at the deadline (see
    /// `HeartbeatSocket.send(_:toHosts:port:at:freshUntil:sent:)`), so a busy actor or a busy
    /// cooperative pool delays a heartbeat only when it is late by more than this.
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
                await send(WireJSON.encode(engine.makeHeartbeat(now: now())), at: deadline)
            }
            deadline += period
            if deadline < .now { deadline = .now }
            try? await PreciseSleep.until(deadline - lead)
        }
    }

    /// Sends one heartbeat payload on every path to every peer, at once or, for the periodic
    /// heartbeat, at `deadline` from the sockets' event loops (lateness recorded).
    func send(_ payload: [UInt8], at deadline: ContinuousClock.Instant? = nil) async {
        if payload.count > DatagramCodec.maximumPayloadSize && !oversizeReported {
            // Too many groups for one datagram: the peers would hear nothing. Say so once.
            oversizeReported = true
            record(
                LogEntry(
                    .error, "lanhb", 73,
                    "The heartbeat of \(me) is \(payload.count) bytes, more than a datagram can carry (\(DatagramCodec.maximumPayloadSize)); the cluster has too many groups for this version."
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
        guard let heartbeat = try? WireJSON.decode(Heartbeat.self, from: datagram.payload) else {
            logger.warning("heartbeat from \(datagram.sender) on \(path): undecodable payload dropped")
            return
        }
        // The authenticated sender must be the one the payload speaks for.
        guard heartbeat.sender == datagram.sender, heartbeat.bootID == datagram.bootID else {
            logger.warning("heartbeat on \(path): sender \(datagram.sender) claims to be \(heartbeat.sender); dropped")
            return
        }
        let receivedAt = origin.duration(to: datagram.receivedAt)
        perform(engine.handle(.heartbeat(heartbeat, path: path), now: max(receivedAt, lastTick)))
    }

    // MARK: - Actions

    func perform(_ actions: [EngineAction]) {
        lastTick = now()
        defer { leaseFile.write(expiry: engine.leaseExpiry(now: lastTick)) }
        // The heartbeat goes out before anything that could end the daemon (a farewell must
        // reach the peers before the sockets close).
        if actions.contains(.sendHeartbeatNow) {
            let stopping = actions.contains { if case .serviceStopped = $0 { return true } else { return false } }
            let heartbeat = WireJSON.encode(engine.makeHeartbeat(now: now()))
            if stopping {
                pendingFarewell = Task { await self.send(heartbeat) }
            } else {
                Task { await self.send(heartbeat) }
            }
        }
        for action in actions {
            switch action {
            case .runResource(let run):
                startRun(run)
            case .fenceGroup(let group):
                fence(group)
            case .probePingTargets(let probeID, let targets):
                guard let probe = PartitionResolvers.probe(for: "pingnp") else { break }
                Task {
                    let reachable = await probe.anyReachable(targets, timeout: self.engine.pingTimeout)
                    self.perform(self.engine.handle(.pingProbeFinished(probeID: probeID, reachable: reachable), now: self.now()))
                }
            case .sendHeartbeatNow:
                break
            case .sendHeartbeat(let heartbeat):
                let payload = WireJSON.encode(heartbeat)
                pendingFarewell = Task { await self.send(payload) }
            case .persist(let state):
                do {
                    try store.save(state, name: "engine")
                } catch {
                    logger.critical("cannot persist state in \(paths.stateDirectory): \(error)")
                }
            case .serviceStopped(let then):
                serviceStopped(then)
            case .log(let entry):
                record(entry)
            case .startMonitor(let start):
                startMonitor(start)
            case .stopMonitor(let monitor, let run):
                monitorRunner.stop(monitor, run: run)
                if let watchdog = stallWatchdog, config.monitors.first(where: { $0.name == monitor })?.type == .userw {
                    watchdog.disarm()
                    stallWatchdog = nil
                    record(LogEntry(.info, "rm", 167, "Kernel watchdog of \(monitor) disarmed."))
                }
            case .runRecoveryScript(let run):
                runRecoveryScript(run)
            case .powerOffUPS(let monitors):
                pendingPowerOff = Task { await self.powerOffUPS(monitors) }
            }
        }
    }

    // MARK: - clprexec --script

    /// Runs `name` from the rexec folder: a plain file name, an executable regular file owned
    /// by the daemon's user and writable by nobody else (whoever may write it could run code
    /// as the daemon through any cluster member).
    func runRemoteScript(_ name: String, timeout: Duration, origin: ServerName) async -> CommandResult {
        let allowed = CharacterSet(charactersIn: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")
        guard !name.isEmpty, name.count <= 255, !name.hasPrefix("."), name.unicodeScalars.allSatisfy(allowed.contains) else {
            return CommandResult(
                .badUsage, "Script name \"\(name.prefix(80))\" must be a plain file name of \(config.cluster.rexecDirectory).")
        }
        let path = config.cluster.rexecDirectory + "/" + name
        var info = stat()
        guard lstat(path, &info) == 0 else {
            return CommandResult(.failed, "No script \(name) in \(config.cluster.rexecDirectory) on \(me).")
        }
        guard info.st_mode & S_IFMT == S_IFREG, info.st_mode & 0o100 != 0 else {
            return CommandResult(.failed, "\(path) on \(me) is not an executable regular file.")
        }
        guard info.st_uid == geteuid(), info.st_mode & 0o022 == 0 else {
            return CommandResult(
                .failed, "\(path) on \(me) must belong to the daemon's user and not be writable by group or others; not run.")
        }
        record(LogEntry(.info, "trnsv", 30, "Running \(path) on request from \(origin)."))
        var variables = ["CLP_SERVER_LOCAL": me, "CLP_REQUEST_FROM": origin]
        variables["UNDERSTUDY_LEASE_FILE"] = paths.leasePath
        let environment = ScriptEnvironment.compose(base: ScriptEnvironment.base(), host: host, variables: variables)
        let log = RotatingLog(path: paths.stateDirectory + "/logs/rexec.log", rotateSize: Defaults.scriptLogRotateSize, logger: logger)
        let outcome = await scriptRunner.run(
            ScriptInvocation(
                executable: path, environment: environment, workingDirectory: config.cluster.rexecDirectory, timeout: timeout,
                log: ScriptLog(file: log, action: "rexec")))
        if outcome.isSuccess { return .ok("Script \(name) ran on \(me).") }
        record(LogEntry(.warning, "trnsv", 31, "Script \(path) requested by \(origin): \(outcome)."))
        return CommandResult(.failed, "Script \(name) on \(me): \(outcome).")
    }

    // MARK: - Monitors

    func startMonitor(_ start: MonitorStart) {
        guard let monitor = config.monitors.first(where: { $0.name == start.monitor }) else { return }
        // userw needs no probe: the Engine sees this process's stalls itself; with softdog
        // the kernel watches too.
        guard monitor.type != .userw else {
            if monitor.string("method") == "softdog" { armStallWatchdog(monitor) }
            return
        }
        let probe = MonitorProbes.make(monitor, start: start, context: probeContext)
        monitorRunner.start(monitor, run: start.run, probe: probe)
    }

    func monitorsChecked(_ checks: [MonitorCheck]) {
        let actions = engine.handle(.monitorsChecked(checks), now: now())
        if !actions.isEmpty { perform(actions) }
    }

    /// The recovery script of a monitor, with `CLP_ACTION`, `CLP_MONITORNAME` and the counters.
    func runRecoveryScript(_ run: RecoveryScriptRun) {
        var variables = [
            "CLP_ACTION": run.action.rawValue, "CLP_MONITORNAME": run.monitor,
            "CLP_RECOVERYCOUNT": String(run.counters.recoveryScripts), "CLP_RESTARTCOUNT": String(run.counters.reactivations),
            "CLP_FAILOVERCOUNT": String(run.counters.failovers),
        ]
        variables["CLP_SERVER_LOCAL"] = me
        let environment = ScriptEnvironment.compose(base: ScriptEnvironment.base(), host: host, variables: variables)
        let log = RotatingLog(
            path: paths.stateDirectory + "/logs/recovery-\(run.monitor).log", rotateSize: Defaults.scriptLogRotateSize, logger: logger)
        let folder = (run.script as NSString).deletingLastPathComponent
        let invocation = ScriptInvocation(
            executable: run.script, environment: environment, workingDirectory: folder.isEmpty ? nil : folder,
            timeout: run.timeout, log: ScriptLog(file: log, action: "recovery"))
        let runner = scriptRunner
        Task {
            let outcome = await runner.run(invocation)
            if !outcome.isSuccess {
                self.record(LogEntry(.warning, "rm", 13, "Recovery script \(run.script) of \(run.monitor): \(outcome)."))
            }
            self.perform(self.engine.handle(.recoveryScriptFinished(id: run.id, succeeded: outcome.isSuccess), now: self.now()))
        }
    }

    func startRun(_ run: ResourceRun) {
        guard let resource = config.resource(named: run.resource)?.resource else { return }
        let resources = resources
        Task {
            let outcome = await resources.perform(run, resource: resource)
            self.runFinished(run.id, outcome)
        }
    }

    /// Fencing a group kills its processes and takes its addresses off this server at once (no
    /// scripts run; every driver's fence is idempotent).
    func fence(_ group: GroupName) {
        guard let groupConfig = config.group(named: group) else { return }
        resources.fence(group: groupConfig, server: me)
    }

    func runFinished(_ runID: UInt64, _ outcome: ResourceOutcome) {
        perform(engine.handle(.resourceFinished(runID: runID, outcome: outcome), now: now()))
    }

    func serviceStopped(_ then: AfterServiceStop) {
        do {
            try marker.markCleanStop()
        } catch {
            logger.error("cannot clear the running marker: \(error)")
        }
        switch then {
        case .stayStopped:
            break
        case .restart:
            try? marker.markStarted()
            perform(engine.startService(now: now()))
        case .exitProcess:
            Task {
                await self.pendingFarewell?.value
                self.requestExit()
            }
        case .os(let action):
            Task {
                await self.pendingFarewell?.value
                await self.pendingPowerOff?.value
                self.armShutdownWatchdog()
                self.runOSCommand(action)
                self.requestExit()
            }
        }
    }

    /// After a power-failure stop, before the OS goes down: each UPS gets its monitor's
    /// `power-off-command` (NUT's `shutdown.return` by default: power off after the UPS's
    /// delay, on again when line power returns), so the servers come back with the power.
    func powerOffUPS(_ names: [String]) async {
        for name in names {
            guard let monitor = config.monitors.first(where: { $0.name == name }), let ups = monitor.string("ups") else { continue }
            let command = monitor.text("power-off-command")
            guard command != "none" else { continue }
            let password =
                monitor.string("password-file").flatMap { try? String(contentsOfFile: $0, encoding: .utf8) }?
                .split(separator: "\n", omittingEmptySubsequences: false).first.map(String.init) ?? ""
            let client = monitor.nutClient(timeout: .seconds(10))
            let user = monitor.text("user")
            let outcome = await BlockingCall().run(busy: Result<Void, NUTClient.Failure>.success(())) {
                client.instantCommand(command, ups: ups, user: user, password: password)
            }
            switch outcome {
            case .success:
                record(LogEntry(.warning, "rm", 164, "UPS \(ups) (\(name)) told to run \(command): it powers off after its delay."))
            case .failure(let failure):
                record(LogEntry(.error, "rm", 165, "UPS \(ups) (\(name)): \(command) failed: \(failure)."))
            }
        }
    }

    /// userw `method: softdog`: a stall of the daemon longer than the monitor's timeout resets
    /// the machine (and so does the daemon's death, as in the reference). Without a watchdog
    /// the stall is still seen in the daemon (the Engine's userw).
    func armStallWatchdog(_ monitor: MonitorConfig) {
        guard stallWatchdog == nil else { return }
        switch KernelWatchdog.arm(timeout: monitor.timeout) {
        case .success(let watchdog):
            stallWatchdog = watchdog
            record(
                LogEntry(
                    .info, "rm", 166,
                    "Kernel watchdog armed for \(monitor.name): a stall of the daemon longer than \(watchdog.seconds > 0 ? "\(watchdog.seconds) s" : "the driver's margin") resets the machine."
                ))
        case .failure(let failure):
            record(
                LogEntry(
                    .warning, "rm", 168, "\(monitor.name): \(failure); stalls are detected inside the daemon only (method none)."))
        }
    }

    /// `cluster.shutdown-monitor.method: softdog`: a hung OS shutdown resets the machine.
    func armShutdownWatchdog() {
        let settings = config.cluster.shutdownMonitor
        guard settings.method == .softdog else { return }
        let timeout: Duration
        switch settings.timeout {
        case .heartbeat: timeout = config.cluster.timing.heartbeatTimeout
        case .duration(let value): timeout = value
        }
        switch KernelWatchdog.arm(timeout: timeout) {
        case .success(let watchdog):
            shutdownWatchdog = watchdog
            let limit = watchdog.seconds > 0 ? "\(watchdog.seconds) s" : "the driver's own margin (the timeout was refused)"
            record(
                LogEntry(
                    .warning, "pm", 25, "Shutdown-stall watchdog armed: the machine resets if the OS shutdown takes longer than \(limit)."))
        case .failure(let failure):
            record(LogEntry(.error, "pm", 26, "Shutdown-stall watchdog not armed: \(failure)."))
        }
    }

    /// Final actions that stop the OS run the configured OS-control command.
    func runOSCommand(_ action: OSAction) {
        let command = action == .reboot ? config.cluster.osCommands.reboot : config.cluster.osCommands.shutdown
        guard let executable = command.first else { return }
        record(
            LogEntry(
                .warning, "pm", action == .reboot ? 24 : 23, "Running the OS \(action.rawValue) command: \(command.joined(separator: " "))")
        )
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = Array(command.dropFirst())
        do {
            try process.run()
            process.waitUntilExit()
        } catch {
            logger.critical("OS \(action.rawValue) command \(executable) failed: \(error)")
        }
    }

    /// UTC with milliseconds: failover steps are milliseconds apart.
    static func alertTimestamp() -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.string(from: Date())
    }

    func record(_ entry: LogEntry) {
        for admitted in logLimiter.admit(entry, now: now()) { write(admitted) }
    }

    func write(_ entry: LogEntry) {
        let line =
            "\(Self.alertTimestamp()) \(me) \(entry.level.rawValue) [\(entry.module) \(entry.eventID)] \(entry.message)"
        alertLog.appendLine(line)
        switch entry.level {
        case .info: logger.info("[\(entry.module) \(entry.eventID)] \(entry.message)")
        case .warning: logger.warning("[\(entry.module) \(entry.eventID)] \(entry.message)")
        case .error: logger.error("[\(entry.module) \(entry.eventID)] \(entry.message)")
        }
    }

    // MARK: - Requests

    /// The Engine's status plus this daemon's transport counters.
    func snapshot() -> ClusterStatusSnapshot {
        var status = engine.snapshot(now: now())
        var lines = transports.map { transport in
            let counters = transport.counters
            return ClusterStatusSnapshot.TransportLine(
                name: transport.path, accepted: counters.accepted,
                dropped: Dictionary(uniqueKeysWithValues: counters.dropped.map { ($0.key.rawValue, $0.value) }))
        }
        if let controlServer {
            let counters = controlServer.counters
            lines.append(
                ClusterStatusSnapshot.TransportLine(
                    name: "control", accepted: counters.requestsServed,
                    dropped: Dictionary(uniqueKeysWithValues: counters.dropped.map { ($0.key.rawValue, $0.value) })))
        }
        status.transport = lines
        let checks = monitorRunner.lateness.summary()
        let beats = heartbeatLateness.summary()
        let preparations = heartbeatPreparationLateness.summary()
        let micros = LatenessRecorder.micros
        status.runtime = ClusterStatusSnapshot.RuntimeLine(
            monitorChecks: UInt64(checks.count), monitorLatenessP50: micros(checks.p50), monitorLatenessP99: micros(checks.p99),
            monitorLatenessMax: micros(checks.max), heartbeats: UInt64(beats.count), heartbeatLatenessP50: micros(beats.p50),
            heartbeatLatenessP99: micros(beats.p99), heartbeatLatenessMax: micros(beats.max),
            heartbeatPreparationLatenessP99: micros(preparations.p99), heartbeatPreparationLatenessMax: micros(preparations.max))
        status.runtime?.lateHeartbeats = heartbeatLateness.lateSamples(over: .milliseconds(10)).map {
            ClusterStatusSnapshot.RuntimeLine.LateEvent(deadlineMonotonicNanos: $0.deadlineMonotonicNanos, latenessMicros: $0.micros)
        }
        return status
    }

    func handleLocal(_ request: LocalControlRequest) async -> [UInt8] {
        let decoded: LocalRequest
        do {
            decoded = try WireJSON.decode(LocalRequest.self, from: request.payload)
        } catch {
            return WireJSON.encode(LocalResponse.result(CommandResult(.badUsage, "unreadable request: \(error)")))
        }
        switch decoded {
        case .whoami:
            return WireJSON.encode(LocalResponse.identity(server: me, cluster: config.cluster.name, servers: config.serverNames))
        case .status(let target):
            if let target, target != me {
                switch await askPeer(target, .status) {
                case .status(let snapshot): return WireJSON.encode(LocalResponse.status(snapshot))
                case .result(let result): return WireJSON.encode(LocalResponse.result(CommandResult(.failed, result.message)))
                }
            }
            return WireJSON.encode(LocalResponse.status(snapshot()))
        case .command(let command, let rawTarget):
            // `-h` may name a server or one of its heartbeat addresses (clprexec -h IP).
            let target = rawTarget.map { Self.serverName(forNameOrAddress: $0, in: config) }
            if let target, target != me {
                guard config.server(named: target) != nil else {
                    return WireJSON.encode(LocalResponse.result(CommandResult(.badUsage, "Unknown server \(target).")))
                }
                switch await askPeer(target, .command(command, origin: me, forwarded: false)) {
                case .result(let result) where result.code == .unreachable:
                    // Exit code 3 is reserved for the local daemon.
                    return WireJSON.encode(LocalResponse.result(CommandResult(.failed, result.message)))
                case .result(let result): return WireJSON.encode(LocalResponse.result(result))
                case .status: return WireJSON.encode(LocalResponse.result(CommandResult(.failed, "unexpected answer from \(target)")))
                }
            }
            return WireJSON.encode(LocalResponse.result(await execute(command, origin: me, forwarded: false)))
        }
    }

    func handlePeer(_ request: ControlRequest) async -> [UInt8] {
        let decoded: PeerRequest
        do {
            decoded = try WireJSON.decode(PeerRequest.self, from: request.payload)
        } catch {
            return WireJSON.encode(PeerResponse.result(CommandResult(.badUsage, "unreadable request from \(request.peerName)")))
        }
        switch decoded {
        case .status:
            return WireJSON.encode(PeerResponse.status(snapshot()))
        case .command(let command, let origin, let forwarded):
            return WireJSON.encode(PeerResponse.result(await execute(command, origin: origin, forwarded: forwarded)))
        }
    }

    /// Runs a command here, or forwards it where the Engine says it belongs.
    func execute(_ command: ClusterCommand, origin: ServerName, forwarded: Bool) async -> CommandResult {
        if case .runScript(let name, let seconds) = command {
            return await runRemoteScript(name, timeout: .seconds(max(1, seconds)), origin: origin)
        }
        let wasStopped = engine.service == .stopped
        let (disposition, actions) = engine.command(command, origin: origin, forwarded: forwarded, now: now())
        if wasStopped && engine.service != .stopped {
            // `clpcl -s`: the service runs again; an unclean end from now on is abnormal.
            do { try marker.markStarted() } catch { logger.error("cannot write the running marker: \(error)") }
        }
        perform(actions)
        switch disposition {
        case .done(let result):
            return result
        case .forward(let target):
            switch await askPeer(target, .command(command, origin: origin, forwarded: true)) {
            case .result(let result) where result.code == .unreachable:
                // The master (or the group's server) went away mid-request: membership is
                // changing; the operator retries.
                return CommandResult(.inTransition, "\(result.message) Membership is changing; retry in a moment.")
            case .result(let result): return result
            case .status: return CommandResult(.failed, "unexpected answer from \(target)")
            }
        }
    }

    func askPeer(_ server: ServerName, _ request: PeerRequest) async -> PeerResponse {
        var timeout: Duration = .seconds(30)
        if case .command(.runScript(_, let seconds), _, _) = request { timeout = .seconds(max(30, seconds + 5)) }
        guard let address = Self.address(of: server, in: config) else {
            return .result(CommandResult(.badUsage, "Server \(server) has no address."))
        }
        do {
            let answer = try await ControlClient.request(
                host: address, port: config.cluster.ports.control, key: key, localName: me,
                payload: WireJSON.encode(request), timeout: timeout)
            return try WireJSON.decode(PeerResponse.self, from: answer)
        } catch {
            return .result(CommandResult(.unreachable, "Server \(server) is not reachable: \(error)"))
        }
    }
}
