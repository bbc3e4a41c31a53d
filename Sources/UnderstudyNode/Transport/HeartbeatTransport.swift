import NIOCore
import UnderstudyEngine
import UnderstudyModel

/// One heartbeat path of this server (an entry of `heartbeats:`): sends this server's
/// heartbeat to its peers on the path and delivers what arrives, authenticated. `lanhb` is
/// `LanHeartbeatTransport`; a new heartbeat type is one file conforming to this and one line
/// in `HeartbeatTransports.registry`.
public protocol HeartbeatTransport: Sendable {
    /// The path's name (`heartbeats[].name`).
    var path: String { get }
    /// Heartbeats received, authenticated and not replayed; it ends when the transport failed
    /// (the daemon then reopens it) or was closed.
    var received: AsyncStream<ReceivedDatagram> { get }
    var counters: TransportCounters { get }
    /// Sends to every peer on the path at once (`deadline` nil: state changes, farewells), or
    /// at `deadline` and not after `freshUntil` (the periodic heartbeat), reporting each
    /// send's lateness to `sent`.
    nonisolated(nonsending) func send(
        _ payload: [UInt8], at deadline: ContinuousClock.Instant?, freshUntil: ContinuousClock.Instant,
        sent: (@Sendable (Duration) -> Void)?) async
    /// The same path opened again after it failed; its sequence numbers go on.
    func reopened() async throws -> any HeartbeatTransport
    func close() async
}

/// What opening a transport needs from the daemon.
public struct HeartbeatTransportContext: Sendable {
    public var config: ClusterConfig
    public var me: ServerName
    public var key: ClusterKey
    public var bootID: UInt64
    /// Told when a path whose device can fail (diskhb, comhb) stops or starts working again.
    public var events: @Sendable (HeartbeatPathEvent) -> Void

    public init(
        config: ClusterConfig, me: ServerName, key: ClusterKey, bootID: UInt64,
        events: @escaping @Sendable (HeartbeatPathEvent) -> Void = { _ in }
    ) {
        self.config = config
        self.me = me
        self.key = key
        self.bootID = bootID
        self.events = events
    }
}

/// The heartbeat types the daemon runs.
public enum HeartbeatTransports {
    /// Opens a path of the type for this server; nil when this server has no part in it.
    public typealias Opener = @Sendable (HeartbeatConfig, HeartbeatTransportContext) async throws -> (any HeartbeatTransport)?

    static let registry: [String: Opener] = [
        "lanhb": LanHeartbeatTransport.open,
        "diskhb": DiskHeartbeatTransport.open,
        "comhb": SerialHeartbeatTransport.open,
        "witnesshb": WitnessHeartbeatTransport.open,
    ]

    /// The heartbeat types (`heartbeats[].type`) this daemon runs.
    public static var supportedTypes: Set<String> { Set(registry.keys) }

    /// Opens every path of the configuration this server takes part in, in configuration order.
    static func open(_ context: HeartbeatTransportContext) async throws -> [any HeartbeatTransport] {
        var opened: [any HeartbeatTransport] = []
        for heartbeat in context.config.heartbeats {
            guard let open = registry[heartbeat.typeName] else { continue }
            do {
                if let transport = try await open(heartbeat, context) { opened.append(transport) }
            } catch {
                for transport in opened { await transport.close() }
                throw DaemonStartError("heartbeat \(heartbeat.name): \(error)")
            }
        }
        return opened
    }
}

/// `lanhb`: authenticated UDP datagrams to each peer's address on the path.
struct LanHeartbeatTransport: HeartbeatTransport {
    let path: String
    let socket: HeartbeatSocket
    let host: String
    let port: Int
    let peers: [String]
    let context: HeartbeatTransportContext

    static func open(_ heartbeat: HeartbeatConfig, _ context: HeartbeatTransportContext) async throws -> (any HeartbeatTransport)? {
        guard case .lan(let addresses) = heartbeat.kind, let address = addresses[context.me] else { return nil }
        let port = context.config.cluster.ports.heartbeat
        let socket = try await HeartbeatSocket.bind(
            host: address, port: port, key: context.key, localName: context.me, bootID: context.bootID,
            eventLoopGroup: HeartbeatEventLoop.group)
        return LanHeartbeatTransport(
            path: heartbeat.name, socket: socket, host: address, port: port,
            peers: addresses.filter { $0.key != context.me }.map(\.value).sorted(), context: context)
    }

    var received: AsyncStream<ReceivedDatagram> { socket.received }
    var counters: TransportCounters { socket.counters }

    nonisolated(nonsending) func send(
        _ payload: [UInt8], at deadline: ContinuousClock.Instant?, freshUntil: ContinuousClock.Instant,
        sent: (@Sendable (Duration) -> Void)?
    ) async {
        if let deadline {
            await socket.send(payload, toHosts: peers, port: port, at: deadline, freshUntil: freshUntil, sent: sent)
        } else {
            for address in peers { await socket.send(payload, to: address, port: port) }
        }
    }

    func reopened() async throws -> any HeartbeatTransport {
        await socket.close()
        let socket = try await HeartbeatSocket.bind(
            host: host, port: port, key: context.key, localName: context.me, bootID: context.bootID,
            firstSequence: self.socket.upcomingSequence, eventLoopGroup: HeartbeatEventLoop.group)
        return LanHeartbeatTransport(path: path, socket: socket, host: host, port: port, peers: peers, context: context)
    }

    func close() async { await socket.close() }
}
