import ArgumentParser
import Foundation
import UnderstudyEngine
import UnderstudyModel
import UnderstudyNode

/// `clplogcmd`: a script's own alert (reference §2.10), written by the local daemon as an
/// event of module `logcmd`.
struct ClpLogCmd: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "clplogcmd", abstract: "Write a message to the alert log, syslog, mail or SNMP trap destinations.",
        discussion: """
            Without --alert, --syslog, --mail or --trap the message is an event like any other: the alert log \
            and the destinations the alerts.routes of the configuration give module logcmd (by default syslog). \
            With any of them, exactly those: the alert log, and every destination of type syslog, mail or snmp.
            """, helpNames: [.long])

    @Option(name: .customShort("m"), help: ArgumentHelp("The message (one line, at most 511 bytes).", valueName: "message"))
    var message: String
    @Option(name: .customShort("i"), help: ArgumentHelp("The event id (default 1).", valueName: "id")) var id: Int = 1
    @Option(name: .customShort("l"), help: ArgumentHelp("INFO, WARN or ERR (ERROR, WARNING, any case); default INFO.", valueName: "level"))
    var level: String = "INFO"
    @Flag(name: .long, help: "Write to the alert log.") var alert = false
    @Flag(name: .long, help: "Send to the syslog destinations.") var syslog = false
    @Flag(name: .long, help: "Send to the mail destinations.") var mail = false
    @Flag(name: .long, help: "Send to the SNMP trap destinations.") var trap = false
    @OptionGroup var daemon: DaemonOptions

    func validate() throws {
        guard LogLevel(word: level) != nil else { throw ValidationError("Unknown level \(level) for -l: give INFO, WARN or ERR.") }
        guard id >= 0 else { throw ValidationError("The event id (-i) must not be negative, got \(id).") }
    }

    func run() async throws {
        let chosen = [(alert, "alert"), (syslog, "syslog"), (mail, "mail"), (trap, "snmp")].filter(\.0).map(\.1)
        let request = LogCommandRequest(
            message: message, id: id, level: LogLevel(word: level) ?? .info, outputs: chosen.isEmpty ? nil : chosen)
        switch try await DaemonClient(daemon).send(.logCommand(request)) {
        case .result(let result):
            if result.code != .success { fail(result.message, code: result.code) }
            print(result.message)
        case .status, .identity, .configApply, .configuration, .alerts, .clusterAlerts, .logCollection:
            fail("unexpected answer from the daemon", code: .failed)
        }
    }
}
