import UnderstudyEngine
import UnderstudyModel

extension ClusterDaemon {
    /// A peer was judged down: the groups it held that this server may run could come here once
    /// the takeover margin has passed. Their resources check ahead what changes nothing (the
    /// fip's address probe, `ResourceDriver.prepareTakeover`), off the actor, so that the
    /// activation need not wait for it after the margin. Whether and where a group goes is
    /// still the Engine's decision; a check made for a group that goes elsewhere is just not
    /// used.
    func prepareTakeovers() {
        guard let directory = engine.directory else { return }
        let time = now()
        let paths = config.heartbeats.map(\.name)
        func lost(_ server: ServerName) -> Bool {
            server != me && !paths.contains { engine.heartbeatPathIsUp($0, of: server, now: time) }
        }
        let groups = config.groups.filter { group in
            group.servers.contains(me) && (directory.entries[group.name]?.owner.map(lost) ?? false)
        }
        guard !groups.isEmpty else { return }
        let drivers = resources
        Task.detached { await drivers.prepareTakeover(groups: groups) }
    }
}
