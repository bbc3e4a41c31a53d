import NIOCore
import NIOPosix
import Synchronization
import Testing
import UnderstudyTestSupport

@testable import UnderstudyNode

#if canImport(Glibc)
    import Glibc
#endif

@Suite("UDP heartbeat socket")
struct HeartbeatSocketTests {
    /// Binds sockets on 127.0.0.1 with OS-chosen ports and closes them however `body` ends.
    private func withSockets<Result>(
        _ specs: [(name: String, key: ClusterKey, queue: Int)],
        _ body: ([HeartbeatSocket]) async throws -> Result
    ) async throws -> Result {
        var sockets: [HeartbeatSocket] = []
        do {
            for (index, spec) in specs.enumerated() {
                sockets.append(
                    try await HeartbeatSocket.bind(
                        host: "127.0.0.1", port: 0, key: spec.key, localName: spec.name,
                        bootID: UInt64(1_000 + index), receiveQueueCapacity: spec.queue
                    )
                )
            }
            let result = try await body(sockets)
            for socket in sockets { await socket.close() }
            return result
        } catch {
            for socket in sockets { await socket.close() }
            throw error
        }
    }

    private func next(_ socket: HeartbeatSocket, within limit: Duration = .seconds(5)) async -> ReceivedDatagram? {
        await withTaskGroup(of: ReceivedDatagram?.self) { group in
            group.addTask {
                var iterator = socket.received.makeAsyncIterator()
                return await iterator.next()
            }
            group.addTask {
                try? await Task.sleep(for: limit)
                return nil
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            return first
        }
    }

    /// The daemon binds a path again after a fatal send error (`ClusterDaemon.rebind`, through
    /// `HeartbeatTransport.reopened`): the new socket of the same boot must go on from the
    /// sequence the old one reached, or every peer's replay guard drops its heartbeats and the
    /// server is judged down although it runs.
    @Test("a socket bound again continues its sequence; one starting over is dropped as replayed")
    func reboundSocketContinuesSequence() async throws {
        let key = TransportTestSupport.key
        try await withSockets([("beta", key, 64)]) { sockets in
            let beta = sockets[0]
            let alpha = try await HeartbeatSocket.bind(host: "127.0.0.1", port: 0, key: key, localName: "alpha", bootID: 7)
            let port = alpha.localPort
            await alpha.send([1], to: "127.0.0.1", port: beta.localPort)
            await alpha.send([2], to: "127.0.0.1", port: beta.localPort)
            #expect(try #require(await next(beta)).sequence == 1)
            #expect(try #require(await next(beta)).sequence == 2)
            let upcoming = alpha.upcomingSequence
            await alpha.close()

            // Bound again on the same address and port, for the same boot.
            let rebound = try await Self.bindAgain(port: port, key: key, firstSequence: upcoming)
            await rebound.send([3], to: "127.0.0.1", port: beta.localPort)
            let third = try #require(await next(beta))
            #expect(third.sequence == 3 && third.payload == [3] && third.bootID == 7)
            await rebound.close()

            // Starting over from 1 (what a rebind without the sequence would do): dropped.
            let naive = try await Self.bindAgain(port: port, key: key, firstSequence: 1)
            await naive.send([4], to: "127.0.0.1", port: beta.localPort)
            #expect(await next(beta, within: .milliseconds(500)) == nil)
            #expect(beta.counters.dropped(.replayed) == 1)
            await naive.close()
        }
    }

    /// Binds alpha again on the port it had. Other tests running meanwhile probe ports by
    /// binding them for an instant (`FreePort`): the port freed by the close may be taken
    /// for that instant, so a few tries, 50 ms apart.
    static func bindAgain(port: Int, key: ClusterKey, firstSequence: UInt64) async throws -> HeartbeatSocket {
        for attempt in 1...20 {
            do {
                return try await HeartbeatSocket.bind(
                    host: "127.0.0.1", port: port, key: key, localName: "alpha", bootID: 7, firstSequence: firstSequence)
            } catch {
                let message = String(describing: error)
                guard attempt < 20, message.contains("Address already in use") else { throw error }
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw TestSupportError("port \(port) stayed in use")
    }

    @Test func twoSocketsExchangeHeartbeats() async throws {
        let key = TransportTestSupport.key
        try await withSockets([("alpha", key, 64), ("beta", key, 64)]) { sockets in
            let (alpha, beta) = (sockets[0], sockets[1])
            #expect(alpha.localPort != 0 && alpha.localPort != beta.localPort)

            let before = ContinuousClock.now
            await alpha.send(Array("ping".utf8), to: "127.0.0.1", port: beta.localPort)
            let atBeta = try #require(await next(beta))
            #expect(atBeta.sender == "alpha")
            #expect(atBeta.bootID == alpha.bootID)
            #expect(atBeta.sequence == 1)
            #expect(atBeta.payload == Array("ping".utf8))
            #expect(atBeta.receivedAt >= before)
            #expect(atBeta.remoteAddress.port == alpha.localPort)

            await beta.send(Array("pong".utf8), to: "127.0.0.1", port: alpha.localPort)
            let atAlpha = try #require(await next(alpha))
            #expect(atAlpha.sender == "beta" && atAlpha.payload == Array("pong".utf8))

            await alpha.send([1], to: "127.0.0.1", port: beta.localPort)
            let second = try #require(await next(beta))
            #expect(second.sequence == 2)

            #expect(alpha.counters.sent == 2 && alpha.counters.accepted == 1)
            #expect(beta.counters.sent == 1 && beta.counters.accepted == 2)
            #expect(beta.counters.totalDropped == 0)
        }
    }

    /// The periodic heartbeat path: prepared ahead of its deadline, sealed and sent at once
    /// from the caller's thread (lateness zero); a payload whose time has passed its
    /// freshness is not sent at all; one past its deadline but still fresh leaves at once, its
    /// lateness measured from the deadline; sequence numbers continue those of immediate sends.
    @Test func periodicSendLeavesAtOnceUnlessStale() async throws {
        let key = TransportTestSupport.key
        try await withSockets([("alpha", key, 64), ("beta", key, 64)]) { sockets in
            let (alpha, beta) = (sockets[0], sockets[1])
            await alpha.send([0], to: "127.0.0.1", port: beta.localPort)
            _ = try #require(await next(beta))

            let deadline = ContinuousClock.now + .seconds(30)
            let reported = Mutex<[Duration]>([])
            let before = ContinuousClock.now
            await alpha.send(
                Array("beat".utf8), toHosts: ["127.0.0.1"], port: beta.localPort, at: deadline, freshUntil: deadline + .seconds(60)
            ) {
                lateness in reported.withLock { $0.append(lateness) }
            }
            let early = try #require(await next(beta))
            #expect(early.receivedAt >= before && early.receivedAt < deadline)
            #expect(early.payload == Array("beat".utf8) && early.sequence == 2)
            // Written on the bound socket itself (a duplicate of its descriptor): the peers see
            // the heartbeat port as its source, as firewall rules expect.
            #expect(early.remoteAddress.port == alpha.localPort)
            #expect(reported.withLock { $0 } == [.zero])

            // Its time came after it went stale (the process stood still): not sent at all.
            let past = ContinuousClock.now - .seconds(2)
            await alpha.send([6], toHosts: ["127.0.0.1"], port: beta.localPort, at: past, freshUntil: past + .seconds(1))
            #expect(alpha.counters.staleNotSent == 1)
            // Past deadline, still fresh: leaves at once, lateness counted from that deadline
            // (and it is the next datagram beta gets: the stale one never left).
            await alpha.send([7], toHosts: ["127.0.0.1"], port: beta.localPort, at: past, freshUntil: .now + .seconds(60)) { lateness in
                reported.withLock { $0.append(lateness) }
            }
            let late = try #require(await next(beta))
            #expect(late.payload == [7] && late.sequence == 3)
            let second = try #require(reported.withLock { $0.count == 2 ? $0[1] : nil })
            #expect(second >= .seconds(2))
            #expect(alpha.counters.sendFailures == 0 && alpha.counters.sent == 3)
        }
    }

    @Test func socketWithAnotherKeyIsRejectedAndCounted() async throws {
        try await withSockets([("good", TransportTestSupport.key, 64), ("intruder", TransportTestSupport.otherKey, 64)]) { sockets in
            let (good, intruder) = (sockets[0], sockets[1])
            for _ in 0..<3 { await intruder.send(Array("take over".utf8), to: "127.0.0.1", port: good.localPort) }
            #expect(await eventually { good.counters.dropped(.badMAC) == 3 })
            #expect(good.counters.accepted == 0)
        }
    }

    @Test func garbageFromAPlainSocketIsSurvivedAndCounted() async throws {
        try await withSockets([("receiver", TransportTestSupport.key, 64), ("sender", TransportTestSupport.key, 64)]) { sockets in
            let (receiver, sender) = (sockets[0], sockets[1])
            let plain = try await TransportTestSupport.plainUDPSocket()
            try await TransportTestSupport.withClosing(plain) {
                let target = try SocketAddress(ipAddress: "127.0.0.1", port: receiver.localPort)
                var generator = SplitMix64(state: 99)
                for _ in 0..<20 {
                    let garbage = (0..<Int.random(in: 1...500, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) }
                    try await plain.writeAndFlush(
                        AddressedEnvelope(remoteAddress: target, data: plain.allocator.buffer(bytes: [0x00] + garbage)))
                }
                // A correct header with nothing behind it, and a replay of a real datagram.
                try await plain.writeAndFlush(
                    AddressedEnvelope(remoteAddress: target, data: plain.allocator.buffer(bytes: Array("USHB".utf8) + [1])))
                let genuine = try DatagramCodec(key: TransportTestSupport.key).seal(
                    payload: [7], sender: "replayer", bootID: 1, sequence: 1)
                for _ in 0..<2 {
                    try await plain.writeAndFlush(AddressedEnvelope(remoteAddress: target, data: plain.allocator.buffer(bytes: genuine)))
                }
            }
            #expect(await eventually { receiver.counters.totalDropped == 22 })
            #expect(receiver.counters.dropped(.badMagic) == 20)
            #expect(receiver.counters.dropped(.truncated) == 1)
            #expect(receiver.counters.dropped(.replayed) == 1)
            #expect(await next(receiver)?.sender == "replayer")

            // Still serving real heartbeats afterwards.
            await sender.send(Array("alive".utf8), to: "127.0.0.1", port: receiver.localPort)
            let datagram = try #require(await next(receiver))
            #expect(datagram.sender == "sender" && datagram.payload == Array("alive".utf8))
        }
    }

    @Test func slowConsumerLosesOldestAndItIsCounted() async throws {
        try await withSockets([("receiver", TransportTestSupport.key, 2), ("sender", TransportTestSupport.key, 2)]) { sockets in
            let (receiver, sender) = (sockets[0], sockets[1])
            for index in 0..<5 { await sender.send([UInt8(index)], to: "127.0.0.1", port: receiver.localPort) }
            #expect(await eventually { receiver.counters.accepted == 5 })
            #expect(receiver.counters.queueOverflow == 3)
            // The newest two are kept.
            #expect(await next(receiver)?.payload == [3])
            #expect(await next(receiver)?.payload == [4])
        }
    }

    @Test func sendFailuresAreCountedNotThrown() async throws {
        try await withSockets([("sender", TransportTestSupport.key, 4)]) { sockets in
            let sender = sockets[0]
            await sender.send([UInt8](repeating: 0, count: DatagramCodec.maximumPayloadSize + 1), to: "127.0.0.1", port: 9)
            #expect(sender.counters.sendFailures == 1)
            #expect(sender.counters.sent == 0)
            #expect(sender.counters.lastSendFailure?.hasPrefix("cannot seal the heartbeat: heartbeat payload of") == true)
            // An IPv6 destination on an IPv4 socket: the kernel refuses it, nothing leaves.
            await sender.send([1], to: "::1", port: 9)
            #expect(sender.counters.sendFailures == 2)
            #expect(sender.counters.lastSendFailure == "sendto [::1]:9: \(String(cString: strerror(EAFNOSUPPORT)))")
            await sender.send([1], to: "127.0.0.1", port: 9)
            #expect(sender.counters.sent == 1 && sender.counters.sendFailures == 2)
        }
    }

    @Test func bindingAnAddressTwiceFailsClearly() async throws {
        try await withSockets([("first", TransportTestSupport.key, 4)]) { sockets in
            let port = sockets[0].localPort
            let error = await #expect(throws: HeartbeatSocketError.self) {
                let second = try await HeartbeatSocket.bind(
                    host: "127.0.0.1", port: port, key: TransportTestSupport.key, localName: "second", bootID: 1)
                await second.close()
            }
            #expect(error?.description.contains("127.0.0.1:\(port)") == true)
        }
    }

    @Test func invalidLocalNameIsRefusedAtBind() async {
        await #expect(throws: HeartbeatSocketError.self) {
            let socket = try await HeartbeatSocket.bind(
                host: "127.0.0.1", port: 0, key: TransportTestSupport.key, localName: "bad name", bootID: 1)
            await socket.close()
        }
    }

    @Test func closingEndsTheReceivedStream() async throws {
        let socket = try await HeartbeatSocket.bind(
            host: "127.0.0.1", port: 0, key: TransportTestSupport.key, localName: "closer", bootID: 1)
        await socket.close()
        var iterator = socket.received.makeAsyncIterator()
        #expect(await iterator.next() == nil)
        await socket.close()
    }
}
