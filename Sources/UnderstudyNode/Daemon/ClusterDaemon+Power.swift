import Foundation
import Logging
import NIOCore
import UnderstudyEngine
import UnderstudyModel

#if canImport(Glibc)
    import Glibc
#endif

// Power and the OS: UPS power-off after a power failure, the watchdogs that catch a
// stalled shutdown, and the OS commands of final actions.
extension ClusterDaemon {
    /// After a power-failure stop, before the OS goes down: each UPS gets its monitor's
    /// `power-off-command` (NUT's `shutdown.return` by default: power off after the UPS's
    /// delay, on again when line power returns), so the servers come back with the power.
    func powerOffUPS(_ names: [String]) async {
        for name in names {
            guard let monitor = config.monitors.first(where: { $0.name == name }), let ups = monitor.string("ups") else { continue }
            let command = monitor.text("power-off-command")
            guard command != "none" else { continue }
            let password =
                monitor.string("password-file").flatMap { try? String(contentsOfFile: $0, encoding: .utf8) }?
                .split(separator: "\n", omittingEmptySubsequences: false).first.map(String.init) ?? ""
            let client = monitor.nutClient(timeout: .seconds(10))
            let user = monitor.text("user")
            let outcome = await BlockingCall().run(busy: Result<Void, NUTClient.Failure>.success(())) {
                client.instantCommand(command, ups: ups, user: user, password: password)
            }
            switch outcome {
            case .success:
                record(LogEntry(.upsPowerOffSent, "UPS \(ups) (\(name)) told to run \(command): it powers off after its delay."))
            case .failure(let failure):
                record(LogEntry(.upsPowerOffFailed, "UPS \(ups) (\(name)): \(command) failed: \(failure)."))
            }
        }
    }

    /// userw `method: softdog`: a stall of the daemon longer than the monitor's timeout resets
    /// the machine (and so does the daemon's death, as in the reference). Without a watchdog
    /// the stall is still seen in the daemon (the Engine's userw).
    func armStallWatchdog(_ monitor: MonitorConfig) {
        guard stallWatchdog == nil else { return }
        switch KernelWatchdog.arm(timeout: monitor.timeout) {
        case .success(let watchdog):
            stallWatchdog = watchdog
            record(
                LogEntry(
                    .kernelWatchdogArmed,
                    "Kernel watchdog armed for \(monitor.name): a stall of the daemon longer than \(watchdog.seconds > 0 ? "\(watchdog.seconds) s" : "the driver's margin") resets the machine."
                ))
        case .failure(let failure):
            record(
                LogEntry(
                    .kernelWatchdogUnavailable, "\(monitor.name): \(failure); stalls are detected inside the daemon only (method none)."))
        }
    }

    /// `cluster.shutdown-monitor.method: softdog`: a hung OS shutdown resets the machine.
    func armShutdownWatchdog() {
        let settings = config.cluster.shutdownMonitor
        guard settings.method == .softdog else { return }
        let timeout: Duration
        switch settings.timeout {
        case .heartbeat: timeout = config.cluster.timing.heartbeatTimeout
        case .duration(let value): timeout = value
        }
        switch KernelWatchdog.arm(timeout: timeout) {
        case .success(let watchdog):
            shutdownWatchdog = watchdog
            let limit = watchdog.seconds > 0 ? "\(watchdog.seconds) s" : "the driver's own margin (the timeout was refused)"
            record(
                LogEntry(
                    .shutdownWatchdogArmed,
                    "Shutdown-stall watchdog armed: the machine resets if the OS shutdown takes longer than \(limit)."))
        case .failure(let failure):
            record(LogEntry(.shutdownWatchdogFailed, "Shutdown-stall watchdog not armed: \(failure)."))
        }
    }

    /// Final actions that stop the OS run the configured OS-control command.
    func runOSCommand(_ action: OSAction) {
        let command = config.cluster.osCommands[action.rawValue] ?? config.cluster.osCommands.shutdown
        guard let executable = command.first else { return }
        record(
            LogEntry(
                action == .reboot ? .osReboot : .osShutdown, "Running the OS \(action.rawValue) command: \(command.joined(separator: " "))")
        )
        do {
            try SpawnedProcess.spawn(command, output: .inherit, error: .inherit).waitForExit()
        } catch {
            logger.critical("OS \(action.rawValue) command \(executable) failed: \(error)")
        }
    }

    /// The longest an immediate stop of the machine may take before the daemon concludes the
    /// OS still runs (half the heartbeat timeout when that is shorter).
    static let machineStopLimit: Duration = .seconds(10)

    /// Panic, reset, keepalive-reset, bmc-*: the Engine has stopped without stopping any
    /// group (`EngineAction.stopMachineNow`). The command runs at once, right here on the
    /// actor: nothing else of this daemon runs meanwhile (no heartbeat, no script), so peers
    /// see a lost server. In production it does not return (the machine is gone, or the
    /// BMC takes it a moment later). If it returns, or runs longer than `machineStopLimit`
    /// (or half the heartbeat timeout), the OS still runs with the resources on it:
    /// every group of this server is fenced at once and the daemon exits without clearing
    /// the abnormal-stop marker and without dismissing the keeper, which fences again.
    func stopMachine(_ os: OSAction) {
        let command = config.cluster.osCommands[os.rawValue] ?? []
        logger.critical("stopping the machine at once (\(os.rawValue)): \(command.joined(separator: " "))")
        // The state of this step (the reboot count) is on disk before the machine goes.
        stateWriter.drainBlocking()
        var outcome = "no command configured"
        // Bounded: a command that neither stops the machine nor returns (a BMC that does not
        // answer, a watchdog that does not fire) must not keep the resources running here
        // while the peers, hearing nothing, take the groups over after the heartbeat timeout.
        let limit = min(config.cluster.timing.heartbeatTimeout / 2, Self.machineStopLimit)
        if !command.isEmpty {
            do {
                let process = try SpawnedProcess.spawn(command, output: .inherit, error: .inherit)
                if let code = process.waitForExit(within: limit) {
                    outcome = "the command returned with status \(code)"
                } else {
                    // Left running: it may still be what stops the machine (a held watchdog).
                    outcome = "the command has not stopped the machine within \(limit)"
                }
            } catch {
                outcome = "the command could not run: \(error)"
            }
        }
        logger.critical("the OS still runs after \(os.rawValue) (\(outcome)): fencing every group of \(me) and exiting as after a crash")
        perform(engine.machineStillRuns(after: os, now: now()))
        exitAsCrash = true
        let groups = config.groups.filter { $0.servers.contains(me) }
        let resources = resources
        let server = me
        Task {
            for group in groups {
                for task in resources.fence(group: group, server: server) { _ = await task.value }
            }
            self.requestExit()
        }
    }
}
