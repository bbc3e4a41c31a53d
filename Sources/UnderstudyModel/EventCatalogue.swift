/// How serious a logged event is (the alert log's INFO, WARN, ERROR).
public enum LogLevel: String, Sendable, Codable, Equatable {
    case info = "INFO"
    case warning = "WARN"
    case error = "ERROR"
}

/// One kind of event the cluster reports, in the alert log and the system log (and the alert
/// destinations built on them): its module and id as in CLUSTERPRO (`rc 64`), its usual level
/// and what it means. Every logged event is one of `EventKind.all`; docs/operations.md's event
/// table is this list (EventCatalogueTests keeps them equal).
public struct EventKind: Sendable, Hashable, CustomStringConvertible {
    public let module: String
    public let id: Int
    public let level: LogLevel
    public let meaning: String

    init(_ module: String, _ id: Int, _ level: LogLevel, _ meaning: String) {
        self.module = module
        self.id = id
        self.level = level
        self.meaning = meaning
    }

    public var description: String { "\(module) \(id)" }

    public static func == (a: EventKind, b: EventKind) -> Bool { a.module == b.module && a.id == b.id }
    public func hash(into hasher: inout Hasher) {
        hasher.combine(module)
        hasher.combine(id)
    }
}

extension EventKind {
    // MARK: cl

    public static let clusterStopRequested = EventKind(
        "cl", 2, .info, "a cluster stop was requested (`clpstdn`, `clpcl -t -a`, or a UPS feeding the shared storage ran out of power)")
    public static let clusterSuspended = EventKind(
        "cl", 3, .info, "the cluster was suspended (`clpcl --suspend`): monitoring and failover stop, groups keep running")
    public static let clusterResumed = EventKind("cl", 4, .info, "the cluster was resumed (`clpcl --resume`)")
    public static let clusterStopOver = EventKind(
        "cl", 5, .info, "a cluster stop is over (no server is stopping any more): groups are placed again")
    public static let timeoutRatioChanged = EventKind(
        "cl", 20, .info,
        "the timeout ratio changed (`clptoratio`, or its time ran out): heartbeat and monitor timeouts are the configured ones times the ratio"
    )
    public static let autoStartSuppressed = EventKind(
        "cl", 18, .warning, "a server whose cluster service stopped abnormally does not start groups on its own until an operator does")
    public static let autoStartSuppressionLifted = EventKind(
        "cl", 19, .info, "automatic group start is allowed again on a server (an operator started a group there)")
    // MARK: lanhb
    // CLUSTERPRO keeps lanhb/diskhb/comhb 71–73 for its delay warnings, and reports a heartbeat
    // or NP resource going down or up as nm 4 / nm 3: these ids stay clear of both.

    public static let heartbeatPathReopening = EventKind(
        "lanhb", 10, .warning, "a heartbeat path's socket closed after an error and is bound again")
    public static let heartbeatPathReopenFailed = EventKind("lanhb", 11, .error, "a heartbeat path's socket could not be bound again")
    public static let heartbeatTooLarge = EventKind("lanhb", 12, .error, "this server's heartbeat is larger than a datagram can carry")
    public static let heartbeatKeyMismatch = EventKind(
        "lanhb", 13, .error,
        "heartbeats from a configured server's address fail authentication: that server runs with another cluster key (or its address is forged); said once per server"
    )
    public static let heartbeatSendFailing = EventKind(
        "lanhb", 14, .warning,
        "this server's heartbeats on a LAN path cannot be sent (a socket error such as a firewall's EPERM, no route, a name that does not resolve): the peers stop hearing it there; said once until they are sent again"
    )
    public static let heartbeatSendRecovered = EventKind(
        "lanhb", 15, .info, "this server's heartbeats on a LAN path are sent again after failing")
    // MARK: nm

    public static let serverUp = EventKind("nm", 1, .info, "a server's heartbeats are heard: it is up")
    public static let serverDown = EventKind("nm", 2, .warning, "a server's heartbeats stopped for longer than the timeout: it is down")
    public static let heartbeatResourceUp = EventKind(
        "nm", 3, .info, "a disk, serial or witness heartbeat path, or the witness of an httpnp resolution, works again")
    public static let heartbeatResourceDown = EventKind(
        "nm", 4, .warning,
        "a disk heartbeat cannot use its device (gone, I/O errors, no header, an I/O that does not return), a serial line cannot be used (gone, hung up, errors), or a witness (witnesshb, httpnp) cannot be reached or does not authenticate; retried every interval; while a server is missing, an httpnp server that cannot reach its witness loses"
    )
    public static let syncWaitStarted = EventKind("nm", 5, .info, "the cluster service waits for every server to start (the sync wait)")
    public static let allServersStarted = EventKind("nm", 6, .info, "every server has started")
    public static let syncWaitExpired = EventKind(
        "nm", 7, .warning, "the sync wait ended; the servers that did not start are treated as down")
    public static let clusterNotFounded = EventKind(
        "nm", 8, .error, "servers that stopped cleanly wait for the server they left running, which is not heard")
    public static let survivorForgotten = EventKind(
        "nm", 9, .warning, "an operator told this server to stop waiting for a server it left running (`clpcl --forget`)")
    public static let peerUnauthenticated = EventKind(
        "nm", 12, .error,
        "a server is present (its heartbeat address sends datagrams) but they fail authentication: it is not judged down and its groups are not taken over while they keep coming"
    )
    public static let peerStateUnavailable = EventKind(
        "nm", 13, .error,
        "a server's heartbeats arrive but its state (group reports, directory) cannot be fetched over the control channel: it is not judged down and its groups are not taken over while they keep coming"
    )
    public static let becameMaster = EventKind("nm", 10, .info, "this server became the master server")
    public static let directoryOffered = EventKind(
        "nm", 11, .info, "a new master's directory misses a decision this server knows: this server offers its own")
    public static let partitionLost = EventKind(
        "nm", 30, .error,
        "this server is on the losing side of a network partition, or stalled beyond its lease: it stops its groups at once")
    public static let stallLeaseExpired = EventKind(
        "nm", 31, .warning, "this server did not run for longer than its lease: it acts on nothing until its peers vouch for it")
    public static let stallVouched = EventKind(
        "nm", 32, .info, "every peer judged this server up throughout its stall: it keeps its groups")
    public static let connectivityRegained = EventKind("nm", 36, .info, "this server has the majority or reaches the ping targets again")
    public static let pingTargetsUnreachable = EventKind("nm", 37, .error, "no ping target answers this server")
    public static let configurationMismatch = EventKind("nm", 80, .warning, "a server runs a different configuration file (another hash)")
    public static let configurationOutsider = EventKind(
        "nm", 81, .error,
        "this server joined with another configuration than its master's: it is never master and runs no group until it has the cluster's")
    public static let configurationRejoined = EventKind(
        "nm", 82, .info, "this server runs its master's configuration again and takes part in placement")
    public static let peerDaemonDied = EventKind(
        "nm", 83, .warning,
        "a server's daemon died (kill -9, crash) and its keeper fenced everything it held there: it holds nothing, its groups fail over at once")
    // MARK: cfmgr

    public static let configurationApplied = EventKind(
        "cfmgr", 1, .info, "a new configuration version runs on this server (applied online)")
    public static let configurationStaged = EventKind(
        "cfmgr", 2, .info, "a new configuration version is stored as pending on this server (phase 1 of an apply)")
    public static let configurationApplyRefused = EventKind(
        "cfmgr", 3, .warning, "an apply was refused or abandoned before any server switched (the reason names the method it needs)")
    public static let configurationFetched = EventKind(
        "cfmgr", 4, .info, "this server fetched the cluster's newer configuration from a peer")
    public static let configurationFetchFailed = EventKind(
        "cfmgr", 5, .error, "this server could not take the cluster's newer configuration (the reason says why and what to do)")
    // MARK: pm

    public static let serviceStarting = EventKind("pm", 1, .info, "the cluster service is starting on this server")
    public static let serviceStopping = EventKind("pm", 2, .info, "the cluster service is stopping on this server")
    public static let serviceStopped = EventKind(
        "pm", 3, .info,
        "the cluster service stopped on this server (a warning when a group stuck in failure makes it leave without a farewell)")
    public static let osShutdown = EventKind(
        "pm", 23, .warning, "the OS shutdown command runs (a final action, `clpdown`, `clpstdn`, a power failure)")
    public static let osReboot = EventKind("pm", 24, .warning, "the OS reboot command runs")
    public static let shutdownWatchdogArmed = EventKind(
        "pm", 25, .warning, "the shutdown-stall watchdog is armed: the machine resets if the OS shutdown stalls")
    public static let shutdownWatchdogFailed = EventKind("pm", 26, .error, "the shutdown-stall watchdog could not be armed")
    public static let machineStopNow = EventKind(
        "pm", 27, .error,
        "the machine is stopped at once (panic, reset, keepalive-reset, bmc-*): no stop scripts, peers see a lost server")
    public static let machineStillRuns = EventKind(
        "pm", 28, .error,
        "the OS still runs after an immediate stop of the machine: every group is fenced and the daemon exits as after a crash")
    // MARK: rc

    public static let groupStarting = EventKind(
        "rc", 10, .info, "a group start was requested, or a group is being activated on this server")
    public static let groupStarted = EventKind(
        "rc", 11, .info, "a group is online on this server (a warning when some of its resources failed)")
    public static let groupActivationFailed = EventKind("rc", 12, .error, "a group failed to activate on this server")
    public static let groupReactivating = EventKind("rc", 13, .warning, "a monitor's recovery restarts a group on this server")
    public static let resourceReactivating = EventKind(
        "rc", 14, .warning, "a monitor's recovery restarts a resource (and the resources depending on it)")
    public static let failoverRequested = EventKind(
        "rc", 15, .warning, "this server asks the master to fail a group over (monitor recovery)")
    public static let stopRequested = EventKind("rc", 16, .warning, "this server asks the master to stop a group (monitor final action)")
    public static let groupRestarting = EventKind("rc", 17, .info, "a group starts again after its reactivation stop")
    public static let groupStartWaiting = EventKind(
        "rc", 18, .warning, "a group waits to start here while another server still reports it active")
    public static let groupStopping = EventKind("rc", 20, .info, "a group stop was requested, or a group is being stopped on this server")
    public static let groupStopped = EventKind("rc", 21, .info, "a group stopped on this server")
    public static let groupStopFailed = EventKind("rc", 22, .error, "a group failed to stop on this server and stays in failure")
    public static let groupStopWaiting = EventKind("rc", 25, .info, "a group waits for the groups it must stop after (`stop-after`)")
    public static let groupStopWaitOver = EventKind("rc", 26, .info, "the groups a group waited for have stopped: it stops now")
    public static let groupStopWaitTimedOut = EventKind(
        "rc", 27, .warning, "the groups a group waited for did not stop in time: it stops anyway")
    public static let groupStopCancelled = EventKind("rc", 28, .info, "a group no longer stops: it is wanted here again")
    public static let forcedStopStarted = EventKind(
        "rc", 410, .warning, "the master stops a lost server through the fencing agents before its groups fail over (forced stop)")
    public static let forcedStopDelayed = EventKind(
        "rc", 411, .info, "the master waits the fencing delay before stopping a lost server that ranks above it")
    public static let forcedStopSucceeded = EventKind("rc", 412, .info, "a forced stop succeeded: the lost server's groups fail over")
    public static let forcedStopFailed = EventKind("rc", 413, .error, "a forced stop failed: every agent failed or timed out")
    public static let forcedStopCheckFailed = EventKind(
        "rc", 414, .error, "the periodic check of a fencing agent failed: it could not stop that server now")
    public static let forcedStopCheckRecovered = EventKind("rc", 415, .info, "the periodic check of a fencing agent works again")
    public static let failoverCancelledByForcedStop = EventKind(
        "rc", 433, .error,
        "failover of a lost server's groups is cancelled because its forced stop failed (tried again every retry interval), or goes on anyway with on-failure failover"
    )
    public static let resourceActivated = EventKind("rc", 31, .info, "a resource is active on this server")
    public static let resourceActivationFailed = EventKind("rc", 32, .error, "a resource failed to activate on this server")
    public static let resourceDeactivated = EventKind("rc", 41, .info, "a resource stopped on this server")
    public static let resourceDeactivationFailed = EventKind("rc", 42, .error, "a resource failed to stop on this server")
    public static let groupFenced = EventKind(
        "rc", 46, .warning, "a group was fenced on this server: its processes killed and addresses removed without scripts")
    public static let groupMoveRequested = EventKind("rc", 50, .info, "a group move was requested (`clpgrp -m`)")
    public static let groupFailingOver = EventKind("rc", 60, .warning, "the master fails a group over from a lost or leaving server")
    public static let groupPlaced = EventKind("rc", 64, .info, "the master sends a group to a server")
    public static let groupUnplaceable = EventKind(
        "rc", 65, .error, "no server can run a group now (a warning when its failover is manual or the cluster is stopping)")
    public static let groupFailingBack = EventKind("rc", 75, .info, "the master fails a group back to a better server (`failback: auto`)")
    public static let resourceActivationRetry = EventKind("rc", 80, .info, "a resource's activation is retried")
    public static let resourceStartFailed = EventKind("rc", 85, .error, "a resource started alone (`clprsc -s`) failed")
    public static let resourceStopFailed = EventKind("rc", 87, .error, "a resource stopped alone (`clprsc -t`) failed")
    public static let finalActionRebootLimit = EventKind(
        "rc", 100, .warning, "a final action that reboots is skipped: the reboot limit is reached")
    public static let rebootCountReset = EventKind(
        "rc", 101, .info,
        "the count of reboots by final actions was reset after a time without errors, or cleared by an operator (`clpregctrl --clear`)")
    public static let failoverCounterReset = EventKind(
        "rc", 102, .info, "an operator reset a group's activation-failover counter (`clprsc --reset`)")
    public static let activationFinalAction = EventKind("rc", 200, .warning, "the final action after a group's activation failure runs")
    public static let activationFailover = EventKind("rc", 201, .warning, "a group fails over after an activation failure")
    public static let activationFailoverExhausted = EventKind(
        "rc", 202, .error, "an activation failed and no failover is left: the final action follows")
    public static let monitorFailover = EventKind("rc", 203, .warning, "the master fails a group over because of a monitor error")
    public static let monitorStopGroup = EventKind("rc", 204, .warning, "the master stops a group as a monitor's final action")
    public static let deactivationFinalAction = EventKind("rc", 220, .warning, "the final action after a group's deactivation failure runs")
    public static let finalActionSuppressed = EventKind("rc", 500, .warning, "a final action is suppressed: no other server is alive")
    // MARK: rm

    public static let monitorStarted = EventKind("rm", 1, .info, "a monitor started on this server")
    public static let monitorStopped = EventKind("rm", 2, .info, "a monitor stopped on this server")
    public static let monitorWarning = EventKind("rm", 4, .warning, "a monitor reports a warning (Caution)")
    public static let monitorCheckRetry = EventKind("rm", 8, .info, "a monitor's check failed; it retries before reporting an error")
    public static let monitorError = EventKind("rm", 9, .error, "a monitor detected an error")
    public static let recoveryStep = EventKind(
        "rm", 10, .warning, "a monitor's recovery takes its next step (script, reactivation, failover, final action)")
    public static let finalActionNone = EventKind("rm", 11, .warning, "a monitor's final action is no operation")
    public static let recoveryScriptFailedContinuing = EventKind(
        "rm", 12, .warning, "a recovery script failed; the recovery goes on with its step")
    public static let recoveryScriptOutcome = EventKind("rm", 13, .warning, "a recovery script ended with an error")
    public static let noFailoverTarget = EventKind(
        "rm", 23, .warning, "no other server can take over for a monitor: the recovery goes on to the final action")
    public static let recoveryExhausted = EventKind(
        "rm", 24, .warning, "a monitor's recovery has taken every step (`clpmonctrl -c` clears the counters)")
    public static let recoveryNotRun = EventKind(
        "rm", 25, .warning, "a monitor's recovery is not run: the service is not running normally, or the target is not active here")
    public static let monitorNormal = EventKind("rm", 26, .info, "a monitor returned to normal")
    public static let recoveryGroupBusy = EventKind("rm", 28, .warning, "a monitor's recovery is not run: its group is in transition")
    public static let monitorSuspended = EventKind("rm", 29, .info, "a monitor was suspended (`clpmonctrl -s`)")
    public static let monitorResumed = EventKind(
        "rm", 31, .info, "a monitor was resumed, or is no longer suspended because its target stopped")
    public static let dummyFailureOn = EventKind("rm", 33, .warning, "a dummy failure was enabled for a monitor")
    public static let dummyFailureOff = EventKind("rm", 34, .info, "a dummy failure was disabled for a monitor")
    public static let externalErrorReported = EventKind(
        "rm", 35, .warning, "an error was reported to an mrw monitor from outside (`clprexec --notice`)")
    public static let externalErrorCleared = EventKind(
        "rm", 36, .info, "an external error of an mrw monitor was cleared (`clprexec --clear`)")
    public static let monitorWarningCleared = EventKind("rm", 49, .info, "a monitor returned from a warning to normal")
    public static let recoveryCountersReset = EventKind(
        "rm", 50, .info, "a monitor's recovery counters were reset (normal long enough, or `clpmonctrl -c`)")
    public static let monitorDelayed = EventKind("rm", 71, .warning, "a monitor's check took longer than its delay warning threshold")
    public static let keeperRestarted = EventKind("rm", 141, .warning, "the keeper process died and is started again")
    public static let internalMonitorFailed = EventKind(
        "rm", 143, .error, "a helper of the daemon failed for good: the configured action follows")
    public static let upsOnBattery = EventKind(
        "rm", 160, .warning, "a UPS runs on battery: a shutdown follows unless line power returns in time")
    public static let upsLinePowerReturned = EventKind("rm", 161, .info, "line power returned to a UPS before its grace time ended")
    public static let powerFailureShutdown = EventKind("rm", 162, .error, "a power failure shuts this server or the whole cluster down")
    public static let powerFailureAlreadyStopping = EventKind(
        "rm", 163, .warning, "a power failure while the service was already stopping: the OS shuts down after it")
    public static let upsPowerOffSent = EventKind(
        "rm", 164, .warning, "a UPS was told to power off after its delay (and on again with line power)")
    public static let upsPowerOffFailed = EventKind("rm", 165, .error, "a UPS power-off command failed")
    public static let kernelWatchdogArmed = EventKind("rm", 166, .info, "a kernel watchdog was armed for userw's stall detection")
    public static let kernelWatchdogDisarmed = EventKind("rm", 167, .info, "userw's kernel watchdog was disarmed")
    public static let kernelWatchdogUnavailable = EventKind(
        "rm", 168, .warning, "userw's kernel watchdog could not be armed: stalls are detected inside the daemon only")
    public static let recoveryDisabled = EventKind(
        "rm", 190, .warning, "a monitor's recovery is not run: recovery is disabled for the cluster")
    public static let recoveryNotOnTimeout = EventKind(
        "rm", 193, .warning, "a monitor's recovery is not run: the error was a timeout (`recover-on-timeout: false`)")
    // MARK: trnsv

    public static let rexecRefused = EventKind(
        "trnsv", 1, .warning,
        "a request from outside the cluster (`clprexec --client`) was refused: unknown client, wrong client key, or a request the client is not allowed (once per client and reason)"
    )
    public static let rexecClientKeyUnusable = EventKind(
        "trnsv", 2, .error,
        "the key file of a client of `cluster.rexec-clients` cannot be used (missing, unreadable, open to others, or the cluster key): its requests are refused"
    )
    public static let remoteScriptRunning = EventKind(
        "trnsv", 30, .info, "a script runs on request of another server (`clprexec --script`)")
    public static let remoteScriptFailed = EventKind("trnsv", 31, .warning, "a script run on request of another server failed")
    public static let controlListenFailed = EventKind(
        "trnsv", 80, .warning,
        "the control channel cannot listen on one of this server's LAN heartbeat addresses (not the first); it keeps trying")
    public static let controlListening = EventKind(
        "trnsv", 81, .info, "the control channel now listens on a LAN heartbeat address it could not bind before")
    public static let controlPathChanged = EventKind(
        "trnsv", 82, .info,
        "requests to a server now take another LAN path (the path before failed, or a preferred path works again)")

    /// Every event, by module and id.
    // MARK: webmgr, apisv

    public static let webListening = EventKind("webmgr", 1, .info, "the web server (REST API) listens on an address and port")
    public static let webListenFailed = EventKind(
        "webmgr", 21, .error, "the web server cannot listen (port taken, certificate or key unreadable); it retries every 5 s")
    public static let webLoginFailed = EventKind(
        "apisv", 101, .warning, "a login to the web server or REST API failed (user and client address; never the password)")
    public static let webLoginThrottled = EventKind(
        "apisv", 102, .warning, "logins from a client address are refused for a while after repeated failures")
    public static let webOperation = EventKind(
        "apisv", 1, .info, "an operation was requested through the REST API (user, client address, operation, result)")

    // MARK: alert, logcmd

    public static let alertDestinationFailing = EventKind(
        "alert", 1, .error,
        "an alert destination (syslog, mail, SNMP trap, webhook, command) failed to take an alert after every retry; said once until it works again"
    )
    public static let alertDestinationRecovered = EventKind("alert", 2, .info, "an alert destination that was failing took an alert again")
    public static let logCommand = EventKind(
        "logcmd", 1, .info, "a message written with `clplogcmd` (its id and level are the caller's: `-i`, `-l`)")

    public static let all: [EventKind] = [
        .clusterStopRequested, .clusterSuspended, .clusterResumed, .clusterStopOver, .timeoutRatioChanged, .autoStartSuppressed,
        .autoStartSuppressionLifted, .heartbeatPathReopening, .heartbeatPathReopenFailed, .heartbeatTooLarge, .heartbeatKeyMismatch,
        .heartbeatSendFailing, .heartbeatSendRecovered,
        .serverUp,
        .serverDown, .heartbeatResourceUp, .heartbeatResourceDown, .syncWaitStarted, .allServersStarted, .syncWaitExpired,
        .clusterNotFounded, .survivorForgotten,
        .peerUnauthenticated, .peerStateUnavailable, .becameMaster, .directoryOffered, .partitionLost, .stallLeaseExpired, .stallVouched,
        .connectivityRegained,
        .pingTargetsUnreachable, .configurationMismatch, .configurationOutsider, .configurationRejoined, .peerDaemonDied, .configurationApplied,
        .configurationStaged, .configurationApplyRefused, .configurationFetched, .configurationFetchFailed, .serviceStarting,
        .serviceStopping, .serviceStopped, .osShutdown,
        .osReboot, .shutdownWatchdogArmed, .shutdownWatchdogFailed, .machineStopNow, .machineStillRuns, .groupStarting, .groupStarted,
        .groupActivationFailed,
        .groupReactivating, .resourceReactivating, .failoverRequested, .stopRequested, .groupRestarting, .groupStartWaiting,
        .groupStopping, .groupStopped, .groupStopFailed, .groupStopWaiting, .groupStopWaitOver, .groupStopWaitTimedOut,
        .groupStopCancelled, .resourceActivated, .resourceActivationFailed, .resourceDeactivated, .resourceDeactivationFailed,
        .forcedStopStarted, .forcedStopDelayed, .forcedStopSucceeded, .forcedStopFailed, .forcedStopCheckFailed,
        .forcedStopCheckRecovered, .failoverCancelledByForcedStop,
        .groupFenced, .groupMoveRequested, .groupFailingOver, .groupPlaced, .groupUnplaceable, .groupFailingBack,
        .resourceActivationRetry, .resourceStartFailed, .resourceStopFailed, .finalActionRebootLimit, .rebootCountReset,
        .failoverCounterReset, .activationFinalAction, .activationFailover, .activationFailoverExhausted, .monitorFailover,
        .monitorStopGroup,
        .deactivationFinalAction, .finalActionSuppressed, .monitorStarted, .monitorStopped, .monitorWarning,
        .monitorCheckRetry, .monitorError, .recoveryStep, .finalActionNone, .recoveryScriptFailedContinuing,
        .recoveryScriptOutcome, .noFailoverTarget, .recoveryExhausted, .recoveryNotRun, .monitorNormal, .recoveryGroupBusy,
        .monitorSuspended, .monitorResumed, .dummyFailureOn, .dummyFailureOff, .externalErrorReported, .externalErrorCleared,
        .monitorWarningCleared, .recoveryCountersReset, .monitorDelayed, .keeperRestarted, .internalMonitorFailed,
        .upsOnBattery, .upsLinePowerReturned, .powerFailureShutdown, .powerFailureAlreadyStopping, .upsPowerOffSent,
        .upsPowerOffFailed, .kernelWatchdogArmed, .kernelWatchdogDisarmed, .kernelWatchdogUnavailable, .recoveryDisabled,
        .recoveryNotOnTimeout, .rexecRefused, .rexecClientKeyUnusable, .remoteScriptRunning, .remoteScriptFailed, .controlListenFailed,
        .controlListening,
        .controlPathChanged, .webListening, .webListenFailed, .webLoginFailed, .webLoginThrottled, .webOperation,
        .alertDestinationFailing, .alertDestinationRecovered, .logCommand,
    ]

    /// The modules of the catalogue, in first-seen order.
    public static var modules: [String] {
        var seen: [String] = []
        for event in all where !seen.contains(event.module) { seen.append(event.module) }
        return seen
    }

    /// The Markdown table of every event, as docs/operations.md lists them.
    /// docs/alerts.md's event table: each event with where it goes without an `alerts:`
    /// section (`AlertSettings.implicit`).
    public static var markdownTable: String {
        var lines = ["| event | level | meaning | default destinations |", "|---|---|---|---|"]
        for event in all {
            let destinations = ["alert log"] + AlertSettings.implicit.destinations(module: event.module, id: event.id, level: event.level)
            lines.append(
                "| `\(event.module) \(event.id)` | \(event.level.rawValue) | \(event.meaning) | \(destinations.joined(separator: ", ")) |")
        }
        return lines.joined(separator: "\n")
    }
}
