import Foundation
import NIOCore
import NIOSSL

/// How the connection to the mail server is protected.
public enum MailSecurity: String, Sendable, CaseIterable {
    /// No TLS (a relay on the same host or a trusted network). Credentials are refused
    /// unless `allowPlaintextAuthentication`.
    case none
    /// Plain connection upgraded with STARTTLS (port 587 or 25); a server that does not
    /// offer STARTTLS is an error, never a silent downgrade.
    case starttls
    /// TLS from the first byte ("implicit TLS", SMTPS, port 465; RFC 8314).
    case tls
}

/// Everything the mail destination needs, already read and checked by the configuration
/// loader (the password from its file).
public struct MailSettings: Sendable {
    public var host: String
    public var port: Int
    public var security: MailSecurity
    /// PEM file of the certificate authorities to trust instead of the system's.
    public var caFile: String?
    /// Check the server's certificate chain and name (the default). Off only for a server
    /// whose self-signed certificate cannot be given as `caFile`.
    public var verifyCertificate: Bool
    public var user: String?
    public var password: String?
    /// Send credentials over a connection without TLS (off by default).
    public var allowPlaintextAuthentication: Bool
    public var from: String
    public var to: [String]
    /// Bounds one whole delivery attempt, connecting included.
    public var timeout: Duration
    /// The EHLO name; nil: this host's name.
    public var heloName: String?

    public init(
        host: String, port: Int = 587, security: MailSecurity = .starttls, caFile: String? = nil,
        verifyCertificate: Bool = true, user: String? = nil, password: String? = nil,
        allowPlaintextAuthentication: Bool = false, from: String, to: [String], timeout: Duration = .seconds(30),
        heloName: String? = nil
    ) {
        self.host = host
        self.port = port
        self.security = security
        self.caFile = caFile
        self.verifyCertificate = verifyCertificate
        self.user = user
        self.password = password
        self.allowPlaintextAuthentication = allowPlaintextAuthentication
        self.from = from
        self.to = to
        self.timeout = timeout
        self.heloName = heloName
    }

    /// The usual port for a security mode: 465 for implicit TLS, 587 (submission) otherwise.
    public static func defaultPort(for security: MailSecurity) -> Int { security == .tls ? 465 : 587 }

    /// Checks what can be checked before the first mail; the error names the setting.
    public func validate() throws(MailTrapSettingsError) {
        _ = try HostPort.parse(HostPort.display(host: host, port: port), defaultPort: port, what: "mail server")
        if let problem = MailAddress.problem(from) { throw MailTrapSettingsError("from: \(problem)") }
        guard !to.isEmpty else { throw MailTrapSettingsError("to: at least one recipient is needed") }
        for (index, recipient) in to.enumerated() {
            if let problem = MailAddress.problem(recipient) { throw MailTrapSettingsError("to[\(index)]: \(problem)") }
        }
        if (user == nil) != (password == nil) {
            throw MailTrapSettingsError(user == nil ? "a password is set without a user" : "user \(user ?? "") has no password")
        }
        if let user, user.isEmpty || user.contains(where: { $0.isNewline }) {
            throw MailTrapSettingsError("user: must be one line of text, not empty")
        }
        if user != nil && security == .none && !allowPlaintextAuthentication {
            throw MailTrapSettingsError(
                "user: credentials need security starttls or tls (or allowing plaintext authentication explicitly)")
        }
        guard timeout > .zero else { throw MailTrapSettingsError("timeout: must be positive") }
        if let heloName, heloName.isEmpty || !heloName.allSatisfy({ $0.isASCII && !$0.isWhitespace }) {
            throw MailTrapSettingsError("helo name \"\(heloName)\" must be a host name or address literal")
        }
    }
}

/// Why a mail could not be delivered, naming the server and the step.
public struct MailDeliveryError: PermanentAlertFailure, CustomStringConvertible, Sendable {
    public let description: String
    /// A retry cannot help: the server refused for good (a 5yz reply, a missing STARTTLS
    /// or AUTH), or the mail already reached some recipients and a retry would send it to
    /// them again (`refusedRecipients` then names the others).
    public let isPermanent: Bool
    /// Recipients the server refused.
    public let refusedRecipients: [String]

    init(_ description: String, isPermanent: Bool, refusedRecipients: [String] = []) {
        self.description = description
        self.isPermanent = isPermanent
        self.refusedRecipients = refusedRecipients
    }
}

/// Mails each alert to the configured recipients through one SMTP server: one submission
/// per alert (all recipients in one envelope), bounded by the settings' timeout. A
/// recipient the server refuses does not stop delivery to the others; the attempt then
/// throws naming it (`isPermanent`: retrying would mail the others twice).
public struct MailDestination: AlertDestination {
    public let settings: MailSettings
    public let name: String
    private let client: SMTPClient

    /// Checks the settings and reads the CA file; throws what is wrong with them.
    public init(settings: MailSettings) throws(MailTrapSettingsError) {
        try settings.validate()
        self.settings = settings
        name = "mail " + HostPort.display(host: settings.host, port: settings.port)
        let tls: NIOSSLContext? = try settings.security == .none ? nil : Self.tlsContext(settings)
        client = SMTPClient(settings: settings, tls: tls)
    }

    public func deliver(_ alert: AlertEvent) async throws {
        let date = Date()
        let message = MailMessage.render(
            alert, from: settings.from, to: settings.to, date: date,
            messageID: MailMessage.messageID(from: settings.from, date: date))
        let outcome = try await client.submit(message: MailMessage.dotStuffed(message))
        guard outcome.refused.isEmpty else {
            throw MailDeliveryError(
                "the mail server \(client.server) took the mail for \(outcome.accepted.joined(separator: ", ")) but refused "
                    + outcome.refused.map { "\($0.recipient) (\($0.reply))" }.joined(separator: "; "),
                isPermanent: true, refusedRecipients: outcome.refused.map(\.recipient))
        }
    }

    /// TLS 1.2 or newer, trusting `caFile` or the system's roots, checking chain and name
    /// unless `verifyCertificate` is off.
    static func tlsContext(_ settings: MailSettings) throws(MailTrapSettingsError) -> NIOSSLContext {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.minimumTLSVersion = .tlsv12
        if let caFile = settings.caFile {
            let certificates: [NIOSSLCertificate]
            do {
                certificates = try NIOSSLCertificate.fromPEMFile(caFile)
            } catch {
                throw MailTrapSettingsError("ca file \(caFile): cannot read it as PEM certificates: \(error)")
            }
            guard !certificates.isEmpty else { throw MailTrapSettingsError("ca file \(caFile): no PEM certificate in it") }
            configuration.trustRoots = .certificates(certificates)
        }
        if !settings.verifyCertificate { configuration.certificateVerification = .none }
        do {
            return try NIOSSLContext(configuration: configuration)
        } catch {
            throw MailTrapSettingsError("cannot set up TLS for the mail server: \(error)")
        }
    }
}

/// The address forms the envelope and headers use: `local@domain` in ASCII, without the
/// characters that would break a command line or header.
enum MailAddress {
    /// Why `address` cannot be used; nil when it can.
    static func problem(_ address: String) -> String? {
        guard !address.isEmpty else { return "the address is empty" }
        guard address.utf8.count <= 254 else { return "\"\(address.prefix(40))…\" is longer than 254 characters" }
        guard address.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value < 0x7F }) else {
            return "\"\(MailMessage.singleLine(address))\" must be ASCII without spaces or control characters"
        }
        guard !address.contains(where: { "<>(),;:\\\"[]".contains($0) }) else {
            return "\"\(address)\" has a character not allowed in a plain address (<>(),;:\\\"[])"
        }
        let parts = address.split(separator: "@", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else { return "\"\(address)\" is not local@domain" }
        return nil
    }
}
