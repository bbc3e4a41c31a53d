import NIOCore
import Synchronization

/// The open connections of a server (control channel, local socket): admission up to a
/// limit, and closing them all at shutdown.
final class ConnectionRegistry: Sendable {
    private let maximum: Int
    private let connections = Mutex<(nextID: UInt64, open: [UInt64: Channel])>((0, [:]))

    init(maximum: Int) { self.maximum = maximum }

    /// An id for the connection, or nil when the limit is reached (the caller refuses it).
    func register(_ channel: Channel) -> UInt64? {
        connections.withLock { registry in
            guard registry.open.count < maximum else { return nil }
            let id = registry.nextID
            registry.nextID += 1
            registry.open[id] = channel
            return id
        }
    }

    func unregister(_ id: UInt64) {
        _ = connections.withLock { $0.open.removeValue(forKey: id) }
    }

    func closeAll() {
        let open = connections.withLock { $0.open.values }
        for channel in open { channel.close(promise: nil) }
    }
}

/// What a connection server did so far: connections, requests and early closes by reason.
public struct ConnectionCounters<Reason: Hashable & Sendable>: Sendable, Equatable {
    public var connectionsAccepted: UInt64 = 0
    public var requestsServed: UInt64 = 0
    public var dropped: [Reason: UInt64] = [:]

    public init() {}

    public func dropped(_ reason: Reason) -> UInt64 { dropped[reason] ?? 0 }
    public var totalDropped: UInt64 { dropped.values.reduce(0, +) }
}
