import UnderstudyModel

/// Whether the heartbeats of a configuration fit in one datagram.
///
/// A heartbeat datagram carries the heartbeat's core — liveness, the echoes of every peer,
/// the view, the epoch — and at most `HeartbeatOutbox.inlineLimit` bytes of state delta
/// (HeartbeatStateSync.swift): its size grows with the servers and the length of their
/// names, never with the groups, resources or monitors, whose state travels as deltas and
/// over the control channel. A heartbeat that does not fit is never delivered, so a
/// configuration whose largest possible heartbeat does not fit, with a margin, is refused by
/// `config check` and by the daemon (exit 2), and the simulator checks every heartbeat it
/// sends.
///
/// The largest possible core is built, not guessed: every field at its longest (every
/// server heard and in the view, the longest names, every optional field), with numbers at
/// the largest they reach in a cluster's life (`Bound`), and measured as it travels
/// (`HeartbeatWire`).
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
        public var servers: Int

        public var fits: Bool { bytes <= HeartbeatBudget.limit }

        /// The refusal, naming the limit and the estimated size.
        public var problem: String? {
            guard !fits else { return nil }
            return
                "the heartbeats of this configuration can reach \(bytes) bytes (\(servers) servers; largest as sent by \(server)), more than the \(HeartbeatBudget.limit) bytes one heartbeat datagram may carry (\(HeartbeatBudget.datagramPayloadLimit) less a 10 % margin): peers would never receive them and each server would judge the others down. Use fewer servers or shorter server names (see the limits in docs/configuration.md)"
        }
    }

    /// The largest heartbeat datagram any server of `config` can send, measured: its largest
    /// core with the largest inline state delta.
    public static func estimate(_ config: ClusterConfig) -> Estimate {
        var largest = Estimate(server: config.serverNames.first ?? "", bytes: 0, servers: config.serverNames.count)
        for server in config.serverNames {
            let datagram = HeartbeatDatagram(
                core: largestHeartbeat(of: server, in: config), stateSeq: Bound.version,
                inline: StateDelta(from: Bound.version, to: Bound.version))
            let bytes = HeartbeatWire.encode(datagram, inlineJSON: [UInt8](repeating: 0, count: HeartbeatOutbox.inlineLimit)).count
            if bytes > largest.bytes { largest = Estimate(server: server, bytes: bytes, servers: config.serverNames.count) }
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

    /// The core of the heartbeat `server` sends when every field is at its longest.
    public static func largestHeartbeat(of server: ServerName, in config: ClusterConfig) -> Heartbeat {
        let names = config.serverNames
        let longestName = names.max { $0.utf8.count < $1.utf8.count } ?? server
        let longTime = Bound.time
        let epoch = Epoch(term: Bound.version, master: longestName)
        return Heartbeat(
            sender: server, bootID: Bound.bootID, run: Bound.run, sentAt: longTime, configHash: String(repeating: "f", count: 64),
            priority: names.count, serviceUp: true, leaving: true, autoStartSuppressed: true, syncDone: true,
            hears: Dictionary(
                names.filter { $0 != server }.map { ($0, HeardHeartbeat(bootID: Bound.bootID, sentAt: longTime, upSince: longTime)) },
                uniquingKeysWith: { first, _ in first }),
            view: names, awaitingVouch: true, epoch: epoch, appliedVersion: Bound.version,
            clusterStopRequested: true, waitsFor: names, configVersion: UInt64.max, configOutsider: true,
            timeoutRatio: TimeoutRatio(ratio: TimeoutRatio.allowedRatios.upperBound, expiresAt: .max, setAt: .max),
            judgeTimeout: longTime)
    }
}
