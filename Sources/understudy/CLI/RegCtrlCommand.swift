import ArgumentParser
import Foundation
import UnderstudyEngine
import UnderstudyModel
import UnderstudyNode

/// `clpregctrl --get | --clear [-t rc|rm] [-r reboot] [-h SERVER]`: the count of OS reboots
/// by final actions, which `cluster.recovery.max-reboots` limits (reference §3.6), and its
/// reset once the cause is fixed. CLUSTERPRO keeps one count per type (rc: resources, rm:
/// monitors) in its registry; Understudy keeps one count for both, so `-t` names either.
struct ClpRegCtrl: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "clpregctrl", abstract: "Show or clear the count of reboots by final actions.",
        discussion: """
            The count grows with each OS reboot or shutdown a final action makes and stops further ones at \
            cluster.recovery.max-reboots; it resets by itself after reboot-count-reset-after without errors, or here. \
            One count covers resources (rc) and monitors (rm).
            """, helpNames: [.long])

    @Flag(name: [.customShort("g"), .customLong("get")], help: "Show the count.") var get = false
    @Flag(name: [.customShort("c"), .customLong("clear")], help: "Clear the count.") var clear = false
    @Option(name: .customShort("t"), help: ArgumentHelp("The type: rc or rm (one count covers both).", valueName: "type")) var type: String?
    @Option(name: .customShort("r"), help: ArgumentHelp("The registry: reboot.", valueName: "registry")) var registry: String?
    @Option(name: .customShort("h"), help: ArgumentHelp("On this server (default: the local one).", valueName: "server")) var server:
        String?
    @Flag(name: .long, help: "JSON: {server, type, registry, count}.") var json = false
    @OptionGroup var daemon: DaemonOptions

    func validate() throws {
        guard get != clear else { throw ValidationError("Give one of --get (-g) or --clear (-c).") }
        if let type, !["rc", "rm"].contains(type) { throw ValidationError("Unknown type \(type) for -t: give rc or rm.") }
        if let registry, registry != "reboot" { throw ValidationError("Unknown registry \(registry) for -r: the only one is reboot.") }
    }

    func run() async throws {
        let client = DaemonClient(daemon)
        let target: ServerName
        if let server { target = server } else { target = try await client.identity().server }
        let result = try await client.command(.rebootCount(clear: clear), at: server)
        let count = result.message.split(separator: ":").last.map { $0.trimmingCharacters(in: .whitespaces) } ?? "?"
        if json {
            let object: [String: Any] = ["server": target, "type": type ?? "rc,rm", "registry": "reboot", "count": Int(count) ?? -1]
            let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
            print(String(decoding: data, as: UTF8.self))
            return
        }
        print("Command succeeded.(code:0)")
        print(" " + String(repeating: "*", count: 37))
        print(" " + String(repeating: "-", count: 37))
        print("  server : \(target)")
        print("  type : \(type ?? "rc, rm")")
        print("  registry : reboot")
        print("  count : \(count)")
        print(" " + String(repeating: "-", count: 37))
        print(" " + String(repeating: "*", count: 37))
    }
}
