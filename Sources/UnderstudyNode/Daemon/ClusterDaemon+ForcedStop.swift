import UnderstudyEngine
import UnderstudyModel

extension ClusterDaemon {
    /// Carries out a forced stop through the `fencing:` agents and reports its end to the Engine.
    func forceStop(_ run: ForcedStopRun) {
        // Until the agents are wired in, every forced stop fails: failover stays cancelled
        // (the safe side) and the alert says why.
        perform(
            engine.handle(
                .forcedStopFinished(id: run.id, succeeded: false, detail: "this build has no fencing agent runner"), now: now()))
    }
}
