import NIOCore
import NIOPosix
import Testing
import UnderstudyTestSupport

@testable import UnderstudyNode

@Suite("Authenticated TCP control channel")
struct ControlChannelTests {
    private static let echo: @Sendable (ControlRequest) async -> [UInt8] = { request in
        Array("\(request.peerName):".utf8) + request.payload
    }

    /// Starts a server on 127.0.0.1 with an OS-chosen port and closes it however `body` ends.
    private func withServer<Result>(
        key: ClusterKey = TransportTestSupport.key,
        limits: ControlServer.Limits = ControlServer.Limits(),
        handler: @escaping @Sendable (ControlRequest) async -> [UInt8] = echo,
        _ body: (ControlServer) async throws -> Result
    ) async throws -> Result {
        let server = try await ControlServer.start(
            host: "127.0.0.1", port: 0, key: key, localName: "master", limits: limits, handler: handler)
        do {
            let result = try await body(server)
            await server.close()
            return result
        } catch {
            await server.close()
            throw error
        }
    }

    private func request(
        port: Int, key: ClusterKey = TransportTestSupport.key, payload: [UInt8], timeout: Duration = .seconds(30)
    ) async throws -> [UInt8] {
        try await ControlClient.request(host: "127.0.0.1", port: port, key: key, localName: "client-1", payload: payload, timeout: timeout)
    }

    @Test func requestAndResponse() async throws {
        try await withServer { server in
            #expect(server.port != 0)
            let status = try await request(port: server.port, payload: Array("status".utf8))
            #expect(status == Array("client-1:status".utf8))
            let empty = try await request(port: server.port, payload: [])
            #expect(empty == Array("client-1:".utf8))
            let large = [UInt8](repeating: 0x5A, count: 1_000_000)
            let largeAnswer = try await request(port: server.port, payload: large)
            #expect(largeAnswer == Array("client-1:".utf8) + large)
            #expect(await eventually { server.counters.requestsServed == 3 })
            #expect(server.counters.connectionsAccepted == 3)
            #expect(server.counters.totalDropped == 0)
        }
    }

    @Test func concurrentRequestsAreServed() async throws {
        try await withServer { server in
            let port = server.port
            try await withThrowingTaskGroup(of: Void.self) { group in
                for index in 0..<20 {
                    group.addTask {
                        let answer = try await ControlClient.request(
                            host: "127.0.0.1", port: port, key: TransportTestSupport.key, localName: "client-\(index)",
                            payload: [UInt8(index)]
                        )
                        #expect(answer == Array("client-\(index):".utf8) + [UInt8(index)])
                    }
                }
                try await group.waitForAll()
            }
        }
    }

    @Test func wrongKeyClientIsRejected() async throws {
        try await withServer { server in
            let error = await #expect(throws: ControlChannelError.self) {
                _ = try await request(port: server.port, key: TransportTestSupport.otherKey, payload: Array("shutdown".utf8))
            }
            guard case .authenticationFailed = error?.reason else {
                Issue.record("expected authenticationFailed, got \(String(describing: error))")
                return
            }
            #expect(error?.description.contains("127.0.0.1:\(server.port)") == true)
            #expect(await eventually { server.counters.dropped(.badMAC) == 1 })
            #expect(server.counters.requestsServed == 0)
        }
    }

    @Test func garbageOnThePortIsSurvivedAndCounted() async throws {
        try await withServer { server in
            // Random bytes framed as a hello, an absurd frame length, and an unframed HTTP request.
            let probes: [[UInt8]] = [
                [0, 0, 0, 8] + [1, 2, 3, 4, 5, 6, 7, 8],
                [0xFF, 0xFF, 0xFF, 0xFF],
                Array("GET / HTTP/1.1\r\nHost: x\r\n\r\n".utf8),
            ]
            for probe in probes {
                let connection = try await TransportTestSupport.plainTCPConnection(port: server.port)
                try await TransportTestSupport.withClosing(connection) {
                    try await connection.writeAndFlush(connection.allocator.buffer(bytes: probe))
                    // Wait until the server hangs up on us (long: tests beside this one may hold
                    // the pool's threads for seconds).
                    _ = await eventually(within: .seconds(30)) { !connection.isActive }
                }
            }
            #expect(await eventually(within: .seconds(30)) { server.counters.totalDropped == 3 })
            #expect(server.counters.dropped(.badHello) == 1)
            // 0xFFFFFFFF and "GET " (0x47455420, about 1.2 GB) both announce too large a frame.
            #expect(server.counters.dropped(.oversize) == 2)
            let answer = try await request(port: server.port, payload: [42])
            #expect(answer == Array("client-1:".utf8) + [42])
        }
    }

    @Test func clientTimesOutWhenTheHandlerDoesNotAnswer() async throws {
        let slow: @Sendable (ControlRequest) async -> [UInt8] = { _ in
            try? await Task.sleep(for: .seconds(30))
            return []
        }
        try await withServer(handler: slow) { server in
            let started = ContinuousClock.now
            let error = await #expect(throws: ControlChannelError.self) {
                _ = try await request(port: server.port, payload: [1], timeout: .milliseconds(300))
            }
            #expect(error?.reason == .timedOut)
            #expect(ContinuousClock.now - started < .seconds(20))
        }
    }

    @Test func clientTimesOutOnASilentListener() async throws {
        let listener = try await TransportTestSupport.silentTCPListener()
        try await TransportTestSupport.withClosing(listener) {
            let port = try #require(listener.localAddress?.port)
            let started = ContinuousClock.now
            let error = await #expect(throws: ControlChannelError.self) {
                _ = try await request(port: port, payload: [1], timeout: .milliseconds(300))
            }
            #expect(error?.reason == .timedOut)
            #expect(ContinuousClock.now - started < .seconds(20))
        }
    }

    @Test func serverDropsClientsThatStaySilent() async throws {
        try await withServer(limits: ControlServer.Limits(handshakeTimeout: .milliseconds(200))) { server in
            let connection = try await TransportTestSupport.plainTCPConnection(port: server.port)
            try await TransportTestSupport.withClosing(connection) {
                #expect(await eventually { !connection.isActive })
            }
            #expect(await eventually { server.counters.dropped(.timedOut) == 1 })
        }
    }

    @Test func refusedConnectionIsReportedAsSuch() async throws {
        try await TransportTestSupport.withRefusingTCPPort { port in
            let error = await #expect(throws: ControlChannelError.self) {
                _ = try await request(port: port, payload: [1])
            }
            #expect(error?.reason == .connectionRefused)
            #expect(
                error?.description
                    == "control request to 127.0.0.1:\(port) failed: connection refused (is the understudy daemon running there?)")
        }
    }

    @Test func invalidRequestsFailBeforeConnecting() async {
        let error = await #expect(throws: ControlChannelError.self) {
            _ = try await ControlClient.request(
                host: "127.0.0.1", port: 1, key: TransportTestSupport.key, localName: "no spaces", payload: [])
        }
        if case .invalidRequest = error?.reason {} else { Issue.record("expected invalidRequest, got \(String(describing: error))") }
    }

    @Test func tooManyConnectionsAreTurnedAway() async throws {
        try await withServer(limits: ControlServer.Limits(maximumConnections: 1, handshakeTimeout: .seconds(5))) { server in
            let hog = try await TransportTestSupport.plainTCPConnection(port: server.port)
            try await TransportTestSupport.withClosing(hog) {
                #expect(await eventually { server.counters.connectionsAccepted == 1 })
                let error = await #expect(throws: ControlChannelError.self) {
                    _ = try await request(port: server.port, payload: [1])
                }
                if case .connectionFailed = error?.reason {
                } else {
                    Issue.record("expected connectionFailed (busy), got \(String(describing: error))")
                }
                #expect(server.counters.dropped(.tooManyConnections) == 1)
            }
        }
    }

    // MARK: Session-level properties (frames cannot be replayed, reordered or reflected)

    private func sessionPair(
        serverNonce: [UInt8] = [UInt8](repeating: 1, count: 16), clientNonce: [UInt8] = [UInt8](repeating: 2, count: 16)
    )
        -> (client: ControlSession, server: ControlSession)
    {
        (
            ControlSession(key: TransportTestSupport.key, serverNonce: serverNonce, clientNonce: clientNonce, role: .client),
            ControlSession(key: TransportTestSupport.key, serverNonce: serverNonce, clientNonce: clientNonce, role: .server)
        )
    }

    @Test func framesVerifyOnlyOnceAndInOrder() throws {
        var (client, server) = sessionPair()
        let first = try #require(client.seal(payload: [1], sender: "client-1") as [UInt8]?)
        let second = try #require(client.seal(payload: [2], sender: "client-1") as [UInt8]?)
        let openedFirst = server.open(first)
        #expect((try? openedFirst.get())?.payload == [1])
        let replayed = server.open(first)
        #expect(replayed.failure == .outOfOrder)
        let openedSecond = server.open(second)
        #expect((try? openedSecond.get())?.payload == [2])

        var (_, freshServer) = sessionPair()
        let skipped = freshServer.open(second)
        #expect(skipped.failure == .outOfOrder)
    }

    @Test func framesFromAnotherConnectionDoNotVerify() throws {
        var (client, _) = sessionPair(serverNonce: [UInt8](repeating: 1, count: 16))
        var (_, otherServer) = sessionPair(serverNonce: [UInt8](repeating: 9, count: 16))
        let frame = try #require(client.seal(payload: [1], sender: "client-1") as [UInt8]?)
        let opened = otherServer.open(frame)
        #expect(opened.failure == .badMAC)
    }

    @Test func aRequestCannotBeReflectedAsAResponse() throws {
        var (client, server) = sessionPair()
        let request = try #require(client.seal(payload: [1], sender: "client-1") as [UInt8]?)
        // Relabel the request as a response and hand it back to the client.
        var reflected = request
        reflected[0] = 0x03
        let openedByClient = client.open(reflected)
        #expect(openedByClient.failure == .badMAC)
        let openedByServer = server.open(request)
        #expect((try? openedByServer.get())?.sender == "client-1")
    }

    @Test func everyBitFlipAndTruncationOfAFrameIsRejected() throws {
        var (client, _) = sessionPair()
        let frame = try #require(client.seal(payload: Array("order".utf8), sender: "client-1") as [UInt8]?)
        for index in frame.indices {
            for bit in 0..<8 {
                var corrupted = frame
                corrupted[index] ^= UInt8(1) << UInt8(bit)
                var (_, server) = sessionPair()
                let opened = server.open(corrupted)
                #expect(opened.failure != nil, "byte \(index) bit \(bit) accepted")
            }
        }
        for length in 0..<frame.count {
            var (_, server) = sessionPair()
            let opened = server.open(Array(frame.prefix(length)))
            #expect(opened.failure != nil, "prefix of \(length) bytes accepted")
        }
    }
}

extension Result {
    fileprivate var failure: Failure? {
        if case .failure(let error) = self { return error }
        return nil
    }
}
