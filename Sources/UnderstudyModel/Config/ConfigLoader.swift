// Loads cluster.yaml into a `ClusterConfig`. The YAML is composed into a node tree (Yams) and
// walked by hand rather than decoded with Codable, so every problem can name its file, line,
// column and key path, and so all problems are reported at once instead of the first one.
//
// Two passes: the loader checks shape (keys, types, formats, required keys) and builds the
// model; `ConfigValidator` then checks meaning (names, references, ranges, cycles) on the model,
// using the source map the loader recorded to point at lines.

import Foundation
import Yams

/// A loaded config with what was noticed but does not stop it from being used.
public struct LoadedConfig: Sendable, Equatable {
    public var config: ClusterConfig
    public var warnings: [ConfigDiagnostic]
    /// Where each key path was written; lets later tools point at lines too.
    public var sourceMap: ConfigSourceMap

    public init(config: ClusterConfig, warnings: [ConfigDiagnostic], sourceMap: ConfigSourceMap) {
        self.config = config
        self.warnings = warnings
        self.sourceMap = sourceMap
    }
}

public enum ConfigLoader {
    /// Larger files are refused before parsing: a cluster config is a few kilobytes.
    public static let maximumFileSize = 8 * 1024 * 1024

    /// Loads and validates a config file. Warnings are dropped; use `loadWithWarnings` to see them.
    public static func load(path: String) throws(ConfigErrors) -> ClusterConfig {
        try loadWithWarnings(path: path).config
    }

    /// Loads and validates YAML text. `sourcePath` names the file in messages and is the base
    /// for relative paths (its folder; the current directory when it has none).
    public static func load(yaml: String, sourcePath: String) throws(ConfigErrors) -> ClusterConfig {
        try loadWithWarnings(yaml: yaml, sourcePath: sourcePath).config
    }

    /// `checkFiles: false` skips the warnings about files (secret file, scripts) missing on this
    /// machine.
    public static func loadWithWarnings(path: String, checkFiles: Bool = true) throws(ConfigErrors)
        -> LoadedConfig
    {
        let yaml = try readText(path: path)
        return try loadWithWarnings(yaml: yaml, sourcePath: path, checkFiles: checkFiles)
    }

    public static func loadWithWarnings(yaml: String, sourcePath: String, checkFiles: Bool = true)
        throws(ConfigErrors) -> LoadedConfig
    {
        let absolutePath = sourcePath.isEmpty ? "" : absolute(sourcePath)
        let baseDirectory =
            absolutePath.isEmpty
            ? FileManager.default.currentDirectoryPath : ConfigSourceMap.directory(of: absolutePath)
        var reader = ConfigReader(file: sourcePath, baseDirectory: baseDirectory)
        let partial = reader.readDocument(yaml: yaml)
        var diagnostics = reader.diagnostics
        guard let partial else { throw ConfigErrors(diagnostics) }

        var config = partial
        config.sourcePath = absolutePath
        // A meaning problem next to a shape problem already reported (same key path, or one
        // inside the other) is almost always the same mistake seen twice: keep the first.
        let shapeProblemPaths = diagnostics.filter { $0.severity == .error }.map(\.keyPath)
        diagnostics += ConfigValidator.validate(
            config, sourceMap: reader.sourceMap, file: sourcePath, checkFiles: checkFiles
        ).filter { problem in
            !shapeProblemPaths.contains { ConfigSourceMap.overlaps($0, problem.keyPath) }
        }
        let sorted = ConfigDiagnostic.sorted(diagnostics)
        if sorted.contains(where: { $0.severity == .error }) { throw ConfigErrors(sorted) }
        return LoadedConfig(config: config, warnings: sorted, sourceMap: reader.sourceMap)
    }

    private static func readText(path: String) throws(ConfigErrors) -> String {
        func fail(_ message: String) -> ConfigErrors {
            ConfigErrors([ConfigDiagnostic(severity: .error, file: path, keyPath: "", message: message)])
        }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw fail("no such file")
        }
        guard !isDirectory.boolValue else { throw fail("is a directory, not a config file") }
        let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)?.intValue
        if let size, size > maximumFileSize {
            throw fail("file is \(size) bytes; a config file is at most \(maximumFileSize) bytes")
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw fail("cannot read the file (permissions?)")
        }
        guard data.count <= maximumFileSize else {
            throw fail("file is larger than \(maximumFileSize) bytes")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw fail("not UTF-8 text; a config file must be YAML in UTF-8")
        }
        return text
    }

    /// The absolute, normalized form of a path given relative to the current directory.
    static func absolute(_ path: String) -> String {
        if path.hasPrefix("/") { return ConfigSourceMap.normalize(path) }
        return ConfigSourceMap.normalize(FileManager.default.currentDirectoryPath + "/" + path)
    }
}

extension ConfigSourceMap {
    /// Removes `.`, `..` and repeated slashes without touching the file system.
    static func normalize(_ path: String) -> String {
        var parts: [Substring] = []
        for part in path.split(separator: "/") {
            if part == "." { continue }
            if part == ".." {
                if !parts.isEmpty { parts.removeLast() }
                continue
            }
            parts.append(part)
        }
        return "/" + parts.joined(separator: "/")
    }

    /// True when one key path is the other or lies inside it (`a.b` and `a.b[0].c`).
    static func overlaps(_ first: String, _ second: String) -> Bool {
        func contains(_ outer: String, _ inner: String) -> Bool {
            outer.isEmpty || inner == outer || inner.hasPrefix(outer + ".") || inner.hasPrefix(outer + "[")
        }
        return contains(first, second) || contains(second, first)
    }

    static func directory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        let directory = String(path[..<slash])
        return directory.isEmpty ? "/" : directory
    }
}

// MARK: - Walking the YAML tree

/// One `key: value` entry of a YAML mapping, with the key path it lives at.
struct Field {
    let key: String
    let keyNode: Node
    let value: Node
    let path: String
}

/// The entries of one YAML mapping, by key.
struct FieldSet {
    let node: Node
    let path: String
    let entries: [String: Field]

    subscript(key: String) -> Field? { entries[key] }
    func path(_ key: String) -> String { ConfigReader.join(path, key) }
}

/// Walks the node tree, collects diagnostics and the source map, builds the model.
struct ConfigReader {
    let file: String
    let baseDirectory: String
    var diagnostics: [ConfigDiagnostic] = []
    var sourceMap = ConfigSourceMap()

    init(file: String, baseDirectory: String) {
        self.file = file
        self.baseDirectory = baseDirectory
    }

    static func join(_ path: String, _ key: String) -> String { path.isEmpty ? key : path + "." + key }

    // MARK: Diagnostics

    mutating func error(_ message: String, at node: Node?, path: String) {
        report(.error, message, at: Self.position(node?.mark), path: path)
    }

    mutating func warning(_ message: String, at node: Node?, path: String) {
        report(.warning, message, at: Self.position(node?.mark), path: path)
    }

    mutating func report(
        _ severity: ConfigDiagnostic.Severity, _ message: String, at position: ConfigSourceMap.Position?, path: String
    ) {
        diagnostics.append(
            ConfigDiagnostic(
                severity: severity, file: file, line: position?.line ?? 0, column: position?.column ?? 0,
                keyPath: path, message: message))
    }

    static func position(_ mark: Mark?) -> ConfigSourceMap.Position? {
        mark.map { ConfigSourceMap.Position(line: $0.line, column: $0.column) }
    }

    mutating func record(_ node: Node, at path: String) {
        if let mark = node.mark { sourceMap.values[path] = .init(line: mark.line, column: mark.column) }
    }

    // MARK: Document

    /// Parses the YAML and builds the model. Nil only when nothing usable came out (syntax
    /// error, empty file, wrong top-level shape); the diagnostics say why.
    mutating func readDocument(yaml: String) -> ClusterConfig? {
        let root: Node?
        do {
            root = try Yams.compose(yaml: yaml)
        } catch let yamlError as YamlError {
            reportSyntaxError(yamlError, yaml: yaml)
            return nil
        } catch {
            report(.error, "cannot parse the YAML: \(error)", at: nil, path: "")
            return nil
        }
        guard let root, !isNull(root) else {
            report(.error, "the file is empty; it needs at least `cluster:` and `servers:`", at: nil, path: "")
            return nil
        }
        return readRoot(root)
    }

    private mutating func reportSyntaxError(_ yamlError: YamlError, yaml: String) {
        switch yamlError {
        case .scanner(let context, let problem, let mark, _),
            .parser(let context, let problem, let mark, _),
            .composer(let context, let problem, let mark, _):
            var message = "YAML syntax error: \(problem)"
            if let context {
                message += " (\(context.text) at line \(context.mark.line), column \(context.mark.column))"
            }
            report(.error, message, at: Self.position(mark), path: "")
        case .reader(let problem, let offset, _, _):
            let mark = offset.map { Self.mark(ofCharacterOffset: $0, in: yaml) }
            report(.error, "cannot read the text: \(problem)", at: mark, path: "")
        case .duplicatedKeysInMapping(let duplicates, let context):
            let keys = duplicates.map { "\"\($0)\"" }.listed
            report(
                .error, "duplicate key \(keys) in one mapping; each key may appear once",
                at: Self.position(context.mark), path: "")
        default:
            report(.error, "cannot parse the YAML: \(yamlError)", at: nil, path: "")
        }
    }

    private static func mark(ofCharacterOffset offset: Int, in text: String) -> ConfigSourceMap.Position {
        var line = 1
        var column = 1
        for (index, character) in text.enumerated() {
            if index >= offset { break }
            if character.isNewline {
                line += 1
                column = 1
            } else {
                column += 1
            }
        }
        return ConfigSourceMap.Position(line: line, column: column)
    }

    // MARK: Shapes

    func isNull(_ node: Node) -> Bool {
        guard case .scalar(let scalar) = node, scalar.style == .plain || scalar.style == .any else { return false }
        return ["", "~", "null", "Null", "NULL"].contains(scalar.string)
    }

    /// How a node looks, for "expected X, got Y".
    func describe(_ node: Node) -> String {
        switch node {
        case .scalar(let scalar):
            if isNull(node) { return "nothing" }
            return "\"\(Self.clip(scalar.string))\""
        case .mapping: return "a mapping"
        case .sequence: return "a list"
        case .alias: return "an alias"
        }
    }

    /// Long values are shortened in messages so one problem stays one line.
    static func clip(_ text: String) -> String {
        let singleLine = text.replacingOccurrences(of: "\n", with: "\\n")
        return singleLine.count > 60 ? String(singleLine.prefix(57)) + "..." : singleLine
    }

    /// Checks a node is a mapping with only allowed keys and records where each entry is.
    /// `foreignKeys` names, for a key that belongs elsewhere (another resource type), where it
    /// belongs, to say so instead of guessing a typo.
    mutating func mapping(
        _ node: Node, path: String, allowed: [String], context: String = "",
        foreignKeys: [String: String] = [:]
    ) -> FieldSet? {
        guard case .mapping(let mapping) = node else {
            error("expected a mapping of keys to values, got \(describe(node))", at: node, path: path)
            return nil
        }
        record(node, at: path)
        var entries: [String: Field] = [:]
        for (keyNode, value) in mapping {
            guard case .scalar(let keyScalar) = keyNode, !isNull(keyNode) else {
                error("keys must be plain words, got \(describe(keyNode))", at: keyNode, path: path)
                continue
            }
            let key = keyScalar.string
            let fieldPath = Self.join(path, key)
            guard allowed.contains(key) else {
                var message = "unknown key \"\(Self.clip(key))\"\(context)"
                if let elsewhere = foreignKeys[key] {
                    message += "; it is a key of \(elsewhere)"
                } else {
                    let suggestion = Suggestion.didYouMean(key, in: allowed)
                    message += suggestion.isEmpty ? "; known keys: \(allowed.listed)" : suggestion
                }
                error(message, at: keyNode, path: fieldPath)
                continue
            }
            if let mark = keyNode.mark {
                sourceMap.keys[fieldPath] = .init(line: mark.line, column: mark.column)
            }
            record(value, at: fieldPath)
            entries[key] = Field(key: key, keyNode: keyNode, value: value, path: fieldPath)
        }
        return FieldSet(node: node, path: path, entries: entries)
    }

    /// The field when present with a value; nil when absent or written without a value.
    func present(_ fields: FieldSet, _ key: String) -> Field? {
        guard let field = fields[key], !isNull(field.value) else { return nil }
        return field
    }

    /// Like `present`, but a missing key or value is an error.
    mutating func required(_ fields: FieldSet, _ key: String, hint: String = "") -> Field? {
        if let field = fields[key] {
            if isNull(field.value) {
                error("needs a value\(hint)", at: field.keyNode, path: field.path)
                return nil
            }
            return field
        }
        error("missing required key\(hint)", at: fields.node, path: fields.path(key))
        return nil
    }

    // MARK: Values

    mutating func scalarText(_ field: Field, expected: String) -> String? {
        guard case .scalar(let scalar) = field.value, !isNull(field.value) else {
            error("expected \(expected), got \(describe(field.value))", at: field.value, path: field.path)
            return nil
        }
        return scalar.string
    }

    mutating func string(_ field: Field?) -> String? {
        guard let field else { return nil }
        return scalarText(field, expected: "a string")
    }

    /// A non-empty path, resolved against the config file's folder when relative.
    mutating func path(_ field: Field?) -> String? {
        guard let field, let text = scalarText(field, expected: "a file path") else { return nil }
        guard !text.trimmingWhitespace().isEmpty else {
            error("expected a file path, got an empty string", at: field.value, path: field.path)
            return nil
        }
        return resolve(text)
    }

    func resolve(_ path: String) -> String {
        ConfigSourceMap.normalize(path.hasPrefix("/") ? path : baseDirectory + "/" + path)
    }

    mutating func int(_ field: Field?) -> Int? {
        guard let field, let text = scalarText(field, expected: "an integer") else { return nil }
        guard let value = Self.parseInt(text) else {
            error("expected an integer, got \(describe(field.value))", at: field.value, path: field.path)
            return nil
        }
        return value
    }

    static func parseInt(_ text: String) -> Int? {
        let trimmed = text.trimmingWhitespace()
        let digits = trimmed.hasPrefix("-") || trimmed.hasPrefix("+") ? trimmed.dropFirst() : Substring(trimmed)
        guard !digits.isEmpty, digits.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
        return Int(trimmed.hasPrefix("+") ? String(digits) : trimmed)
    }

    mutating func bool(_ field: Field?) -> Bool? {
        guard let field, let text = scalarText(field, expected: "true or false") else { return nil }
        switch text.lowercased() {
        case "true": return true
        case "false": return false
        default:
            error("expected true or false, got \(describe(field.value))", at: field.value, path: field.path)
            return nil
        }
    }

    static let durationExpectation = "a duration with a unit (ms, s, m, h)"

    mutating func duration(_ field: Field?) -> Duration? {
        guard let field, let text = scalarText(field, expected: Self.durationExpectation) else { return nil }
        switch Duration.parseConfig(text) {
        case .valid(let duration):
            return duration
        case .missingUnit:
            error(
                "expected \(Self.durationExpectation), got \(describe(field.value)); write e.g. \"\(text.trimmingWhitespace())s\"",
                at: field.value, path: field.path)
        case .outOfRange:
            error("duration \(describe(field.value)) is too large", at: field.value, path: field.path)
        case .invalid:
            error("expected \(Self.durationExpectation), got \(describe(field.value))", at: field.value, path: field.path)
        }
        return nil
    }

    /// One of an enum's words; the message lists them all.
    mutating func choice<Choice: RawRepresentable & CaseIterable>(
        _ field: Field?, _ type: Choice.Type = Choice.self
    ) -> Choice? where Choice.RawValue == String {
        guard let field else { return nil }
        let words = Choice.allCases.map(\.rawValue)
        guard let text = scalarText(field, expected: "one of \(words.listed)") else { return nil }
        if let value = Choice(rawValue: text) { return value }
        error(
            "expected one of \(words.listed); got \(describe(field.value))\(Suggestion.didYouMean(text, in: words))",
            at: field.value, path: field.path)
        return nil
    }

    /// A list of scalars. `[]` is an empty list.
    mutating func stringList(_ field: Field?, element: String = "a string") -> [String]? {
        guard let field else { return nil }
        guard case .sequence(let sequence) = field.value else {
            var message = "expected a list, got \(describe(field.value))"
            if case .scalar(let scalar) = field.value, !isNull(field.value) {
                message += "; write [\(Self.clip(scalar.string))]"
            }
            error(message, at: field.value, path: field.path)
            return nil
        }
        var values: [String] = []
        var failed = false
        for (index, item) in sequence.enumerated() {
            let itemPath = "\(field.path)[\(index)]"
            record(item, at: itemPath)
            guard case .scalar(let scalar) = item, !isNull(item) else {
                error("expected \(element), got \(describe(item))", at: item, path: itemPath)
                failed = true
                continue
            }
            values.append(scalar.string)
        }
        return failed ? nil : values
    }

    /// A mapping of scalar keys to scalar values (heartbeat addresses by server).
    mutating func stringMap(_ field: Field?, value expected: String) -> [String: String]? {
        guard let field else { return nil }
        guard case .mapping(let mapping) = field.value else {
            error(
                "expected a mapping of server names to \(expected)s, got \(describe(field.value))",
                at: field.value, path: field.path)
            return nil
        }
        var values: [String: String] = [:]
        for (keyNode, value) in mapping {
            guard case .scalar(let keyScalar) = keyNode, !isNull(keyNode) else {
                error("keys must be server names, got \(describe(keyNode))", at: keyNode, path: field.path)
                continue
            }
            let entryPath = Self.join(field.path, keyScalar.string)
            if let mark = keyNode.mark {
                sourceMap.keys[entryPath] = .init(line: mark.line, column: mark.column)
            }
            record(value, at: entryPath)
            guard case .scalar(let scalar) = value, !isNull(value) else {
                error("expected \(expected), got \(describe(value))", at: value, path: entryPath)
                continue
            }
            values[keyScalar.string] = scalar.string
        }
        return values
    }

    /// The items of a list section (`servers:`, `groups:`, …) with their paths.
    mutating func items(_ field: Field?, of what: String) -> [(node: Node, path: String)] {
        guard let field else { return [] }
        guard case .sequence(let sequence) = field.value else {
            error("expected a list of \(what), got \(describe(field.value))", at: field.value, path: field.path)
            return []
        }
        return sequence.enumerated().map { index, node in
            let itemPath = "\(field.path)[\(index)]"
            record(node, at: itemPath)
            return (node, itemPath)
        }
    }

    /// The text of `key` in a mapping node without reporting anything (to pick the schema of
    /// a typed element before checking its keys).
    func peek(_ node: Node, _ key: String) -> String? {
        guard case .mapping(let mapping) = node, let value = mapping[key],
            case .scalar(let scalar) = value, !isNull(value)
        else { return nil }
        return scalar.string
    }
}
