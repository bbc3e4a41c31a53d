import Testing
import UnderstudyModel

@testable import UnderstudyEngine
@testable import UnderstudySimulator

/// Quiet ticks (QuietTicks.swift): a settled cluster's Engines answer most ticks without the
/// full step, the simulator checks every such answer against the full step, and the check
/// catches an Engine that promises quiet for longer than it may.
@Suite("Quiet ticks")
struct QuietTickTests {
    /// Three servers of the simulator's configuration, booted and run for `seconds`.
    static func settledWorld(seconds: Int = 20, sparse: Bool = false) -> SimulatedCluster {
        let world = SimulatedCluster(config: Simulation.config(servers: 3), seed: 7)
        world.sparseTicks = sparse
        for server in world.serverNames { world.boot(server) }
        world.run(until: .seconds(Int64(seconds)))
        return world
    }

    @Test("a settled cluster answers most ticks the short way, each one the same as the full step")
    func settledClusterIsQuiet() {
        let world = Self.settledWorld()
        let ticksBefore = world.ticksDelivered
        let quietBefore = world.quietTicksDelivered
        world.run(until: world.now + .seconds(10))
        let ticks = world.ticksDelivered - ticksBefore
        let quiet = world.quietTicksDelivered - quietBefore
        #expect(world.violations.isEmpty, "\(world.violations)")
        // A tick every tick period (a quarter interval) and one per heartbeat: all but the
        // ticks right after a step that acted, or at a peer's deadline, are quiet.
        #expect(ticks > 0 && quiet * 10 >= ticks * 7, "\(quiet) of \(ticks) ticks quiet")
        for server in world.serverNames {
            guard let engine = world.engine(server) else {
                Issue.record("\(server) has no engine")
                continue
            }
            // Quiet until a peer could turn: no later than a heartbeat timeout from now.
            #expect(engine.quietUntil > world.now - engine.tickPeriod)
            #expect(engine.quietUntil <= world.now + world.config.cluster.timing.heartbeatTimeout)
        }
    }

    @Test("ticking as the daemon does (only when something is due) delivers fewer ticks, and a crash is still noticed")
    func sparseTicksTickLess() {
        let dense = Self.settledWorld()
        let sparse = Self.settledWorld(sparse: true)
        let denseBefore = dense.ticksDelivered
        let sparseBefore = sparse.ticksDelivered
        dense.run(until: dense.now + .seconds(10))
        sparse.run(until: sparse.now + .seconds(10))
        let denseTicks = dense.ticksDelivered - denseBefore
        let sparseTicks = sparse.ticksDelivered - sparseBefore
        #expect(dense.violations.isEmpty && sparse.violations.isEmpty, "\(dense.violations) \(sparse.violations)")
        // Dense: every tick period (125 ms) plus the heartbeat timer's tick every interval
        // (500 ms), 100 per server in 10 s. Sparse: the heartbeat timer's 20, and the tick loop
        // while quiet only at the daemon's housekeeping (250 ms), 40: 60 per server.
        #expect(sparseTicks * 10 <= denseTicks * 7, "sparse \(sparseTicks), dense \(denseTicks)")
        // A crash of the group's holder is noticed and the groups fail over, as with dense ticks.
        let holders = sparse.activeServers(of: "web")
        #expect(holders.count == 1)
        guard let holder = holders.first else { return }
        sparse.crash(holder)
        sparse.run(until: sparse.now + .seconds(15))
        let after = sparse.activeServers(of: "web")
        #expect(after.count == 1 && after.first != holder, "web on \(after) after \(holder) crashed")
        #expect(sparse.violations.isEmpty, "\(sparse.violations)")
    }

    @Test("a tick at the deadline a peer's silence reaches is not quiet: the full step judges the peer")
    func silentPeerEndsTheQuiet() throws {
        let world = Self.settledWorld()
        var engine = try #require(world.engine("s1"))
        engine.verifiesQuietTicks = true
        let start = world.now
        // Cut off from its peers: no heartbeat reaches this copy any more. Ticks before its
        // `quietUntil` are quiet (and checked); the one at the deadline runs the full step.
        let quietUntil = engine.quietUntil
        #expect(quietUntil > start)
        var time = start
        var actedAt: EngineTime?
        while time < start + .seconds(10), actedAt == nil {
            time += engine.tickPeriod
            let quietBefore = engine.tickIsQuiet(now: time)
            let actions = engine.handle(.tick, now: time)
            if !actions.isEmpty { actedAt = time }
            if time < quietUntil { #expect(quietBefore, "tick at \(time) before \(quietUntil) not quiet") }
        }
        #expect(engine.takeQuietTickMismatches().isEmpty)
        // It noticed the loss no earlier than the promised quiet ended.
        let acted = try #require(actedAt)
        #expect(acted >= quietUntil)
    }

    @Test("an Engine that promises quiet for too long is caught by the check")
    func overlongPromiseIsCaught() throws {
        let world = Self.settledWorld()
        var engine = try #require(world.engine("s1"))
        engine.verifiesQuietTicks = true
        // A wrong promise: quiet for a minute, though its peers fall silent now.
        engine.quietUntil = world.now + .seconds(60)
        var time = world.now
        for _ in 0..<200 {
            time += engine.tickPeriod
            #expect(engine.handle(.tick, now: time).isEmpty)
        }
        let mismatches = engine.takeQuietTickMismatches()
        #expect(!mismatches.isEmpty)
        #expect(mismatches.first?.contains("differs from the full step") == true, "\(mismatches.first ?? "")")
    }

    @Test("while ticks are quiet, a gap up to a heartbeat interval is no stall; a later event is one, by its lateness")
    func stallRuleWhileQuiet() {
        var stalls = StallDetector(tickPeriod: .milliseconds(250), holdLimit: .seconds(2), quietGapLimit: .seconds(1))
        stalls.lastEventAt = .seconds(10)
        // Not quiet (quietUntil at or before the last event): two tick periods, as ever.
        #expect(stalls.stall(before: .milliseconds(10_500), quietUntil: .seconds(10)) == nil)
        #expect(stalls.stall(before: .milliseconds(10_600), quietUntil: .seconds(10)) == .milliseconds(350))
        // Quiet for 3 s: an event is expected within the interval (the heartbeat loop ticks).
        #expect(stalls.stall(before: .milliseconds(11_200), quietUntil: .seconds(13)) == nil)
        #expect(stalls.stall(before: .milliseconds(11_300), quietUntil: .seconds(13)) == .milliseconds(300))
        // Quiet for 400 ms: expected by then.
        #expect(stalls.stall(before: .milliseconds(10_650), quietUntil: .milliseconds(10_400)) == nil)
        #expect(stalls.stall(before: .milliseconds(10_700), quietUntil: .milliseconds(10_400)) == .milliseconds(300))
    }
}
