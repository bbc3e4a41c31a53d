import Crypto
import Foundation
import Logging
import NIOPosix
import UnderstudyEngine
import UnderstudyModel

/// Who a request is, and with which role it may act.
public struct Principal: Sendable, Equatable {
    public var user: String
    public var role: WebRole
    /// Set when the request came with a session cookie (its POSTs need the CSRF token).
    public var sessionID: String?
    public var csrfToken: String?
}

public enum AuthOutcome: Sendable, Equatable {
    case accepted(Principal)
    case rejected
    /// Too many failed logins from this address: wait this many seconds.
    case throttled(seconds: Int)
}

/// Users, password checks, sessions and the failed-login throttle of one web server.
///
/// Password checks are slow on purpose (PBKDF2, ~0.3 s): they run one at a time on a thread of
/// their own, never on the cooperative pool that the daemon's actor shares, so a flood of
/// logins cannot delay a heartbeat. A verified password is remembered for `cacheLifetime`
/// as an HMAC under a key that lives only in this process, so API clients sending HTTP Basic
/// with every request cost one check every few minutes.
public actor Authenticator {
    static let cacheLifetime: Duration = .seconds(300)

    let usersPath: String
    let logger: Logger
    let alert: @Sendable (LogEntry) async -> Void
    let hashing: NIOThreadPool
    let cacheKey = SymmetricKey(size: .bits256)
    var users: [WebUser] = []
    var usersStamp: (modified: Date, size: Int)?
    var lastUsersCheck: ContinuousClock.Instant?
    var verified: [String: (mac: Data, until: ContinuousClock.Instant)] = [:]
    var sessions: SessionStore
    var throttle = LoginThrottle()

    public init(
        usersPath: String, sessionTimeout: Duration, logger: Logger, alert: @escaping @Sendable (LogEntry) async -> Void
    ) {
        self.usersPath = usersPath
        self.logger = logger
        self.alert = alert
        sessions = SessionStore(timeout: sessionTimeout)
        hashing = NIOThreadPool(numberOfThreads: 1)
        hashing.start()
    }

    deinit { hashing.shutdownGracefully { _ in } }

    /// Rereads the users file when it changed (checked at most once a second).
    func refreshUsers(now: ContinuousClock.Instant) {
        if let last = lastUsersCheck, last.duration(to: now) < .seconds(1) { return }
        lastUsersCheck = now
        let attributes = try? FileManager.default.attributesOfItem(atPath: usersPath)
        let stamp = (attributes?[.modificationDate] as? Date ?? .distantPast, (attributes?[.size] as? Int) ?? -1)
        if let old = usersStamp, old.modified == stamp.0, old.size == stamp.1 { return }
        usersStamp = stamp
        do {
            users = try UsersFile.load(path: usersPath)
        } catch {
            // Keep no users rather than stale ones: a broken file refuses every login.
            users = []
            logger.error("web: \(error)")
        }
        verified = [:]
        sessions.keepOnly(users)
        if users.isEmpty { logger.warning("web: no users in \(usersPath); add one with `understudy user add NAME --role operator`") }
    }

    /// Checks a user name and password (HTTP Basic or the login form) from `address`.
    public func check(user name: String, password: String, address: String) async -> AuthOutcome {
        let now = ContinuousClock.now
        refreshUsers(now: now)
        if let wait = throttle.wait(for: address, now: now) {
            return .throttled(seconds: max(1, Int(wait.components.seconds) + 1))
        }
        let mac = Data(HMAC<SHA256>.authenticationCode(for: Data((name + "\u{0}" + password).utf8), using: cacheKey))
        if let cached = verified[name], cached.until > now, cached.mac == mac, let user = users.first(where: { $0.name == name }) {
            return .accepted(Principal(user: user.name, role: user.role))
        }
        let user = users.first { $0.name == name }
        // An unknown user costs the same check as a wrong password (no timing oracle).
        let hash = user?.password ?? Self.decoy
        let matches = await verifyOffPool(hash, password)
        guard let user, matches else {
            let count = throttle.failed(address, now: .now)
            // Only a known user's name is written: people type passwords into the name field.
            let shown = user == nil ? "(unknown)" : name
            let message =
                "Login failed for user \"\(shown)\" from \(address) (\(count) within \(LoginThrottle.window.components.seconds) s)."
            await alert(LogEntry(.webLoginFailed, message))
            if count == LoginThrottle.limit {
                await alert(
                    LogEntry(
                        .webLoginThrottled,
                        "Logins from \(address) are refused for \(LoginThrottle.window.components.seconds) s after \(count) failures."))
            }
            return .rejected
        }
        throttle.succeeded(address)
        verified[name] = (mac, now + Self.cacheLifetime)
        return .accepted(Principal(user: user.name, role: user.role))
    }

    /// A hash no password matches in practice, checked for unknown users.
    static let decoy: PasswordHash = {
        let salt = Array("understudy-decoy".utf8)
        return PasswordHash(rounds: PasswordHash.defaultRounds, salt: salt, hash: Array(repeating: 0, count: PasswordHash.hashBytes))
    }()

    nonisolated func verifyOffPool(_ hash: PasswordHash, _ password: String) async -> Bool {
        (try? await hashing.runIfActive { hash.verify(password) }) ?? false
    }

    // MARK: - Sessions

    public func openSession(for principal: Principal) -> (id: String, csrf: String) {
        sessions.open(user: principal.user, role: principal.role, now: .now)
    }

    public func session(_ id: String) -> Principal? {
        refreshUsers(now: .now)
        guard let session = sessions.use(id, now: .now) else { return nil }
        return Principal(user: session.user, role: session.role, sessionID: id, csrfToken: session.csrfToken)
    }

    public func closeSession(_ id: String) { sessions.close(id) }

    public var sessionTimeout: Duration { sessions.timeout }
}
