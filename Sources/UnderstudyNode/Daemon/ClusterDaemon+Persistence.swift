import Foundation
import UnderstudyEngine

// The daemon's durable state goes through `stateWriter` (StateWriter.swift): the Engine's
// state and the abnormal-stop marker's changes are written on the writer's thread, in the
// order the actor asked for them, never on the actor (an fsync must not delay a heartbeat).
// Where the order against the outside world matters, the daemon waits for the writer:
// - a resource run starts once the state queued before it is on disk (startRun);
// - a stop that ends the process (`exitProcess`), an OS shutdown or reboot after the service
//   stopped, and an immediate stop of the machine (stopMachine, which blocks the actor on
//   purpose: nothing else may run first) happen once everything queued is on disk;
// - `run()` drains the writer before it returns, whatever ended the daemon.
// - a heartbeat made after a state was queued goes out once that state is on disk
//   (`sendWhenDurable`): a peer never hears of a directory, term or epoch that a crash could
//   make this server forget (it could otherwise found a cluster again with a term it had
//   announced). A heartbeat made while nothing new is queued is sent at once: a slow disk
//   delays only the heartbeats that announce what it is writing, and the actor never waits.
extension ClusterDaemon {
    func persist(_ state: PersistentState) {
        let store = store
        lastPersistTicket = stateWriter.submit("the Engine state (engine.json) in \(paths.stateDirectory)", replaceable: true) {
            try store.save(state, name: "engine")
        }
    }

    /// Sends `payload` once the state queued when it was made (`ticket`) is on disk.
    func sendWhenDurable(_ payload: [UInt8], after ticket: StateWriter.Ticket?, at deadline: ContinuousClock.Instant? = nil) async {
        if let ticket, !stateWriter.hasWritten(ticket) { await stateWriter.waitUntilWritten(ticket) }
        await send(payload, at: deadline)
    }

    /// The service runs (again): an unclean end from now on is abnormal.
    func markStarted() {
        let marker = marker
        stateWriter.submit("the running marker in \(paths.stateDirectory)", replaceable: false) {
            try marker.markStarted()
        }
    }

    /// The service stopped cleanly. Until this is on disk, status says the service is still
    /// stopping (`reportedService`): `clpcl -t` returns once the stop is durable.
    func markCleanStop() {
        let marker = marker
        cleanStopTicket = stateWriter.submit("the removal of the running marker in \(paths.stateDirectory)", replaceable: false) {
            try marker.markCleanStop()
        }
    }

    /// The service as status reports it: "stopped" only once the stop is on disk.
    func reportedService(_ engineService: String) -> String {
        guard engineService == "stopped", let ticket = cleanStopTicket, !stateWriter.hasWritten(ticket) else { return engineService }
        return "stopping"
    }
}
