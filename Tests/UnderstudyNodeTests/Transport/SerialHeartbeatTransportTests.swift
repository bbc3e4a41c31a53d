import Foundation
import Testing
import UnderstudyModel
import UnderstudyTestSupport

@testable import UnderstudyNode

#if canImport(Glibc)
    import Glibc
#endif

/// comhb between two transports over a pseudo-terminal pair joined by socat, standing for
/// the null-modem cable. socat is stopped by its PID, also when a test fails.
@Suite("Serial heartbeat over a pty pair", .serialized)
struct SerialHeartbeatTransportTests {
    static let socat = Prerequisite.command("socat", package: "socat")
    let key = TransportTestSupport.key

    /// socat joining two ptys linked at `a` and `b`; nil when they did not appear in time.
    static func startCable(_ a: String, _ b: String) throws -> Process? {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/socat")
        process.arguments = ["-d", "-d", "pty,raw,echo=0,link=\(a)", "pty,raw,echo=0,link=\(b)"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        let deadline = ContinuousClock.now + .seconds(5)
        while ContinuousClock.now < deadline {
            if FileManager.default.fileExists(atPath: a) && FileManager.default.fileExists(atPath: b) { return process }
            usleep(20_000)
        }
        stopCable(process, links: [a, b])
        return nil
    }

    /// SIGKILL: a process started from the test runner inherits its blocked signals, SIGTERM
    /// among them. socat then leaves its links behind: they are removed here.
    static func stopCable(_ process: Process, links: [String]) {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        for link in links { unlink(link) }
    }

    func withCable(_ body: (_ a: String, _ b: String, _ cable: inout Process) async throws -> Void) async throws {
        try await TransportTestSupport.withTemporaryDirectory { directory in
            let (a, b) = (directory + "/ttyA", directory + "/ttyB")
            var cable = try #require(try Self.startCable(a, b), "socat did not create the ptys")
            do {
                try await body(a, b, &cable)
            } catch {
                Self.stopCable(cable, links: [a, b])
                throw error
            }
            Self.stopCable(cable, links: [a, b])
        }
    }

    /// Runs `body` with both ends open and closes them however it ends.
    func withEnds(
        _ config: ClusterConfig, _ one: PathRecorder, _ two: PathRecorder,
        _ body: (any HeartbeatTransport, any HeartbeatTransport) async throws -> Void
    ) async throws {
        let first = try await open(config, "node1", one)
        let second: any HeartbeatTransport
        do { second = try await open(config, "node2", two) } catch {
            await first.close()
            throw error
        }
        do {
            try await body(first, second)
        } catch {
            await first.close()
            await second.close()
            throw error
        }
        await first.close()
        await second.close()
    }

    func open(_ config: ClusterConfig, _ me: String, _ recorder: PathRecorder) async throws -> any HeartbeatTransport {
        let context = HeartbeatTransportContext(config: config, me: me, key: key, bootID: me == "node1" ? 1 : 2, events: recorder.eventSink)
        return try #require(try await SerialHeartbeatTransport.open(config.heartbeats[1], context))
    }

    @Test("heartbeats cross the line both ways; garbage written on the line is skipped and counted", .requires(socat))
    func exchangeWithGarbage() async throws {
        try await withCable { a, b, _ in
            let config = try BlockingPathTestSupport.config("  - {name: com1, type: comhb, devices: {node1: \(a), node2: \(b)}}")
            let (one, two) = (PathRecorder(), PathRecorder())
            try await withEnds(config, one, two) { first, second in
                let followers = [one.follow(first), two.follow(second)]
                defer { for follower in followers { follower.cancel() } }
                // Another writer on node1's end of the line: garbage between the frames.
                let noise = Glibc.open(a, O_WRONLY | O_NOCTTY)
                try #require(noise >= 0)
                defer { close(noise) }
                var random = SplitMix64(state: 77)
                for index in 0..<20 {
                    await first.sendNow(Array("one-\(index)".utf8))
                    await second.sendNow(Array("two-\(index)".utf8))
                    if index % 4 == 1 {
                        try? await Task.sleep(for: .milliseconds(30))
                        var garbage = (0..<300).map { _ in UInt8.random(in: 0...255, using: &random) }
                        garbage += SerialFrame.sync + [0, 0, 0, 9]  // a false marker, cut
                        _ = garbage.withUnsafeBytes { write(noise, $0.baseAddress, $0.count) }
                    }
                    try? await Task.sleep(for: .milliseconds(60))
                }
                #expect(await eventually(within: .seconds(15)) { one.count >= 15 && two.count >= 15 }, "\(one.count) \(two.count)")
                #expect(one.datagrams.withLock { $0.allSatisfy { $0.sender == "node2" } })
                #expect(two.payloads.last == Array("one-19".utf8))
                #expect(second.counters.dropped(.badFrame) >= 1, "\(second.counters)")
                #expect(one.failures == 0 && two.failures == 0)
            }
        }
    }

    @Test("a line that cannot keep up never queues: only the newest waiting heartbeat goes next", .requires(socat))
    func newestOnly() async throws {
        try await withCable { a, b, _ in
            let config = try BlockingPathTestSupport.config("  - {name: com1, type: comhb, devices: {node1: \(a), node2: \(b)}}")
            let (one, two) = (PathRecorder(), PathRecorder())
            try await withEnds(config, one, two) { first, second in
                let follower = two.follow(second)
                defer { follower.cancel() }
                // 200 heartbeats of 20 KB, handed over at once: far more than the line takes.
                for index in 0..<200 { await first.sendNow(Array("\(index)|".utf8) + [UInt8](repeating: 0x61, count: 20_000)) }
                #expect(await eventually(within: .seconds(30)) { two.payloads.last?.starts(with: Array("199|".utf8)) == true })
                let counters = first.counters
                #expect(counters.staleNotSent > 0, "\(counters)")
                #expect(counters.sent + counters.staleNotSent == 200, "\(counters)")
                // Nothing arrives twice or unsent; the first frame may be lost while the far end's
                // reader is still opening the line (seen once under load).
                #expect(
                    two.count < 200 && UInt64(two.count) <= counters.sent && UInt64(two.count) + 1 >= counters.sent,
                    "\(two.count) \(counters)")
            }
        }
    }

    @Test("the cable pulled (socat killed): both ends fail once, nothing arrives; plugged again: they recover", .requires(socat))
    func cablePulledAndPluggedAgain() async throws {
        try await withCable { a, b, cable in
            let config = try BlockingPathTestSupport.config("  - {name: com1, type: comhb, devices: {node1: \(a), node2: \(b)}}")
            let (one, two) = (PathRecorder(), PathRecorder())
            try await withEnds(config, one, two) { first, second in
                let followers = [one.follow(first), two.follow(second)]
                defer { for follower in followers { follower.cancel() } }
                func beat(_ count: Int) async {
                    for index in 0..<count {
                        await first.sendNow(Array("one-\(index)".utf8))
                        await second.sendNow(Array("two-\(index)".utf8))
                        try? await Task.sleep(for: .milliseconds(100))
                    }
                }
                await beat(5)
                #expect(await eventually(within: .seconds(5)) { one.count >= 3 && two.count >= 3 })

                Self.stopCable(cable, links: [a, b])
                await beat(10)
                #expect(await eventually(within: .seconds(5)) { one.failures == 1 && two.failures == 1 }, "\(one.events.withLock { $0 })")
                let silent = one.count
                await beat(10)
                #expect(one.count == silent && one.failures == 1, "nothing arrives, said once")
                #expect(first.counters.dropped(.deviceError) >= 2)

                cable = try #require(try Self.startCable(a, b), "socat did not start again")
                await beat(15)
                #expect(
                    await eventually(within: .seconds(5)) { one.recoveries == 1 && two.recoveries == 1 }, "\(one.events.withLock { $0 })")
                #expect(await eventually(within: .seconds(5)) { one.count >= silent + 3 })
            }
        }
    }

    @Test("a device that is not a tty is refused at start, naming the key")
    func notATerminal() async throws {
        let config = try BlockingPathTestSupport.config("  - {name: com1, type: comhb, devices: {node1: /etc/hostname, node2: /dev/ttyS1}}")
        let context = HeartbeatTransportContext(config: config, me: "node1", key: key, bootID: 1)
        let error = await #expect(throws: SerialLineError.self) {
            _ = try await SerialHeartbeatTransport.open(config.heartbeats[1], context)
        }
        #expect(
            error?.description.contains("devices.node1: /etc/hostname is not a character device") == true, "\(String(describing: error))")
    }
}
