import Crypto
import Foundation
import UnderstudyModel
import UnderstudyNode

/// Random tokens: 32 bytes from the system generator, base64url without padding.
enum Token {
    static func make() -> String {
        Data(SecureRandom.bytes(32)).base64EncodedString().replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }
}

/// The UI's login sessions: a random id in an HttpOnly, Secure, SameSite=Strict cookie and a
/// CSRF token the page sends back in `X-CSRF-Token` with every POST. A session ends after
/// `timeout` without a request, at logout, or when its user is removed or demoted.
public struct SessionStore: Sendable {
    public struct Session: Sendable, Equatable {
        public var user: String
        public var role: WebRole
        public var csrfToken: String
        public var lastUsed: ContinuousClock.Instant
    }

    public static let cookieName = "understudy_session"
    /// At most this many sessions at once; the least recently used goes first.
    static let capacity = 1024

    let timeout: Duration
    var sessions: [String: Session] = [:]

    public init(timeout: Duration) { self.timeout = timeout }

    /// A new session; returns its id and CSRF token.
    public mutating func open(user: String, role: WebRole, now: ContinuousClock.Instant) -> (id: String, csrf: String) {
        expire(now: now)
        if sessions.count >= Self.capacity, let oldest = sessions.min(by: { $0.value.lastUsed < $1.value.lastUsed })?.key {
            sessions[oldest] = nil
        }
        let id = Token.make()
        let csrf = Token.make()
        sessions[id] = Session(user: user, role: role, csrfToken: csrf, lastUsed: now)
        return (id, csrf)
    }

    /// The live session of `id`, refreshed; nil when unknown or expired.
    public mutating func use(_ id: String, now: ContinuousClock.Instant) -> Session? {
        guard var session = sessions[id] else { return nil }
        guard session.lastUsed.duration(to: now) < timeout else {
            sessions[id] = nil
            return nil
        }
        session.lastUsed = now
        sessions[id] = session
        return session
    }

    public mutating func close(_ id: String) { sessions[id] = nil }

    /// Ends the sessions of users no longer in `users` (or whose role changed).
    public mutating func keepOnly(_ users: [WebUser]) {
        sessions = sessions.filter { _, session in users.contains { $0.name == session.user && $0.role == session.role } }
    }

    mutating func expire(now: ContinuousClock.Instant) {
        sessions = sessions.filter { $0.value.lastUsed.duration(to: now) < timeout }
    }

    /// The cookie that carries a session (Secure even on plain HTTP: browsers keep it for
    /// https and for localhost only).
    public static func cookie(id: String, maxAge: Duration) -> String {
        "\(cookieName)=\(id); Path=/; Max-Age=\(maxAge.components.seconds); HttpOnly; Secure; SameSite=Strict"
    }

    public static let clearingCookie = "\(cookieName)=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Strict"

    /// The session id in a Cookie header, if any.
    public static func sessionID(fromCookieHeader header: String) -> String? {
        for part in header.split(separator: ";") {
            let pair = part.trimmingCharacters(in: .whitespaces)
            if pair.hasPrefix(cookieName + "=") {
                let value = String(pair.dropFirst(cookieName.count + 1))
                return value.isEmpty ? nil : value
            }
        }
        return nil
    }
}

/// Failed logins per client address: after `limit` failures within `window`, further
/// attempts from that address are refused (429) until the oldest failure ages out, before
/// any password is checked.
public struct LoginThrottle: Sendable {
    public static let limit = 5
    public static let window: Duration = .seconds(60)
    /// Addresses remembered at most (the oldest entries go first).
    static let capacity = 4096

    var failures: [String: [ContinuousClock.Instant]] = [:]

    public init() {}

    /// nil when the address may try; else how long it must wait.
    public mutating func wait(for address: String, now: ContinuousClock.Instant) -> Duration? {
        let recent = (failures[address] ?? []).filter { $0.duration(to: now) < Self.window }
        failures[address] = recent.isEmpty ? nil : recent
        guard recent.count >= Self.limit, let oldest = recent.first else { return nil }
        return Self.window - oldest.duration(to: now)
    }

    /// Records a failure; returns how many failures the address has within the window.
    public mutating func failed(_ address: String, now: ContinuousClock.Instant) -> Int {
        if failures.count >= Self.capacity, failures[address] == nil {
            failures = failures.filter { ($0.value.last.map { $0.duration(to: now) < Self.window }) ?? false }
            if failures.count >= Self.capacity, let any = failures.keys.first { failures[any] = nil }
        }
        var recent = (failures[address] ?? []).filter { $0.duration(to: now) < Self.window }
        recent.append(now)
        failures[address] = recent
        return recent.count
    }

    public mutating func succeeded(_ address: String) { failures[address] = nil }
}
