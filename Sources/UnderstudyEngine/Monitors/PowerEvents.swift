import UnderstudyModel

// Power events (the UPS guide, and issue 5's policy). A `upsw` monitor reads a UPS's state
// from NUT; the Engine decides:
//   on battery       → a warning; once it lasts `on-battery-grace`, the servers the UPS feeds
//                      shut down as with clpdown (`feeds: servers`), or the whole cluster as
//                      with clpstdn (`feeds: cluster`, a UPS of shared storage);
//   battery low/FSD  → the same, at once;
//   line power again → within the grace time, nothing happens (logged).
// Stop scripts see SERVERSHUTDOWN / CLUSTERSHUTDOWN with CLP_LASTACTION=HALT. Once the service
// has stopped, the Node sends the UPS its power-off command (power off after its delay, on
// again when line power returns), then runs the OS shutdown command. Unlike final actions,
// a power shutdown is neither suppressed when alone nor counted against max-reboots: without
// power the server stops anyway, cleanly or not.

extension ServerEngine {
    mutating func powerChanged(_ power: PowerState, monitor: MonitorConfig, now: EngineTime) {
        let ups = monitor.string("ups") ?? monitor.name
        let grace = monitor.duration("on-battery-grace") ?? .seconds(60)
        let cluster = monitor.string("feeds") == "cluster"
        let scope = cluster ? "the whole cluster" : me
        switch power {
        case .online:
            guard let since = monitoring.monitors[monitor.name]?.onBatterySince else { return }
            monitoring.monitors[monitor.name]?.onBatterySince = nil
            if !powerFailureMonitors.contains(monitor.name) {
                log(
                    .upsLinePowerReturned,
                    "Line power returned to UPS \(ups) (\(monitor.name)) after \((now - since).shortDescription) on battery; no shutdown.")
            }
        case .onBattery:
            guard let since = monitoring.monitors[monitor.name]?.onBatterySince else {
                monitoring.monitors[monitor.name]?.onBatterySince = now
                log(
                    .upsOnBattery,
                    "UPS \(ups) (\(monitor.name)) is on battery: \(scope) shuts down in \(grace.shortDescription) unless line power returns."
                )
                return
            }
            if now - since >= grace {
                powerShutdown(monitor, because: "UPS \(ups) has been on battery for \(grace.shortDescription)", now: now)
            }
        case .lowBattery:
            if monitoring.monitors[monitor.name]?.onBatterySince == nil { monitoring.monitors[monitor.name]?.onBatterySince = now }
            powerShutdown(monitor, because: "UPS \(ups) reports a low battery (or a forced shutdown)", now: now)
        }
    }

    mutating func powerShutdown(_ monitor: MonitorConfig, because reason: String, now: EngineTime) {
        guard !powerFailureMonitors.contains(monitor.name) else { return }
        powerFailureMonitors.append(monitor.name)
        let cluster = monitor.string("feeds") == "cluster"
        log(.powerFailureShutdown, "Power failure: \(reason); shutting down \(cluster ? "the whole cluster" : me).")
        if cluster {
            clusterStopRequested = true
            heartbeatDirty = true
        }
        if case .leaving(let factor, let lastAction, let then) = service {
            // Already stopping (clpdown, clpstdn, a final action): the OS still goes down.
            if case .os = then { return }
            service = .leaving(factor: factor, lastAction: lastAction, then: .os(.shutdown))
            log(.powerFailureAlreadyStopping, "The cluster service on \(me) was already stopping; the OS shuts down after it.")
            return
        }
        beginLeaving(factor: cluster ? .clusterShutdown : .serverShutdown, lastAction: .halt, then: .os(.shutdown), now: now)
    }
}
