import UnderstudyModel

/// Whether the heartbeats of a configuration fit in one datagram.
///
/// A heartbeat carries every group's report, and the master's carries the whole directory:
/// its size grows with the groups, resources, monitors and servers. A heartbeat that does
/// not fit is never delivered, so two healthy servers would each judge the other down. Until
/// bulk state moves to the control channel (ARCHITECTURE.md §11), a configuration whose
/// largest possible heartbeat does not fit, with a margin, is refused by `config check` and
/// by the daemon (exit 2), and the simulator checks every heartbeat it sends.
///
/// The largest possible heartbeat is built, not guessed: every field at its longest (every
/// group stopping or failed on the master, every resource's status, every monitor in error,
/// every directory entry with every optional field, the longest names and events), with
/// numbers at the largest they reach in a cluster's life (`Bound`), and measured as it
/// travels (`WireJSON`).
public enum HeartbeatBudget {
    /// What a heartbeat datagram can carry: the largest UDP payload over IPv4 (65,507 bytes)
    /// less the datagram's header with the longest sender name and its MAC
    /// (`DatagramCodec.maximumPayloadSize`, which a Node test keeps equal).
    public static let datagramPayloadLimit = 65_507 - (4 + 1 + 1 + 8 + 8 + 2) - 63 - 32

    /// The most a configuration's largest heartbeat may need: 90 % of what fits, so that a
    /// field added later, or a count the estimate did not foresee, does not tip it over.
    public static let limit = datagramPayloadLimit * 9 / 10

    public struct Estimate: Sendable, Equatable {
        /// The server whose heartbeat is the largest (the longest name sends the largest).
        public var server: ServerName
        public var bytes: Int
        public var groups: Int

        public var fits: Bool { bytes <= HeartbeatBudget.limit }

        /// The refusal, naming the limit and the estimated size.
        public var problem: String? {
            guard !fits else { return nil }
            return
                "the heartbeats of this configuration can reach \(bytes) bytes (\(groups) groups; largest as sent by \(server)), more than the \(HeartbeatBudget.limit) bytes one heartbeat datagram may carry (\(HeartbeatBudget.datagramPayloadLimit) less a 10 % margin): peers would never receive them and each server would judge the others down. Use fewer groups, resources or monitors, or shorter names (see the limits in docs/configuration.md)"
        }
    }

    /// The largest heartbeat any server of `config` can send, measured.
    public static func estimate(_ config: ClusterConfig) -> Estimate {
        var largest = Estimate(server: config.serverNames.first ?? "", bytes: 0, groups: config.groups.count)
        for server in config.serverNames {
            let bytes = WireJSON.encode(largestHeartbeat(of: server, in: config)).count
            if bytes > largest.bytes { largest = Estimate(server: server, bytes: bytes, groups: config.groups.count) }
        }
        return largest
    }

    /// The largest values numbers in a heartbeat reach. A 64-bit maximum would make the
    /// estimate twice the real size; these hold for centuries.
    enum Bound {
        /// Boot ids are wall-clock microseconds (17 digits last until the year 5138).
        static let bootID: UInt64 = 99_999_999_999_999_999
        /// Service restarts (`clpcl -r`) within one daemon's life.
        static let run: UInt64 = 9_999_999
        /// Directory versions, generations and terms: a change a second for 30,000 years.
        static let version: UInt64 = 999_999_999_999
        /// A daemon's running time: a century.
        static let time = Duration.seconds(100 * 366 * 86_400) + .nanoseconds(999_999_999)
    }

    /// The heartbeat `server` sends as master when every field is at its longest.
    public static func largestHeartbeat(of server: ServerName, in config: ClusterConfig) -> Heartbeat {
        let names = config.serverNames
        let longestName = names.max { $0.utf8.count < $1.utf8.count } ?? server
        let maxInstance = ServerInstance(boot: Bound.bootID, run: Bound.run)
        let longTime = Bound.time
        let epoch = Epoch(term: Bound.version, master: longestName)
        let status = longest(ActivationStatus.allCases)
        // Only a group that a monitor's recovery acts on can carry a monitor's request and
        // the servers a monitor failed it over from.
        let watched = monitoredGroups(config)
        var reports: [GroupName: GroupReport] = [:]
        var entries: [GroupName: DirectoryEntry] = [:]
        for group in config.groups {
            let resources = group.resources.map(\.name)
            reports[group.name] = GroupReport(
                status: status, resources: Dictionary(resources.map { ($0, status) }, uniquingKeysWith: { first, _ in first }),
                generation: Bound.version, activationFailedResource: resources.max { $0.utf8.count < $1.utf8.count },
                operatorStopped: false, monitorRequest: watched.contains(group.name) ? longest(MonitorRequest.allCases) : nil)
            var entry = DirectoryEntry(
                wanted: false, owner: longestName, generation: Bound.version, releasedAt: Bound.version,
                startEvent: longest(ScriptEvent.allCases),
                preferredTarget: longestName, stopFactor: longest(StopFactor.allCases), stopEvent: longest(ScriptEvent.allCases),
                failoverCount: group.resources.map(\.activation.failover).max() ?? 0, failedOn: group.servers,
                finalActionOn: longestName, finalAction: longest(FinalAction.allCases))
            entry.ownerInstance = maxInstance
            if watched.contains(group.name) {
                entry.monitorFailedOn = Dictionary(group.servers.map { ($0, maxInstance) }, uniquingKeysWith: { first, _ in first })
            }
            entry.operation = Bound.version
            entry.unplaceable = true
            entries[group.name] = entry
        }
        var directory = Directory(
            epoch: epoch, version: Bound.version, startupDone: false, suspended: false, clusterStopping: false, entries: entries)
        directory.base = DirectoryStamp(epoch: epoch, version: Bound.version)
        directory.founding = Founding(server: longestName, instance: maxInstance)
        directory.suppressionLifted = Dictionary(names.map { ($0, maxInstance) }, uniquingKeysWith: { first, _ in first })
        let monitorStatus = longest(MonitorStatus.allCases)
        let monitors = config.monitors.filter { $0.runs(on: server) }.map { ($0.name, monitorStatus) }
        return Heartbeat(
            sender: server, bootID: Bound.bootID, run: Bound.run, sentAt: longTime, configHash: String(repeating: "f", count: 64),
            priority: names.count, serviceUp: false, leaving: false, autoStartSuppressed: false, syncDone: false,
            hears: Dictionary(
                names.filter { $0 != server }.map { ($0, HeardHeartbeat(bootID: Bound.bootID, sentAt: longTime, upSince: longTime)) },
                uniquingKeysWith: { first, _ in first }),
            view: names, awaitingVouch: false, epoch: epoch, appliedVersion: Bound.version, groups: reports,
            monitors: monitors.isEmpty ? nil : Dictionary(monitors, uniquingKeysWith: { first, _ in first }), directory: directory,
            clusterStopRequested: true, configVersion: UInt64.max, configOutsider: true,
            timeoutRatio: TimeoutRatio(ratio: TimeoutRatio.allowedRatios.upperBound, expiresAt: .max, setAt: .max),
            judgeTimeout: longTime)
    }

    /// Groups a monitor's recovery can fail over or stop (`RecoveryLadder.recoveryGroups`).
    static func monitoredGroups(_ config: ClusterConfig) -> Set<GroupName> {
        var groups: Set<GroupName> = []
        for monitor in config.monitors {
            switch monitor.recovery.target {
            case .group(let name): groups.insert(name)
            case .resource(let name): if let group = config.resource(named: name)?.group.name { groups.insert(group) }
            case .allGroups: return Set(config.groups.map(\.name))
            case .localServer: break
            }
        }
        return groups
    }

    static func longest<Value: RawRepresentable>(_ values: [Value]) -> Value where Value.RawValue == String {
        // Every vocabulary here has at least one case.
        values.max { $0.rawValue.utf8.count < $1.rawValue.utf8.count } ?? values[0]
    }
}
