import ArgumentParser
import Foundation
import UnderstudyEngine
import UnderstudyModel
import UnderstudyNode

/// Options every command that talks to the local daemon accepts.
struct DaemonOptions: ParsableArguments {
    @Option(
        name: .customLong("state-dir"),
        help: "State directory of the daemon to address (default: $UNDERSTUDY_STATE_DIR, else /run/understudy).")
    var stateDirectory: String?
}

/// Talks to the local daemon over its UNIX socket; maps failures to the documented exit
/// codes (3 = the local daemon is not reachable).
struct DaemonClient {
    let socketPath: String

    init(_ options: DaemonOptions) {
        socketPath = DaemonPaths.socketForCLI(stateDirectory: options.stateDirectory)
    }

    init(socketPath: String) {
        self.socketPath = socketPath
    }

    func send(_ request: LocalRequest, timeout: Duration = .seconds(60)) async throws -> LocalResponse {
        let answer: [UInt8]
        do {
            answer = try await LocalControlClient.request(path: socketPath, payload: WireJSON.encode(request), timeout: timeout)
        } catch {
            fail("\(error)", code: .unreachable)
        }
        do {
            return try WireJSON.decode(LocalResponse.self, from: answer)
        } catch {
            fail("The daemon at \(socketPath) gave an unreadable answer: \(error)", code: .failed)
        }
    }

    /// Like `send`, but nil when the daemon does not answer (instead of exiting): for waits
    /// during which a daemon may go away with its OS.
    func trySend(_ request: LocalRequest, timeout: Duration = .seconds(10)) async -> LocalResponse? {
        guard let answer = try? await LocalControlClient.request(path: socketPath, payload: WireJSON.encode(request), timeout: timeout)
        else { return nil }
        return try? WireJSON.decode(LocalResponse.self, from: answer)
    }

    func status(of target: ServerName? = nil) async throws -> ClusterStatusSnapshot {
        switch try await send(.status(target: target)) {
        case .status(let snapshot): return snapshot
        case .result(let result): fail(result.message, code: result.code)
        case .identity, .configApply, .configuration, .alerts, .clusterAlerts, .logCollection:
            fail("unexpected answer from the daemon", code: .failed)
        }
    }

    func identity() async throws -> (server: ServerName, cluster: String, servers: [ServerName]) {
        switch try await send(.whoami) {
        case .identity(let server, let cluster, let servers): return (server, cluster, servers)
        case .result(let result): fail(result.message, code: result.code)
        case .status, .configApply, .configuration, .alerts, .clusterAlerts, .logCollection:
            fail("unexpected answer from the daemon", code: .failed)
        }
    }

    /// Sends a command; a refusal ends the program with its code and message.
    @discardableResult
    func command(_ command: ClusterCommand, at target: ServerName? = nil) async throws -> CommandResult {
        switch try await send(.command(command, target: target)) {
        case .result(let result):
            if result.code != .success { fail(result.message, code: result.code) }
            return result
        case .status, .identity, .configApply, .configuration, .alerts, .clusterAlerts, .logCollection:
            fail("unexpected answer from the daemon", code: .failed)
        }
    }

    /// Follows an accepted group operation through the local daemon's status until it has
    /// happened (returns), failed (exit 1), was superseded by a later command from any
    /// server (exit 4), or the time is up (exit 1).
    func follow(_ ticket: OperationTicket, timeout: Duration) async throws {
        let deadline = ContinuousClock.now + timeout
        var lostSince: ContinuousClock.Instant?
        while ContinuousClock.now < deadline {
            switch ticket.verdict(in: try await status()) {
            case .pending: lostSince = nil
            case .done(let note):
                if let note { print(note) }
                return
            case .superseded(let reason): fail(reason, code: .inTransition)
            case .lost(let reason):
                // This server may not have caught up with the master that took the command:
                // lost only if it stays so for a few seconds.
                let since = lostSince ?? .now
                lostSince = since
                if since.duration(to: .now) >= .seconds(3) { fail(reason, code: .inTransition) }
            case .failed(let reason): fail(reason, code: .failed)
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        fail("Timed out after \(timeout) waiting for group \(ticket.group) to \(ticket.kind.rawValue).", code: .failed)
    }

    /// Polls the status until `done` says the operation ended (true = success, false =
    /// failure with a message), or the time is up.
    func wait(
        for what: String, timeout: Duration, target: ServerName? = nil,
        _ done: (ClusterStatusSnapshot) -> (finished: Bool, failure: String?)
    ) async throws {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let snapshot = try await status(of: target)
            let verdict = done(snapshot)
            if verdict.finished {
                if let failure = verdict.failure { fail(failure, code: .failed) }
                return
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        fail("Timed out after \(timeout) waiting for \(what).", code: .failed)
    }
}

/// Prints one clear line to standard error and exits with the code.
func fail(_ message: String, code: CommandCode) -> Never {
    FileHandle.standardError.write(Data((message + "\n").utf8))
    Foundation.exit(code.rawValue)
}

func printError(_ message: String) {
    FileHandle.standardError.write(Data((message + "\n").utf8))
}

extension ClusterStatusSnapshot {
    func group(_ name: String) -> GroupLine? { groups.first { $0.name == name } }
    func server(_ name: String) -> ServerLine? { servers.first { $0.name == name } }
}
