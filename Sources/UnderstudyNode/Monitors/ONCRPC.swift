import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// ONC RPC version 2 (RFC 5531) over TCP with record marking, as much as nfsw needs: calls
/// with AUTH_NONE or AUTH_SYS credentials, replies checked field by field. Replies are
/// untrusted bytes: every length is bounded before it is used.
enum ONCRPC {
    struct Failure: Error, CustomStringConvertible, Equatable {
        var description: String
        init(_ description: String) { self.description = description }
    }

    /// Largest reply accepted (all fragments together); nfsw's replies are a few hundred bytes.
    static let maximumReply = 1 << 20
    static let maximumFragments = 64

    enum Credential: Equatable {
        case none
        /// AUTH_SYS as root (uid 0, gid 0), naming this machine.
        case system(machine: String)
    }

    // MARK: - XDR

    struct Encoder {
        var bytes: [UInt8] = []
        mutating func uint32(_ value: UInt32) {
            bytes += [UInt8(value >> 24), UInt8(value >> 16 & 0xFF), UInt8(value >> 8 & 0xFF), UInt8(value & 0xFF)]
        }
        mutating func opaque(_ data: [UInt8]) {
            uint32(UInt32(data.count))
            bytes += data
            bytes += [UInt8](repeating: 0, count: (4 - data.count % 4) % 4)
        }
        mutating func string(_ text: String) { opaque(Array(text.utf8)) }
    }

    struct Decoder {
        let bytes: [UInt8]
        private(set) var offset = 0
        init(_ bytes: [UInt8]) { self.bytes = bytes }

        var remaining: [UInt8] { Array(bytes[offset...]) }

        mutating func uint32() throws(Failure) -> UInt32 {
            guard bytes.count - offset >= 4 else { throw Failure("the reply ends early") }
            defer { offset += 4 }
            return bytes[offset..<offset + 4].reduce(0) { $0 << 8 | UInt32($1) }
        }

        mutating func bool() throws(Failure) -> Bool {
            switch try uint32() {
            case 0: return false
            case 1: return true
            case let value: throw Failure("the reply holds \(value) where a boolean belongs")
            }
        }

        mutating func opaque(maximum: Int) throws(Failure) -> [UInt8] {
            let length = Int(try uint32())
            guard length <= maximum else { throw Failure("the reply holds a field of \(length) bytes (at most \(maximum))") }
            let padded = length + (4 - length % 4) % 4
            guard bytes.count - offset >= padded else { throw Failure("the reply ends early") }
            defer { offset += padded }
            return Array(bytes[offset..<offset + length])
        }

        mutating func string(maximum: Int) throws(Failure) -> String {
            String(decoding: try opaque(maximum: maximum), as: UTF8.self)
        }
    }

    // MARK: - Messages

    static func call(
        xid: UInt32, program: UInt32, version: UInt32, procedure: UInt32, credential: Credential = .none, arguments: [UInt8] = []
    ) -> [UInt8] {
        var message = Encoder()
        for value in [xid, 0 /* CALL */, 2 /* RPC version */, program, version, procedure] { message.uint32(value) }
        switch credential {
        case .none:
            message.uint32(0)
            message.opaque([])
        case .system(let machine):
            var body = Encoder()
            body.uint32(0)  // stamp
            body.string(String(machine.prefix(64)))
            body.uint32(0)  // uid
            body.uint32(0)  // gid
            body.uint32(0)  // no supplementary groups
            message.uint32(1)
            message.opaque(body.bytes)
        }
        message.uint32(0)  // verifier AUTH_NONE
        message.opaque([])
        message.bytes += arguments
        return message.bytes
    }

    /// One record: a single last fragment.
    static func record(_ message: [UInt8]) -> [UInt8] {
        var header = Encoder()
        header.uint32(0x8000_0000 | UInt32(message.count))
        return header.bytes + message
    }

    /// Reassembles a record from its fragments as bytes arrive. `append` answers the whole
    /// record once its last fragment is complete.
    struct RecordReader {
        private var buffer: [UInt8] = []
        private var record: [UInt8] = []
        private var fragments = 0

        mutating func append(_ bytes: some Collection<UInt8>) throws(Failure) -> [UInt8]? {
            buffer += bytes
            while buffer.count >= 4 {
                let header = buffer[0..<4].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
                let length = Int(header & 0x7FFF_FFFF)
                guard record.count + length <= ONCRPC.maximumReply else {
                    throw Failure("the reply is longer than \(ONCRPC.maximumReply) bytes")
                }
                guard buffer.count >= 4 + length else { return nil }
                record += buffer[4..<4 + length]
                buffer.removeFirst(4 + length)
                fragments += 1
                if header & 0x8000_0000 != 0 { return record }
                guard fragments < ONCRPC.maximumFragments else { throw Failure("the reply has too many fragments") }
            }
            return nil
        }
    }

    /// The results of an accepted, successful call; a denied or failed call is thrown with
    /// the reason the server gave.
    static func results(of reply: [UInt8], xid: UInt32) throws(Failure) -> [UInt8] {
        var decoder = Decoder(reply)
        guard try decoder.uint32() == xid else { throw Failure("the reply answers another call") }
        guard try decoder.uint32() == 1 else { throw Failure("the reply is not an RPC reply") }
        switch try decoder.uint32() {
        case 0:  // MSG_ACCEPTED
            _ = try decoder.uint32()  // verifier flavor
            _ = try decoder.opaque(maximum: 400)
            switch try decoder.uint32() {
            case 0: return decoder.remaining
            case 1: throw Failure("program unavailable")
            case 2:
                let low = try decoder.uint32()
                let high = try decoder.uint32()
                throw Failure("version not served (the server has versions \(low) to \(high))")
            case 3: throw Failure("procedure unavailable")
            case 4: throw Failure("the server could not decode the arguments")
            case 5: throw Failure("system error on the server")
            case let status: throw Failure("unknown accept status \(status)")
            }
        case 1:  // MSG_DENIED
            switch try decoder.uint32() {
            case 0:
                let low = try decoder.uint32()
                let high = try decoder.uint32()
                throw Failure("RPC version mismatch (the server speaks \(low) to \(high))")
            case 1: throw Failure("authentication rejected (auth status \(try decoder.uint32()))")
            case let status: throw Failure("call denied with unknown status \(status)")
            }
        case let status:
            throw Failure("unknown reply status \(status)")
        }
    }

    // MARK: - Client

    /// One TCP connection for a few calls, all bounded by one deadline. Blocking: call it
    /// from a thread of its own (`BlockingCall`).
    final class Connection {
        let fd: Int32
        let deadline: ContinuousClock.Instant
        let peer: String
        private var nextXID = UInt32.random(in: 1...UInt32.max / 2)

        init(host: String, port: Int, deadline: ContinuousClock.Instant) throws(Failure) {
            self.deadline = deadline
            peer = "\(host):\(port)"
            switch DeadlineSocket.connect(host: host, port: port, deadline: deadline) {
            case .success(let fd): self.fd = fd
            case .failure(let failure) where failure.resolved: throw Failure("cannot connect to \(peer): \(failure.reason)")
            case .failure(let failure): throw Failure(failure.reason)
            }
        }

        deinit { Glibc.close(fd) }

        /// Calls a procedure and answers its results.
        func call(
            program: UInt32, version: UInt32, procedure: UInt32, credential: Credential = .none, arguments: [UInt8] = []
        ) throws(Failure) -> [UInt8] {
            nextXID &+= 1
            let xid = nextXID
            try send(
                ONCRPC.record(
                    ONCRPC.call(
                        xid: xid, program: program, version: version, procedure: procedure, credential: credential,
                        arguments: arguments)))
            var reader = RecordReader()
            // Bounded: each round reads at least one byte of a reply of bounded size, or ends.
            for _ in 0..<(ONCRPC.maximumReply / 4) {
                guard DeadlineSocket.waitFor(fd, events: Int16(POLLIN), deadline: deadline) else {
                    throw Failure("\(peer) did not answer in time")
                }
                var chunk = [UInt8](repeating: 0, count: 16_384)
                let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                if count < 0 {
                    if errno == EAGAIN || errno == EINTR { continue }
                    throw Failure("reading from \(peer): \(String(cString: strerror(errno)))")
                }
                guard count > 0 else { throw Failure("\(peer) closed the connection") }
                if let reply = try reader.append(chunk[..<count]) { return try ONCRPC.results(of: reply, xid: xid) }
            }
            throw Failure("\(peer) sent too much")
        }

        private func send(_ message: [UInt8]) throws(Failure) {
            var sent = 0
            for _ in 0..<1000 where sent < message.count {
                guard DeadlineSocket.waitFor(fd, events: Int16(POLLOUT), deadline: deadline) else {
                    throw Failure("\(peer) did not take the call in time")
                }
                let written = message[sent...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                if written < 0 {
                    if errno == EAGAIN || errno == EINTR { continue }
                    throw Failure("sending to \(peer): \(String(cString: strerror(errno)))")
                }
                sent += written
            }
            guard sent == message.count else { throw Failure("\(peer) did not take the call") }
        }
    }
}
