import UnderstudyModel

/// The decision core of one server: events in, actions out. Pure and deterministic: no I/O,
/// no clock (every time is an argument), no randomness. The daemon and the simulator drive
/// the same code.
public struct ServerEngine: Sendable, Equatable {
    public enum ServiceState: Sendable, Equatable {
        case stopped
        case running
        /// Stopping local groups; then `then` happens.
        case leaving(factor: StopFactor, lastAction: LastAction, then: AfterServiceStop)
    }

    /// The running configuration; replaced online by `applyConfiguration` (ConfigApply.swift).
    public internal(set) var config: ClusterConfig
    public let me: ServerName
    public let bootID: UInt64
    /// The running configuration's identity (see `Heartbeat.configHash`).
    public internal(set) var configHash: String
    /// Its version (see `Heartbeat.configVersion`).
    public internal(set) var configVersion: UInt64
    /// This server joined the running cluster with another configuration than its master's:
    /// it is never master and is given no group until it runs the master's (ConfigApply.swift).
    public internal(set) var configOutsider = false
    let serverNames: [ServerName]
    /// This server's position in `servers:` (see `Heartbeat.priority`).
    let myPriority: Int
    let interval: Duration
    let timeout: Duration
    /// Extra wait after a peer's loss is confirmed before its groups are taken over: the
    /// time a losing server has to kill its resources.
    let takeoverMargin: Duration
    /// The Node delivers an event (at least a tick) this often; a longer gap between two
    /// events is a stall of this process (see StallsAndLease.swift).
    public var tickPeriod: Duration { stalls.tickPeriod }
    /// A peer that comes back is given this long to start echoing us before it counts as
    /// not hearing us (links coming back up are often one-way for a moment, e.g. while ARP
    /// entries recover).
    var rejoinGrace: Duration { Self.rejoinGrace(timeout: timeout) }
    static func rejoinGrace(timeout: Duration) -> Duration { max(timeout, .seconds(1)) }
    /// After being cut off, a server listens this long before judging anyone down or
    /// founding a cluster: longer than the others' `rejoinGrace`, so that when the link is
    /// one-way for a moment the holder keeps its groups.
    var rejoinListen: Duration { rejoinGrace + listenTimeout + takeoverMargin }
    /// How long this server listens before judging anyone down after it (re)starts or was
    /// cut off: the heartbeat timeout times the largest `clptoratio` ratio it may have
    /// promised its peers (TimeoutRatioSetting.swift), set when it starts listening.
    var listenTimeout: Duration
    /// After the ratio was lowered: when the old judge timeout no longer binds (then the
    /// persisted `listenRatio` comes down to the ratio in force).
    var timeoutLoweringEndsAt: EngineTime?
    /// This server's own stalls and the hold after one (StallsAndLease.swift).
    var stalls: StallDetector

    var membership: Membership
    /// The view and quorum as last computed, for one time and one membership generation: a
    /// step asks for them many times while neither changes.
    var viewMemo: ViewMemo?
    /// Service starts within this boot (`clpcl -r` makes a new run).
    public internal(set) var serviceRun: UInt64 = 0
    public var instance: ServerInstance { ServerInstance(boot: bootID, run: serviceRun) }
    public internal(set) var service: ServiceState = .stopped
    var serviceStartedAt: EngineTime = .zero
    /// When the current service stop began.
    var leavingSince: EngineTime?
    /// Since when no monitor here is in error and no group failed (for the reboot count reset).
    var healthySince: EngineTime?
    /// upsw monitors whose power failure is stopping this server (their UPS gets the power-off
    /// command once the service has stopped).
    var powerFailureMonitors: [String] = []
    /// This server shuts the cluster down for a shared UPS's power failure (told to the master).
    var clusterStopRequested = false
    /// Since when membership has been listening; nobody is judged down before a timeout.
    var listeningSince: EngineTime = .zero
    /// Set after being cut off: founding a cluster alone waits a whole timeout, not just two
    /// intervals as at a fresh start.
    var listenFully = false
    public internal(set) var syncDone = false
    public internal(set) var autoStartSuppressed: Bool
    var abnormalStopAtInit: Bool
    /// No quorum: this server holds nothing and decides nothing.
    public var isolated: Bool { majority.lost || pingLost }
    /// The majority rule (`majority`), Partition/MajorityRule.swift.
    var majority = MajorityRule()
    /// Ping network-partition resolution (`pingnp`), PingResolution.swift.
    var ping: PingResolver
    /// A ping check after a peer loss reached no target: this server is the loser.
    public var pingLost: Bool { ping.lost }
    /// How long one probe may take (`timeout` of `pingnp`); the Node enforces it.
    public var pingTimeout: Duration { ping.timeout }
    /// The servers this server sees now (itself included), for the witness's question.
    public func currentView(now: EngineTime) -> [ServerName] { view(now: now) }

    /// How long one question to the witness (httpnp) may take: half of what the heartbeat
    /// timeout leaves after an interval, from 100 ms to 2 s. A granted server asks again every
    /// interval while a peer is missing, so it hears "no" or gets no answer (and loses) within
    /// interval + this, before its grant can lapse at the witness (a heartbeat timeout).
    public static func witnessRequestTimeout(_ timing: TimingSettings) -> Duration {
        min(max((timing.heartbeatTimeout - timing.heartbeatInterval) / 2, .milliseconds(100)), .seconds(2))
    }
    public var lastPingReachable: Bool? { ping.lastReachable }
    var pingTargets: [String] { ping.targets }
    /// The newest directory from this server's master (or its own, as master).
    public internal(set) var directory: Directory? {
        didSet { if directory == nil && oldValue != nil { directoryResets += 1 } }
    }
    /// How often this server dropped its directory to rejoin (stall, isolation, service
    /// stop): directories only go forward between two resets (invariant I3).
    public internal(set) var directoryResets = 0
    /// This server's groups and the resource runs the Node carries out (LocalGroups.swift).
    var runner: GroupRunner
    var persistent: PersistentState
    /// What placement remembers between decisions (Placement/).
    var placement = PlacementMemory()
    var lastSentAt: EngineTime = .zero
    var pendingActions: [EngineAction] = []
    /// What was logged once, not at every step while it lasts (`LoggedOnce`).
    var loggedOnce = LoggedOnce()
    /// Groups another server held or was assigned by a directory this server replaced: not
    /// started here until that server shows it has let go (see `noteClaimsReplaced`).
    var priorClaims: [GroupName: PriorClaim] = [:]
    /// Master: the version its epoch began with (no decision of its own yet while equal).
    var epochStartVersion: UInt64 = 0
    var heartbeatDirty = false
    var persistDirty = false
    /// Monitors that run on this server (Monitors/).
    var monitoring: Monitoring
    /// When datagrams that failed authentication last came from each server's heartbeat
    /// address (UnauthenticatedPeers.swift).
    var unauthenticatedHeard: [ServerName: EngineTime] = [:]
    /// When heartbeats whose state could not be completed last came from each server.
    var heardWithoutState: [ServerName: EngineTime] = [:]
    /// Forced stops of lost servers, as master (ForcedStop.swift).
    var forcedStops = ForcedStops()
    /// Until when a tick changes nothing: set by every full step; the step's own time when
    /// that cannot be told (QuietTicks.swift). The Node need not tick before it.
    public internal(set) var quietUntil: EngineTime = .zero
    /// The simulator's check of `quietUntil`: every quiet tick also runs the full step on a
    /// copy and records any difference in `quietTickMismatches` (QuietTicks.swift).
    public var verifiesQuietTicks = false
    public internal(set) var quietTickMismatches: [String] = []

    /// - Parameters:
    ///   - persisted: what the previous run of this server left in its state dir.
    ///   - abnormalStop: the previous run did not stop cleanly; automatic group start is
    ///     suspended for groups that may run here until an operator starts them.
    public init(
        config: ClusterConfig, me: ServerName, bootID: UInt64, configHash: String, configVersion: UInt64 = 0,
        persisted: PersistentState = PersistentState(), abnormalStop: Bool = false
    ) {
        self.config = config
        self.me = me
        self.bootID = bootID
        self.configHash = configHash
        self.configVersion = configVersion
        self.interval = config.cluster.timing.heartbeatInterval
        self.timeout = config.cluster.timing.heartbeatTimeout
        self.listenTimeout = config.cluster.timing.heartbeatTimeout * max(persisted.listenRatio ?? 1, persisted.timeoutRatio?.ratio ?? 1)
        let pingTargets = config.networkPartition.flatMap { entry -> [String] in
            if case .ping(let targets) = entry.kind { return targets }
            return []
        }
        var pingTimeout = config.networkPartition.filter { $0.typeName == "pingnp" }.map(\.pingTimeout).max() ?? Defaults.pingTimeout
        // httpnp asks the witness in the same probe (reachable: granted); its request may take
        // `witnessRequestTimeout`.
        let usesWitness = config.networkPartition.contains { $0.typeName == "httpnp" }
        if usesWitness {
            let witnessTimeout = Self.witnessRequestTimeout(config.cluster.timing)
            pingTimeout = pingTargets.isEmpty ? witnessTimeout : max(pingTimeout, witnessTimeout)
        }
        self.ping = PingResolver(targets: pingTargets, timeout: pingTimeout, witness: usesWitness)
        // With ping resolution a losing server needs the time of its probe to find out.
        self.takeoverMargin =
            config.cluster.timing.heartbeatInterval + (pingTargets.isEmpty && !usesWitness ? .zero : pingTimeout)
        self.stalls = StallDetector(
            tickPeriod: Self.tickPeriod(interval: config.cluster.timing.heartbeatInterval),
            holdLimit: StallDetector.holdLimit(
                interval: config.cluster.timing.heartbeatInterval, timeout: config.cluster.timing.heartbeatTimeout),
            quietGapLimit: config.cluster.timing.heartbeatInterval)
        let usesMajority = config.networkPartition.contains { $0.kind == .majority }
        self.serverNames = config.serverNames
        self.myPriority = config.serverNames.firstIndex(of: me) ?? config.serverNames.count
        self.membership = Membership(
            me: me, servers: config.serverNames, timeout: config.cluster.timing.heartbeatTimeout,
            usesMajority: usesMajority, exactHalfNeedsPing: !pingTargets.isEmpty || usesWitness)
        self.autoStartSuppressed = abnormalStop
        self.abnormalStopAtInit = abnormalStop
        self.persistent = persisted
        // The persisted directory only sets a floor for epochs and versions: a server
        // (re)joins with the directory of the running cluster, never with its own old one.
        self.directory = nil
        self.runner = GroupRunner(config: config)
        self.monitoring = Monitoring(config: config, me: me)
        membership.setJudgeTimeout(timeout * timeoutRatio, now: .zero)
    }

    // MARK: - Driving the engine

    /// Starts the cluster service on this server (daemon start, `clpcl -s`).
    public mutating func startService(now: EngineTime) -> [EngineAction] {
        guard service == .stopped else { return [] }
        service = .running
        serviceRun += 1
        // A new run has tried nothing yet; assignments name the run's instance anyway.
        for name in runner.locals.keys { runner.locals[name]?.lastTriedGeneration = 0 }
        serviceStartedAt = now
        healthySince = nil
        powerFailureMonitors = []
        clusterStopRequested = false
        placement.clusterStopQuietSince = nil
        listeningSince = now
        listenFully = false
        listenTimeout = timeout * max(persistent.listenRatio ?? 1, timeoutRatio)
        stalls.lastEventAt = now
        directory = nil
        syncDone = config.cluster.timing.syncWait == .zero
        majority.reset()
        ping.resetForNewRun()
        stalls.hold = nil
        membership.reset()
        placement.downConfirmedAt = [:]
        priorClaims = [:]
        loggedOnce.resetForNewRun()
        forgetUnheardPeers()
        emit(.log(LogEntry(.serviceStarting, "Cluster service starting on \(me).")))
        if autoStartSuppressed {
            emit(
                .log(
                    LogEntry(
                        .autoStartSuppressed,
                        "Automatic group start is suspended because the cluster service on \(me) did not stop normally; start groups with clpgrp -s."
                    )))
        }
        if !syncDone {
            emit(.log(LogEntry(.syncWaitStarted, "Waiting for all servers to start (sync wait \(config.cluster.timing.syncWait)).")))
        }
        // A final action that stopped the OS may be taken again in this run: the error may
        // persist after the restart (the shared disk's UPS is still off, reference's UPS guide
        // ch. 4), and `max-reboots` is what bounds that loop.
        for (name, counters) in persistent.monitorCounters.sorted(by: { $0.key < $1.key }) where counters.finalActionDone {
            guard let action = monitoring.configs[name]?.recovery.finalAction, action == .shutdown || action == .reboot else { continue }
            persistent.monitorCounters[name]?.finalActionDone = false
            persistDirty = true
        }
        // Processes of groups this server held when its previous run died may still be
        // alive: kill them before joining (the Node knows their process groups).
        if abnormalStopAtInit {
            for group in persistent.heldGroups.keys.sorted() { emit(.fenceGroup(group)) }
            persistent.heldGroups = [:]
            persistDirty = true
            abnormalStopAtInit = false
        }
        heartbeatDirty = true
        return step(now: now)
    }

    public mutating func handle(_ event: EngineEvent, now: EngineTime) -> [EngineAction] {
        guard service != .stopped else {
            if case .resourceFinished(let runID, _) = event { _ = runner.finishRun(runID) }
            if case .resourcesFinished(let runs) = event { for run in runs { _ = runner.finishRun(run.runID) } }
            return []
        }
        // How long this server did not run: the gap since the last event, less the part the
        // quiet ticks allowed (while nothing is due the daemon sleeps up to a heartbeat
        // interval; a userw timeout shorter than that must not take the sleep for a stall).
        // Without quiet ticks it is the plain gap.
        let gap = stalls.expectedBy(quietUntil: quietUntil).map { now - ($0 - stalls.tickPeriod) }
        let stallsBefore = stalls.count
        noticeStall(now: now)
        if let gap, !monitoring.userSpace.isEmpty {
            // While holding after the stall, userw waits for the hold's outcome (it acts on nothing).
            if !stalls.isHolding {
                observeUserSpaceStall(gap: gap, now: now)
            } else {
                monitoring.pendingUserSpaceStall = max(monitoring.pendingUserSpaceStall ?? .zero, gap)
            }
        }
        switch event {
        case .monitorChecked(let check):
            checkMonitor(check, now: now)
            // Most checks change nothing: skip the full step (the next tick does it).
            if pendingActions.isEmpty && !heartbeatDirty && !persistDirty && !stalls.isHolding {
                stalls.lastEventAt = now
                return []
            }
        case .monitorsChecked(let checks):
            for check in checks { checkMonitor(check, now: now) }
            // Most checks change nothing: skip the full step (the next tick does it).
            if pendingActions.isEmpty && !heartbeatDirty && !persistDirty && !stalls.isHolding {
                stalls.lastEventAt = now
                return []
            }
        case .recoveryScriptFinished(let id, let succeeded):
            recoveryScriptFinished(id: id, succeeded: succeeded, now: now)
        case .tick:
            // Nothing can have turned since the last full step (QuietTicks.swift).
            if stalls.count == stallsBefore, tickIsQuiet(now: now) {
                if verifiesQuietTicks { verifyQuietTick(now: now) }
                stalls.lastEventAt = now
                return []
            }
        case .heartbeat(let heartbeat, let path):
            // A copy already seen (the same heartbeat on another path, or a late one) only
            // tells that its path works: skip the full step (the next tick does it).
            // So does a keepalive: a heartbeat that says what the peer's previous one said
            // and changes nothing about it here; the next tick reacts to the passing time.
            if receive(heartbeat, path: path, now: now) != .news,
                pendingActions.isEmpty && !heartbeatDirty && !persistDirty && !stalls.isHolding
            {
                stalls.lastEventAt = now
                return []
            }
        case .resourceFinished(let runID, let outcome):
            resourceFinished(runID: runID, outcome: outcome, now: now)
        case .resourcesFinished(let runs):
            for run in runs { resourceFinished(runID: run.runID, outcome: run.outcome, now: now) }
        case .pingProbeFinished(let probeID, let reachable):
            pingProbeFinished(probeID: probeID, reachable: reachable, now: now)
        case .unauthenticatedHeartbeats(let servers):
            noteUnauthenticated(servers, now: now)
        case .heartbeatsWithoutState(let servers):
            notePresentWithoutState(servers, now: now)
        case .forcedStopFinished(let id, let succeeded, let detail):
            forcedStopFinished(id: id, succeeded: succeeded, detail: detail, now: now)
        case .peerDaemonDied(let server, let instance):
            peerDaemonDied(server, instance: instance, now: now)
        }
        return step(now: now)
    }

    /// Everything that follows from the current state: quorum, sync wait, directory,
    /// placement decisions, local reconciliation.
    mutating func step(now: EngineTime) -> [EngineAction] {
        stalls.lastEventAt = now
        resolveStallHold(now: now)
        if !stalls.isHolding, let stall = monitoring.pendingUserSpaceStall {
            monitoring.pendingUserSpaceStall = nil
            observeUserSpaceStall(gap: stall, now: now)
        }
        if service != .stopped && !stalls.isHolding {
            // The servers that stop for a cluster stop leave nobody behind (Survivors.swift): one
            // that runs on through it does not count them out of the majority.
            membership.setDeparturesCountOut(!(directory?.clusterStopping == true && !isLeaving))
            memoizeView(now: now)
            checkConfigurationOutsider(now: now)
            forgetDownConfirmationsOfReturnedServers(now: now)
            checkQuorum(now: now)
            checkPingResolution(now: now)
            checkSyncWait(now: now)
            noteFoundingBlocked(now: now)
            noteUnauthenticatedGone(now: now)
            if !isolated && hasQuorum(now: now) {
                // Reconcile before deciding, so the master's own groups already show the
                // stops its directory asks for; and after, to act on new decisions at once.
                reconcileLocalGroups(now: now)
                // With ping resolution nothing is placed while a lost server is not yet
                // confirmed by a probe: this server may be the cut-off side.
                if isMaster(now: now) && !awaitingPingVerdict {
                    schedule(now: now)
                    driveForcedStops(now: now)
                    reconcileLocalGroups(now: now)
                }
            }
            releaseStopWaits(now: now)
            resetRebootCountIfHealthy(now: now)
            finishLeavingIfDone(now: now)
        }
        reconcileMonitors(now: now)
        finishTimeoutLowering(now: now)
        if persistDirty {
            persistDirty = false
            var state = persistent
            // Keep the last directory when leaving: its epoch and version are the floor of
            // the next ones (generations must keep growing across service runs).
            state.directory = directory ?? persistent.directory
            state.heldGroups = runner.locals.filter { $0.value.status.holdsResources }.mapValues(\.generation)
            persistent = state
            pendingActions.insert(.persist(state), at: 0)
        }
        if heartbeatDirty {
            heartbeatDirty = false
            if service != .stopped { emit(.sendHeartbeatNow) }
        }
        quietUntil = quietDeadline(now: now)
        let actions = pendingActions
        pendingActions = []
        return actions
    }

    mutating func emit(_ action: EngineAction) { pendingActions.append(action) }

    /// Connected servers in `servers:` order, this one included (`Membership.view`).
    func view(now: EngineTime) -> [ServerName] {
        if let memo = viewMemo, memo.now == now, memo.generation == membership.generation { return memo.view }
        return membership.view(now: now)
    }

    /// The majority rule over the current view (`Membership.hasQuorum`).
    func hasQuorum(now: EngineTime) -> Bool {
        if let memo = viewMemo, memo.now == now, memo.generation == membership.generation { return memo.quorum }
        return membership.hasQuorum(now: now)
    }

    /// The view in mastership order: each server's own priority, then its name.
    func rankedView(now: EngineTime) -> [ServerName] {
        if let memo = viewMemo, memo.now == now, memo.generation == membership.generation { return memo.rankedView }
        return Self.ranked(membership.view(now: now), membership)
    }

    static func ranked(_ view: [ServerName], _ membership: Membership) -> [ServerName] {
        view.map { (name: $0, rank: membership.rank(of: $0)) }.sorted { $0.rank < $1.rank }.map(\.name)
    }

    /// Computes the view and quorum once for this time and membership generation.
    mutating func memoizeView(now: EngineTime) {
        if let memo = viewMemo, memo.now == now, memo.generation == membership.generation { return }
        let view = membership.view(now: now)
        viewMemo = ViewMemo(
            now: now, generation: membership.generation, view: view, rankedView: Self.ranked(view, membership),
            quorum: membership.hasQuorum(now: now))
    }

    /// Logs a catalogued event (EventCatalogue.swift), at its usual level or `level`.
    mutating func log(_ event: EventKind, level: LogLevel? = nil, _ message: String) {
        emit(.log(LogEntry(event, level: level, message)))
    }

    // MARK: - Stalls, quorum, sync

    mutating func checkQuorum(now: EngineTime) {
        switch majority.observe(quorum: hasQuorum(now: now), clusterStopping: directory?.clusterStopping == true) {
        case .none:
            break
        case .regained:
            log(.connectivityRegained, "Quorum regained on \(me): rejoining the cluster.")
            startListening(now: now)
            heartbeatDirty = true
        case .lost:
            log(.partitionLost, "Network partition: \(me) lost the majority of the servers; stopping its groups at once.")
            loseThePartition(now: now)
        }
    }

    /// This server is on the losing side of a partition: give up everything at once, then
    /// run the partition action.
    mutating func loseThePartition(now: EngineTime) {
        heartbeatDirty = true
        // The other side goes on without us; rejoin later with its directory.
        directory = nil
        fenceAll(reason: "partition")
        switch config.cluster.networkPartitionAction {
        case .none:
            break
        case .stopService:
            beginLeaving(factor: .serverShutdown, lastAction: .none, then: .stayStopped, now: now)
        case .shutdown:
            beginLeaving(factor: .serverShutdown, lastAction: .halt, then: .os(.shutdown), now: now)
        case .reboot:
            beginLeaving(factor: .serverShutdown, lastAction: .reboot, then: .os(.reboot), now: now)
        case .panic, .reset, .keepaliveReset, .bmcPowerOff, .bmcReset, .bmcPowerCycle, .bmcNMI:
            // Already fenced above; the machine goes at once (LocalGroups.swift stopMachineAtOnce).
            if let os = OSAction(config.cluster.networkPartitionAction) {
                stopMachineAtOnce(os, reason: "network partition action", now: now)
            }
        }
    }

    mutating func checkSyncWait(now: EngineTime) {
        guard !syncDone else { return }
        let everyone = serverNames.allSatisfy { membership.isConnected($0, now: now) }
        // A connected server whose sync is over has waited for the others already: the
        // cluster starts as it would have when that one founded it (`currentMaster`: the first
        // server of the view founds, the others wait for its sync).
        let waitedFor = serverNames.first { server in
            server != me && membership.isConnected(server, now: now)
                && membership.peers[server]?.sharedReport?.heartbeat.syncDone == true
        }
        if everyone {
            syncDone = true
            log(.allServersStarted, "All servers have started.")
            heartbeatDirty = true
        } else if let waitedFor {
            syncDone = true
            let missing = serverNames.filter { !membership.isConnected($0, now: now) }
            log(
                .syncWaitExpired,
                "Sync wait over: \(waitedFor) has ended its own; treating \(missing.joined(separator: ", ")) as down.")
            heartbeatDirty = true
        } else if now - serviceStartedAt >= config.cluster.timing.syncWait {
            syncDone = true
            let missing = serverNames.filter { !membership.isConnected($0, now: now) }
            log(.syncWaitExpired, "Sync wait expired; treating \(missing.joined(separator: ", ")) as down.")
            heartbeatDirty = true
        }
    }

    /// Listening again after being cut off (`startListening`). Meanwhile this server's
    /// heartbeats do not say its sync is over: a peer must not end its own sync wait on its
    /// word (`checkSyncWait`), nor found the cluster with it as founder, while a server it
    /// stopped hearing may still run groups within a lease its echoes gave (found by simulator
    /// seed 25202968: a server restarted during a partition ended its sync wait on the word of
    /// a peer that had just lost the majority, founded with it and started a group the server
    /// cut off still ran).
    func isListeningAgain(now: EngineTime) -> Bool {
        listenFully && now - listeningSince < rejoinListen
    }

    /// After being cut off, what this server knew of the others is stale: listen a whole
    /// timeout again before judging anyone down or founding a cluster alone.
    mutating func startListening(now: EngineTime) {
        listeningSince = now
        listenTimeout = timeout * max(persistent.listenRatio ?? 1, timeoutRatio)
        listenFully = true
        placement.downConfirmedAt = [:]
    }

    // MARK: - Heartbeats

    /// What a received heartbeat was.
    enum Receipt: Equatable {
        /// A copy already seen (the same heartbeat on another path) or an older one.
        case seenBefore
        /// New, but it says what the sender's previous heartbeat said (`Heartbeat.saysTheSame`)
        /// and changed nothing about the sender here (up, connected, admitted).
        case keepalive
        case news
    }

    /// Records a peer's heartbeat and says whether it was news.
    @discardableResult
    mutating func receive(_ heartbeat: Heartbeat, path: String, now: EngineTime) -> Receipt {
        guard heartbeat.sender != me else { return .seenBefore }
        let wasConnected = membership.isConnected(heartbeat.sender, now: now)
        let wasUp = membership.isUp(heartbeat.sender, now: now)
        let previous = membership.peers[heartbeat.sender]?.sharedReport
        let fresh = membership.record(heartbeat, path: path, now: now, myBootID: bootID)
        guard fresh else { return .seenBefore }
        noteTimeoutRatio(of: heartbeat, now: now)
        let admitted = membership.noteReturns(now: now)
        let isConnected = membership.isConnected(heartbeat.sender, now: now)
        let keepalive =
            !admitted && wasUp && wasConnected == isConnected && membership.isUp(heartbeat.sender, now: now)
            && (previous?.heartbeat.saysTheSame(as: heartbeat) ?? false)
        // A peer waking from a stall waits for our word: answer at once.
        if heartbeat.awaitingVouch { heartbeatDirty = true }
        if heartbeat.configHash != configHash {
            if !loggedOnce.configMismatch.contains(heartbeat.sender) {
                loggedOnce.configMismatch.insert(heartbeat.sender)
                log(
                    .configurationMismatch,
                    "Server \(heartbeat.sender) runs a different configuration (hash \(heartbeat.configHash.prefix(12)) vs \(configHash.prefix(12)))."
                )
            }
        } else {
            loggedOnce.configMismatch.remove(heartbeat.sender)
        }
        if !wasConnected && isConnected {
            log(.serverUp, "Server \(heartbeat.sender) is up.")
            heartbeatDirty = true
        }
        // Also for a keepalive: whether this server takes the directory depends on more than
        // the heartbeat (who it considers master now).
        if let offered = heartbeat.directory { adopt(offered, from: heartbeat.sender, now: now) }
        return keepalive ? .keepalive : .news
    }

    /// A directory is taken from the server this one considers master only, and only when
    /// newer than what it has (invariant I3: orders of stale epochs are ignored). A new
    /// master's directory is taken only when it covers this server's own (see
    /// `Directory.base`): otherwise this server keeps its directory and offers it in its
    /// heartbeats until the master has taken it over.
    mutating func adopt(_ offered: Directory, from sender: ServerName, now: EngineTime) {
        // Most offers are the master's directory as this server has it already: answered
        // before the question of who is master, whose answer the step reuses (`memoizeView`).
        if let mine = directory, offered.epoch == mine.epoch, offered.version <= mine.version { return }
        guard !isolated, offered.epoch.master == sender else { return }
        memoizeView(now: now)
        guard currentMaster(now: now) == sender else { return }
        // Of the same epoch only a newer version gets here (above); of another epoch, only a
        // later term that includes this server's directory is taken.
        if let mine = directory, offered.epoch != mine.epoch {
            guard offered.epoch.term > mine.epoch.term else { return }
            guard offered.covers(mine.stamp) else {
                if !loggedOnce.offers.contains(offered.epoch) {
                    loggedOnce.offers.insert(offered.epoch)
                    log(
                        .directoryOffered,
                        "The directory of \(sender) (epoch \(offered.epoch)) does not include \(mine.stamp) yet: \(me) offers it."
                    )
                }
                heartbeatDirty = true
                return
            }
        }
        noteClaimsReplaced(by: offered)
        if directory == nil { noteJoiningConfiguration(master: sender, now: now) }
        directory = offered
        rejoined()
        persistDirty = true
        heartbeatDirty = true
    }

    /// This server offers its directory in its heartbeats: it does not follow the master
    /// it sees, whose directory does not include its own (see `adopt`).
    func offersDirectory(now: EngineTime) -> Bool {
        guard let mine = directory, let master = currentMaster(now: now), master != me else { return false }
        // A master that has not sent its directory yet is taking over: offer ours at once.
        guard let theirs = membership.report(of: master, now: now)?.directory else { return true }
        return theirs.epoch != mine.epoch && !theirs.covers(mine.stamp)
    }

    /// The heartbeat this server sends now.
    public mutating func makeHeartbeat(now: EngineTime) -> Heartbeat {
        lastSentAt = now
        // The view and quorum, once for the master questions below.
        memoizeView(now: now)
        let master = isMaster(now: now)
        return Heartbeat(
            sender: me, bootID: bootID, run: serviceRun, sentAt: now, configHash: configHash, priority: myPriority,
            serviceUp: service != .stopped, leaving: isLeaving, autoStartSuppressed: autoStartSuppressed,
            syncDone: syncDone && !isListeningAgain(now: now), hears: membership.hears(now: now),
            view: isolated ? [me] : viewToReport(now: now), awaitingVouch: stalls.isHolding,
            epoch: isolated ? nil : directory?.epoch, appliedVersion: directory?.version ?? 0,
            groups: groupReports(), monitors: monitoring.monitors.isEmpty ? nil : monitorExceptions(),
            directory: master || (!isolated && offersDirectory(now: now)) ? directory : nil,
            clusterStopRequested: clusterStopRequested ? true : nil, waitsFor: waitsForInHeartbeat,
            configVersion: configVersion == 0 ? nil : configVersion, configOutsider: configOutsider ? true : nil,
            timeoutRatio: persistent.timeoutRatio, judgeTimeout: judgeTimeout == timeout ? nil : judgeTimeout)
    }

    /// While holding after a stall this server reports the view it had before (it acts as
    /// if still frozen); otherwise its current view.
    func viewToReport(now: EngineTime) -> [ServerName] {
        if let hold = stalls.hold { return serverNames.filter { $0 == me || hold.echoedBefore.keys.contains($0) } }
        return view(now: now)
    }

    /// The tick period for a heartbeat interval: a quarter of it, at most 250 ms.
    public static func tickPeriod(interval: Duration) -> Duration {
        min(interval / 4, .milliseconds(250))
    }

    /// True while this server should send heartbeats.
    public var sendsHeartbeats: Bool { service != .stopped }

    var isLeaving: Bool {
        if case .leaving = service { return true }
        return false
    }

    func groupReports() -> [GroupName: GroupReport] { runner.reports() }

    // MARK: - Master

    /// The first connected server in `servers:` order that has joined the cluster (holds a
    /// directory of this run). When nobody has joined yet (cluster start), the first server
    /// whose startup sync is over founds the cluster. None while isolated.
    public func currentMaster(now: EngineTime) -> ServerName? {
        guard !isolated, service != .stopped, hasQuorum(now: now) else { return nil }
        // By each server's own priority, which every server reads alike from its heartbeats
        // (a file that lists the servers in another order must not make two masters).
        let view = rankedView(now: now)
        // (Servers in the view are up: their newest report is current.)
        // A server that joined with another configuration than its master's is never master
        // (ConfigApply.swift).
        // A server whose newer heartbeats wait for their state (`heardWithoutState`) may have
        // joined since its last report: none ranked below it takes the mastership on that stale
        // report (found by simulator seed 23412714: a server restarted over a disk heartbeat
        // path, its peer could not fetch its new state and kept its report from before it
        // joined, and the two took the cluster from each other at every heartbeat).
        for server in view {
            if server == me {
                if directory != nil && !configOutsider { return me }
                continue
            }
            if reportIsStale(server) { return nil }
            let joined =
                membership.peers[server]?.sharedReport.map { $0.heartbeat.epoch != nil && $0.heartbeat.configOutsider != true } ?? false
            if joined { return server }
        }
        // Even without a sync wait, listen a little so servers started together find each
        // other before one of them founds the cluster alone.
        guard now - listeningSince >= (listenFully ? rejoinListen : interval * 2) else { return nil }
        // Not without a server that one of the view left running (Survivors.swift).
        guard survivorsMissing(from: view, now: now).isEmpty else { return nil }
        // Not on a majority that leaves out a server which stopped without naming this one as
        // left running: it may found without this one when it comes back (Membership.quorumToFound).
        guard membership.quorumToFound(with: view.filter { $0 != me }) else { return nil }
        // Not while a server heard within its timeout is out of the view (a lossy or one-way
        // link): it may found a cluster of its own meanwhile, and each master would place
        // groups from the other's stale reports. Whoever no longer hears the other founds
        // (found by simulator seed 23000596: a peer dropped out of the view for a moment under
        // heavy loss, this server founded alone at once, the peer founded too, and both
        // started the same groups).
        guard serverNames.allSatisfy({ view.contains($0) || !membership.isUp($0, now: now) }) else { return nil }
        // Only a server with the founding configuration founds (ConfigApply.swift): the first
        // of the view, once its startup sync is over. A server ranked below it waits for it
        // (its sync ends at the latest when it hears that one's has, `checkSyncWait`). Letting
        // the first server whose sync was over found made two masters (found by simulator
        // seed 24109313: one server heard every server and founded while the first was still
        // in its sync wait; the first, done a moment later, founded too on the other's report
        // from before, and each started every group when the other dropped out of its view).
        // With ping or witness resolution, a cluster is founded without every server only after
        // a probe of this run reached the targets (and the witness granted survival): the
        // missing servers may run a cluster of their own behind a partition (found by
        // simulator seed 24415432: a server restarted during a partition founded with the one
        // beside it and started every group before its first probe came back denied; the
        // server alone on the other side had the witness's grant and ran them too).
        if ping.isConfigured, view.count < serverNames.count {
            guard !ping.lost, let verified = ping.lastVerifiedProbeStart, verified >= listeningSince else { return nil }
        }
        let founding = foundingConfiguration(rankedView: view)
        guard let founder = view.first(where: { configuration(of: $0)?.hash == founding }) else { return nil }
        let founderSyncDone = founder == me ? syncDone : (membership.peers[founder]?.sharedReport?.heartbeat.syncDone ?? false)
        return founderSyncDone ? founder : nil
    }

    public func isMaster(now: EngineTime) -> Bool { currentMaster(now: now) == me }

    /// This server's own status of a group.
    public func localStatus(of group: GroupName) -> ActivationStatus {
        runner.locals[group]?.status ?? .unknown
    }

    /// Whether an operator stopped the group's resources here one by one (clprsc -t): the
    /// group is still assigned here and is not re-placed.
    public func isStoppedByOperator(_ group: GroupName) -> Bool {
        runner.locals[group]?.operatorStopped ?? false
    }

    /// Groups that hold resources on this server (starting, online, stopping, failed), in
    /// configuration order.
    public var heldGroups: [GroupName] {
        config.groups.compactMap { runner.locals[$0.name]?.status.holdsResources == true ? $0.name : nil }
    }

    /// The resource statuses of a group on this server.
    public func localResourceStatus(of group: GroupName) -> [ResourceName: ActivationStatus] {
        runner.locals[group]?.resourceStatus ?? [:]
    }
}

/// Order of servers for mastership (see `ServerEngine.currentMaster`).
struct MasterRank: Comparable {
    var priority: Int
    var name: ServerName

    static func < (lhs: MasterRank, rhs: MasterRank) -> Bool {
        lhs.priority != rhs.priority ? lhs.priority < rhs.priority : lhs.name < rhs.name
    }
}

/// The view and quorum at one time, while membership has not changed since.
struct ViewMemo: Sendable, Equatable {
    var now: EngineTime
    var generation: UInt64
    var view: [ServerName]
    var rankedView: [ServerName]
    var quorum: Bool
}

/// A resource run the Node is carrying out.
struct RunningRun: Sendable, Equatable {
    var group: GroupName
    var resource: ResourceName
    var operation: ResourceOperation
}

/// Conditions the engine logs once, not at every step while they last.
struct LoggedOnce: Sendable, Equatable {
    /// Peers reported as running another configuration.
    var configMismatch: Set<ServerName> = []
    /// Epochs of masters whose directory this server declined and offered its own to.
    var offers: Set<Epoch> = []
    /// Servers whose absence was logged as keeping the cluster from being founded.
    var foundingBlocked: Set<ServerName> = []
    /// Groups whose wait to start here was logged (once per wait).
    var startWaits: Set<GroupName> = []
    /// Servers logged as present with heartbeats that fail authentication (once while it lasts).
    var unauthenticated: Set<ServerName> = []
    /// Servers seen with another key logged as silent since (their groups still held back).
    var silentWithAnotherKey: Set<ServerName> = []
    /// Servers logged as present with heartbeats whose state cannot be fetched (once while it lasts).
    var withoutState: Set<ServerName> = []

    /// A new run of the cluster service (a peer's configuration stays as it was).
    mutating func resetForNewRun() {
        offers = []
        foundingBlocked = []
        startWaits = []
    }
}
