import ArgumentParser
import Foundation
import UnderstudyEngine
import UnderstudyModel

// clpdown and clpstdn (reference §2.6, the ESMPRO/AC guide ch. 5): stop the cluster service
// cleanly — stop scripts see CLP_FACTOR=SERVERSHUTDOWN / CLUSTERSHUTDOWN and CLP_LASTACTION=
// HALT / REBOOT — and then shut down or reboot the OS through `cluster.os-commands`. Use them
// instead of the OS's shutdown: only they let UPS software be told what comes next.

/// What clpdown and clpstdn share: `-r`, the wait, and the stop they ask for.
struct ShutdownOptions: ParsableArguments {
    @Flag(name: .customShort("r"), help: "Reboot instead of shutting down.") var reboot = false
    @Option(name: .long, help: "Seconds to wait for the groups to stop.") var timeout: Int = 3600

    var verb: String { reboot ? "Reboot" : "Shutdown" }

    /// Stop the service with `factor` (stop scripts see HALT or REBOOT), then the OS.
    func stopService(_ factor: StopFactor) -> ClusterCommand {
        .stopService(factor: factor, lastAction: reboot ? .reboot : .halt, then: .os(reboot ? .reboot : .shutdown))
    }
}

struct ClpDown: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "clpdown",
        abstract: "Stop the cluster service on this server (its groups fail over), then shut down or reboot the OS.",
        helpNames: [.long])

    @OptionGroup var shutdown: ShutdownOptions
    @Option(name: .customShort("h"), help: ArgumentHelp("The server to shut down (default: the local one).", valueName: "server"))
    var server: String?
    @OptionGroup var daemon: DaemonOptions

    func run() async throws {
        let client = DaemonClient(daemon)
        let identity = try await client.identity()
        let target = server ?? identity.server
        guard identity.servers.contains(target) else {
            fail("Unknown server \(target) (servers: \(identity.servers.joined(separator: ", "))).", code: .badUsage)
        }
        try await client.command(shutdown.stopService(.serverShutdown), at: target == identity.server ? nil : target)
        print("\(shutdown.verb) \(target) : Command accepted; stopping its groups.")
        let stopped = await ServiceStopWait(client: client, localServer: identity.server).wait(
            for: [target], timeout: .seconds(shutdown.timeout))
        guard stopped else {
            fail("Timed out after \(shutdown.timeout) s waiting for the cluster service on \(target) to stop.", code: .failed)
        }
        print("\(shutdown.verb) \(target) : Command succeeded.")
    }
}

struct ClpStdn: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "clpstdn",
        abstract: "Shut down the whole cluster: stop every server's groups (nothing fails over), then shut down or reboot every server.",
        helpNames: [.long])

    @OptionGroup var shutdown: ShutdownOptions
    @Option(
        name: .customShort("h"),
        help: ArgumentHelp(
            "For compatibility: the server that first receives the cluster stop (default: the local one); every server shuts down either way.",
            valueName: "server"))
    var server: String?
    @OptionGroup var daemon: DaemonOptions

    func run() async throws {
        let client = DaemonClient(daemon)
        let identity = try await client.identity()
        if let server, !identity.servers.contains(server) {
            fail("Unknown server \(server) (servers: \(identity.servers.joined(separator: ", "))).", code: .badUsage)
        }
        let via = server.flatMap { $0 == identity.server ? nil : $0 }
        // First the master: from now on no group fails over while servers stop one by one.
        switch try await client.send(.command(.beginClusterStop, target: via)) {
        case .result(let result) where result.code == .success:
            break
        case .result(let result):
            fail("Cluster shutdown: \(result.message)", code: result.code)
        default:
            fail("Cluster shutdown: unexpected answer from the daemon.", code: .failed)
        }
        let command = shutdown.stopService(.clusterShutdown)
        // The other servers first, this one last: its OS going down must not cut the requests.
        var asked: [ServerName] = []
        for target in identity.servers.filter({ $0 != identity.server }) + [identity.server] {
            let response = await client.trySend(.command(command, target: target == identity.server ? nil : target))
            switch response {
            case .result(let result) where result.code == .success:
                print("\(shutdown.verb) \(target) : Command accepted.")
                asked.append(target)
            case .result(let result) where result.code == .unreachable:
                // A server that is already down needs no shutdown.
                print("\(shutdown.verb) \(target) : not reachable (already down?); skipped.")
            case .result(let result):
                printError("\(shutdown.verb) \(target) : \(result.message)")
            default:
                printError("\(shutdown.verb) \(target) : no answer from the local daemon.")
            }
        }
        let stopped = await ServiceStopWait(client: client, localServer: identity.server).wait(
            for: asked, timeout: .seconds(shutdown.timeout))
        guard stopped else {
            fail("Timed out after \(shutdown.timeout) s waiting for the cluster service to stop everywhere.", code: .failed)
        }
        print("Cluster shutdown : Command succeeded (\(shutdown.verb.lowercased()) of \(asked.joined(separator: ", "))).")
    }
}

/// Waits until the cluster service has stopped on each server: its status says so, or it no
/// longer answers (its OS is already going down).
struct ServiceStopWait {
    let client: DaemonClient
    let localServer: ServerName

    func wait(for servers: [ServerName], timeout: Duration) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        var pending = servers
        while !pending.isEmpty {
            var still: [ServerName] = []
            for server in pending {
                let response = await client.trySend(.status(target: server == localServer ? nil : server), timeout: .seconds(5))
                switch response {
                case .status(let snapshot) where snapshot.service != "stopped":
                    still.append(server)
                case .result(let result) where result.code != .unreachable:
                    still.append(server)
                default:
                    // Stopped, or gone with its OS.
                    break
                }
            }
            pending = still
            if pending.isEmpty { return true }
            if ContinuousClock.now >= deadline { return false }
            try? await Task.sleep(for: .milliseconds(200))
        }
        return true
    }
}
