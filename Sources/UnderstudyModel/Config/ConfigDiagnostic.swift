// Problems found while loading or validating a config file. Every problem names the file, the
// line and column and the key path, so an administrator can go straight to it.

/// One problem in a config file.
public struct ConfigDiagnostic: Sendable, Equatable, CustomStringConvertible {
    public enum Severity: String, Sendable, Equatable {
        /// The file cannot be used.
        case error
        /// The file can be used, but something is probably not what was meant.
        case warning
    }

    public var severity: Severity
    /// The config file as the user named it.
    public var file: String
    /// 1-based; 0 when the problem has no place in the file (a config built in code).
    public var line: Int
    /// 1-based; 0 when unknown.
    public var column: Int
    /// Where in the document, e.g. `groups[0].resources[2].timeout`; empty for the whole file.
    public var keyPath: String
    public var message: String

    public init(
        severity: Severity, file: String, line: Int = 0, column: Int = 0, keyPath: String,
        message: String
    ) {
        self.severity = severity
        self.file = file
        self.line = line
        self.column = column
        self.keyPath = keyPath
        self.message = message
    }

    /// `cluster.yaml:12:7: groups[0].resources[2].timeout: expected a duration …`; warnings
    /// say `warning:` after the place.
    public var description: String {
        var text = file.isEmpty ? "<config>" : file
        if line > 0 {
            text += ":\(line)"
            if column > 0 { text += ":\(column)" }
        }
        text += ": "
        if severity == .warning { text += "warning: " }
        if !keyPath.isEmpty { text += keyPath + ": " }
        return text + message
    }
}

/// Thrown when a config file cannot be used: every error found (not just the first), plus the
/// warnings found on the way.
public struct ConfigErrors: Error, Sendable, Equatable, CustomStringConvertible {
    /// Errors first in file order, then warnings in file order.
    public var diagnostics: [ConfigDiagnostic]

    public init(_ diagnostics: [ConfigDiagnostic]) {
        self.diagnostics = ConfigDiagnostic.sorted(diagnostics)
    }

    public var errors: [ConfigDiagnostic] { diagnostics.filter { $0.severity == .error } }
    public var warnings: [ConfigDiagnostic] { diagnostics.filter { $0.severity == .warning } }

    /// One line per problem.
    public var description: String {
        diagnostics.map(\.description).joined(separator: "\n")
    }
}

extension ConfigDiagnostic {
    /// Errors before warnings, each in file order; problems without a place keep their order.
    static func sorted(_ diagnostics: [ConfigDiagnostic]) -> [ConfigDiagnostic] {
        diagnostics.enumerated().sorted { lhs, rhs in
            let (a, b) = (lhs.element, rhs.element)
            if a.severity != b.severity { return a.severity == .error }
            if a.line != b.line { return a.line < b.line }
            if a.column != b.column { return a.column < b.column }
            return lhs.offset < rhs.offset
        }.map(\.element)
    }
}

/// Where each key path of a loaded file was written. The loader fills it; the validator uses
/// it to point at the right line. A config built in code has an empty map, and problems then
/// carry only the key path.
public struct ConfigSourceMap: Sendable, Equatable {
    public struct Position: Sendable, Equatable, Hashable {
        public var line: Int
        public var column: Int

        public init(line: Int, column: Int) {
            self.line = line
            self.column = column
        }
    }

    /// Where the value at a key path starts (`groups[0].servers[1]`, `cluster.timing`, …).
    public var values: [String: Position] = [:]
    /// Where the key of a mapping entry is written (`heartbeats[0].addresses.node3`).
    public var keys: [String: Position] = [:]
    /// Key path prefix of each element the model holds, in model order. Elements the loader had
    /// to drop leave gaps in the file's numbering, so model index and file index can differ.
    public var serverPaths: [String] = []
    public var heartbeatPaths: [String] = []
    public var networkPartitionPaths: [String] = []
    public var groupPaths: [String] = []
    /// Per group (model order), per resource (model order).
    public var resourcePaths: [[String]] = []
    public var monitorPaths: [String] = []
    public var fencingAgentPaths: [String] = []
    /// Names of servers, groups, resources and monitors that were declared but dropped because
    /// of errors; references to them are not reported again as unknown.
    public var droppedNames: Set<String> = []
    /// True when the `cluster:` section itself could not be loaded; its checks are skipped.
    public var clusterSettingsMissing = false

    public init() {}

    /// The position of a key path, or of its nearest parent that has one.
    /// `preferKey` asks for the key rather than the value (unknown names used as map keys).
    public func position(of keyPath: String, preferKey: Bool = false) -> Position? {
        var path = keyPath
        while !path.isEmpty {
            if preferKey, let position = keys[path] { return position }
            if let position = values[path] { return position }
            path = ConfigSourceMap.parent(of: path)
        }
        return nil
    }

    /// `a.b[2].c` → `a.b[2]` → `a.b` → `a` → "".
    static func parent(of path: String) -> String {
        if path.hasSuffix("]"), let open = path.lastIndex(of: "[") {
            return String(path[..<open])
        }
        if let dot = path.lastIndex(of: ".") { return String(path[..<dot]) }
        return ""
    }

    func serverPath(_ index: Int) -> String { element(serverPaths, index, "servers") }
    public func heartbeatPath(_ index: Int) -> String { element(heartbeatPaths, index, "heartbeats") }
    func networkPartitionPath(_ index: Int) -> String {
        element(networkPartitionPaths, index, "network-partition")
    }
    func groupPath(_ index: Int) -> String { element(groupPaths, index, "groups") }
    func monitorPath(_ index: Int) -> String { element(monitorPaths, index, "monitors") }
    func fencingAgentPath(_ index: Int) -> String { element(fencingAgentPaths, index, "fencing.agents") }
    public func resourcePath(group: Int, resource: Int) -> String {
        if resourcePaths.indices.contains(group), resourcePaths[group].indices.contains(resource) {
            return resourcePaths[group][resource]
        }
        return "\(groupPath(group)).resources[\(resource)]"
    }

    private func element(_ paths: [String], _ index: Int, _ section: String) -> String {
        paths.indices.contains(index) ? paths[index] : "\(section)[\(index)]"
    }
}
