import Synchronization
import UnderstudyEngine
import UnderstudyModel

/// What the witness does with one HTTP request, without the network: authenticates it with
/// its cluster's key, checks it against the cluster's replay guard, records the contact,
/// decides (`WitnessArbiter`) or relays heartbeats, and seals the reply. Shared by the HTTP
/// server and the tests; safe to call from any thread.
///
/// State lives in memory only: a restarted witness starts empty, and the arbiter's quiet
/// period keeps it from granting anything before every grant it forgot has lapsed.
public final class WitnessService: Sendable {
    public struct Response: Sendable, Equatable {
        public var status: Int
        public var body: [UInt8]
        public var contentType: String

        static func text(_ status: Int, _ message: String) -> Response {
            Response(status: status, body: Array((message + "\n").utf8), contentType: "text/plain; charset=utf-8")
        }
    }

    /// Why requests were refused, per cluster (`unknown-cluster` under the empty name).
    public struct Counters: Sendable, Equatable {
        public var heartbeats: UInt64 = 0
        public var resolutions: UInt64 = 0
        public var granted: UInt64 = 0
        public var denied: UInt64 = 0
        public var notYet: UInt64 = 0
        public var unauthenticated: UInt64 = 0
        public var replayed: UInt64 = 0
        public var malformed: UInt64 = 0
        public var oversize: UInt64 = 0

        public init() {}
    }

    struct ClusterState {
        /// Seals the replies (its replay guard is unused).
        let sealer: DatagramCodec
        var heartbeatCodec: DatagramCodec
        var resolveCodec: DatagramCodec
        var arbiter = WitnessArbiter()
        /// The newest sealed heartbeat request of each server, and when it came (uptime).
        var latest: [ServerName: (datagram: [UInt8], at: Duration, timeout: Duration)] = [:]
        var counters = Counters()
        var lastVerdict: [ServerName: WitnessArbiter.Verdict] = [:]
    }

    private struct State {
        var clusters: [String: ClusterState]
        var unknownCluster = Counters()
        var nextSequence: UInt64 = 1
    }

    private let state: Mutex<State>
    private let keys: [String: ClusterKey]
    private let started: ContinuousClock.Instant
    /// The boot id of this witness's replies (wall-clock microseconds at start).
    public let bootID: UInt64
    private let log: @Sendable (String) -> Void

    /// `keys`: each cluster's name and key. `started`: when the witness started (tests move it).
    public init(
        keys: [String: ClusterKey], bootID: UInt64, started: ContinuousClock.Instant = .now,
        log: @escaping @Sendable (String) -> Void = { _ in }
    ) {
        self.keys = keys
        self.bootID = bootID
        self.started = started
        self.log = log
        state = Mutex(
            State(
                clusters: keys.mapValues { key in
                    ClusterState(
                        sealer: DatagramCodec(key: key), heartbeatCodec: DatagramCodec(key: key), resolveCodec: DatagramCodec(key: key))
                }))
    }

    public var clusterNames: [String] { keys.keys.sorted() }

    public func counters(of cluster: String) -> Counters? { state.withLock { $0.clusters[cluster]?.counters } }

    public var unknownClusterCounters: Counters { state.withLock { $0.unknownCluster } }

    var uptime: Duration { started.duration(to: .now) }

    /// Handles one request: `method`, `path` (`/v1/clusters/<name>/heartbeat|resolve`, or
    /// `/v1/status`), its body (nil: larger than `WitnessMessage.maximumBodySize`).
    public func handle(method: String, path: String, body: [UInt8]?) -> Response {
        if path == "/v1/status" || path == "/" {
            guard method == "GET" else { return .text(405, "use GET") }
            return status()
        }
        let parts = path.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 5, parts[0].isEmpty, parts[1] == "v1", parts[2] == "clusters",
            let kind: WitnessMessage.Kind = parts[4] == "heartbeat" ? .heartbeat : parts[4] == "resolve" ? .resolve : nil
        else { return .text(404, "unknown path") }
        guard method == "POST" else { return .text(405, "use POST") }
        let cluster = String(parts[3])
        guard keys[cluster] != nil else {
            state.withLock { $0.unknownCluster.unauthenticated += 1 }
            return .text(401, "unknown cluster or bad key")
        }
        guard let body else {
            count(cluster) { $0.oversize += 1 }
            return .text(413, "body larger than \(WitnessMessage.maximumBodySize) bytes")
        }
        let now = uptime
        return state.withLock { state -> Response in
            guard var known = state.clusters[cluster] else { return .text(401, "unknown cluster or bad key") }
            defer { state.clusters[cluster] = known }
            let codec = kind == .heartbeat ? known.heartbeatCodec : known.resolveCodec
            let opened: DatagramCodec.Opened
            switch codec.authenticate(body) {
            case .failure(.badMAC), .failure(.badSender):
                known.counters.unauthenticated += 1
                return .text(401, "unknown cluster or bad key")
            case .failure(let reason):
                known.counters.malformed += 1
                return .text(400, "not a sealed witness request (\(reason))")
            case .success(let authenticated):
                opened = authenticated
            }
            let request: WitnessMessage.Request
            switch WitnessMessage.parseRequest(opened.payload, kind: kind) {
            case .failure(let error):
                known.counters.malformed += 1
                return .text(400, "bad \(kind.pathComponent) request: \(error)")
            case .success(let parsed):
                request = parsed
            }
            guard request.cluster == cluster else {
                known.counters.malformed += 1
                return .text(400, "the request is for another cluster")
            }
            let admitted: DropReason?
            if kind == .heartbeat {
                admitted = known.heartbeatCodec.replayGuard.admit(
                    sender: opened.sender, bootID: opened.bootID, sequence: opened.sequence)
            } else {
                admitted = known.resolveCodec.replayGuard.admit(sender: opened.sender, bootID: opened.bootID, sequence: opened.sequence)
            }
            if let admitted {
                known.counters.replayed += 1
                if admitted == .tooManySenders { return .text(429, "too many senders") }
                return .text(409, "replayed or stale request (\(admitted))")
            }
            let reply: WitnessMessage.Reply
            switch request {
            case .heartbeat(_, let timeout, _):
                known.counters.heartbeats += 1
                known.arbiter.noteContact(opened.sender, heartbeatTimeout: timeout, at: now)
                known.latest[opened.sender] = (body, now, timeout)
                // The others' newest heartbeats, while not older than their timeout.
                let relayed = known.latest.filter { $0.key != opened.sender && now - $0.value.at <= $0.value.timeout }
                    .sorted { $0.key < $1.key }
                    .map {
                        WitnessMessage.Relayed(
                            ageMillis: UInt32(clamping: max(0, (now - $0.value.at).inMilliseconds)), datagram: $0.value.datagram)
                    }
                reply = WitnessMessage.Reply(
                    kind: .heartbeat, requestBootID: opened.bootID, requestSequence: opened.sequence, verdict: .granted,
                    relayed: Array(relayed.prefix(WitnessMessage.maximumRelayed)))
            case .resolve(_, let timeout, let servers, let view):
                known.counters.resolutions += 1
                let before = known.arbiter.holders(at: now)
                let verdict = known.arbiter.decide(
                    WitnessArbiter.Request(server: opened.sender, servers: servers, view: view, heartbeatTimeout: timeout), at: now)
                switch verdict {
                case .granted: known.counters.granted += 1
                case .denied: known.counters.denied += 1
                case .notYet: known.counters.notYet += 1
                }
                let after = known.arbiter.holders(at: now)
                // Logged when the grants change or a server's answer changes (a losing server
                // asks every interval: not one line each time).
                let previous = known.lastVerdict[opened.sender]
                known.lastVerdict[opened.sender] = verdict
                if before != after || previous != verdict {
                    log(
                        "cluster \(cluster): \(opened.sender) (sees \(view.sorted().joined(separator: ","))) asked for survival: \(verdict); grants held by \(after.sorted().joined(separator: ",").ifEmpty("nobody"))"
                    )
                }
                reply = WitnessMessage.Reply(
                    kind: .resolve, requestBootID: opened.bootID, requestSequence: opened.sequence, verdict: verdict)
            }
            let sequence = state.nextSequence
            state.nextSequence += 1
            guard
                let sealed = try? known.sealer.seal(
                    payload: WitnessMessage.encode(reply), sender: WitnessMessage.witnessSender, bootID: bootID, sequence: sequence)
            else { return .text(500, "cannot seal the reply") }
            return Response(status: 200, body: sealed, contentType: "application/octet-stream")
        }
    }

    private func count(_ cluster: String, _ change: (inout Counters) -> Void) {
        state.withLock { state in
            guard var known = state.clusters[cluster] else { return }
            change(&known.counters)
            state.clusters[cluster] = known
        }
    }

    /// Counters and grants of every cluster, plain text (no keys, no heartbeats).
    func status() -> Response {
        let now = uptime
        let text = state.withLock { state -> String in
            var lines = ["understudy witness up \(Int(now.components.seconds))s"]
            for (name, cluster) in state.clusters.sorted(by: { $0.key < $1.key }) {
                let c = cluster.counters
                let holders = cluster.arbiter.holders(at: now).sorted().joined(separator: ",")
                lines.append(
                    "cluster \(name): heartbeats \(c.heartbeats) resolutions \(c.resolutions) granted \(c.granted) denied \(c.denied) not-yet \(c.notYet) unauthenticated \(c.unauthenticated) replayed \(c.replayed) malformed \(c.malformed) oversize \(c.oversize) grants [\(holders)]"
                )
            }
            lines.append("unknown clusters: \(state.unknownCluster.unauthenticated)")
            return lines.joined(separator: "\n")
        }
        return .text(200, text)
    }
}

extension String {
    fileprivate func ifEmpty(_ replacement: String) -> String { isEmpty ? replacement : self }
}
