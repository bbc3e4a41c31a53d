import Foundation
import NIOCore
import Synchronization

/// What a heartbeat path whose I/O can fail on its own (a disk or a serial line) tells the
/// daemon, once per change: it stopped working (the device is gone, returns errors or does
/// not answer), or it works again. The daemon logs each (diskhb/comhb 71, 72).
public enum HeartbeatPathEvent: Sendable, Equatable {
    case failed(path: String, type: String, reason: String)
    case recovered(path: String, type: String)
}

/// The newest heartbeat waiting for a path's I/O thread; a newer one replaces it.
struct PendingHeartbeat: Sendable {
    var payload: [UInt8]
    /// When it should leave (nil: at once).
    var deadline: ContinuousClock.Instant?
    /// Not sent at all after this (the next one is due).
    var freshUntil: ContinuousClock.Instant
}

/// What a heartbeat path's I/O thread shares with the daemon's tasks. The thread does every
/// blocking call; the daemon only hands it the newest heartbeat (`submit`) and never waits
/// for it, so a device stuck in uninterruptible I/O delays nothing but its own path.
final class BlockingPathState: @unchecked Sendable {
    let path: String
    let type: String
    let received: AsyncStream<ReceivedDatagram>
    let continuation: AsyncStream<ReceivedDatagram>.Continuation
    let counters = Mutex(TransportCounters())
    private let events: @Sendable (HeartbeatPathEvent) -> Void

    /// Guards `pending`, `stopped`, `failure`, `busySince` and `stuckReported`.
    private let condition = NSCondition()
    private var pending: PendingHeartbeat?
    private var stopped = false
    private var failure: String?
    private var busySince: ContinuousClock.Instant?
    private var busyWhat = ""
    private var stuckReported = false

    /// Wakes a thread that waits in poll(2) rather than on the condition (comhb).
    private let wake: (@Sendable () -> Void)?

    init(
        path: String, type: String, events: @escaping @Sendable (HeartbeatPathEvent) -> Void, wake: (@Sendable () -> Void)? = nil
    ) {
        self.path = path
        self.type = type
        self.events = events
        self.wake = wake
        (received, continuation) = AsyncStream<ReceivedDatagram>.makeStream(
            bufferingPolicy: .bufferingNewest(HeartbeatSocket.defaultReceiveQueueCapacity))
    }

    // MARK: The daemon's side

    /// Hands the thread the newest heartbeat; one still waiting is dropped (counted in
    /// `staleNotSent`): a slow or stuck device never builds a queue of old state.
    func submit(_ heartbeat: PendingHeartbeat) {
        condition.lock()
        if pending != nil { counters.withLock { $0.staleNotSent += 1 } }
        pending = heartbeat
        condition.signal()
        condition.unlock()
        wake?()
    }

    /// Ends the thread's loop (at its next wake: a thread stuck in the kernel is left to
    /// finish on its own) and the stream of received heartbeats.
    func stop() {
        condition.lock()
        stopped = true
        condition.signal()
        condition.unlock()
        wake?()
        continuation.finish()
    }

    /// Says once when one I/O call has not returned for longer than `limit` (a device in
    /// uninterruptible sleep): the thread cannot say it while it waits.
    func checkStuck(limit: Duration) {
        condition.lock()
        var reason: String?
        if let since = busySince, since.duration(to: .now) > limit, !stuckReported {
            stuckReported = true
            reason = "\(busyWhat) has not returned for more than \(limit)"
            if failure == nil {
                failure = reason
            } else {
                reason = nil
            }
        }
        condition.unlock()
        if let reason { events(.failed(path: path, type: type, reason: reason)) }
    }

    // MARK: The thread's side

    var isStopped: Bool {
        condition.lock()
        defer { condition.unlock() }
        return stopped
    }

    /// Waits until `until`, a heartbeat to send or stop; returns the heartbeat whose time has
    /// come (nil when woken for something else) and whether to stop.
    func wait(until: ContinuousClock.Instant) -> (heartbeat: PendingHeartbeat?, stop: Bool) {
        condition.lock()
        defer { condition.unlock() }
        while !stopped {
            let now = ContinuousClock.now
            if let due = pending, (due.deadline ?? now) <= now {
                pending = nil
                return (due, false)
            }
            var wake = until
            if let deadline = pending?.deadline { wake = min(wake, deadline) }
            if wake <= now { return (nil, false) }
            // At most 100 ms at a time: NSCondition waits on the wall clock, which may jump.
            let seconds = min(Self.seconds(now.duration(to: wake)), 0.1)
            _ = condition.wait(until: Date(timeIntervalSinceNow: seconds))
        }
        return (nil, true)
    }

    /// The heartbeat whose time has come, if any, without waiting; and when the next one is
    /// due (nil: none waiting).
    func takeDue() -> (heartbeat: PendingHeartbeat?, next: ContinuousClock.Instant?) {
        condition.lock()
        defer { condition.unlock() }
        let now = ContinuousClock.now
        guard let due = pending else { return (nil, nil) }
        if (due.deadline ?? now) <= now {
            pending = nil
            return (due, nil)
        }
        return (nil, due.deadline)
    }

    /// Runs one blocking call, visible to `checkStuck` while it runs.
    func io<T, E: Error>(_ what: String, _ call: () throws(E) -> T) throws(E) -> T {
        condition.lock()
        busySince = .now
        busyWhat = what
        condition.unlock()
        defer {
            condition.lock()
            busySince = nil
            stuckReported = false
            condition.unlock()
        }
        return try call()
    }

    /// The path failed (counted in `deviceError`); said once until it works again.
    func failed(_ reason: String) {
        counters.withLock { $0.dropped[.deviceError, default: 0] += 1 }
        condition.lock()
        let first = failure == nil
        failure = reason
        condition.unlock()
        if first { events(.failed(path: path, type: type, reason: reason)) }
    }

    /// A cycle worked; says so once after a failure.
    func worked() {
        condition.lock()
        let wasFailing = failure != nil
        failure = nil
        condition.unlock()
        if wasFailing { events(.recovered(path: path, type: type)) }
    }

    var isFailing: Bool {
        condition.lock()
        defer { condition.unlock() }
        return failure != nil
    }

    func count(_ reason: DropReason) { counters.withLock { $0.dropped[reason, default: 0] += 1 } }

    /// Queues an authenticated heartbeat for the daemon.
    func deliver(_ opened: DatagramCodec.Opened, from device: String) {
        let datagram = ReceivedDatagram(
            sender: opened.sender, bootID: opened.bootID, sequence: opened.sequence, payload: opened.payload,
            receivedAt: .now, remoteAddress: Self.address(of: device))
        counters.withLock { $0.accepted += 1 }
        if case .dropped = continuation.yield(datagram) { counters.withLock { $0.queueOverflow += 1 } }
    }

    /// Where a heartbeat came from, for a path without IP addresses: the device's path as a
    /// Unix-domain address (nothing connects to it; it only names the device).
    static func address(of device: String) -> SocketAddress {
        if let address = try? SocketAddress(unixDomainSocketPath: device) { return address }
        // Longer than a sockaddr_un holds: an empty IPv4 address that carries the name.
        return SocketAddress(sockaddr_in(), host: device)
    }

    static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }

    /// Wall-clock microseconds since 1970.
    static func wallMicros() -> UInt64 {
        UInt64(max(0, Date().timeIntervalSince1970 * 1_000_000))
    }
}

extension Mutex where Value == TransportCounters {
    /// Counts a sent heartbeat or a failed send.
    func countSend(succeeded: Bool) {
        withLock { counters in
            if succeeded { counters.sent += 1 } else { counters.sendFailures += 1 }
        }
    }
}

/// A heartbeat path served by an I/O thread of its own (`diskhb`, `comhb`): what the daemon
/// sees of it is the same for every such path.
protocol BlockingHeartbeatTransport: HeartbeatTransport {
    var state: BlockingPathState { get }
    var context: HeartbeatTransportContext { get }
}

extension BlockingHeartbeatTransport {
    var received: AsyncStream<ReceivedDatagram> { state.received }
    var counters: TransportCounters { state.counters.withLock { $0 } }

    /// Hands the newest heartbeat to the thread; never waits on the device.
    nonisolated(nonsending) func send(
        _ payload: [UInt8], at deadline: ContinuousClock.Instant?, freshUntil: ContinuousClock.Instant,
        sent: (@Sendable (Duration) -> Void)?
    ) async {
        state.checkStuck(limit: context.config.cluster.timing.heartbeatTimeout)
        state.submit(PendingHeartbeat(payload: payload, deadline: deadline, freshUntil: freshUntil))
    }

    func close() async { state.stop() }
}
