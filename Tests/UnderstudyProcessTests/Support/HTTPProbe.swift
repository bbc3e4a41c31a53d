import Foundation
import UnderstudyWeb

/// One HTTP exchange made with curl: status, headers (names in lower case) and body.
struct HTTPExchange: CustomStringConvertible {
    var method: String
    var url: String
    var status: Int
    var headers: [String: String]
    var body: String
    /// curl's own exit code (0 unless the connection or TLS failed).
    var curlExit: Int32
    var curlError: String

    var json: JSONValue? { try? JSONValue.parse(Array(body.utf8)) }
    var code: Int? {
        guard case .number(let value)? = json?["result"]?["code"] else { return nil }
        return Int(value)
    }
    var message: String? { json?["result"]?["message"]?.stringValue }

    var description: String { "\(method) \(url) → \(status) curl=\(curlExit) \(curlError) \(body.prefix(600))" }
}

/// curl, bounded in time, output through files (see CommandRunner).
struct HTTPProbe {
    let scratch: String
    var user: String?
    var password: String?
    /// The client's source address (`--interface`): tests pick one per role of the client.
    var from: String?
    var caCertificate: String?
    var cookieJar: String?

    func request(
        _ method: String, _ url: String, body: String? = nil, headers: [String: String] = [:], maxTime: Int = 20
    ) async throws -> HTTPExchange {
        let id = UUID().uuidString.prefix(8)
        let headerFile = "\(scratch)/curl-\(id).headers"
        let bodyFile = "\(scratch)/curl-\(id).body"
        defer {
            try? FileManager.default.removeItem(atPath: headerFile)
            try? FileManager.default.removeItem(atPath: bodyFile)
        }
        var arguments = ["-sS", "--max-time", "\(maxTime)", "-X", method, "-D", headerFile, "-o", bodyFile, "-w", "%{http_code}"]
        if let user, let password { arguments += ["-u", "\(user):\(password)"] }
        if let from { arguments += ["--interface", from] }
        if let caCertificate { arguments += ["--cacert", caCertificate] }
        if let cookieJar { arguments += ["-b", cookieJar, "-c", cookieJar] }
        for (name, value) in headers { arguments += ["-H", "\(name): \(value)"] }
        if let body {
            let payload = "\(scratch)/curl-\(id).payload"
            try body.write(toFile: payload, atomically: true, encoding: .utf8)
            // --data-binary without -H Content-Type: curl sends form-urlencoded, as the
            // PowerShell client of integration-contracts §1 does.
            arguments += ["--data-binary", "@" + payload]
        }
        arguments.append(url)
        let outcome = try await CommandRunner.run("/usr/bin/curl", arguments, scratch: scratch, timeout: .seconds(maxTime + 10))
        var headers: [String: String] = [:]
        let rawHeaders = (try? String(contentsOfFile: headerFile, encoding: .utf8)) ?? ""
        for line in rawHeaders.split(separator: "\r\n") {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        return HTTPExchange(
            method: method, url: url, status: Int(outcome.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0,
            headers: headers, body: (try? String(contentsOfFile: bodyFile, encoding: .utf8)) ?? "", curlExit: outcome.exitCode,
            curlError: outcome.standardError)
    }
}
