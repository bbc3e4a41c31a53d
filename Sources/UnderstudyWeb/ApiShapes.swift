import Foundation
import UnderstudyEngine
import UnderstudyModel

/// The `result.code` values of the API (docs/api.md). 0 is success; 1–4 are the command
/// exit codes of the CLI (ARCHITECTURE.md §7), so a refusal reads the same in both.
public enum ApiCode: Int, Sendable, CaseIterable {
    case success = 0
    case failed = 1
    case badRequest = 2
    case unreachable = 3
    case inTransition = 4
    case unauthenticated = 5
    case forbidden = 6
    case notFound = 7
    case tooLarge = 8
    case notSupported = 9
    case tooManyAttempts = 10

    /// The HTTP status that goes with the code.
    public var httpStatus: Int {
        switch self {
        case .success: return 200
        case .failed: return 409
        case .badRequest: return 400
        case .unreachable: return 503
        case .inTransition: return 409
        case .unauthenticated: return 401
        case .forbidden: return 403
        case .notFound: return 404
        case .tooLarge: return 413
        case .notSupported: return 501
        case .tooManyAttempts: return 429
        }
    }

    init(_ code: CommandCode) {
        switch code {
        case .success: self = .success
        case .failed: self = .failed
        case .badUsage: self = .badRequest
        case .unreachable: self = .unreachable
        case .inTransition: self = .inTransition
        }
    }
}

/// A response: the HTTP status and the JSON body, always with `result: {code, message}`.
public struct ApiReply: Error, Sendable, Equatable {
    public var status: Int
    public var body: JSONValue

    public static func ok(_ fields: [(String, JSONValue)] = []) -> ApiReply {
        ApiReply(status: 200, body: .object([("result", Self.result(.success, ""))] + fields))
    }

    public static func error(_ code: ApiCode, _ message: String) -> ApiReply {
        ApiReply(status: code.httpStatus, body: .object([("result", Self.result(code, message))]))
    }

    static func result(_ code: ApiCode, _ message: String) -> JSONValue {
        .object([("code", .int(code.rawValue)), ("message", .string(message))])
    }

    public var code: Int? {
        guard case .number(let value)? = body["result"]?["code"] else { return nil }
        return Int(value)
    }
}

/// Status in EXPRESSCLUSTER's JSON shapes (clp-reference §10.2, integration-contracts §1),
/// from the snapshot `clpstat` shows: lists under a plural key even for one object,
/// `"None"` where nothing runs, CLUSTERPRO status words.
public enum ApiShapes {
    /// `cluster.status`: Offline when the service is stopped here, Suspend when suspended,
    /// Caution while a server is not online, else Online.
    public static func clusterStatus(_ snapshot: ClusterStatusSnapshot) -> String {
        if snapshot.service == "stopped" { return "Offline" }
        if snapshot.suspended { return "Suspend" }
        if snapshot.servers.contains(where: { $0.status != .online }) { return "Caution" }
        return "Online"
    }

    public static func cluster(_ snapshot: ClusterStatusSnapshot) -> [(String, JSONValue)] {
        [("cluster", .object([("name", .string(snapshot.cluster)), ("status", .string(clusterStatus(snapshot)))]))]
    }

    /// `{"cluster": {"toratio": N}}`, as EXPRESSCLUSTER; beyond it, when the ratio ends
    /// (`expires`, ISO 8601; absent: until reset) and each server's ratio.
    public static func toratio(_ snapshot: ClusterStatusSnapshot) -> [(String, JSONValue)] {
        let line = snapshot.timeoutRatio
        var fields: [(String, JSONValue)] = [("toratio", .number(Double(line?.ratio ?? 1)))]
        if let ends = line?.expiresAt, (line?.ratio ?? 1) != 1 {
            fields.append(("expires", .string(UTCTimestamp.seconds(Date(timeIntervalSince1970: Double(ends) / 1000)))))
        }
        if let line {
            fields.append(
                (
                    "servers",
                    .array(
                        line.perServer.sorted { $0.key < $1.key }.map {
                            .object([("name", .string($0.key)), ("toratio", .number(Double($0.value)))])
                        })
                ))
        }
        return [("cluster", .object(fields))]
    }

    public static func server(_ line: ClusterStatusSnapshot.ServerLine) -> JSONValue {
        .object([("name", .string(line.name)), ("status", .string(line.status.rawValue))])
    }

    public static func resource(_ line: ClusterStatusSnapshot.ResourceLine, group: ClusterStatusSnapshot.GroupLine) -> JSONValue {
        // A resource runs where its group runs, while it is not offline.
        let current = line.status == .offline ? nil : (line.perServer.first { $0.value != .offline }?.key ?? group.current)
        return .object([
            ("name", .string(line.name)), ("type", .string(line.type)), ("status", .string(line.status.rawValue)),
            ("current", .string(current ?? "None")), ("group", .string(group.name)),
        ])
    }

    public static func group(_ line: ClusterStatusSnapshot.GroupLine) -> JSONValue {
        .object([
            ("name", .string(line.name)), ("status", .string(line.status.rawValue)), ("current", .string(line.current ?? "None")),
            ("resources", .array(line.resources.map { resource($0, group: line) })),
        ])
    }

    public static func monitor(_ line: ClusterStatusSnapshot.MonitorLine, servers: [ServerName]) -> JSONValue {
        .object([
            ("name", .string(line.name)), ("type", .string(line.type)), ("status", .string(line.status.rawValue)),
            (
                "servers",
                .array(
                    servers.map { server in
                        .object([("name", .string(server)), ("status", .string((line.perServer[server] ?? .unused).rawValue))])
                    })
            ),
        ])
    }

    /// `?select=`: `name` keeps only names; `resources` keeps each group's name and
    /// resources; nil or empty keeps everything. Unknown words are a bad request.
    public static func select(_ items: [JSONValue], _ select: String?, allowed: [String]) -> Result<[JSONValue], ApiReply> {
        guard let select, !select.isEmpty else { return .success(items) }
        let words = select.split(separator: ",", omittingEmptySubsequences: false).map { String($0) }
        for word in words where !allowed.contains(word) {
            return .failure(
                .error(.badRequest, "select=\(word.prefix(40)) is not known here; use \(allowed.joined(separator: " or ")).")
            )
        }
        let keep = Set(["name"] + words)
        return .success(
            items.map { item in
                guard case .object(let fields) = item else { return item }
                return .object(fields.filter { keep.contains($0.0) })
            })
    }

    /// The answer to a GET of a collection or one of its objects.
    public static func list(
        key: String, items: [(name: String, value: JSONValue)], name: String?, select: String?, allowed: [String], noun: String
    ) -> ApiReply {
        var chosen = items.map(\.value)
        if let name {
            guard let item = items.first(where: { $0.name == name }) else {
                return .error(.notFound, "\(noun) \(name.prefix(80)) does not exist.")
            }
            chosen = [item.value]
        }
        switch Self.select(chosen, select, allowed: allowed) {
        case .success(let selected): return .ok([(key, .array(selected))])
        case .failure(let reply): return reply
        }
    }

    public static func servers(_ snapshot: ClusterStatusSnapshot, name: String?, select: String?) -> ApiReply {
        list(
            key: "servers", items: snapshot.servers.map { ($0.name, server($0)) }, name: name, select: select, allowed: ["name"],
            noun: "Server")
    }

    public static func groups(_ snapshot: ClusterStatusSnapshot, name: String?, select: String?) -> ApiReply {
        list(
            key: "groups", items: snapshot.groups.map { ($0.name, group($0)) }, name: name, select: select,
            allowed: ["name", "resources"], noun: "Group")
    }

    public static func resources(_ snapshot: ClusterStatusSnapshot, name: String?, select: String?) -> ApiReply {
        let items = snapshot.groups.flatMap { group in group.resources.map { ($0.name, resource($0, group: group)) } }
        return list(key: "resources", items: items, name: name, select: select, allowed: ["name"], noun: "Resource")
    }

    public static func monitors(_ snapshot: ClusterStatusSnapshot, name: String?, select: String?) -> ApiReply {
        let servers = snapshot.servers.map(\.name)
        let items = (snapshot.monitors ?? []).map { ($0.name, monitor($0, servers: servers)) }
        return list(key: "monitors", items: items, name: name, select: select, allowed: ["name"], noun: "Monitor")
    }

    /// The whole status in one object: what the event stream sends on every change.
    public static func status(_ snapshot: ClusterStatusSnapshot) -> JSONValue {
        let servers = snapshot.servers.map(\.name)
        return .object(
            cluster(snapshot) + [
                ("view", .string(snapshot.localServer)),
                ("master", .string(snapshot.master ?? "None")),
                ("servers", .array(snapshot.servers.map(server))),
                ("groups", .array(snapshot.groups.map(group))),
                ("monitors", .array((snapshot.monitors ?? []).map { monitor($0, servers: servers) })),
                // A change of the timeout ratio is a status change too (the WebManager shows it).
                ("toratio", .number(Double(snapshot.timeoutRatio?.ratio ?? 1))),
                // So are this server's alert destinations' counters: the WebManager shows them live.
                ("alertDestinations", .array((snapshot.alertDestinations ?? []).map(alertDestination))),
            ])
    }

    /// One alert destination of the answering server as the router counts it (since its
    /// daemon started): `failing` from the first alert given up until one goes through.
    public static func alertDestination(_ line: ClusterStatusSnapshot.AlertDestinationLine) -> JSONValue {
        .object([
            ("name", .string(line.name)), ("type", .string(line.type)), ("failing", .bool(line.failing)),
            ("delivered", .number(Double(line.delivered))), ("failed", .number(Double(line.failed))),
            ("retried", .number(Double(line.retried))), ("dropped", .number(Double(line.dropped))),
            ("queued", .number(Double(line.queued))), ("lastError", line.lastError.map { JSONValue.string($0) } ?? .null),
        ])
    }
}
