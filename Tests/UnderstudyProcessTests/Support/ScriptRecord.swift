import Foundation

/// One run of a start or stop script, as the script itself recorded it.
struct ScriptRecord: CustomStringConvertible {
    /// `start` or `stop`.
    var action: String
    /// `CLP_SERVER_LOCAL`: the server whose daemon ran the script.
    var server: String
    var pid: Int32
    /// Wall-clock time of the run, in nanoseconds since 1970.
    var nanoseconds: UInt64
    var variables: [String: String]

    subscript(variable: String) -> String? { variables[variable] }

    var time: Date { Date(timeIntervalSince1970: Double(nanoseconds) / 1e9) }
    var isStart: Bool { action == "start" }
    var isStop: Bool { action == "stop" }
    var resource: String { variables["CLP_RESOURCENAME"] ?? "?" }
    var group: String { variables["CLP_GROUPNAME"] ?? "?" }

    var description: String {
        let shown = ["CLP_EVENT", "CLP_FACTOR", "CLP_SERVER", "CLP_PRIORITY", "CLP_LASTACTION", "CLP_PID"]
            .compactMap { key in variables[key].map { "\(key)=\($0)" } }
        return "\(action) \(resource) on \(server) [\(shown.joined(separator: " "))]"
    }

    /// Parses `action \t server \t pid \t nanoseconds \t NAME=value \t …` lines.
    static func parse(_ text: String) -> [ScriptRecord] {
        text.split(separator: "\n").compactMap { line -> ScriptRecord? in
            let fields = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            guard fields.count >= 4, let pid = Int32(fields[2]), let nanoseconds = UInt64(fields[3]) else { return nil }
            var variables: [String: String] = [:]
            for field in fields.dropFirst(4) {
                guard let equals = field.firstIndex(of: "=") else { continue }
                variables[String(field[..<equals])] = String(field[field.index(after: equals)...])
            }
            return ScriptRecord(action: fields[0], server: fields[1], pid: pid, nanoseconds: nanoseconds, variables: variables)
        }
    }
}

extension Array where Element == ScriptRecord {
    var starts: [ScriptRecord] { filter(\.isStart) }
    var stops: [ScriptRecord] { filter(\.isStop) }
    func on(_ server: String) -> [ScriptRecord] { filter { $0.server == server } }
    func of(_ resource: String) -> [ScriptRecord] { filter { $0.resource == resource } }
    var summary: String { isEmpty ? "(no script runs)" : map(\.description).joined(separator: "\n") }
}
