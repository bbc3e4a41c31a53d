import Foundation
import UnderstudyModel

/// The `ipmi` agent for one server: `ipmitool` over LAN to that server's BMC.
///
/// The password stays in its file (`-f`); it is read here only to make sure no detail or log
/// line can carry it. The session asks for OPERATOR privilege (`-L OPERATOR`), the least that
/// may control the chassis: an OPERATOR or ADMINISTRATOR account works. `-v` makes ipmitool
/// say why a session failed (a wrong password reads "RAKP 2 HMAC is invalid", a BMC that does
/// not answer "Get Auth Capabilities error").
struct IPMIFencing: Sendable {
    var agentName: String
    var agent: IPMIAgent
    var server: String
    var bmc: BMCEndpoint
    /// `bmc.passwordFile`, relative paths taken from the configuration folder.
    var passwordFile: String
    var ipmitool: String
    /// Put before the chassis command (tests: `-C 3` for a simulator without cipher suite 17).
    var extraArguments: [String]
    var environment: [String: String]
    /// Time between two reads of the power state after `power off`.
    var pollInterval: Duration = .milliseconds(500)

    var endpoint: String { bmc.address.contains(":") ? "[\(bmc.address)]:\(bmc.port)" : "\(bmc.address):\(bmc.port)" }

    /// The chassis command of an action, as ipmitool spells it.
    static func command(_ action: IPMIAgent.Action) -> String {
        switch action {
        case .powerOff: "off"
        case .powerCycle: "cycle"
        case .reset: "reset"
        case .nmi: "diag"
        }
    }

    /// The full command line (no password on it: only the file's path).
    func arguments(_ chassis: [String]) -> [String] {
        var arguments = [ipmitool, "-I", agent.interface, "-H", bmc.address, "-p", String(bmc.port)]
        if !bmc.user.isEmpty { arguments += ["-U", bmc.user] }
        arguments += ["-f", passwordFile, "-L", "OPERATOR", "-v"]
        if let suite = agent.cipherSuite, agent.interface == "lanplus" { arguments += ["-C", String(suite)] }
        arguments += extraArguments + ["chassis"] + chassis
        return arguments
    }

    /// Mode 0: the BMC answers with a power state.
    func check(until deadline: ContinuousClock.Instant) async -> FencingAttempt {
        let password: String
        switch prepare() {
        case .success(let text): password = text
        case .failure(let problem): return FencingAttempt(succeeded: false, detail: problem.text)
        }
        switch await powerState(until: deadline, password: password) {
        case .success(let state): return FencingAttempt(succeeded: true, detail: "BMC \(endpoint) answers: power \(state)")
        case .failure(let problem): return FencingAttempt(succeeded: false, detail: problem.text)
        }
    }

    /// Mode 1: the action; for power-off, the power state read back until it is off.
    func stop(until deadline: ContinuousClock.Instant) async -> FencingAttempt {
        let password: String
        switch prepare() {
        case .success(let text): password = text
        case .failure(let problem): return FencingAttempt(succeeded: false, detail: problem.text)
        }
        let verb = Self.command(agent.action)
        let started = ContinuousClock.now
        let sent = await FencingCommand(arguments: arguments(["power", verb]), environment: environment, mergeError: false)
            .run(until: deadline)
        guard sent.succeeded else {
            return FencingAttempt(succeeded: false, detail: describe(sent, doing: "chassis power \(verb)", password: password).text)
        }
        guard agent.action == .powerOff else {
            // Cycle, reset and NMI leave the power on (or turn it on again): accepted is done.
            let state: String
            switch await powerState(until: deadline, password: password) {
            case .success(let power): state = "power state now \(power)"
            case .failure(let problem): state = "power state not read back: \(problem.text)"
            }
            return FencingAttempt(succeeded: true, detail: "BMC \(endpoint) accepted chassis power \(verb); \(state)")
        }
        // The last power state read, and what went wrong with a later read (a read cut by
        // the deadline must not hide that the BMC kept saying "on").
        var lastState: String?
        var lastProblem: String?
        while true {
            switch await powerState(until: deadline, password: password) {
            case .success("off"):
                let took = ContinuousClock.now - started
                return FencingAttempt(
                    succeeded: true, detail: "BMC \(endpoint) powered the server off (read back off after \(took.fencingText))")
            case .success(let state):
                lastState = state
                lastProblem = nil
            case .failure(let problem): lastProblem = problem.text
            }
            let next = ContinuousClock.now + pollInterval
            guard next < deadline, !Task.isCancelled else { break }
            try? await Task.sleep(until: next, clock: .continuous)
        }
        let took = (ContinuousClock.now - started).fencingText
        let reading = [lastState.map { "still \($0) after \(took)" }, lastProblem].compactMap { $0 }.joined(separator: "; then ")
        return FencingAttempt(
            succeeded: false,
            detail:
                "BMC \(endpoint) accepted chassis power off but the power state is not off (\(reading.isEmpty ? "not read back" : reading))"
        )
    }

    // MARK: - Reading the power state

    struct Problem: Error {
        var text: String
    }

    func powerState(until deadline: ContinuousClock.Instant, password: String) async -> Result<String, Problem> {
        let answer = await FencingCommand(arguments: arguments(["power", "status"]), environment: environment, mergeError: false)
            .run(until: deadline)
        guard answer.succeeded else { return .failure(describe(answer, doing: "chassis power status", password: password)) }
        if let state = Self.parsePowerState(answer.output) { return .success(state) }
        let line = Self.firstLine(answer.output) ?? "nothing"
        return .failure(Problem(text: "BMC \(endpoint) answered without a power state: \(redact(line, password))"))
    }

    /// "Chassis Power is on" → "on".
    static func parsePowerState(_ output: String) -> String? {
        for line in output.split(whereSeparator: \.isNewline) {
            let words = line.split(separator: " ")
            if words.count == 4, words[0] == "Chassis", words[1] == "Power", words[2] == "is" {
                return words[3].lowercased()
            }
        }
        return nil
    }

    // MARK: - Failures

    /// Lines ipmitool prints under `-v` on every session, failed or not.
    static let noise = [
        "Loading IANA PEN Registry", "Running Get VSO Capabilities", "Invalid completion code received", "Discovered IPMB address",
        "Get HPM.x Capabilities", "Unable to Get Channel Cipher Suites", "Password:",
    ]

    /// The lines of ipmitool's standard error that say something about this run.
    static func meaningfulLines(_ text: String) -> [String] {
        text.split(whereSeparator: \.isNewline).map { line in
            var line = line.trimmingCharacters(in: .whitespaces)
            if line.hasPrefix("> ") { line.removeFirst(2) }
            return line
        }.filter { line in !line.isEmpty && !noise.contains { line.hasPrefix($0) } }
    }

    static func firstLine(_ text: String) -> String? {
        text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.first { !$0.isEmpty }
    }

    enum Cause: Equatable {
        case authentication, privilege, noAnswer, other
    }

    /// What ipmitool's messages say went wrong.
    static func cause(_ lines: [String]) -> Cause {
        let text = lines.joined(separator: "\n").lowercased()
        let authentication = [
            "rakp 2 hmac is invalid", "rakp 2 message indicates an error", "unauthorized name", "invalid user name",
            "activate session command failed", "invalid session id", "rakp 4 message indicates an error",
            "unable to open password file", "unable to read password",
        ]
        if authentication.contains(where: text.contains) { return .authentication }
        if text.contains("insufficient privilege") { return .privilege }
        let silence = [
            "get auth capabilities error", "no response", "unable to establish", "could not open socket", "address lookup",
            "timeout",
        ]
        if silence.contains(where: text.contains) { return .noAnswer }
        return .other
    }

    func describe(_ result: FencingCommand.Result, doing what: String, password: String) -> Problem {
        let lines = Self.meaningfulLines(result.error)
        let said = (lines.first ?? Self.firstLine(result.output)).map { ": " + Self.clip(redact($0, password)) } ?? ""
        switch result.ending {
        case .launchFailed(let reason):
            return Problem(text: "ipmitool cannot run (\(redact(reason, password)))")
        case .timedOut:
            return Problem(text: "no result from BMC \(endpoint) for \(what) in \(result.elapsed.fencingText) (ipmitool killed)\(said)")
        case .cancelled:
            return Problem(text: "\(what) at BMC \(endpoint) cancelled")
        case .exited(let code):
            switch Self.cause(lines) {
            case .authentication:
                let account = bmc.user.isEmpty ? "the anonymous account" : "user \(bmc.user)"
                return Problem(text: "authentication failed at BMC \(endpoint) for \(account)\(said)")
            case .privilege:
                return Problem(
                    text: "BMC \(endpoint): user \(bmc.user) lacks the privilege for \(what) (OPERATOR or ADMINISTRATOR needed)\(said)")
            case .noAnswer:
                return Problem(text: "no answer from BMC \(endpoint)\(said)")
            case .other:
                return Problem(text: "\(what) failed at BMC \(endpoint) (ipmitool exit \(code))\(said)")
            }
        }
    }

    /// The password, wherever it might appear, as `****`.
    func redact(_ text: String, _ password: String) -> String {
        guard !password.isEmpty else { return text }
        return text.replacingOccurrences(of: password, with: "****")
    }

    static func clip(_ line: String, to limit: Int = 200) -> String {
        line.count <= limit ? line : String(line.prefix(limit)) + "…"
    }

    /// ipmitool's interfaces that reach a BMC over the network. Every other one (`open`,
    /// `imb`, `bmc`, `free` …) talks to the BMC of the machine it runs on, whatever `-H`
    /// says: a forced stop through it would power off the server running it.
    static let networkInterfaces: Set = ["lanplus", "lan"]

    /// Checks the interface, then reads the password (to redact).
    func prepare() -> Result<String, Problem> {
        guard Self.networkInterfaces.contains(agent.interface) else {
            return .failure(
                Problem(
                    text:
                        "interface \(agent.interface) is not IPMI over LAN (lanplus or lan): ipmitool would act on this server's own BMC"
                ))
        }
        return readPassword()
    }

    /// The password as ipmitool reads it (the file's first line), to redact; a file that is
    /// missing or unreadable is reported here rather than left to ipmitool, which would fall
    /// back to asking for the password on a terminal.
    func readPassword() -> Result<String, Problem> {
        guard let data = FileManager.default.contents(atPath: passwordFile) else {
            let reason = FileManager.default.fileExists(atPath: passwordFile) ? "cannot be read" : "does not exist"
            return .failure(Problem(text: "password file \(passwordFile) for BMC \(endpoint) \(reason)"))
        }
        let text = String(decoding: data, as: UTF8.self)
        let first = text.split(separator: "\n", omittingEmptySubsequences: false).first.map(String.init) ?? ""
        return .success(first.trimmingCharacters(in: CharacterSet(charactersIn: "\r")))
    }
}

/// What one agent did for one server.
struct FencingAttempt: Sendable, Equatable {
    var succeeded: Bool
    var detail: String
}
