import UnderstudyEngine
import UnderstudyModel

// The safety and liveness checks of the simulator, in one place:
//   I1  a group is active on at most one running server, and on at most one server with a
//       valid lease (after every step, judged on the actions the Engines emitted);
//   I3  no server applies an older directory than one it applied before;
//   I4  after the faults, one master, every wanted group placed once, every command ended;
//   and no log line repeats without bound.
// (I2, no lost commit, and I5, durable state, are the Node's: see the storage tests.)

extension SimulatedCluster {
    // MARK: - What the actions left active

    /// The machine or the daemon's process went down: nothing of it runs any more.
    func wentDown(_ name: ServerName) {
        guard let server = servers[name] else { return }
        for group in server.activeResources.keys { activeHolders[group, default: 1] -= 1 }
        server.activeResources = [:]
        server.runsInFlight = [:]
        server.finishedRuns = []
    }

    /// A start makes the resource active at once (the script may have started the service
    /// before it fails or hangs); a stop is remembered until it finishes.
    func runOrdered(_ run: ResourceRun, on name: ServerName) {
        guard let server = servers[name] else { return }
        server.runsInFlight[run.id] = run
        if run.operation == .start {
            if server.activeResources[run.group] == nil { activeHolders[run.group, default: 0] += 1 }
            server.activeResources[run.group, default: []].insert(run.resource)
        }
    }

    /// A stop that finished takes the resource away. A failed stop leaves it active (the
    /// service may still run), unless its deactivation's final action is `none-continue`: then
    /// the configuration says to go on as if it had stopped.
    func runFinished(_ runID: UInt64, outcome: ResourceOutcome, on name: ServerName) {
        guard let server = servers[name], let run = server.runsInFlight.removeValue(forKey: runID), run.operation == .stop
        else { return }
        let stopped: Bool
        switch outcome {
        case .success: stopped = true
        case .failure: stopped = config.resource(named: run.resource)?.resource.deactivation.finalAction == .noneContinue
        }
        guard stopped else { return }
        server.activeResources[run.group]?.remove(run.resource)
        if server.activeResources[run.group]?.isEmpty == true {
            server.activeResources[run.group] = nil
            activeHolders[run.group, default: 1] -= 1
        }
    }

    /// A fence kills the group's processes, the scripts still running among them: nothing of
    /// the group is active any more, and a stop that was running stops nothing later (its end,
    /// if the Engine still hears of it, must not take away a resource started after the fence).
    func fenced(_ group: GroupName, on name: ServerName) {
        guard let server = servers[name] else { return }
        if server.activeResources.removeValue(forKey: group) != nil { activeHolders[group, default: 1] -= 1 }
        server.runsInFlight = server.runsInFlight.filter { $0.value.group != group }
    }

    /// Servers where the actions left something of `group` active.
    public func activeServers(of group: GroupName) -> [ServerName] {
        serverNames.filter { servers[$0]?.activeResources[group]?.isEmpty == false }
    }

    // MARK: - I1 and I3, after every step

    /// A server whose resources count for I1: not frozen, and not holding still after a
    /// stall (it acts on nothing then, and a service that fences itself by the lease file has
    /// stopped serving).
    func countsForI1(_ name: ServerName) -> Bool {
        guard let server = servers[name] else { return false }
        return server.frozenUntil == nil && !(server.engine?.isHoldingAfterStall ?? false)
    }

    /// I1 for every group: active on at most one server that counts, and with a valid lease
    /// on at most one server, frozen or not (what a service that fences itself by the lease
    /// file sees).
    func checkInvariants() {
        var holders: [GroupName: [ServerName]] = [:]
        for name in serverNames {
            guard let active = servers[name]?.activeResources, !active.isEmpty else { continue }
            for group in active.keys { holders[group, default: []].append(name) }
        }
        for (group, names) in holders where names.count > 1 { judge(group, names) }
    }

    /// `checkInvariants()` for the groups `name` has active: the same verdicts where the last
    /// event changed only `name` (the rest was checked before and has not changed).
    func checkInvariants(touching name: ServerName) {
        guard let active = servers[name]?.activeResources, !active.isEmpty else { return }
        for group in active.keys where activeHolders[group, default: 0] > 1 {
            let names = serverNames.filter { $0 == name || servers[$0]?.activeResources[group]?.isEmpty == false }
            if names.count > 1 { judge(group, names) }
        }
    }

    private func judge(_ group: GroupName, _ names: [ServerName]) {
        let running = names.filter(countsForI1)
        if running.count > 1 {
            violate("I1: group \(group) is active on \(running.joined(separator: " and ")) at \(now)")
        }
        let leased = names.filter(hasValidLease)
        if leased.count > 1 {
            violate("I1: group \(group) is active with a valid lease on \(leased.joined(separator: " and ")) at \(now)")
        }
    }

    /// What the server's lease file says now: the expiry its daemon wrote after the last
    /// event it handled (a frozen daemon writes nothing; computed at a later time, the lease
    /// of a frozen Engine could come out longer: a peer it heard before the freeze would
    /// count as lost, found by simulator seed 287002599).
    func hasValidLease(_ name: ServerName) -> Bool {
        guard let server = servers[name] else { return false }
        return server.engine?.leaseExpiry(now: server.lastEventAt).map { $0 > now } ?? false
    }

    /// I3: directories only go forward on a server (within one run of its Engine).
    func trackAdoption(_ name: ServerName) {
        // Field by field: binding the whole Engine would copy it, after every event.
        guard let server = servers[name], let term = server.engine?.directory?.epoch.term,
            let version = server.engine?.directory?.version, let resets = server.engine?.directoryResets
        else { return }
        let current = (term: term, version: version, resets: resets)
        if let last = servers[name]?.lastAdopted, last.resets == current.resets {
            if current.term < last.term || (current.term == last.term && current.version < last.version) {
                violate("I3: \(name) went back from directory \(last) to \(current) at \(now)")
            }
        }
        servers[name]?.lastAdopted = current
    }
}

extension Simulation {
    // MARK: - At the end of a schedule

    /// I4: after the faults, there is one master that every server follows, and every group
    /// its directory wants is active on exactly one server, unless no server may take it (a
    /// server with another configuration than the master's may not).
    /// Returns the problems and how many groups it really checked (a group no server may
    /// take, or one left in failure for the operator, is not checked).
    static func checkLiveness(_ world: SimulatedCluster) -> (problems: [String], checked: Int) {
        let config = world.config
        let now = world.now
        let running = config.serverNames.filter { world.engine($0)?.service == .running }
        let masters = Set(running.compactMap { world.engine($0)?.currentMaster(now: now) })
        guard masters.count == 1, let master = masters.first, let masterEngine = world.engine(master),
            let directory = masterEngine.directory
        else {
            return (["I4: after the faults the servers do not agree on one master: \(masters.sorted()) at \(now)"], 0)
        }
        var problems: [String] = []
        var checked = 0
        for group in config.groups {
            let entry = directory.entries[group.name] ?? DirectoryEntry()
            let placement = world.placement(of: group.name)
            if placement.values.contains(where: { $0 == .offlineFailure || $0 == .onlineFailure }) { continue }
            if entry.wanted {
                let eligible = group.servers.filter { server in
                    guard let engine = world.engine(server), engine.service == .running else { return false }
                    // A server that runs another configuration than the master's is given no
                    // group (ConfigApply.swift).
                    guard engine.configHash == masterEngine.configHash, !engine.configOutsider else { return false }
                    return !engine.autoStartSuppressed && !entry.failedOn.contains(server)
                }
                if eligible.isEmpty || entry.finalActionOn != nil { continue }
                // Its resources stopped by an operator (clprsc -t) and not started again: the
                // operator's choice, not a lost group.
                if let owner = entry.owner, world.engine(owner)?.isStoppedByOperator(group.name) == true { continue }
                checked += 1
                let active = world.activeServers(of: group.name)
                if placement.count != 1 || placement.values.first != .online || active != Array(placement.keys) {
                    problems.append(
                        "I4: group \(group.name) is wanted but placed as \(placement) (active by the actions on \(active)) at \(now) (directory \(entry))"
                    )
                }
            } else {
                checked += 1
                let active = world.activeServers(of: group.name)
                if !placement.isEmpty || !active.isEmpty {
                    problems.append("I4: group \(group.name) is not wanted but still held: \(placement), active on \(active) at \(now)")
                }
            }
        }
        return (problems, checked)
    }

    /// Every accepted group command has ended by the end of the schedule, as the CLI that
    /// follows it sees it: done, failed, or superseded by a later command or a master change.
    /// A command still pending would wait until its timeout.
    static func checkCommandsEnd(_ world: SimulatedCluster, _ tickets: [OperationTicket]) -> [String] {
        let now = world.now
        guard let master = world.config.serverNames.compactMap({ world.engine($0)?.currentMaster(now: now) }).first,
            let snapshot = world.engine(master)?.snapshot(now: now)
        else { return [] }
        return tickets.compactMap { ticket in
            guard ticket.verdict(in: snapshot) == .pending else { return nil }
            let line = snapshot.groups.first { $0.name == ticket.group }
            return
                "I4: the command \(ticket.kind.rawValue) of \(ticket.group) (to \(ticket.target ?? "-"), version \(ticket.version)) would still wait at \(now): \(line.map { "\($0.status.rawValue) on \($0.current ?? "none"), wanted \($0.wanted ?? false), assigned to \($0.assignedTo ?? "none"), operation \($0.operation ?? 0)" } ?? "no group"), directory \(snapshot.directoryVersion ?? 0)"
        }
    }

    /// No server writes one kind of log line without bound (a master leapfrog wrote
    /// hundreds a second): a schedule of a minute gives each at most a few dozen.
    static func checkNoFlood(_ world: SimulatedCluster) -> [String] {
        world.logCounts.filter { $0.value > 200 }.sorted { $0.key < $1.key }.map { key, count in
            "a log line repeats without bound: \(key) written \(count) times"
        }
    }
}
