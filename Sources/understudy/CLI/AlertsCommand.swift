import ArgumentParser
import Foundation
import UnderstudyEngine
import UnderstudyModel
import UnderstudyNode
import UnderstudyWeb

/// `understudy alerts`: the alert log of every server (or one), merged by time, as the
/// WebManager's alert view shows it. Each server is asked over the control channel; a server
/// that does not answer is named on standard error.
struct AlertsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "alerts", abstract: "Show the alert log of every server, merged by time.",
        discussion: """
            Lines read as in alert.log: time (UTC), server, level, [module id], message. Servers that do not \
            answer (down, cut off) are named on standard error; the others are shown.
            """)

    enum Level: String, ExpressibleByArgument, CaseIterable {
        case info, warning, error
        var rank: Int { Level.allCases.firstIndex(of: self) ?? 0 }
    }

    @Option(name: [.customShort("n"), .customLong("lines")], help: "How many of the newest entries (1–5000).") var lines = 100
    @Option(help: "Only entries of this level and above: info, warning, error.") var level: Level = .info
    @Option(help: "Only entries at or after this UTC time (ISO 8601, a prefix is enough: 2026-12-06T10).") var since: String?
    @Option(name: .customShort("h"), help: ArgumentHelp("Only this server's log.", valueName: "server")) var server: String?
    @Flag(help: "One JSON object per line: time, server, level, module, id, message.") var json = false
    @OptionGroup var daemon: DaemonOptions

    func validate() throws {
        guard (1...5000).contains(lines) else { throw ValidationError("-n must be 1 to 5000.") }
    }

    func run() async throws {
        let client = DaemonClient(daemon)
        let servers: [String]
        if let server {
            servers = [server]
        } else {
            servers = try await client.identity().servers
        }
        let (entries, unreachable) = await AlertLogReader.merged(servers: servers, limit: 5000) { name in
            guard case .alerts(let lines)? = try? await client.send(.alerts(target: name, limit: 5000), timeout: .seconds(15)) else {
                return nil
            }
            return lines
        }
        let shown = entries.filter { entry in
            Self.rank(of: entry.level) >= level.rank && (since.map { entry.time >= $0 } ?? true)
        }.suffix(lines)
        for entry in shown {
            if json {
                print(Self.jsonLine(entry))
            } else {
                print("\(entry.time) \(entry.server) \(entry.level) [\(entry.module) \(entry.id)] \(entry.message)")
            }
        }
        if !unreachable.isEmpty {
            printError("Not answering (their alerts are not shown): \(unreachable.joined(separator: ", ")).")
        }
        if let server, unreachable == [server] { fail("\(server) did not answer.", code: .unreachable) }
    }

    static func rank(of level: String) -> Int {
        switch level {
        case LogLevel.error.rawValue: return Level.error.rank
        case LogLevel.warning.rawValue: return Level.warning.rank
        default: return Level.info.rank
        }
    }

    static func jsonLine(_ entry: AlertLogReader.Entry) -> String {
        let object: [String: Any] = [
            "time": entry.time, "server": entry.server, "level": entry.level, "module": entry.module, "id": entry.id,
            "message": entry.message,
        ]
        guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) else { return "{}" }
        return String(decoding: data, as: UTF8.self)
    }
}
