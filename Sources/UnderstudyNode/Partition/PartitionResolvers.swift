/// What the daemon does for a network-partition resolver while the Engine decides which side
/// of a split survives: `majority` needs nothing (the Engine counts the servers it hears),
/// `pingnp` pings its targets. A new resolver type (`httpnp` next) is its probe file and one
/// line in the registry.
protocol PartitionProbe: Sendable {
    /// Whether any of `targets` answers within `timeout`.
    func anyReachable(_ targets: [String], timeout: Duration) async -> Bool
}

enum PartitionResolvers {
    /// Every network-partition type the daemon runs, with its probe (nil: the Engine decides
    /// without one).
    static let registry: [String: (any PartitionProbe)?] = [
        "majority": nil,
        "pingnp": PingProbe(),
    ]

    /// The `network-partition[].type` values this daemon runs.
    static var supportedTypes: Set<String> { Set(registry.keys) }

    /// The probe of a type, nil when it has none (or is not supported).
    static func probe(for type: String) -> (any PartitionProbe)? { registry[type] ?? nil }
}

extension PingProbe: PartitionProbe {}
