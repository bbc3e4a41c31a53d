import UnderstudyModel

// How the master's engine runs placement (Placement.swift): gather the input, apply the
// decision. Also the two questions about other servers that local runs ask between decisions.

extension ServerEngine {
    /// The master decides (see `Placement.plan`) and applies the decision.
    mutating func schedule(now: EngineTime) {
        let input = PlacementInput(
            config: config, facts: facts(now: now), memory: placement, persistedDirectory: persistent.directory,
            epochStartVersion: epochStartVersion, listenedEnough: now - listeningSince >= (listenFully ? rejoinListen : listenTimeout),
            interval: interval, timeout: timeout)
        let decision = Placement.plan(input)
        placement = decision.memory
        switch decision.outcome {
        case .unchanged:
            break
        case .tookOver(let fresh, let from):
            if from != nil { noteClaimsReplaced(by: fresh) }
            directory = fresh
            rejoined()
            epochStartVersion = fresh.version
            persistDirty = true
            heartbeatDirty = true
        case .decided(let next):
            directory = next
            persistDirty = true
            heartbeatDirty = true
        }
        for entry in decision.log { emit(.log(entry)) }
    }

    /// A confirmation that a server is down holds for that loss only. The master's planning
    /// forgets it when the server is heard up again, but a server that was not the master
    /// meanwhile would keep it, and on becoming master take the server's groups over at once
    /// after its next loss, without the timeout and margin that let it fence first (found by
    /// simulator seed 288001563). So every step forgets those of servers up again, or
    /// present again without being heard (another key, their state not fetched), as the
    /// master's planning does (seed 23121638).
    mutating func forgetDownConfirmationsOfReturnedServers(now: EngineTime) {
        guard !placement.downConfirmedAt.isEmpty else { return }
        for server in placement.downConfirmedAt.keys where membership.isUp(server, now: now) || isSendingUnheard(server, now: now) {
            placement.downConfirmedAt[server] = nil
        }
    }

    func appliedVersion(of server: ServerName, now: EngineTime) -> UInt64 {
        if server == me { return directory?.version ?? 0 }
        return membership.report(of: server, now: now)?.appliedVersion ?? 0
    }

    func isLeaving(_ server: ServerName, now: EngineTime) -> Bool {
        if server == me { return isLeaving }
        return membership.report(of: server, now: now)?.leaving ?? false
    }
}
