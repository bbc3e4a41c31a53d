import UnderstudyModel

// Operator commands. Group commands are decided by the master, which changes the directory
// and lets every server reconcile; a group in transition refuses with code 4 (never two
// operations interleaved on one group). Commands return once accepted; the CLI waits for
// the resulting state by polling the status.

extension ServerEngine {
    /// Handles a command that reached this server. `forwarded` is true when another server
    /// sent it here because it believed this one to be the right place.
    public mutating func command(
        _ command: ClusterCommand, origin: ServerName, forwarded: Bool = false, now: EngineTime
    ) -> (CommandDisposition, [EngineAction]) {
        // A command may change what the next tick has to do (QuietTicks.swift).
        quietUntil = min(quietUntil, now)
        noticeStall(now: now)
        if stalls.isHolding, !command.isServiceStartOrStop {
            return (
                .done(CommandResult(.inTransition, "\(me) is waking from a stall and waits for its peers; retry in a moment.")),
                step(now: now)
            )
        }
        let disposition = route(command, origin: origin, forwarded: forwarded, now: now)
        return (disposition, step(now: now))
    }

    mutating func route(_ command: ClusterCommand, origin: ServerName, forwarded: Bool, now: EngineTime) -> CommandDisposition {
        switch command {
        case .startService:
            guard service == .stopped else { return .done(CommandResult(.failed, "The cluster service is already running on \(me).")) }
            _ = startService(now: now)
            return .done(.ok())
        case .stopService(let factor, let lastAction, let then):
            switch service {
            case .stopped:
                if case .os = then {
                    // clpdown on a stopped service still shuts the OS down.
                    emit(.serviceStopped(then))
                    return .done(.ok())
                }
                return .done(CommandResult(.failed, "The cluster service is not running on \(me)."))
            case .leaving:
                return .done(CommandResult(.inTransition, "The cluster service on \(me) is already stopping."))
            case .running:
                beginLeaving(factor: factor, lastAction: lastAction, then: then, now: now)
                return .done(.ok())
            }
        case .startResource(let resource), .stopResource(let resource), .startResourceWithDependencies(let resource),
            .stopResourceWithDependents(let resource):
            return resourceCommand(command, resource: resource, forwarded: forwarded, now: now)
        case .monitor(let control, let monitor, let server):
            if let server, server != me {
                guard serverNames.contains(server) else { return .done(CommandResult(.badUsage, "Unknown server \(server).")) }
                return forwarded ? .done(CommandResult(.failed, "\(me) is not \(server).")) : .forward(to: server)
            }
            return .done(monitorCommand(control, monitor: monitor, now: now))
        case .runScript:
            return .done(CommandResult(.failed, "Scripts are run by the daemon of \(me), not decided by the Engine."))
        case .forgetLeftBehind(let server):
            return .done(forgetLeftBehind(server))
        case .setTimeoutRatio(let setting):
            return .done(setTimeoutRatio(setting, now: now))
        case .rebootCount(let clear):
            return .done(rebootCount(clear: clear))
        case .externalNotice(let monitor, let category, let keyword, let clear, let server):
            if let server, server != me {
                guard serverNames.contains(server) else { return .done(CommandResult(.badUsage, "Unknown server \(server).")) }
                return forwarded ? .done(CommandResult(.failed, "\(me) is not \(server).")) : .forward(to: server)
            }
            guard service == .running else { return .done(CommandResult(.failed, "The cluster service is not running on \(me).")) }
            return .done(externalNotice(monitor: monitor, category: category, keyword: keyword, clear: clear, now: now))
        default:
            break
        }
        guard service == .running else {
            return .done(CommandResult(.failed, "The cluster service is not running on \(me)."))
        }
        guard !isolated else {
            return .done(CommandResult(.failed, "\(me) is isolated from the majority of the cluster; no group operation is possible here."))
        }
        guard hasQuorum(now: now) else {
            let reached = view(now: now).count
            return .done(
                CommandResult(
                    .failed,
                    "\(me) does not reach a majority of the servers (\(reached) of \(serverNames.count)); no group operation is possible here."
                ))
        }
        guard let master = currentMaster(now: now) else {
            return .done(CommandResult(.inTransition, "The cluster has no master yet (servers are still starting); retry in a moment."))
        }
        guard master == me else {
            if forwarded {
                return .done(CommandResult(.inTransition, "The master is changing (\(me) was asked but \(master) is master now); retry."))
            }
            return .forward(to: master)
        }
        return masterCommand(command, origin: origin, now: now)
    }

    mutating func masterCommand(_ command: ClusterCommand, origin: ServerName, now: EngineTime) -> CommandDisposition {
        guard var dir = directory, dir.epoch.master == me else {
            return .done(CommandResult(.inTransition, "\(me) is becoming master; retry in a moment."))
        }
        let facts = facts(now: now)
        let view = facts.view
        let settled = view.filter { $0 != me }.allSatisfy { facts.report(of: $0)?.epoch == dir.epoch }
        guard settled else {
            return .done(CommandResult(.inTransition, "Cluster membership is changing; retry in a moment."))
        }
        if case .confirmStopped(let server) = command { return .done(confirmStopped(server, now: now)) }
        let next = dir.version + 1
        var ticket: OperationTicket?
        switch command {
        case .suspendCluster:
            dir.suspended = true
            log(.clusterSuspended, "Cluster suspended.")
        case .resumeCluster:
            dir.suspended = false
            log(.clusterResumed, "Cluster resumed.")
        case .beginClusterStop:
            dir.clusterStopping = true
            log(.clusterStopRequested, "Cluster stop requested.")
        case .startGroup(let name, let server):
            guard let group = config.group(named: name) else { return .done(CommandResult(.badUsage, "Unknown group \(name).")) }
            if let refusal = refuseIfBusy(group, directory: dir, facts: facts) { return .done(refusal) }
            var entry = dir.entries[name] ?? DirectoryEntry()
            let held = facts.holders(of: name)
            if let holder = held.first {
                return .done(
                    CommandResult(
                        .failed,
                        "Group \(name) is already \(facts.status(of: name, on: holder)?.status.rawValue ?? "active") on \(holder)."))
            }
            let target: ServerName
            if let server {
                guard group.servers.contains(server) else {
                    return .done(CommandResult(.failed, "Group \(name) cannot run on \(server): it is not in the group's servers."))
                }
                guard view.contains(server), !facts.isLeaving(server) else {
                    return .done(CommandResult(.failed, "Group \(name) cannot start on \(server): its cluster service is not running."))
                }
                guard !facts.runsOtherConfiguration(server) else {
                    return .done(
                        CommandResult(
                            .failed,
                            "Group \(name) cannot start on \(server): it runs another configuration than the master's (clpstat shows both)."
                        ))
                }
                target = server
            } else if group.servers.contains(origin), view.contains(origin), !facts.isLeaving(origin),
                !facts.runsOtherConfiguration(origin)
            {
                target = origin
            } else if let first = group.servers.first(where: {
                view.contains($0) && !facts.isLeaving($0) && !facts.runsOtherConfiguration($0)
            }) {
                target = first
            } else {
                return .done(CommandResult(.failed, "No server of group \(name) is running."))
            }
            if group.exclusive == .complete,
                facts.runsOtherExclusive(.complete, server: target, except: name, groups: config.groups, directory: dir)
            {
                return .done(
                    CommandResult(.failed, "Group \(name) cannot start on \(target): another completely exclusive group runs there."))
            }
            entry.wanted = true
            entry.owner = nil
            entry.preferredTarget = target
            entry.startEvent = .start
            entry.failoverCount = 0
            entry.forgetFailures()
            entry.operation = next
            dir.entries[name] = entry
            dir.startupDone = true
            ticket = OperationTicket(kind: .start, group: name, target: target, epoch: dir.epoch, version: next, founding: dir.founding)
            // An operator start is the operator's word that the server is sound.
            if facts.isAutoStartSuppressed(target), let boot = facts.instance(of: target) {
                dir.suppressionLifted[target] = boot
            }
            log(.groupStarting, "Start of group \(name) on \(target) requested.")
        case .stopGroup(let name):
            guard config.group(named: name) != nil else { return .done(CommandResult(.badUsage, "Unknown group \(name).")) }
            if let group = config.group(named: name), let refusal = refuseIfBusy(group, directory: dir, stopping: true, facts: facts) {
                return .done(refusal)
            }
            var entry = dir.entries[name] ?? DirectoryEntry()
            let held = facts.holders(of: name)
            if held.isEmpty && !entry.wanted {
                return .done(.ok("Group \(name) is already offline."))
            }
            entry.wanted = false
            entry.stopFactor = .groupStop
            entry.stopEvent = .start
            entry.releasedAt = next
            entry.preferredTarget = nil
            entry.operation = next
            dir.entries[name] = entry
            ticket = OperationTicket(kind: .stop, group: name, target: nil, epoch: dir.epoch, version: next, founding: dir.founding)
            log(.groupStopping, "Stop of group \(name) requested.")
        case .moveGroup(let name, let destination):
            guard let group = config.group(named: name) else { return .done(CommandResult(.badUsage, "Unknown group \(name).")) }
            if let refusal = refuseIfBusy(group, directory: dir, facts: facts) { return .done(refusal) }
            var entry = dir.entries[name] ?? DirectoryEntry()
            guard let owner = entry.owner, entry.wanted else {
                return .done(CommandResult(.failed, "Group \(name) is not online; start it instead of moving it."))
            }
            if let report = facts.status(of: name, on: owner), report.status != .online && report.status != .onlineFailure {
                return .done(
                    CommandResult(.failed, "Group \(name) is \(report.status.rawValue) on \(owner); stop it (clpgrp -t) before moving it."))
            }
            let target: ServerName
            if let destination {
                guard destination != owner else {
                    // Where an operator's move just put it: an operator racing that one (clpgrp -m
                    // from another server a moment later) lost the race, as when its own move is
                    // superseded (exit 4). Otherwise there is nothing to move (exit 1).
                    if let operation = entry.operation, entry.releasedAt == operation {
                        return .done(
                            CommandResult(
                                .inTransition, "Group \(name) already runs on \(destination), where another command moved it."))
                    }
                    return .done(CommandResult(.failed, "Group \(name) already runs on \(destination)."))
                }
                guard group.servers.contains(destination) else {
                    return .done(CommandResult(.failed, "Group \(name) cannot run on \(destination): it is not in the group's servers."))
                }
                guard view.contains(destination), !facts.isLeaving(destination) else {
                    return .done(CommandResult(.failed, "Group \(name) cannot move to \(destination): its cluster service is not running."))
                }
                guard !facts.runsOtherConfiguration(destination) else {
                    return .done(
                        CommandResult(
                            .failed,
                            "Group \(name) cannot move to \(destination): it runs another configuration than the master's (clpstat shows both)."
                        ))
                }
                target = destination
            } else {
                let ownerIndex = group.servers.firstIndex(of: owner) ?? -1
                let rotated = group.servers.enumerated().sorted { lhs, rhs in
                    let l = (lhs.offset - ownerIndex - 1 + group.servers.count) % group.servers.count
                    let r = (rhs.offset - ownerIndex - 1 + group.servers.count) % group.servers.count
                    return l < r
                }.map(\.element)
                guard
                    let next = rotated.first(where: {
                        $0 != owner && view.contains($0) && !facts.isLeaving($0) && !facts.runsOtherConfiguration($0)
                    })
                else {
                    return .done(CommandResult(.failed, "No other server can take group \(name) now."))
                }
                target = next
            }
            if group.exclusive == .complete,
                facts.runsOtherExclusive(.complete, server: target, except: name, groups: config.groups, directory: dir)
            {
                return .done(
                    CommandResult(.failed, "Group \(name) cannot move to \(target): another completely exclusive group runs there."))
            }
            entry.beginMove(to: target, startEvent: .start, releasedAt: next)
            entry.forgetFailures()
            entry.operation = next
            dir.entries[name] = entry
            ticket = OperationTicket(kind: .move, group: name, target: target, epoch: dir.epoch, version: next, founding: dir.founding)
            log(.groupMoveRequested, "Move of group \(name) from \(owner) to \(target) requested.")
        case .resetFailoverCount(let resource):
            switch resetFailoverCount(of: resource, directory: &dir, facts: facts) {
            case .refused(let refusal): return .done(refusal)
            case .unchanged(let message): return .done(.ok(message))
            case .reset(let message):
                log(.failoverCounterReset, message + " (clprsc --reset)")
                dir.version = next
                directory = dir
                persistDirty = true
                heartbeatDirty = true
                return .done(.ok(message))
            }
        case .startResource, .stopResource, .startResourceWithDependencies, .stopResourceWithDependents, .stopService, .startService,
            .monitor, .externalNotice, .runScript, .forgetLeftBehind, .setTimeoutRatio, .rebootCount, .confirmStopped:
            return .done(CommandResult(.badUsage, "Not a master operation."))
        }
        dir.version = next
        directory = dir
        persistDirty = true
        heartbeatDirty = true
        return .done(CommandResult(.success, "Command succeeded.", ticket: ticket))
    }

    /// Code 4 when the group is in transition; code 1 when the cluster is suspended. A group
    /// whose resources an operator stopped one by one (clprsc -t) may be stopped, nothing else.
    func refuseIfBusy(_ group: GroupConfig, directory dir: Directory, stopping: Bool = false, facts: ClusterFacts) -> CommandResult? {
        if dir.suspended {
            return CommandResult(.failed, "The cluster is suspended; resume it (clpcl --resume) before operating groups.")
        }
        if dir.clusterStopping {
            return CommandResult(.inTransition, "The cluster is stopping.")
        }
        let entry = dir.entries[group.name] ?? DirectoryEntry()
        let held = facts.holders(of: group.name)
        for server in held {
            if let report = facts.status(of: group.name, on: server),
                report.status == .onlinePending || report.status == .offlinePending
            {
                return CommandResult(
                    .inTransition,
                    "Group \(group.name) is in transition (\(report.status.rawValue) on \(server)); try again when it has finished.")
            }
        }
        if entry.wanted && entry.owner == nil {
            return CommandResult(
                .inTransition, "Group \(group.name) is being placed (moving or failing over); try again when it has finished.")
        }
        if let owner = entry.owner, entry.wanted, !held.contains(owner) {
            if facts.status(of: group.name, on: owner)?.operatorStopped == true {
                if stopping { return nil }
                return CommandResult(
                    .failed,
                    "The resources of group \(group.name) were stopped on \(owner) with clprsc -t; start them with clprsc -s, or stop the group with clpgrp -t first."
                )
            }
            return CommandResult(.inTransition, "Group \(group.name) is starting on \(owner); try again when it has finished.")
        }
        if !entry.wanted && !held.isEmpty {
            return CommandResult(.inTransition, "Group \(group.name) is stopping; try again when it has finished.")
        }
        return nil
    }

    mutating func resourceCommand(_ command: ClusterCommand, resource: ResourceName, forwarded: Bool, now: EngineTime) -> CommandDisposition
    {
        guard let found = config.resource(named: resource) else {
            return .done(CommandResult(.badUsage, "Unknown resource \(resource)."))
        }
        let group = found.group
        guard service == .running, !isolated else {
            return .done(CommandResult(.failed, "The cluster service is not running on \(me)."))
        }
        let local = runner.locals[group.name]
        // A group whose every resource an operator stopped (clprsc -t) holds nothing, but it is
        // still assigned here: its resources start here again.
        let entry = directory?.entries[group.name]
        let stoppedHere = local?.operatorStopped == true && entry?.wanted == true && entry?.owner == me
        let runsHere = (local?.status.holdsResources ?? false) || stoppedHere
        if !runsHere {
            let owner = directory?.entries[group.name]?.owner
            if let owner, owner != me, !forwarded { return .forward(to: owner) }
            return .done(
                CommandResult(.failed, "Group \(group.name) of resource \(resource) is not online on any server; start the group first."))
        }
        guard let local, local.operation == nil else {
            return .done(CommandResult(.inTransition, "Group \(group.name) is in transition on \(me); try again when it has finished."))
        }
        let status = local.resourceStatus[resource] ?? .offline
        let deps = DependencyOrder.dependencies(of: found.resource, in: group)
        switch command {
        case .startResource, .startResourceWithDependencies:
            if status == .online { return .done(.ok("Resource \(resource) is already online on \(me).")) }
            if case .startResourceWithDependencies = command {
                return .done(beginResourceChain(.start, resource: resource, group: group, local: local))
            }
            let missing = deps.filter { local.resourceStatus[$0] != .online }
            if !missing.isEmpty {
                return .done(
                    CommandResult(
                        .failed,
                        "Resource \(resource) depends on \(missing.joined(separator: ", ")), which is not online; start it first, or use clprsc -s \(resource) -f."
                    ))
            }
            runner.locals[group.name]?.resourceChain = nil
            startSingle(.start, resource: resource, group: group.name)
        default:
            if status == .offline { return .done(.ok("Resource \(resource) is already offline on \(me).")) }
            if case .stopResourceWithDependents = command {
                return .done(beginResourceChain(.stop, resource: resource, group: group, local: local))
            }
            let dependents = group.resources.filter { other in
                DependencyOrder.dependencies(of: other, in: group).contains(resource)
                    && local.resourceStatus[other.name] != .offline
            }.map(\.name)
            if !dependents.isEmpty {
                return .done(
                    CommandResult(
                        .failed,
                        "Resource \(resource) is needed by \(dependents.joined(separator: ", ")); stop those first, or use clprsc -t \(resource) -f."
                    ))
            }
            runner.locals[group.name]?.resourceChain = nil
            startSingle(.stop, resource: resource, group: group.name)
        }
        return .done(.ok())
    }
}
