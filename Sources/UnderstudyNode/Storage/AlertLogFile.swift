import Foundation

/// Reading back `alert.log` and its rotated generations (`alert.log.1` … the oldest): the
/// newest lines, oldest first. What the API shows and what a peer answers when asked for this
/// server's alerts.
public enum AlertLogFile {
    public static func lastLines(path: String, limit: Int, generations: Int = 3) -> [String] {
        guard limit > 0 else { return [] }
        var lines: [String] = []
        for generation in 0...generations {
            let file = generation == 0 ? path : "\(path).\(generation)"
            guard let data = FileManager.default.contents(atPath: file) else { continue }
            lines = String(decoding: data, as: UTF8.self).split(separator: "\n").map(String.init) + lines
            if lines.count >= limit { break }
        }
        return Array(lines.suffix(limit))
    }
}
