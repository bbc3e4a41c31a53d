import Foundation
import UnderstudyEngine

#if canImport(Glibc)
    import Glibc
#endif

/// ipw: ICMP echo to every target at once; an error when none answers.
struct PingTargetsProbe: MonitorProbe {
    let targets: [String]
    /// How long one round waits for answers (within the monitor timeout).
    let wait: Duration

    func check() async -> MonitorResult {
        if await PingProbe().anyReachable(targets, timeout: wait) { return .normal }
        return .error("none of \(targets.joined(separator: ", ")) answered within \(wait)")
    }
}

/// miiw: the kernel says the NIC has a link (carrier) and is up.
struct LinkStateProbe: MonitorProbe {
    let interface: String

    func check() async -> MonitorResult { result() }

    func checkNow() -> MonitorResult? { result() }

    func result() -> MonitorResult {
        switch LinkState.read(interface) {
        case .missing: return .error("interface \(interface) does not exist")
        case .down(let state): return .error("interface \(interface) has no link (\(state))")
        case .up: return .normal
        }
    }
}

/// fipw: the floating IP is still configured on this server (someone may have removed it,
/// or a duplicate address detection failed); optionally its interface still has a link.
struct FloatingAddressProbe: MonitorProbe {
    let address: String
    let resource: String
    let monitorLink: Bool
    var runner = NetCommandRunner()

    func check() async -> MonitorResult {
        let result = await runner.run(["ip", "-j", "addr", "show"], timeout: .seconds(5))
        guard result.succeeded, let interfaces = try? NetInterface.parseList(result.standardOutput) else {
            return .error("cannot list addresses: \(result.failureDescription)")
        }
        let wanted = Self.normalized(address)
        guard
            let owner = interfaces.first(where: { interface in
                interface.addrInfo.contains { Self.normalized($0.local) == wanted && $0.dadfailed != true }
            })
        else { return .error("address \(address) of \(resource) is not on any interface") }
        if monitorLink, case .down(let state) = LinkState.read(owner.ifname) {
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

enum LinkState: Equatable {
    case up
    case down(String)
    case missing

    static func read(_ interface: String) -> LinkState {
        // Names come from the configuration: keep them inside /sys/class/net.
        guard !interface.isEmpty, !interface.contains("/"), interface != "..", interface != "." else { return .missing }
        let folder = "/sys/class/net/\(interface)"
        guard let operstate = smallFile(folder + "/operstate") else { return .missing }
        // Reading carrier of an interface that is administratively down fails (EINVAL).
        let carrier = smallFile(folder + "/carrier")
        if carrier == "1" && operstate != "down" && operstate != "lowerlayerdown" { return .up }
        return .down("operstate \(operstate), carrier \(carrier ?? "unreadable")")
    }

    /// The first line of a small sysfs file (plain read(2): this runs for every check).
    static func smallFile(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 64)
        let count = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
        guard count >= 0 else { return nil }
        // ASCII whitespace only (sysfs values end in a newline): cheaper than Foundation's trim.
        var end = count
        while end > 0, buffer[end - 1] == 0x0A || buffer[end - 1] == 0x20 || buffer[end - 1] == 0x09 { end -= 1 }
        return String(decoding: buffer[0..<end], as: UTF8.self)
    }
}
