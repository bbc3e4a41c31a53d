import Crypto
import Foundation
import NIOPosix
import UnderstudyModel

/// POSTs each alert as JSON (`cluster`, `server`, `time`, `level`, `module`, `id`, `message`)
/// with `X-Understudy-Signature: sha256=<hex HMAC-SHA256 of the body>` under the secret
/// file's key. Any 2xx answer is a delivery; anything else, a refused connection or no answer
/// within the timeout fails the attempt. HTTP and HTTPS (TLS 1.2+, the system's trust roots or
/// `ca-file`) through the daemon's small NIO client (the witness's), on an event loop shared
/// with nothing that keeps time.
public struct WebhookDestination: AlertDestination {
    public let name: String
    let settings: WebhookDestinationSettings
    let url: WebhookURL
    let tls: Result<WitnessTLSClient, WitnessExchangeError>?
    static let signatureHeader = "X-Understudy-Signature"
    static let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)

    public init(name: String, settings: WebhookDestinationSettings) throws {
        guard let url = WebhookURL(settings.url) else {
            throw AlertDeliveryError("webhook \(name): \(WebhookURL.problem(settings.url) ?? "invalid URL")")
        }
        self.name = name
        self.settings = settings
        self.url = url
        tls =
            url.secure
            ? Result { () throws(WitnessExchangeError) in try WitnessTLSClient(WitnessTLS(caFile: settings.caFile), host: url.host) } : nil
    }

    /// The body: one JSON object, keys sorted, time in RFC 3339 UTC with milliseconds.
    public static func body(_ alert: AlertEvent) -> [UInt8] {
        struct Payload: Encodable {
            var cluster: String
            var server: String
            var time: String
            var level: String
            var module: String
            var id: Int
            var message: String
        }
        let payload = Payload(
            cluster: alert.cluster, server: alert.server, time: UTCTimestamp.milliseconds(alert.time), level: alert.level.configWord,
            module: alert.module, id: alert.eventID, message: alert.message)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return Array((try? encoder.encode(payload)) ?? Data())
    }

    /// `sha256=` and the hex HMAC-SHA256 of `body` under `key`.
    public static func signature(of body: [UInt8], key: [UInt8]) -> String {
        let mac = HMAC<SHA256>.authenticationCode(for: body, using: SymmetricKey(data: key))
        return "sha256=" + mac.map { String(format: "%02x", $0) }.joined()
    }

    /// The key: the secret file's bytes without a trailing newline, read at every attempt so
    /// a rotated key applies without a configuration change.
    func key() throws -> [UInt8]? {
        guard let file = settings.secretFile else { return nil }
        guard let data = FileManager.default.contents(atPath: file) else {
            throw AlertDeliveryError("cannot read the webhook secret file \(file)")
        }
        var bytes = Array(data)
        while let last = bytes.last, last == UInt8(ascii: "\n") || last == UInt8(ascii: "\r") { bytes.removeLast() }
        guard !bytes.isEmpty else { throw AlertDeliveryError("the webhook secret file \(file) is empty") }
        return bytes
    }

    public func deliver(_ alert: AlertEvent) async throws {
        let body = Self.body(alert)
        var headers: [(String, String)] = [("User-Agent", "understudy/\(Defaults.productVersion)")]
        if let key = try key() { headers.append((Self.signatureHeader, Self.signature(of: body, key: key))) }
        let secure: WitnessTLSClient?
        switch tls {
        case nil: secure = nil
        case .success(let client): secure = client
        case .failure(let error): throw AlertDeliveryError("webhook \(url.host):\(url.port): \(error)")
        }
        let answer: (status: Int, body: [UInt8])
        do {
            answer = try await WitnessHTTPClient.post(
                host: url.host, port: url.port, path: url.target, body: body, timeout: settings.timeout, tls: secure,
                contentType: "application/json", headers: headers, peer: "the webhook", group: Self.group)
        } catch {
            throw AlertDeliveryError("\(error)")
        }
        guard (200..<300).contains(answer.status) else {
            throw AlertDeliveryError("the webhook \(url.host):\(url.port) answered HTTP \(answer.status)")
        }
    }
}
