import UnderstudyModel

// When a daemon dies without saying goodbye (kill -9, a crash, the OOM killer), its keeper
// (Keeper.swift in the Node) fences at once what the daemon held on its server: it kills the
// processes the daemon spawned, removes the floating and virtual addresses, releases the disks.
// Without more, the peers learn of the death only from the silence: a heartbeat timeout plus
// the takeover margin later (0.15 s on the fast profile, 7 s on the recommended one).
//
// Once its fence is complete and checked, the keeper says so to the peers in an
// authenticated datagram naming the dead daemon's run (`ServerInstance`). A peer that hears
// it for the run it last heard of takes the server as down at once and as holding nothing:
// its groups fail over without waiting for the timeout, the margin or a ping probe (neither
// a loss to resolve nor a lease to wait out: nothing runs there any more). What the notice
// does not change: the majority still counts the server as lost (not as departed), a forced
// stop (`fencing:`) still follows the usual down confirmation, and a notice of another boot
// or run — late, replayed — changes nothing. A notice that does not arrive leaves the usual
// path: timeout, margin, probe.

extension ServerEngine {
    /// The keeper of `server`'s daemon says `instance` of it died and that it fenced what it held.
    mutating func peerDaemonDied(_ server: ServerName, instance: ServerInstance, now: EngineTime) {
        guard server != me, membership.noteDaemonDied(server, instance: instance) else { return }
        log(
            .peerDaemonDied,
            "The daemon of \(server) died (run \(instance)) and its keeper fenced what it held there: \(server) holds nothing, its groups fail over now."
        )
        heartbeatDirty = true
    }
}
