import Foundation
import UnderstudyModel

#if canImport(Glibc)
    import Glibc
#endif

/// An alert as syslog and journald take it: RFC 5424 lines (with STRUCTURED-DATA naming the
/// module, event id, server and cluster) and journald's native fields.
public enum SyslogFormat {
    /// SD-ID of the structured data. 32473 is the enterprise number RFC 5612 sets aside for
    /// examples and documentation; Understudy has no registered number of its own.
    public static let structuredDataID = "understudy@32473"

    /// RFC 5424 severities: error 3, warning 4, informational 6.
    public static func severity(_ level: LogLevel) -> Int {
        switch level {
        case .info: 6
        case .warning: 4
        case .error: 3
        }
    }

    /// `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID [SD] MSG`. MSG keeps CLUSTERPRO's
    /// syslog text (`ERROR: <type: rm><event: 9> …`, reference §7.2), so filters written
    /// for it still match.
    public static func rfc5424(_ alert: AlertEvent, tag: String, facility: Int, processID: Int32 = getpid()) -> String {
        let priority = facility * 8 + severity(alert.level)
        let host = headerField(alert.server, limit: 255)
        let messageID = headerField("\(alert.module)-\(alert.eventID)", limit: 32)
        let data =
            "[\(structuredDataID) module=\"\(escape(alert.module))\" id=\"\(alert.eventID)\" server=\"\(escape(alert.server))\" cluster=\"\(escape(alert.cluster))\"]"
        return
            "<\(priority)>1 \(UTCTimestamp.milliseconds(alert.time)) \(host) \(headerField(tag, limit: 48)) \(processID) \(messageID) \(data) "
            + text(alert)
    }

    /// The message text: `LEVEL: <type: MODULE><event: ID> message`, on one line.
    public static func text(_ alert: AlertEvent) -> String {
        let line = alert.message.replacingOccurrences(of: "\r", with: " ").replacingOccurrences(of: "\n", with: " ")
        return "\(alert.level.rawValue): <type: \(alert.module)><event: \(alert.eventID)> \(line)"
    }

    /// RFC 6587 octet counting for TCP: `LENGTH SP MESSAGE`.
    public static func octetCounted(_ message: String) -> [UInt8] {
        let bytes = Array(message.utf8)
        return Array("\(bytes.count) ".utf8) + bytes
    }

    /// journald's native protocol: `FIELD=value` lines; a value with a newline is written as
    /// `FIELD\n`, its length as 64-bit little endian, the value and `\n`.
    public static func journalFields(_ alert: AlertEvent, tag: String, facility: Int) -> [UInt8] {
        let fields: [(String, String)] = [
            ("MESSAGE", text(alert)), ("PRIORITY", String(severity(alert.level))), ("SYSLOG_IDENTIFIER", tag),
            ("SYSLOG_FACILITY", String(facility)), ("UNDERSTUDY_MODULE", alert.module), ("UNDERSTUDY_EVENT_ID", String(alert.eventID)),
            ("UNDERSTUDY_SERVER", alert.server), ("UNDERSTUDY_CLUSTER", alert.cluster), ("UNDERSTUDY_LEVEL", alert.level.rawValue),
        ]
        var bytes: [UInt8] = []
        for (name, value) in fields {
            let data = Array(value.utf8)
            if data.contains(UInt8(ascii: "\n")) {
                bytes += Array(name.utf8) + [UInt8(ascii: "\n")]
                withUnsafeBytes(of: UInt64(data.count).littleEndian) { bytes += $0 }
                bytes += data + [UInt8(ascii: "\n")]
            } else {
                bytes += Array("\(name)=".utf8) + data + [UInt8(ascii: "\n")]
            }
        }
        return bytes
    }

    /// SD-PARAM values escape `"`, `\` and `]` (RFC 5424 §6.3.3).
    static func escape(_ value: String) -> String {
        var escaped = ""
        for character in value {
            if character == "\"" || character == "\\" || character == "]" { escaped.append("\\") }
            escaped.append(character)
        }
        return escaped
    }

    /// A header field: printable US-ASCII without spaces, at most `limit` characters, `-`
    /// when nothing is left.
    static func headerField(_ value: String, limit: Int) -> String {
        let kept = String(String.UnicodeScalarView(value.unicodeScalars.filter { $0.value > 32 && $0.value < 127 }).prefix(limit))
        return kept.isEmpty ? "-" : kept
    }
}

/// Sends alerts to the local syslog socket (journald's native socket instead when it
/// exists) and, when configured, to a remote syslog server over UDP or TCP. One attempt sends
/// to each; it fails when any of them does (a retry sends to all again: define two
/// destinations to retry local and remote separately).
public struct SyslogDestination: AlertDestination {
    public let name: String
    let settings: SyslogDestinationSettings
    let facility: Int
    static let remoteTimeout: Duration = .seconds(5)
    private let tcpCall = BlockingCall()

    public init(name: String, settings: SyslogDestinationSettings) {
        self.name = name
        self.settings = settings
        facility = SyslogDestinationSettings.facilities[settings.facility] ?? 3
    }

    public func deliver(_ alert: AlertEvent) async throws {
        var problems: [String] = []
        if let journal = settings.journalSocket, FileManager.default.fileExists(atPath: journal) {
            if let problem = LocalDatagram.send(SyslogFormat.journalFields(alert, tag: settings.tag, facility: facility), to: journal) {
                problems.append(problem)
            }
        } else if let socket = settings.socket {
            let line = SyslogFormat.rfc5424(alert, tag: settings.tag, facility: facility)
            if let problem = LocalDatagram.send(Array(line.utf8), to: socket) { problems.append(problem) }
        }
        if let remote = settings.remote {
            let line = SyslogFormat.rfc5424(alert, tag: settings.tag, facility: facility)
            switch remote.transport {
            case .udp:
                if let problem = UDPDatagram.send(Array(line.utf8), host: remote.address, port: remote.port) { problems.append(problem) }
            case .tcp:
                let framed = SyslogFormat.octetCounted(line)
                let deadline = ContinuousClock.now + Self.remoteTimeout
                let problem = await tcpCall.run(busy: "an earlier send to \(remote.address):\(remote.port) is still blocked") {
                    TCPOneShot.send(framed, host: remote.address, port: remote.port, deadline: deadline)
                }
                if let problem { problems.append(problem) }
            }
        }
        if !problems.isEmpty { throw AlertDeliveryError(problems.joined(separator: "; ")) }
    }
}

/// Why one attempt to deliver an alert failed (the text names the receiver).
public struct AlertDeliveryError: Error, CustomStringConvertible, Equatable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// One datagram to a UNIX datagram socket (the syslog or journal socket), never blocking: a
/// full receiver is an error like a missing one.
enum LocalDatagram {
    static func send(_ bytes: [UInt8], to path: String) -> String? {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let pathBytes = Array(path.utf8)
        guard pathBytes.count < MemoryLayout.size(ofValue: address.sun_path) else { return "socket path \(path) is too long" }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (index, byte) in pathBytes.enumerated() { raw[index] = byte }
        }
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return "cannot open a socket: \(String(cString: strerror(errno)))" }
        defer { close(fd) }
        let sent = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { socketAddress in
                bytes.withUnsafeBytes { buffer in
                    sendto(
                        fd, buffer.baseAddress, buffer.count, Int32(MSG_DONTWAIT), socketAddress, socklen_t(MemoryLayout<sockaddr_un>.size))
                }
            }
        }
        guard sent == bytes.count else {
            let reason = sent < 0 ? String(cString: strerror(errno)) : "sent \(sent) of \(bytes.count) bytes"
            return "cannot send to \(path): \(reason)"
        }
        return nil
    }
}

/// One UDP datagram to `host:port` (resolved each time: a name may move).
enum UDPDatagram {
    static func send(_ bytes: [UInt8], host: String, port: Int) -> String? {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_DGRAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, String(port), &hints, &list)
        guard status == 0, let info = list else { return "cannot resolve \(host): \(String(cString: gai_strerror(status)))" }
        defer { freeaddrinfo(list) }
        let fd = socket(info.pointee.ai_family, info.pointee.ai_socktype | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return "cannot open a UDP socket: \(String(cString: strerror(errno)))" }
        defer { close(fd) }
        let sent = bytes.withUnsafeBytes { buffer in
            sendto(fd, buffer.baseAddress, buffer.count, Int32(MSG_DONTWAIT), info.pointee.ai_addr, info.pointee.ai_addrlen)
        }
        guard sent == bytes.count else { return "cannot send to \(host):\(port) (udp): \(String(cString: strerror(errno)))" }
        return nil
    }
}

/// Connect, send everything, close, all bounded by one deadline (blocking: run it on a
/// thread of its own).
enum TCPOneShot {
    static func send(_ bytes: [UInt8], host: String, port: Int, deadline: ContinuousClock.Instant) -> String? {
        let fd: Int32
        switch DeadlineSocket.connect(host: host, port: port, deadline: deadline) {
        case .failure(let failure): return "cannot connect to \(host):\(port) (tcp): \(failure.reason)"
        case .success(let socket): fd = socket
        }
        defer { close(fd) }
        var offset = 0
        for _ in 0..<10_000 where offset < bytes.count {
            guard DeadlineSocket.waitFor(fd, events: Int16(POLLOUT), deadline: deadline) else {
                return "timed out sending to \(host):\(port) (tcp)"
            }
            let sent = bytes[offset...].withUnsafeBytes { buffer in Glibc.send(fd, buffer.baseAddress, buffer.count, Int32(MSG_NOSIGNAL)) }
            if sent < 0 {
                if errno == EAGAIN || errno == EINTR { continue }
                return "cannot send to \(host):\(port) (tcp): \(String(cString: strerror(errno)))"
            }
            offset += sent
        }
        return offset == bytes.count ? nil : "cannot send to \(host):\(port) (tcp): the connection stalled"
    }
}
