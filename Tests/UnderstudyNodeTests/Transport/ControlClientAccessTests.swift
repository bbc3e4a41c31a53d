import Foundation
import NIOCore
import Synchronization
import Testing
import UnderstudyEngine
import UnderstudyModel
import UnderstudyTestSupport

@testable import UnderstudyNode

/// Outside clients of the control channel (`cluster.rexec-clients`): each verifies under its
/// own key only, a connection speaks for one client, and what cannot be verified or is not
/// allowed is refused and counted.
@Suite("Control channel: outside clients")
struct ControlClientAccessTests {
    static let clientKey: ClusterKey = {
        do { return try ClusterKey(material: Array("rexec-client-vcenter1-key-0123456789".utf8)) } catch { fatalError("\(error)") }
    }()
    static let members: Set<String> = ["node1", "node2"]

    private func sessions(
        clientKey: ClusterKey = clientKey, serverNonce: [UInt8] = [UInt8](repeating: 1, count: 16), members: Set<String>? = members
    ) -> (client: ControlSession, server: ControlSession) {
        let clientNonce = [UInt8](repeating: 2, count: 16)
        return (
            ControlSession(key: clientKey, serverNonce: serverNonce, clientNonce: clientNonce, role: .client),
            ControlSession(
                key: TransportTestSupport.key, serverNonce: serverNonce, clientNonce: clientNonce, role: .server,
                clients: ["vcenter1": Self.clientKey], members: members)
        )
    }

    // MARK: The hello/auth decision, frame by frame

    @Test func aClientVerifiesUnderItsOwnKeyAndTheAnswerIsSealedUnderIt() throws {
        var (client, server) = sessions()
        let request = try #require(client.seal(payload: [7], sender: "vcenter1") as [UInt8]?)
        let opened = try server.open(request).get()
        #expect(opened.sender == "vcenter1" && opened.payload == [7])
        #expect(server.client == "vcenter1")
        let response = try #require(server.seal(payload: [8], sender: "node1") as [UInt8]?)
        #expect(try client.open(response).get().payload == [8])
    }

    @Test func aWrongKeyOrTheClusterKeyUnderAClientNameIsRefused() throws {
        for key in [TransportTestSupport.otherKey, TransportTestSupport.key] {
            var (client, server) = sessions(clientKey: key)
            let request = try #require(client.seal(payload: [1], sender: "vcenter1") as [UInt8]?)
            #expect(server.open(request).failureValue == .badClientMAC)
            #expect(server.client == nil)
        }
    }

    @Test func anUnknownNameIsABadSenderWhenTheMembersAreKnown() throws {
        var (client, server) = sessions(clientKey: TransportTestSupport.otherKey)
        let request = try #require(client.seal(payload: [1], sender: "stranger") as [UInt8]?)
        #expect(server.open(request).failureValue == .unknownSender)
        #expect(ControlSession.OpenFailure.unknownSender.dropReason == .badSender)
        // Without the member names, as before: a bad MAC.
        var (_, plain) = sessions(clientKey: TransportTestSupport.otherKey, members: nil)
        #expect(plain.open(request).failureValue == .badMAC)
        // A member with a wrong key stays a bad MAC.
        var (wrongMember, server2) = sessions(clientKey: TransportTestSupport.otherKey)
        let memberFrame = try #require(wrongMember.seal(payload: [1], sender: "node2") as [UInt8]?)
        #expect(server2.open(memberFrame).failureValue == .badMAC)
    }

    @Test func membersAreServedExactlyAsBefore() throws {
        var (member, server) = sessions(clientKey: TransportTestSupport.key)
        for index in 0..<3 {
            let frame = try #require(member.seal(payload: [UInt8(index)], sender: "node2") as [UInt8]?)
            #expect(try server.open(frame).get().sender == "node2")
        }
        #expect(server.client == nil)
        // Any name verifies under the cluster key (a server the config does not name yet).
        var (newcomer, server2) = sessions(clientKey: TransportTestSupport.key)
        let frame = try #require(newcomer.seal(payload: [1], sender: "node9") as [UInt8]?)
        #expect(try server2.open(frame).get().sender == "node9")
    }

    @Test func aConnectionSpeaksForOneClientOrForMembersNeverBoth() throws {
        var (client, server) = sessions()
        let first = try #require(client.seal(payload: [1], sender: "vcenter1") as [UInt8]?)
        _ = try server.open(first).get()
        // The client's connection cannot then carry a member's frame (even a valid one).
        var member = ControlSession(
            key: TransportTestSupport.key, serverNonce: [UInt8](repeating: 1, count: 16), clientNonce: [UInt8](repeating: 2, count: 16),
            role: .client)
        _ = member.seal(payload: [0], sender: "node2")
        let memberFrame = try #require(member.seal(payload: [2], sender: "node2") as [UInt8]?)
        #expect(server.open(memberFrame).failureValue == .badSender)

        // And a members' connection cannot switch to a client.
        var (memberFirst, server2) = sessions(clientKey: TransportTestSupport.key)
        _ = try server2.open(try #require(memberFirst.seal(payload: [1], sender: "node1") as [UInt8]?)).get()
        var (clientLater, _) = sessions()
        _ = clientLater.seal(payload: [0], sender: "vcenter1")
        let late = try #require(clientLater.seal(payload: [2], sender: "vcenter1") as [UInt8]?)
        #expect(server2.open(late).failureValue == .badSender)
    }

    @Test func aClientRequestCannotBeReplayed() throws {
        var (client, server) = sessions()
        let request = try #require(client.seal(payload: [1], sender: "vcenter1") as [UInt8]?)
        _ = try server.open(request).get()
        // Again on the same connection: out of order.
        #expect(server.open(request).failureValue == .outOfOrder)
        // On another connection (other server nonce): it does not verify.
        var (_, otherServer) = sessions(serverNonce: [UInt8](repeating: 9, count: 16))
        #expect(otherServer.open(request).failureValue == .badClientMAC)
    }

    // MARK: Fuzzing the frame fields of a client frame

    @Test func everyMutationOfAClientFrameIsRefusedAndNeverTakenForAMember() throws {
        var (client, _) = sessions()
        let frame = try #require(
            client.seal(payload: WireJSON.encode(RexecRequest.failover(group: "grp1")), sender: "vcenter1") as [UInt8]?)
        for index in frame.indices {
            for bit in 0..<8 {
                var corrupted = frame
                corrupted[index] ^= UInt8(1) << UInt8(bit)
                var (_, server) = sessions()
                let opened = server.open(corrupted)
                #expect(opened.failureValue != nil, "byte \(index) bit \(bit) accepted")
                #expect(server.client == nil)
            }
        }
        var generator = SplitMix64(state: 0x7E_C0DE)
        for round in 0..<2000 {
            var mutated = frame
            // Random name lengths, names, counters and lengths: the name field in particular.
            let position = Int.random(in: 0..<min(mutated.count, 80), using: &generator)
            let count = Int.random(in: 1...4, using: &generator)
            for offset in 0..<count where position + offset < mutated.count {
                mutated[position + offset] = UInt8.random(in: 0...255, using: &generator)
            }
            if round % 7 == 0 { mutated = Array(mutated.prefix(Int.random(in: 0..<mutated.count, using: &generator))) }
            var (_, server) = sessions()
            let opened = server.open(mutated)
            if mutated != frame { #expect(opened.failureValue != nil, "round \(round) accepted \(mutated)") }
            _ = ControlSession.senderName(in: mutated)
        }
    }

    // MARK: The request decision

    static let configured = [
        RexecClient(name: "vcenter1", keyFile: "/k1", allow: [.failover, .script]),
        RexecClient(name: "monitor1", keyFile: "/k2", allow: [.notice]),
    ]

    private func decide(_ client: String, _ request: RexecRequest) -> RexecAuthorization {
        RexecAuthorization.decide(client: client, payload: WireJSON.encode(request), clients: Self.configured, server: "node1")
    }

    @Test func onlyTheAllowedRequestsPass() {
        #expect(decide("vcenter1", .failover(group: "grp1")) == .allowed(.failover(group: "grp1")))
        #expect(decide("vcenter1", .script(name: "a.sh", timeoutSeconds: 180)) == .allowed(.script(name: "a.sh", timeoutSeconds: 180)))
        guard case .denied(let notice) = decide("vcenter1", .notice(monitor: nil, category: "NIC", keyword: nil, clear: false)) else {
            Issue.record("a notice passed for a client allowed failover and script only")
            return
        }
        #expect(
            notice.code == .failed && notice.message.contains("may not send notice requests") && notice.message.contains("failover, script")
        )
        guard case .denied(let failover) = decide("monitor1", .failover(group: "grp1")) else {
            Issue.record("monitor1 may not fail groups over")
            return
        }
        #expect(failover.message.contains("allowed: notice"))
        let notice2 = RexecRequest.notice(monitor: "m", category: "APP", keyword: nil, clear: true)
        #expect(decide("monitor1", notice2) == .allowed(notice2))
    }

    @Test func unknownClientsUnreadableRequestsAndAbsurdTimesAreDenied() {
        guard case .denied(let unknown) = decide("gone", .failover(group: "grp1")) else {
            Issue.record("a client no longer configured passed")
            return
        }
        #expect(unknown.message.contains("not in cluster.rexec-clients"))
        for seconds in [0, -1, RexecRequest.maximumScriptSeconds + 1] {
            guard case .denied = decide("vcenter1", .script(name: "a.sh", timeoutSeconds: seconds)) else {
                Issue.record("\(seconds) s passed")
                continue
            }
        }
        // Members' requests are not client requests, whatever the client sends.
        let memberRequest = WireJSON.encode(
            PeerRequest.command(
                .stopService(factor: .serverShutdown, lastAction: .halt, then: .exitProcess), origin: "node1", forwarded: true))
        guard
            case .denied(let refused) = RexecAuthorization.decide(
                client: "vcenter1", payload: memberRequest, clients: Self.configured, server: "node1")
        else {
            Issue.record("a member's request passed as a client's")
            return
        }
        #expect(refused.code == .badUsage)
        var generator = SplitMix64(state: 42)
        for _ in 0..<2000 {
            let bytes = (0..<Int.random(in: 0..<64, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) }
            if case .allowed(let request) = RexecAuthorization.decide(
                client: "monitor1", payload: bytes, clients: Self.configured, server: "n")
            {
                #expect(request.permission == .notice)
            }
        }
    }

    // MARK: On a real socket

    @Test func theServerRoutesCountsAndReportsClientRequests() async throws {
        let refusals = Mutex<[ControlRefusal]>([])
        let access = ControlAccess(
            clients: ["vcenter1": Self.clientKey], members: Self.members,
            clientHandler: { request in
                ControlClientAnswer(payload: Array("client \(request.peerName)".utf8), denied: request.payload == [0])
            },
            onRefusal: { refusal in refusals.withLock { $0.append(refusal) } })
        let server = try await ControlServer.start(
            host: "127.0.0.1", port: 0, key: TransportTestSupport.key, localName: "node1", access: access
        ) { request in Array("member \(request.peerName)".utf8) }
        do {
            let port = server.port
            func ask(_ name: String, _ key: ClusterKey, _ payload: [UInt8]) async throws(ControlChannelError) -> [UInt8] {
                try await ControlClient.request(host: "127.0.0.1", port: port, key: key, localName: name, payload: payload)
            }
            #expect(try await ask("vcenter1", Self.clientKey, [1]) == Array("client vcenter1".utf8))
            #expect(try await ask("node2", TransportTestSupport.key, [1]) == Array("member node2".utf8))
            // Denied: answered (the client learns why) and counted.
            #expect(try await ask("vcenter1", Self.clientKey, [0]) == Array("client vcenter1".utf8))
            for (name, key) in [
                ("vcenter1", TransportTestSupport.otherKey), ("vcenter1", TransportTestSupport.key), ("stranger", Self.clientKey),
            ] {
                let error = await #expect(throws: ControlChannelError.self) { _ = try await ask(name, key, [1]) }
                guard case .authenticationFailed = error?.reason else {
                    Issue.record("\(name): expected authenticationFailed, got \(String(describing: error))")
                    continue
                }
            }
            #expect(await eventually { server.counters.dropped(.clientDenied) == 1 })
            #expect(server.counters.dropped(.clientBadMAC) == 2)
            #expect(server.counters.dropped(.badSender) == 1)
            #expect(server.counters.dropped(.badMAC) == 0)
            let reported = refusals.withLock { $0 }
            #expect(
                reported.map(\.reason).sorted { $0.rawValue < $1.rawValue } == [.badSender, .clientBadMAC, .clientBadMAC, .clientDenied])
            #expect(reported.allSatisfy { $0.sourceAddress == "127.0.0.1" })
            #expect(Set(reported.map(\.sender)) == ["vcenter1", "stranger"])

            // Revoked: the new table no longer knows the client.
            server.setAccess(ControlAccess(members: Self.members))
            let revoked = await #expect(throws: ControlChannelError.self) { _ = try await ask("vcenter1", Self.clientKey, [1]) }
            #expect(revoked != nil)
            #expect(await eventually { server.counters.dropped(.badSender) == 2 })
        } catch {
            await server.close()
            throw error
        }
        await server.close()
    }
}

extension Result {
    fileprivate var failureValue: Failure? {
        if case .failure(let error) = self { return error }
        return nil
    }
}
