import UnderstudyEngine
import UnderstudyModel

/// What the daemon does for a network-partition resolver while the Engine decides which side
/// of a split survives: `majority` needs nothing (the Engine counts the servers it hears),
/// `pingnp` pings its targets, `httpnp` asks the witness. A new resolver type is its probe
/// file and one line in the registry.
protocol PartitionProbe: Sendable {
    /// Whether this server may survive as far as this resolver is concerned (`pingnp`: a
    /// target answers; `httpnp`: the witness grants survival). Bounded by `question.timeout`.
    func survives(_ question: PartitionQuestion) async -> Bool
    /// The status of the resolver's `clpstat` line, when the resolver knows it better than
    /// the Engine (nil: the Engine's).
    var lineStatus: (name: String, normal: Bool?)? { get }
}

/// One question of the Engine (`probePingTargets`): every `pingnp` target, the time a probe
/// may take, and the servers this server sees.
struct PartitionQuestion: Sendable {
    var targets: [String]
    var timeout: Duration
    var view: [ServerName]
}

/// What opening a probe needs from the daemon.
struct PartitionProbeContext: Sendable {
    var config: ClusterConfig
    var me: ServerName
    var key: ClusterKey
    var bootID: UInt64
    /// Told when a resolver's own check stops or starts working (logged by the daemon).
    var events: @Sendable (_ failed: Bool, _ name: String, _ reason: String) -> Void
}

enum PartitionResolvers {
    /// Opens the probe of one `network-partition` entry; nil: the type has none.
    typealias Opener = @Sendable (NetworkPartitionConfig, PartitionProbeContext) -> (any PartitionProbe)?

    /// Every network-partition type the daemon runs, with its probe.
    static let registry: [String: Opener] = [
        "majority": { _, _ in nil },
        "pingnp": { _, _ in PingProbe() },
        "httpnp": WitnessProbe.open,
    ]

    /// The `network-partition[].type` values this daemon runs.
    static var supportedTypes: Set<String> { Set(registry.keys) }

    /// The probes of the configuration: one for all `pingnp` entries (the Engine hands it
    /// every target; one answering is enough), one per other entry that has a probe. A
    /// server survives a question when every probe says so.
    static func open(_ context: PartitionProbeContext) -> [any PartitionProbe] {
        var probes: [any PartitionProbe] = []
        var pingOpened = false
        for entry in context.config.networkPartition {
            if entry.typeName == "pingnp" {
                if pingOpened { continue }
                pingOpened = true
            }
            if let open = registry[entry.typeName], let probe = open(entry, context) { probes.append(probe) }
        }
        return probes
    }

    /// Asks every probe at once; true when all say this server survives.
    static func survives(_ question: PartitionQuestion, probes: [any PartitionProbe]) async -> Bool {
        await withTaskGroup(of: Bool.self) { group in
            for probe in probes { group.addTask { await probe.survives(question) } }
            var all = true
            for await answer in group where !answer { all = false }
            return all
        }
    }
}

extension PingProbe: PartitionProbe {
    func survives(_ question: PartitionQuestion) async -> Bool {
        question.targets.isEmpty ? true : await anyReachable(question.targets, timeout: question.timeout)
    }

    var lineStatus: (name: String, normal: Bool?)? { nil }
}
