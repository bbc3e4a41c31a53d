import NIOCore
import NIOPosix
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// A heartbeat datagram that passed authentication and the replay guard.
public struct ReceivedDatagram: Sendable {
    public var sender: String
    public var bootID: UInt64
    public var sequence: UInt64
    public var payload: [UInt8]
    /// Monotonic time taken when the datagram was read from the socket.
    public var receivedAt: ContinuousClock.Instant
    public var remoteAddress: SocketAddress

    public init(
        sender: String, bootID: UInt64, sequence: UInt64, payload: [UInt8], receivedAt: ContinuousClock.Instant,
        remoteAddress: SocketAddress
    ) {
        self.sender = sender
        self.bootID = bootID
        self.sequence = sequence
        self.payload = payload
        self.receivedAt = receivedAt
        self.remoteAddress = remoteAddress
    }
}

/// What a heartbeat socket has done so far; a snapshot, safe to read from any task.
public struct TransportCounters: Sendable, Equatable {
    /// Datagrams that passed every check and were queued for the consumer.
    public var accepted: UInt64 = 0
    /// Datagrams discarded before reaching the queue, by reason.
    public var dropped: [DropReason: UInt64] = [:]
    /// Datagrams whose authentication failed, by source IP address (at most
    /// `maximumBadMACSources` addresses; the daemon names a configured server whose address
    /// sends them: the keys differ).
    public var badMACSources: [String: UInt64] = [:]
    public static let maximumBadMACSources = 64
    /// Accepted datagrams pushed out of the full receive queue (the consumer was too slow).
    public var queueOverflow: UInt64 = 0
    public var sent: UInt64 = 0
    /// Scheduled heartbeats not sent because they were no longer fresh when their time came
    /// (the process or the machine stood still in between): a fresh one follows instead.
    public var staleNotSent: UInt64 = 0
    /// Sends that failed (address, sealing or socket error); never thrown at the caller.
    public var sendFailures: UInt64 = 0
    /// What the newest failed send of a LAN path met, with its destination ("sendto
    /// 10.0.0.2:29001: Operation not permitted"), for the daemon's warning (`lanhb 14`). Paths
    /// that report their failures otherwise (diskhb, comhb, witnesshb: `nm 4`) leave it nil.
    public var lastSendFailure: String?

    public init() {}

    public func dropped(_ reason: DropReason) -> UInt64 { dropped[reason] ?? 0 }
    public var totalDropped: UInt64 { dropped.values.reduce(0, +) }
}

public struct HeartbeatSocketError: Error, CustomStringConvertible {
    public let host: String
    public let port: Int
    public let reason: String

    public var description: String { "cannot bind UDP heartbeat socket to \(host):\(port): \(reason)" }
}

/// A UDP endpoint for LAN heartbeats: seals outgoing payloads, authenticates and de-duplicates
/// incoming ones and hands them to a single consumer through `received`.
///
/// The receive path runs on the NIO event loop and never waits for the consumer: the queue is
/// bounded and drops its oldest entry when full (counted as `queueOverflow`). Sends do not go
/// through the event loop: each datagram is sealed and written with one `sendto` on a
/// duplicate of the socket's descriptor from the sender's own thread (same socket, same source
/// address and port), so a heartbeat costs no wake-up of the event loop.
public final class HeartbeatSocket: Sendable {
    public static let defaultReceiveQueueCapacity = 1024

    public let localName: String
    public let bootID: UInt64
    /// The bound address (with the port the OS chose when bound to port 0).
    public let localAddress: SocketAddress
    /// Authenticated datagrams in arrival order. Iterate from one task only.
    public let received: AsyncStream<ReceivedDatagram>

    private let channel: Channel
    /// A duplicate of the channel's descriptor for `sendto`; nil once closed (under the lock,
    /// so no send can use a descriptor number closed meanwhile).
    private let sendDescriptor: Mutex<Int32?>
    private let codec: DatagramCodec
    private let state: HeartbeatSharedState
    private let nextSequence: Atomic<UInt64>

    /// The sequence number the next datagram will carry (a socket bound again for the same
    /// boot continues from here: the peers' replay guards would drop anything lower).
    public var upcomingSequence: UInt64 { nextSequence.load(ordering: .relaxed) }
    private let resolvedHosts = Mutex<[String: SocketAddress]>([:])

    public var localPort: Int { localAddress.port ?? 0 }
    public var counters: TransportCounters { state.counters.withLock { $0 } }

    private init(
        channel: Channel, sendDescriptor: Int32, codec: DatagramCodec, state: HeartbeatSharedState,
        received: AsyncStream<ReceivedDatagram>, localName: String, bootID: UInt64, localAddress: SocketAddress,
        firstSequence: UInt64
    ) {
        self.nextSequence = Atomic(firstSequence)
        self.channel = channel
        self.sendDescriptor = Mutex(sendDescriptor)
        self.codec = codec
        self.state = state
        self.received = received
        self.localName = localName
        self.bootID = bootID
        self.localAddress = localAddress
    }

    /// Binds a UDP socket to exactly `host:port` (several servers can share a port on one
    /// host by binding different 127.0.0.x addresses). SO_REUSEADDR is deliberately not set:
    /// on Linux it would let a second daemon bind the same UDP address and silently steal
    /// its heartbeats; a clash fails here with "address already in use" instead.
    public static func bind(
        host: String,
        port: Int,
        key: ClusterKey,
        localName: String,
        bootID: UInt64,
        firstSequence: UInt64 = 1,
        receiveQueueCapacity: Int = defaultReceiveQueueCapacity,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) async throws(HeartbeatSocketError) -> HeartbeatSocket {
        guard NodeName.isValid(localName) else {
            throw HeartbeatSocketError(host: host, port: port, reason: DatagramCodec.SealError.invalidSenderName(localName).description)
        }
        let codec = DatagramCodec(key: key)
        let state = HeartbeatSharedState()
        let (stream, continuation) = AsyncStream<ReceivedDatagram>.makeStream(
            bufferingPolicy: .bufferingNewest(max(1, receiveQueueCapacity))
        )

        // The socket is made and bound here, then handed to NIO, so that a duplicate of its
        // descriptor can send without the event loop.
        let descriptor: Int32
        switch Self.boundSocket(host: host, port: port) {
        case .success(let bound): descriptor = bound
        case .failure(let reason):
            continuation.finish()
            throw HeartbeatSocketError(host: host, port: port, reason: reason.description)
        }
        let sendDescriptor = fcntl(descriptor, F_DUPFD_CLOEXEC, 0)
        guard sendDescriptor >= 0 else {
            let reason = String(cString: strerror(errno))
            Glibc.close(descriptor)
            continuation.finish()
            throw HeartbeatSocketError(host: host, port: port, reason: "cannot duplicate the socket: \(reason)")
        }
        let channel: Channel
        do {
            channel = try await DatagramBootstrap(group: eventLoopGroup)
                // Room for the largest possible datagram so nothing is silently cut short.
                .channelOption(.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: 65_536))
                .channelOption(.maxMessagesPerRead, value: 16)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(
                            HeartbeatReceiveHandler(codec: codec, state: state, continuation: continuation)
                        )
                    }
                }
                .withBoundSocket(descriptor)
                .get()
        } catch {
            // NIO took the descriptor over and closed it; the duplicate is ours.
            Glibc.close(sendDescriptor)
            continuation.finish()
            throw HeartbeatSocketError(host: host, port: port, reason: describeTransportError(error))
        }
        guard let localAddress = channel.localAddress else {
            try? await channel.close()
            Glibc.close(sendDescriptor)
            continuation.finish()
            throw HeartbeatSocketError(host: host, port: port, reason: "the socket has no local address")
        }
        return HeartbeatSocket(
            channel: channel, sendDescriptor: sendDescriptor, codec: codec, state: state, received: stream,
            localName: localName, bootID: bootID, localAddress: localAddress, firstSequence: firstSequence
        )
    }

    /// Seals `payload` with the next sequence number and sends it. Failures are counted in
    /// `counters.sendFailures`, never thrown: a heartbeat loop must keep going.
    nonisolated(nonsending) public func send(_ payload: [UInt8], to host: String, port: Int) async {
        guard let address = await resolve(host: host, port: port) else {
            state.counters.withLock {
                $0.sendFailures += 1
                $0.lastSendFailure = "cannot resolve \(host)"
            }
            return
        }
        await send(payload, to: address)
    }

    nonisolated(nonsending) public func send(_ payload: [UInt8], to address: SocketAddress) async {
        sendSealed(payload, to: [address])
    }

    /// Sends `payload` to every address of `hosts` now, from the caller's thread: the periodic
    /// heartbeat, prepared ahead of its `deadline` (a busy caller then still sends it on time),
    /// leaves as soon as it is ready. A payload ready only after `freshUntil` is not sent at
    /// all (counted in `staleNotSent`): after a stall of the whole process, state from before
    /// it must not reach the peers as news. `sent` is told how late it left (zero when it
    /// left before its deadline). Each datagram is sealed as it is written, so sequence
    /// numbers follow the order on the wire.
    nonisolated(nonsending) public func send(
        _ payload: [UInt8], toHosts hosts: [String], port: Int, at deadline: ContinuousClock.Instant,
        freshUntil: ContinuousClock.Instant, sent: (@Sendable (Duration) -> Void)? = nil
    ) async {
        var addresses: [SocketAddress] = []
        addresses.reserveCapacity(hosts.count)
        for host in hosts {
            if let address = await resolve(host: host, port: port) {
                addresses.append(address)
            } else {
                state.counters.withLock {
                    $0.sendFailures += 1
                    $0.lastSendFailure = "cannot resolve \(host)"
                }
            }
        }
        let now = ContinuousClock.now
        sent?(max(.zero, deadline.duration(to: now)))
        guard now <= freshUntil else {
            state.counters.withLock { $0.staleNotSent += 1 }
            return
        }
        sendSealed(payload, to: addresses)
    }

    /// Seals `payload` once per address with the next sequence number and writes it with
    /// `sendto` (non-blocking: a full socket buffer is a failed send, counted, as a lost
    /// datagram would be).
    private func sendSealed(_ payload: [UInt8], to addresses: [SocketAddress]) {
        var sent: UInt64 = 0
        var failed: UInt64 = 0
        var failure: String?
        sendDescriptor.withLock { descriptor in
            for address in addresses {
                let sequence = nextSequence.wrappingAdd(1, ordering: .relaxed).oldValue
                guard let descriptor else {
                    failed += 1
                    failure = "the socket is closed"
                    continue
                }
                let datagram: [UInt8]
                do {
                    datagram = try codec.seal(payload: payload, sender: localName, bootID: bootID, sequence: sequence)
                } catch {
                    failed += 1
                    failure = "cannot seal the heartbeat: \(error)"
                    continue
                }
                let written = datagram.withUnsafeBytes { bytes in
                    address.withSockAddr { socketAddress, length in
                        sendto(descriptor, bytes.baseAddress, bytes.count, Int32(MSG_NOSIGNAL), socketAddress, socklen_t(length))
                    }
                }
                if written == datagram.count {
                    sent += 1
                } else {
                    failed += 1
                    let reason = written < 0 ? String(cString: strerror(errno)) : "only \(written) of \(datagram.count) bytes written"
                    failure = "sendto \(Self.describe(address)): \(reason)"
                }
            }
        }
        state.counters.withLock {
            $0.sent += sent
            $0.sendFailures += failed
            if let failure { $0.lastSendFailure = failure }
        }
    }

    /// "10.0.0.2:29001", "[fd00::2]:29001".
    static func describe(_ address: SocketAddress) -> String {
        let ip = address.ipAddress ?? "?"
        let port = address.port.map(String.init) ?? "?"
        return address.protocol == .inet6 ? "[\(ip)]:\(port)" : "\(ip):\(port)"
    }

    /// A UDP socket bound to exactly `host:port`, non-blocking, close-on-exec.
    private static func boundSocket(host: String, port: Int) -> Result<Int32, BindFailure> {
        let address: SocketAddress
        do {
            address = try SocketAddress.makeAddressResolvingHost(host, port: port)
        } catch {
            return .failure(BindFailure(description: describeTransportError(error)))
        }
        let family: Int32 = address.protocol == .inet6 ? AF_INET6 : AF_INET
        let descriptor = socket(family, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else { return .failure(BindFailure(description: String(cString: strerror(errno)))) }
        let result = address.withSockAddr { socketAddress, length in Glibc.bind(descriptor, socketAddress, socklen_t(length)) }
        guard result == 0 else {
            let reason = String(cString: strerror(errno))
            Glibc.close(descriptor)
            return .failure(BindFailure(description: reason))
        }
        return .success(descriptor)
    }

    struct BindFailure: Error, CustomStringConvertible {
        var description: String
    }

    deinit {
        // Dropped without close(): release the port.
        channel.close(promise: nil)
        sendDescriptor.withLock { descriptor in
            if let open = descriptor { Glibc.close(open) }
            descriptor = nil
        }
    }

    /// Closes the socket and ends `received`. Safe to call more than once.
    public func close() async {
        sendDescriptor.withLock { descriptor in
            if let open = descriptor { Glibc.close(open) }
            descriptor = nil
        }
        try? await channel.close()
    }

    /// IP literals are used directly; names are resolved once, off the event loop, and cached.
    nonisolated(nonsending) private func resolve(host: String, port: Int) async -> SocketAddress? {
        if let address = try? SocketAddress(ipAddress: host, port: port) { return address }
        let cacheKey = "\(host)|\(port)"
        if let cached = resolvedHosts.withLock({ $0[cacheKey] }) { return cached }
        guard
            let address = try? await NIOThreadPool.singleton.runIfActive({
                try SocketAddress.makeAddressResolvingHost(host, port: port)
            })
        else { return nil }
        resolvedHosts.withLock { $0[cacheKey] = address }
        return address
    }
}

/// State shared between the event-loop handler and the public socket object.
final class HeartbeatSharedState: Sendable {
    let counters = Mutex(TransportCounters())
}

/// Runs on the channel's event loop: authenticates each datagram and queues the good ones.
final class HeartbeatReceiveHandler: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>

    private var codec: DatagramCodec
    private let state: HeartbeatSharedState
    private let continuation: AsyncStream<ReceivedDatagram>.Continuation

    init(codec: DatagramCodec, state: HeartbeatSharedState, continuation: AsyncStream<ReceivedDatagram>.Continuation) {
        self.codec = codec
        self.state = state
        self.continuation = continuation
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let receivedAt = ContinuousClock.now
        let envelope = Self.unwrapInboundIn(data)
        guard envelope.data.readableBytes <= DatagramCodec.maximumDatagramSize else {
            count(.oversize)
            return
        }
        switch codec.open(readableBytes(of: envelope.data)) {
        case .failure(let reason):
            count(reason)
            if reason == .badMAC, let source = envelope.remoteAddress.ipAddress {
                state.counters.withLock { counters in
                    if counters.badMACSources[source] != nil || counters.badMACSources.count < TransportCounters.maximumBadMACSources {
                        counters.badMACSources[source, default: 0] += 1
                    }
                }
            }
        case .success(let opened):
            let datagram = ReceivedDatagram(
                sender: opened.sender, bootID: opened.bootID, sequence: opened.sequence,
                payload: opened.payload, receivedAt: receivedAt, remoteAddress: envelope.remoteAddress
            )
            // Counted before the consumer can see it, so a reader of the counters who has
            // the datagram also finds it counted.
            state.counters.withLock { $0.accepted += 1 }
            if case .dropped = continuation.yield(datagram) {
                state.counters.withLock { $0.queueOverflow += 1 }
            }
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // Per-datagram socket errors (e.g. ICMP port unreachable) must not close a heartbeat
        // socket; they are not passed on.
    }

    func channelInactive(context: ChannelHandlerContext) {
        continuation.finish()
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        continuation.finish()
    }

    private func count(_ reason: DropReason) {
        state.counters.withLock { $0.dropped[reason, default: 0] += 1 }
    }
}
