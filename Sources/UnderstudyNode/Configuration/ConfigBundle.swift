import Crypto
import Foundation
import UnderstudyModel

#if canImport(Glibc)
    import Glibc
#endif

/// What one configuration is on disk and on the wire: the cluster file's text and the files of
/// the `scripts/` folder beside it (CLUSTERPRO's `clp.conf` and `scripts/`). Distributed by
/// `understudy config apply`, `clpcfctrl --push` and the catch-up of a server that rejoins.
public struct ConfigBundle: Sendable, Codable, Equatable {
    public struct ScriptFile: Sendable, Codable, Equatable {
        public var content: Data
        public var executable: Bool

        public init(content: Data, executable: Bool) {
            self.content = content
            self.executable = executable
        }
    }

    /// The cluster file's text.
    public var yaml: String
    /// Files of the `scripts/` folder, by path relative to it (`web/start.sh`).
    public var scripts: [String: ScriptFile]

    public init(yaml: String, scripts: [String: ScriptFile] = [:]) {
        self.yaml = yaml
        self.scripts = scripts
    }

    /// A bundle travels in one control frame (4 MiB, JSON with base64): a cluster file and
    /// its scripts are a few kilobytes.
    public static let maximumSize = 2 * 1024 * 1024
    /// At most this many script files.
    public static let maximumScripts = 1000

    public struct Problem: Error, Sendable, Equatable, CustomStringConvertible {
        public var description: String
        public init(_ description: String) { self.description = description }
    }

    /// The size that counts against `maximumSize`.
    public var size: Int { yaml.utf8.count + scripts.reduce(0) { $0 + $1.key.utf8.count + $1.value.content.count } }

    /// Checks what arrives from the network or the CLI before anything is written: size, and
    /// script names that stay inside the `scripts/` folder.
    public func check() throws(Problem) {
        guard size <= Self.maximumSize else {
            throw Problem("the configuration with its scripts is \(size) bytes; at most \(Self.maximumSize) can be distributed")
        }
        guard scripts.count <= Self.maximumScripts else {
            throw Problem("\(scripts.count) files in scripts/; at most \(Self.maximumScripts) can be distributed")
        }
        for name in scripts.keys.sorted() {
            let parts = name.split(separator: "/", omittingEmptySubsequences: false)
            let valid =
                !name.isEmpty && !name.hasPrefix("/") && name.utf8.count <= 255 && !name.utf8.contains(0)
                && parts.allSatisfy { !$0.isEmpty && !$0.hasPrefix(".") }
            guard valid else { throw Problem("script name \(name.debugDescription) is not a plain path inside scripts/") }
        }
    }

    /// The scripts that differ between two bundles (added, removed, changed).
    public func changedScripts(since other: ConfigBundle) -> [String] {
        Set(scripts.keys).union(other.scripts.keys).filter { scripts[$0] != other.scripts[$0] }.sorted()
    }

    // MARK: - Identity

    /// The configuration's identity: SHA-256 over the canonical model (`CanonicalForm`: the
    /// file's comments, spacing, key order and folder do not count) and the scripts; the
    /// first 32 hex digits. Every server computes the same for the same configuration.
    public static func hash(config: ClusterConfig, scripts: [String: ScriptFile]) -> String {
        var hasher = SHA256()
        hasher.update(data: Data(CanonicalForm.text(of: config).utf8))
        for name in scripts.keys.sorted() {
            guard let file = scripts[name] else { continue }
            hasher.update(data: Data("\n\(name)\u{0}\(file.executable ? "x" : "-")\u{0}".utf8))
            hasher.update(data: Data(SHA256.hash(data: file.content)))
        }
        return hasher.finalize().map { String(format: "%02x", $0) }.joined().prefix(32).description
    }

    /// The scripts the configuration runs from under `folder`: exec start and stop scripts,
    /// genw scripts, monitor recovery scripts.
    public static func paths(in config: ClusterConfig, under folder: String) -> [String] {
        var found: Set<String> = []
        for group in config.groups {
            for resource in group.resources {
                guard case .exec(let exec) = resource.settings else { continue }
                for path in [exec.start, exec.stop].compactMap({ $0 }) where path.hasPrefix(folder) { found.insert(path) }
            }
        }
        for monitor in config.monitors {
            for path in [monitor.string("script"), monitor.recovery.script].compactMap({ $0 }) where path.hasPrefix(folder) {
                found.insert(path)
            }
        }
        return found.sorted()
    }

    // MARK: - Files

    /// The folder of scripts beside a cluster file.
    public static func scriptsFolder(of configPath: String) -> String {
        ((configPath as NSString).deletingLastPathComponent as NSString).appendingPathComponent("scripts")
    }

    /// Reads the cluster file and the regular files of `scripts/` beside it (hidden files,
    /// symbolic links and other file types are left out).
    public static func read(configPath: String) throws(Problem) -> ConfigBundle {
        guard let data = FileManager.default.contents(atPath: configPath), let yaml = String(data: data, encoding: .utf8) else {
            throw Problem("cannot read \(configPath) (missing, unreadable, or not UTF-8)")
        }
        var scripts: [String: ScriptFile] = [:]
        let folder = scriptsFolder(of: configPath)
        var total = yaml.utf8.count
        if let walker = FileManager.default.enumerator(atPath: folder) {
            while let relative = walker.nextObject() as? String {
                let path = folder + "/" + relative
                var info = stat()
                guard lstat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { continue }
                // Hidden files (editor backups, the temporary files of atomic writes) stay.
                if relative.split(separator: "/").contains(where: { $0.hasPrefix(".") }) { continue }
                total += Int(info.st_size)
                guard total <= maximumSize else {
                    throw Problem("\(folder) holds more than \(maximumSize) bytes; at most that much can be distributed")
                }
                guard let content = FileManager.default.contents(atPath: path) else { throw Problem("cannot read \(path)") }
                scripts[relative] = ScriptFile(content: content, executable: info.st_mode & 0o100 != 0)
            }
        }
        let bundle = ConfigBundle(yaml: yaml, scripts: scripts)
        try bundle.check()
        return bundle
    }

    /// Writes the bundle in place of the configuration at `configPath`: each script atomically
    /// (write, fsync, rename), scripts no longer in the bundle removed, the cluster file last.
    /// A reader (a monitor starting a script, the keeper reading the file) sees either the
    /// old or the new content of each file, never a mix or an empty file.
    public func install(at configPath: String, replacing previous: ConfigBundle?) throws {
        try check()
        let folder = Self.scriptsFolder(of: configPath)
        for name in scripts.keys.sorted() {
            guard let file = scripts[name] else { continue }
            let path = folder + "/" + name
            try FileManager.default.createDirectory(
                atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try AtomicFile.write(file.content, to: path, mode: file.executable ? 0o755 : 0o644)
        }
        for name in (previous?.scripts.keys.sorted() ?? []) where scripts[name] == nil {
            try AtomicFile.remove(folder + "/" + name)
        }
        try AtomicFile.write(Data(yaml.utf8), to: configPath, mode: 0o644)
    }

    /// Writes the bundle into a folder (`clpcfctrl --pull -x DIR`): `cluster.yaml` and `scripts/`.
    public func write(toFolder folder: String, fileName: String = "cluster.yaml") throws {
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        try install(at: folder + "/" + fileName, replacing: nil)
    }
}
