import Foundation
import NIOPosix
import UnderstudyEngine
import UnderstudyModel

/// httpw: a GET of `url`; Normal when the status is the expected one and, if given, the body
/// contains `body-match`. No caching, no cookies, redirects not followed (a redirect is an
/// answer of its own status). A user and password in the URL are sent as basic
/// authentication. HTTPS verifies the server against the system's trust roots and the URL's
/// host. Through the daemon's own NIO client (the witness's and the webhook's), not
/// URLSession: that would link libcurl and its two dozen libraries into every daemon.
struct WebRequestProbe: MonitorProbe {
    /// What the probe needs of the URL (`url` is validated at load: http or https with a host).
    struct Target: Sendable, Equatable {
        var secure: Bool
        var host: String
        var port: Int
        /// Path and query as they stand in the URL, at least `/`.
        var path: String
        /// `user:password`, percent-decoded, when the URL carries them.
        var credentials: String?

        init?(_ text: String) {
            guard let components = URLComponents(string: text), let scheme = components.scheme?.lowercased(),
                scheme == "http" || scheme == "https", var host = components.host, !host.isEmpty
            else { return nil }
            if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
            secure = scheme == "https"
            self.host = host
            port = components.port ?? (secure ? 443 : 80)
            guard (1...65_535).contains(port) else { return nil }
            let rawPath = components.percentEncodedPath
            path = (rawPath.isEmpty ? "/" : rawPath) + (components.percentEncodedQuery.map { "?" + $0 } ?? "")
            if let user = components.user {
                credentials = user + ":" + (components.password ?? "")
            }
        }
    }

    /// The body kept for `body-match`: a health page larger than this is matched on its start.
    static let bodyLimit = 1 << 20
    /// One thread for every httpw monitor of the daemon, apart from the heartbeat's.
    static let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)

    let url: String
    let target: Target
    let expectedStatus: Int
    let bodyMatch: String?
    let timeout: Duration
    let tls: Result<WitnessTLSClient, WitnessExchangeError>?

    init?(url: String, expectedStatus: Int, bodyMatch: String?, timeout: Duration) {
        guard let target = Target(url) else { return nil }
        self.url = Self.redacted(url, target: target)
        self.target = target
        self.expectedStatus = expectedStatus
        self.bodyMatch = bodyMatch
        self.timeout = timeout
        tls =
            target.secure
            ? Result { () throws(WitnessExchangeError) in try WitnessTLSClient(WitnessTLS(), host: target.host) } : nil
    }

    /// The URL for messages: without its password (alerts and logs are read by many).
    static func redacted(_ text: String, target: Target) -> String {
        guard target.credentials != nil, var components = URLComponents(string: text) else { return text }
        if components.password != nil { components.password = "***" }
        return components.string ?? text
    }

    func check() async -> MonitorResult {
        var headers = [("User-Agent", "understudy-httpw"), ("Accept", "*/*")]
        if let credentials = target.credentials {
            headers.append(("Authorization", "Basic " + Data(credentials.utf8).base64EncodedString()))
        }
        let secure: WitnessTLSClient?
        switch tls {
        case nil: secure = nil
        case .success(let client): secure = client
        case .failure(let error): return .error("\(url): \(error)")
        }
        let answer: (status: Int, body: [UInt8])
        do {
            answer = try await WitnessHTTPClient.get(
                host: target.host, port: target.port, path: target.path, timeout: timeout, tls: secure, headers: headers,
                peer: "the web server", bodyLimit: .truncate(Self.bodyLimit), group: Self.group)
        } catch {
            return .error("\(url): \(error)")
        }
        guard answer.status == expectedStatus else {
            return .error("\(url) answered \(answer.status), expected \(expectedStatus)")
        }
        if let bodyMatch, !bodyMatch.isEmpty, !String(decoding: answer.body, as: UTF8.self).contains(bodyMatch) {
            return .error("\(url): the body does not contain \"\(bodyMatch)\"")
        }
        return .normal
    }
}
