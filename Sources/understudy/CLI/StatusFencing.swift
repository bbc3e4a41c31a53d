import Foundation
import UnderstudyEngine
import UnderstudyModel

/// `clpstat -f` / `--fnc`: forced stop (fencing). The agents and their settings, each server's
/// last periodic check of stopping every other server (asked over the control channel), and
/// the forced stops of the master, which runs them. The product's layout of this view is not
/// known; this follows the other views' banner and `[on serverN : Status]` blocks.
enum StatusFencing {
    static func render(cluster: String, servers: [ServerName], local: ServerName, views: [StatusMatrices.View]) -> String {
        var out = [StatusRendering.banner("FENCING STATUS"), "  Cluster : \(cluster)"]
        for (index, server) in servers.enumerated() {
            out.append("  \(server == local ? "*" : " ")server\(index) : \(server)")
        }
        guard let fencing = views.lazy.compactMap({ $0.snapshot?.fencing }).first else {
            out.append("")
            out.append("  Forced stop is not configured (no fencing: section): lost servers are not stopped before failover.")
            out.append(StatusRendering.rule)
            return out.joined(separator: "\n")
        }
        out.append("")
        for agent in fencing.agents {
            let action = agent.action.map { ", \($0)" } ?? ""
            out.append("  Agent \(agent.name) (\(agent.type)\(action)) : stops \(agent.servers.joined(separator: ", "))")
        }
        out.append(
            "  Timeout \(seconds(fencing.timeoutSeconds)), on failure \(fencing.onFailure), delay \(seconds(fencing.delaySeconds)), check \(fencing.checkIntervalSeconds > 0 ? "every \(seconds(fencing.checkIntervalSeconds))" : "off")"
        )
        for view in views {
            let index = servers.firstIndex(of: view.server) ?? 0
            out.append("")
            out.append("  [on server\(index) : \(view.status?.rawValue ?? ServerStatus.unknown.rawValue)]")
            guard let snapshot = view.snapshot else {
                out.append("    (no answer: its checks are not known)")
                continue
            }
            let checks = snapshot.fencing?.checks ?? []
            if checks.isEmpty {
                out.append("    Checks : none yet\(fencing.checkIntervalSeconds > 0 ? "" : " (periodic checks are off)")")
            }
            for check in checks {
                let state = check.normal ? "Normal" : "Error"
                let detail = check.detail.isEmpty ? "" : " : \(check.detail)"
                out.append("    Check \(check.agent) -> \(check.server) : \(state) (\(seconds(check.secondsAgo)) ago)\(detail)")
            }
            if let unauthenticated = snapshot.unauthenticatedServers {
                out.append("    Present with another cluster key (never judged down) : \(unauthenticated.joined(separator: ", "))")
            }
            if let withoutState = snapshot.withoutStateServers {
                out.append("    Present, state not fetched (never judged down) : \(withoutState.joined(separator: ", "))")
            }
            for stop in snapshot.fencing?.stops ?? [] {
                var line = "    Forced stop of \(stop.server) : \(stop.state.capitalized), attempt \(stop.attempts)"
                line += " (down \(seconds(stop.confirmedSecondsAgo)) ago"
                if let next = stop.nextAttemptInSeconds { line += ", next attempt in \(seconds(next))" }
                line += ")"
                if !stop.detail.isEmpty { line += " : \(stop.detail)" }
                out.append(line)
            }
        }
        out.append(StatusRendering.rule)
        return out.joined(separator: "\n")
    }

    static func json(cluster: String, views: [StatusMatrices.View]) -> String {
        struct ServerFencing: Encodable {
            var server: ServerName
            var status: String?
            var answered: Bool
            var fencing: ClusterStatusSnapshot.FencingLine?
            var unauthenticatedServers: [ServerName]?
            var withoutStateServers: [ServerName]?
        }
        struct Document: Encodable {
            var cluster: String
            var servers: [ServerFencing]
        }
        let document = Document(
            cluster: cluster,
            servers: views.map {
                ServerFencing(
                    server: $0.server, status: $0.status?.rawValue, answered: $0.snapshot != nil, fencing: $0.snapshot?.fencing,
                    unauthenticatedServers: $0.snapshot?.unauthenticatedServers, withoutStateServers: $0.snapshot?.withoutStateServers)
            })
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return (try? encoder.encode(document)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    }

    static func seconds(_ value: Double) -> String {
        value < 10 && value != value.rounded() ? String(format: "%.1fs", value) : "\(Int(value.rounded()))s"
    }
}
