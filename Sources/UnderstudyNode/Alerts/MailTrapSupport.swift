import Foundation

/// A mail or trap setting that cannot be used (an address without a host, a port out of
/// range); the description names the setting and the problem, for the configuration loader
/// to prefix with file, line and key.
public struct MailTrapSettingsError: Error, CustomStringConvertible, Sendable, Equatable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Why a trap could not be sent to one or more managers (each named).
public struct TrapDeliveryError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// `host:port` text as configured for a mail server or SNMP manager.
enum HostPort {
    /// `host`, `host:port`, `[v6]`, `[v6]:port` or a bare IPv6 address (more than one colon).
    static func parse(_ text: String, defaultPort: Int, what: String) throws(MailTrapSettingsError) -> (host: String, port: Int) {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        guard !trimmed.isEmpty else { throw MailTrapSettingsError("the \(what) address is empty") }
        var host = trimmed
        var portText: Substring?
        if trimmed.hasPrefix("[") {
            guard let close = trimmed.firstIndex(of: "]") else {
                throw MailTrapSettingsError("the \(what) address \"\(text)\" has \"[\" without \"]\"")
            }
            host = String(trimmed[trimmed.index(after: trimmed.startIndex)..<close])
            let rest = trimmed[trimmed.index(after: close)...]
            if !rest.isEmpty {
                guard rest.hasPrefix(":") else {
                    throw MailTrapSettingsError("the \(what) address \"\(text)\" has text after \"]\" that is not \":port\"")
                }
                portText = rest.dropFirst()
            }
        } else if trimmed.filter({ $0 == ":" }).count == 1, let colon = trimmed.firstIndex(of: ":") {
            host = String(trimmed[..<colon])
            portText = trimmed[trimmed.index(after: colon)...]
        }
        guard !host.isEmpty else { throw MailTrapSettingsError("the \(what) address \"\(text)\" has no host") }
        guard host.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || ".-:_%".contains($0)) }) else {
            throw MailTrapSettingsError("the \(what) host \"\(host)\" is neither a host name nor an IP address")
        }
        var port = defaultPort
        if let portText {
            guard let value = Int(portText), (1...65535).contains(value) else {
                throw MailTrapSettingsError("the \(what) port \"\(portText)\" is not a number from 1 to 65535")
            }
            port = value
        }
        return (host, port)
    }

    /// `host:port`, with brackets around an IPv6 address.
    static func display(host: String, port: Int) -> String {
        host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
    }
}
