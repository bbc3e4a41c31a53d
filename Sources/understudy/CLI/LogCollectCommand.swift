import ArgumentParser
import Crypto
import Foundation
import UnderstudyEngine
import UnderstudyModel
import UnderstudyNode

#if canImport(Glibc)
    import Glibc
#endif

/// `clplogcc` (reference §2.9): one archive per server, built by that server
/// (LogArchiveBuilder.swift) and fetched in chunks through the local daemon.
struct ClpLogCc: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "clplogcc", abstract: "Collect logs, status, configuration and system facts of the servers for support.",
        discussion: """
            Writes understudy-logs-SERVER-YYYYMMDD-HHMMSS.tar.gz for every server (default), the local server (-l) \
            or the servers named with -h, into the output folder (-o, default the current folder). Servers that \
            cannot be reached are named on standard error and the exit status is 1; the others' archives are \
            written. Secrets never enter an archive (see docs/commands.md). One collection at a time: a second \
            one is refused with exit status 4. When the local daemon does not run, the local server's archive is \
            built by this command from --config and the state folder.
            """, helpNames: [.long])

    @Option(
        name: .customShort("t"),
        help: ArgumentHelp(
            "type1 (default: logs, status, configuration, system facts), type2 (more), type3 (logs and status).", valueName: "type"))
    var type: String = "type1"
    @Flag(name: .customShort("l"), help: "The local server only.") var local = false
    @Option(name: .customShort("h"), help: ArgumentHelp("Collect from this server (repeat for several).", valueName: "server"))
    var servers: [String] = []
    @Option(
        name: .customShort("o"), help: ArgumentHelp("Output folder (created when missing; default: the current folder).", valueName: "dir"))
    var output: String = "."
    @Option(name: .long, help: ArgumentHelp("Give up on servers whose archive is not ready after this many seconds.", valueName: "seconds"))
    var timeout: Int = 600
    @Option(name: .long, help: "The configuration, for the local archive when the daemon does not run.") var config: String =
        Defaults.configPath
    @Option(name: .long, help: "This server's name, when the daemon does not run (default: the host name).") var server: String?
    @OptionGroup var daemon: DaemonOptions

    func validate() throws {
        guard LogCollectionType(rawValue: type.lowercased()) != nil else {
            throw ValidationError("Unknown collection type \(type) for -t: give type1, type2 or type3.")
        }
        guard !(local && !servers.isEmpty) else { throw ValidationError("-l and -h exclude each other.") }
        guard timeout > 0 else { throw ValidationError("--timeout must be positive, got \(timeout).") }
    }

    func run() async throws {
        let kind = LogCollectionType(rawValue: type.lowercased()) ?? .type1
        let label = Self.label(for: Date())
        let client = DaemonClient(daemon)
        guard case .identity(let me, _, let all)? = await client.trySend(.whoami) else {
            try await collectWithoutDaemon(kind: kind, label: label, socket: client.socketPath)
            return
        }
        let targets: [ServerName]
        if local {
            targets = [me]
        } else if !servers.isEmpty {
            for name in servers where !all.contains(name) {
                fail("Unknown server \(name) (servers: \(all.joined(separator: ", "))).", code: .badUsage)
            }
            targets = all.filter { servers.contains($0) }
        } else {
            targets = all
        }
        let folder = prepareOutputFolder()
        let session = Session(client: client, id: UUID().uuidString.lowercased(), folder: folder, collector: me)
        let code = await session.collect(targets, kind: kind, label: label, timeout: .seconds(timeout))
        if code != .success { throw ExitCode(code.rawValue) }
    }

    /// The output folder, created (mode 0700) when missing; its absolute path.
    func prepareOutputFolder() -> String {
        let manager = FileManager.default
        let path = URL(fileURLWithPath: output).standardizedFileURL.path
        var isFolder: ObjCBool = false
        if manager.fileExists(atPath: path, isDirectory: &isFolder) {
            guard isFolder.boolValue else { fail("The output folder \(path) is a file.", code: .badUsage) }
        } else {
            do {
                try manager.createDirectory(atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            } catch {
                fail("Cannot create the output folder \(path): \(error.localizedDescription)", code: .failed)
            }
        }
        guard access(path, W_OK) == 0 else { fail("The output folder \(path) is not writable.", code: .failed) }
        return path
    }

    static func label(for date: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.dateFormat = "yyyyMMdd-HHmmss"
        return formatter.string(from: date)
    }

    /// The local daemon does not answer: this server's archive, built here; the others cannot
    /// be asked (only the daemon talks to them).
    func collectWithoutDaemon(kind: LogCollectionType, label: String, socket: String) async throws {
        let loaded: ClusterConfig
        do {
            loaded = try ConfigLoader.loadWithWarnings(path: config, checkFiles: false).config
        } catch {
            fail("The local daemon is not running (\(socket)) and \(config) cannot be loaded: \(error)", code: .unreachable)
        }
        let name = server ?? ProcessInfo.processInfo.hostName.split(separator: ".").first.map(String.init) ?? ""
        guard loaded.server(named: name) != nil else {
            fail(
                "The local daemon is not running (\(socket)) and this host's name \(name) is not a server of \(config); give --server.",
                code: .unreachable)
        }
        let folder = prepareOutputFolder()
        let others = local ? [] : (servers.isEmpty ? loaded.serverNames : servers).filter { $0 != name }
        let wantsLocal = local || servers.isEmpty || servers.contains(name)
        var code = CommandCode.success
        if wantsLocal {
            let state = daemon.stateDirectory ?? ProcessInfo.processInfo.environment["UNDERSTUDY_STATE_DIR"] ?? Defaults.stateDirectory
            let scripts = (try? ConfigBundle.read(configPath: config).scripts.mapValues(\.content)) ?? [:]
            let configPath = URL(fileURLWithPath: config).standardizedFileURL.path
            let sources = LogArchiveSources(
                server: name, cluster: loaded.cluster.name, type: kind, label: label, stateDirectory: state, configPath: configPath,
                runningYAML: nil, scripts: scripts, statusJSON: nil, daemonLogPath: nil, journalUnit: "understudy.service",
                version: Defaults.productVersion, notes: ["built by clplogcc itself: the daemon was not running (\(socket))"])
            let work = folder + "/.understudy-logcc-\(getpid())"
            do {
                let (info, path) = try await LogArchiveBuilder.build(sources, in: work)
                let target = folder + "/" + info.fileName
                try? FileManager.default.removeItem(atPath: target)
                try FileManager.default.moveItem(atPath: path, toPath: target)
                try? FileManager.default.removeItem(atPath: work)
                print("\(name): \(target) (\(info.size) bytes; the daemon is not running, built locally)")
            } catch {
                try? FileManager.default.removeItem(atPath: work)
                printError("\(name): not collected: \(error)")
                code = .failed
            }
        }
        for other in others {
            printError("\(other): not collected: the local daemon is not running, so other servers cannot be asked")
            code = .failed
        }
        if code != .success { throw ExitCode(code.rawValue) }
    }
}

/// One collecting run: prepare each server, wait for its archive, fetch it, release it.
struct Session {
    let client: DaemonClient
    let id: String
    let folder: String
    let collector: ServerName

    enum Progress {
        case building
        case ready(LogArchiveInfo)
        case written
        case failed(String)
    }

    func collect(_ targets: [ServerName], kind: LogCollectionType, label: String, timeout: Duration) async -> CommandCode {
        var progress: [ServerName: Progress] = [:]
        var prepared: Set<ServerName> = []
        // In the cluster's order on every collector: two collections meet at the same first
        // server, and the later one stops there.
        for target in targets {
            switch await ask(.prepare(collection: id, type: kind, label: label, collector: collector), at: target) {
            case .building:
                progress[target] = .building
                prepared.insert(target)
            case .ready(let info):
                progress[target] = .ready(info)
                prepared.insert(target)
            case .busy(let reason):
                await release(targets.filter { prepared.contains($0) })
                printError("\(target): \(reason)")
                return .inTransition
            case .failed(let reason): progress[target] = .failed(reason)
            case .chunk, .finished: progress[target] = .failed("unexpected answer")
            }
        }
        let deadline = ContinuousClock.now + timeout
        while targets.contains(where: { if case .building = progress[$0] { true } else { false } }) {
            if ContinuousClock.now >= deadline {
                for target in targets {
                    if case .building = progress[target] { progress[target] = .failed("its archive was not ready within \(timeout)") }
                }
                break
            }
            try? await Task.sleep(for: .milliseconds(300))
            for target in targets {
                guard case .building = progress[target] else { continue }
                switch await ask(.poll(collection: id), at: target) {
                case .building: break
                case .ready(let info): progress[target] = .ready(info)
                case .failed(let reason), .busy(let reason): progress[target] = .failed(reason)
                case .chunk, .finished: progress[target] = .failed("unexpected answer")
                }
            }
        }
        var code = CommandCode.success
        for target in targets {
            if case .ready(let info) = progress[target] {
                do {
                    let path = try await fetch(info, from: target)
                    print("\(target): \(path) (\(info.size) bytes)")
                    for note in info.notes { print("  note: \(note)") }
                    progress[target] = .written
                } catch {
                    progress[target] = .failed("\(error)")
                }
            }
            // A server whose prepare failed holds nothing (and may take the full timeout to
            // say so again).
            if prepared.contains(target) { _ = await ask(.finish(collection: id), at: target) }
            if case .failed(let reason) = progress[target] {
                printError("\(target): not collected: \(reason)")
                code = .failed
            }
        }
        return code
    }

    /// One step at `target`; an unreachable server or daemon is `.failed`.
    func ask(_ step: LogCollectionStep, at target: ServerName) async -> LogCollectionAnswer {
        switch try? await client.send(.logCollection(step, target: target), timeout: .seconds(60)) {
        case .logCollection(let answer): return answer
        case .result(let result): return .failed(result.message)
        case nil: return .failed("the local daemon did not answer")
        default: return .failed("unexpected answer from the daemon")
        }
    }

    func release(_ targets: [ServerName]) async {
        for target in targets { _ = await ask(.finish(collection: id), at: target) }
    }

    /// Fetches the archive chunk by chunk into a hidden file, checks size and SHA-256, and
    /// gives it its name (mode 0600).
    func fetch(_ info: LogArchiveInfo, from target: ServerName) async throws -> String {
        guard info.fileName.hasPrefix("understudy-logs-"), info.fileName.hasSuffix(".tar.gz"), !info.fileName.contains("/") else {
            throw LogArchiveError("the server named its archive \(info.fileName.debugDescription)")
        }
        let final = folder + "/" + info.fileName
        let partial = folder + "/." + info.fileName + ".partial"
        let descriptor = open(partial, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw LogArchiveError("cannot write \(partial): \(String(cString: strerror(errno)))") }
        let handle = FileHandle(fileDescriptor: descriptor, closeOnDealloc: true)
        var hasher = SHA256()
        var offset: UInt64 = 0
        do {
            // Each chunk is at least 1 byte until the end: bounded by size / 1 + 1 rounds.
            while offset < info.size {
                guard case .chunk(let at, let bytes) = await ask(.read(collection: id, offset: offset), at: target) else {
                    throw LogArchiveError("the transfer stopped at byte \(offset) of \(info.size)")
                }
                guard at == offset, !bytes.isEmpty else { throw LogArchiveError("the server sent a chunk at \(at), expected \(offset)") }
                try handle.write(contentsOf: bytes)
                hasher.update(data: bytes)
                offset += UInt64(bytes.count)
            }
            try handle.synchronize()
            try handle.close()
            let digest = hasher.finalize().map { String(format: "%02x", $0) }.joined()
            guard offset == info.size, digest == info.sha256 else {
                throw LogArchiveError(
                    "the archive arrived damaged (\(offset) bytes, SHA-256 \(digest), expected \(info.size) and \(info.sha256))")
            }
            try? FileManager.default.removeItem(atPath: final)
            try FileManager.default.moveItem(atPath: partial, toPath: final)
            return final
        } catch {
            try? handle.close()
            try? FileManager.default.removeItem(atPath: partial)
            throw error
        }
    }
}
