import Foundation
import Logging
import Synchronization
import Testing
import UnderstudyEngine
import UnderstudyModel
import UnderstudyTestSupport

@testable import UnderstudyNode

#if canImport(Glibc)
    import Glibc
#endif

/// A webhook receiver in Python's http.server: checks `X-Understudy-Signature` against the
/// key file (401 when it does not verify), appends each verified body to a file, and with
/// `hang` never answers.
struct WebhookReceiver {
    static let script = #"""
        import hashlib, hmac, ssl, sys, time
        from http.server import HTTPServer, BaseHTTPRequestHandler
        port, key_file, out, mode = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
        key = open(key_file, "rb").read().rstrip(b"\r\n")
        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if mode == "hang":
                    time.sleep(60)
                    return
                expected = "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()
                good = hmac.compare_digest(expected, self.headers.get("X-Understudy-Signature", ""))
                good = good and self.headers.get("Content-Type") == "application/json"
                if good:
                    with open(out, "ab") as f:
                        f.write(body + b"\n")
                self.send_response(204 if good else 401)
                self.send_header("Content-Length", "0")
                self.end_headers()
            def log_message(self, *args):
                pass
        server = HTTPServer(("127.0.0.1", port), Handler)
        if len(sys.argv) > 6:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(sys.argv[5], sys.argv[6])
            server.socket = context.wrap_socket(server.socket, server_side=True)
        server.serve_forever()
        """#

    let port: Int
    let output: String
    let process: Process

    /// With `tls` (certificate and key files), it speaks HTTPS.
    static func start(in folder: String, key: String, mode: String = "verify", tls: (String, String)? = nil) async throws
        -> WebhookReceiver
    {
        let port = try FreePort.take()
        try script.write(toFile: folder + "/receiver.py", atomically: true, encoding: .utf8)
        try key.write(toFile: folder + "/receiver.key", atomically: true, encoding: .utf8)
        let output = folder + "/received.jsonl"
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        process.arguments =
            [folder + "/receiver.py", String(port), folder + "/receiver.key", output, mode] + (tls.map { [$0.0, $0.1] } ?? [])
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        let receiver = WebhookReceiver(port: port, output: output, process: process)
        let ready = await eventually(within: .seconds(10)) {
            TCPOneShot.send([], host: "127.0.0.1", port: port, deadline: .now + .milliseconds(200)) == nil
        }
        guard ready else {
            receiver.stop()
            throw TestSupportError("the webhook receiver did not listen on \(port) within 10 s")
        }
        return receiver
    }

    func stop() {
        process.stopBounded()
    }

    func bodies() -> [[String: Any]] {
        ((try? String(contentsOfFile: output, encoding: .utf8)) ?? "").split(separator: "\n").compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
    }
}

@Suite("Webhook destination")
struct WebhookDestinationTests {
    static let python = Prerequisite.executable("/usr/bin/python3", package: "python3")

    static func alert(_ message: String = "Group web failed over to node2.") -> AlertEvent {
        AlertEvent(
            cluster: "c1", server: "node1", time: Date(timeIntervalSince1970: 1_700_000_000.25), level: .warning, module: "rc", eventID: 60,
            message: message)
    }

    @Test("the body and its signature")
    func signature() {
        let body = WebhookDestination.body(Self.alert())
        #expect(
            String(decoding: body, as: UTF8.self)
                == #"{"cluster":"c1","id":60,"level":"warning","message":"Group web failed over to node2.","module":"rc","server":"node1","time":"2023-11-14T22:13:20.250Z"}"#
        )
        // HMAC-SHA256 test vector of RFC 4231, case 2.
        #expect(
            WebhookDestination.signature(of: Array("what do ya want for nothing?".utf8), key: Array("Jefe".utf8))
                == "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
    }

    @Test("a receiver that checks the signature takes the alert; a wrong key is refused", .requires(python))
    func signedPost() async throws {
        try await withTemporaryFolder { folder in
            let receiver = try await WebhookReceiver.start(in: folder, key: "s3cret\n")
            defer { receiver.stop() }
            try "s3cret\n".write(toFile: folder + "/hook.key", atomically: true, encoding: .utf8)
            let hook = try WebhookDestination(
                name: "chat",
                settings: WebhookDestinationSettings(url: "http://127.0.0.1:\(receiver.port)/hooks/x?y=1", secretFile: folder + "/hook.key")
            )
            try await hook.deliver(Self.alert())
            let bodies = receiver.bodies()
            #expect(bodies.count == 1)
            #expect(bodies.first?["module"] as? String == "rc" && bodies.first?["id"] as? Int == 60)
            #expect(bodies.first?["server"] as? String == "node1" && bodies.first?["level"] as? String == "warning")

            try "another key".write(toFile: folder + "/hook.key", atomically: true, encoding: .utf8)
            do {
                try await hook.deliver(Self.alert())
                Issue.record("a wrongly signed alert was taken")
            } catch {
                #expect("\(error)".contains("HTTP 401"))
                #expect(!"\(error)".contains("another key"))
            }
            #expect(receiver.bodies().count == 1)
        }
    }

    @Test(
        "HTTPS: a receiver whose certificate ca-file trusts takes the alert; an untrusted one fails the attempt",
        .requires(python), .requires(TestCertificates.openssl))
    func https() async throws {
        try await withTemporaryFolder { folder in
            let (certificate, key) = try TestCertificates.selfSigned(in: folder + "/tls", name: "receiver")
            let receiver = try await WebhookReceiver.start(in: folder, key: "k", tls: (certificate, key))
            defer { receiver.stop() }
            try "k".write(toFile: folder + "/hook.key", atomically: true, encoding: .utf8)
            let url = "https://127.0.0.1:\(receiver.port)/alerts"
            let trusted = try WebhookDestination(
                name: "chat", settings: WebhookDestinationSettings(url: url, secretFile: folder + "/hook.key", caFile: certificate))
            try await trusted.deliver(Self.alert("over https"))
            #expect(receiver.bodies().first?["message"] as? String == "over https")
            let untrusted = try WebhookDestination(
                name: "chat", settings: WebhookDestinationSettings(url: url, secretFile: folder + "/hook.key"))
            await #expect(throws: AlertDeliveryError.self) { try await untrusted.deliver(Self.alert("not trusted")) }
            #expect(receiver.bodies().count == 1)
        }
    }

    @Test("a receiver that hangs: each attempt times out, the alert is given up, said once", .requires(python))
    func hangingReceiver() async throws {
        try await withTemporaryFolder { folder in
            let receiver = try await WebhookReceiver.start(in: folder, key: "k", mode: "hang")
            defer { receiver.stop() }
            let settings = AlertSettings(
                destinations: [
                    AlertDestinationConfig(
                        name: "chat",
                        kind: .webhook(WebhookDestinationSettings(url: "http://127.0.0.1:\(receiver.port)/", timeout: .milliseconds(300))))
                ], routes: nil, retry: AlertRetry(attempts: 2, backoff: .milliseconds(50), maxBackoff: .milliseconds(50)))
            let context = AlertDestinationContext(
                cluster: "c1", server: "node1", runner: ScriptRunner(), host: HostFacts.detect(productVersion: "t", installPath: "/"),
                logger: .init(label: "test"))
            let router = AlertRouter()
            router.configure(
                AlertSettings(
                    destinations: settings.destinations, routes: [AlertRoute(match: AlertMatch(), to: ["chat"])], retry: settings.retry),
                destinations: AlertDestinationRegistry.build(settings, context: context))
            await router.start()
            let notices = Mutex<[AlertRouter.Notice]>([])
            let listener = Task { for await notice in router.notices { notices.withLock { $0.append(notice) } } }
            let started = ContinuousClock.now
            router.submit(Self.alert("one"))
            router.submit(Self.alert("two"))
            #expect(await eventually(within: .seconds(10)) { router.lines.first?.failed == 2 })
            // Two alerts × two attempts of 300 ms, and the waits between: not minutes.
            #expect(started.duration(to: .now) < .seconds(5))
            let line = try #require(router.lines.first)
            #expect(line.retried == 2 && line.delivered == 0 && line.failing)
            #expect(line.lastError?.contains("no answer from the webhook 127.0.0.1:\(receiver.port) within") == true)
            #expect(await eventually { notices.withLock { $0.count } == 1 })
            try? await Task.sleep(for: .milliseconds(100))
            #expect(notices.withLock { $0.count } == 1)
            await router.stop()
            listener.cancel()
        }
    }
}
