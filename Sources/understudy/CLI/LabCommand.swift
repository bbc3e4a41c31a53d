import ArgumentParser
import Foundation
import UnderstudyLab

/// `understudy lab up|down|status|kill|freeze|resume|start|link|partition|heal|netem|safety`: the
/// network-namespace lab by hand (docs/lab.md). Needs root.
struct LabCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lab", abstract: "Build a network-namespace test lab and inject faults into it (root; see docs/lab.md).",
        subcommands: [
            LabUp.self, LabDown.self, LabStatus.self, LabSignal.self, LabStart.self, LabLinkCommand.self, LabPartition.self,
            LabHeal.self, LabNetem.self, LabSafety.self, LabRecorder.self, LabDiskWriter.self, LabProbe.self, LabFailoverBench.self,
            LabIdleWatch.self, LabFootprint.self,
            LabMonitorBench.self,
        ])
}

struct LabPrefixOption: ParsableArguments {
    @Option(name: .long, help: "The lab's name prefix (lowercase letters and digits).") var prefix: String = "uslab"

    func attach() throws -> Lab {
        do { return try Lab.attach(prefix: prefix) } catch { throw ValidationError("\(error)") }
    }
}

/// The understudy binary running now (the daemons run the same one).
private func currentBinary() -> String {
    (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
}

private func fail(_ error: any Error) -> ExitCode {
    FileHandle.standardError.write(Data("lab: \(error)\n".utf8))
    return ExitCode(1)
}

struct LabUp: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "up", abstract: "Build the lab and start a daemon in every server namespace; it runs until `lab down`.")
    @OptionGroup var lab: LabPrefixOption
    @Option(name: .long, help: "Servers (1 to 32).") var servers: Int = 2
    @Flag(name: .long, help: "Add a second interconnect link (10.201.X.0/24) with its own lanhb.") var secondLink = false
    @Option(name: .long, help: "X in 10.200.X.0/24 (and 10.201.X.0/24).") var subnet: Int = 0
    @Option(name: .long, help: "Heartbeat interval.") var interval: String = "200ms"
    @Option(name: .long, help: "Heartbeat timeout in milliseconds.") var timeoutMs: Int = 1500
    @Option(name: .long, help: "Network-partition action: none, stop-service, shutdown, reboot.") var npAction: String = "none"
    @Option(
        name: .long,
        help:
            "Partition resolution: auto (ping for two servers, else majority), majority, ping (the client is the target), http (httpnp, the witness runs on the client)."
    )
    var resolution: String = "auto"
    @Option(name: .long, help: "Ping timeout of the pingnp resolution.") var pingTimeout: String = "1s"
    @Flag(name: .long, help: "Add a witnesshb path through a witness server on the client.") var witnessHeartbeat = false
    @Flag(name: .long, help: "Build the network only; start no daemon.") var noDaemons = false

    func run() async throws {
        var spec = LabSpec(
            prefix: lab.prefix, servers: servers, secondLink: secondLink, subnet: subnet, heartbeatInterval: interval,
            heartbeatTimeoutMilliseconds: timeoutMs, partitionAction: npAction, resolution: resolution, pingTimeout: pingTimeout)
        if witnessHeartbeat { spec.extraHeartbeats = spec.witnessHeartbeatEntry() }
        let witness = witnessHeartbeat || resolution == "http"
        do {
            let built = try await Lab.up(spec, binary: currentBinary(), startDaemons: !noDaemons && !witness)
            built.keepRunning = true
            if witness {
                // The witness first: daemons that start before it lose their first questions.
                try built.startWitness()
                if !noDaemons {
                    for server in spec.serverNames { try built.startDaemon(server) }
                    for server in spec.serverNames { try await built.waitForSocket(server) }
                }
            }
            print(built.report())
            print("stop it with: understudy lab down --prefix \(spec.prefix)")
        } catch {
            throw fail(error)
        }
    }
}

struct LabDown: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "down", abstract: "Remove the lab (or the leftovers of a crashed run with the same prefix).")
    @OptionGroup var lab: LabPrefixOption

    func run() throws {
        let removed = Lab.destroy(prefix: lab.prefix)
        print(removed.isEmpty ? "nothing of lab \(lab.prefix) was left" : "removed " + removed.joined(separator: ", "))
    }
}

struct LabStatus: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "status", abstract: "Namespaces, addresses, link states, daemon pids.")
    @OptionGroup var lab: LabPrefixOption

    func run() throws { print(try lab.attach().report()) }
}

struct LabSignal: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "signal", abstract: "kill -9 (kill), freeze (SIGSTOP) or resume (SIGCONT) the daemon of a server.")
    @OptionGroup var lab: LabPrefixOption
    @Argument(help: "kill, freeze or resume.") var action: String
    @Argument(help: "The server (node1, node2, …).") var server: String

    func run() throws {
        let attached = try lab.attach()
        do {
            switch action {
            case "kill": try attached.kill9(server)
            case "freeze": try attached.freeze(server)
            case "resume": try attached.resume(server)
            default: throw ValidationError("the action is kill, freeze or resume, not '\(action)'")
            }
        } catch let error as ValidationError { throw error } catch { throw fail(error) }
    }
}

struct LabStart: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "start", abstract: "(Re)start the daemon of a server after a kill.")
    @OptionGroup var lab: LabPrefixOption
    @Argument(help: "The server.") var server: String

    func run() throws {
        do { try lab.attach().startDaemon(server) } catch { throw fail(error) }
    }
}

struct LabLinkCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "link", abstract: "Take a member's link down or up (a pulled cable).")
    @OptionGroup var lab: LabPrefixOption
    @Argument(help: "down or up.") var state: String
    @Argument(help: "A server or client.") var member: String
    @Option(name: .long, help: "public or interconnect.") var link: String = "public"

    func run() throws {
        guard state == "down" || state == "up" else { throw ValidationError("the state is down or up") }
        guard let which = LabLink(rawValue: link) else { throw ValidationError("the link is public or interconnect") }
        do { try lab.attach().setLink(member, which, up: state == "up") } catch { throw fail(error) }
    }
}

struct LabPartition: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "partition", abstract: "Drop all packets between two sets of members (nftables rules).",
        discussion: "Example: understudy lab partition node1 --from node2,node3  (both ways); add --one-way to drop only FROM → TO.")
    @OptionGroup var lab: LabPrefixOption
    @Argument(help: "Members (comma-separated) receiving nothing from --from.") var to: String
    @Option(name: .long, help: "Members (comma-separated) on the other side.") var from: String
    @Flag(name: .long, help: "Drop only packets from --from to the others.") var oneWay = false

    func run() throws {
        let split = { (text: String) in text.split(separator: ",").map(String.init) }
        do { try lab.attach().partition(split(from), split(to), oneWay: oneWay) } catch { throw fail(error) }
    }
}

struct LabHeal: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "heal", abstract: "Remove every partition rule.")
    @OptionGroup var lab: LabPrefixOption

    func run() throws {
        do { try lab.attach().heal() } catch { throw fail(error) }
    }
}

struct LabNetem: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "netem", abstract: "Add loss, delay or duplication to a member's link with tc netem (all zero: remove it).")
    @OptionGroup var lab: LabPrefixOption
    @Argument(help: "A server or client.") var member: String
    @Option(name: .long, help: "public or interconnect.") var link: String = "public"
    @Option(name: .long, help: "outgoing, incoming or both.") var direction: String = "outgoing"
    @Option(name: .long, help: "Loss in percent.") var loss: Double = 0
    @Option(name: .long, help: "Delay in milliseconds.") var delay: Int = 0
    @Option(name: .long, help: "Jitter in milliseconds.") var jitter: Int = 0
    @Option(name: .long, help: "Duplication in percent.") var duplicate: Double = 0

    func run() throws {
        guard let which = LabLink(rawValue: link) else { throw ValidationError("the link is public or interconnect") }
        guard let way = LabDirection(rawValue: direction) else { throw ValidationError("the direction is outgoing, incoming or both") }
        do {
            try lab.attach().netem(
                member, which, direction: way, lossPercent: loss, delayMilliseconds: delay, jitterMilliseconds: jitter,
                duplicatePercent: duplicate)
        } catch { throw fail(error) }
    }
}
