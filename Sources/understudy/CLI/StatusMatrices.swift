import Foundation
import UnderstudyEngine
import UnderstudyModel

/// `clpstat -n` and `-p` (reference §2.1): each server's own view of every server's heartbeat
/// paths (or network-partition resolvers), one block per viewing server, `[on serverN : Status]`
/// as the product prints it, then a row per server with one mark per path: `o` normal, `x`
/// error, `-` not used or unknown.
enum StatusMatrices {
    /// One server's view: its status as the asking server sees it, and its own snapshot (nil
    /// when it did not answer).
    struct View {
        var server: ServerName
        var status: ServerStatus?
        var snapshot: ClusterStatusSnapshot?
    }

    enum Kind {
        case heartbeats, networkPartition

        var title: String { self == .heartbeats ? "HEARTBEAT RESOURCE STATUS" : "NETWORK PARTITION RESOLUTION STATUS" }
        var prefix: String { self == .heartbeats ? "HB" : "NP" }

        func lines(_ server: ClusterStatusSnapshot.ServerLine) -> [ClusterStatusSnapshot.HeartbeatLine] {
            self == .heartbeats ? server.heartbeats : server.networkPartition
        }
    }

    static func mark(_ status: HeartbeatStatus?) -> String {
        switch status {
        case .normal: return "o"
        case .caution, .error: return "x"
        default: return "-"
        }
    }

    static func render(_ kind: Kind, cluster: String, servers: [ServerName], local: ServerName, paths: [String], views: [View]) -> String {
        var out = [StatusRendering.banner(kind.title), "  Cluster : \(cluster)"]
        for (index, server) in servers.enumerated() {
            out.append("  \(server == local ? "*" : " ")server\(index) : \(server)")
        }
        for (index, path) in paths.enumerated() { out.append("  \(kind.prefix)\(index) : \(path)") }
        for view in views {
            let index = servers.firstIndex(of: view.server) ?? 0
            out.append("")
            out.append("  [on server\(index) : \(view.status?.rawValue ?? ServerStatus.unknown.rawValue)]")
            guard let snapshot = view.snapshot else {
                out.append("    (no answer: its view is not known)")
                continue
            }
            let header = paths.indices.map { String($0).padding(toLength: 3, withPad: " ", startingAt: 0) }.joined()
            out.append("      \(kind.prefix)    \(header)".trimmingTrailingSpaces())
            out.append("  " + String(repeating: "-", count: 67))
            for (row, server) in servers.enumerated() {
                let line = snapshot.servers.first { $0.name == server }
                let marks = paths.map { path in
                    mark(line.flatMap { kind.lines($0).first { $0.name == path }?.status }).padding(
                        toLength: 3, withPad: " ", startingAt: 0)
                }
                out.append("    server\(row) : \(marks.joined())".trimmingTrailingSpaces())
            }
        }
        out.append(StatusRendering.rule)
        return out.joined(separator: "\n")
    }

    /// The same as JSON: `{cluster, kind, paths, views: [{server, status, answered, rows: {server: {path: status}}}]}`.
    static func json(_ kind: Kind, cluster: String, paths: [String], views: [View]) -> String {
        var rendered: [[String: Any]] = []
        for view in views {
            var rows: [String: [String: String]] = [:]
            for line in view.snapshot?.servers ?? [] {
                var marks: [String: String] = [:]
                for path in kind.lines(line) where paths.contains(path.name) { marks[path.name] = path.status.rawValue }
                rows[line.name] = marks
            }
            rendered.append([
                "server": view.server, "status": view.status?.rawValue ?? ServerStatus.unknown.rawValue,
                "answered": view.snapshot != nil, "rows": rows,
            ])
        }
        let object: [String: Any] = [
            "cluster": cluster, "kind": kind == .heartbeats ? "heartbeat" : "networkPartition", "paths": paths, "views": rendered,
        ]
        guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys]) else { return "{}" }
        return String(decoding: data, as: UTF8.self)
    }
}

/// `clpstat --detail`: every setting of an object of the running configuration, read from the
/// model by reflection (a setting added later shows without touching this file), `Label : value`
/// with labels from the field names. Secret values never show: a field named like a password,
/// secret, token, community or key shows `<redacted>` unless it names a file.
enum ConfigDetail {
    static func lines(of value: Any, indent: Int = 4) -> [String] {
        var out: [(String, String)] = []
        collect(value, label: "", into: &out)
        let width = min(40, max(30, out.map(\.0.count).max() ?? 30))
        return out.map { label, text in
            (String(repeating: " ", count: indent) + label.padding(toLength: width, withPad: " ", startingAt: 0) + ": " + text)
                .trimmingTrailingSpaces()
        }
    }

    static func labelText(_ name: String) -> String {
        var words: [String] = []
        var current = ""
        for character in name {
            if character.isUppercase && !current.isEmpty {
                words.append(current)
                current = ""
            }
            current.append(character)
        }
        if !current.isEmpty { words.append(current) }
        return words.map { $0.prefix(1).uppercased() + $0.dropFirst() }.joined(separator: " ")
    }

    static func isSecret(_ label: String) -> Bool {
        let lower = label.lowercased()
        guard !lower.hasSuffix(" file") && !lower.hasSuffix(" path") && !lower.hasSuffix(" directory") else { return false }
        return ["password", "secret", "token", "community", "passphrase"].contains { lower.contains($0) }
            || lower == "key" || lower.hasSuffix(" key")
    }

    private static func collect(_ value: Any, label: String, into out: inout [(String, String)]) {
        if let scalar = scalarText(value) {
            out.append((label, isSecret(label) ? "<redacted>" : scalar))
            return
        }
        let mirror = Mirror(reflecting: value)
        switch mirror.displayStyle {
        case .optional:
            if let wrapped = mirror.children.first?.value { collect(wrapped, label: label, into: &out) }
        case .collection, .set:
            let items = Array(mirror.children.map(\.value))
            if items.isEmpty {
                out.append((label, "-"))
            } else if let texts = items.map(scalarText) as? [String] {
                out.append((label, isSecret(label) ? "<redacted>" : texts.sorted().joined(separator: ", ")))
            } else {
                for (index, item) in items.enumerated() { collect(item, label: "\(label) [\(index)]", into: &out) }
            }
        case .dictionary:
            let pairs = mirror.children.compactMap { child -> (String, Any)? in
                let pair = Array(Mirror(reflecting: child.value).children)
                guard pair.count == 2 else { return nil }
                return ("\(pair[0].value)", pair[1].value)
            }.sorted { $0.0 < $1.0 }
            if pairs.isEmpty { out.append((label, "-")) }
            for (key, item) in pairs { collect(item, label: label.isEmpty ? key : "\(label) \(key)", into: &out) }
        case .enum:
            if let payload = mirror.children.first {
                let name = payload.label ?? ""
                out.append((label, name))
                collect(payload.value, label: label, into: &out)
            } else {
                out.append((label, "\(value)"))
            }
        default:
            let children = mirror.children.filter { $0.label != nil }
            for child in children {
                guard let name = child.label else { continue }
                let sub = labelText(name)
                collect(child.value, label: label.isEmpty ? sub : "\(label) / \(sub)", into: &out)
            }
        }
    }

    static func scalarText(_ value: Any) -> String? {
        switch value {
        case let text as String: return text.isEmpty ? "-" : text
        case let flag as Bool: return flag ? "On" : "Off"
        case let number as Int: return String(number)
        case let number as Int32: return String(number)
        case let number as UInt16: return String(number)
        case let number as UInt64: return String(number)
        case let number as Double: return String(number)
        case let duration as Duration: return duration.configText
        default:
            if let raw = value as? any RawRepresentable, Mirror(reflecting: value).displayStyle == .enum {
                return "\(raw.rawValue)"
            }
            return nil
        }
    }
}
