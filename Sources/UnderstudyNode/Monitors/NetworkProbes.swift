import Foundation
import Synchronization
import UnderstudyEngine

#if canImport(Glibc)
    import Glibc
#endif

/// ipw: ICMP echo to every target at once; an error when none answers.
struct PingTargetsProbe: MonitorProbe {
    let targets: [String]
    /// How long one round waits for answers (within the monitor timeout).
    let wait: Duration
    /// The monitor's `nice`, applied to `ping` when it is the fallback (see `PingProbe`).
    var nice = 0

    func check() async -> MonitorResult {
        if await PingProbe(nice: nice).anyReachable(targets, timeout: wait) { return .normal }
        return .error("none of \(targets.joined(separator: ", ")) answered within \(wait)")
    }
}

/// miiw: the kernel says the NIC has a link (carrier) and is up.
final class LinkStateProbe: MonitorProbe {
    let interface: String
    /// The interface's sysfs files, kept open and read again at offset 0 each check (a check
    /// every second per monitor: opening them each time cost more than reading).
    private let files = Mutex<(operstate: Int32, carrier: Int32)?>(nil)

    init(interface: String) {
        self.interface = interface
    }

    deinit {
        if let open = files.withLock({ $0 }) {
            close(open.operstate)
            close(open.carrier)
        }
    }

    func check() async -> MonitorResult { result() }

    func checkNow() -> MonitorResult? { result() }

    func result() -> MonitorResult {
        if let state = readOpenFiles() {
            return state == .up ? .normal : describe(state)
        }
        return describe(LinkState.read(interface))
    }

    func describe(_ state: LinkState) -> MonitorResult {
        switch state {
        case .missing: return .error("interface \(interface) does not exist")
        case .down(let state): return .error("interface \(interface) has no link (\(state))")
        case .up: return .normal
        }
    }

    /// Reads the kept files; nil (and closes them) when they are not open or fail, e.g. the
    /// interface went away: then the next check opens them again by name.
    func readOpenFiles() -> LinkState? {
        files.withLock { open -> LinkState? in
            if open == nil {
                let folder = "/sys/class/net/\(interface)"
                guard LinkState.isSafeName(interface) else { return nil }
                let operstate = Glibc.open(folder + "/operstate", O_RDONLY | O_CLOEXEC)
                let carrier = Glibc.open(folder + "/carrier", O_RDONLY | O_CLOEXEC)
                guard operstate >= 0, carrier >= 0 else {
                    if operstate >= 0 { close(operstate) }
                    if carrier >= 0 { close(carrier) }
                    return nil
                }
                open = (operstate, carrier)
            }
            guard let current = open, let operstate = LinkState.readLine(current.operstate) else {
                if let current = open {
                    close(current.operstate)
                    close(current.carrier)
                }
                open = nil
                return nil
            }
            // carrier cannot be read while the interface is administratively down (EINVAL).
            return LinkState.judge(operstate: operstate, carrier: LinkState.readLine(current.carrier))
        }
    }
}

/// fipw: the floating IP is still configured on this server (someone may have removed it,
/// or a duplicate address detection failed); optionally its interface still has a link.
/// One rtnetlink dump of the interfaces and addresses (no `ip` process).
struct FloatingAddressProbe: MonitorProbe {
    let address: String
    let resource: String
    let monitorLink: Bool
    var netlink = RTNetlinkClient()

    func check() async -> MonitorResult {
        let interfaces: [NetInterface]
        do {
            interfaces = try await netlink.interfaces()
        } catch {
            return .error("cannot list addresses: \(error.reason)")
        }
        let wanted = Self.normalized(address)
        guard
            let owner = interfaces.first(where: { interface in
                interface.addrInfo.contains { Self.normalized($0.local) == wanted && $0.dadfailed != true }
            })
        else { return .error("address \(address) of \(resource) is not on any interface") }
        // From the same snapshot as the address (and so from the same namespace).
        if monitorLink, case .down(let state) = owner.linkState {
            return .error("interface \(owner.ifname) of \(address) has no link (\(state))")
        }
        return .normal
    }

    /// The canonical text of an address (IPv6 has many spellings).
    static func normalized(_ text: String) -> String {
        let bare = String(text.split(separator: "/").first ?? "")
        var buffer = [UInt8](repeating: 0, count: 16)
        let family = bare.contains(":") ? AF_INET6 : AF_INET
        guard inet_pton(family, bare, &buffer) == 1 else { return bare }
        var output = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        guard inet_ntop(family, buffer, &output, socklen_t(output.count)) != nil else { return bare }
        return String(decoding: output.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

extension NetInterface {
    /// The link as netlink reported it: up when administratively up with a carrier (LOWER_UP)
    /// and an operational state that is not down.
    var linkState: LinkState {
        let state = (operstate ?? "UNKNOWN").lowercased()
        if flags.contains("UP") && flags.contains("LOWER_UP") && state != "down" && state != "lowerlayerdown" { return .up }
        return .down("operstate \(state), flags \(flags.joined(separator: ","))")
    }
}

enum LinkState: Equatable {
    case up
    case down(String)
    case missing

    static func read(_ interface: String) -> LinkState {
        guard isSafeName(interface) else { return .missing }
        let folder = "/sys/class/net/\(interface)"
        guard let operstate = smallFile(folder + "/operstate") else { return .missing }
        // Reading carrier of an interface that is administratively down fails (EINVAL).
        return judge(operstate: operstate, carrier: smallFile(folder + "/carrier"))
    }

    /// Names come from the configuration: keep them inside /sys/class/net.
    static func isSafeName(_ interface: String) -> Bool {
        !interface.isEmpty && !interface.contains("/") && interface != ".." && interface != "."
    }

    static func judge(operstate: String, carrier: String?) -> LinkState {
        if carrier == "1" && operstate != "down" && operstate != "lowerlayerdown" { return .up }
        return .down("operstate \(operstate), carrier \(carrier ?? "unreadable")")
    }

    /// The first line of a small sysfs file (plain read(2): this runs for every check).
    static func smallFile(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        return readLine(fd)
    }

    /// The first line of an open sysfs file, read again from offset 0.
    static func readLine(_ fd: Int32) -> String? {
        var buffer = [UInt8](repeating: 0, count: 64)
        let count = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, 0) }
        guard count >= 0 else { return nil }
        // ASCII whitespace only (sysfs values end in a newline): cheaper than Foundation's trim.
        var end = count
        while end > 0, buffer[end - 1] == 0x0A || buffer[end - 1] == 0x20 || buffer[end - 1] == 0x09 { end -= 1 }
        return String(decoding: buffer[0..<end], as: UTF8.self)
    }
}
