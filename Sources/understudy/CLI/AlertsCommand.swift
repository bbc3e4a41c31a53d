import ArgumentParser
import Foundation
import UnderstudyEngine
import UnderstudyModel
import UnderstudyNode
import UnderstudyWeb

/// `understudy alerts`: the cluster's alert log — every server's entries, exchanged between
/// the servers — merged by time, as the local daemon holds it. A server that is down or cut
/// off still shows what it wrote until it was last heard; it is named on standard error.
struct AlertsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "alerts", abstract: "Show the cluster's alert log (every server's alerts, merged by time).",
        discussion: """
            Lines read as in alert.log: time (UTC), server, level, [module id], message. Every server keeps every \
            server's alerts (they are exchanged over the control channel), so this works on any server, and shows \
            the alerts of servers that are down now up to when they were last heard; those servers are named on \
            standard error. --follow prints new entries as they arrive until interrupted.
            """)

    enum Level: String, ExpressibleByArgument, CaseIterable {
        case info, warning, error
        var rank: Int { Level.allCases.firstIndex(of: self) ?? 0 }
    }

    @Option(name: [.customShort("n"), .customLong("lines")], help: "How many of the newest entries (1–5000).") var lines = 100
    @Option(help: "Only entries of this level and above: info, warning, error.") var level: Level = .info
    @Option(help: "Only entries at or after this UTC time (ISO 8601, a prefix is enough: 2026-12-06T10).") var since: String?
    @Option(name: .customShort("h"), help: ArgumentHelp("Only this server's alerts.", valueName: "server")) var server: String?
    @Flag(name: [.customShort("f"), .long], help: "Keep printing new entries as they arrive (every second) until interrupted.")
    var follow = false
    @Flag(help: "One JSON object per line: time, server, level, module, id, message.") var json = false
    @OptionGroup var daemon: DaemonOptions

    /// How often --follow asks the local daemon.
    static let followPeriod: Duration = .seconds(1)

    func validate() throws {
        guard (1...5000).contains(lines) else { throw ValidationError("-n must be 1 to 5000.") }
    }

    func run() async throws {
        let client = DaemonClient(daemon)
        if let server {
            let servers = try await client.identity().servers
            guard servers.contains(server) else { fail("Unknown server \(server).", code: .badUsage) }
        }
        var (entries, notConnected) = try await read(client)
        // What is there now counts as shown, printed or not: --follow prints only arrivals.
        var shown = Set(entries)
        for entry in entries.filter(wanted).suffix(lines) { show(entry, &shown) }
        let named = notConnected.filter { server == nil || $0 == server }
        if !named.isEmpty {
            printError("Not connected now (their alerts are shown up to when they were last heard): \(named.joined(separator: ", ")).")
        }
        guard follow else { return }
        while !Task.isCancelled {
            try await Task.sleep(for: Self.followPeriod)
            (entries, notConnected) = try await read(client)
            // Only the newest 5000 can come back: remembering more would only grow.
            shown.formIntersection(entries)
            for entry in entries.filter(wanted) where !shown.contains(entry) { show(entry, &shown) }
        }
    }

    func read(_ client: DaemonClient) async throws -> ([ReplicatedAlert], [ServerName]) {
        switch try await client.send(.clusterAlerts(limit: 5000, origin: server), timeout: .seconds(15)) {
        case .clusterAlerts(let entries, let notConnected): return (entries, notConnected)
        case .result(let result): fail(result.message, code: .failed)
        default: fail("Unexpected answer from the daemon.", code: .failed)
        }
    }

    func wanted(_ entry: ReplicatedAlert) -> Bool {
        guard let parsed = AlertLogReader.parse(entry.line) else { return false }
        return Self.rank(of: parsed.level) >= level.rank && (since.map { parsed.time >= $0 } ?? true)
    }

    func show(_ entry: ReplicatedAlert, _ shown: inout Set<ReplicatedAlert>) {
        shown.insert(entry)
        let text = json ? AlertLogReader.parse(entry.line).map(Self.jsonLine) ?? entry.line : entry.line
        // Unbuffered: --follow into a pipe shows each entry as it arrives.
        FileHandle.standardOutput.write(Data((text + "\n").utf8))
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
