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
    /// tick loops must) while it hands states to the writer.
    actor Beater {
        var beats = 0
        var longestGap: Duration = .zero

        func run(for duration: Duration, every period: Duration, writer: StateWriter, log: Journal, gate: Gate) async {
            let end = ContinuousClock.now + duration
            var last = ContinuousClock.now
            var state = 0
            while ContinuousClock.now < end {
                try? await Task.sleep(for: period)
                let now = ContinuousClock.now
                longestGap = max(longestGap, last.duration(to: now))
                last = now
                beats += 1
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
            let (beats, gap) = await (beater.beats, beater.longestGap)
            // About 100 beats of 5 ms: well over half of them, and no gap near the write's length.
            #expect(beats > 40, "\(beats) beats in \(elapsed)")
            #expect(gap < .milliseconds(200), "the loop stood still for \(gap)")
            #expect(log.all.isEmpty, "the held write finished early: \(log.all)")
            #expect(!writer.hasWritten(1))
        }
        await writer.drain()
        let written = log.all
        // The held first state, then only the newest of those that waited behind it.
        #expect(written.count == 2, "\(written)")
        #expect(written.first == "state 1")
        let states = (await beater.beats + 4) / 5
        #expect(written.last == "state \(states)", "\(written)")
        #expect(writer.statistics.written == 2)
        #expect(writer.statistics.replaced >= 5)
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
