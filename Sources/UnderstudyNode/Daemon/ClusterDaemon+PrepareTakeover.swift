import UnderstudyEngine
import UnderstudyModel

extension ClusterDaemon {
    /// After each step: peers that left this server's view since the last one were lost (or
    /// left cleanly). The groups they held that this server may run could come here once the
    /// takeover margin has passed — on every server, master or not: the group goes to whichever
    /// server the master picks.
    func noticeLostPeers() {
        // A stopped service has no view worth comparing (nor groups to take over).
        let view = engine.service == .stopped ? [] : Set(engine.currentView(now: lastTick))
        guard view != viewAtLastStep else { return }
        let lost = viewAtLastStep.subtracting(view)
        viewAtLastStep = view
        if !lost.isEmpty && !view.isEmpty { prepareTakeovers(heldBy: lost) }
    }

    /// The groups `lost` held that this server may run check ahead what changes nothing (the
    /// fip's address probe, `ResourceDriver.prepareTakeover`), off the actor, so that their
    /// activation need not wait for it after the margin. Whether and where a group goes is
    /// still the Engine's decision; a check made for a group that goes elsewhere, or stays,
    /// is just not used.
    func prepareTakeovers(heldBy lost: Set<ServerName>) {
        guard let directory = engine.directory else { return }
        let groups = config.groups.filter { group in
            group.servers.contains(me) && (directory.entries[group.name]?.owner.map(lost.contains) ?? false)
        }
        guard !groups.isEmpty else { return }
        let drivers = resources
        Task.detached { await drivers.prepareTakeover(groups: groups) }
    }
}
