/// What a request asks for: `/api/v1` paths and verbs as EXPRESSCLUSTER's (clp-reference
/// §10.2), plus Understudy's own (login, logout, alerts, events, openapi.json). Pure, so
/// tests can read every path without a server.
public enum ApiRoute: Equatable, Sendable {
    case openAPI
    case login
    case logout
    case cluster
    case toratio
    case servers(String?)
    case groups(String?)
    case resources(String?)
    case monitors(String?)
    case alerts
    case events
    case operation(ApiOperation)

    /// Routes that need no credentials.
    public var isPublic: Bool { self == .openAPI || self == .login }
}

public enum ApiOperation: Equatable, Sendable {
    public enum ClusterVerb: String, Sendable, CaseIterable { case start, stop, reboot, shutdown, suspend, resume }
    public enum ServerVerb: String, Sendable, CaseIterable { case start, stop, reboot, shutdown }
    public enum GroupVerb: String, Sendable, CaseIterable { case start, stop, move }
    public enum MonitorVerb: String, Sendable { case suspend, resume, dummyFailureStart, dummyFailureStop }

    case cluster(ClusterVerb)
    case toratioSet
    case toratioReset
    case server(String, ServerVerb)
    case serverDummyFailure(String, start: Bool)
    /// nil: every group.
    case group(String?, GroupVerb)
    case resource(String, start: Bool)
    case monitor(String, MonitorVerb)
    case runScript
}

public enum RouteMatch: Equatable, Sendable {
    case route(ApiRoute)
    case notFound
    /// The path exists with other methods.
    case methodNotAllowed(allowed: String)
}

extension ApiRoute {
    public static let prefix = "/api/v1"

    public static func match(method: String, path: String) -> RouteMatch {
        guard path == prefix || path.hasPrefix(prefix + "/") else { return .notFound }
        var segments = path.dropFirst(prefix.count).split(separator: "/", omittingEmptySubsequences: true).map {
            String($0).removingPercentEncoding ?? String($0)
        }
        // A trailing slash is the same path.
        segments = segments.filter { !$0.isEmpty }
        if let get = getRoute(segments) {
            return method == "GET" || method == "HEAD" ? .route(get) : .methodNotAllowed(allowed: "GET")
        }
        if let post = postRoute(segments) {
            return method == "POST" ? .route(post) : .methodNotAllowed(allowed: "POST")
        }
        return .notFound
    }

    static func getRoute(_ s: [String]) -> ApiRoute? {
        switch s.count {
        case 1:
            switch s[0] {
            case "openapi.json": return .openAPI
            case "cluster": return .cluster
            case "servers": return .servers(nil)
            case "groups": return .groups(nil)
            case "resources": return .resources(nil)
            case "monitors": return .monitors(nil)
            case "alerts": return .alerts
            case "events": return .events
            default: return nil
            }
        case 2:
            switch s[0] {
            case "cluster" where s[1] == "toratio": return .toratio
            case "servers": return .servers(s[1])
            case "groups" where !["start", "stop"].contains(s[1]): return .groups(s[1])
            case "resources": return .resources(s[1])
            case "monitors": return .monitors(s[1])
            default: return nil
            }
        default: return nil
        }
    }

    static func postRoute(_ s: [String]) -> ApiRoute? {
        switch s.count {
        case 1:
            switch s[0] {
            case "login": return .login
            case "logout": return .logout
            default: return nil
            }
        case 2:
            switch s[0] {
            case "cluster": return ApiOperation.ClusterVerb(rawValue: s[1]).map { .operation(.cluster($0)) }
            case "groups" where s[1] == "start" || s[1] == "stop":
                return .operation(.group(nil, s[1] == "start" ? .start : .stop))
            case "scripts" where s[1] == "run": return .operation(.runScript)
            default: return nil
            }
        case 3:
            switch s[0] {
            case "cluster" where s[1] == "toratio":
                if s[2] == "set" { return .operation(.toratioSet) }
                if s[2] == "reset" { return .operation(.toratioReset) }
                return nil
            case "servers": return ApiOperation.ServerVerb(rawValue: s[2]).map { .operation(.server(s[1], $0)) }
            case "groups": return ApiOperation.GroupVerb(rawValue: s[2]).map { .operation(.group(s[1], $0)) }
            case "resources" where s[2] == "start" || s[2] == "stop": return .operation(.resource(s[1], start: s[2] == "start"))
            case "monitors" where s[2] == "suspend": return .operation(.monitor(s[1], .suspend))
            case "monitors" where s[2] == "resume": return .operation(.monitor(s[1], .resume))
            default: return nil
            }
        case 4 where s[2] == "dummy-failure" && (s[3] == "start" || s[3] == "stop"):
            switch s[0] {
            case "servers": return .operation(.serverDummyFailure(s[1], start: s[3] == "start"))
            case "monitors": return .operation(.monitor(s[1], s[3] == "start" ? .dummyFailureStart : .dummyFailureStop))
            default: return nil
            }
        default: return nil
        }
    }
}
