import NIOCore
import NIOPosix
import UnderstudyEngine
import UnderstudyModel

// The control channel over every LAN path.
//
// A server's control server listens on its address of every `lanhb` path. A request to a peer
// tries the peer's LAN paths one after the other, within the one request, in this order:
//   1. paths on which the peer's heartbeats are heard (the Engine's per-path liveness) before
//      paths on which they are not;
//   2. among those, paths whose last control connection did not fail before paths whose last
//      one failed — a failure counts until heartbeats are heard again on that path after a
//      silence (the path came back), until a later request succeeds on it, or for one
//      heartbeat timeout (`retryAfter`; a path that carries heartbeats but not the control
//      channel, say a firewall, is tried again that often);
//   3. configuration order of `heartbeats:`.
// So requests go to the first path while it works, straight to the path that worked while the
// first one is down, and back to the first one as soon as heartbeats are heard on it again.
// Each attempt gets `attemptTimeout` for the TCP connect and the server's hello together, so
// trying every path takes at most a heartbeat timeout (at most 3 s a path). Only when no path
// answered so does a second round give the paths that merely ran out of time the patience of a
// single-path request (a loaded peer, a very short heartbeat timeout). A request that has been
// sent is sent again on the next path only when it is harmless twice (status).

/// One LAN heartbeat path to a server: the heartbeat's name and the server's address on it.
public struct ControlPath: Sendable, Equatable, CustomStringConvertible {
    public var name: String
    public var address: String

    public init(name: String, address: String) {
        self.name = name
        self.address = address
    }

    public var description: String { "\(name) (\(address))" }
}

/// Which LAN path the control channel takes to each peer. A value the daemon keeps; every
/// time is the daemon's `EngineTime`.
public struct ControlPathTable: Sendable {
    /// Every server's LAN paths, in configuration order.
    public let paths: [ServerName: [ControlPath]]
    /// How long a failed connection keeps its path behind the others (unless heartbeats come
    /// back on it sooner).
    public let retryAfter: Duration
    private var failedAt: [ServerName: [String: EngineTime]] = [:]
    /// The path of the newest successful request to each peer.
    public private(set) var lastWorking: [ServerName: String] = [:]

    public init(config: ClusterConfig, retryAfter: Duration? = nil) {
        var paths: [ServerName: [ControlPath]] = [:]
        for server in config.serverNames { paths[server] = Self.paths(of: server, in: config) }
        self.paths = paths
        self.retryAfter = retryAfter ?? config.cluster.timing.heartbeatTimeout
    }

    /// `server`'s address on every `lanhb` path it is part of, in configuration order.
    public static func paths(of server: ServerName, in config: ClusterConfig) -> [ControlPath] {
        config.heartbeats.compactMap { heartbeat in
            guard case .lan(let addresses) = heartbeat.kind, let address = addresses[server] else { return nil }
            return ControlPath(name: heartbeat.name, address: address)
        }
    }

    /// The bound of one attempt (TCP connect plus the server's hello): trying every path fits
    /// in one heartbeat timeout; never more than 3 s (the connect timeout of a single-path
    /// request) nor less than 50 ms.
    public static func attemptTimeout(heartbeatTimeout: Duration, paths: Int) -> Duration {
        let share = heartbeatTimeout / max(1, paths)
        return min(.seconds(3), max(.milliseconds(50), share))
    }

    /// Whether the last connection to `peer` on `path` failed, and that still counts.
    public func isDemoted(_ peer: ServerName, path: String, now: EngineTime) -> Bool {
        guard let failed = failedAt[peer]?[path] else { return false }
        return now - failed < retryAfter
    }

    public func hasFailure(_ peer: ServerName, path: String) -> Bool {
        failedAt[peer]?[path] != nil
    }

    /// The paths to try for a request to `peer`, best first. `isUp` says whether the peer's
    /// heartbeats are heard on a path.
    public func order(to peer: ServerName, now: EngineTime, isUp: (String) -> Bool) -> [ControlPath] {
        let candidates = paths[peer] ?? []
        let keyed = candidates.enumerated().map { index, path in
            (down: isUp(path.name) ? 0 : 1, demoted: isDemoted(peer, path: path.name, now: now) ? 1 : 0, index: index, path: path)
        }
        return keyed.sorted { ($0.down, $0.demoted, $0.index) < ($1.down, $1.demoted, $1.index) }.map(\.path)
    }

    /// A request to `peer` succeeded on `path`. Returns the path that worked before, when it
    /// was another one (the control channel to `peer` changed paths).
    @discardableResult
    public mutating func recordSuccess(_ peer: ServerName, path: String) -> String? {
        failedAt[peer]?[path] = nil
        let previous = lastWorking[peer]
        lastWorking[peer] = path
        return previous != nil && previous != path ? previous : nil
    }

    public mutating func recordFailure(_ peer: ServerName, path: String, now: EngineTime) {
        failedAt[peer, default: [:]][path] = now
    }

    /// Heartbeats of `peer` are heard on `path` again after a silence: the path is back, its
    /// old connection failure no longer counts.
    public mutating func heardAgain(_ peer: ServerName, path: String) {
        failedAt[peer]?[path] = nil
    }
}

/// One request to a peer over its LAN paths, each tried in turn (see the top of this file).
public enum PeerControlClient {
    public struct Attempt: Sendable {
        public var path: ControlPath
        /// Nil: this attempt got the answer.
        public var error: ControlChannelError?
    }

    public struct Outcome: Sendable {
        /// The verified answer, nil when every attempt failed.
        public var answer: [UInt8]?
        public var attempts: [Attempt]

        /// The path that answered.
        public var answeredOn: ControlPath? { answer == nil ? nil : attempts.last?.path }

        /// The last failure on each path tried, one clause each, in the order tried (a single
        /// path: just its error).
        public var failureSummary: String {
            var order: [ControlPath] = []
            var last: [String: ControlChannelError] = [:]
            for attempt in attempts {
                guard let error = attempt.error else { continue }
                if last[attempt.path.name] == nil { order.append(attempt.path) }
                last[attempt.path.name] = error
            }
            if order.count == 1, let only = order.first, let error = last[only.name] { return "\(error)" }
            return order.compactMap { path in last[path.name].map { "\(path.name): \($0)" } }.joined(separator: "; ")
        }
    }

    /// The connect timeout of the patient second round (that of a single-path request before
    /// paths were tried in turn).
    public static let patientConnectTimeout: Duration = .seconds(3)

    /// Sends `payload` on `paths` in the given order until one answers. `timeout` bounds the
    /// whole request, `attemptTimeout` each connect and hello of the first round. A request
    /// already sent on a path that then fails is sent again on the next path only when
    /// `resendable` (for a resendable one, each attempt but the last leaves `attemptTimeout`
    /// per remaining path). When no path answered and some only ran out of their bound, a
    /// second round tries those again with the patience of a single-path request (connect
    /// `patientConnectTimeout`, the hello within what is left of `timeout`): a loaded peer may
    /// take longer than a short bound to say hello, and a short heartbeat timeout must not make
    /// commands fail on a path that works.
    public static func request(
        paths: [ControlPath],
        port: Int,
        key: ClusterKey,
        localName: String,
        payload: [UInt8],
        timeout: Duration,
        attemptTimeout: Duration,
        resendable: Bool,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) async -> Outcome {
        let started = ContinuousClock.now
        var attempts: [Attempt] = []
        var slow: [ControlPath] = []
        for (index, path) in paths.enumerated() {
            let remaining = timeout - (ContinuousClock.now - started)
            guard remaining > .zero else { break }
            let later = paths.count - index - 1
            let exchange = resendable && later > 0 ? max(attemptTimeout, remaining - attemptTimeout * later) : remaining
            do {
                let answer = try await ControlClient.request(
                    host: path.address, port: port, key: key, localName: localName, payload: payload, timeout: exchange,
                    connectTimeout: attemptTimeout, handshakeTimeout: attemptTimeout, eventLoopGroup: eventLoopGroup)
                attempts.append(Attempt(path: path, error: nil))
                return Outcome(answer: answer, attempts: attempts)
            } catch {
                attempts.append(Attempt(path: path, error: error))
                if case .invalidRequest = error.reason { return Outcome(answer: nil, attempts: attempts) }
                if error.requestSent && !resendable { return Outcome(answer: nil, attempts: attempts) }
                if !error.requestSent && (error.reason == .connectTimedOut || error.reason == .timedOut) { slow.append(path) }
            }
        }
        for path in slow {
            let remaining = timeout - (ContinuousClock.now - started)
            guard remaining > .zero else { break }
            do {
                let answer = try await ControlClient.request(
                    host: path.address, port: port, key: key, localName: localName, payload: payload, timeout: remaining,
                    connectTimeout: patientConnectTimeout, eventLoopGroup: eventLoopGroup)
                attempts.append(Attempt(path: path, error: nil))
                return Outcome(answer: answer, attempts: attempts)
            } catch {
                attempts.append(Attempt(path: path, error: error))
                if error.requestSent && !resendable { break }
            }
        }
        return Outcome(answer: nil, attempts: attempts)
    }

    /// Whether a failed attempt says something about the path (and so demotes it): not an
    /// unusable request, and not an answer that was merely slow once sent.
    public static func blamesPath(_ error: ControlChannelError) -> Bool {
        switch error.reason {
        case .invalidRequest: return false
        case .timedOut: return !error.requestSent
        default: return true
        }
    }
}
