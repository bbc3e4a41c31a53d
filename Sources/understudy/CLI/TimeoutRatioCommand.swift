import ArgumentParser
import Foundation
import UnderstudyEngine
import UnderstudyModel
import UnderstudyNode

/// `clptoratio`: multiply the heartbeat and monitor timeouts of the whole cluster for a
/// while (a maintenance window, a known slow period), reset them, or show the ratio.
struct ClpToRatio: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "clptoratio", abstract: "Extend (multiply) the heartbeat and monitor timeouts for a while, reset them, or show them.",
        discussion: """
            The setting is made on the local server and reaches the others with its next heartbeat; every server \
            takes the newest. TIME is minutes, hours or days (90m, 3h, 4d), at most 30 days; without -t the \
            ratio stays until clptoratio -i.
            """, helpNames: [.long])

    @Option(name: .customShort("r"), help: ArgumentHelp("The ratio, 1 to 10000 (1 resets).", valueName: "ratio")) var ratio: Int?
    @Option(name: .customShort("t"), help: ArgumentHelp("How long it lasts: 90m, 3h, 4d (at most 30 days).", valueName: "time"))
    var time: String?
    @Flag(name: .customShort("i"), help: "Reset the ratio to 1 (the configured timeouts).") var reset = false
    @Flag(name: .customShort("s"), help: "Show the ratio in force and each server's.") var show = false
    @OptionGroup var daemon: DaemonOptions

    func validate() throws {
        guard [ratio != nil, reset, show].filter({ $0 }).count == 1 else {
            throw ValidationError("Give exactly one of -r RATIO, -i, -s.")
        }
        if time != nil && ratio == nil { throw ValidationError("-t needs -r RATIO.") }
    }

    func run() async throws {
        let client = DaemonClient(daemon)
        if show {
            print(Self.render(try await client.status()))
            return
        }
        let now = ClusterDaemon.unixMilliseconds()
        switch TimeoutRatio.requested(ratio: reset ? 1 : ratio ?? 1, time: reset ? nil : time, now: now) {
        case .failure(let error):
            fail("Invalid timeout ratio: \(error).", code: .badUsage)
        case .success(let setting):
            let result = try await client.command(.setTimeoutRatio(setting))
            print(result.message)
        }
    }

    /// `present toratio : N` first, as EXPRESSCLUSTER prints it (scripts read that line).
    static func render(_ snapshot: ClusterStatusSnapshot) -> String {
        guard let line = snapshot.timeoutRatio else { return "present toratio : 1" }
        var out = ["present toratio : \(line.ratio)"]
        if line.ratio != 1 {
            if let ends = line.expiresAt {
                let formatter = ISO8601DateFormatter()
                out.append("valid until     : \(formatter.string(from: Date(timeIntervalSince1970: Double(ends) / 1000)))")
            } else {
                out.append("valid until     : reset (clptoratio -i)")
            }
        }
        out.append("heartbeat timeout : \(line.heartbeatTimeoutMilliseconds) ms on \(snapshot.localServer)")
        for server in snapshot.servers.map(\.name) {
            let ratio = line.perServer[server].map(String.init) ?? "- (not heard)"
            out.append("  \(server) : \(ratio)")
        }
        return out.joined(separator: "\n")
    }
}
