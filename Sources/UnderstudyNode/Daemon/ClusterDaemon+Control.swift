import Foundation
import Logging
import NIOCore
import UnderstudyEngine
import UnderstudyModel

// The control channel over every LAN path (see ControlPaths.swift): a control server on each
// of this server's LAN heartbeat addresses, and requests to peers that fail over between
// their paths.
extension ClusterDaemon {
    // MARK: - Listening

    /// Binds a control server on this server's address of every `lanhb` path (each address
    /// once). The first must bind, as before: a daemon that cannot listen on its first address
    /// is misconfigured or runs twice. Any other is retried in the background until it binds
    /// (`trnsv 80`, then `trnsv 81`): an interconnect whose address is configured later than the
    /// daemon starts must not keep the server out of the cluster.
    func startControlServers() async throws {
        var addresses: [String] = []
        for path in ControlPathTable.paths(of: me, in: config) where !addresses.contains(path.address) {
            addresses.append(path.address)
        }
        guard let first = addresses.first else { throw DaemonStartError("no control address") }
        loadRexecClientKeys()
        controlServers = [(first, try await startControlServer(on: first))]
        var missing: [String] = []
        for address in addresses.dropFirst() {
            do {
                controlServers.append((address, try await startControlServer(on: address)))
            } catch {
                controlServers.append((address, nil))
                missing.append(address)
                record(
                    LogEntry(
                        .controlListenFailed,
                        "The control channel cannot listen on \(address) port \(config.cluster.ports.control): \(error.reason); trying again."
                    ))
            }
        }
        if !missing.isEmpty {
            controlListenRetry = Task { [weak self] in await self?.retryControlServers() }
        }
    }

    func startControlServer(on address: String) async throws(ControlServerError) -> ControlServer {
        let board = outbox
        let alerts = clusterAlerts
        return try await ControlServer.start(
            host: address, port: config.cluster.ports.control, key: key, localName: me,
            limits: ControlServer.Limits(maximumConnections: Self.controlConnectionLimit(servers: config.serverNames.count)),
            access: controlAccess()
        ) {
            [weak self] request in
            if let answer = Self.answerStateFetch(request, board: board) { return answer }
            if let answer = Self.answerAlertExchange(request, alerts: alerts) { return answer }
            guard let self else { return [] }
            return await self.handlePeer(request)
        }
    }

    /// Connections a control server accepts at once: 64, or four per server in a larger
    /// cluster (each peer may have a pull, a push, a state fetch and a command open).
    static func controlConnectionLimit(servers: Int) -> Int { max(64, servers * 4) }

    /// Tries the addresses that did not bind again: after 1 s, then twice as long each round,
    /// at most 30 s apart, until every one is bound or the daemon closes its sockets.
    func retryControlServers() async {
        var pause: Duration = .seconds(1)
        while !controlServersClosed && !Task.isCancelled && controlServers.contains(where: { $0.server == nil }) {
            try? await Task.sleep(for: pause)
            pause = min(pause * 2, .seconds(30))
            for index in controlServers.indices where controlServers[index].server == nil {
                let address = controlServers[index].address
                guard !controlServersClosed, !Task.isCancelled,
                    let server = try? await startControlServer(on: address)
                else { continue }
                if controlServersClosed {
                    await server.close()
                    return
                }
                controlServers[index].server = server
                record(LogEntry(.controlListening, "The control channel listens on \(address) port \(config.cluster.ports.control) now."))
            }
        }
    }

    func closeControlServers() async {
        controlServersClosed = true
        controlListenRetry?.cancel()
        for entry in controlServers { await entry.server?.close() }
    }

    /// The counters of every control server, summed.
    var controlCounters: ControlCounters? {
        let running = controlServers.compactMap(\.server)
        guard !running.isEmpty else { return nil }
        var total = ControlCounters()
        for server in running {
            let counters = server.counters
            total.connectionsAccepted += counters.connectionsAccepted
            total.requestsServed += counters.requestsServed
            total.dropped.merge(counters.dropped, uniquingKeysWith: +)
        }
        return total
    }

    // MARK: - Choosing the path

    /// A heartbeat of `peer` arrived on `path`. When the Engine had the path down, it is back:
    /// a control connection that failed on it no longer keeps it behind the others.
    func heardOnPath(_ peer: ServerName, path: String, at time: EngineTime) {
        guard controlPaths.hasFailure(peer, path: path), !engine.heartbeatPathIsUp(path, of: peer, now: time) else { return }
        controlPaths.heardAgain(peer, path: path)
    }

    /// The paths a request to `peer` tries now, best first.
    func controlPathOrder(to peer: ServerName) -> [ControlPath] {
        let time = now()
        return controlPaths.order(to: peer, now: time) { engine.heartbeatPathIsUp($0, of: peer, now: time) }
    }

    /// Fills in, for every peer of the snapshot, the path its control channel uses now.
    func addControlPaths(to status: inout ClusterStatusSnapshot) {
        for index in status.servers.indices where status.servers[index].name != me {
            guard let path = controlPathOrder(to: status.servers[index].name).first else { continue }
            status.servers[index].controlPath = path.name
            status.servers[index].controlAddress = path.address
        }
    }

    // MARK: - Asking a peer

    func askPeer(_ server: ServerName, _ request: PeerRequest) async -> PeerResponse {
        var timeout: Duration = .seconds(30)
        var resendable = false
        switch request {
        // Reads: an operator (clpstat -h) or the WebManager waits at most 10 s for a server
        // cut off by a partition, not the 30 s a command may need.
        case .status, .alerts, .alertSync, .alertPush:
            resendable = true
            timeout = .seconds(10)
        // Each step is idempotent (a collection is named by its id); a chunk is 1 MiB.
        case .logCollection:
            resendable = true
            timeout = .seconds(20)
        // A heartbeat's state is wanted now or not at all: the next datagram asks again.
        case .heartbeatState:
            resendable = true
            timeout = .seconds(2)
        case .command(.runScript(_, let seconds), _, _): timeout = .seconds(max(30, seconds + 5))
        case .command: break
        // Each is idempotent: a second copy stores, switches, drops or sends the same.
        case .configPrepare, .configCommit, .configAbort, .configFetch: resendable = true
        }
        let order = controlPathOrder(to: server)
        guard !order.isEmpty else {
            return .result(CommandResult(.badUsage, "Server \(server) has no address."))
        }
        let outcome = await PeerControlClient.request(
            paths: order, port: config.cluster.ports.control, key: key, localName: me, payload: WireJSON.encode(request),
            timeout: timeout,
            attemptTimeout: ControlPathTable.attemptTimeout(heartbeatTimeout: config.cluster.timing.heartbeatTimeout, paths: order.count),
            resendable: resendable)
        learn(from: outcome, peer: server)
        guard let answer = outcome.answer else {
            return .result(CommandResult(.unreachable, "Server \(server) is not reachable: \(outcome.failureSummary)"))
        }
        do {
            return try WireJSON.decode(PeerResponse.self, from: answer)
        } catch {
            return .result(CommandResult(.unreachable, "Server \(server) is not reachable: unreadable answer (\(error))"))
        }
    }

    /// Remembers what each attempt says about its path; says so when requests to `peer`
    /// changed paths.
    func learn(from outcome: PeerControlClient.Outcome, peer: ServerName) {
        let time = now()
        for attempt in outcome.attempts {
            if let error = attempt.error {
                logger.info("control request to \(peer) over \(attempt.path): \(error)")
                if PeerControlClient.blamesPath(error) { controlPaths.recordFailure(peer, path: attempt.path.name, now: time) }
            } else if let previous = controlPaths.recordSuccess(peer, path: attempt.path.name) {
                let failed = outcome.attempts.compactMap { failed in failed.error.map { "\(failed.path.name): \($0)" } }
                let why = failed.isEmpty ? "" : " (\(failed.joined(separator: "; ")))"
                record(
                    LogEntry(
                        .controlPathChanged,
                        "Requests to \(peer) take \(attempt.path.name) (\(attempt.path.address)) now, no longer \(previous)\(why)."))
            }
        }
    }
}
