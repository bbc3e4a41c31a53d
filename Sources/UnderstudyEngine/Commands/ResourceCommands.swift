import UnderstudyModel

// `clprsc -s -f` / `-t -f`: one resource with what it depends on, or with what depends on it,
// run one resource after the other as single-resource operations of the group (the group is
// busy until the last one ends, so no other operation interleaves). `clprsc --reset`: the
// master sets a group's activation-failover counter to 0.

/// A `clprsc -f` chain in progress on this server: `current` runs now, `remaining` follow in
/// this order; the resource the operator named is the last one.
struct ResourceChain: Sendable, Equatable {
    var operation: ResourceOperation
    var current: ResourceName
    var remaining: [ResourceName]
}

extension DependencyOrder {
    /// Every resource of the group `name` depends on, directly or through others.
    static func transitiveDependencies(of name: ResourceName, in group: GroupConfig) -> Set<ResourceName> {
        var found: Set<ResourceName> = []
        var queue = [name]
        // Each resource enters the queue at most once: bounded by the group's size.
        while let next = queue.popLast() {
            guard let resource = group.resources.first(where: { $0.name == next }) else { continue }
            for dependency in dependencies(of: resource, in: group) where dependency != name && !found.contains(dependency) {
                found.insert(dependency)
                queue.append(dependency)
            }
        }
        return found
    }

    /// Every resource of the group that depends on `name`, directly or through others.
    static func transitiveDependents(of name: ResourceName, in group: GroupConfig) -> Set<ResourceName> {
        Set(group.resources.map(\.name).filter { $0 != name && transitiveDependencies(of: $0, in: group).contains(name) })
    }
}

/// What the master did with `clprsc --reset`.
enum FailoverCountReset {
    case refused(CommandResult)
    /// Nothing to reset: no directory change.
    case unchanged(String)
    case reset(String)
}

extension ServerEngine {
    /// `clprsc -s -f`: the resources `resource` depends on that are not online, in activation
    /// order, then `resource`. `clprsc -t -f`: the resources depending on it that are not
    /// offline, in reverse activation order, then `resource`. The group runs here and is idle.
    mutating func beginResourceChain(_ operation: ResourceOperation, resource: ResourceName, group: GroupConfig, local: LocalGroup)
        -> CommandResult
    {
        let order = DependencyOrder.activationOrder(of: group)
        let others: [ResourceName]
        if operation == .start {
            let dependencies = DependencyOrder.transitiveDependencies(of: resource, in: group)
            others = order.filter { dependencies.contains($0) && local.resourceStatus[$0] != .online }
        } else {
            let dependents = DependencyOrder.transitiveDependents(of: resource, in: group)
            others = order.reversed().filter { dependents.contains($0) && local.resourceStatus[$0] != .offline }
        }
        let chain = others + [resource]
        runner.locals[group.name]?.resourceChain = ResourceChain(
            operation: operation, current: chain[0], remaining: Array(chain.dropFirst()))
        startSingle(operation, resource: chain[0], group: group.name)
        guard !others.isEmpty else { return .ok() }
        let verb = operation == .start ? "Starting" : "Stopping"
        return .ok("\(verb) \(chain.joined(separator: ", ")) on \(me), in this order.")
    }

    /// A single-resource run of `group` ended: the next resource of its `clprsc -f` chain
    /// starts, unless this one failed, a stop of the group is waiting, or the run was not the
    /// chain's (then the chain is dropped: what is left stays as it is).
    mutating func continueResourceChain(
        _ group: GroupName, finished resource: ResourceName, operation: ResourceOperation, outcome: ResourceOutcome
    ) {
        guard let local = runner.locals[group], let chain = local.resourceChain else { return }
        runner.locals[group]?.resourceChain = nil
        guard chain.operation == operation, chain.current == resource, let next = chain.remaining.first else { return }
        // A failed run has logged its failure (rc 85/87); the rest of the chain does not run.
        guard case .success = outcome, local.pendingStop == nil, local.operation == nil, service == .running else { return }
        runner.locals[group]?.resourceChain = ResourceChain(
            operation: operation, current: next, remaining: Array(chain.remaining.dropFirst()))
        startSingle(operation, resource: next, group: group)
    }

    /// `clprsc --reset RESOURCE` on the master: the activation-failover counter of the
    /// resource's group goes to 0, and the servers where activation failed in this episode
    /// may take the group again; the final action already taken stays taken. Refused (code 4)
    /// while the group is being placed, started, moved or failed over: a reset in the middle
    /// of a failover would let one episode use more failovers than the limit, so the
    /// operator resets before or after it, never during.
    func resetFailoverCount(of resource: ResourceName, directory dir: inout Directory, facts: ClusterFacts) -> FailoverCountReset {
        guard let found = config.resource(named: resource) else {
            return .refused(CommandResult(.badUsage, "Unknown resource \(resource)."))
        }
        let name = found.group.name
        var entry = dir.entries[name] ?? DirectoryEntry()
        let held = facts.holders(of: name)
        for server in held {
            if let report = facts.status(of: name, on: server), report.status == .onlinePending || report.status == .offlinePending {
                return .refused(
                    CommandResult(
                        .inTransition,
                        "Group \(name) is in transition (\(report.status.rawValue) on \(server)); reset its failover counter when it has finished."
                    ))
            }
        }
        if entry.wanted, entry.owner == nil {
            return .refused(
                CommandResult(
                    .inTransition,
                    "Group \(name) is being placed (moving or failing over); reset its failover counter when it has finished."))
        }
        if entry.wanted, let owner = entry.owner, !held.contains(owner), facts.status(of: name, on: owner)?.operatorStopped != true {
            return .refused(
                CommandResult(
                    .inTransition, "Group \(name) is starting on \(owner); reset its failover counter when it has finished."))
        }
        let before = entry.failoverCount
        guard before != 0 || !entry.failedOn.isEmpty else {
            return .unchanged("The failover counter of group \(name) (resource \(resource)) is already 0.")
        }
        entry.failoverCount = 0
        entry.failedOn = []
        dir.entries[name] = entry
        let message = "The failover counter of group \(name) (resource \(resource)) was reset from \(before) to 0."
        return .reset(message)
    }
}
