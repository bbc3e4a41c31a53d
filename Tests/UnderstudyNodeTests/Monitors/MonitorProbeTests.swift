import Foundation
import Logging
import Testing
import UnderstudyEngine
import UnderstudyModel
import UnderstudyTestSupport

@testable import UnderstudyNode

#if canImport(Glibc)
    import Glibc
#endif

/// Each probe against the real thing failing: processes killed, scripts failing or dying,
/// files that cannot be read or written, a full file system, an HTTP server that answers
/// wrong or stops, a probe that hangs.
@Suite("Monitor probes")
struct MonitorProbeTests {
    /// A `sleep` process started for the test (its own process group), killed by pid at the end.
    final class SleepProcess {
        let process = Process()
        init(_ arguments: [String]) throws {
            process.executableURL = URL(fileURLWithPath: "/bin/sleep")
            process.arguments = arguments
            try process.run()
        }
        var pid: Int32 { process.processIdentifier }
        func kill() {
            if process.isRunning {
                Glibc.kill(pid, SIGKILL)
                process.waitUntilExit()
            }
        }
        deinit { kill() }
    }

    /// Results a runner reported.
    final class Collected: @unchecked Sendable {
        private let lock = NSLock()
        private var stored: [MonitorCheck] = []
        func add(_ checks: [MonitorCheck]) { lock.withLock { stored += checks } }
        var checks: [MonitorCheck] { lock.withLock { stored } }
    }

    static func temporaryFolder() throws -> String {
        let path = NSTemporaryDirectory() + "understudy-probe-\(getpid())-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    static func isError(_ result: MonitorResult) -> Bool {
        if case .error = result { return true }
        return false
    }

    /// A two-server cluster with the given groups and monitors (YAML lines at the top level).
    static func config(_ sections: String, at path: String) throws -> ClusterConfig {
        let yaml = """
            cluster: {name: c1, secret-file: /etc/understudy/test.key}
            servers: [{name: node1}, {name: node2}]
            heartbeats:
              - {name: lan1, type: lanhb, addresses: {node1: 10.0.0.1, node2: 10.0.0.2}}

            """
        return try ConfigLoader.load(yaml: yaml + sections, sourcePath: path)
    }

    static func context(_ config: ClusterConfig, logDirectory: String) -> MonitorProbes.Context {
        MonitorProbes.Context(
            config: config, runner: ScriptRunner(), environment: ScriptEnvironment.base(), logDirectory: logDirectory,
            logger: Logger(label: "test"))
    }

    @Test("pidw: Normal while the process lives, an error once it is killed")
    func processAlive() async throws {
        let sleeper = try SleepProcess(["30"])
        let probe = ProcessAliveProbe(pid: sleeper.pid, resource: "app")
        #expect(await probe.check() == .normal)
        sleeper.kill()
        #expect(Self.isError(await probe.check()))
        #expect(Self.isError(await ProcessAliveProbe(pid: nil, resource: "app").check()))
    }

    @Test("psw: counts processes by command line or name, with wildcards and a minimum")
    func processName() async throws {
        let first = try SleepProcess(["31.5"])
        let second = try SleepProcess(["31.5"])
        // Process.run may return before the child has exec'd sleep: give it a moment.
        var found = false
        for _ in 0..<40 where !found {
            found = await ProcessNameProbe(pattern: "sleep 31.5", minimum: 2).check() == .normal
            if !found { try await Task.sleep(for: .milliseconds(50)) }
        }
        #expect(found)
        #expect(await ProcessNameProbe(pattern: "*sleep 31.[5]", minimum: 1).check() == .normal)
        #expect(Self.isError(await ProcessNameProbe(pattern: "sleep 31.5", minimum: 3).check()))
        first.kill()
        second.kill()
        #expect(Self.isError(await ProcessNameProbe(pattern: "sleep 31.5", minimum: 1).check()))
    }

    func scriptProbe(_ path: String, asynchronous: Bool, normalValue: Int32 = 0, timeout: Duration = .seconds(5)) -> ScriptProbe {
        ScriptProbe(
            monitor: "genw1", script: path, asynchronous: asynchronous, normalValue: normalValue, nice: 5, timeout: timeout,
            runner: ScriptRunner(), environment: ScriptEnvironment.base(), log: nil)
    }

    @Test("genw sync: the exit code against the normal value; genw async: the process must stay alive")
    func genericScript() async throws {
        let folder = try Self.temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let flag = folder + "/healthy"
        let script = folder + "/check.sh"
        try "#!/bin/sh\n[ -e '\(flag)' ] && exit 3\nexit 1\n".write(toFile: script, atomically: true, encoding: .utf8)
        chmod(script, 0o755)
        let sync = scriptProbe(script, asynchronous: false, normalValue: 3)
        #expect(Self.isError(await sync.check()))
        _ = FileManager.default.createFile(atPath: flag, contents: nil)
        #expect(await sync.check() == .normal)

        let daemon = folder + "/daemon.sh"
        let pidFile = folder + "/daemon.pid"
        try "#!/bin/sh\necho $$ > '\(pidFile)'\nexec sleep 60\n".write(toFile: daemon, atomically: true, encoding: .utf8)
        chmod(daemon, 0o755)
        let async = scriptProbe(daemon, asynchronous: true)
        // The pid the script wrote, once it has written one (polled: the machine may be slow).
        func writtenPID(otherThan old: Int32? = nil) async -> Int32? {
            var found: Int32?
            _ = await eventually(within: .seconds(10)) {
                found = (try? String(contentsOfFile: pidFile, encoding: .utf8)).flatMap {
                    Int32($0.trimmingCharacters(in: .whitespacesAndNewlines))
                }
                return found != nil && found != old
            }
            return found != old ? found : nil
        }
        #expect(await async.check() == .normal)
        let pid = try #require(await writtenPID())
        #expect(await async.check() == .normal)
        kill(pid, SIGKILL)
        // The probe learns of the exit from its own waiter: checks are Normal until it has.
        #expect(await eventually(within: .seconds(10)) { Self.isError(await async.check()) })
        // The next check starts it again; stop() ends it.
        #expect(await async.check() == .normal)
        let restarted = try #require(await writtenPID(otherThan: pid))
        await async.stop()
        #expect(await eventually(within: .seconds(10)) { !ProcessTable.isAlive(restarted) })
    }

    @Test("genw as configured: the script's output in its log, rotated past log-rotate-size")
    func genericScriptLogRotates() async throws {
        let folder = try Self.temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let script = folder + "/check.sh"
        try "#!/bin/sh\necho \"checked $CLP_MONITORNAME\"\nexit 0\n".write(toFile: script, atomically: true, encoding: .utf8)
        chmod(script, 0o755)
        let logPath = folder + "/logs/genw1.log"
        let yaml = """
            monitors:
              - {name: genw1, type: genw, script: \(script), log: \(logPath), log-rotate-size: 400,
                 recovery: {target: local-server, final-action: none}}
            """
        let config = try Self.config(yaml, at: folder + "/cluster.yaml")
        let monitor = try #require(config.monitors.first)
        let context = Self.context(config, logDirectory: folder)
        let probe = MonitorProbes.make(monitor, start: MonitorStart(monitor: "genw1", run: 1), context: context)
        // Each check writes a header, the script's line and a footer (well over 100 bytes).
        for _ in 0..<8 { #expect(await probe.check() == .normal) }
        let current = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
        let rotated = try String(contentsOfFile: logPath + ".1", encoding: .utf8)
        #expect(rotated.contains("checked genw1") && rotated.contains("monitor \(script)"), "\(rotated)")
        #expect(rotated.utf8.count >= 400 && rotated.utf8.count < 400 + 400, "\(rotated.utf8.count) bytes")
        #expect(current.utf8.count < 400, "\(current.utf8.count) bytes")
    }

    @Test("a hung probe is abandoned at the timeout and reported as one; the runner goes on")
    func hungProbe() async throws {
        let folder = try Self.temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let script = folder + "/hang.sh"
        try "#!/bin/sh\nexec sleep 30\n".write(toFile: script, atomically: true, encoding: .utf8)
        chmod(script, 0o755)
        let collected = Collected()
        let runner = MonitorRunner { checks in collected.add(checks) }
        var monitor = MonitorConfig(
            name: "hung", type: .genw, interval: .milliseconds(200), timeout: .milliseconds(300),
            recovery: MonitorRecovery(target: .localServer))
        monitor.parameters["script"] = .string(script)
        var healthy = MonitorConfig(
            name: "alive", type: .pidw, interval: .milliseconds(100), timeout: .seconds(1), recovery: MonitorRecovery(target: .localServer))
        healthy.target = "app"
        runner.start(monitor, run: 1, probe: scriptProbe(script, asynchronous: false, timeout: .milliseconds(300)))
        runner.start(healthy, run: 2, probe: ProcessAliveProbe(pid: getpid(), resource: "app"))
        // The hung script is reported as a timeout every 300–500 ms while the other monitor
        // goes on checking (bounded wait: the test process may be busy with other tests).
        var hung: [MonitorCheck] = []
        var alive: [MonitorCheck] = []
        for _ in 0..<150 {
            hung = collected.checks.filter { $0.monitor == "hung" }
            alive = collected.checks.filter { $0.monitor == "alive" }
            if hung.count >= 2 && alive.count >= 8 { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        await runner.stopAll()
        #expect(hung.count >= 2 && hung.allSatisfy { $0.result == .timeout && $0.run == 1 }, "\(hung)")
        #expect(alive.count >= 8 && alive.allSatisfy { $0.result == .normal }, "\(alive.count) checks")
    }

    /// A probe that never answers (until cancelled) and counts its checks.
    final class HangingProbe: MonitorProbe, @unchecked Sendable {
        private let lock = NSLock()
        private var started = 0
        var starts: Int { lock.withLock { started } }
        func check() async -> MonitorResult {
            lock.withLock { started += 1 }
            try? await Task.sleep(for: .seconds(30))
            return .normal
        }
    }

    @Test("clptoratio: the same run started again gets the longer timeout and keeps its schedule (no second start wait)")
    func sameRunAgainKeepsTheSchedule() async throws {
        let collected = Collected()
        let runner = MonitorRunner { checks in collected.add(checks) }
        var monitor = MonitorConfig(
            name: "slow", type: .genw, interval: .milliseconds(200), timeout: .milliseconds(300), firstWait: .zero,
            recovery: MonitorRecovery(target: .localServer))
        runner.start(monitor, run: 1, probe: HangingProbe())
        #expect(await eventually(within: .seconds(15)) { collected.checks.contains { $0.result == .timeout } })
        // What the daemon does for ratio 100: the timeout times the ratio, the same run. A
        // schedule started afresh would wait the 60 s start wait before the next check.
        monitor.timeout = .seconds(30)
        monitor.firstWait = .seconds(60)
        let longer = HangingProbe()
        runner.start(monitor, run: 1, probe: longer)
        let before = collected.checks.count
        #expect(await eventually(within: .seconds(10)) { longer.starts >= 1 }, "the schedule began again")
        try await Task.sleep(for: .seconds(1))
        #expect(collected.checks.count == before, "a check timed out at the old 300 ms: \(collected.checks.suffix(3))")
        await runner.stopAll()
    }

    @Test("diskw: read and read-direct of a file, write-file; an error for a missing device")
    func disk() async throws {
        let folder = try Self.temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let image = folder + "/disk.img"
        _ = FileManager.default.createFile(atPath: image, contents: Data(repeating: 7, count: 1 << 16))
        for method: DiskProbe.Method in [.read, .readDirect] {
            let probe = DiskProbe(device: image, method: method, size: 512, diskFullIsError: true, timeout: .seconds(5))
            let result = await probe.check()
            // tmpfs has no O_DIRECT: then the error names the cause instead.
            if method == .readDirect, case .error(let text) = result {
                #expect(text.contains("Invalid argument"), "\(text)")
            } else {
                #expect(result == .normal, "\(method)")
            }
        }
        #expect(
            Self.isError(
                await DiskProbe(device: folder + "/missing", method: .read, size: 512, diskFullIsError: true, timeout: .seconds(5)).check())
        )
        #expect(
            await DiskProbe(device: folder + "/probe", method: .writeFile, size: 4096, diskFullIsError: true, timeout: .seconds(5)).check()
                == .normal)
        #expect(!FileManager.default.fileExists(atPath: folder + "/probe"))
    }

    @Test("diskw write-file on a full file system: an error, or a warning with disk-full-is-error false", .requires(.root))
    func fullDisk() async throws {
        // A small tmpfs mount of its own (root).
        let folder = try Self.temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let mount = folder + "/small"
        try FileManager.default.createDirectory(atPath: mount, withIntermediateDirectories: true)
        let mounted = Process()
        mounted.executableURL = URL(fileURLWithPath: "/bin/mount")
        mounted.arguments = ["-t", "tmpfs", "-o", "size=64k", "tmpfs", mount]
        try mounted.run()
        mounted.waitUntilExit()
        try #require(mounted.terminationStatus == 0)
        defer {
            let unmount = Process()
            unmount.executableURL = URL(fileURLWithPath: "/bin/umount")
            unmount.arguments = [mount]
            try? unmount.run()
            unmount.waitUntilExit()
        }
        _ = FileManager.default.createFile(atPath: mount + "/filler", contents: Data(repeating: 1, count: 64 * 1024))
        let full = await DiskProbe(device: mount + "/probe", method: .writeFile, size: 8192, diskFullIsError: true, timeout: .seconds(5))
            .check()
        #expect(Self.isError(full), "\(full)")
        let tolerated = await DiskProbe(
            device: mount + "/probe", method: .writeFile, size: 8192, diskFullIsError: false, timeout: .seconds(5)
        ).check()
        if case .warning = tolerated {} else { Issue.record("a full disk with disk-full-is-error false is a warning, got \(tolerated)") }
    }

    @Test(
        "httpw: status and body against a real HTTP server; an error once it stops",
        .requires(.executable("/usr/bin/python3", package: "python3")))
    func http() async throws {
        let folder = try Self.temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try "service ready\n".write(toFile: folder + "/health", atomically: true, encoding: .utf8)
        let port = try FreePort.take()
        let server = try Self.python(["-m", "http.server", "--bind", "127.0.0.1", "--directory", folder, String(port)])
        defer { Self.stop(server) }
        let url = "http://127.0.0.1:\(port)/health"
        let probe = try #require(WebRequestProbe(url: url, expectedStatus: 200, bodyMatch: "ready", timeout: .seconds(2)))
        var ready = false
        for _ in 0..<50 where !ready {
            ready = await probe.check() == .normal
            if !ready { try await Task.sleep(for: .milliseconds(100)) }
        }
        #expect(ready)
        let degraded = try #require(WebRequestProbe(url: url, expectedStatus: 200, bodyMatch: "degraded", timeout: .seconds(2)))
        #expect(Self.isError(await degraded.check()))
        let missing = "http://127.0.0.1:\(port)/nothing"
        let missingProbe = try #require(WebRequestProbe(url: missing, expectedStatus: 200, bodyMatch: nil, timeout: .seconds(2)))
        #expect(Self.isError(await missingProbe.check()))
        let notFoundExpected = try #require(WebRequestProbe(url: missing, expectedStatus: 404, bodyMatch: nil, timeout: .seconds(2)))
        #expect(await notFoundExpected.check() == .normal)
        kill(server.processIdentifier, SIGKILL)
        server.waitUntilExit()
        #expect(Self.isError(await probe.check()))
    }

    /// A python3 process (a test's web server), its output dropped.
    static func python(_ arguments: [String]) throws -> Process {
        let server = Process()
        server.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        server.arguments = arguments
        server.standardOutput = FileHandle.nullDevice
        server.standardError = FileHandle.nullDevice
        try server.run()
        return server
    }

    static func stop(_ server: Process) {
        guard server.isRunning else { return }
        kill(server.processIdentifier, SIGKILL)
        server.waitUntilExit()
    }

    /// A small web server of the test's own: basic authentication, a redirect, a 3 MiB page,
    /// a query string echoed, one that never answers.
    static let webServerScript = #"""
        import base64, http.server, sys, time
        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args): pass
            def answer(self, status, body, headers=()):
                self.send_response(status)
                for name, value in headers: self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            def do_GET(self):
                if self.path == "/private":
                    expected = "Basic " + base64.b64encode(b"watch:p@ss w0rd").decode()
                    if self.headers.get("Authorization") == expected: self.answer(200, b"secret ok")
                    else: self.answer(401, b"who are you", [("WWW-Authenticate", "Basic")])
                elif self.path == "/moved": self.answer(302, b"", [("Location", "/private")])
                elif self.path == "/big": self.answer(200, b"start of page " + b"x" * (3 << 20) + b" end of page")
                elif self.path.startswith("/echo?"): self.answer(200, self.path.encode())
                elif self.path == "/hang": time.sleep(30)
                else: self.answer(404, b"no")
        http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
        """#

    @Test(
        "httpw: basic authentication from the URL (password kept out of messages), redirects not followed, a large page matched on its start, the query sent, a hung server bounded by the timeout",
        .requires(.executable("/usr/bin/python3", package: "python3")))
    func httpDetails() async throws {
        let port = try FreePort.take()
        let server = try Self.python(["-c", Self.webServerScript, String(port)])
        defer { Self.stop(server) }
        func probe(_ path: String, status: Int = 200, match: String? = nil, timeout: Duration = .seconds(2)) throws -> WebRequestProbe {
            try #require(
                WebRequestProbe(
                    url: "http://\(path.hasPrefix("/") ? "127.0.0.1:\(port)" : "")\(path)", expectedStatus: status, bodyMatch: match,
                    timeout: timeout))
        }
        let authorised = try probe("watch:p%40ss%20w0rd@127.0.0.1:\(port)/private", match: "secret ok")
        var up = false
        for _ in 0..<50 where !up {
            up = await authorised.check() == .normal
            if !up { try await Task.sleep(for: .milliseconds(100)) }
        }
        #expect(up, "the user and password of the URL are sent as basic authentication")
        let wrong = try probe("watch:wrong-secret-77@127.0.0.1:\(port)/private")
        let refused = await wrong.check()
        #expect(Self.isError(refused))
        #expect(!"\(refused)".contains("wrong-secret-77"), "the password stays out of the message: \(refused)")
        #expect("\(refused)".contains("401"), "\(refused)")
        func result(_ probe: WebRequestProbe) async -> MonitorResult { await probe.check() }
        #expect(await result(try probe("/private", status: 401)) == .normal, "no credentials: 401 is its own answer")
        #expect(await result(try probe("/moved", status: 302)) == .normal, "a redirect is not followed")
        #expect(Self.isError(await result(try probe("/moved"))))
        #expect(await result(try probe("/big", match: "start of page")) == .normal, "a 3 MiB page is matched on its first MiB")
        #expect(Self.isError(await result(try probe("/big", match: "end of page"))), "beyond the first MiB is not read into memory")
        #expect(await result(try probe("/echo?a=1&b=%20x", match: "/echo?a=1&b=%20x")) == .normal, "the query is sent as written")
        let hangProbe = try probe("/hang", timeout: .milliseconds(500))
        let started = ContinuousClock.now
        let hung = await hangProbe.check()
        #expect(Self.isError(hung))
        #expect(started.duration(to: .now) < .seconds(10), "a server that never answers costs the timeout, not more")
        #expect(WebRequestProbe(url: "ftp://127.0.0.1/", expectedStatus: 200, bodyMatch: nil, timeout: .seconds(1)) == nil)
    }

    @Test(
        "httpw over HTTPS: a certificate the system does not trust is an error that says so",
        .requires(TestCertificates.openssl), .requires(.executable("/usr/bin/python3", package: "python3")))
    func httpsUntrusted() async throws {
        let folder = try Self.temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let (certificate, key) = try TestCertificates.selfSigned(in: folder, name: "web")
        let port = try FreePort.take()
        let script = """
            import http.server, ssl, sys
            class H(http.server.BaseHTTPRequestHandler):
                def log_message(self, *a): pass
                def do_GET(self):
                    self.send_response(200); self.send_header("Content-Length", "2"); self.end_headers(); self.wfile.write(b"ok")
            server = http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H)
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(sys.argv[2], sys.argv[3])
            server.socket = context.wrap_socket(server.socket, server_side=True)
            server.serve_forever()
            """
        let server = try Self.python(["-c", script, String(port), certificate, key])
        defer { Self.stop(server) }
        let probe = try #require(
            WebRequestProbe(url: "https://127.0.0.1:\(port)/", expectedStatus: 200, bodyMatch: nil, timeout: .seconds(2)))
        var result = await probe.check()
        for _ in 0..<50 where "\(result)".contains("cannot connect") {
            try await Task.sleep(for: .milliseconds(100))
            result = await probe.check()
        }
        #expect(Self.isError(result))
        #expect("\(result)".lowercased().contains("certificate"), "\(result)")
    }

    @Test("nice: the helper commands of diskw tur, volmgrw, psqlw, mysqlw (and ipw's ping fallback) run at the monitor's nice value")
    func niceAppliesToHelperCommands() async throws {
        // nice(1) without a command prints the niceness it runs at.
        let base = try #require(Int(await NetCommandRunner().run(["nice"]).standardOutput.trimmingCharacters(in: .whitespacesAndNewlines)))
        let niced = await NetCommandRunner(nice: 7).run(["nice"])
        #expect(niced.succeeded && niced.commandLine == "nice", "\(niced.failureDescription)")
        #expect(Int(niced.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines)) == min(base + 7, 19))

        let yaml = """
            groups:
              - name: g
                resources: [{name: g-ip, type: fip, address: 10.0.0.100/24}]
            monitors:
              - {name: ipw1, type: ipw, targets: [127.0.0.1], nice: 5, recovery: {target: local-server, final-action: none}}
              - {name: diskw1, type: diskw, device: /dev/sda, method: tur, nice: 5, recovery: {target: local-server, final-action: none}}
              - {name: vg1, type: volmgrw, manager: lvm, volume: vg0, nice: 5, recovery: {target: local-server, final-action: none}}
              - {name: pg1, type: psqlw, database: app, nice: 5, recovery: {target: local-server, final-action: none}}
              - {name: my1, type: mysqlw, database: app, user: app, nice: 5, recovery: {target: local-server, final-action: none}}
            """
        let config = try Self.config(yaml, at: "/tmp/cluster.yaml")
        let context = Self.context(config, logDirectory: "/tmp")
        var seen: [String: Int] = [:]
        for monitor in config.monitors {
            let probe = MonitorProbes.make(monitor, start: MonitorStart(monitor: monitor.name, run: 1), context: context)
            switch probe {
            case let probe as PingTargetsProbe: seen[monitor.name] = probe.nice
            case let probe as DiskProbe: seen[monitor.name] = probe.nice
            case let probe as VolumeGroupProbe: seen[monitor.name] = probe.nice
            case let probe as DatabaseProbe: seen[monitor.name] = probe.nice
            default: Issue.record("unexpected probe \(type(of: probe)) for \(monitor.name)")
            }
        }
        #expect(seen == ["ipw1": 5, "diskw1": 5, "vg1": 5, "pg1": 5, "my1": 5])
        // A niced ping still answers.
        #expect(await PingTargetsProbe(targets: ["127.0.0.1"], wait: .seconds(1), nice: 5).check() == .normal)
    }

    @Test("ipw: loopback answers; miiw: lo has a link, a missing interface is an error")
    func network() async throws {
        #expect(await PingTargetsProbe(targets: ["127.0.0.1"], wait: .seconds(1)).check() == .normal)
        #expect(Self.isError(await LinkStateProbe(interface: "understudy-none0").check()))
        #expect(Self.isError(await LinkStateProbe(interface: "../etc").check()))
        #expect(FloatingAddressProbe.normalized("fd10:0:0::1/64") == "fd10::1")
    }
}
