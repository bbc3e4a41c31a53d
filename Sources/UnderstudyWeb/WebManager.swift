import Foundation
import UnderstudyEngine
import UnderstudyModel
import UnderstudyNode

/// The WebManager: its page (HTML, CSS, JavaScript compiled into the binary) and the API
/// routes only it needs beyond EXPRESSCLUSTER's: the whole status of a server (its own view,
/// also of another server during a partition), the current session, and config mode.
public enum WebManager {
    /// Served for `GET /` and its files; nil for any other path.
    public static func asset(_ path: String) -> (contentType: String, bytes: [UInt8])? {
        switch path {
        case "/", "/index.html": return ("text/html; charset=utf-8", PackageResources.index_html)
        case "/app.js": return ("text/javascript; charset=utf-8", PackageResources.app_js)
        case "/app.css": return ("text/css; charset=utf-8", PackageResources.app_css)
        default: return nil
        }
    }

    /// The page loads nothing but its own files and talks only to its own server.
    public static let securityHeaders: [(String, String)] = [
        (
            "Content-Security-Policy",
            "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
        ),
        ("X-Frame-Options", "DENY"),
        ("Referrer-Policy", "no-referrer"),
    ]

    /// The paths of `routes` (for the OpenAPI document's test).
    public static let routePaths = ["/api/v1/session", "/api/v1/status", "/api/v1/config", "/api/v1/config/check", "/api/v1/config/apply"]

    /// The routes of the page, on top of `/api/v1`.
    public static func routes(daemon: any DaemonPort, configPath: String) -> [ExtraRoute] {
        [
            ExtraRoute(method: "GET", path: "/api/v1/session", role: .viewer) { _, _, principal in
                .ok(
                    [("user", .string(principal.user)), ("role", .string(principal.role.rawValue))]
                        + (principal.csrfToken.map { [("csrfToken", JSONValue.string($0))] } ?? []))
            },
            ExtraRoute(method: "GET", path: "/api/v1/status", role: .viewer) { request, _, _ in
                await status(daemon: daemon, server: request.query["server"])
            },
            ExtraRoute(method: "GET", path: "/api/v1/config", role: .viewer) { _, _, _ in
                switch await daemon.request(.configPull) {
                case .configuration(let bundle, let version, let hash):
                    return .ok([("yaml", .string(bundle.yaml)), ("version", .int(Int(version))), ("hash", .string(hash))])
                case .result(let result): return .error(ApiCode(result.code), result.message)
                default: return .error(.failed, "The daemon did not answer with its configuration.")
                }
            },
            ExtraRoute(method: "POST", path: "/api/v1/config/check", role: .viewer) { _, body, _ in
                await check(daemon: daemon, body: body, configPath: configPath, apply: false)
            },
            ExtraRoute(method: "POST", path: "/api/v1/config/apply", role: .operator) { _, body, _ in
                await check(daemon: daemon, body: body, configPath: configPath, apply: true)
            },
        ]
    }

    /// `GET /api/v1/status[?server=NAME]`: the snapshot `clpstat --json` shows, as this server
    /// or the named one sees the cluster.
    static func status(daemon: any DaemonPort, server: String?) async -> ApiReply {
        switch await daemon.request(.status(target: server?.isEmpty == false ? server : nil)) {
        case .status(let snapshot):
            guard let value = encoded(snapshot) else { return .error(.failed, "The status could not be encoded.") }
            return .ok([("status", value)])
        case .result(let result):
            return .error(result.code == .success ? .failed : ApiCode(result.code), result.message)
        default:
            return .error(.failed, "The daemon did not answer with its status.")
        }
    }

    /// Config mode: the editor's text checked by the validator (each error with its line and
    /// key), then by the daemon as `understudy config apply --dry-run` (the reflection
    /// method); with `apply`, applied to every server if both pass.
    static func check(daemon: any DaemonPort, body: JSONValue, configPath: String, apply: Bool) async -> ApiReply {
        guard let yaml = body["yaml"]?.stringValue else { return .error(.badRequest, "Send {\"yaml\": the cluster file's text}.") }
        var diagnostics: [ConfigDiagnostic] = []
        do {
            diagnostics = try ConfigLoader.loadWithWarnings(yaml: yaml, sourcePath: configPath).warnings
        } catch {
            diagnostics = error.diagnostics
        }
        let problems = JSONValue.array(
            diagnostics.map { diagnostic in
                .object([
                    ("severity", .string(diagnostic.severity.rawValue)), ("line", .int(diagnostic.line)),
                    ("keyPath", .string(diagnostic.keyPath)), ("message", .string(diagnostic.message)),
                ])
            })
        if diagnostics.contains(where: { $0.severity == .error }) {
            var reply = ApiReply.error(.badRequest, "The configuration has errors.")
            reply.body = .object([("result", ApiReply.result(.badRequest, "The configuration has errors.")), ("errors", problems)])
            return reply
        }
        // The scripts stay the running ones: the editor changes the cluster file only.
        let running: ConfigBundle
        switch await daemon.request(.configPull) {
        case .configuration(let bundle, _, _): running = bundle
        default: return .error(.unreachable, "The daemon did not answer with its configuration.")
        }
        let bundle = ConfigBundle(yaml: yaml, scripts: running.scripts)
        switch await daemon.request(.configApply(bundle, dryRun: !apply, prepareOnly: false)) {
        case .configApply(let report):
            var fields: [(String, JSONValue)] = [("errors", problems)]
            if let reflection = report.reflection {
                fields.append(
                    (
                        "reflection",
                        .object([("method", .string("\(reflection.method)")), ("text", .string(reflection.method.title))])
                    ))
                fields.append(
                    (
                        "changes",
                        .array(
                            reflection.changes.map { change in
                                .object([
                                    ("path", .string(change.path)), ("text", .string(change.text)),
                                    ("method", .object([("method", .string("\(change.method)")), ("text", .string(change.method.title))])),
                                ])
                            })
                    ))
            }
            if let version = report.version { fields.append(("version", .int(Int(version)))) }
            guard report.result.code == .success else {
                var reply = ApiReply.error(ApiCode(report.result.code), report.result.message)
                if case .object(let base) = reply.body { reply.body = .object(base + fields) }
                return reply
            }
            return .ok(fields)
        case .result(let result):
            return .error(ApiCode(result.code), result.message)
        default:
            return .error(.failed, "The daemon did not answer the configuration request.")
        }
    }

    static func encoded(_ value: some Encodable) -> JSONValue? {
        guard let data = try? JSONEncoder().encode(value) else { return nil }
        return try? JSONValue.parse(Array(data), maximumDepth: 64)
    }
}
