import Foundation
import Testing
import UnderstudyTestSupport

@testable import UnderstudyNode

@Suite("Local UNIX control socket")
struct LocalControlSocketTests {
    /// Answers with the peer credentials the server saw (client and server share this process).
    private static let echo: @Sendable (LocalControlRequest) async -> [UInt8] = { request in
        let pidMatches = request.peerProcessID == getpid()
        return Array("uid=\(request.peerUserID.map(String.init) ?? "?")\(pidMatches ? "" : ",pid-mismatch"):".utf8) + request.payload
    }

    private func withServer<Result>(
        at path: String,
        limits: LocalControlServer.Limits = LocalControlServer.Limits(),
        handler: @escaping @Sendable (LocalControlRequest) async -> [UInt8] = echo,
        _ body: (LocalControlServer) async throws -> Result
    ) async throws -> Result {
        let server = try await LocalControlServer.start(path: path, limits: limits, handler: handler)
        do {
            let result = try await body(server)
            await server.close()
            return result
        } catch {
            await server.close()
            throw error
        }
    }

    /// Untyped-throwing wrapper: `#expect(try await …)` does not handle typed throws yet.
    private func ask(path: String, payload: [UInt8]) async throws -> [UInt8] {
        // 30 s: the unit run's CPU-bound tests (fuzzing, source scans) can hold both threads of
        // the cooperative pool for 15 s at its start; this is no test of speed.
        try await LocalControlClient.request(path: path, payload: payload, timeout: .seconds(30))
    }

    /// Leaves a socket file behind with nothing listening on it, like a crashed daemon.
    private func makeStaleSocketFile(at path: String) throws {
        let descriptor = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        #expect(descriptor >= 0)
        defer { close(descriptor) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let pathBytes = Array(path.utf8CString)
        withUnsafeMutableBytes(of: &address.sun_path) { buffer in
            for (index, byte) in pathBytes.enumerated() where index < buffer.count { buffer[index] = UInt8(bitPattern: byte) }
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        #expect(bound == 0)
    }

    @Test func roundTripWithMode0600() async throws {
        try await TransportTestSupport.withTemporaryDirectory { directory in
            let path = directory + "/understudy.sock"
            try await withServer(at: path) { server in
                #expect(TransportTestSupport.fileMode(path) == 0o600)
                let answer = try await LocalControlClient.request(path: path, payload: Array("clpstat".utf8), timeout: .seconds(15))
                #expect(answer == Array("uid=\(geteuid()):clpstat".utf8))
                #expect(try await ask(path: path, payload: []) == Array("uid=\(geteuid()):".utf8))
                let large = [UInt8](repeating: 7, count: 2_000_000)
                #expect(try await ask(path: path, payload: large).count == large.count + "uid=\(geteuid()):".utf8.count)
                #expect(await eventually { server.counters.requestsServed == 3 })
                // No temporary bind name is left behind.
                #expect(try FileManager.default.contentsOfDirectory(atPath: directory) == ["understudy.sock"])
            }
            #expect(!TransportTestSupport.fileExists(path), "close() removes the socket file")
        }
    }

    @Test func notReachableWhenNothingListens() async throws {
        try await TransportTestSupport.withTemporaryDirectory { directory in
            let path = directory + "/understudy.sock"
            let missing = await #expect(throws: LocalControlError.self) {
                _ = try await LocalControlClient.request(path: path, payload: [1], timeout: .seconds(2))
            }
            #expect(missing?.isNotReachable == true)
            #expect(missing?.description == "the local daemon is not reachable at \(path)")

            try makeStaleSocketFile(at: path)
            let stale = await #expect(throws: LocalControlError.self) {
                _ = try await LocalControlClient.request(path: path, payload: [1], timeout: .seconds(2))
            }
            #expect(stale?.isNotReachable == true)
        }
    }

    @Test func staleSocketFileIsReplaced() async throws {
        try await TransportTestSupport.withTemporaryDirectory { directory in
            let path = directory + "/understudy.sock"
            try makeStaleSocketFile(at: path)
            try await withServer(at: path) { _ in
                #expect(TransportTestSupport.fileMode(path) == 0o600)
                let answer = try await ask(path: path, payload: [5])
                #expect(answer.last == 5)
            }
        }
    }

    @Test func refusesToStealALiveSocketOrRemoveAFile() async throws {
        try await TransportTestSupport.withTemporaryDirectory { directory in
            let path = directory + "/understudy.sock"
            try await withServer(at: path) { _ in
                let error = await #expect(throws: LocalControlServerError.self) {
                    let second = try await LocalControlServer.start(path: path) { _ in [] }
                    await second.close()
                }
                #expect(error?.description.contains("already listening") == true)
                // The first server still answers.
                let answer = try await ask(path: path, payload: [1])
                #expect(answer.last == 1)
            }

            let regularFile = directory + "/not-a-socket"
            try Data("keep me".utf8).write(to: URL(fileURLWithPath: regularFile))
            await #expect(throws: LocalControlServerError.self) {
                let server = try await LocalControlServer.start(path: regularFile) { _ in [] }
                await server.close()
            }
            #expect(try String(contentsOfFile: regularFile, encoding: .utf8) == "keep me")
        }
    }

    @Test func clientTimesOutWhenTheDaemonDoesNotAnswer() async throws {
        try await TransportTestSupport.withTemporaryDirectory { directory in
            let path = directory + "/understudy.sock"
            let slow: @Sendable (LocalControlRequest) async -> [UInt8] = { _ in
                try? await Task.sleep(for: .seconds(30))
                return []
            }
            try await withServer(at: path, handler: slow) { _ in
                let started = ContinuousClock.now
                let error = await #expect(throws: LocalControlError.self) {
                    _ = try await LocalControlClient.request(path: path, payload: [1], timeout: .milliseconds(300))
                }
                #expect(error?.reason == .timedOut)
                #expect(ContinuousClock.now - started < .seconds(20))
            }
        }
    }

    @Test func oversizeAndSilentClientsAreDroppedAndCounted() async throws {
        try await TransportTestSupport.withTemporaryDirectory { directory in
            let path = directory + "/understudy.sock"
            try await withServer(at: path, limits: LocalControlServer.Limits(requestTimeout: .milliseconds(200))) { server in
                let oversize = try await TransportTestSupport.plainUnixConnection(path: path)
                try await TransportTestSupport.withClosing(oversize) {
                    try await oversize.writeAndFlush(oversize.allocator.buffer(bytes: [0x7F, 0xFF, 0xFF, 0xFF]))
                    #expect(await eventually(within: .seconds(15)) { !oversize.isActive })
                }
                let silent = try await TransportTestSupport.plainUnixConnection(path: path)
                try await TransportTestSupport.withClosing(silent) {
                    #expect(await eventually(within: .seconds(15)) { !silent.isActive })
                }
                #expect(
                    await eventually(within: .seconds(15)) {
                        server.counters.dropped(.oversize) == 1 && server.counters.dropped(.timedOut) == 1
                    })
                #expect(try await ask(path: path, payload: [9]).last == 9)
            }
        }
    }

    @Test func tooLongPathsAreRefusedClearly() async throws {
        let path = "/tmp/" + String(repeating: "x", count: 120) + ".sock"
        await #expect(throws: LocalControlServerError.self) {
            let server = try await LocalControlServer.start(path: path) { _ in [] }
            await server.close()
        }
        let error = await #expect(throws: LocalControlError.self) {
            _ = try await LocalControlClient.request(path: path, payload: [])
        }
        #expect(error?.path == path)
    }
}
