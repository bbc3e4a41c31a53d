import ArgumentParser
import Dispatch
import Foundation
import Synchronization
import UnderstudyEngine
import UnderstudyModel
import UnderstudyNode
import UnderstudyWeb

#if canImport(Glibc)
    import Glibc
#endif

/// `understudy demo`: a three-server cluster on this machine, without root. Servers on
/// 127.0.0.11–13, a group whose exec resource runs a tiny HTTP responder on
/// 127.0.0.100:8080 answering with the name of the server that runs it.
struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo", abstract: "Run a three-server demo cluster on this machine (no root needed).")

    @Option(name: .long, help: "Folder for the demo's configuration, state and logs (default: a new temporary folder).")
    var directory: String?

    static let servers = ["node1", "node2", "node3"]
    static let addresses = ["node1": "127.0.0.11", "node2": "127.0.0.12", "node3": "127.0.0.13"]
    static let serviceURL = "http://127.0.0.100:8080/"
    static let webManagerURL = "http://127.0.0.11:29003/"

    func webPassword(folder: String) -> String {
        ((try? String(contentsOfFile: folder + "/webmanager-password", encoding: .utf8)) ?? "?")
            .trimmingCharacters(in: .whitespacesAndNewlines)
    }

    func run() async throws {
        let binary = currentExecutablePath()
        let folder = try prepareFolder()
        try writeFiles(in: folder, binary: binary)
        let processes = DemoProcesses()
        for server in Self.servers {
            try processes.start(server: server, folder: folder, binary: binary)
        }
        let stopping = Atomic<Bool>(false)
        signal(SIGINT, SIG_IGN)
        signal(SIGTERM, SIG_IGN)
        var sources: [DispatchSourceSignal] = []
        for number in [SIGINT, SIGTERM] {
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { stopping.store(true, ordering: .relaxed) }
            source.resume()
            sources.append(source)
        }
        // A daemon that cannot start (an address in use by another demo, …) says why in its
        // log: show it and stop instead of running a broken demo.
        try? await Task.sleep(for: .milliseconds(1500))
        for server in Self.servers where !processes.isRunning(server, folder: folder) {
            let log = (try? String(contentsOfFile: "\(folder)/\(server)/daemon.log", encoding: .utf8)) ?? ""
            say("[demo] the daemon of \(server) did not start:")
            say(log.split(separator: "\n").suffix(5).map { "  " + $0 }.joined(separator: "\n"))
            say("[demo] is another demo or Understudy running on 127.0.0.11–13? Stopping.")
            processes.stopAll(folder: folder, servers: Self.servers, timeout: .seconds(10))
            throw ExitCode(1)
        }
        printIntroduction(folder: folder, binary: binary, processes: processes)

        var lastPlacement = ""
        var reportedDead: Set<String> = []
        while !stopping.load(ordering: .relaxed) {
            try? await Task.sleep(for: .milliseconds(500))
            for server in Self.servers where !processes.isRunning(server, folder: folder) && !reportedDead.contains(server) {
                reportedDead.insert(server)
                say(
                    "\n[demo] \(server) is down. To bring it back, run in another terminal:\n  \(processes.commandLine(server: server, folder: folder, binary: binary)) &\n[demo] It rejoins the cluster; after a crash it takes no group automatically until you run\n  \(binary) clpcl -r --state-dir \(folder)/\(server)\n"
                )
            }
            for server in reportedDead where processes.isRunning(server, folder: folder) { reportedDead.remove(server) }
            if let placement = await currentPlacement(folder: folder, processes: processes), placement != lastPlacement {
                lastPlacement = placement
                say("[demo] \(placement)")
            }
        }
        say("\n[demo] stopping every server (their groups stop cleanly)…")
        processes.stopAll(folder: folder, servers: Self.servers, timeout: .seconds(20))
        sources.forEach { $0.cancel() }
        say("[demo] stopped. Configuration, state and logs stay in \(folder)")
    }

    func prepareFolder() throws -> String {
        let folder: String
        if let directory {
            folder = (directory as NSString).expandingTildeInPath
        } else {
            folder = NSTemporaryDirectory() + "understudy-demo-\(getpid())"
        }
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        return (folder as NSString).standardizingPath
    }

    func writeFiles(in folder: String, binary: String) throws {
        let manager = FileManager.default
        let keyPath = folder + "/cluster.key"
        if !manager.fileExists(atPath: keyPath) {
            do { _ = try ClusterKey.generate(to: keyPath) } catch { throw ValidationError("\(error)") }
        }
        let scripts = folder + "/scripts/web/web-app"
        try manager.createDirectory(atPath: scripts, withIntermediateDirectories: true)
        let start = """
            #!/bin/sh
            # Start script of the demo: runs the built-in HTTP responder. `exec` so that the
            # responder is the process the daemon watches (start-mode: async).
            echo "start on $CLP_SERVER_LOCAL: CLP_EVENT=$CLP_EVENT CLP_SERVER=$CLP_SERVER CLP_PRIORITY=$CLP_PRIORITY"
            exec '\(binary)' demo-responder --address 127.0.0.100 --port 8080 --name "$CLP_SERVER_LOCAL"

            """
        let stop = """
            #!/bin/sh
            # Stop script of the demo: ends the responder started by start.sh.
            echo "stop on $CLP_SERVER_LOCAL: CLP_FACTOR=$CLP_FACTOR CLP_EVENT=$CLP_EVENT CLP_PID=$CLP_PID"
            [ -n "$CLP_PID" ] && kill "$CLP_PID" 2>/dev/null
            exit 0

            """
        try start.write(toFile: scripts + "/start.sh", atomically: true, encoding: .utf8)
        try stop.write(toFile: scripts + "/stop.sh", atomically: true, encoding: .utf8)
        for script in ["start.sh", "stop.sh"] {
            try manager.setAttributes([.posixPermissions: 0o755], ofItemAtPath: scripts + "/" + script)
        }
        let addresses = Self.servers.map { "\($0): \(Self.addresses[$0] ?? "")" }.joined(separator: ", ")
        let config = """
            # Understudy demo cluster: three servers on this machine (loopback addresses).
            cluster:
              name: demo
              comment: Understudy demo cluster
              secret-file: cluster.key
              timing:
                heartbeat-interval: 500ms
                heartbeat-timeout: 3s
                sync-wait: 10s
              network-partition:
                action: none
              ports: {control: 29001, heartbeat: 29002, http: 29003}
              # The WebManager on every server, plain HTTP on loopback (TLS in production: docs/operations.md).
              web: {tls: false, listen: heartbeat-addresses}
              os-commands:
                shutdown: [/bin/sh, -c, "echo shutdown >> '\(folder)/os-actions.log'"]
                reboot: [/bin/sh, -c, "echo reboot >> '\(folder)/os-actions.log'"]

            servers:
              - name: node1
              - name: node2
              - name: node3

            heartbeats:
              - name: lanhb1
                type: lanhb
                addresses: {\(addresses)}

            network-partition:
              - name: majority1
                type: majority

            groups:
              - name: web
                comment: HTTP responder on 127.0.0.100:8080
                resources:
                  - name: web-app
                    type: exec
                    start: scripts/web/web-app/start.sh
                    stop: scripts/web/web-app/stop.sh
                    start-mode: async
                    timeout: 30s

            """
        try config.write(toFile: folder + "/cluster.yaml", atomically: true, encoding: .utf8)
        try writeWebUser(in: folder)
    }

    /// The WebManager's user `admin` (operator) with a random password, kept in
    /// `webmanager-password` (mode 0600) so that a demo run again in the same folder reuses it.
    func writeWebUser(in folder: String) throws {
        let passwordFile = folder + "/webmanager-password"
        if FileManager.default.fileExists(atPath: folder + "/" + Defaults.usersFileName),
            (try? String(contentsOfFile: passwordFile, encoding: .utf8)) != nil
        {
            return
        }
        var generator = SystemRandomNumberGenerator()
        let alphabet = Array("abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789")
        let password = String((0..<16).map { _ in alphabet[Int(generator.next(upperBound: UInt64(alphabet.count)))] })
        do {
            let user = WebUser(name: "admin", role: .operator, password: try PasswordHash.make(password: password))
            try UsersFile.save([user], path: folder + "/" + Defaults.usersFileName)
        } catch {
            throw ValidationError("cannot write the WebManager's user: \(error)")
        }
        FileManager.default.createFile(
            atPath: passwordFile, contents: Data((password + "\n").utf8), attributes: [.posixPermissions: 0o600])
    }

    func printIntroduction(folder: String, binary: String, processes: DemoProcesses) {
        let pids = Self.servers.map { "\($0) \(Self.addresses[$0] ?? "") pid \(processes.pid(of: $0).map(String.init) ?? "?")" }
        say(
            """
            Understudy demo: a three-server cluster on this machine.
              servers: \(pids.joined(separator: ", "))
              group "web" runs a tiny HTTP service on \(Self.serviceURL) that answers with the
              name of the server running it. Files and logs: \(folder)

            The servers wait up to 10 s for each other, then start "web" on node1.
            In another terminal, try:

              export UNDERSTUDY_STATE_DIR=\(folder)/node1   # talk to node1 (any server works)
              \(binary) clpstat             # cluster status
              curl \(Self.serviceURL)         # who serves? (node1)
              \(binary) clpgrp -m web       # move "web" to the next server
              \(binary) clpgrp -n web       # where does it run now?
              kill -9 <pid of the server running web>   # a crash: web fails over in ~3.5 s

            The WebManager: \(Self.webManagerURL) (any server's address works), user admin,
            password \(webPassword(folder: folder)) (also in \(folder)/webmanager-password).

            Status changes are printed here. Press Ctrl-C to stop every server.

            """)
    }

    /// "web is Online on node2" as the first reachable server sees it.
    func currentPlacement(folder: String, processes: DemoProcesses) async -> String? {
        for server in Self.servers where processes.isRunning(server, folder: folder) {
            let client = DaemonClient(socketPath: folder + "/\(server)/understudy.sock")
            guard
                let answer = try? await LocalControlClient.request(
                    path: client.socketPath, payload: WireJSON.encode(LocalRequest.status(target: nil)), timeout: .seconds(2)),
                case .status(let snapshot)? = try? WireJSON.decode(LocalResponse.self, from: answer),
                let web = snapshot.group("web")
            else { continue }
            let up = snapshot.servers.filter { $0.status == .online }.map(\.name)
            return "servers up: \(up.joined(separator: ", ")); group web: \(web.status.rawValue)\(web.current.map { " on \($0)" } ?? "")"
        }
        return nil
    }
}

/// The demo's daemon processes.
final class DemoProcesses: Sendable {
    private let processes = Mutex<[String: Process]>([:])

    func commandLine(server: String, folder: String, binary: String) -> String {
        "\(binary) daemon --config \(folder)/cluster.yaml --server \(server) --state-dir \(folder)/\(server) 2>> \(folder)/\(server)/daemon.log"
    }

    func start(server: String, folder: String, binary: String) throws {
        let state = folder + "/" + server
        try FileManager.default.createDirectory(atPath: state, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let logPath = state + "/daemon.log"
        if !FileManager.default.fileExists(atPath: logPath) { FileManager.default.createFile(atPath: logPath, contents: nil) }
        guard let log = FileHandle(forWritingAtPath: logPath) else { throw ValidationError("cannot open \(logPath)") }
        log.seekToEndOfFile()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = ["daemon", "--config", folder + "/cluster.yaml", "--server", server, "--state-dir", state]
        process.standardOutput = log
        process.standardError = log
        process.standardInput = FileHandle.nullDevice
        try process.run()
        processes.withLock { $0[server] = process }
    }

    func pid(of server: String) -> Int32? { processes.withLock { $0[server]?.processIdentifier } }

    /// The daemon of a server, whether the demo started it or the user restarted it by hand
    /// (found through its pid file).
    func livePID(of server: String, folder: String) -> Int32? {
        if let process = processes.withLock({ $0[server] }), process.isRunning { return process.processIdentifier }
        guard let text = try? String(contentsOfFile: "\(folder)/\(server)/understudy.pid", encoding: .utf8),
            let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)),
            let command = try? String(contentsOfFile: "/proc/\(pid)/cmdline", encoding: .utf8),
            command.contains("daemon"), command.contains("\(folder)/\(server)")
        else { return nil }
        return pid
    }

    func isRunning(_ server: String, folder: String) -> Bool { livePID(of: server, folder: folder) != nil }

    /// SIGTERM to every daemon of the demo (groups stop cleanly), SIGKILL after the timeout.
    func stopAll(folder: String, servers: [String], timeout: Duration) {
        let pids = servers.compactMap { livePID(of: $0, folder: folder) }
        for pid in pids { kill(pid, SIGTERM) }
        let deadline = ContinuousClock.now + timeout
        while pids.contains(where: { kill($0, 0) == 0 && !isZombie($0) }) && ContinuousClock.now < deadline { usleep(100_000) }
        for pid in pids where kill(pid, 0) == 0 { kill(pid, SIGKILL) }
        // Reap the ones the demo started.
        for process in processes.withLock({ Array($0.values) }) { process.waitUntilExit() }
    }

    func isZombie(_ pid: Int32) -> Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8), let close = stat.lastIndex(of: ")") else {
            return true
        }
        return stat[stat.index(after: close)...].trimmingCharacters(in: .whitespaces).hasPrefix("Z")
    }
}

/// Prints at once (stdout may be a pipe or a file, where print would buffer).
func say(_ text: String) {
    FileHandle.standardOutput.write(Data((text + "\n").utf8))
}
