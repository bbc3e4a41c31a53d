import Foundation
import UnderstudyEngine
import UnderstudyModel

#if canImport(Glibc)
    import Glibc
#endif

/// Frames on a serial line: each heartbeat datagram (sealed by `DatagramCodec`) behind a sync
/// marker and its length, so that a receiver that starts in the middle of a frame, or reads
/// garbage or a frame cut short, finds the next whole one.
///
/// ```
/// A5 5A C3 3C | datagram length u32 | CRC-16/CCITT of the 4 length bytes u16 | datagram
/// ```
public enum SerialFrame {
    public static let sync: [UInt8] = [0xA5, 0x5A, 0xC3, 0x3C]
    public static let headerLength = 4 + 4 + 2

    public static func frame(_ datagram: [UInt8]) -> [UInt8] {
        var bytes = sync
        bytes.reserveCapacity(headerLength + datagram.count)
        var length: [UInt8] = []
        WireBytes.append(UInt32(clamping: datagram.count), to: &length)
        bytes.append(contentsOf: length)
        WireBytes.append(crc16(length[...]), to: &bytes)
        bytes.append(contentsOf: datagram)
        return bytes
    }

    /// CRC-16/CCITT-FALSE (polynomial 0x1021, initial 0xFFFF).
    static func crc16(_ bytes: ArraySlice<UInt8>) -> UInt16 {
        var crc: UInt16 = 0xFFFF
        for byte in bytes {
            crc ^= UInt16(byte) << 8
            for _ in 0..<8 { crc = crc & 0x8000 != 0 ? (crc << 1) ^ 0x1021 : crc << 1 }
        }
        return crc
    }
}

/// Finds frames in the bytes read from a serial line. A candidate (a sync marker with a
/// length whose CRC holds and that is within bounds) is handed to `parse` once all of it has
/// arrived; when `parse` refuses it (a bad MAC: garbage or a frame cut short and followed by
/// the next one) the decoder moves one byte past the marker and looks again, so a whole
/// frame inside a refused candidate is still found. Memory stays below one maximal frame
/// plus what was appended last.
public struct SerialFrameDecoder: Sendable {
    public let maximumLength: Int
    private var buffer: [UInt8] = []
    private var start = 0
    private var skipping = false
    /// Runs of bytes skipped because they were not part of a frame that parsed.
    public private(set) var skippedRuns: UInt64 = 0
    public private(set) var skippedBytes: UInt64 = 0

    public init(maximumLength: Int = DatagramCodec.maximumDatagramSize) {
        self.maximumLength = maximumLength
    }

    public var bufferedCount: Int { buffer.count - start }

    public mutating func append(_ bytes: some Sequence<UInt8>) {
        if start > 0 && start * 2 >= buffer.count {
            buffer.removeFirst(start)
            start = 0
        }
        buffer.append(contentsOf: bytes)
    }

    /// Forgets everything buffered (the line was opened again).
    public mutating func reset() {
        buffer = []
        start = 0
        skipping = false
    }

    /// The next frame that `parse` accepts, or nil when more bytes are needed.
    ///
    /// While a candidate waits for the rest of its bytes, the candidates inside what has
    /// arrived are tried too: a frame cut short announces a length that takes in the frames
    /// after it, and those must not wait until the cut one is complete (a frame that parses
    /// carries a MAC: it cannot be part of another one).
    public mutating func next<T>(_ parse: ([UInt8]) -> T?) -> T? {
        let sync = SerialFrame.sync
        while true {
            guard let at = findSync(from: start) else {
                // Keep what could be the start of a marker split across two reads.
                skip(bufferedCount - min(bufferedCount, sync.count - 1))
                return nil
            }
            skip(at - start)
            switch candidate(at: start) {
            case .incomplete:
                var inner = start + 1
                while let next = findSync(from: inner) {
                    if case .complete(let length) = candidate(at: next), let parsed = parse(body(at: next, length: length)) {
                        skip(next - start)
                        return accept(parsed, at: next, length: length)
                    }
                    inner = next + 1
                }
                return nil
            case .invalid:
                skip(1)
            case .complete(let length):
                if let parsed = parse(body(at: start, length: length)) { return accept(parsed, at: start, length: length) }
                skip(1)
            }
        }
    }

    private enum Candidate {
        case incomplete
        case invalid
        case complete(length: Int)
    }

    /// What starts at `index` (a sync marker): a header whose CRC and length are right and
    /// whose body has arrived, or not yet, or no frame at all.
    private func candidate(at index: Int) -> Candidate {
        guard buffer.count - index >= SerialFrame.headerLength else { return .incomplete }
        let header = buffer[(index + 4)..<(index + SerialFrame.headerLength)]
        let length = Int(WireBytes.readUInt64(header, at: 0, width: 4))
        let check = UInt16(WireBytes.readUInt64(header, at: 4, width: 2))
        guard SerialFrame.crc16(header.prefix(4)) == check, length >= 1, length <= maximumLength else { return .invalid }
        return buffer.count - index >= SerialFrame.headerLength + length ? .complete(length: length) : .incomplete
    }

    private func body(at index: Int, length: Int) -> [UInt8] {
        Array(buffer[(index + SerialFrame.headerLength)..<(index + SerialFrame.headerLength + length)])
    }

    private mutating func accept<T>(_ parsed: T, at index: Int, length: Int) -> T {
        start = index + SerialFrame.headerLength + length
        skipping = false
        return parsed
    }

    private func findSync(from first: Int) -> Int? {
        let sync = SerialFrame.sync
        var index = first
        while index + sync.count <= buffer.count {
            if buffer[index] == sync[0] && buffer[index + 1] == sync[1] && buffer[index + 2] == sync[2] && buffer[index + 3] == sync[3] {
                return index
            }
            index += 1
        }
        return nil
    }

    private mutating func skip(_ count: Int) {
        guard count > 0 else { return }
        if !skipping {
            skipping = true
            skippedRuns += 1
        }
        skippedBytes += UInt64(count)
        start += count
    }
}

/// `comhb`: heartbeats over a serial line (a null-modem cable) between two servers.
///
/// The line is opened raw (termios: `cfmakeraw`, the configured speed, CLOCAL, no flow
/// control) and served by a thread of its own that waits in poll(2): it writes one frame at a
/// time, the newest heartbeat only (a slow line never queues old state: a heartbeat that
/// waits while a frame is still going out is replaced by the next), and reads and
/// authenticates what arrives. A line that fails (the device is gone, read or write errors,
/// hang-up) is closed, logged once, counted in `deviceError` and opened again every interval.
struct SerialHeartbeatTransport: BlockingHeartbeatTransport {
    let path: String
    let worker: SerialHeartbeatWorker
    let heartbeat: HeartbeatConfig
    let context: HeartbeatTransportContext

    static func open(_ heartbeat: HeartbeatConfig, _ context: HeartbeatTransportContext) async throws -> (any HeartbeatTransport)? {
        try open(heartbeat, context, firstSequence: 1)
    }

    static func open(_ heartbeat: HeartbeatConfig, _ context: HeartbeatTransportContext, firstSequence: UInt64) throws
        -> SerialHeartbeatTransport?
    {
        guard case .serial(let devices, let speed) = heartbeat.kind, let device = devices[context.me],
            let peer = devices.keys.filter({ $0 != context.me }).sorted().first
        else { return nil }
        guard let baud = SerialLine.speedConstant(speed) else {
            throw SerialLineError("speed: unsupported line speed \(speed)")
        }
        // The line itself may be unplugged at start (the path then waits for it); only what
        // can never work stops the daemon.
        var info = stat()
        if stat(device, &info) == 0, info.st_mode & S_IFMT != S_IFCHR {
            throw SerialLineError("devices.\(context.me): \(device) is not a character device (a serial port)")
        }
        let wake = try WakePipe()
        let state = BlockingPathState(
            path: heartbeat.name, type: heartbeat.typeName, events: context.events, wake: { [wake] in wake.signal() })
        let worker = SerialHeartbeatWorker(
            state: state, wake: wake, device: device, speed: baud, me: context.me, peer: peer,
            datagrams: DatagramCodec(key: context.key), bootID: context.bootID, firstSequence: firstSequence,
            interval: context.config.cluster.timing.heartbeatInterval)
        worker.start()
        return SerialHeartbeatTransport(path: heartbeat.name, worker: worker, heartbeat: heartbeat, context: context)
    }

    var state: BlockingPathState { worker.state }

    func reopened() async throws -> any HeartbeatTransport {
        worker.state.stop()
        guard let transport = try Self.open(heartbeat, context, firstSequence: worker.upcomingSequence) else {
            throw SerialLineError("\(path) is no longer a serial heartbeat of this server")
        }
        return transport
    }

}

public struct SerialLineError: Error, Equatable, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Opening and configuring a tty for comhb.
enum SerialLine {
    static func speedConstant(_ speed: Int) -> speed_t? {
        switch speed {
        case 1200: return speed_t(B1200)
        case 2400: return speed_t(B2400)
        case 4800: return speed_t(B4800)
        case 9600: return speed_t(B9600)
        case 19200: return speed_t(B19200)
        case 38400: return speed_t(B38400)
        case 57600: return speed_t(B57600)
        case 115200: return speed_t(B115200)
        case 230400: return speed_t(B230400)
        default: return nil
        }
    }

    static func errorText(_ code: Int32 = errno) -> String { String(cString: strerror(code)) }

    /// Opens `device` non-blocking and sets it raw: 8N1, `speed`, CLOCAL (no modem control),
    /// no hardware or software flow control, no echo, reads return what is there.
    static func open(_ device: String, speed: speed_t) throws(SerialLineError) -> Int32 {
        let fd = Glibc.open(device, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { throw SerialLineError("cannot open \(device): \(errorText())") }
        var settings = termios()
        guard tcgetattr(fd, &settings) == 0 else {
            let text = errorText()
            close(fd)
            throw SerialLineError("\(device) is not a terminal: \(text)")
        }
        cfmakeraw(&settings)
        settings.c_cflag |= tcflag_t(truncatingIfNeeded: CLOCAL) | tcflag_t(truncatingIfNeeded: CREAD)
        settings.c_cflag &= ~tcflag_t(truncatingIfNeeded: CRTSCTS)
        settings.c_iflag &=
            ~(tcflag_t(truncatingIfNeeded: IXON) | tcflag_t(truncatingIfNeeded: IXOFF) | tcflag_t(truncatingIfNeeded: IXANY))
        withUnsafeMutableBytes(of: &settings.c_cc) { characters in
            characters[Int(VMIN)] = 0
            characters[Int(VTIME)] = 0
        }
        cfsetispeed(&settings, speed)
        cfsetospeed(&settings, speed)
        guard tcsetattr(fd, TCSANOW, &settings) == 0 else {
            let text = errorText()
            close(fd)
            throw SerialLineError("cannot configure \(device): \(text)")
        }
        tcflush(fd, TCIOFLUSH)
        return fd
    }
}

/// A pipe that wakes a thread waiting in poll(2).
final class WakePipe: Sendable {
    let readEnd: Int32
    let writeEnd: Int32

    init() throws(SerialLineError) {
        var ends: [Int32] = [0, 0]
        guard pipe(&ends) == 0 else { throw SerialLineError("cannot create a pipe: \(SerialLine.errorText())") }
        for end in ends {
            _ = fcntl(end, F_SETFL, fcntl(end, F_GETFL) | O_NONBLOCK)
            _ = fcntl(end, F_SETFD, FD_CLOEXEC)
        }
        readEnd = ends[0]
        writeEnd = ends[1]
    }

    deinit {
        close(readEnd)
        close(writeEnd)
    }

    func signal() {
        var byte: UInt8 = 1
        _ = write(writeEnd, &byte, 1)  // a full pipe already wakes the reader
    }

    func drain() {
        var bytes = [UInt8](repeating: 0, count: 64)
        while read(readEnd, &bytes, bytes.count) > 0 {}
    }
}

/// The thread of one serial heartbeat path.
final class SerialHeartbeatWorker: @unchecked Sendable {
    let state: BlockingPathState
    let wake: WakePipe
    let device: String
    let speed: speed_t
    let me: String
    let peer: String
    let interval: Duration
    let bootID: UInt64
    /// Only the thread touches the fields below (after `start`).
    private var datagrams: DatagramCodec
    private var decoder = SerialFrameDecoder()
    private var nextSequence: UInt64
    private let sequenceLock = NSLock()

    init(
        state: BlockingPathState, wake: WakePipe, device: String, speed: speed_t, me: String, peer: String, datagrams: DatagramCodec,
        bootID: UInt64, firstSequence: UInt64, interval: Duration
    ) {
        self.state = state
        self.wake = wake
        self.device = device
        self.speed = speed
        self.me = me
        self.peer = peer
        self.datagrams = datagrams
        self.bootID = bootID
        self.nextSequence = firstSequence
        self.interval = interval
    }

    var upcomingSequence: UInt64 {
        sequenceLock.lock()
        defer { sequenceLock.unlock() }
        return nextSequence
    }

    func start() {
        let thread = Thread { [self] in run() }
        thread.name = "comhb \(state.path)"
        thread.start()
    }

    private func run() {
        var line: Int32 = -1
        var outgoing: [UInt8] = []
        var written = 0
        var nextAttempt = ContinuousClock.now
        defer { if line >= 0 { close(line) } }
        while !state.isStopped {
            if line < 0 {
                if ContinuousClock.now >= nextAttempt {
                    nextAttempt = .now + interval
                    do {
                        line = try state.io("opening \(device)") { () throws(SerialLineError) in try SerialLine.open(device, speed: speed) }
                        decoder.reset()
                        state.worked()
                    } catch {
                        state.failed("\(error)")
                    }
                }
                if line < 0 {
                    // No line: what is due now is stale by the time it could go.
                    let (heartbeat, stop) = state.wait(until: nextAttempt)
                    if stop { return }
                    if heartbeat != nil { state.counters.countSend(succeeded: false) }
                    continue
                }
            }
            var timeout = 100
            // One frame at a time: while one is going out, a newer heartbeat waits in `state`
            // (replacing any older one) and is taken when the line is free.
            if outgoing.isEmpty {
                let (due, next) = state.takeDue()
                if let due {
                    outgoing = frame(due) ?? []
                    written = 0
                } else if let next {
                    let milliseconds = BlockingPathState.seconds(ContinuousClock.now.duration(to: next)) * 1000
                    timeout = max(0, min(timeout, Int(milliseconds.rounded(.up))))
                }
            }
            var fds = [
                pollfd(fd: line, events: Int16(POLLIN) | (outgoing.isEmpty ? 0 : Int16(POLLOUT)), revents: 0),
                pollfd(fd: wake.readEnd, events: Int16(POLLIN), revents: 0),
            ]
            let ready = poll(&fds, nfds_t(fds.count), Int32(timeout))
            if ready < 0 {
                if errno == EINTR { continue }
                lineFailed(&line, "poll on \(device) failed: \(SerialLine.errorText())")
                continue
            }
            if fds[1].revents != 0 { wake.drain() }
            let events = fds[0].revents
            if events & Int16(POLLNVAL) != 0 {
                lineFailed(&line, "\(device) was closed")
                outgoing = []
                continue
            }
            if events & (Int16(POLLIN) | Int16(POLLHUP) | Int16(POLLERR)) != 0 {
                if let problem = receive(line) {
                    lineFailed(&line, problem)
                    outgoing = []
                    continue
                }
            }
            if !outgoing.isEmpty && events & Int16(POLLOUT) != 0 {
                let count = outgoing.withUnsafeBytes { bytes in
                    write(line, bytes.baseAddress.map { $0 + written }, outgoing.count - written)
                }
                if count < 0 && errno != EAGAIN && errno != EINTR {
                    lineFailed(&line, "write to \(device) failed: \(SerialLine.errorText())")
                    outgoing = []
                    state.counters.countSend(succeeded: false)
                    continue
                }
                written += max(0, count)
                if written >= outgoing.count {
                    outgoing = []
                    written = 0
                    state.counters.countSend(succeeded: true)
                }
            }
        }
    }

    private func lineFailed(_ line: inout Int32, _ reason: String) {
        if line >= 0 { close(line) }
        line = -1
        state.failed(reason)
    }

    /// Seals and frames a heartbeat that is still fresh.
    private func frame(_ heartbeat: PendingHeartbeat) -> [UInt8]? {
        guard ContinuousClock.now <= heartbeat.freshUntil else {
            state.counters.withLock { $0.staleNotSent += 1 }
            return nil
        }
        sequenceLock.lock()
        let sequence = nextSequence
        nextSequence &+= 1
        sequenceLock.unlock()
        guard let datagram = try? datagrams.seal(payload: heartbeat.payload, sender: me, bootID: bootID, sequence: sequence) else {
            state.counters.countSend(succeeded: false)
            return nil
        }
        return SerialFrame.frame(datagram)
    }

    /// Reads what is there and delivers every whole frame; the reason when the line failed.
    private func receive(_ line: Int32) -> String? {
        var chunk = [UInt8](repeating: 0, count: 4096)
        let count = chunk.withUnsafeMutableBytes { read(line, $0.baseAddress, $0.count) }
        if count < 0 {
            if errno == EAGAIN || errno == EINTR { return nil }
            return "read from \(device) failed: \(SerialLine.errorText())"
        }
        if count == 0 { return "\(device) was hung up" }
        consume(chunk.prefix(count))
        return nil
    }

    /// Feeds bytes read from the line to the decoder and delivers each new heartbeat of the
    /// peer (internal for tests).
    func consume(_ bytes: some Sequence<UInt8>) {
        let runsBefore = decoder.skippedRuns
        decoder.append(bytes)
        while let opened = decoder.next({ body -> DatagramCodec.Opened? in
            if case .success(let opened) = datagrams.authenticate(body) { return opened }
            return nil
        }) {
            guard opened.sender == peer else {
                state.count(.wrongSender)
                continue
            }
            if let reason = datagrams.replayGuard.admit(sender: opened.sender, bootID: opened.bootID, sequence: opened.sequence) {
                state.count(reason)
                continue
            }
            state.deliver(opened, from: device)
        }
        let runs = decoder.skippedRuns - runsBefore
        if runs > 0 { state.counters.withLock { $0.dropped[.badFrame, default: 0] += runs } }
    }
}
