import Foundation
import UnderstudyNode

/// Reads the alert log the daemon writes (`STATE/alert.log`, rotated to `.1`, `.2`, …):
/// one line per event, `TIME SERVER LEVEL [MODULE ID] MESSAGE`.
public enum AlertLogReader {
    public struct Entry: Sendable, Equatable {
        public var time: String
        public var server: String
        public var level: String
        public var module: String
        public var id: Int
        public var message: String

        public var json: JSONValue {
            .object([
                ("time", .string(time)), ("server", .string(server)), ("level", .string(level)), ("module", .string(module)),
                ("id", .int(id)), ("message", .string(message)),
            ])
        }
    }

    /// One line; nil when it is not an alert line.
    public static func parse(_ line: String) -> Entry? {
        let parts = line.split(separator: " ", maxSplits: 3, omittingEmptySubsequences: false)
        guard parts.count == 4, parts[3].hasPrefix("[") else { return nil }
        let rest = parts[3].dropFirst()
        guard let close = rest.firstIndex(of: "]") else { return nil }
        let tag = rest[..<close].split(separator: " ")
        guard tag.count == 2, let id = Int(tag[1]) else { return nil }
        let message = rest[rest.index(after: close)...].drop { $0 == " " }
        return Entry(
            time: String(parts[0]), server: String(parts[1]), level: String(parts[2]), module: String(tag[0]), id: id,
            message: String(message))
    }

    /// The newest `limit` entries, oldest first, from the log and its rotated generations.
    public static func read(path: String, limit: Int, generations: Int = 3) -> [Entry] {
        // Lines that are not alert lines are few; read a little more so `limit` entries remain.
        let lines = AlertLogFile.lastLines(path: path, limit: limit + limit / 10 + 10, generations: generations)
        return Array(lines.compactMap(parse).suffix(limit))
    }
}
