import NIOCore
import NIOPosix
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

// The CLI ↔ local daemon channel over a UNIX domain socket (`<state-dir>/understudy.sock`).
// Protected by the file system instead of HMAC: the socket file is mode 0600, so only the
// daemon's user (root in production) can connect; on Linux the server also checks the peer's
// uid (SO_PEERCRED), which closes the short window between bind(2) and chmod(2).
// Protocol: one request per connection; u32 big-endian length + payload in each direction.

public struct LocalControlRequest: Sendable {
    public var payload: [UInt8]
    /// The connecting process's user and process id when the OS reports them (Linux).
    public var peerUserID: UInt32?
    public var peerProcessID: Int32?

    public init(payload: [UInt8], peerUserID: UInt32? = nil, peerProcessID: Int32? = nil) {
        self.payload = payload
        self.peerUserID = peerUserID
        self.peerProcessID = peerProcessID
    }
}

public enum LocalControlDropReason: String, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    /// The client hung up mid-frame or sent bytes after its request.
    case malformedFrame
    case oversize
    case timedOut
    /// The peer is neither root nor the daemon's own user.
    case unauthorizedPeer
    case tooManyConnections

    public var description: String { rawValue }
}

public typealias LocalControlCounters = ConnectionCounters<LocalControlDropReason>

/// A failed local request. `isNotReachable` is the CLI's exit code 3.
public struct LocalControlError: Error, Equatable, CustomStringConvertible {
    public enum Reason: Equatable, Sendable {
        /// No socket file, or nobody listening on it.
        case notReachable
        /// The socket exists but this user may not connect to it.
        case permissionDenied
        case timedOut
        case protocolError(String)
        case requestTooLarge(byteCount: Int)
        case failed(String)
    }

    public let path: String
    public let reason: Reason

    public init(path: String, reason: Reason) {
        self.path = path
        self.reason = reason
    }

    public var isNotReachable: Bool { reason == .notReachable }

    public var description: String {
        switch reason {
        case .notReachable:
            return "the local daemon is not reachable at \(path)"
        case .permissionDenied:
            return "permission denied connecting to the local daemon at \(path) (run as root or as the daemon's user)"
        case .timedOut:
            return "the local daemon at \(path) did not answer in time"
        case .protocolError(let why):
            return "protocol error talking to the local daemon at \(path): \(why)"
        case .requestTooLarge(let count):
            return "request of \(count) bytes is larger than the local control channel allows (\(LocalControlServer.maximumFrameLength))"
        case .failed(let why):
            return "cannot talk to the local daemon at \(path): \(why)"
        }
    }
}

public struct LocalControlServerError: Error, CustomStringConvertible {
    public let path: String
    public let reason: String

    public var description: String { "cannot listen on the control socket \(path): \(reason)" }
}

// MARK: - Server

public final class LocalControlServer: Sendable {
    public static let maximumFrameLength = 4 * 1024 * 1024
    /// sun_path holds 108 bytes including the terminating NUL.
    static let maximumPathLength = 107

    public struct Limits: Sendable {
        public var maximumConnections: Int
        /// Time a client has to send its complete request.
        public var requestTimeout: Duration

        public init(maximumConnections: Int = 32, requestTimeout: Duration = .seconds(10)) {
            self.maximumConnections = maximumConnections
            self.requestTimeout = requestTimeout
        }
    }

    public let path: String
    public var counters: LocalControlCounters { state.counters.withLock { $0 } }

    private let serverChannel: Channel
    private let state: LocalControlServerState
    private let acceptTask: Task<Void, Never>
    /// Identity of the socket file we created, so `close()` never removes a successor's.
    private let socketFileIdentity: FileIdentity?

    private init(
        path: String, serverChannel: Channel, state: LocalControlServerState, acceptTask: Task<Void, Never>,
        socketFileIdentity: FileIdentity?
    ) {
        self.path = path
        self.serverChannel = serverChannel
        self.state = state
        self.acceptTask = acceptTask
        self.socketFileIdentity = socketFileIdentity
    }

    /// Listens at `path`: removes a stale socket file (refusing when a daemon still answers
    /// there or the path is not a socket), binds, and makes the socket mode 0600.
    public static func start(
        path: String,
        limits: Limits = Limits(),
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        handler: @escaping @Sendable (LocalControlRequest) async -> [UInt8]
    ) async throws(LocalControlServerError) -> LocalControlServer {
        func failure(_ reason: String) -> LocalControlServerError { LocalControlServerError(path: path, reason: reason) }
        guard path.utf8.count <= maximumPathLength else {
            throw failure("the path is longer than \(maximumPathLength) bytes, the limit for UNIX sockets")
        }
        try await removeStaleSocket(at: path, eventLoopGroup: eventLoopGroup)

        // Bind under a temporary name, restrict it, then rename it into place: the final path
        // never exists with looser permissions. Too long a temporary name: bind in place.
        let temporaryPath = path + ".new"
        let bindPath = temporaryPath.utf8.count <= maximumPathLength ? temporaryPath : path

        let state = LocalControlServerState(limits: limits, handler: handler)
        let listener: NIOAsyncChannel<NIOAsyncChannel<ByteBuffer, Never>, Never>
        do {
            listener = try await ServerBootstrap(group: eventLoopGroup)
                .serverChannelOption(.backlog, value: 64)
                .bind(unixDomainSocketPath: bindPath, cleanupExistingSocketFile: true) { child in
                    child.eventLoop.makeCompletedFuture {
                        try Framing.wrapFramedStream(child, maximumFrameLength: maximumFrameLength)
                    }
                }
        } catch {
            throw failure(describeTransportError(error))
        }

        var placementError: LocalControlServerError?
        if chmod(bindPath, 0o600) != 0 {
            placementError = failure("chmod 600: \(String(cString: strerror(errno)))")
        } else if bindPath != path, rename(bindPath, path) != 0 {
            placementError = failure("rename into place: \(String(cString: strerror(errno)))")
        }
        if let placementError {
            unlink(bindPath)
            try? await listener.channel.close()
            throw placementError
        }

        let acceptTask = Task {
            await withDiscardingTaskGroup { group in
                do {
                    try await listener.executeThenClose { connections in
                        for try await connection in connections {
                            group.addTask { await state.serve(connection) }
                        }
                    }
                } catch {
                    // Listener closed: shutdown or a socket error.
                }
            }
        }
        return LocalControlServer(
            path: path, serverChannel: listener.channel, state: state,
            acceptTask: acceptTask, socketFileIdentity: FileIdentity(path: path)
        )
    }

    deinit {
        // Dropped without close(): stop listening (the file is left; the next start removes it).
        serverChannel.close(promise: nil)
        state.closeAllConnections()
        acceptTask.cancel()
    }

    /// Stops listening, closes open connections, waits for handlers and removes the socket file.
    public func close() async {
        try? await serverChannel.close()
        state.closeAllConnections()
        acceptTask.cancel()
        await acceptTask.value
        if let identity = socketFileIdentity, FileIdentity(path: path) == identity {
            unlink(path)
        }
    }

    private static func removeStaleSocket(at path: String, eventLoopGroup: any EventLoopGroup) async throws(LocalControlServerError) {
        var status = stat()
        guard lstat(path, &status) == 0 else {
            if errno == ENOENT { return }
            throw LocalControlServerError(path: path, reason: String(cString: strerror(errno)))
        }
        guard (status.st_mode & S_IFMT) == S_IFSOCK else {
            throw LocalControlServerError(path: path, reason: "the path exists and is not a socket; refusing to remove it")
        }
        do {
            // Someone answering means another daemon owns this path: do not steal it.
            let probe = try await ClientBootstrap(group: eventLoopGroup)
                .connectTimeout(.seconds(1))
                .connect(unixDomainSocketPath: path)
                .get()
            try? await probe.close()
        } catch {
            guard let ioError = error as? IOError, ioError.errnoCode == ECONNREFUSED || ioError.errnoCode == ENOENT else {
                throw LocalControlServerError(path: path, reason: "cannot check the existing socket: \(describeTransportError(error))")
            }
            guard unlink(path) == 0 || errno == ENOENT else {
                throw LocalControlServerError(path: path, reason: "cannot remove the stale socket: \(String(cString: strerror(errno)))")
            }
            return
        }
        throw LocalControlServerError(path: path, reason: "another daemon is already listening there")
    }
}

/// Device and inode of a file, to recognise "the same file" later.
struct FileIdentity: Equatable, Sendable {
    let device: UInt64
    let inode: UInt64

    init?(path: String) {
        var status = stat()
        guard lstat(path, &status) == 0 else { return nil }
        device = UInt64(status.st_dev)
        inode = UInt64(status.st_ino)
    }
}

/// Mirrors Linux `struct ucred` (pid_t, uid_t, gid_t), which the Glibc module does not export.
struct PeerCredentials: Sendable {
    var processID: Int32 = 0
    var userID: UInt32 = 0
    var groupID: UInt32 = 0
}

final class LocalControlServerState: Sendable {
    let limits: LocalControlServer.Limits
    let handler: @Sendable (LocalControlRequest) async -> [UInt8]
    let counters = Mutex(LocalControlCounters())
    private let connections: ConnectionRegistry

    init(limits: LocalControlServer.Limits, handler: @escaping @Sendable (LocalControlRequest) async -> [UInt8]) {
        self.limits = limits
        self.handler = handler
        self.connections = ConnectionRegistry(maximum: limits.maximumConnections)
    }

    func closeAllConnections() { connections.closeAll() }

    private func register(_ channel: Channel) -> UInt64? { connections.register(channel) }

    private func unregister(_ id: UInt64) { connections.unregister(id) }

    private func count(_ reason: LocalControlDropReason) {
        counters.withLock { $0.dropped[reason, default: 0] += 1 }
    }

    private enum PeerCheck {
        case allowed(PeerCredentials?)
        case refused
    }

    /// Root and the daemon's own user may command it; where the OS cannot tell, the 0600
    /// file mode is the only guard.
    private func checkPeer(of channel: Channel) async -> PeerCheck {
        #if os(Linux)
            guard let provider = channel as? SocketOptionProvider else { return .allowed(nil) }
            let future: EventLoopFuture<PeerCredentials> = provider.unsafeGetSocketOption(
                level: SocketOptionLevel(SOL_SOCKET), name: SocketOptionName(SO_PEERCRED)
            )
            guard let credentials = try? await future.get() else { return .refused }
            guard credentials.userID == 0 || credentials.userID == geteuid() else { return .refused }
            return .allowed(credentials)
        #else
            return .allowed(nil)
        #endif
    }

    func serve(_ connection: NIOAsyncChannel<ByteBuffer, Never>) async {
        let channel = connection.channel
        guard let id = register(channel) else {
            count(.tooManyConnections)
            try? await channel.close()
            return
        }
        defer { unregister(id) }
        counters.withLock { $0.connectionsAccepted += 1 }

        guard case .allowed(let credentials) = await checkPeer(of: channel) else {
            count(.unauthorizedPeer)
            try? await channel.close()
            return
        }

        let deadline = ChannelDeadline(channel: channel)
        deadline.arm(after: limits.requestTimeout)
        defer { deadline.disarm() }

        do {
            try await connection.executeThenClose { inbound in
                var frames = inbound.makeAsyncIterator()
                guard let frame = try await frames.next() else {
                    count(deadline.hasFired ? .timedOut : .malformedFrame)
                    return
                }
                deadline.disarm()
                let response = await handler(
                    LocalControlRequest(
                        payload: readableBytes(of: frame),
                        peerUserID: credentials?.userID,
                        peerProcessID: credentials?.processID
                    )
                )
                guard response.count <= LocalControlServer.maximumFrameLength else {
                    // Closing without an answer makes the client report a protocol error.
                    count(.oversize)
                    return
                }
                try await channel.writeAndFlush(Framing.frame(response, allocator: channel.allocator))
                counters.withLock { $0.requestsServed += 1 }
            }
        } catch {
            if error is FrameTooLargeError {
                count(.oversize)
            } else if deadline.hasFired {
                count(.timedOut)
            }
        }
    }
}

// MARK: - Client

public enum LocalControlClient {
    /// Sends one request to the daemon listening at `path` and returns its answer.
    public static func request(
        path: String,
        payload: [UInt8],
        timeout: Duration = .seconds(60),
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) async throws(LocalControlError) -> [UInt8] {
        func failure(_ reason: LocalControlError.Reason) -> LocalControlError { LocalControlError(path: path, reason: reason) }
        guard payload.count <= LocalControlServer.maximumFrameLength else { throw failure(.requestTooLarge(byteCount: payload.count)) }
        guard path.utf8.count <= LocalControlServer.maximumPathLength else {
            throw failure(.failed("the path is longer than \(LocalControlServer.maximumPathLength) bytes, the limit for UNIX sockets"))
        }
        let started = ContinuousClock.now

        let connection: NIOAsyncChannel<ByteBuffer, Never>
        do {
            connection = try await ClientBootstrap(group: eventLoopGroup)
                .connectTimeout(.nanoseconds(max(1, ChannelDeadline.nanoseconds(timeout))))
                .connect(unixDomainSocketPath: path) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try Framing.wrapFramedStream(channel, maximumFrameLength: LocalControlServer.maximumFrameLength)
                    }
                }
        } catch {
            if let ioError = error as? IOError {
                switch ioError.errnoCode {
                case ENOENT, ECONNREFUSED, ENOTDIR: throw failure(.notReachable)
                case EACCES, EPERM: throw failure(.permissionDenied)
                default: break
                }
            }
            if let channelError = error as? ChannelError, case .connectTimeout = channelError { throw failure(.timedOut) }
            throw failure(.failed(describeTransportError(error)))
        }

        let channel = connection.channel
        let deadline = ChannelDeadline(channel: channel)
        deadline.arm(after: timeout - (ContinuousClock.now - started))
        defer { deadline.disarm() }

        do {
            return try await connection.executeThenClose { inbound in
                try await channel.writeAndFlush(Framing.frame(payload, allocator: channel.allocator))
                var frames = inbound.makeAsyncIterator()
                guard let response = try await frames.next() else {
                    throw LocalControlError(path: path, reason: .protocolError("the daemon closed the connection without answering"))
                }
                return readableBytes(of: response)
            }
        } catch {
            if deadline.hasFired { throw failure(.timedOut) }
            switch error {
            case let known as LocalControlError: throw known
            case let tooLarge as FrameTooLargeError:
                throw failure(
                    .protocolError(
                        "the daemon announced an answer of \(tooLarge.announcedLength) bytes, more than \(tooLarge.maximumLength)"))
            default:
                throw failure(.failed(describeTransportError(error)))
            }
        }
    }
}
