import Foundation
import Testing
import UnderstudyEngine
import UnderstudyModel
import UnderstudyNode

#if canImport(Glibc)
    import Glibc
#endif

/// A cluster of real `understudy daemon` processes on loopback addresses, in a folder of its
/// own: `cluster.key`, `cluster.yaml`, `scripts/<resource>/{start,stop}.sh`, one state
/// folder per server, `<server>.log` (daemon output), `records.log` (one line per script
/// run) and `os-actions.log` (what the OS-control commands were asked to do).
///
/// Used by one test at a time; the lock only guards the process table against `deinit`.
final class TestCluster: @unchecked Sendable {
    let spec: ClusterSpec
    let folder: String
    let binary: String

    var configPath: String { folder + "/cluster.yaml" }
    var keyPath: String { folder + "/cluster.key" }
    var recordsPath: String { folder + "/records.log" }
    var osActionsPath: String { folder + "/os-actions.log" }
    var servers: [String] { spec.servers }

    private let lock = NSLock()
    private var daemons: [String: Process] = [:]
    /// Processes the daemons started that may outlive them (found before a daemon was
    /// killed); killed by pid at tear-down.
    private var leftovers: Set<ProcessIdentity> = []
    private var tornDown = false

    init(_ spec: ClusterSpec) throws {
        self.spec = spec
        binary = try ProcessTestPaths.requireBinary()
        let base = FileManager.default.temporaryDirectory.path
        folder = base + "/understudy-pt\(spec.subnet)-\(UUID().uuidString.prefix(8))"
        let manager = FileManager.default
        try manager.createDirectory(atPath: folder, withIntermediateDirectories: true)
        _ = try ClusterKey.generate(to: keyPath)
        for group in spec.groups {
            for resource in group.resources {
                let scripts = folder + "/scripts/" + resource.name
                try manager.createDirectory(atPath: scripts, withIntermediateDirectories: true)
                for (action, behaviour) in [("start", resource.start), ("stop", resource.stop)] {
                    let script =
                        action == "stop" && resource.stopScript != nil
                        ? resource.stopScript ?? ""
                        : ClusterSpec.script(
                            action: action, recordsPath: recordsPath, releasePath: releasePath(resource.name, action), behaviour: behaviour)
                    try write(script, to: "\(scripts)/\(action).sh", mode: 0o755)
                }
            }
        }
        try write(spec.yaml(folder: folder), to: configPath, mode: 0o644)
    }

    deinit { tearDown() }

    func write(_ text: String, to path: String, mode: Int = 0o644) throws {
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: path)
    }

    func stateDirectory(of server: String) -> String { folder + "/" + server }

    /// The file a `.waitForRelease` script of `resource` waits for.
    func releasePath(_ resource: String, _ action: String) -> String { "\(folder)/release-\(resource)-\(action)" }

    /// Lets the next (or the waiting) `.waitForRelease` run of `resource`'s `action` script end.
    func release(_ resource: String, _ action: String) {
        _ = FileManager.default.createFile(atPath: releasePath(resource, action), contents: nil)
    }

    func logPath(of server: String) -> String { folder + "/" + server + ".log" }

    // MARK: - Daemons

    /// Starts the daemons of `servers` (default: all) as separate processes.
    func start(_ servers: [String]? = nil) throws {
        for server in servers ?? spec.servers { try startDaemon(server) }
    }

    /// `understudy daemon --config … --server … --state-dir …`, output appended to
    /// `<server>.log`.
    func startDaemon(_ server: String, config: String? = nil) throws {
        guard !isRunning(server) else { throw ProcessTestError("the daemon of \(server) already runs") }
        let log = logPath(of: server)
        if !FileManager.default.fileExists(atPath: log) { _ = FileManager.default.createFile(atPath: log, contents: nil) }
        guard let handle = FileHandle(forWritingAtPath: log) else { throw ProcessTestError("cannot open \(log)") }
        defer { try? handle.close() }
        handle.seekToEndOfFile()
        let process = Process()
        let daemon = ["daemon", "--config", config ?? configPath, "--server", server, "--state-dir", stateDirectory(of: server)]
        if spec.privateMounts {
            // unshare and sh exec: the pid stays the daemon's.
            let binds = spec.deviceLinks.sorted { $0.key < $1.key }.compactMap { path, devices in
                devices[server].map { "touch '\(path)' && mount --bind '\($0)' '\(path)' && " }
            }.joined()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/unshare")
            process.arguments =
                ["--mount", "--propagation", "private", "/bin/sh", "-c", binds + "exec \"$0\" \"$@\"", binary] + daemon
        } else {
            process.executableURL = URL(fileURLWithPath: binary)
            process.arguments = daemon
        }
        process.environment = CommandRunner.environment.merging(spec.daemonEnvironment) { $1 }
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        lock.withLock { daemons[server] = process }
    }

    func pid(of server: String) -> pid_t? { lock.withLock { daemons[server]?.processIdentifier } }

    func isRunning(_ server: String) -> Bool { lock.withLock { daemons[server]?.isRunning ?? false } }

    /// Sends `signal` to the daemon of `server` and returns when it was sent. Before a
    /// SIGKILL, remembers the daemon's children (scripts run in process groups of their own
    /// and survive it) so that tear-down can kill them.
    @discardableResult
    func send(_ signal: Int32, to server: String) -> Date {
        guard let pid = pid(of: server), isRunning(server) else { return Date() }
        if signal == SIGKILL {
            let children = ProcessTable.descendants(of: pid)
            lock.withLock { leftovers.formUnion(children) }
        }
        let sent = Date()
        kill(pid, signal)
        return sent
    }

    /// Stops (SIGSTOP) the keeper of `server`'s daemon: a daemon killed after that dies
    /// unannounced, and its peers take over only after the heartbeat timeout, as when the whole
    /// machine dies. Tear-down kills the keeper.
    func silenceKeeper(of server: String) -> ProcessIdentity? {
        guard let pid = pid(of: server) else { return nil }
        let keeper = ProcessTable.descendants(of: pid).first { identity in
            let arguments = (try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(identity.pid)/cmdline"))) ?? Data()
            return arguments.split(separator: 0).dropFirst().first.map { String(decoding: $0, as: UTF8.self) } == "keeper"
        }
        guard let keeper else { return nil }
        lock.withLock { _ = leftovers.insert(keeper) }
        kill(keeper.pid, SIGSTOP)
        return keeper
    }

    /// Waits until the daemon of `server` has exited; its exit code, or 128 + signal.
    func waitForExit(_ server: String, timeout: Duration = .seconds(15)) async throws -> Int32 {
        guard let process = lock.withLock({ daemons[server] }) else { throw ProcessTestError("\(server) was never started") }
        guard try await poll(upTo: timeout, { !process.isRunning }) else {
            throw ProcessTestError("the daemon of \(server) (pid \(process.processIdentifier)) did not exit within \(timeout)")
        }
        return process.terminationReason == .exit ? process.terminationStatus : 128 + process.terminationStatus
    }

    /// Kills every daemon and everything they started (by pid: daemons, their descendants,
    /// processes remembered before a SIGKILL, and any process whose working directory is in
    /// this cluster's folder), then removes the folder. Safe to call more than once.
    func tearDown() {
        let claimed = lock.withLock { () -> (processes: [Process], remembered: Set<ProcessIdentity>)? in
            if tornDown { return nil }
            tornDown = true
            return (Array(daemons.values), leftovers)
        }
        guard let (processes, remembered) = claimed else { return }
        var victims = remembered
        for process in processes where process.isRunning {
            victims.formUnion(ProcessTable.descendants(of: process.processIdentifier))
            kill(process.processIdentifier, SIGKILL)
        }
        victims.formUnion(ProcessTable.processes(workingIn: folder))
        for victim in victims { victim.kill() }
        let deadline = ContinuousClock.now + .seconds(5)
        while processes.contains(where: \.isRunning) && ContinuousClock.now < deadline { usleep(10_000) }
        if ProcessInfo.processInfo.environment["UNDERSTUDY_KEEP_TEST_FOLDERS"] == nil {
            try? FileManager.default.removeItem(atPath: folder)
        }
    }

    // MARK: - Commands

    /// `understudy ARGUMENTS` (no daemon chosen).
    func understudy(_ arguments: [String], timeout: Duration = .seconds(30)) async throws -> CommandOutcome {
        try await CommandRunner.run(binary, arguments, scratch: folder, timeout: timeout)
    }

    /// `understudy ARGUMENTS --state-dir <server's state dir>`: a CLI command run on `server`.
    func cli(_ arguments: [String], on server: String, timeout: Duration = .seconds(30)) async throws -> CommandOutcome {
        try await understudy(arguments + ["--state-dir", stateDirectory(of: server)], timeout: timeout)
    }

    /// `understudy clpstat --json` on `server`, decoded.
    /// Adds a user of the web server's users file, as an administrator does
    /// (`understudy user add`, the password on stdin).
    func addWebUser(_ name: String, role: String, password: String, sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let outcome = try await CommandRunner.run(
            "/bin/sh", ["-c", "printf '%s\\n' '\(password)' | '\(binary)' user add \(name) --role \(role) --config '\(configPath)'"],
            scratch: folder)
        #expect(outcome.exitCode == 0, "\(outcome)", sourceLocation: sourceLocation)
    }

    func clpstat(on server: String) async throws -> ClusterStatusSnapshot {
        let outcome = try await cli(["clpstat", "--json"], on: server)
        guard outcome.exitCode == 0 else { throw ProcessTestError("clpstat failed: \(outcome)") }
        do {
            return try JSONDecoder().decode(ClusterStatusSnapshot.self, from: Data(outcome.standardOutput.utf8))
        } catch {
            throw ProcessTestError("clpstat --json printed something that is not a status (\(error)): \(outcome)")
        }
    }

    // MARK: - Status

    /// The status as `server` knows it, over its local socket (cheap enough to poll).
    func status(on server: String) async -> ClusterStatusSnapshot? {
        let socket = stateDirectory(of: server) + "/understudy.sock"
        guard
            let answer = try? await LocalControlClient.request(
                path: socket, payload: WireJSON.encode(LocalRequest.status(target: nil)), timeout: .seconds(2)),
            case .status(let snapshot)? = try? WireJSON.decode(LocalResponse.self, from: answer)
        else { return nil }
        return snapshot
    }

    /// Polls `server`'s status every 50 ms until `condition` holds.
    @discardableResult
    func waitForStatus(
        _ what: String, on server: String, timeout: Duration = .seconds(15),
        _ condition: (ClusterStatusSnapshot) -> Bool
    ) async throws -> ClusterStatusSnapshot {
        var last: ClusterStatusSnapshot?
        let met = try await poll(upTo: timeout) {
            last = await status(on: server)
            return last.map(condition) ?? false
        }
        guard met, let last else {
            throw ProcessTestError(
                "timed out after \(timeout) waiting for \(what) (as \(server) sees it); last status: \(last?.summary ?? "no answer")")
        }
        return last
    }

    /// Waits until `server` sees every server in `online` Online and, when given, `group`
    /// Online on `groupServer`.
    @discardableResult
    func waitUntilFormed(
        online: [String]? = nil, group: String? = "grp1", on groupServer: String = "node1", seenBy server: String = "node1",
        timeout: Duration = .seconds(20)
    ) async throws -> ClusterStatusSnapshot {
        let expected = online ?? spec.servers
        let what = "servers \(expected.joined(separator: ", ")) Online" + (group.map { " and \($0) Online on \(groupServer)" } ?? "")
        return try await waitForStatus(what, on: server, timeout: timeout) { snapshot in
            let serversUp = expected.allSatisfy { snapshot.server(named: $0)?.status == .online }
            guard let group else { return serversUp && snapshot.syncDone }
            let line = snapshot.group(named: group)
            return serversUp && line?.status == .online && line?.current == groupServer
        }
    }

    // MARK: - What the scripts and OS commands recorded

    var records: [ScriptRecord] {
        ScriptRecord.parse((try? String(contentsOfFile: recordsPath, encoding: .utf8)) ?? "")
    }

    /// Polls the records until `condition` holds.
    @discardableResult
    func waitForRecords(
        _ what: String, timeout: Duration = .seconds(15), _ condition: ([ScriptRecord]) -> Bool
    ) async throws -> [ScriptRecord] {
        var last: [ScriptRecord] = []
        let met = try await poll(upTo: timeout) {
            last = records
            return condition(last)
        }
        guard met else { throw ProcessTestError("timed out after \(timeout) waiting for \(what); script runs so far:\n\(last.summary)") }
        return last
    }

    var osActions: [String] {
        ((try? String(contentsOfFile: osActionsPath, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
    }

    /// Script runs and the end of every daemon's log, for failure messages.
    func diagnostics() -> String {
        var text = "--- cluster folder \(folder)\n--- script runs:\n\(records.summary)\n"
        for server in spec.servers {
            guard let log = try? String(contentsOfFile: logPath(of: server), encoding: .utf8) else { continue }
            let tail = log.split(separator: "\n").suffix(25).joined(separator: "\n")
            text += "--- \(server).log (last lines):\n\(tail)\n"
        }
        return text
    }
}

extension ClusterStatusSnapshot {
    func group(named name: String) -> GroupLine? { groups.first { $0.name == name } }
    func server(named name: String) -> ServerLine? { servers.first { $0.name == name } }

    /// One line for failure messages.
    var summary: String {
        let serverText = servers.map { "\($0.name) \($0.status.rawValue)\($0.isMaster ? " (master)" : "")" }.joined(separator: ", ")
        let groupText = groups.map { "\($0.name) \($0.status.rawValue) on \($0.current ?? "None")" }.joined(separator: ", ")
        return
            "[\(localServer): service \(service), sync \(syncDone ? "done" : "waiting"), auto-start suppressed \(autoStartSuppressed); servers: \(serverText); groups: \(groupText)]"
    }
}
