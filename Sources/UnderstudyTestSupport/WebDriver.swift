import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A real headless Chromium driven over the W3C WebDriver protocol by `chromedriver` (Debian
/// packages `chromium` and `chromium-driver`), for the WebManager's browser tests.
///
/// Every call is bounded: the HTTP request by `requestTimeout`, waits by their own limit.
/// `quit()` ends the session and kills chromedriver by its pid (Chromium is its child and goes
/// with it); tests call it in a `defer`-like path even when they fail.
public final class WebDriverSession: @unchecked Sendable {
    // @unchecked: the fields are set once in `start`; `process` is only read afterwards.

    public static let chromium = Prerequisite.all(
        "chromium",
        [
            .executable("/usr/bin/chromium", package: "chromium"),
            .executable("/usr/bin/chromedriver", package: "chromium-driver"),
            .command("curl", package: "curl"),
        ])

    public struct Element: Sendable, Equatable {
        public let id: String
    }

    public struct WebDriverError: Error, CustomStringConvertible, Sendable {
        public let description: String
        init(_ description: String) { self.description = description }
    }

    let base: String
    let sessionID: String
    let process: Process
    let profile: String
    public static let requestTimeout: TimeInterval = 30

    private init(base: String, sessionID: String, process: Process, profile: String) {
        self.base = base
        self.sessionID = sessionID
        self.process = process
        self.profile = profile
    }

    /// Starts chromedriver on a free loopback port and a headless Chromium session with a
    /// window of `width` × `height` CSS pixels (a phone: 390 × 844).
    public static func start(width: Int = 1280, height: Int = 900) async throws -> WebDriverSession {
        let port = try FreePort.take()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/chromedriver")
        process.arguments = ["--port=\(port)", "--allowed-ips=127.0.0.1"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        let base = "http://127.0.0.1:\(port)"
        let profile = NSTemporaryDirectory() + "understudy-chromium-\(getpid())-\(port)"
        do {
            // chromedriver answers /status once it listens (bounded: 100 tries, 10 s).
            var ready = false
            var last = "no answer"
            for _ in 0..<100 where !ready {
                do {
                    let status = try await request("GET", base + "/status", body: nil, timeout: 1)
                    ready = (status["value"] as? [String: Any])?["ready"] as? Bool == true
                    last = "\(status)"
                } catch {
                    last = "\(error)"
                }
                if !ready { try await Task.sleep(for: .milliseconds(100)) }
            }
            guard ready else { throw WebDriverError("chromedriver did not become ready on port \(port): \(last)") }
            let capabilities: [String: Any] = [
                "capabilities": [
                    "alwaysMatch": [
                        "browserName": "chrome",
                        "goog:loggingPrefs": ["browser": "ALL"],
                        "goog:chromeOptions": [
                            "binary": "/usr/bin/chromium",
                            "args": [
                                "--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                                "--window-size=\(width),\(height)", "--user-data-dir=\(profile)", "--ignore-certificate-errors",
                                "--no-first-run", "--disable-extensions",
                            ],
                        ],
                    ]
                ]
            ]
            let answer = try await request("POST", base + "/session", body: capabilities, timeout: 60)
            guard let value = answer["value"] as? [String: Any], let sessionID = value["sessionId"] as? String else {
                throw WebDriverError("chromedriver did not open a session: \(answer)")
            }
            return WebDriverSession(base: base, sessionID: sessionID, process: process, profile: profile)
        } catch {
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
            try? FileManager.default.removeItem(atPath: profile)
            throw error
        }
    }

    /// Ends the session and chromedriver (with its Chromium).
    public func quit() async {
        _ = try? await command("DELETE", "", body: nil, timeout: 10)
        if process.isRunning {
            process.terminate()
            for _ in 0..<50 where process.isRunning { try? await Task.sleep(for: .milliseconds(20)) }
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        }
        try? FileManager.default.removeItem(atPath: profile)
    }

    // MARK: Commands

    public func navigate(to url: String) async throws {
        _ = try await command("POST", "/url", body: ["url": url])
    }

    public func currentURL() async throws -> String {
        try await command("GET", "/url", body: nil) as? String ?? ""
    }

    public func find(_ selector: String) async throws -> Element {
        let value = try await command("POST", "/element", body: ["using": "css selector", "value": selector])
        guard let element = Self.element(value) else { throw WebDriverError("no element \(selector)") }
        return element
    }

    public func findAll(_ selector: String) async throws -> [Element] {
        let value = try await command("POST", "/elements", body: ["using": "css selector", "value": selector])
        return (value as? [Any] ?? []).compactMap(Self.element)
    }

    public func click(_ element: Element) async throws {
        _ = try await command("POST", "/element/\(element.id)/click", body: [:])
    }

    public func type(_ text: String, into element: Element) async throws {
        _ = try await command("POST", "/element/\(element.id)/value", body: ["text": text])
    }

    public func clear(_ element: Element) async throws {
        _ = try await command("POST", "/element/\(element.id)/clear", body: [:])
    }

    public func text(of element: Element) async throws -> String {
        try await command("GET", "/element/\(element.id)/text", body: nil) as? String ?? ""
    }

    public func attribute(_ name: String, of element: Element) async throws -> String? {
        try await command("GET", "/element/\(element.id)/attribute/\(name)", body: nil) as? String
    }

    /// Runs `script` (a function body; `arguments[0]`…) in the page and returns its value.
    public func execute(_ script: String, _ arguments: [Any] = []) async throws -> Any? {
        let value = try await command("POST", "/execute/sync", body: ["script": script, "args": arguments])
        return value is NSNull ? nil : value
    }

    /// Runs `script` (which returns a boolean) and says whether it returned true.
    public func holds(_ script: String) async throws -> Bool {
        switch try await execute(script) {
        case let value as Bool: return value
        case let value as NSNumber: return value.boolValue
        default: return false
        }
    }

    /// The browser console's messages since the last call (for failure reports).
    public func consoleMessages() async -> [String] {
        guard let entries = try? await command("POST", "/se/log", body: ["type": "browser"]) as? [[String: Any]] else { return [] }
        return entries.map { "\($0["level"] ?? ""): \($0["message"] ?? "")" }
    }

    /// The page as PNG, written to `path`.
    public func screenshot(to path: String) async throws {
        guard let encoded = try await command("GET", "/screenshot", body: nil) as? String,
            let data = Data(base64Encoded: encoded)
        else { throw WebDriverError("no screenshot") }
        try FileManager.default.createDirectory(
            atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try data.write(to: URL(fileURLWithPath: path))
    }

    public func setWindowSize(width: Int, height: Int) async throws {
        _ = try await command("POST", "/window/rect", body: ["width": width, "height": height])
    }

    /// Polls `condition` every 50 ms until it holds or `timeout` passes; errors inside count
    /// as "not yet" (the page may be between two renders).
    public func waitUntil(
        _ what: String, timeout: Duration = .seconds(10), _ condition: @Sendable () async throws -> Bool
    ) async throws {
        let deadline = ContinuousClock.now + timeout
        var lastError: (any Error)?
        while ContinuousClock.now < deadline {
            do {
                if try await condition() { return }
                lastError = nil
            } catch {
                lastError = error
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw WebDriverError("timed out after \(timeout) waiting for \(what)" + (lastError.map { " (last error: \($0))" } ?? ""))
    }

    /// The text of the first element matching `selector`, or nil when there is none.
    /// In one script: a page that redraws itself live cannot make the element stale between
    /// finding it and reading it.
    public func textOf(_ selector: String) async throws -> String? {
        try await execute("const e = document.querySelector(arguments[0]); return e ? e.innerText : null", [selector]) as? String
    }

    // MARK: Protocol

    static func element(_ value: Any?) -> Element? {
        guard let object = value as? [String: Any] else { return nil }
        // W3C element reference key.
        return (object["element-6066-11e4-a52e-4f735466cecf"] as? String).map(Element.init)
    }

    func command(_ method: String, _ path: String, body: Any?, timeout: TimeInterval = requestTimeout) async throws -> Any? {
        let answer = try await Self.request(method, "\(base)/session/\(sessionID)\(path)", body: body, timeout: timeout)
        if let value = answer["value"] as? [String: Any], let error = value["error"] as? String {
            throw WebDriverError("\(method) \(path): \(error): \(value["message"] as? String ?? "")")
        }
        return answer["value"]
    }

    /// One WebDriver request through `curl` (URLSession of corelibs Foundation fails on
    /// chromedriver's answers with "Failed writing header").
    static func request(_ method: String, _ url: String, body: Any?, timeout: TimeInterval) async throws -> [String: Any] {
        var arguments = ["curl", "-sS", "--max-time", String(format: "%.1f", timeout), "-X", method, url]
        if let body {
            let data = try JSONSerialization.data(withJSONObject: body)
            arguments += ["-H", "Content-Type: application/json", "--data-binary", String(decoding: data, as: UTF8.self)]
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        let output = Pipe()
        let errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        // Read before waiting: a screenshot is larger than a pipe's buffer.
        let data = output.fileHandleForReading.readDataToEndOfFile()
        let complaint = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw WebDriverError("\(method) \(url): curl: \(String(decoding: complaint, as: UTF8.self))")
        }
        guard let object = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw WebDriverError("\(method) \(url): not a JSON object")
        }
        return object
    }
}

/// Where tests keep what a person may want to look at after a run (browser screenshots):
/// `$UNDERSTUDY_ARTIFACTS`, else `.build/test-artifacts` of the package being tested.
public enum TestArtifacts {
    public static var folder: String {
        if let configured = ProcessInfo.processInfo.environment["UNDERSTUDY_ARTIFACTS"], !configured.isEmpty { return configured }
        return FileManager.default.currentDirectoryPath + "/.build/test-artifacts"
    }

    public static func path(_ name: String) -> String { folder + "/" + name }
}
