import Foundation
import UnderstudyEngine
import UnderstudyModel
import UnderstudyNode

/// Where the API sends its requests: the daemon's own request path, the one the `clp*`
/// commands reach through the local socket (`ClusterDaemon.request`).
public protocol DaemonPort: Sendable {
    func request(_ request: LocalRequest) async -> LocalResponse
    /// Writes an alert-log entry (failed logins, API operations).
    func recordAlert(_ entry: LogEntry) async
    /// The alert-log lines written from now on.
    func alertLines() async -> AsyncStream<String>
}

extension ClusterDaemon: DaemonPort {}

/// The POST operations: each becomes the `ClusterCommand`s the equivalent `clp*` command
/// sends, in the same order, so the Engine accepts and refuses them alike. Operations are
/// accepted asynchronously, as EXPRESSCLUSTER's: success means accepted; clients poll.
public struct OperationRunner: Sendable {
    let daemon: any DaemonPort
    let config: ClusterConfig
    let me: ServerName

    public init(daemon: any DaemonPort, config: ClusterConfig, me: ServerName) {
        self.daemon = daemon
        self.config = config
        self.me = me
    }

    public func run(_ operation: ApiOperation, body: JSONValue) async -> ApiReply {
        let fields: Fields
        switch Fields.read(body) {
        case .success(let read): fields = read
        case .failure(let reply): return reply
        }
        switch operation {
        case .toratioSet:
            // clptoratio -r RATIO [-t TIME]; "ratio" is required (a missing one is not a reset).
            guard fields.value("ratio") != nil else { return .error(.badRequest, "toratio/set needs \"ratio\": 1 to 10000.") }
            let ratio: Int
            switch fields.integer("ratio", default: 1, range: TimeoutRatio.allowedRatios) {
            case .success(let value): ratio = value
            case .failure(let reply): return reply
            }
            let time: String?
            switch fields.value("time") {
            case nil, .null?: time = nil
            case .string(let text)?: time = text.isEmpty ? nil : text
            default: return .error(.badRequest, "time must be a string such as \"90m\", \"3h\" or \"4d\".")
            }
            return await setTimeoutRatio(ratio: ratio, time: time)
        case .toratioReset:
            return await setTimeoutRatio(ratio: 1, time: nil)
        case .serverDummyFailure:
            return .error(.notSupported, "Server dummy failures are not supported by this version of Understudy.")
        case .cluster(let verb):
            return await cluster(verb)
        case .server(let name, let verb):
            guard config.server(named: name) != nil else { return .error(.notFound, "Server \(name.prefix(80)) does not exist.") }
            let command: ClusterCommand
            switch verb {
            case .start: command = .startService
            case .stop: command = .stopService(factor: .serverShutdown, lastAction: .none, then: .stayStopped)
            case .reboot: command = .stopService(factor: .serverShutdown, lastAction: .reboot, then: .os(.reboot))
            case .shutdown: command = .stopService(factor: .serverShutdown, lastAction: .halt, then: .os(.shutdown))
            }
            return reply(await send(command, at: name))
        case .group(let name, let verb):
            return await group(name, verb, fields: fields)
        case .resource(let name, let start):
            guard config.resource(named: name) != nil else { return .error(.notFound, "Resource \(name.prefix(80)) does not exist.") }
            let target: String?
            switch fields.server("target", config: config) {
            case .success(let value): target = value
            case .failure(let reply): return reply
            }
            return reply(await send(start ? .startResource(name) : .stopResource(name), at: target))
        case .monitor(let name, let verb):
            guard config.monitors.contains(where: { $0.name == name }) else {
                return .error(.notFound, "Monitor \(name.prefix(80)) does not exist.")
            }
            let target: String?
            switch fields.server("target", config: config) {
            case .success(let value): target = value
            case .failure(let reply): return reply
            }
            let control: MonitorControl
            switch verb {
            case .suspend: control = .suspend
            case .resume: control = .resume
            case .dummyFailureStart: control = .dummyFailureOn
            case .dummyFailureStop: control = .dummyFailureOff
            }
            return reply(await send(.monitor(control, monitor: name, server: nil), at: target))
        case .runScript:
            guard let script = fields.string("script"), !script.isEmpty else {
                return .error(.badRequest, "scripts/run needs \"script\": the name of a script in the rexec folder.")
            }
            let timeout: Int
            switch fields.integer("timeout", default: 180, range: 1...86_400) {
            case .success(let value): timeout = value
            case .failure(let reply): return reply
            }
            // target may be a server's name or one of its addresses (clprexec -h).
            let target = fields.string("target")
            // A path names the same file in the server's rexec folder (as clprexec --script).
            let name = (script as NSString).lastPathComponent
            return reply(await send(.runScript(name: name, timeoutSeconds: timeout), at: target))
        }
    }

    // MARK: - Cluster

    /// The setting is stamped here: the API runs in the daemon of this server.
    func setTimeoutRatio(ratio: Int, time: String?) async -> ApiReply {
        let now = ClusterDaemon.unixMilliseconds()
        switch TimeoutRatio.requested(ratio: ratio, time: time, now: now) {
        case .failure(let error): return .error(.badRequest, "Invalid timeout ratio: \(error).")
        case .success(let setting): return reply(await send(.setTimeoutRatio(setting), at: nil))
        }
    }

    func cluster(_ verb: ApiOperation.ClusterVerb) async -> ApiReply {
        switch verb {
        case .suspend: return reply(await send(.suspendCluster, at: nil))
        case .resume: return reply(await send(.resumeCluster, at: nil))
        case .start:
            // clpcl -s -a: every server whose service is not running.
            var failures: [String] = []
            for server in config.serverNames {
                if await service(of: server) == "running" { continue }
                let result = await send(.startService, at: server)
                if result.code != .success { failures.append("\(server): \(result.message)") }
            }
            return failures.isEmpty ? .ok() : .error(.failed, failures.joined(separator: " "))
        case .stop, .reboot, .shutdown:
            // clpcl -t -a / clpstdn: tell the master first (nothing fails over while servers
            // stop one by one), then the other servers, this one last.
            let begin = await send(.beginClusterStop, at: nil)
            guard begin.code == .success else { return reply(begin) }
            let command: ClusterCommand
            switch verb {
            case .reboot: command = .stopService(factor: .clusterShutdown, lastAction: .reboot, then: .os(.reboot))
            case .shutdown: command = .stopService(factor: .clusterShutdown, lastAction: .halt, then: .os(.shutdown))
            default: command = .stopService(factor: .clusterShutdown, lastAction: .none, then: .stayStopped)
            }
            var failures: [String] = []
            for server in config.serverNames.filter({ $0 != me }) + [me] {
                if verb == .stop, await service(of: server) == "stopped" { continue }
                let result = await send(command, at: server)
                // A server already down needs no stop.
                if result.code != .success && !(result.code == .failed && result.message.contains("not reachable")) {
                    failures.append("\(server): \(result.message)")
                }
            }
            return failures.isEmpty ? .ok() : .error(.failed, failures.joined(separator: " "))
        }
    }

    // MARK: - Groups

    func group(_ name: String?, _ verb: ApiOperation.GroupVerb, fields: Fields) async -> ApiReply {
        let target: String?
        switch fields.server("target", config: config) {
        case .success(let value): target = value
        case .failure(let reply): return reply
        }
        guard let name else {
            // /groups/start, /groups/stop: every group not already so (as clpgrp -s / -t).
            guard case .status(let snapshot) = await daemon.request(.status(target: nil)) else {
                return .error(.unreachable, "The daemon did not answer with its status.")
            }
            var failures: [String] = []
            for line in snapshot.groups {
                if verb == .start && line.status == .online { continue }
                if verb == .stop && line.status == .offline { continue }
                let result = await send(verb == .start ? .startGroup(line.name, on: target) : .stopGroup(line.name), at: nil)
                if result.code != .success { failures.append("\(line.name): \(result.message)") }
            }
            return failures.isEmpty ? .ok() : .error(.failed, failures.joined(separator: " "))
        }
        guard config.groups.contains(where: { $0.name == name }) else {
            return .error(.notFound, "Group \(name.prefix(80)) does not exist.")
        }
        switch verb {
        case .start: return reply(await send(.startGroup(name, on: target), at: nil))
        case .stop: return reply(await send(.stopGroup(name), at: nil))
        case .move: return reply(await send(.moveGroup(name, to: target), at: nil))
        }
    }

    // MARK: - Sending

    func send(_ command: ClusterCommand, at server: String?) async -> CommandResult {
        let target = server == me ? nil : server
        switch await daemon.request(.command(command, target: target)) {
        case .result(let result): return result
        default: return CommandResult(.failed, "unexpected answer from the daemon")
        }
    }

    func service(of server: ServerName) async -> String? {
        if case .status(let snapshot) = await daemon.request(.status(target: server == me ? nil : server)) {
            return snapshot.service
        }
        return nil
    }

    func reply(_ result: CommandResult) -> ApiReply {
        result.code == .success ? .ok() : .error(ApiCode(result.code), result.message)
    }
}

/// The fields of a request body (a JSON object; an empty body is an empty object).
struct Fields: Sendable {
    let values: [(String, JSONValue)]

    static func read(_ body: JSONValue) -> Result<Fields, ApiReply> {
        switch body {
        case .object(let fields): return .success(Fields(values: fields))
        case .null: return .success(Fields(values: []))
        default: return .failure(.error(.badRequest, "The request body must be a JSON object."))
        }
    }

    func value(_ key: String) -> JSONValue? { values.first { $0.0 == key }?.1 }

    func string(_ key: String) -> String? {
        switch value(key) {
        case .string(let text)?: return text
        default: return nil
        }
    }

    /// An optional server name (or nothing); an unknown server is a bad request.
    func server(_ key: String, config: ClusterConfig) -> Result<String?, ApiReply> {
        switch value(key) {
        case nil, .null?: return .success(nil)
        case .string(let name)? where name.isEmpty: return .success(nil)
        case .string(let name)?:
            guard config.server(named: name) != nil else {
                return .failure(
                    .error(
                        .badRequest, "\(key): unknown server \(name.prefix(80)) (servers: \(config.serverNames.joined(separator: ", "))).")
                )
            }
            return .success(name)
        default: return .failure(.error(.badRequest, "\(key) must be a server name (a string)."))
        }
    }

    /// A whole number, or a string of one (some clients send numbers as strings).
    func integer(_ key: String, default fallback: Int, range: ClosedRange<Int>) -> Result<Int, ApiReply> {
        let number: Int?
        switch value(key) {
        case nil, .null?: return .success(fallback)
        case .number(let value)?: number = value == value.rounded() && abs(value) < 1e9 ? Int(value) : nil
        case .string(let text)?: number = Int(text)
        default: number = nil
        }
        guard let number, range.contains(number) else {
            return .failure(.error(.badRequest, "\(key) must be a whole number from \(range.lowerBound) to \(range.upperBound)."))
        }
        return .success(number)
    }
}
