import Synchronization
import UnderstudyEngine
import UnderstudyModel

/// The probe of `httpnp`: asks the witness server whether this server survives, with its
/// view (the servers it sees) and heartbeat timeout. "Survives" only on an authenticated
/// "granted" that answers this very request; "denied", "not yet" (a witness that started
/// too recently), a refusal, a timeout or an answer that does not verify all mean "does not
/// survive": a server that cannot reach the witness while a peer is missing loses, exactly
/// like pingnp with no target reachable. The witness's rule is `WitnessArbiter`.
final class WitnessProbe: PartitionProbe {
    let name: String
    let client: WitnessClient
    let cluster: String
    let servers: [ServerName]
    let heartbeatTimeout: Duration
    let events: @Sendable (Bool, String, String) -> Void
    /// The last exchange got an authenticated answer (nil: none yet).
    private let answered = Mutex<Bool?>(nil)

    static func open(_ entry: NetworkPartitionConfig, _ context: PartitionProbeContext) -> (any PartitionProbe)? {
        guard case .http(let endpoint) = entry.kind else { return nil }
        return WitnessProbe(
            name: entry.name,
            client: WitnessClient(
                endpoint: endpoint, cluster: context.config.cluster.name, me: context.me, key: context.key, bootID: context.bootID),
            cluster: context.config.cluster.name, servers: context.config.serverNames,
            heartbeatTimeout: context.config.cluster.timing.heartbeatTimeout, events: context.events)
    }

    init(
        name: String, client: WitnessClient, cluster: String, servers: [ServerName], heartbeatTimeout: Duration,
        events: @escaping @Sendable (Bool, String, String) -> Void
    ) {
        self.name = name
        self.client = client
        self.cluster = cluster
        self.servers = servers
        self.heartbeatTimeout = heartbeatTimeout
        self.events = events
    }

    var lineStatus: (name: String, normal: Bool?)? { (name, answered.withLock { $0 }) }

    func survives(_ question: PartitionQuestion) async -> Bool {
        let request = WitnessMessage.Request.resolve(
            cluster: cluster, heartbeatTimeout: heartbeatTimeout, servers: servers, view: Set(question.view))
        do {
            let reply = try await client.exchange(request, timeout: question.timeout)
            note(answered: true, reason: "")
            return reply.verdict == .granted
        } catch {
            note(answered: false, reason: "\(error)")
            return false
        }
    }

    private func note(answered now: Bool, reason: String) {
        let before = answered.withLock { value in
            defer { value = now }
            return value
        }
        if before != now, !(before == nil && now) { events(!now, name, reason) }
    }
}
