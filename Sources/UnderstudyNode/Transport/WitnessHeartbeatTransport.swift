import Synchronization
import UnderstudyEngine
import UnderstudyModel

/// `witnesshb`: heartbeats through the witness server (`understudy witness`).
///
/// Every heartbeat interval this server POSTs its heartbeat, sealed like a datagram (its own
/// sequence numbers, the `UWHB` kind inside so no LAN datagram is accepted here or there),
/// and the witness answers with the newest heartbeat request of each other server. Each is
/// authenticated with the cluster key, must come from a server of the cluster other than this
/// one, and passes this path's replay guard, exactly like a UDP heartbeat; one the witness
/// received more than `maximumRelayAge` ago is not delivered (its sender may have died since).
///
/// `send` never waits for the witness: the exchange runs in a task of its own on the
/// witness's event loop, bounded by `requestTimeout`; while one is under way the next
/// heartbeat is skipped (counted in `staleNotSent`). A witness that is down, refuses or
/// answers something that does not verify makes the path deliver nothing (`clpstat` shows
/// the path as error once the timeout passes); the failure is logged once (witnesshb 71) and
/// the recovery too (72).
struct WitnessHeartbeatTransport: HeartbeatTransport {
    let path: String
    let client: WitnessClient
    let state: BlockingPathState
    let receiver: WitnessRelayReceiver
    let heartbeat: HeartbeatConfig
    let context: HeartbeatTransportContext
    let inFlight: ExchangeGate

    static func open(_ heartbeat: HeartbeatConfig, _ context: HeartbeatTransportContext) async throws -> (any HeartbeatTransport)? {
        open(heartbeat, context, firstSequence: 1)
    }

    static func open(_ heartbeat: HeartbeatConfig, _ context: HeartbeatTransportContext, firstSequence: UInt64)
        -> WitnessHeartbeatTransport?
    {
        guard case .witness(let endpoint) = heartbeat.kind, context.config.serverNames.contains(context.me) else { return nil }
        let client = WitnessClient(
            endpoint: endpoint, cluster: context.config.cluster.name, me: context.me, key: context.key, bootID: context.bootID,
            firstSequence: firstSequence)
        let timing = context.config.cluster.timing
        return WitnessHeartbeatTransport(
            path: heartbeat.name, client: client,
            state: BlockingPathState(path: heartbeat.name, type: heartbeat.typeName, events: context.events),
            receiver: WitnessRelayReceiver(
                key: context.key, me: context.me, cluster: context.config.cluster.name, servers: context.config.serverNames,
                maximumRelayAge: timing.heartbeatInterval * 2),
            heartbeat: heartbeat, context: context, inFlight: ExchangeGate())
    }

    var received: AsyncStream<ReceivedDatagram> { state.received }
    var counters: TransportCounters { state.counters.withLock { $0 } }

    /// How long one exchange may take: an interval (at least half a second), at most half
    /// the heartbeat timeout.
    static func requestTimeout(_ timing: TimingSettings) -> Duration {
        min(max(timing.heartbeatInterval, .milliseconds(500)), timing.heartbeatTimeout / 2)
    }

    nonisolated(nonsending) func send(
        _ payload: [UInt8], at deadline: ContinuousClock.Instant?, freshUntil: ContinuousClock.Instant,
        sent: (@Sendable (Duration) -> Void)?
    ) async {
        if !inFlight.enter() {
            state.counters.withLock { $0.staleNotSent += 1 }
            return
        }
        let timing = context.config.cluster.timing
        let request = WitnessMessage.Request.heartbeat(
            cluster: context.config.cluster.name, heartbeatTimeout: timing.heartbeatTimeout, payload: payload)
        let (client, state, receiver, inFlight) = (client, state, receiver, inFlight)
        let timeout = Self.requestTimeout(timing)
        Task.detached {
            defer { inFlight.leave() }
            if let deadline { try? await Task.sleep(until: deadline, clock: .continuous) }
            guard ContinuousClock.now <= freshUntil, !state.isStopped else {
                state.counters.withLock { $0.staleNotSent += 1 }
                return
            }
            do {
                let reply = try await client.exchange(request, timeout: timeout)
                state.counters.countSend(succeeded: true)
                state.worked()
                for relayed in reply.relayed { receiver.examine(relayed, into: state, from: client.endpoint) }
            } catch {
                state.counters.countSend(succeeded: false)
                state.failed("\(error)")
            }
        }
    }

    func reopened() async throws -> any HeartbeatTransport {
        state.stop()
        guard let transport = Self.open(heartbeat, context, firstSequence: client.upcomingSequence) else {
            throw WitnessExchangeError("\(path) is no longer a witness heartbeat of this server")
        }
        return transport
    }

    func close() async { state.stop() }
}

/// Checks the heartbeats a witness relays: authenticated, from another server of the cluster,
/// a witness heartbeat request of this cluster, fresh, and new (replay guard).
final class WitnessRelayReceiver: Sendable {
    let me: ServerName
    let cluster: String
    let servers: Set<ServerName>
    let maximumRelayAge: Duration
    private let codec: Mutex<DatagramCodec>
    /// The newest (boot id, sequence) delivered per sender: the same heartbeat relayed again
    /// (the sender has not sent a newer one since) is skipped without counting it a replay.
    private let lastSeen = Mutex<[ServerName: (bootID: UInt64, sequence: UInt64)]>([:])

    init(key: ClusterKey, me: ServerName, cluster: String, servers: [ServerName], maximumRelayAge: Duration) {
        self.me = me
        self.cluster = cluster
        self.servers = Set(servers)
        self.maximumRelayAge = maximumRelayAge
        codec = Mutex(DatagramCodec(key: key))
    }

    func examine(_ relayed: WitnessMessage.Relayed, into state: BlockingPathState, from witness: String) {
        let opened: DatagramCodec.Opened
        switch codec.withLock({ $0.authenticate(relayed.datagram) }) {
        case .failure(let reason):
            state.count(reason)
            return
        case .success(let authenticated):
            opened = authenticated
        }
        guard opened.sender != me, servers.contains(opened.sender) else {
            state.count(.wrongSender)
            return
        }
        guard case .success(.heartbeat(let relayedCluster, _, let payload)) = WitnessMessage.parseRequest(opened.payload, kind: .heartbeat),
            relayedCluster == cluster
        else {
            state.count(.badMagic)
            return
        }
        if let previous = lastSeen.withLock({ $0[opened.sender] }), previous.bootID == opened.bootID, previous.sequence == opened.sequence {
            return
        }
        guard Duration.milliseconds(Int64(relayed.ageMillis)) <= maximumRelayAge else {
            state.count(.staleSequence)
            return
        }
        if let reason = codec.withLock({ $0.replayGuard.admit(sender: opened.sender, bootID: opened.bootID, sequence: opened.sequence) }) {
            state.count(reason)
            return
        }
        lastSeen.withLock { $0[opened.sender] = (opened.bootID, opened.sequence) }
        state.deliver(
            DatagramCodec.Opened(sender: opened.sender, bootID: opened.bootID, sequence: opened.sequence, payload: payload),
            from: "witness " + witness)
    }
}

/// At most one exchange with the witness at a time per path.
final class ExchangeGate: Sendable {
    private let busy = Mutex(false)

    /// True when the caller may start an exchange (and must `leave` after it).
    func enter() -> Bool {
        busy.withLock { busy in
            defer { busy = true }
            return !busy
        }
    }

    func leave() { busy.withLock { $0 = false } }
}
