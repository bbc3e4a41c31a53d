import Foundation

/// A deterministic text of any value of the configuration model, and the differences between
/// two values, both by reflection (`Mirror`), so that a field added to the model later is
/// covered without touching this file.
///
/// Used for the configuration's identity (its hash: the same model gives the same text on
/// every server, whatever the file's comments, spacing, key order or folder) and for the
/// reflection method of a change (`ConfigReflection`). Dictionaries and sets are written in
/// sorted order (Swift's hashing is seeded per process, so their iteration order is not);
/// strings that start with the configuration's folder are written relative to it, so two
/// servers that keep the file in different folders still agree.
public enum CanonicalForm {
    /// The canonical text of a whole configuration (its `sourcePath` left out, paths in its
    /// folder written as `<config>/…`).
    public static func text(of config: ClusterConfig) -> String {
        var copy = config
        copy.sourcePath = ""
        let folder = config.sourcePath.isEmpty ? nil : (config.sourcePath as NSString).deletingLastPathComponent
        return render(copy, folder: folder)
    }

    /// The canonical text of one value; strings under `folder` are written relative to it.
    public static func render(_ value: Any, folder: String? = nil) -> String {
        var output = ""
        write(value, folder: folder, into: &output)
        return output
    }

    private static func write(_ value: Any, folder: String?, into output: inout String) {
        if let text = value as? String {
            output += quoted(relative(text, to: folder))
            return
        }
        if let duration = value as? Duration {
            let parts = duration.components
            output += "\(parts.seconds)s\(parts.attoseconds)as"
            return
        }
        let mirror = Mirror(reflecting: value)
        switch mirror.displayStyle {
        case .optional:
            if let first = mirror.children.first {
                write(first.value, folder: folder, into: &output)
            } else {
                output += "nil"
            }
        case .collection, .tuple:
            output += "["
            for (index, child) in mirror.children.enumerated() {
                if index > 0 { output += "," }
                if let label = child.label, mirror.displayStyle == .tuple, !label.hasPrefix(".") { output += label + ":" }
                write(child.value, folder: folder, into: &output)
            }
            output += "]"
        case .dictionary, .set:
            // Each child of a dictionary is a (key, value) tuple: sorting the rendered entries
            // gives one order whatever the process's hash seed.
            let entries = mirror.children.map { render($0.value, folder: folder) }.sorted()
            output += "{" + entries.joined(separator: ",") + "}"
        case .enum:
            output += "." + enumCase(of: value, mirror: mirror)
            if let payload = mirror.children.first {
                output += "("
                write(payload.value, folder: folder, into: &output)
                output += ")"
            }
        case .struct, .class:
            output += "{"
            for (index, child) in mirror.children.enumerated() {
                if index > 0 { output += "," }
                output += (child.label ?? "_") + ":"
                write(child.value, folder: folder, into: &output)
            }
            output += "}"
        default:
            // Numbers, booleans, raw-value enums without payload.
            output += String(describing: value)
        }
    }

    /// The case name of an enum value (for a case with a payload, the mirror's child label).
    static func enumCase(of value: Any, mirror: Mirror) -> String {
        if let label = mirror.children.first?.label { return label }
        return String(describing: value)
    }

    private static func relative(_ text: String, to folder: String?) -> String {
        guard let folder, !folder.isEmpty, text.hasPrefix(folder + "/") else { return text }
        return "<config>/" + text.dropFirst(folder.count + 1)
    }

    private static func quoted(_ text: String) -> String {
        var result = "\""
        for character in text.unicodeScalars {
            switch character {
            case "\"": result += "\\\""
            case "\\": result += "\\\\"
            case "\n": result += "\\n"
            default: result.unicodeScalars.append(character)
            }
        }
        return result + "\""
    }

    // MARK: - Differences

    /// One field that differs between two values: its path (`interval`, `settings.exec.timeout`)
    /// and both canonical texts.
    public struct Difference: Sendable, Equatable {
        public var path: String
        public var before: String
        public var after: String
    }

    /// The leaf fields that differ between two values of one type, by path. Structs are
    /// compared field by field, enums of the same case by their payload, everything else
    /// (arrays, dictionaries, numbers, strings) as a whole.
    public static func differences(_ before: Any, _ after: Any, path: String = "", folder: String? = nil) -> [Difference] {
        let old = render(before, folder: folder)
        let new = render(after, folder: folder)
        guard old != new else { return [] }
        // Durations and strings are values, not structures to descend into.
        if before is Duration || before is String {
            return [Difference(path: path, before: old, after: new)]
        }
        let left = Mirror(reflecting: before)
        let right = Mirror(reflecting: after)
        if left.displayStyle == .struct, right.displayStyle == .struct {
            let rightChildren = Array(right.children)
            var found: [Difference] = []
            for (index, child) in left.children.enumerated() where index < rightChildren.count {
                let label = child.label ?? "\(index)"
                let childPath = path.isEmpty ? label : path + "." + label
                found += differences(child.value, rightChildren[index].value, path: childPath, folder: folder)
            }
            if !found.isEmpty { return found }
        }
        if left.displayStyle == .enum, right.displayStyle == .enum,
            let leftPayload = left.children.first, let rightPayload = right.children.first,
            enumCase(of: before, mirror: left) == enumCase(of: after, mirror: right)
        {
            let label = enumCase(of: before, mirror: left)
            let found = differences(
                leftPayload.value, rightPayload.value, path: path.isEmpty ? label : path + "." + label, folder: folder)
            if !found.isEmpty { return found }
        }
        return [Difference(path: path, before: old, after: new)]
    }
}
