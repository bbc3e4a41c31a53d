import Crypto
import Foundation
import Subprocess
import UnderstudyEngine
import UnderstudyModel

#if canImport(Glibc)
    import Glibc
#endif

/// Everything one server's archive is built from, captured by the daemon (or by the CLI when
/// the daemon does not run) before the build starts.
public struct LogArchiveSources: Sendable {
    public var server: ServerName
    public var cluster: String
    public var type: LogCollectionType
    /// `YYYYMMDD-HHMMSS`, the collection's time stamp.
    public var label: String
    public var stateDirectory: String
    /// The configuration file's path; the folder beside it holds `scripts/`.
    public var configPath: String
    /// The configuration the daemon runs (may differ from the file if that was edited since).
    public var runningYAML: String?
    /// Script files of the running configuration, by path under `scripts/`, with their bytes.
    public var scripts: [String: Data]
    /// `clpstat --json` of this server; nil when no daemon answered (the CLI's own build).
    public var statusJSON: Data?
    /// Where the daemon's standard error goes, when that is a regular file.
    public var daemonLogPath: String?
    /// The systemd unit whose journal holds the daemon's log.
    public var journalUnit: String
    /// Product version, for the manifest.
    public var version: String
    /// Notes from whoever captured the sources (e.g. "the daemon is not running").
    public var notes: [String]

    public init(
        server: ServerName, cluster: String, type: LogCollectionType, label: String, stateDirectory: String, configPath: String,
        runningYAML: String?, scripts: [String: Data], statusJSON: Data?, daemonLogPath: String?, journalUnit: String,
        version: String, notes: [String] = []
    ) {
        self.server = server
        self.cluster = cluster
        self.type = type
        self.label = label
        self.stateDirectory = stateDirectory
        self.configPath = configPath
        self.runningYAML = runningYAML
        self.scripts = scripts
        self.statusJSON = statusJSON
        self.daemonLogPath = daemonLogPath
        self.journalUnit = journalUnit
        self.version = version
        self.notes = notes
    }

    /// The file this process's standard error is written to, if it is a regular file (the
    /// demo, the tests, `2>>file`); nil for a terminal, a pipe or the journal's socket.
    public static func standardErrorFile() -> String? {
        var status = stat()
        guard fstat(2, &status) == 0, (status.st_mode & S_IFMT) == S_IFREG,
            let path = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/2"), path.hasPrefix("/")
        else { return nil }
        return path
    }

    /// The systemd service this process runs in (`/proc/self/cgroup`), else `understudy.service`.
    public static func systemdUnit() -> String {
        guard let text = KernelFile.read("/proc/self/cgroup") else { return "understudy.service" }
        for line in text.split(separator: "\n") {
            for component in line.split(separator: "/").reversed() where component.hasSuffix(".service") {
                return String(component)
            }
        }
        return "understudy.service"
    }
}

public struct LogArchiveError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// Builds `understudy-logs-SERVER-LABEL.tar.gz`: a folder of that name holding
///
/// | member | types |
/// |---|---|
/// | `MANIFEST.txt` (what is in, what was left out or cut, and why) | all |
/// | `status.json` (`clpstat --json` of this server) | all |
/// | `logs/alert.log`, `logs/scripts/*.log` (resource, monitor, recovery and rexec script logs), `logs/daemon.log` (the daemon's standard error when it is a file), `logs/journal-UNIT.txt` (the unit's journal) | all |
/// | `logs/cluster-alerts/SERVER.log` (the cluster alert log as this server holds it) | type1, type2 (+ `.1`) |
/// | `config/cluster.yaml` (running configuration, secrets redacted; `cluster.yaml.on-disk` too when the file differs), `config/scripts.txt` (script names, sizes, SHA-256) | type1, type2 |
/// | `state/*.json` (engine state, configuration version, boot id …; never `config-pending.json`, which holds a configuration), `state/listing.txt` | type1, type2 |
/// | `system/` uname, os-release, ip addr, ip route, mounts, df, meminfo, free, uptime | type1, type2 |
/// | rotated generations (`alert.log.1` …, `*.log.1` …), `system/journal.txt` (whole journal) | type2 |
///
/// Never: the cluster key, password and secret files, the users file, TLS keys, script
/// contents. Every member is then searched for the secrets the configuration leads to (the
/// key file's content, password files, inline secrets): each occurrence becomes
/// `<redacted>` and the manifest says so.
public enum LogArchiveBuilder {
    /// Journal lines of the daemon's unit (type2: `longJournalLines`).
    public static let journalLines = 2000
    public static let longJournalLines = 20000
    /// Lines of the whole journal (type2 only).
    public static let systemJournalLines = 5000
    /// A longer file contributes its newest this many bytes (type2: `largeFileLimit`).
    public static let fileLimit = 16 * 1024 * 1024
    public static let largeFileLimit = 64 * 1024 * 1024
    /// Members stop being added past this many bytes in all (type2: `largeTotalLimit`).
    public static let totalLimit = 256 * 1024 * 1024
    public static let largeTotalLimit = 1024 * 1024 * 1024
    /// Each system command, the journal and the final `tar` are bounded by these.
    public static let commandTimeout: Duration = .seconds(10)
    public static let journalTimeout: Duration = .seconds(30)
    public static let tarTimeout: Duration = .seconds(300)

    /// Builds the archive under `directory` (created, mode 0700); its information and path.
    public static func build(_ sources: LogArchiveSources, in directory: String) async throws(LogArchiveError) -> (LogArchiveInfo, String) {
        let top = "understudy-logs-\(sources.server)-\(sources.label)"
        let staging = directory + "/" + top
        let manager = FileManager.default
        do {
            try? manager.removeItem(atPath: directory)
            try manager.createDirectory(atPath: staging, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            try manager.setAttributes([.posixPermissions: 0o700], ofItemAtPath: directory)
        } catch {
            throw LogArchiveError("cannot create \(staging): \(error.localizedDescription)")
        }
        var archive = Staging(root: staging, type: sources.type)
        archive.notes = sources.notes
        archive = await offPool { [archive] in
            var files = archive
            collectFiles(sources, into: &files)
            return files
        }
        await collectCommands(sources, into: &archive)
        archive = await offPool { [archive] in
            var checked = archive
            checked.hide(secretsToHide(sources, notes: &checked.notes))
            checked.writeManifest(sources)
            return checked
        }
        let fileName = top + ".tar.gz"
        let archivePath = directory + "/" + fileName
        let tar = await SystemCommand.run(["tar", "-czf", archivePath, "-C", directory, top], output: nil, timeout: tarTimeout)
        try? manager.removeItem(atPath: staging)
        if let failure = tar {
            try? manager.removeItem(atPath: archivePath)
            throw LogArchiveError("cannot write the archive: \(failure)")
        }
        let measured = await offPool { () -> (size: UInt64, digest: String)? in
            guard let handle = FileHandle(forReadingAtPath: archivePath) else { return nil }
            defer { try? handle.close() }
            var hasher = SHA256()
            var size: UInt64 = 0
            while let block = try? handle.read(upToCount: 1 << 20), !block.isEmpty {
                hasher.update(data: block)
                size += UInt64(block.count)
            }
            return (size, hasher.finalize().map { String(format: "%02x", $0) }.joined())
        }
        guard let (size, digest) = measured else { throw LogArchiveError("cannot read back \(archivePath)") }
        return (LogArchiveInfo(fileName: fileName, size: size, sha256: digest, notes: archive.notes), archivePath)
    }

    /// The files: read and written on a Dispatch thread (`offPool`), not on Swift's
    /// cooperative pool, which a few hundred MiB of copying would hold up for the daemon.
    static func collectFiles(_ sources: LogArchiveSources, into archive: inout Staging) {
        let type = sources.type
        let rotated = type == .type2
        if let status = sources.statusJSON {
            archive.write(status, as: "status.json")
        } else {
            archive.notes.append("status.json: no status (the daemon did not answer)")
        }
        // Logs.
        let state = sources.stateDirectory
        archive.copy(state + "/alert.log", as: "logs/alert.log", missingIsNote: true)
        if rotated {
            for generation in 1...9 {
                let path = "\(state)/alert.log.\(generation)"
                guard FileManager.default.fileExists(atPath: path) else { break }
                archive.copy(path, as: "logs/alert.log.\(generation)")
            }
        }
        let logFolder = state + "/logs"
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: logFolder)) ?? []).sorted()
        for name in names where isLogName(name) && (rotated || !isRotatedName(name)) {
            archive.copy(logFolder + "/" + name, as: "logs/scripts/" + name)
        }
        if let daemonLog = sources.daemonLogPath {
            archive.copy(daemonLog, as: "logs/daemon.log")
            if rotated, FileManager.default.fileExists(atPath: daemonLog + ".1") { archive.copy(daemonLog + ".1", as: "logs/daemon.log.1") }
        }
        guard type != .type3 else { return }
        // The cluster alert log as this server holds it: every server's entries (STATE/alerts).
        let store = state + "/alerts"
        let stored = ((try? FileManager.default.contentsOfDirectory(atPath: store)) ?? []).sorted()
        for name in stored where isLogName(name) && (rotated || !isRotatedName(name)) {
            archive.copy(store + "/" + name, as: "logs/cluster-alerts/" + name)
        }
        // Configuration, redacted.
        archive.redactedConfiguration(sources)
        var listing = ""
        for (name, content) in sources.scripts.sorted(by: { $0.key < $1.key }) {
            let digest = SHA256.hash(data: content).map { String(format: "%02x", $0) }.joined()
            listing += "\(name)\t\(content.count) bytes\tsha256 \(digest)\n"
        }
        archive.write(
            Data(("# scripts/ of the running configuration: names, sizes and SHA-256 (contents are not collected)\n" + listing).utf8),
            as: "config/scripts.txt")
        // State records.
        archive.stateRecords(state)
        // System facts read from files.
        archive.copy("/etc/os-release", as: "system/os-release.txt", missingIsNote: true)
        archive.copy("/proc/mounts", as: "system/mounts.txt")
        archive.copy("/proc/meminfo", as: "system/meminfo.txt")
    }

    /// The commands: the journal and the system facts, each bounded by its timeout.
    static func collectCommands(_ sources: LogArchiveSources, into archive: inout Staging) async {
        let rotated = sources.type == .type2
        if let journalctl = SystemCommand.find("journalctl") {
            let lines = rotated ? longJournalLines : journalLines
            await archive.run(
                [journalctl, "--no-pager", "-o", "short-iso", "-u", sources.journalUnit, "-n", String(lines)],
                as: "logs/journal-\(sources.journalUnit).txt", timeout: journalTimeout)
            if rotated {
                await archive.run(
                    [journalctl, "--no-pager", "-o", "short-iso", "-n", String(systemJournalLines)], as: "system/journal.txt",
                    timeout: journalTimeout)
            }
        } else {
            archive.notes.append("logs/journal-\(sources.journalUnit).txt: skipped, journalctl is not installed")
        }
        guard sources.type != .type3 else { return }
        for (arguments, member) in [
            (["uname", "-a"], "system/uname.txt"), (["ip", "addr"], "system/ip-addr.txt"), (["ip", "route"], "system/ip-route.txt"),
            (["ip", "-6", "route"], "system/ip-6-route.txt"), (["df", "-P", "-T"], "system/df.txt"), (["free", "-m"], "system/free.txt"),
            (["uptime"], "system/uptime.txt"),
        ] {
            await archive.run(arguments, as: member, timeout: commandTimeout)
        }
    }

    /// Runs `work` on a Dispatch thread and waits for it without blocking a thread of the
    /// cooperative pool.
    static func offPool<T: Sendable>(_ work: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { continuation in
            DispatchQueue.global(qos: .utility).async { continuation.resume(returning: work()) }
        }
    }

    /// `NAME.log`, `NAME.log.1` …: the files the daemon writes in `logs/`.
    static func isLogName(_ name: String) -> Bool {
        name.hasSuffix(".log") || isRotatedName(name)
    }

    static func isRotatedName(_ name: String) -> Bool {
        guard let dot = name.lastIndex(of: ".") else { return false }
        let suffix = name[name.index(after: dot)...]
        return !suffix.isEmpty && suffix.allSatisfy(\.isNumber) && name[..<dot].hasSuffix(".log")
    }

    /// The secrets that must appear nowhere in the archive: the content of every secret file
    /// the configuration names (the cluster key first) and every inline secret.
    static func secretsToHide(_ sources: LogArchiveSources, notes: inout [String]) -> [String] {
        let folder = (sources.configPath as NSString).deletingLastPathComponent
        var secrets: [String] = []
        var files: [String] = []
        for yaml in [sources.runningYAML, try? String(contentsOfFile: sources.configPath, encoding: .utf8)].compactMap({ $0 }) {
            guard let result = try? ConfigRedaction.redact(yaml: yaml) else { continue }
            secrets += result.inlineSecrets
            files += result.secretFiles
        }
        // The web users file is there by default even when no key names it.
        files.append(Defaults.usersFileName)
        for file in files {
            let path = file.hasPrefix("/") ? file : (folder as NSString).appendingPathComponent(file)
            guard let data = FileManager.default.contents(atPath: path), data.count <= 1024 * 1024 else { continue }
            let text = String(decoding: data, as: UTF8.self)
            let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
            secrets.append(trimmed)
            // Each secret line too: a users file or a PEM key holds many secrets.
            secrets += text.split(whereSeparator: \.isNewline).compactMap(secretOfLine)
        }
        // Short values ("on", a 2-digit number) would blank out ordinary words.
        var unique: [String] = []
        for secret in secrets where secret.utf8.count >= 4 && !unique.contains(secret) && secret != "public" { unique.append(secret) }
        return unique.sorted { $0.utf8.count > $1.utf8.count }
    }

    /// `password: HASH` in a YAML file (the value), a long word (a PEM line, a token), else nil.
    static func secretOfLine(_ line: Substring) -> String? {
        let trimmed = line.trimmingCharacters(in: .whitespaces)
        if let colon = trimmed.range(of: ": ") {
            let key = trimmed[..<colon.lowerBound].trimmingCharacters(in: CharacterSet(charactersIn: "- "))
            let value = trimmed[colon.upperBound...].trimmingCharacters(in: CharacterSet(charactersIn: " '\""))
            return ConfigRedaction.isSecretKey(key) || key.lowercased().contains("hash") ? value : nil
        }
        guard !trimmed.hasPrefix("-----"), trimmed.utf8.count >= 16, !trimmed.contains(where: \.isWhitespace) else { return nil }
        return trimmed
    }
}

/// The folder being filled, and what it says about itself.
struct Staging: Sendable {
    let root: String
    let type: LogCollectionType
    var notes: [String] = []
    var members: [(name: String, source: String)] = []
    var total = 0

    init(root: String, type: LogCollectionType) {
        self.root = root
        self.type = type
    }

    var fileLimit: Int { type == .type2 ? LogArchiveBuilder.largeFileLimit : LogArchiveBuilder.fileLimit }
    var totalLimit: Int { type == .type2 ? LogArchiveBuilder.largeTotalLimit : LogArchiveBuilder.totalLimit }

    func path(of member: String) -> String { root + "/" + member }

    mutating func write(_ data: Data, as member: String, source: String = "") {
        guard total + data.count <= totalLimit else {
            notes.append("\(member): left out, the archive reached its limit of \(totalLimit / (1024 * 1024)) MiB")
            return
        }
        let path = path(of: member)
        do {
            try FileManager.default.createDirectory(
                atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true,
                attributes: [.posixPermissions: 0o700])
            try data.write(to: URL(fileURLWithPath: path))
            total += data.count
            members.append((member, source))
        } catch {
            notes.append("\(member): cannot be written: \(error.localizedDescription)")
        }
    }

    /// The newest `fileLimit` bytes of a file (from the first full line), as `member`.
    mutating func copy(_ source: String, as member: String, missingIsNote: Bool = false) {
        guard let handle = FileHandle(forReadingAtPath: source) else {
            if missingIsNote || FileManager.default.fileExists(atPath: source) { notes.append("\(member): \(source) cannot be read") }
            return
        }
        defer { try? handle.close() }
        let size = (try? handle.seekToEnd()) ?? 0
        var data: Data
        if size > UInt64(fileLimit) {
            try? handle.seek(toOffset: size - UInt64(fileLimit))
            data = (try? handle.readToEnd()) ?? Data()
            if let newline = data.firstIndex(of: UInt8(ascii: "\n")) { data = data[data.index(after: newline)...] }
            notes.append("\(member): the newest \(fileLimit / (1024 * 1024)) MiB of \(size) bytes")
        } else {
            try? handle.seek(toOffset: 0)
            data = (try? handle.readToEnd()) ?? Data()
        }
        write(Data(data), as: member, source: source)
    }

    /// A command's output (and errors) as `member`; a failure is noted, the output kept.
    mutating func run(_ arguments: [String], as member: String, timeout: Duration) async {
        let path = path(of: member)
        try? FileManager.default.createDirectory(
            atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let command = arguments.joined(separator: " ")
        if let failure = await SystemCommand.run(arguments, output: path, timeout: timeout) {
            notes.append("\(member): \(failure)")
        }
        // A command's output is bounded like any file.
        let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? nil
        if let size, size > fileLimit {
            try? FileManager.default.removeItem(atPath: path)
            notes.append("\(member): left out, `\(command)` wrote more than \(fileLimit / (1024 * 1024)) MiB")
            return
        }
        if FileManager.default.fileExists(atPath: path) {
            total += size ?? 0
            members.append((member, "`\(command)`"))
        }
    }

    mutating func redactedConfiguration(_ sources: LogArchiveSources) {
        let onDisk = try? String(contentsOfFile: sources.configPath, encoding: .utf8)
        let running = sources.runningYAML ?? onDisk
        guard let running else {
            notes.append("config/cluster.yaml: \(sources.configPath) cannot be read")
            return
        }
        let header =
            "# \(sources.configPath) as server \(sources.server) runs it, secrets replaced with \(ConfigRedaction.placeholder), comments removed (clplogcc)\n"
        do {
            let redacted = try ConfigRedaction.redact(yaml: running, source: sources.configPath)
            write(Data((header + redacted.yaml).utf8), as: "config/cluster.yaml", source: sources.configPath + " (redacted)")
        } catch {
            notes.append("config/cluster.yaml: left out: \(error)")
        }
        if let onDisk, sources.runningYAML != nil, onDisk != running {
            notes.append("config/cluster.yaml.on-disk: \(sources.configPath) differs from the configuration the daemon runs")
            if let redacted = try? ConfigRedaction.redact(yaml: onDisk, source: sources.configPath) {
                write(
                    Data(("# \(sources.configPath) on disk, secrets redacted, comments removed (clplogcc)\n" + redacted.yaml).utf8),
                    as: "config/cluster.yaml.on-disk", source: sources.configPath + " (redacted)")
            } else {
                notes.append("config/cluster.yaml.on-disk: left out, the file is not valid YAML")
            }
        }
    }

    /// `STATE/*.json` but the pending configuration (a whole configuration, unredacted), and
    /// a listing of the state folder.
    mutating func stateRecords(_ state: String) {
        let manager = FileManager.default
        let names = ((try? manager.contentsOfDirectory(atPath: state)) ?? []).sorted()
        for name in names where name.hasSuffix(".json") && name != ConfigStore.pendingName + ".json" {
            copy(state + "/" + name, as: "state/" + name)
        }
        if names.contains(ConfigStore.pendingName + ".json"),
            let pending = try? ConfigStore(directory: state).pending()
        {
            let summary =
                "pending configuration: version \(pending.version), hash \(pending.hash), base \(pending.base), coordinator \(pending.coordinator)\n"
            write(Data(summary.utf8), as: "state/config-pending.txt", source: state + "/config-pending.json (summary)")
        }
        var listing = ""
        let enumerator = manager.enumerator(atPath: state)
        var count = 0
        while let relative = enumerator?.nextObject() as? String, count < 10_000 {
            count += 1
            if relative.hasPrefix("logcc") { continue }
            guard let attributes = try? manager.attributesOfItem(atPath: state + "/" + relative) else { continue }
            let mode = String((attributes[.posixPermissions] as? Int) ?? 0, radix: 8)
            let size = (attributes[.size] as? Int) ?? 0
            let modified = (attributes[.modificationDate] as? Date).map { ISO8601DateFormatter().string(from: $0) } ?? "?"
            listing += "\(mode)\t\(size)\t\(modified)\t\(relative)\n"
        }
        write(Data(("# mode\tsize\tmodified\tpath under \(state)\n" + listing).utf8), as: "state/listing.txt")
    }

    /// Replaces every occurrence of each secret in every member.
    mutating func hide(_ secrets: [String]) {
        guard !secrets.isEmpty else { return }
        let patterns = secrets.map { Array($0.utf8) }
        let replacement = Array(ConfigRedaction.placeholder.utf8)
        for member in members.map(\.name) {
            let path = path(of: member)
            guard let data = FileManager.default.contents(atPath: path) else { continue }
            var bytes = Array(data)
            var replaced = 0
            for pattern in patterns where data.range(of: Data(pattern)) != nil {
                let (result, count) = Self.replace(pattern, in: bytes, with: replacement)
                if count > 0 {
                    bytes = result
                    replaced += count
                }
            }
            if replaced > 0 {
                do {
                    try Data(bytes).write(to: URL(fileURLWithPath: path))
                    notes.append("\(member): \(replaced) occurrence(s) of configured secrets replaced with \(ConfigRedaction.placeholder)")
                } catch {
                    try? FileManager.default.removeItem(atPath: path)
                    members.removeAll { $0.name == member }
                    notes.append("\(member): left out, it holds a configured secret and cannot be rewritten")
                }
            }
        }
    }

    static func replace(_ pattern: [UInt8], in bytes: [UInt8], with replacement: [UInt8]) -> ([UInt8], Int) {
        guard let first = pattern.first, bytes.count >= pattern.count else { return (bytes, 0) }
        var output: [UInt8] = []
        var count = 0
        var index = 0
        let last = bytes.count - pattern.count
        while index < bytes.count {
            if index <= last, bytes[index] == first, bytes[index..<(index + pattern.count)].elementsEqual(pattern) {
                if count == 0 {
                    output.reserveCapacity(bytes.count)
                    output.append(contentsOf: bytes[0..<index])
                }
                output.append(contentsOf: replacement)
                count += 1
                index += pattern.count
                continue
            }
            if count > 0 { output.append(bytes[index]) }
            index += 1
        }
        return count == 0 ? (bytes, 0) : (output, count)
    }

    func writeManifest(_ sources: LogArchiveSources) {
        let formatter = ISO8601DateFormatter()
        var text = """
            Understudy log collection (clplogcc -t \(sources.type.rawValue))
            server:   \(sources.server)
            cluster:  \(sources.cluster)
            version:  \(sources.version)
            built:    \(formatter.string(from: Date()))
            state:    \(sources.stateDirectory)
            config:   \(sources.configPath)

            Never collected: the cluster key, password and secret files, the web users file, TLS keys,
            script contents. Secret values in the configuration read \(ConfigRedaction.placeholder).

            Members:

            """
        for member in members {
            text += "  \(member.name)" + (member.source.isEmpty ? "" : "  <- \(member.source)") + "\n"
        }
        text += "\nNotes:\n"
        text += notes.isEmpty ? "  (none)\n" : notes.map { "  \($0)\n" }.joined()
        try? Data(text.utf8).write(to: URL(fileURLWithPath: path(of: "MANIFEST.txt")))
    }
}

/// A command with a hard time limit (coreutils `timeout`, SIGKILL a second after), output and
/// errors to a file or discarded.
enum SystemCommand {
    /// Nil when it succeeded; otherwise what went wrong, in words.
    static func run(_ arguments: [String], output: String?, timeout: Duration) async -> String? {
        let command = arguments.joined(separator: " ")
        let descriptor = open(output ?? "/dev/null", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { return "`\(command)`: cannot open \(output ?? "/dev/null")" }
        let seconds = String(format: "%.0f", max(1, Double(timeout.components.seconds)))
        let marker = Environment.Key(rawValue: DaemonInstance.variable)
        var environment = Environment.inherit
        if let marker { environment = environment.updating([marker: DaemonInstance.token]) }
        if let locale = Environment.Key(rawValue: "LC_ALL") { environment = environment.updating([locale: "C"]) }
        do {
            let result = try await Subprocess.run(
                .name("timeout"), arguments: Arguments(["--kill-after=1", seconds] + arguments), environment: environment,
                input: .none, output: .fileDescriptor(.init(rawValue: descriptor), closeAfterSpawningProcess: true),
                error: .combinedWithOutput)
            switch result.terminationStatus {
            case .exited(0): return nil
            case .exited(124), .exited(137): return "`\(command)` timed out after \(seconds) s"
            case .exited(127): return "`\(command)`: not installed"
            case .exited(let code): return "`\(command)` exited with \(code)"
            case .signaled(let signal): return "`\(command)` was killed by signal \(signal)"
            }
        } catch {
            // Subprocess closes the descriptor whether or not the command started.
            return "`\(command)` could not be started: \(error)"
        }
    }

    /// The absolute path of an executable in the usual folders, nil when absent.
    static func find(_ name: String) -> String? {
        let folders =
            (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":").map(String.init)
            + ["/usr/bin", "/bin", "/usr/sbin", "/sbin"]
        return folders.map { $0 + "/" + name }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }
}
