import Foundation
import UnderstudyEngine
import UnderstudyModel

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// httpw: a GET of `url`; Normal when the status is the expected one and, if given, the body
/// contains `body-match`. No caching, no cookies, redirects not followed (a redirect is an
/// answer of its own status).
final class WebRequestProbe: NSObject, MonitorProbe, URLSessionTaskDelegate, @unchecked Sendable {
    let url: URL
    let expectedStatus: Int
    let bodyMatch: String?
    let timeout: Duration
    // Immutable after init; URLSession is thread-safe.
    private var session: URLSession!

    init(url: URL, expectedStatus: Int, bodyMatch: String?, timeout: Duration) {
        self.url = url
        self.expectedStatus = expectedStatus
        self.bodyMatch = bodyMatch
        self.timeout = timeout
        super.init()
        let configuration = URLSessionConfiguration.ephemeral
        configuration.requestCachePolicy = .reloadIgnoringLocalAndRemoteCacheData
        configuration.urlCache = nil
        configuration.httpShouldSetCookies = false
        let seconds = timeout.inSeconds
        configuration.timeoutIntervalForRequest = seconds
        configuration.timeoutIntervalForResource = seconds
        session = URLSession(configuration: configuration, delegate: self, delegateQueue: nil)
    }

    func check() async -> MonitorResult {
        var request = URLRequest(url: url)
        request.setValue("understudy-httpw", forHTTPHeaderField: "User-Agent")
        do {
            let (data, response) = try await session.data(for: request)
            guard let http = response as? HTTPURLResponse else { return .error("\(url): not an HTTP answer") }
            guard http.statusCode == expectedStatus else {
                return .error("\(url) answered \(http.statusCode), expected \(expectedStatus)")
            }
            if let bodyMatch, !bodyMatch.isEmpty, !String(decoding: data, as: UTF8.self).contains(bodyMatch) {
                return .error("\(url): the body does not contain \"\(bodyMatch)\"")
            }
            return .normal
        } catch {
            return .error("\(url): \(error.localizedDescription)")
        }
    }

    func stop() async { session.invalidateAndCancel() }

    func urlSession(
        _ session: URLSession, task: URLSessionTask, willPerformHTTPRedirection response: HTTPURLResponse,
        newRequest request: URLRequest, completionHandler: @escaping (URLRequest?) -> Void
    ) {
        completionHandler(nil)
    }
}
