import UnderstudyModel

// Which configuration is the cluster's, and replacing the running configuration online.
//
// Every heartbeat carries the sender's configuration identity: a hash of its canonical model
// and scripts, and a version that `understudy config apply` counts up. Two rules keep a server
// with another configuration out of placement without two servers ever disagreeing about it:
//
// - Founding (nobody has joined yet): the founding configuration is that of the first server,
//   in mastership order, among those with the highest version in the view. Only a server
//   with that configuration founds the cluster.
// - Joining a running cluster: a server whose configuration differs from its master's when it
//   takes the master's directory joins as an *outsider* and says so in its heartbeats. Every
//   server reads the flag alike: an outsider is never master and the master gives it no group.
//   It stops being one as soon as it runs the master's configuration (fetched by the daemon,
//   or the master's changed).
//
// A server already joined keeps its place when configurations change under it (an apply
// switches the servers one by one within milliseconds; the daemon fetches a newer version it
// sees in a heartbeat): mastership never moves because of an apply. The master gives a group
// only to a server whose configuration is the master's own.
extension ServerEngine {
    /// The configuration identity of a server as this one knows it (nil: never heard).
    func configuration(of server: ServerName) -> (hash: String, version: UInt64)? {
        if server == me { return (configHash, configVersion) }
        guard let heartbeat = membership.peers[server]?.sharedReport?.heartbeat else { return nil }
        return (heartbeat.configHash, heartbeat.configVersion ?? 0)
    }

    /// The hash of the configuration a cluster founded now runs (see above): the first server,
    /// in mastership order, among those of the view with the highest version.
    func foundingConfiguration(rankedView: [ServerName]) -> String? {
        let known = rankedView.compactMap { server in configuration(of: server).map { (server, $0) } }
        guard let newest = known.map(\.1.version).max() else { return nil }
        return known.first { $0.1.version == newest }?.1.hash
    }

    /// Joining: an outsider when the master runs another configuration.
    mutating func noteJoiningConfiguration(master: ServerName, now: EngineTime) {
        let theirs = configuration(of: master)
        let differs = theirs.map { $0.hash != configHash } ?? false
        if differs && !configOutsider {
            log(
                .configurationOutsider,
                "\(me) runs another configuration (version \(configVersion), hash \(configHash.prefix(12))) than the master \(master) (version \(theirs?.version ?? 0), hash \(theirs?.hash.prefix(12) ?? "?")): it takes no part in placement until it runs the cluster's."
            )
        }
        configOutsider = differs
        heartbeatDirty = true
    }

    /// An outsider whose configuration is now its master's takes part again; a server that
    /// left the cluster (no directory) is no outsider of any.
    mutating func checkConfigurationOutsider(now: EngineTime) {
        guard configOutsider else { return }
        if directory == nil {
            configOutsider = false
            heartbeatDirty = true
            return
        }
        guard let master = directory?.epoch.master, master != me, view(now: now).contains(master),
            configuration(of: master)?.hash == configHash
        else { return }
        configOutsider = false
        heartbeatDirty = true
        log(.configurationRejoined, "\(me) runs the configuration of the master \(master) again (version \(configVersion)).")
    }

    /// Whether a server runs this server's configuration (the master gives groups only to
    /// those that do).
    public func sharesConfiguration(_ server: ServerName) -> Bool {
        server == me || (membership.peers[server]?.sharedReport?.heartbeat.configHash == configHash)
    }

    /// The newest configuration version this server knows of (its own, any peer's heard in
    /// this run, `pending`): a new apply takes the next one.
    public func newestKnownConfigVersion(now: EngineTime, pending: UInt64 = 0) -> UInt64 {
        let peers = serverNames.compactMap { membership.peers[$0]?.sharedReport?.heartbeat.configVersion }
        return max(configVersion, pending, peers.max() ?? 0)
    }

    // MARK: - Applying

    /// Why a configuration cannot replace the running one online (nil: it can). The daemon
    /// asks `ConfigReflection` first; this is the Engine's own guard for what it cannot take:
    /// another server list, other heartbeat timing, a group that holds resources here and
    /// whose resources change or that disappears.
    public func refusalToApply(_ new: ClusterConfig) -> String? {
        if new.serverNames != config.serverNames { return "the servers differ (stop and start the cluster service)" }
        if new.cluster.timing.heartbeatInterval != config.cluster.timing.heartbeatInterval
            || new.cluster.timing.heartbeatTimeout != config.cluster.timing.heartbeatTimeout
        {
            return "the heartbeat timing differs (stop and start the cluster service)"
        }
        let withoutComments: ([HeartbeatConfig]) -> [HeartbeatConfig] = { paths in
            paths.map { path in
                var bare = path
                bare.comment = ""
                return bare
            }
        }
        if withoutComments(new.heartbeats) != withoutComments(config.heartbeats) {
            return "the heartbeat paths differ (stop and start the cluster service)"
        }
        for group in config.groups {
            let busy = runner.locals[group.name].map { $0.status.holdsResources || $0.isBusy } ?? false
            guard busy else { continue }
            guard let replacement = new.group(named: group.name) else {
                return "group \(group.name) is active on \(me) and would be removed (stop it first)"
            }
            if replacement.resources.map(\.name) != group.resources.map(\.name)
                || zip(replacement.resources, group.resources).contains(where: { !Self.sameResource($0, $1) })
            {
                return "group \(group.name) is active on \(me) and its resources change (stop it first)"
            }
        }
        return nil
    }

    static func sameResource(_ a: ResourceConfig, _ b: ResourceConfig) -> Bool {
        var left = a
        left.comment = b.comment
        return left == b
    }

    /// Replaces the running configuration (phase 2 of an apply, or a newer version fetched
    /// from a peer). Keeps every state: group and monitor states, counters, the directory.
    /// Monitors whose settings changed (or that were removed) stop, and start again with their
    /// new settings in the same step; new monitors and groups appear; removed groups, stopped
    /// here, disappear. The caller has checked `refusalToApply`.
    public mutating func applyConfiguration(_ new: ClusterConfig, hash: String, version: UInt64, now: EngineTime) -> [EngineAction] {
        quietUntil = min(quietUntil, now)
        let old = config
        // Monitors that stop: removed, or changed (they start again below, with the new
        // settings, under a new run id: a result of the old run is ignored).
        for monitor in old.monitors {
            let replacement = new.monitors.first { $0.name == monitor.name }
            guard replacement != monitor, monitoring.monitors[monitor.name]?.run != nil else { continue }
            stopMonitor(monitor, now: now)
        }
        config = new
        configHash = hash
        configVersion = version
        runner.reconfigure(new)
        monitoring.reconfigure(new, me: me)
        log(.configurationApplied, "\(me) runs configuration version \(version) (hash \(hash.prefix(12))).")
        heartbeatDirty = true
        persistDirty = true
        guard service != .stopped else {
            let actions = pendingActions
            pendingActions = []
            return actions
        }
        return step(now: now)
    }
}

extension GroupRunner {
    /// The groups of a new configuration: new groups appear (offline), removed ones that hold
    /// nothing here disappear, a group's resources follow the new list while it holds none.
    mutating func reconfigure(_ config: ClusterConfig) {
        var order: [GroupName: [ResourceName]] = [:]
        for group in config.groups {
            order[group.name] = DependencyOrder.activationOrder(of: group)
            let names = group.resources.map(\.name)
            if let local = locals[group.name], local.status.holdsResources || local.isBusy { continue }
            guard var local = locals[group.name] else {
                locals[group.name] = LocalGroup(resources: names)
                continue
            }
            if local.resourceStatus.keys.sorted() != names.sorted() {
                local.resourceStatus = Dictionary(uniqueKeysWithValues: names.map { ($0, local.resourceStatus[$0] ?? .offline) })
                locals[group.name] = local
            }
        }
        for name in Array(locals.keys) where config.group(named: name) == nil {
            if let local = locals[name], local.status.holdsResources || local.isBusy { continue }
            locals[name] = nil
        }
        activationOrder = order
        groupNames = config.groups.map(\.name)
        groupNamesSorted = groupNames.sorted()
    }
}

extension Monitoring {
    /// The monitors of a new configuration that run on this server: kept ones keep their
    /// state (a changed one was stopped first and starts again with its new settings),
    /// new ones start from scratch, removed ones disappear.
    mutating func reconfigure(_ config: ClusterConfig, me: ServerName) {
        var configs: [String: MonitorConfig] = [:]
        var kept: [String: LocalMonitor] = [:]
        for monitor in config.monitors where monitor.runs(on: me) {
            configs[monitor.name] = monitor
            kept[monitor.name] = monitors[monitor.name] ?? LocalMonitor()
        }
        self.monitors = kept
        self.configs = configs
        self.userSpace = config.monitors.filter { $0.type == .userw && $0.runs(on: me) }
    }
}
