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
