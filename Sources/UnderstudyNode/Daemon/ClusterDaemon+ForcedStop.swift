import Foundation
import UnderstudyEngine
import UnderstudyModel

// Forced stop (`fencing:`): the Engine orders a stop of a lost server (as master) and this
// runs the agents (Fencing/ForcedStopper.swift) and reports the end; every server checks the
// agents against its peers every `check-interval` and alerts when one stops or starts working.
extension ClusterDaemon {
    /// The stopper for the running configuration's `fencing:` section (nil without one).
    func currentForcedStopper() -> ForcedStopper? {
        guard let fencing = config.fencing else {
            forcedStopper = nil
            forcedStopperFencing = nil
            return nil
        }
        if let stopper = forcedStopper, forcedStopperFencing == fencing { return stopper }
        if let stopper = forcedStopper {
            forcedStopperFencing = fencing
            Task { await stopper.update(fencing) }
            return stopper
        }
        let folder = config.sourcePath.isEmpty ? nil : (config.sourcePath as NSString).deletingLastPathComponent
        let stopper = ForcedStopper(fencing: fencing, localServer: me, configFolder: folder, logger: logger, host: host)
        forcedStopper = stopper
        forcedStopperFencing = fencing
        return stopper
    }

    /// Carries out a forced stop through the agents and reports its end to the Engine.
    func forceStop(_ run: ForcedStopRun) {
        guard let stopper = currentForcedStopper() else {
            perform(
                engine.handle(
                    .forcedStopFinished(id: run.id, succeeded: false, detail: "no fencing: section in the running configuration"),
                    now: now()))
            return
        }
        Task {
            let outcome = await stopper.stop(run.server)
            let detail = outcome.agent.map { "\($0): \(outcome.detail)" } ?? outcome.detail
            self.perform(self.engine.handle(.forcedStopFinished(id: run.id, succeeded: outcome.succeeded, detail: detail), now: self.now()))
        }
    }

    /// Every `check-interval`: each agent against each peer it covers (mode 0). A change is
    /// alerted once (rc 414 failing, rc 415 working again); the results are kept for status.
    /// Reads the running configuration each round (an applied one takes effect at the next).
    func fencingCheckLoop() async {
        var checker: ForcedStopChecker?
        while !Task.isCancelled && !exitRequested {
            guard let stopper = currentForcedStopper(), let fencing = forcedStopperFencing, fencing.checkInterval > .zero else {
                checker = nil
                fencingChecks = []
                try? await Task.sleep(for: .seconds(5))
                continue
            }
            if checker == nil || checker?.stopper !== stopper {
                checker = ForcedStopChecker(stopper: stopper) { [weak self] change in await self?.fencingCheckChanged(change) }
            }
            let started = ContinuousClock.now
            let peers = config.serverNames.filter { $0 != me }
            if let checker {
                await checker.checkNow(peers: peers)
                fencingChecks = await checker.results
            }
            try? await Task.sleep(until: started + fencing.checkInterval, clock: .continuous)
        }
    }

    func fencingCheckChanged(_ change: ForcedStopChecker.Change) {
        let result = change.result
        if result.ok {
            record(
                LogEntry(
                    .forcedStopCheckRecovered,
                    "Fencing agent \(result.agent) can stop \(result.server) again (\(result.detail))."))
        } else {
            record(
                LogEntry(
                    .forcedStopCheckFailed,
                    "Fencing agent \(result.agent) could not stop \(result.server) now: \(result.detail). A forced stop of \(result.server) through it would fail."
                ))
        }
    }
}
