import Foundation
import UnderstudyEngine
import UnderstudyModel
import UnderstudyNode

/// `clprexec` on a host outside the cluster: a client of `cluster.rexec-clients` sends its
/// request straight to the server `-h` names, over the control channel, authenticated with
/// its own key (ControlClients.swift). The key is read from a file, never the command line.
struct RexecOutsideClient {
    static let clientVariable = "UNDERSTUDY_REXEC_CLIENT"
    static let keyFileVariable = "UNDERSTUDY_REXEC_KEY_FILE"

    let name: String
    let keyFile: String
    let key: ClusterKey
    let server: String

    /// Nil when neither a client nor a key file is given (flag or environment): the request
    /// goes through the local daemon, as on a server. Bad combinations end the program (2).
    static func resolve(client: String?, keyFile: String?, server: String?) throws -> RexecOutsideClient? {
        let environment = ProcessInfo.processInfo.environment
        let name = client ?? environment[clientVariable].flatMap { $0.isEmpty ? nil : $0 }
        let file = keyFile ?? environment[keyFileVariable].flatMap { $0.isEmpty ? nil : $0 }
        if name == nil && file == nil { return nil }
        guard let name else { fail("A key file needs --client NAME (or $\(clientVariable)): the client's name.", code: .badUsage) }
        guard let file else {
            fail("--client \(name) needs --key-file FILE (or $\(keyFileVariable)): the client's key.", code: .badUsage)
        }
        guard RexecClient.isValidName(name) else {
            fail(
                "Client name \"\(name.prefix(80))\" must be 1–\(RexecClient.maximumNameLength) letters, digits, '-', '_' or '.'.",
                code: .badUsage)
        }
        guard let server, !server.isEmpty else {
            fail("From outside the cluster, -h SERVER (a server's address or host name) is needed.", code: .badUsage)
        }
        let key: ClusterKey
        do {
            key = try ClusterKey.load(from: file)
        } catch {
            fail(
                "Client \(name): \(String(describing: error).replacingOccurrences(of: "cluster key file", with: "key file")).",
                code: .badUsage)
        }
        return RexecOutsideClient(name: name, keyFile: file, key: key, server: server)
    }

    /// Sends the request and ends the program with the server's answer: exit 0 and "Command
    /// succeeded.", or the server's code and message (a refusal is 1).
    func send(_ request: RexecRequest, port: Int, wait: Int) async -> Never {
        // A script runs up to -w seconds on the server: its answer may take a little longer.
        let seconds = request.permission == .script ? wait + 5 : wait
        let answer: [UInt8]
        do {
            answer = try await ControlClient.request(
                host: server, port: port, key: key, localName: name, payload: WireJSON.encode(request), timeout: .seconds(seconds),
                connectTimeout: .seconds(min(10, seconds)))
        } catch {
            switch error.reason {
            case .authenticationFailed:
                fail(
                    "Server \(server) refused client \(name): the key in \(keyFile) is not the key cluster.rexec-clients gives \(name) there (or \(name) is not a client of the cluster).",
                    code: .failed)
            case .timedOut:
                fail("No answer from \(server) within \(seconds) s.", code: .failed)
            default:
                fail("\(error)", code: .failed)
            }
        }
        let result: CommandResult
        do {
            result = try WireJSON.decode(CommandResult.self, from: answer)
        } catch {
            fail("Server \(server) gave an unreadable answer: \(error)", code: .failed)
        }
        guard result.code == .success else {
            // Exit code 3 means the local daemon; here there is none.
            fail(result.message, code: result.code == .unreachable ? .failed : result.code)
        }
        print("Command succeeded.")
        Foundation.exit(0)
    }
}
