import Foundation
import Testing
import UnderstudyLab
import UnderstudyTestSupport

/// Invariant I1 as a service sees it, on real links: a service that checks its server's
/// lease records when it is active; faults of every kind are injected; no two servers may
/// ever have been active at once. (`understudy lab safety --per-kind 50` is the long run;
/// results in docs/benchmarks.md.)
@Suite("Lab: safety under partitions, loss, freezes, kills and flapping", .serialized, .requires(labPrerequisite))
struct SafetyRunTests {
    @Test("fast profile, every fault kind (2 servers: pingnp, twice each; 3: majority, once each): zero overlap", arguments: [2, 3])
    func noOverlap(servers: Int) async throws {
        let spec = LabSpec(
            prefix: LabSpec.uniquePrefix(), servers: servers, subnet: 20 + servers, heartbeatInterval: "50ms",
            heartbeatTimeoutMilliseconds: 300, syncWait: "1s", withGroup: false, pingTimeout: "100ms")
        let lab = try await Lab.up(spec, binary: labBinary, startDaemons: false)
        defer { lab.down() }
        try SafetyRun.writeGroup(spec: spec, binary: labBinary)
        for server in spec.serverNames { try lab.startDaemon(server) }
        let run = SafetyRun(lab: lab, binary: labBinary) { print("safety (\(servers) servers): \($0)") }
        let result = try await run.run(kinds: SafetyFault.allCases, perKind: servers == 2 ? 2 : 1)
        #expect(result.overlaps.isEmpty, "\(result.overlaps)")
        #expect(result.stillHeldWithoutProof.isEmpty, "\(result.stillHeldWithoutProof)")
        #expect(result.injected.values.reduce(0, +) == SafetyFault.allCases.count * (servers == 2 ? 2 : 1))
        // The service really ran, on both sides over the run.
        #expect(result.samples > 100)
        #expect(result.activeSeconds.count >= 2, "\(result.activeSeconds)")
        #expect(result.recovered == result.injected.values.reduce(0, +))
    }
}
