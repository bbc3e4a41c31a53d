// Process tests (ARCHITECTURE.md §9, level 3): real `understudy daemon` processes on
// loopback addresses, driven with the real CLI. Build first, then run:
//
//     swift build --build-tests
//     swift test --skip-build --filter UnderstudyProcessTests
//
// Each test owns 127.0.<subnet>.x and ports the kernel gives as free (see ClusterSpec);
// subnets in use: 101–131, 147–148, 150, 160–161, 170–172. Environment knobs:
//   UNDERSTUDY_PROCESS_TEST_CLUSTERS=N   clusters running at once (default 4)
//   UNDERSTUDY_KEEP_TEST_FOLDERS=1       keep each cluster folder (config, daemon logs,
//                                        records.log, state) in $TMPDIR/understudy-pt<subnet>-*
//                                        for debugging; processes are killed all the same

import Foundation
import Synchronization

/// Limits how many test clusters run at once. Swift Testing runs tests in parallel; on a
/// small machine a dozen three-daemon clusters at once would starve the daemons of CPU long
/// enough to look like heartbeat timeouts. `UNDERSTUDY_PROCESS_TEST_CLUSTERS` overrides the
/// limit.
final class ClusterSlots: Sendable {
    static let shared = ClusterSlots(
        limit: ProcessInfo.processInfo.environment["UNDERSTUDY_PROCESS_TEST_CLUSTERS"].flatMap(Int.init) ?? 4)

    private struct State {
        var free: Int
        var waiting: [CheckedContinuation<Void, Never>] = []
    }

    private let state: Mutex<State>

    init(limit: Int) {
        state = Mutex(State(free: max(1, limit)))
    }

    func acquire() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let granted = state.withLock { state -> Bool in
                if state.free > 0 {
                    state.free -= 1
                    return true
                }
                state.waiting.append(continuation)
                return false
            }
            if granted { continuation.resume() }
        }
    }

    func release() {
        let next = state.withLock { state -> CheckedContinuation<Void, Never>? in
            if state.waiting.isEmpty {
                state.free += 1
                return nil
            }
            return state.waiting.removeFirst()
        }
        next?.resume()
    }
}

/// Runs `body` with a fresh cluster folder (key, config, scripts; no daemon started yet) and
/// always tears it down afterwards — daemons and every process they started are killed by
/// pid and the folder is removed — whether the body succeeds, fails or throws.
func withCluster<Result>(_ spec: ClusterSpec, _ body: (TestCluster) async throws -> Result) async throws -> Result {
    await ClusterSlots.shared.acquire()
    defer { ClusterSlots.shared.release() }
    let cluster = try TestCluster(spec)
    defer { cluster.tearDown() }
    do {
        return try await body(cluster)
    } catch {
        throw ProcessTestError("\(error)\n\(cluster.diagnostics())")
    }
}

/// A scratch folder (no cluster) that is always removed.
func withScratchFolder<Result>(_ body: (String) async throws -> Result) async throws -> Result {
    let folder = FileManager.default.temporaryDirectory.path + "/understudy-pt-scratch-\(UUID().uuidString.prefix(8))"
    try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: folder) }
    return try await body(folder)
}
