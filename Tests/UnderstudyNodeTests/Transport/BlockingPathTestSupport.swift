import Foundation
import Synchronization
import Testing
import UnderstudyModel
import UnderstudyTestSupport

@testable import UnderstudyNode

/// Helpers for the diskhb and comhb transport tests.
enum BlockingPathTestSupport {
    /// A two-server configuration with `extra` heartbeat entries (YAML list items) after a
    /// lanhb path; 100 ms heartbeats, 1 s timeout.
    static func config(_ extra: String) throws -> ClusterConfig {
        let yaml = """
            cluster:
              name: c1
              secret-file: /etc/understudy/cluster.key
              timing: {heartbeat-interval: 100ms, heartbeat-timeout: 1s}
            servers: [{name: node1}, {name: node2}]
            heartbeats:
              - {name: lan1, type: lanhb, addresses: {node1: 127.0.0.1, node2: 127.0.0.2}}
            \(extra)

            """
        return try ConfigLoader.loadWithWarnings(yaml: yaml, sourcePath: "/tmp/blocking-path-test.yaml", checkFiles: false).config
    }

    static func run(_ arguments: [String]) async -> NetCommandResult {
        await NetCommandRunner().run(arguments, timeout: .seconds(30))
    }
}

/// Collects what a transport delivers and the path events it reports.
final class PathRecorder: Sendable {
    let datagrams = Mutex<[ReceivedDatagram]>([])
    let events = Mutex<[HeartbeatPathEvent]>([])

    var eventSink: @Sendable (HeartbeatPathEvent) -> Void { { [self] event in events.withLock { $0.append(event) } } }

    /// Reads `transport.received` until it ends (close the transport to end it).
    func follow(_ transport: any HeartbeatTransport) -> Task<Void, Never> {
        let stream = transport.received
        return Task { [self] in
            for await datagram in stream { datagrams.withLock { $0.append(datagram) } }
        }
    }

    var count: Int { datagrams.withLock { $0.count } }
    var payloads: [[UInt8]] { datagrams.withLock { $0.map(\.payload) } }
    var failures: Int { events.withLock { $0.filter { if case .failed = $0 { return true } else { return false } }.count } }
    var recoveries: Int { events.withLock { $0.filter { if case .recovered = $0 { return true } else { return false } }.count } }
}

extension HeartbeatTransport {
    /// Sends a heartbeat at once (as the daemon sends state changes).
    func sendNow(_ payload: [UInt8]) async {
        await send(payload, at: nil, freshUntil: .now + .seconds(5), sent: nil)
    }
}
