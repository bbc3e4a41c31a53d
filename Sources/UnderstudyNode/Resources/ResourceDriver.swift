import Logging
import UnderstudyEngine
import UnderstudyModel

/// One resource type, as the daemon and the keeper run it. A new type is one file with a
/// driver conforming to this, and one line in `ResourceDrivers.registry`.
public protocol ResourceDriver: Sendable {
    /// Starts or stops one resource of this type (the run says which), with its settings;
    /// reports the outcome the Engine acts on.
    func perform(_ run: ResourceRun, resource: ResourceConfig) async -> ResourceOutcome

    /// Takes what `resources` (this type's resources of `group`) hold off this server,
    /// without scripts: the group was fenced (a stall, a lost lease, the daemon died and the
    /// keeper acts). Does at once what can be done at once (killing processes), so that
    /// nothing the daemon orders after the fence can overtake it, and returns the task that
    /// finishes the rest (removing addresses), if any, with whether all of it succeeded (the
    /// keeper tells the peers only after a fence that did, see `Keeper`). Idempotent.
    func fence(group: GroupConfig, resources: [ResourceConfig], server: ServerName) -> Task<Bool, Never>?

    /// The server holding the groups of `resources` (this type's) was lost, and this one may
    /// take them over once the takeover margin has passed: checks that change nothing (the
    /// fip's address probe) may run now instead of then. Most types have none.
    func prepareTakeover(resources: [ResourceConfig]) async
}

extension ResourceDriver {
    public func prepareTakeover(resources: [ResourceConfig]) async {}
}

/// What a driver may need from the daemon (or the keeper) that runs it.
public struct ResourceDriverContext: Sendable {
    public var server: ServerName
    public var runner: ScriptRunner
    public var host: HostFacts
    public var logDirectory: String
    public var stateDirectory: String
    /// The lease file services may fence themselves by (nil in the keeper: nothing starts there).
    public var leaseFile: String?
    /// The address of this server on its first LAN heartbeat path (where vip's RIP speaks
    /// when the resource names no interface).
    public var interfaceAddress: String?
    public var logger: Logger

    public init(
        server: ServerName, runner: ScriptRunner, host: HostFacts, logDirectory: String, stateDirectory: String, leaseFile: String?,
        interfaceAddress: String?, logger: Logger
    ) {
        self.server = server
        self.runner = runner
        self.host = host
        self.logDirectory = logDirectory
        self.stateDirectory = stateDirectory
        self.leaseFile = leaseFile
        self.interfaceAddress = interfaceAddress
        self.logger = logger
    }
}

/// The resource drivers of one daemon (or keeper), by type.
public struct ResourceDrivers: Sendable {
    /// Every type the daemon runs, with how to make its driver. The daemon refuses a
    /// configuration with any other type (the Model parses and validates them all).
    static let registry: [ResourceType: @Sendable (ResourceDriverContext) -> any ResourceDriver] = [
        .exec: { ExecResourceDriver(context: $0) },
        .fip: { FloatingIPDriver(context: $0) },
        .vip: { VirtualIPDriver(context: $0) },
        .disk: { DiskDriver(context: $0) },
        .nas: { NASDriver(context: $0) },
        .volmgr: { VolumeManagerDriver(context: $0) },
    ]

    /// The resource types this daemon runs.
    public static var supportedTypes: Set<ResourceType> { Set(registry.keys) }

    let drivers: [ResourceType: any ResourceDriver]

    public init(context: ResourceDriverContext) {
        drivers = Self.registry.mapValues { $0(context) }
    }

    public func perform(_ run: ResourceRun, resource: ResourceConfig) async -> ResourceOutcome {
        guard let driver = drivers[resource.type] else {
            // Not reached: the daemon refuses to start with a type it has no driver for.
            return .failure(reason: "resource type \(resource.type.rawValue) is not supported by this daemon")
        }
        return await driver.perform(run, resource: resource)
    }

    /// Lets each type of `groups` check ahead what it can (`ResourceDriver.prepareTakeover`).
    public func prepareTakeover(groups: [GroupConfig]) async {
        await withTaskGroup(of: Void.self) { tasks in
            for (type, driver) in drivers {
                let resources = groups.flatMap { $0.resources.filter { $0.type == type } }
                guard !resources.isEmpty else { continue }
                tasks.addTask { await driver.prepareTakeover(resources: resources) }
            }
        }
    }

    /// Fences every resource of `group` on this server, type by type in the order of the
    /// group's resources; returns what is still being finished (the keeper waits for it).
    @discardableResult
    public func fence(group: GroupConfig, server: ServerName) -> [Task<Bool, Never>] {
        var types: [ResourceType] = []
        for resource in group.resources where !types.contains(resource.type) { types.append(resource.type) }
        return types.compactMap { type in
            drivers[type]?.fence(group: group, resources: group.resources.filter { $0.type == type }, server: server)
        }
    }
}

extension ResourceDriver {
    /// A fence that is a stop of each resource without scripts, all at once (fip, vip:
    /// removing an address is idempotent); failures are logged. True when every stop succeeded.
    func fenceByStopping(group: GroupConfig, resources: [ResourceConfig], server: ServerName, logger: Logger?) -> Task<Bool, Never>? {
        guard !resources.isEmpty else { return nil }
        let runs = resources.map { (ResourceRun.fenceStop(group: group, resource: $0, server: server), $0) }
        return Task {
            await withTaskGroup(of: Bool.self) { tasks in
                for (run, resource) in runs {
                    tasks.addTask {
                        guard case .failure(let reason) = await self.perform(run, resource: resource) else { return true }
                        logger?.error("fencing \(run.resource): \(reason)")
                        return false
                    }
                }
                return await tasks.reduce(true) { $0 && $1 }
            }
        }
    }
}

extension ResourceRun {
    /// The stop run a fence uses where a driver's stop is itself the fence (no scripts run).
    static func fenceStop(group: GroupConfig, resource: ResourceConfig, server: ServerName) -> ResourceRun {
        let policy = group.servers
        return ResourceRun(
            id: 0, group: group.name, resource: resource.name, operation: .stop,
            context: ScriptContext(
                event: .start, isHomeServer: policy.first == server, priority: (policy.firstIndex(of: server) ?? -1) + 1,
                groupName: group.name, resourceName: resource.name, factor: StopFactor.none, lastAction: LastAction.none))
    }
}
