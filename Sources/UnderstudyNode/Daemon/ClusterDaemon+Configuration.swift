import Foundation
import UnderstudyEngine
import UnderstudyModel

/// What an apply (or its preview) did: the outcome, the reflection method of the change, the
/// version, and each server's part. Codable for the CLI, the API and the WebManager.
public struct ConfigApplyReport: Sendable, Codable, Equatable {
    public struct ServerOutcome: Sendable, Codable, Equatable {
        public var server: ServerName
        public var succeeded: Bool
        public var message: String

        public init(server: ServerName, succeeded: Bool, message: String) {
            self.server = server
            self.succeeded = succeeded
            self.message = message
        }
    }

    public var result: CommandResult
    public var reflection: ReflectionReport?
    public var version: UInt64?
    public var servers: [ServerOutcome]

    public init(result: CommandResult, reflection: ReflectionReport? = nil, version: UInt64? = nil, servers: [ServerOutcome] = []) {
        self.result = result
        self.reflection = reflection
        self.version = version
        self.servers = servers
    }
}

// Configuration distribution and the two-phase online apply (docs/design.md, "Changing the
// configuration of a running cluster"):
//
// 1. The coordinator (the server the operator asked) checks the new configuration with the
//    validator and the daemon's own start checks, computes its reflection method and refuses
//    what cannot be applied online, naming the method. Nothing has changed anywhere yet.
// 2. Phase 1: every server that runs the coordinator's configuration and is in its view
//    checks the configuration against what runs *there* and stores it as pending (durable,
//    atomic). One refusal abandons the apply: the others drop it; nothing switched.
// 3. Phase 2: every such server switches: it writes the files (each atomically), records the
//    version and hands the configuration to its Engine (monitors restart with their new
//    settings, new groups appear). The commits go out together; a server that misses its
//    commit, or was down, sees the newer version in the heartbeats and fetches it.
extension ClusterDaemon {
    /// Why a configuration was not accepted.
    struct ConfigRefusal: Error {
        var result: CommandResult
        init(_ result: CommandResult) { self.result = result }
    }

    /// A configuration checked against the running one.
    struct CheckedConfiguration {
        var config: ClusterConfig
        var bundle: ConfigBundle
        var hash: String
        var reflection: ReflectionReport
    }

    // MARK: - Entry points (CLI, and in-process for the API)

    /// The configuration this server runs: its files, version and identity (`clpcfctrl --pull`).
    public func runningConfiguration() -> (bundle: ConfigBundle, version: UInt64, hash: String) {
        (runningBundle, engine.configVersion, engine.configHash)
    }

    /// The reflection method of a new configuration, without applying anything.
    public func previewConfiguration(_ bundle: ConfigBundle) -> ConfigApplyReport {
        switch check(bundle) {
        case .failure(let refusal): return ConfigApplyReport(result: refusal.result)
        case .success(let checked):
            if checked.hash == engine.configHash {
                return ConfigApplyReport(
                    result: .ok("No change: this is the configuration the cluster runs (version \(engine.configVersion))."),
                    reflection: checked.reflection, version: engine.configVersion)
            }
            let refusal = onlineRefusal(checked) ?? groupsRefusal(checked.reflection)
            return ConfigApplyReport(
                result: refusal.map { CommandResult(.failed, $0) } ?? .ok(checked.reflection.summary), reflection: checked.reflection)
        }
    }

    /// Checks a new configuration and applies it to every server of the cluster in two
    /// phases (`prepareOnly`: phase 1 only; `commitConfiguration` does phase 2).
    public func applyConfiguration(_ bundle: ConfigBundle, prepareOnly: Bool = false) async -> ConfigApplyReport {
        guard !configApplyRunning else {
            return ConfigApplyReport(
                result: CommandResult(.inTransition, "Another configuration apply is running on \(me); retry when it ends."))
        }
        configApplyRunning = true
        defer { configApplyRunning = false }
        guard engine.service != .stopped else {
            return ConfigApplyReport(result: CommandResult(.failed, "The cluster service is not running on \(me)."))
        }
        guard !engine.configOutsider else {
            return ConfigApplyReport(
                result: CommandResult(
                    .failed,
                    "\(me) runs another configuration than the cluster's master; apply from a server that runs the cluster's configuration."
                ))
        }
        let checked: CheckedConfiguration
        switch check(bundle) {
        case .failure(let refusal): return ConfigApplyReport(result: refusal.result)
        case .success(let value): checked = value
        }
        let reflection = checked.reflection
        if checked.hash == engine.configHash {
            return ConfigApplyReport(
                result: .ok("No change: this is the configuration the cluster runs (version \(engine.configVersion))."),
                reflection: reflection, version: engine.configVersion)
        }
        if let refusal = onlineRefusal(checked) ?? groupsRefusal(reflection) {
            record(LogEntry(.configurationApplyRefused, "Configuration apply refused: \(refusal)"))
            return ConfigApplyReport(result: CommandResult(.failed, refusal), reflection: reflection)
        }
        let time = now()
        let participants = engine.currentView(now: time).filter { engine.sharesConfiguration($0) }
        let version = engine.newestKnownConfigVersion(now: time, pending: (try? configStore.pending())?.version ?? 0) + 1
        let pending = PendingConfiguration(
            version: version, hash: checked.hash, base: engine.configVersion, coordinator: me, bundle: bundle)

        // Phase 1.
        let prepared = await onEvery(participants) { server in
            server == self.me ? await self.prepare(pending) : await self.askForResult(server, .configPrepare(pending))
        }
        let refused = prepared.filter { !$0.succeeded }
        if !refused.isEmpty {
            _ = await onEvery(prepared.filter(\.succeeded).map(\.server)) { server in
                server == self.me ? await self.abort(version: version) : await self.askForResult(server, .configAbort(version: version))
            }
            let why = refused.map { "\($0.server): \($0.message)" }.joined(separator: "; ")
            record(LogEntry(.configurationApplyRefused, "Configuration version \(version) abandoned before any server switched: \(why)"))
            return ConfigApplyReport(
                result: CommandResult(.failed, "Configuration not applied (no server switched): \(why)"), reflection: reflection,
                version: version, servers: prepared)
        }
        if prepareOnly {
            return ConfigApplyReport(
                result: .ok(
                    "Configuration version \(version) is stored as pending on \(participants.joined(separator: ", ")); switch with `understudy config commit \(version)`."
                ), reflection: reflection, version: version, servers: prepared)
        }
        // Phase 2.
        return await commit(version: version, hash: checked.hash, to: participants, reflection: reflection)
    }

    /// Phase 2 of an apply stored with `prepareOnly`.
    public func commitConfiguration(version: UInt64) async -> ConfigApplyReport {
        let pending: PendingConfiguration?
        do {
            pending = try configStore.pending()
        } catch {
            return ConfigApplyReport(result: CommandResult(.failed, "\(error)"))
        }
        guard let pending, pending.version == version else {
            if engine.configVersion == version {
                return ConfigApplyReport(result: .ok("\(me) runs version \(version) already."), version: version)
            }
            return ConfigApplyReport(result: CommandResult(.failed, "No pending configuration version \(version) on \(me)."))
        }
        let time = now()
        let participants = engine.currentView(now: time).filter { engine.sharesConfiguration($0) }
        return await commit(version: version, hash: pending.hash, to: participants, reflection: nil)
    }

    func commit(version: UInt64, hash: String, to participants: [ServerName], reflection: ReflectionReport?) async -> ConfigApplyReport {
        let switched = await onEvery(participants) { server in
            server == self.me
                ? await self.commitHere(version: version, hash: hash)
                : await self.askForResult(server, .configCommit(version: version, hash: hash))
        }
        let local = switched.first { $0.server == me }
        let late = switched.filter { !$0.succeeded && $0.server != me }.map(\.server)
        var message = "Configuration version \(version) runs on \(switched.filter(\.succeeded).map(\.server).joined(separator: ", "))."
        if !late.isEmpty {
            message += " \(late.joined(separator: ", ")) will fetch it from the others (version compare in the heartbeats)."
        }
        let code: CommandCode = local?.succeeded == true ? .success : .failed
        return ConfigApplyReport(
            result: CommandResult(
                code, code == .success ? message : "Configuration version \(version) did not switch on \(me): \(local?.message ?? "?")"),
            reflection: reflection, version: version, servers: switched)
    }

    // MARK: - Participant

    /// Phase 1 here: the configuration must be newer, have the announced identity, and be
    /// applicable online to what runs here; then it is stored as pending.
    func prepare(_ pending: PendingConfiguration) -> ConfigApplyReport.ServerOutcome {
        guard pending.version > engine.configVersion else {
            return outcome(false, "version \(pending.version) is not newer than the running version \(engine.configVersion)")
        }
        switch check(pending.bundle) {
        case .failure(let refusal): return outcome(false, refusal.result.message)
        case .success(let checked):
            guard checked.hash == pending.hash else {
                return outcome(false, "the configuration's identity here is \(checked.hash.prefix(12)), not \(pending.hash.prefix(12))")
            }
            if let refusal = onlineRefusal(checked) { return outcome(false, refusal) }
        }
        do {
            try configStore.savePending(pending)
        } catch {
            return outcome(false, "cannot store the pending configuration: \(error)")
        }
        record(LogEntry(.configurationStaged, "Configuration version \(pending.version) from \(pending.coordinator) is pending on \(me)."))
        return outcome(true, "version \(pending.version) pending")
    }

    func abort(version: UInt64) -> ConfigApplyReport.ServerOutcome {
        if let pending = try? configStore.pending(), pending.version == version {
            try? configStore.removePending()
        }
        return outcome(true, "version \(version) dropped")
    }

    /// Phase 2 here: switch to the pending configuration of this version and identity.
    func commitHere(version: UInt64, hash: String) -> ConfigApplyReport.ServerOutcome {
        if engine.configVersion == version && engine.configHash == hash { return outcome(true, "runs version \(version)") }
        let pending: PendingConfiguration?
        do {
            pending = try configStore.pending()
        } catch {
            return outcome(false, "\(error)")
        }
        guard let pending, pending.version == version, pending.hash == hash else {
            return outcome(false, "no pending configuration version \(version)")
        }
        return switchConfiguration(to: pending.bundle, version: version, hash: hash)
    }

    /// Replaces the running configuration: files (each atomically, the cluster file last), the
    /// version record, then the Engine and this daemon together, in one actor turn: a monitor
    /// started from now on reads the new settings; one running keeps its own copy of the old
    /// ones and its result is ignored (its run ended), so no check ever sees half of each.
    func switchConfiguration(to bundle: ConfigBundle, version: UInt64, hash: String) -> ConfigApplyReport.ServerOutcome {
        let checked: CheckedConfiguration
        switch check(bundle) {
        case .failure(let refusal): return outcome(false, refusal.result.message)
        case .success(let value): checked = value
        }
        guard checked.hash == hash else {
            return outcome(false, "the configuration's identity here is \(checked.hash.prefix(12)), not \(hash.prefix(12))")
        }
        if let refusal = onlineRefusal(checked) { return outcome(false, refusal) }
        do {
            try bundle.install(at: config.sourcePath, replacing: runningBundle)
            try configStore.saveRunningVersion(ConfigVersionRecord(version: version, hash: hash))
        } catch {
            return outcome(false, "cannot write the configuration: \(error)")
        }
        if let pending = try? configStore.pending(), pending.version <= version { try? configStore.removePending() }
        let actions = engine.applyConfiguration(checked.config, hash: hash, version: version, now: now())
        let alertsChanged = checked.config.alerts != config.alerts || checked.config.cluster.name != config.cluster.name
        config = checked.config
        if alertsChanged {
            alertRouter.configure(config.alerts, destinations: AlertDestinationRegistry.build(config.alerts, context: alertContext))
        }
        alertLog.setRotateRecords(config.alerts.logRecords)
        clusterAlerts.configure(servers: config.serverNames, recordsPerFile: config.alerts.logRecords)
        probeContext.config = checked.config
        rexecConfigurationChanged()
        runningBundle = bundle
        perform(actions)
        return outcome(true, "runs version \(version)")
    }

    // MARK: - Catching up

    /// A heartbeat names the sender's configuration version: a newer one than this server's
    /// (or, for an outsider, its master's at least as new) is fetched and applied.
    func noticeConfiguration(of heartbeat: Heartbeat) {
        guard configFetch == nil, engine.service != .stopped else { return }
        let theirs = heartbeat.configVersion ?? 0
        let mine = engine.configVersion
        let time = now()
        let outsiderCatchUp =
            engine.configOutsider && theirs > 0 && theirs >= mine && heartbeat.configHash != engine.configHash
            && engine.currentMaster(now: time) == heartbeat.sender
        guard theirs > mine || outsiderCatchUp else { return }
        if let failed = configFetchFailedAt[theirs], failed.duration(to: .now) < Self.fetchRetryPause { return }
        let peer = heartbeat.sender
        configFetch = Task { [weak self] in await self?.fetchConfiguration(from: peer, announced: theirs) }
    }

    /// After a failed fetch, the same version is tried again this much later.
    static let fetchRetryPause: Duration = .seconds(5)

    func fetchConfiguration(from peer: ServerName, announced: UInt64) async {
        defer { configFetch = nil }
        let answer = await askPeer(peer, .configFetch)
        guard case .configuration(let bundle, let version, let hash) = answer else {
            configFetchFailedAt[announced] = .now
            logger.info("fetching configuration version \(announced) from \(peer) failed: \(answer)")
            return
        }
        guard version > engine.configVersion || (engine.configOutsider && hash != engine.configHash) else { return }
        let result = switchConfiguration(to: bundle, version: version, hash: hash)
        if result.succeeded {
            record(LogEntry(.configurationFetched, "\(me) fetched configuration version \(version) from \(peer) and runs it."))
            configFetchFailedAt = [:]
        } else {
            let first = configFetchFailedAt[version] == nil
            configFetchFailedAt[version] = .now
            // An outsider holds nothing: it takes the cluster's files now and runs them from
            // its next start (the version is recorded as pending: the start matches it).
            if first, engine.configOutsider, engine.heldGroups.isEmpty {
                do {
                    try bundle.install(at: config.sourcePath, replacing: runningBundle)
                    try configStore.savePending(
                        PendingConfiguration(version: version, hash: hash, base: engine.configVersion, coordinator: peer, bundle: bundle))
                    record(
                        LogEntry(
                            .configurationFetchFailed,
                            "\(me) cannot run the cluster's configuration version \(version) (from \(peer)) online: \(result.message). Its files are installed: restart the daemon on \(me) to run it."
                        ))
                    return
                } catch {
                    logger.error("cannot install the cluster's configuration: \(error)")
                }
            }
            if first {
                record(
                    LogEntry(
                        .configurationFetchFailed,
                        "\(me) cannot run the cluster's configuration version \(version) (from \(peer)): \(result.message). Install it with `clpcfctrl --pull -x DIR` and restart the cluster service here."
                    ))
            }
        }
    }

    // MARK: - Checks

    /// Validates a bundle as the daemon would load it at start (the validator with
    /// file:line:key errors, the daemon's start checks), and compares it with what runs.
    func check(_ bundle: ConfigBundle) -> Result<CheckedConfiguration, ConfigRefusal> {
        do {
            try bundle.check()
        } catch {
            return .failure(ConfigRefusal(CommandResult(.badUsage, "The configuration cannot be distributed: \(error)")))
        }
        let new: ClusterConfig
        do throws(ConfigErrors) {
            new = try ConfigLoader.loadWithWarnings(yaml: bundle.yaml, sourcePath: config.sourcePath, checkFiles: false).config
        } catch {
            let lines = error.errors.prefix(20).map(\.description)
            return .failure(ConfigRefusal(CommandResult(.badUsage, "The configuration is not valid:\n" + lines.joined(separator: "\n"))))
        }
        do {
            try Self.checkSupported(new)
        } catch {
            return .failure(ConfigRefusal(CommandResult(.badUsage, "The configuration cannot run: \(error)")))
        }
        guard new.server(named: me) != nil else {
            return .failure(ConfigRefusal(CommandResult(.badUsage, "The configuration does not list \(me) in servers:.")))
        }
        // Scripts the configuration names in its own scripts/ folder travel with it.
        let folder = ConfigBundle.scriptsFolder(of: config.sourcePath) + "/"
        let missing = ConfigBundle.paths(in: new, under: folder).filter { bundle.scripts[String($0.dropFirst(folder.count))] == nil }
        if let first = missing.first {
            return .failure(
                ConfigRefusal(
                    CommandResult(
                        .badUsage,
                        "The configuration names scripts/\(first.dropFirst(folder.count)), which is not in the scripts/ folder sent with it\(missing.count > 1 ? " (and \(missing.count - 1) more)" : "")."
                    )))
        }
        let hash = ConfigBundle.hash(config: new, scripts: bundle.scripts)
        let reflection = ConfigReflection.compare(running: config, new: new, changedScripts: bundle.changedScripts(since: runningBundle))
        return .success(CheckedConfiguration(config: new, bundle: bundle, hash: hash, reflection: reflection))
    }

    /// Why the configuration cannot replace the running one here online (nil: it can).
    func onlineRefusal(_ checked: CheckedConfiguration) -> String? {
        let reflection = checked.reflection
        if !reflection.method.appliesOnline {
            return
                "\(reflection.summary) It cannot be applied to a running cluster: stop the cluster service on every server (clpcl -t -a), install the file on each (clpcfctrl --push needs a running cluster; copy it), and start them again."
        }
        if let refusal = engine.refusalToApply(checked.config) {
            return "\(reflection.summary) On \(me): \(refusal)."
        }
        return nil
    }

    /// Groups the change needs stopped that run somewhere (as this server's status says).
    func groupsRefusal(_ reflection: ReflectionReport) -> String? {
        guard reflection.method == .stopStartGroups else { return nil }
        let status = engine.snapshot(now: now())
        let active = reflection.groupsToStop.filter { name in
            guard let line = status.groups.first(where: { $0.name == name }) else { return false }
            return line.perServer.values.contains { $0 != .offline && $0 != .unknown } || line.wanted == true
        }
        guard !active.isEmpty else { return nil }
        return "\(reflection.summary) Stop \(active.joined(separator: ", ")) first (clpgrp -t \(active[0])), apply, then start it again."
    }

    // MARK: - Helpers

    func outcome(_ succeeded: Bool, _ message: String) -> ConfigApplyReport.ServerOutcome {
        ConfigApplyReport.ServerOutcome(server: me, succeeded: succeeded, message: message)
    }

    /// A configuration request to a peer, as one server's outcome.
    func askForResult(_ server: ServerName, _ request: PeerRequest) async -> ConfigApplyReport.ServerOutcome {
        switch await askPeer(server, request) {
        case .result(let result):
            return ConfigApplyReport.ServerOutcome(server: server, succeeded: result.code == .success, message: result.message)
        case .status, .configuration, .alerts, .alertEntries, .logCollection, .heartbeatState:
            return ConfigApplyReport.ServerOutcome(server: server, succeeded: false, message: "unexpected answer")
        }
    }

    /// Runs `work` for every server at once; the outcomes in the servers' order.
    func onEvery(
        _ servers: [ServerName], _ work: @escaping @Sendable (ServerName) async -> ConfigApplyReport.ServerOutcome
    ) async -> [ConfigApplyReport.ServerOutcome] {
        var outcomes: [ServerName: ConfigApplyReport.ServerOutcome] = [:]
        await withTaskGroup(of: ConfigApplyReport.ServerOutcome.self) { tasks in
            for server in servers {
                tasks.addTask { await work(server) }
            }
            for await outcome in tasks { outcomes[outcome.server] = outcome }
        }
        return servers.compactMap { outcomes[$0] }
    }

    /// A peer's answer to a configuration request (`handlePeer`).
    func answerConfiguration(_ request: PeerRequest) -> PeerResponse? {
        switch request {
        case .configPrepare(let pending): return .result(Self.result(prepare(pending)))
        case .configCommit(let version, let hash): return .result(Self.result(commitHere(version: version, hash: hash)))
        case .configAbort(let version): return .result(Self.result(abort(version: version)))
        case .configFetch: return .configuration(runningBundle, version: engine.configVersion, hash: engine.configHash)
        case .command, .status, .alerts, .alertSync, .alertPush, .logCollection, .heartbeatState: return nil
        }
    }

    static func result(_ outcome: ConfigApplyReport.ServerOutcome) -> CommandResult {
        CommandResult(outcome.succeeded ? .success : .failed, outcome.message)
    }
}
