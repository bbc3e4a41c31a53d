import Foundation
import Logging
import NIOCore
import UnderstudyEngine
import UnderstudyModel

#if canImport(Glibc)
    import Glibc
#endif

// Requests: local commands (clp*), peers' requests over the control channel, and the
// status snapshot.
extension ClusterDaemon {
    // MARK: - Requests

    /// The Engine's status plus this daemon's transport counters.
    func snapshot() -> ClusterStatusSnapshot {
        var status = engine.snapshot(now: now())
        status.service = reportedService(status.service)
        // httpnp: Normal while the witness answers (authenticated), Error when it does not.
        for probe in partitionProbes {
            guard let line = probe.lineStatus else { continue }
            for index in status.servers.indices where status.servers[index].isLocal {
                for np in status.servers[index].networkPartition.indices where status.servers[index].networkPartition[np].name == line.name
                {
                    status.servers[index].networkPartition[np].status = line.normal.map { $0 ? .normal : .error } ?? .unknown
                }
            }
        }
        var lines = transports.map { transport in
            let counters = transport.counters
            return ClusterStatusSnapshot.TransportLine(
                name: transport.path, accepted: counters.accepted,
                dropped: Dictionary(uniqueKeysWithValues: counters.dropped.map { ($0.key.rawValue, $0.value) }),
                sent: counters.sent, sendFailures: counters.sendFailures)
        }
        if let counters = controlCounters {
            lines.append(
                ClusterStatusSnapshot.TransportLine(
                    name: "control", accepted: counters.requestsServed,
                    dropped: Dictionary(uniqueKeysWithValues: counters.dropped.map { ($0.key.rawValue, $0.value) })))
        }
        status.transport = lines
        if status.fencing != nil {
            let checkedAt = Date()
            status.fencing?.checks = fencingChecks.map {
                ClusterStatusSnapshot.FencingLine.Check(
                    server: $0.server, agent: $0.agent, normal: $0.ok, detail: $0.detail,
                    secondsAgo: max(0, checkedAt.timeIntervalSince($0.time)))
            }
        }
        status.counters = counters.line(fences: fenceCounts, stalls: engine.stallCount, now: now())
        if var monitors = status.monitors {
            for index in monitors.indices { monitors[index].lastCheckMillis = counters.lastCheckMillis(monitors[index].name) }
            status.monitors = monitors
        }
        let destinations = alertRouter.lines
        status.alertDestinations = destinations.isEmpty ? nil : destinations
        addControlPaths(to: &status)
        let checks = monitorRunner.lateness.summary()
        let beats = heartbeatLateness.summary()
        let preparations = heartbeatPreparationLateness.summary()
        let micros = LatenessRecorder.micros
        status.runtime = ClusterStatusSnapshot.RuntimeLine(
            monitorChecks: UInt64(checks.count), monitorLatenessP50: micros(checks.p50), monitorLatenessP99: micros(checks.p99),
            monitorLatenessMax: micros(checks.max), heartbeats: UInt64(beats.count), heartbeatLatenessP50: micros(beats.p50),
            heartbeatLatenessP99: micros(beats.p99), heartbeatLatenessMax: micros(beats.max),
            heartbeatPreparationLatenessP99: micros(preparations.p99), heartbeatPreparationLatenessMax: micros(preparations.max))
        status.runtime?.lateHeartbeats = heartbeatLateness.lateSamples(over: .milliseconds(10)).map {
            ClusterStatusSnapshot.RuntimeLine.LateEvent(deadlineMonotonicNanos: $0.deadlineMonotonicNanos, latenessMicros: $0.micros)
        }
        return status
    }

    func handleLocal(_ request: LocalControlRequest) async -> [UInt8] {
        let decoded: LocalRequest
        do {
            decoded = try WireJSON.decode(LocalRequest.self, from: request.payload)
        } catch {
            return WireJSON.encode(LocalResponse.result(CommandResult(.badUsage, "unreadable request: \(error)")))
        }
        return WireJSON.encode(await self.request(decoded))
    }

    /// A request of the CLI (through the local socket) or of an in-process caller (the web
    /// server): both take this one path, so their answers and refusals are the same.
    public func request(_ decoded: LocalRequest) async -> LocalResponse {
        switch decoded {
        case .whoami:
            return LocalResponse.identity(server: me, cluster: config.cluster.name, servers: config.serverNames)
        case .logCommand(let request):
            return LocalResponse.result(logCommand(request))
        case .logCollection(let step, let target):
            return await logCollection(step, target: target)
        case .configApply(let bundle, let dryRun, let prepareOnly):
            let report = dryRun ? previewConfiguration(bundle) : await applyConfiguration(bundle, prepareOnly: prepareOnly)
            return LocalResponse.configApply(report)
        case .configCommit(let version):
            return LocalResponse.configApply(await commitConfiguration(version: version))
        case .configPull:
            let running = runningConfiguration()
            return LocalResponse.configuration(running.bundle, version: running.version, hash: running.hash)
        case .alerts(let target, let limit):
            guard target != me else { return LocalResponse.alerts(localAlertLines(limit: limit)) }
            switch await askPeer(target, .alerts(limit: limit)) {
            case .alerts(let lines): return LocalResponse.alerts(lines)
            case .result(let result): return LocalResponse.result(CommandResult(.unreachable, result.message))
            case .status, .configuration, .alertEntries, .logCollection, .heartbeatState:
                return LocalResponse.result(CommandResult(.failed, "unexpected answer from \(target)"))
            }
        case .clusterAlerts(let limit, let origin):
            return clusterAlerts(limit: limit, origin: origin)
        case .status(let target):
            if let target, target != me {
                switch await askPeer(target, .status) {
                case .status(let snapshot): return LocalResponse.status(snapshot)
                case .result(let result): return LocalResponse.result(CommandResult(.failed, result.message))
                case .configuration, .alerts, .alertEntries, .logCollection, .heartbeatState:
                    return LocalResponse.result(CommandResult(.failed, "unexpected answer from \(target)"))
                }
            }
            return LocalResponse.status(snapshot())
        case .command(let command, let rawTarget):
            // `-h` may name a server or one of its heartbeat addresses (clprexec -h IP).
            let target = rawTarget.map { Self.serverName(forNameOrAddress: $0, in: config) }
            if let target, target != me {
                guard config.server(named: target) != nil else {
                    return LocalResponse.result(CommandResult(.badUsage, "Unknown server \(target)."))
                }
                switch await askPeer(target, .command(command, origin: me, forwarded: false)) {
                case .result(let result) where result.code == .unreachable:
                    // Exit code 3 is reserved for the local daemon.
                    return LocalResponse.result(CommandResult(.failed, result.message))
                case .result(let result): return LocalResponse.result(result)
                case .status, .configuration, .alerts, .alertEntries, .logCollection, .heartbeatState:
                    return LocalResponse.result(CommandResult(.failed, "unexpected answer from \(target)"))
                }
            }
            return LocalResponse.result(await execute(command, origin: me, forwarded: false))
        }
    }

    /// The status as `clpstat` shows it on this server.
    public func statusSnapshot() -> ClusterStatusSnapshot { snapshot() }

    /// Counts a failed delivery of `destination` (`understudy_alert_destination_failures_total`);
    /// for the alert router.
    public func alertDestinationFailed(_ destination: String) { counters.alertDestinationFailed(destination) }

    /// Writes an entry to the alert log (and the daemon's log), e.g. for the web server's
    /// failed logins.
    public func recordAlert(_ entry: LogEntry) { record(entry) }

    /// Every alert-log line written from now on, until the stream is dropped.
    public func alertLines() -> AsyncStream<String> {
        let (stream, continuation) = AsyncStream<String>.makeStream(bufferingPolicy: .bufferingNewest(256))
        let id = nextAlertSubscriber
        nextAlertSubscriber += 1
        alertSubscribers[id] = continuation
        continuation.onTermination = { [weak self] _ in
            Task { await self?.dropAlertSubscriber(id) }
        }
        return stream
    }

    func dropAlertSubscriber(_ id: Int) { alertSubscribers[id] = nil }

    /// At most 5,000 lines: an answer must fit in one control frame.
    static let alertLinesLimit = 5000

    func localAlertLines(limit: Int) -> [String] {
        AlertLogFile.lastLines(path: alertLogPath, limit: min(max(limit, 0), Self.alertLinesLimit))
    }

    func handlePeer(_ request: ControlRequest) async -> [UInt8] {
        let decoded: PeerRequest
        do {
            decoded = try WireJSON.decode(PeerRequest.self, from: request.payload)
        } catch {
            return WireJSON.encode(PeerResponse.result(CommandResult(.badUsage, "unreadable request from \(request.peerName)")))
        }
        if let answer = answerConfiguration(decoded) { return WireJSON.encode(answer) }
        switch decoded {
        case .status:
            return WireJSON.encode(PeerResponse.status(snapshot()))
        case .command(let command, let origin, let forwarded):
            return WireJSON.encode(PeerResponse.result(await execute(command, origin: origin, forwarded: forwarded)))
        case .alerts(let limit):
            return WireJSON.encode(PeerResponse.alerts(localAlertLines(limit: limit)))
        case .alertSync, .alertPush:
            // Answered before the actor (`answerAlertExchange`).
            return Self.answerAlertExchange(request, alerts: clusterAlerts)
                ?? WireJSON.encode(PeerResponse.result(CommandResult(.badUsage, "unreadable request from \(request.peerName)")))
        case .logCollection(let step):
            return WireJSON.encode(PeerResponse.logCollection(await logCollectionHere(step)))
        case .heartbeatState:
            // Answered before the actor (`answerStateFetch`); only a malformed one gets here.
            return WireJSON.encode(PeerResponse.result(CommandResult(.badUsage, "unreadable request from \(request.peerName)")))
        case .configPrepare, .configCommit, .configAbort, .configFetch:
            return WireJSON.encode(PeerResponse.result(CommandResult(.failed, "unexpected request")))
        }
    }

    /// Runs a command here, or forwards it where the Engine says it belongs.
    func execute(_ command: ClusterCommand, origin: ServerName, forwarded: Bool) async -> CommandResult {
        // After an immediate stop of the machine that did not stop it, the daemon fences and
        // exits: nothing may start the service (or anything else) again meanwhile.
        guard !exitAsCrash else {
            return CommandResult(
                .failed, "\(me) is exiting after an immediate stop of the machine (fencing its groups); no command is taken.")
        }
        if case .runScript(let name, let seconds) = command {
            return await runRemoteScript(name, timeout: .seconds(max(1, seconds)), origin: origin)
        }
        let wasStopped = engine.service == .stopped
        let (disposition, actions) = engine.command(command, origin: origin, forwarded: forwarded, now: now())
        if wasStopped && engine.service != .stopped {
            // `clpcl -s`: the service runs again; an unclean end from now on is abnormal.
            markStarted()
        }
        perform(actions)
        switch disposition {
        case .done(let result):
            return result
        case .forward(let target):
            switch await askPeer(target, .command(command, origin: origin, forwarded: true)) {
            case .result(let result) where result.code == .unreachable:
                // The master (or the group's server) went away mid-request: membership is
                // changing; the operator retries.
                return CommandResult(.inTransition, "\(result.message) Membership is changing; retry in a moment.")
            case .result(let result): return result
            case .status, .configuration, .alerts, .alertEntries, .logCollection, .heartbeatState:
                return CommandResult(.failed, "unexpected answer from \(target)")
            }
        }
    }
}
