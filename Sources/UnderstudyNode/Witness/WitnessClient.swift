import Foundation
import Synchronization
import UnderstudyEngine
import UnderstudyModel

/// A server's side of the witness protocol (`WitnessMessage`): seals a request with the
/// cluster key, this server's name and boot id and the next sequence number of its kind,
/// POSTs it and takes only a reply that authenticates, comes from the witness and answers
/// this very request (its boot id and sequence echoed).
final class WitnessClient: Sendable {
    let host: String
    let port: Int
    /// HTTPS: the context, or why it could not be made (every exchange then fails with it).
    let tls: Result<WitnessTLSClient, WitnessExchangeError>?
    let cluster: String
    let me: ServerName
    let bootID: UInt64
    private let codec: DatagramCodec
    private let nextSequence: Mutex<UInt64>

    init(
        endpoint: WitnessEndpoint, cluster: String, me: ServerName, key: ClusterKey, bootID: UInt64, firstSequence: UInt64 = 1
    ) {
        host = endpoint.host
        port = endpoint.port
        tls = endpoint.tls.map { settings in
            Result { () throws(WitnessExchangeError) in try WitnessTLSClient(settings, host: endpoint.host) }
        }
        self.cluster = cluster
        self.me = me
        self.bootID = bootID
        codec = DatagramCodec(key: key)
        nextSequence = Mutex(firstSequence)
    }

    var upcomingSequence: UInt64 { nextSequence.withLock { $0 } }

    var endpoint: String { WitnessEndpoint(host: host, port: port, tls: tls == nil ? nil : WitnessTLS()).displayText }

    /// Sends `request` and returns the witness's reply; throws when the witness cannot be
    /// reached in `timeout`, refuses the request or answers something that does not verify.
    func exchange(_ request: WitnessMessage.Request, timeout: Duration) async throws -> WitnessMessage.Reply {
        let sequence = nextSequence.withLock { value in
            defer { value &+= 1 }
            return value
        }
        let sealed: [UInt8]
        do {
            sealed = try codec.seal(payload: WitnessMessage.encode(request), sender: me, bootID: bootID, sequence: sequence)
        } catch {
            throw WitnessExchangeError("cannot seal the request: \(error)")
        }
        let path = "/v1/clusters/\(cluster)/\(request.kind.pathComponent)"
        let secure: WitnessTLSClient?
        switch tls {
        case nil: secure = nil
        case .success(let client): secure = client
        case .failure(let error): throw error
        }
        let (status, body) = try await WitnessHTTPClient.post(
            host: host, port: port, path: path, body: sealed, timeout: timeout, tls: secure)
        guard status == 200 else {
            let text = String(decoding: body.prefix(200), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            throw WitnessExchangeError("the witness \(endpoint) answered HTTP \(status): \(text)")
        }
        let opened: DatagramCodec.Opened
        switch codec.authenticate(body) {
        case .failure(let reason):
            throw WitnessExchangeError("the answer of the witness \(endpoint) does not authenticate (\(reason)): another key?")
        case .success(let authenticated):
            opened = authenticated
        }
        guard opened.sender == WitnessMessage.witnessSender else {
            throw WitnessExchangeError("the answer of the witness \(endpoint) comes from \(opened.sender)")
        }
        guard case .success(let reply) = WitnessMessage.parseReply(opened.payload) else {
            throw WitnessExchangeError("the answer of the witness \(endpoint) is malformed")
        }
        guard reply.kind == request.kind, reply.requestBootID == bootID, reply.requestSequence == sequence else {
            throw WitnessExchangeError("the answer of the witness \(endpoint) is not the answer to this request (replayed?)")
        }
        return reply
    }
}
