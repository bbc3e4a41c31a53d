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

/// The seed's shared-disk cluster under faults: a `disk` resource (ext4 with mmp, a loop device
/// per server over one image) and a writer of fsync'ed numbered records on it. No acknowledged
/// record may be lost, two servers' records may never interleave, fsck must find it clean.
/// (`understudy lab safety --shared-disk --per-kind 50` is the long run; docs/benchmarks.md.)
@Suite("Lab: a shared disk under faults", .serialized, .requires(labPrerequisite))
struct SharedDiskSafetyTests {
    @Test("2 servers, pingnp, every fault kind once: no lost record, no interleaving, fsck clean, no overlap")
    func sharedDiskSafety() async throws {
        var spec = LabSpec(
            prefix: LabSpec.uniquePrefix(), servers: 2, subnet: 27, heartbeatInterval: "50ms", heartbeatTimeoutMilliseconds: 300,
            syncWait: "1s", withGroup: false, pingTimeout: "100ms")
        spec.sharedDisk = true
        let lab = try await Lab.up(spec, binary: labBinary, startDaemons: false)
        defer { lab.down() }
        try SafetyRun.writeGroup(spec: spec, binary: labBinary)
        for server in spec.serverNames { try lab.startDaemon(server) }
        let run = SafetyRun(lab: lab, binary: labBinary) { print("shared-disk safety: \($0)") }
        let result = try await run.run(kinds: SafetyFault.allCases, perKind: 1)
        #expect(result.overlaps.isEmpty, "\(result.overlaps)")
        let disk = try run.checkSharedDisk()
        #expect(disk.check.lost.isEmpty, "\(disk.check.lost)")
        #expect(disk.check.interleavings.isEmpty, "\(disk.check.interleavings)")
        #expect(disk.fsckClean, "\(disk.fsckOutput)")
        #expect(disk.doubleMounts.isEmpty, "\(disk.doubleMounts)")
        // The sampler saw the mount, on both servers over the run.
        #expect(disk.mountSamples > 100 && disk.mountedSeconds.count == 2, "\(disk.mountSamples) \(disk.mountedSeconds)")
        // The writer really wrote, and the disk changed hands.
        #expect(disk.check.acknowledged > 50, "\(disk.check.acknowledged)")
        #expect(disk.check.handovers >= 1, "\(disk.check.handovers)")
    }
}

@Suite("Shared-disk records check")
struct SharedDiskCheckTests {
    @Test("a lost acknowledged record and interleaved writers are found")
    func findsProblems() {
        let disk = "node1 10 1 100\nnode1 10 2 110\nnode2 20 1 200\nnode1 10 3 190\n"
        let check = SharedDiskCheck(diskRecords: disk, acknowledgements: ["node1 10 1\nnode1 10 2\nnode1 10 4\n", "node2 20 1\n"])
        #expect(check.lost == [SharedDiskCheck.Record(server: "node1", pid: 10, sequence: 4)])
        #expect(check.interleavings.count == 2, "\(check.interleavings)")
        #expect(check.records == 4 && check.acknowledged == 4)
    }

    @Test("a clean handover is not a problem")
    func cleanHandover() {
        let disk = "node1 10 1 100\nnode1 10 2 110\nnode2 20 1 200\nnode2 20 2 210\nnode1 30 1 300\n"
        let check = SharedDiskCheck(diskRecords: disk, acknowledgements: ["node1 10 1\nnode1 10 2\nnode1 30 1\n", "node2 20 1\n"])
        #expect(check.lost.isEmpty && check.interleavings.isEmpty)
        #expect(check.handovers == 2)
    }
}
