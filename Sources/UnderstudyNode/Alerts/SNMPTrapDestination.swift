import Foundation
import UnderstudyModel

#if canImport(Glibc)
    import Glibc
#endif

/// One SNMP manager traps go to: a host name or address and a UDP port (162 by default).
public struct TrapManager: Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String, port: Int = 162) {
        self.host = host
        self.port = port
    }

    /// `host`, `host:port`, `[ipv6]`, `[ipv6]:port` or a bare IPv6 address; the error says
    /// what is wrong with `text`.
    public init(parsing text: String) throws(MailTrapSettingsError) {
        let (host, port) = try HostPort.parse(text, defaultPort: 162, what: "SNMP manager")
        self.init(host: host, port: port)
    }

    public var description: String { HostPort.display(host: host, port: port) }
}

/// SNMP versions the trap sender speaks (SNMPv3 is not built: docs/alerts-mail-snmp.md).
public enum SNMPVersion: String, Sendable, CaseIterable {
    case v1 = "1"
    case v2c = "2c"
}

/// How a trap destination sends: to whom, with which community and version.
public struct TrapSettings: Sendable {
    public var managers: [TrapManager]
    public var community: String
    public var version: SNMPVersion
    /// The root of UNDERSTUDY-MIB; change it only together with the MIB's MODULE-IDENTITY.
    public var root: SNMPObjectID
    /// How long after sending to wait for an ICMP "port unreachable" (a manager host with no
    /// trap receiver). UDP has no answer otherwise; 0 sends and forgets.
    public var refusalWait: Duration

    public init(
        managers: [TrapManager], community: String = "public", version: SNMPVersion = .v2c,
        root: SNMPObjectID = UnderstudyMIB.defaultRoot, refusalWait: Duration = .milliseconds(100)
    ) {
        self.managers = managers
        self.community = community
        self.version = version
        self.root = root
        self.refusalWait = refusalWait
    }

    /// Checks what can be checked before the first trap; the error names the setting.
    public func validate() throws(MailTrapSettingsError) {
        guard !managers.isEmpty else { throw MailTrapSettingsError("managers: at least one SNMP manager is needed") }
        for (index, manager) in managers.enumerated() {
            do {
                _ = try TrapManager(parsing: manager.description)
            } catch {
                throw MailTrapSettingsError("managers[\(index)]: \(error)")
            }
        }
        // RFC 3584's snmpCommunityName is at most 255 octets; a community is sent in clear.
        guard !community.isEmpty, community.utf8.count <= 255 else {
            throw MailTrapSettingsError("community: must be 1 to 255 bytes")
        }
        // The notifications hang below root.0 and the objects below root.1: a root of more
        // than 120 arcs would push them past SNMP's 128.
        guard root.arcs.count <= 120 else { throw MailTrapSettingsError("root: \(root) has more than 120 arcs") }
        guard refusalWait >= .zero, refusalWait <= .seconds(5) else {
            throw MailTrapSettingsError("refusal wait: must be from 0 to 5 s")
        }
    }
}

/// Sends each alert as one SNMP trap (docs/UNDERSTUDY-MIB.txt) to every configured manager:
/// one UDP datagram per manager per alert. The notification tells the level
/// (`understudyAlertInfo/Warning/Error`); the varbinds carry cluster, server, module, event
/// id, level, message and time.
///
/// One `deliver` resolves, sends and listens `refusalWait` for refusals on a thread of its
/// own (name resolution blocks); it throws when any manager could not be sent to, naming
/// each, after sending to all the others.
public struct SNMPTrapDestination: AlertDestination {
    public let settings: TrapSettings
    public let name: String
    /// sysUpTime counts from here: when the destination (the daemon's alerting) was set up.
    private let started = ContinuousClock.now
    private let call = BlockingCall()

    /// Checks the settings; throws what is wrong with them.
    public init(settings: TrapSettings) throws(MailTrapSettingsError) {
        try settings.validate()
        self.settings = settings
        name = "trap " + settings.managers.map(\.description).joined(separator: ",")
    }

    public func deliver(_ alert: AlertEvent) async throws {
        let elapsed = started.duration(to: .now)
        // TimeTicks: hundredths of a second, wrapping at 2^32 (RFC 2578 §7.1.8).
        let upTime = UInt32(truncatingIfNeeded: elapsed.components.seconds * 100 + elapsed.components.attoseconds / 10_000_000_000_000_000)
        // A trap expects no response, so its request-id only tells datagrams apart.
        let requestID = Int32.random(in: 1...Int32.max)
        let settings = settings
        let failures = await call.run(busy: ["the previous trap is still being sent (name resolution hanging?)"]) {
            TrapSender.send(settings: settings) { agentAddress in
                switch settings.version {
                case .v2c:
                    TrapMessage.v2c(alert, community: settings.community, root: settings.root, upTime: upTime, requestID: requestID)
                case .v1:
                    TrapMessage.v1(
                        alert, community: settings.community, root: settings.root, upTime: upTime, agentAddress: agentAddress)
                }
            }
        }
        if !failures.isEmpty { throw TrapDeliveryError(failures.joined(separator: "; ")) }
    }
}

/// The UDP part of `SNMPTrapDestination`: blocking calls, run on a thread of their own.
enum TrapSender {
    /// Sends one datagram to each manager (made by `message` from the local IPv4 address the
    /// kernel picked, for SNMPv1's agent-addr) and returns one sentence per manager that
    /// failed: not resolved, not sendable, or refused within `refusalWait`.
    static func send(settings: TrapSettings, message: ([UInt8]) -> [UInt8]) -> [String] {
        var failures: [String] = []
        var sent: [(manager: TrapManager, fd: Int32)] = []
        defer { for entry in sent { close(entry.fd) } }
        for manager in settings.managers {
            switch connectedSocket(manager) {
            case .failure(let reason):
                failures.append("cannot send a trap to \(manager): \(reason)")
            case .success(let fd):
                let datagram = message(localIPv4(fd))
                let written = datagram.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, 0) }
                if written == datagram.count {
                    sent.append((manager, fd))
                } else {
                    failures.append("cannot send a trap to \(manager): \(String(cString: strerror(errno)))")
                    close(fd)
                }
            }
        }
        failures += refusals(sent, within: settings.refusalWait)
        return failures
    }

    /// The managers whose host answered a datagram with ICMP unreachable within `wait`.
    static func refusals(_ sent: [(manager: TrapManager, fd: Int32)], within wait: Duration) -> [String] {
        guard !sent.isEmpty, wait > .zero else { return [] }
        let deadline = ContinuousClock.now.advanced(by: wait)
        var pending = sent
        var failures: [String] = []
        // Bounded: each round waits for the time left; EINTR is the only early wake-up
        // without a result, and every ready socket leaves `pending`.
        for _ in 0..<100 where !pending.isEmpty {
            let left = ContinuousClock.now.duration(to: deadline)
            guard left > .zero else { break }
            var descriptors = pending.map { pollfd(fd: $0.fd, events: 0, revents: 0) }
            let ready = poll(&descriptors, nfds_t(descriptors.count), Int32(clamping: max(1, left.inMilliseconds)))
            if ready < 0 && errno == EINTR { continue }
            guard ready > 0 else { break }
            var still: [(manager: TrapManager, fd: Int32)] = []
            for (index, entry) in pending.enumerated() {
                guard descriptors[index].revents & Int16(POLLERR) != 0 else {
                    still.append(entry)
                    continue
                }
                var code: Int32 = 0
                var size = socklen_t(MemoryLayout<Int32>.size)
                getsockopt(entry.fd, SOL_SOCKET, SO_ERROR, &code, &size)
                if code == ECONNREFUSED {
                    failures.append("the SNMP manager \(entry.manager) refused the trap (ICMP port unreachable: no trap receiver)")
                } else if code != 0 {
                    failures.append("the trap to \(entry.manager) failed: \(String(cString: strerror(code)))")
                }
            }
            pending = still
        }
        return failures
    }

    /// A UDP socket connected to the manager's first address (so that the kernel reports
    /// ICMP errors on it), or why there is none.
    static func connectedSocket(_ manager: TrapManager) -> Result<Int32, TrapSendFailure> {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_DGRAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(manager.host, String(manager.port), &hints, &list)
        guard status == 0, let first = list else {
            return .failure(TrapSendFailure("cannot resolve \(manager.host): \(String(cString: gai_strerror(status)))"))
        }
        defer { freeaddrinfo(list) }
        let fd = socket(first.pointee.ai_family, first.pointee.ai_socktype | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return .failure(TrapSendFailure("socket: \(String(cString: strerror(errno)))")) }
        guard connect(fd, first.pointee.ai_addr, first.pointee.ai_addrlen) == 0 else {
            let reason = String(cString: strerror(errno))
            close(fd)
            return .failure(TrapSendFailure(reason))
        }
        return .success(fd)
    }

    /// The IPv4 address the socket sends from; 0.0.0.0 over IPv6.
    static func localIPv4(_ fd: Int32) -> [UInt8] {
        var address = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let named = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard named == 0, address.sin_family == sa_family_t(AF_INET) else { return [0, 0, 0, 0] }
        return withUnsafeBytes(of: address.sin_addr.s_addr) { Array($0) }
    }
}

struct TrapSendFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
