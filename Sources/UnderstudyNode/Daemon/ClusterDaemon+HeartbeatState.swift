import Foundation
import Synchronization
import UnderstudyEngine
import UnderstudyModel

/// The sender's side of the heartbeat state, shared between the daemon actor (which numbers
/// the state as it sends heartbeats) and the control channel (which answers peers' fetches
/// without waiting for the actor: a busy actor must not starve the peers of its state).
final class HeartbeatStateBoard: Sendable {
    private let outbox = Mutex(HeartbeatOutbox())

    func prepare(_ heartbeat: Heartbeat) -> HeartbeatDatagram {
        outbox.withLock { $0.prepare(heartbeat) }
    }

    func reply(since: UInt64, of instance: ServerInstance) -> HeartbeatDatagram? {
        outbox.withLock { $0.reply(since: since, of: instance) }
    }
}

// The daemon's side of HeartbeatStateSync.swift: heartbeats go out as datagrams of a core,
// the state's number and sometimes a delta; a datagram whose state this server does not have
// waits while the state is fetched from its sender over the control channel.

extension ClusterDaemon {
    /// A fetch not answered in this long is asked again (by the next datagram that needs it):
    /// two heartbeat intervals, at least 100 ms.
    static func stateFetchTimeout(_ timing: TimingSettings) -> Duration {
        max(timing.heartbeatInterval * 2, .milliseconds(100))
    }

    /// The payload of `heartbeat`: through the outbox (which numbers the state and decides
    /// what travels inline) and the binary encoding.
    func heartbeatPayload(_ heartbeat: Heartbeat) -> [UInt8] {
        heartbeatEncoder.encode(outbox.prepare(heartbeat))
    }

    /// Asks `sender` for the state its heartbeats speak of, from number `since` of run
    /// `instance`; the answer (its last heartbeat with the delta) goes to the Engine as a
    /// heartbeat received on `path`. The answer is decoded off the actor (it can be large).
    func fetchHeartbeatState(from sender: ServerName, since: UInt64, of instance: ServerInstance, path: String) {
        Task {
            let response = await self.askPeer(sender, .heartbeatState(since: since, of: instance))
            guard case .heartbeatState(let encoded) = response else {
                if case .result(let result) = response { self.logger.info("heartbeat state of \(sender): \(result.message)") }
                return
            }
            let decoded = await Task.detached { Self.decodeStateAnswer(encoded, from: sender) }.value
            switch decoded {
            case .success(let reply): await self.stateArrived(reply, path: path)
            case .failure(let error): self.logger.warning("heartbeat state from \(sender): unreadable answer dropped (\(error))")
            }
        }
    }

    nonisolated static func decodeStateAnswer(_ encoded: String, from sender: ServerName) -> Result<HeartbeatDatagram, DaemonStartError> {
        do {
            guard let bytes = Data(base64Encoded: encoded) else { throw DaemonStartError("not base64") }
            let parsed = try HeartbeatWire.decode(Array(bytes))
            guard parsed.core.sender == sender else { throw DaemonStartError("it speaks for \(parsed.core.sender)") }
            return .success(try HeartbeatWire.datagram(from: parsed) { _, _, _ in true })
        } catch let error as DaemonStartError {
            return .failure(error)
        } catch {
            return .failure(DaemonStartError("\(error)"))
        }
    }

    func stateArrived(_ reply: HeartbeatDatagram, path: String) {
        let time = max(now(), lastTick)
        if let heartbeat = inbox.receive(reply: reply, now: time) { deliver(heartbeat, path: path, at: time) }
    }

    /// The answer to a peer's fetch, when `request` is one: this server's last heartbeat with
    /// the delta from the state the peer has. Answered on the control channel's task, without
    /// the actor.
    nonisolated static func answerStateFetch(_ request: ControlRequest, board: HeartbeatStateBoard) -> [UInt8]? {
        guard request.payload.starts(with: stateFetchPrefix),
            case .heartbeatState(let since, let instance)? = try? WireJSON.decode(PeerRequest.self, from: request.payload)
        else { return nil }
        guard let reply = board.reply(since: since, of: instance) else {
            return WireJSON.encode(PeerResponse.result(CommandResult(.failed, "no heartbeat sent yet")))
        }
        let payload = HeartbeatWire.encode(reply, inlineJSON: reply.inline.map { WireJSON.encode($0) })
        return WireJSON.encode(PeerResponse.heartbeatState(Data(payload).base64EncodedString()))
    }

    /// How a fetch request's JSON starts (`WireJSON` sorts keys; the case is the only one).
    nonisolated static let stateFetchPrefix = Array(#"{"heartbeatState""#.utf8)
}
