import Dispatch
import Foundation
import Logging
import Synchronization
import Testing
import UnderstudyTestSupport

@testable import UnderstudyNode

/// The daemon's state writer (StateWriter.swift): writes happen on its thread, in order, the
/// newest waiting state replacing older ones, and nothing that submits ever waits for a disk.
@Suite("State writer")
struct StateWriterTests {
    /// A write that takes as long as the test wants: it blocks until `open()` (at most 30 s,
    /// so that a failing test cannot hang the suite).
    final class Gate: Sendable {
        private let semaphore = DispatchSemaphore(value: 0)
        func pass() { _ = semaphore.wait(timeout: .now() + 30) }
        func open() { semaphore.signal() }
    }

    static let logger = Logger(label: "test.state-writer")

    /// What the jobs did, in order.
    final class Journal: Sendable {
        private let entries = Mutex<[String]>([])
        func append(_ entry: String) { entries.withLock { $0.append(entry) } }
        var all: [String] { entries.withLock { $0 } }
    }

    final class Flag: Sendable {
        private let value = Mutex(false)
        func set() { value.withLock { $0 = true } }
        var isSet: Bool { value.withLock { $0 } }
    }

    /// Stands in for the daemon actor: a loop that must keep its cadence (as the heartbeat and
    /// tick loops must) while it hands states to the writer. A thread of its own, so that what
    /// it measures is the writer, not how busy the test run keeps the cooperative pool.
    final class Beater: Sendable {
        private let result = Mutex<(beats: Int, longestGap: Duration)>((0, .zero))
        var beats: Int { result.withLock { $0.beats } }
        var longestGap: Duration { result.withLock { $0.longestGap } }

        /// Returns when the loop has run for `duration` (on its thread; nothing here waits on the pool).
        func run(for duration: Duration, every period: Duration, writer: StateWriter, log: Journal, gate: Gate) async {
            await withCheckedContinuation { (finished: CheckedContinuation<Void, Never>) in
                let thread = Thread { [self] in
                    defer { finished.resume() }
                    let end = ContinuousClock.now + duration
                    var last = ContinuousClock.now
                    var state = 0
                    while ContinuousClock.now < end {
                        usleep(UInt32(period.components.attoseconds / 1_000_000_000_000))
                        let now = ContinuousClock.now
                        let beats = result.withLock {
                            $0.longestGap = max($0.longestGap, last.duration(to: now))
                            $0.beats += 1
                            return $0.beats
                        }
                        last = now
                        // A new state every fifth beat; the first write is held by the gate.
                        if beats % 5 == 1 {
                            state += 1
                            let name = "state \(state)"
                            writer.submit(name, replaceable: true) {
                                if name == "state 1" { gate.pass() }
                                log.append(name)
                            }
                        }
                    }
                }
                thread.start()
            }
        }
    }

    @Test("a write that hangs holds up neither the submitter nor its other work; the newest waiting state is written next")
    func slowWriteBlocksNothing() async throws {
        let writer = StateWriter(name: "test state writer", logger: Self.logger)
        let gate = Gate()
        let log = Journal()
        let beater = Beater()
        let started = ContinuousClock.now
        do {
            defer { gate.open() }
            await beater.run(for: .milliseconds(500), every: .milliseconds(5), writer: writer, log: log, gate: gate)
            let elapsed = started.duration(to: .now)
            // About 100 beats of 5 ms, and no gap near the held write's length (until the
            // gate opens after the loop, or 30 s): submitting never waited for it.
            #expect(beater.beats > 20, "\(beater.beats) beats in \(elapsed)")
            #expect(beater.longestGap < .seconds(2), "the loop stood still for \(beater.longestGap)")
            #expect(log.all.isEmpty, "the held write finished early: \(log.all)")
            #expect(!writer.hasWritten(1))
        }
        await writer.drain()
        let written = log.all
        // The held first state, then only the newest of those that waited behind it.
        #expect(written.count == 2, "\(written)")
        #expect(written.first == "state 1")
        let states = (beater.beats + 4) / 5
        #expect(written.last == "state \(states)", "\(written)")
        #expect(writer.statistics.written == 2)
        #expect(writer.statistics.replaced >= 3)
        writer.stop()
    }

    @Test("a job that cannot be replaced keeps its place between the states before and after it")
    func orderIsKept() async throws {
        let writer = StateWriter(name: "test state writer", logger: Self.logger)
        let gate = Gate()
        let log = Journal()
        func job(_ name: String, replaceable: Bool = true) -> StateWriter.Ticket {
            writer.submit(name, replaceable: replaceable) {
                if name == "held" { gate.pass() }
                log.append(name)
            }
        }
        // A job that cannot be replaced, held by the gate: everything else queues behind it.
        let held = job("held", replaceable: false)
        _ = job("s1")
        _ = job("s2")
        let marker = job("marker", replaceable: false)
        _ = job("s3")
        let last = job("s4")
        #expect(held == 1 && marker == 4 && last == 6)
        #expect(writer.latestTicket == 6)
        #expect(!writer.hasWritten(held))
        gate.open()
        await writer.waitUntilWritten(marker)
        #expect(writer.hasWritten(marker))
        // s1 was replaced by s2 while it waited; s3 by s4. The marker stays between them.
        #expect(Array(log.all.prefix(3)) == ["held", "s2", "marker"])
        writer.drainBlocking()
        #expect(log.all == ["held", "s2", "marker", "s4"])
        #expect(writer.statistics.replaced == 2)
        writer.stop()
    }

    @Test("waiting for a ticket ends when it is written; after stop a new submission starts the writer again")
    func waitingAndRestart() async throws {
        let writer = StateWriter(name: "test state writer", logger: Self.logger)
        let gate = Gate()
        let finished = Flag()
        let ticket = writer.submit("held", replaceable: true) { gate.pass() }
        let waiter = Task {
            await writer.waitUntilWritten(ticket)
            finished.set()
        }
        try await Task.sleep(for: .milliseconds(100))
        #expect(!finished.isSet, "the wait ended before the write")
        gate.open()
        await waiter.value
        #expect(finished.isSet)
        writer.stop()
        // Stopped (its thread ends when idle): the next job starts a new thread.
        try await Task.sleep(for: .milliseconds(50))
        let ran = Flag()
        let again = writer.submit("after stop", replaceable: false) { ran.set() }
        await writer.waitUntilWritten(again)
        #expect(ran.isSet)
        writer.stop()
    }

    @Test("a failed write is logged and the next one still runs; states reach the file through StateStore")
    func failureAndRealStore() async throws {
        try await withTemporaryFolder { (folder: String) async throws in
            let writer = StateWriter(name: "test state writer", logger: Self.logger)
            let store = StateStore(directory: folder)
            struct Broken: Error {}
            writer.submit("a broken state", replaceable: false) { throw Broken() }
            for value in 1...20 {
                writer.submit("state \(value)", replaceable: true) { try store.save(["value": value], name: "engine") }
            }
            await writer.drain()
            #expect(try store.load([String: Int].self, name: "engine") == ["value": 20])
            writer.stop()
        }
    }
}
