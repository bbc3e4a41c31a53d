import Foundation
import UnderstudyEngine

/// sambaw: an SMB session against a share with Samba's `smbclient`: connect, negotiate,
/// authenticate (as `user` with the password from `password-file`, or as a guest without a
/// user), connect to the share and ask for its volume information (`volume`, which makes the
/// server query the file system behind the share). Normal when all of that answers within the
/// timeout; otherwise an error naming the step: no server, wrong password, missing share,
/// access denied, no answer.
///
/// CLUSTERPRO's sambaw speaks SMB1 with NTLMv1, which modern Samba refuses by default; this
/// one negotiates what the server and `smbclient` agree on (SMB2/SMB3, NTLMv2 or Kerberos,
/// signing when the server mandates it), under the client settings of the machine's
/// `smb.conf`.
struct SambaProbe: MonitorProbe {
    let host: String
    let port: Int
    let share: String
    /// nil: a guest (anonymous) session.
    let user: String?
    let passwordFile: String?
    let timeout: Duration
    /// The monitor's `nice`, applied to `smbclient`.
    var nice = 0

    func check() async -> MonitorResult {
        switch command() {
        case .failure(let failure): return .error(failure.reason)
        case .success(let (arguments, environment)):
            let result = await NetCommandRunner(environment: environment, nice: nice).run(arguments, timeout: timeout)
            if result.exitCode == 127 { return .error("smbclient is not installed (Debian package smbclient)") }
            if result.succeeded { return .normal }
            if result.timedOut { return .error("SMB share //\(host)/\(share) at port \(port): no answer within \(timeout)") }
            return .error(
                "SMB share //\(host)/\(share) at port \(port): "
                    + Self.explain(
                        result.standardOutput + "\n" + result.standardError, user: user, share: share,
                        fallback: result.failureDescription))
        }
    }

    /// The `smbclient` command line and environment; the password goes in the environment
    /// (`PASSWD`), never on the command line.
    func command() -> Result<([String], [String: String]), MonitorError> {
        guard Self.isValidShare(share) else { return .failure(MonitorError("share name \(share) is not a plain SMB share name")) }
        var environment = ScriptEnvironment.base()
        let serverHost = host.contains(":") ? "[\(host)]" : host
        var arguments = ["smbclient", "//\(serverHost)/\(share)", "--port=\(port)", "--command=volume"]
        if let user {
            // `user%password` would split at the %: a user name never carries one.
            guard !user.isEmpty, !user.contains("%"), !user.contains(where: \.isNewline) else {
                return .failure(MonitorError("user name \(user) cannot contain % or a line break"))
            }
            arguments.append("--user=\(user)")
            if let passwordFile {
                do {
                    environment["PASSWD"] = try String(contentsOfFile: passwordFile, encoding: .utf8)
                        .trimmingCharacters(in: .newlines)
                } catch {
                    return .failure(MonitorError("cannot read the password file \(passwordFile): \(error.localizedDescription)"))
                }
            } else {
                arguments.append("--no-pass")
            }
        } else {
            // A guest session: no user, no password.
            arguments.append("--no-pass")
        }
        return .success((arguments, environment))
    }

    /// Share names from Samba's rules: no path separators, no control characters.
    static func isValidShare(_ name: String) -> Bool {
        !name.isEmpty && name.count <= 80
            && !name.unicodeScalars.contains { $0 == "/" || $0 == "\\" || $0.value < 0x20 || $0 == "%" }
    }

    /// A sentence for smbclient's NT status codes; the first line of its output otherwise.
    static func explain(_ output: String, user: String?, share: String, fallback: String) -> String {
        let who = user.map { "user \($0)" } ?? "a guest"
        let known: [(String, String)] = [
            ("NT_STATUS_LOGON_FAILURE", "authentication failed for \(who) (wrong user name or password)"),
            ("NT_STATUS_ACCOUNT_DISABLED", "the account of \(who) is disabled"),
            ("NT_STATUS_ACCOUNT_LOCKED_OUT", "the account of \(who) is locked out"),
            ("NT_STATUS_PASSWORD_EXPIRED", "the password of \(who) has expired"),
            ("NT_STATUS_BAD_NETWORK_NAME", "the server has no share named \(share)"),
            ("NT_STATUS_ACCESS_DENIED", "access denied to \(who)"),
            ("NT_STATUS_CONNECTION_REFUSED", "connection refused (no SMB server listens there)"),
            ("NT_STATUS_HOST_UNREACHABLE", "host unreachable"),
            ("NT_STATUS_NETWORK_UNREACHABLE", "network unreachable"),
            ("NT_STATUS_IO_TIMEOUT", "the server did not answer in time"),
            ("NT_STATUS_CONNECTION_RESET", "the server reset the connection"),
            ("NT_STATUS_CONNECTION_DISCONNECTED", "the server closed the connection"),
            ("NT_STATUS_NOT_SUPPORTED", "the server and smbclient share no protocol or authentication they both allow"),
            ("NT_STATUS_INVALID_NETWORK_RESPONSE", "the server's answer is not SMB"),
        ]
        for (code, sentence) in known where output.contains(code) { return "\(sentence) [\(code)]" }
        let lines = output.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
        if let status = lines.first(where: { $0.contains("NT_STATUS_") }) { return String(status.prefix(200)) }
        return String((lines.first { !$0.isEmpty } ?? fallback).prefix(200))
    }
}

/// Why a probe cannot even start its check.
struct MonitorError: Error {
    let reason: String
    init(_ reason: String) { self.reason = reason }
}
