import NIOCore
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

// Small pieces shared by the transports: big-endian byte helpers, secure random bytes,
// node-name validation, length-prefixed framing and connection deadlines.

enum WireBytes {
    static func append(_ value: UInt16, to bytes: inout [UInt8]) {
        bytes.append(UInt8(truncatingIfNeeded: value >> 8))
        bytes.append(UInt8(truncatingIfNeeded: value))
    }

    static func append(_ value: UInt32, to bytes: inout [UInt8]) {
        for shift in stride(from: 24, through: 0, by: -8) {
            bytes.append(UInt8(truncatingIfNeeded: value >> UInt32(shift)))
        }
    }

    static func append(_ value: UInt64, to bytes: inout [UInt8]) {
        for shift in stride(from: 56, through: 0, by: -8) {
            bytes.append(UInt8(truncatingIfNeeded: value >> UInt64(shift)))
        }
    }

    /// Reads a big-endian integer of `width` bytes at `offset` (relative to the slice start).
    /// Callers check lengths first; an out-of-range read would trap, never return garbage.
    static func readUInt64(_ bytes: ArraySlice<UInt8>, at offset: Int, width: Int = 8) -> UInt64 {
        var value: UInt64 = 0
        let start = bytes.startIndex + offset
        for index in start..<(start + width) {
            value = (value << 8) | UInt64(bytes[index])
        }
        return value
    }
}

public enum SecureRandom {
    /// Cryptographically secure random bytes (SystemRandomNumberGenerator uses getrandom(2)).
    public static func bytes(_ count: Int) -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        return (0..<count).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
    }
}

/// Node names travel in every datagram and frame. They are the `servers:` names of the
/// configuration, i.e. host names: 1–63 bytes of letters, digits, '-', '_' and '.',
/// starting with a letter or digit.
public enum NodeName {
    public static let maximumLength = 63

    public static func isValid(_ name: String) -> Bool {
        isValid(utf8: Array(name.utf8))
    }

    static func isValid(utf8 bytes: some Collection<UInt8>) -> Bool {
        guard let first = bytes.first, bytes.count <= maximumLength else { return false }
        guard isAlphanumeric(first) else { return false }
        return bytes.allSatisfy { isAlphanumeric($0) || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: ".") }
    }

    private static func isAlphanumeric(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte)
            || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
            || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
    }
}

/// Thrown by `LengthPrefixedFrameDecoder` when a peer announces a frame above the cap; the
/// connection is then closed before any memory is reserved for it.
struct FrameTooLargeError: Error {
    let announcedLength: Int
    let maximumLength: Int
}

/// Splits a TCP or UNIX stream into frames of `4-byte big-endian length + body`.
/// The length is checked against the cap before waiting for (or buffering) the body.
struct LengthPrefixedFrameDecoder: ByteToMessageDecoder {
    typealias InboundOut = ByteBuffer

    let maximumFrameLength: Int

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let length = buffer.getInteger(at: buffer.readerIndex, as: UInt32.self) else {
            return .needMoreData
        }
        guard Int(length) <= maximumFrameLength else {
            throw FrameTooLargeError(announcedLength: Int(length), maximumLength: maximumFrameLength)
        }
        guard buffer.readableBytes >= 4 + Int(length) else { return .needMoreData }
        buffer.moveReaderIndex(forwardBy: 4)
        guard let frame = buffer.readSlice(length: Int(length)) else { return .needMoreData }
        context.fireChannelRead(Self.wrapInboundOut(frame))
        return .continue
    }

    mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        // A partial frame at EOF is simply discarded; the reader sees the end of the stream.
        while try decode(context: context, buffer: &buffer) == .continue {}
        buffer.clear()
        return .needMoreData
    }
}

enum Framing {
    static func frame(_ body: [UInt8], allocator: ByteBufferAllocator) -> ByteBuffer {
        var buffer = allocator.buffer(capacity: 4 + body.count)
        buffer.writeInteger(UInt32(truncatingIfNeeded: body.count))
        buffer.writeBytes(body)
        return buffer
    }

    /// Installs the frame decoder and wraps the channel for async use. Call on the event loop
    /// (inside a bootstrap initializer). At most two decoded frames wait for the reader before
    /// NIO stops reading the socket, so an unauthenticated peer can make us hold only about
    /// three frames (two queued, one being assembled) per connection.
    static func wrapFramedStream(_ channel: Channel, maximumFrameLength: Int) throws -> NIOAsyncChannel<ByteBuffer, Never> {
        try channel.pipeline.syncOperations.addHandler(
            ByteToMessageHandler(LengthPrefixedFrameDecoder(maximumFrameLength: maximumFrameLength))
        )
        return try NIOAsyncChannel<ByteBuffer, Never>(
            wrappingChannelSynchronously: channel,
            configuration: NIOAsyncChannel.Configuration(backPressureStrategy: .init(lowWatermark: 1, highWatermark: 2))
        )
    }
}

/// Closes a channel when a deadline passes, and remembers that it did, so the code waiting
/// on the channel can tell a timeout from a peer that hung up.
final class ChannelDeadline: Sendable {
    private let channel: Channel
    private let scheduled: Mutex<Scheduled<Void>?>
    private let fired = Atomic<Bool>(false)

    init(channel: Channel) {
        self.channel = channel
        self.scheduled = Mutex(nil)
    }

    var hasFired: Bool { fired.load(ordering: .acquiring) }

    /// Replaces any earlier deadline. A non-positive duration fires at once.
    func arm(after duration: Duration) {
        let nanoseconds = max(0, Self.nanoseconds(duration))
        let channel = self.channel
        let task = channel.eventLoop.scheduleTask(in: .nanoseconds(nanoseconds)) { [self] in
            self.fired.store(true, ordering: .releasing)
            channel.close(promise: nil)
        }
        let previous = scheduled.withLock { slot in
            let old = slot
            slot = task
            return old
        }
        previous?.cancel()
    }

    func disarm() {
        let previous = scheduled.withLock { slot in
            let old = slot
            slot = nil
            return old
        }
        previous?.cancel()
    }

    static func nanoseconds(_ duration: Duration) -> Int64 {
        let (seconds, attoseconds) = duration.components
        let (scaled, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        if overflow { return seconds < 0 ? Int64.min / 2 : Int64.max / 2 }
        return scaled.addingReportingOverflow(attoseconds / 1_000_000_000).partialValue
    }
}

/// The readable bytes of a buffer, copied out (callers cap the size before calling this).
func readableBytes(of buffer: ByteBuffer) -> [UInt8] {
    buffer.getBytes(at: buffer.readerIndex, length: buffer.readableBytes) ?? []
}

/// Human-readable description of a socket-level error without dumping internal types.
func describeTransportError(_ error: any Error) -> String {
    if let ioError = error as? IOError {
        return String(cString: strerror(ioError.errnoCode))
    }
    return String(describing: error)
}
