import Foundation
import Testing
import UnderstudyTestSupport

@testable import UnderstudyNode

#if canImport(Glibc)
    import Glibc
#endif

/// The shutdown-stall watchdog against the kernel's softdog, loaded by the test with
/// soft_noboot=1 (an expiry only logs; the machine never resets), then unloaded.
@Suite("Shutdown-stall watchdog", .serialized)
struct KernelWatchdogTests {
    /// Arming a real watchdog device that is not the test's own softdog could reset the machine.
    static let noWatchdogDevice = Prerequisite(
        "no-watchdog-device",
        missing: FileManager.default.fileExists(atPath: KernelWatchdog.device)
            ? "this machine already has a watchdog device; arming it in a test could reset the machine" : nil)
    /// A kernel without loadable modules (containers, some CI machines) has no softdog.
    static let softdog = Prerequisite.all(
        "softdog",
        [
            .root, noWatchdogDevice, .command("modprobe", package: "kmod"),
            Prerequisite(
                "softdog",
                missing: KernelWatchdog.modprobe.flatMap { Prerequisite.exitStatus($0, ["-n", "-q", "softdog"]) } == 0
                    ? nil : "the kernel has no softdog module (modprobe -n softdog fails)"),
        ])

    @Test("arming sets the timeout and starts the countdown", .requires(softdog))
    func armSoftdog() throws {
        let modprobe = try #require(KernelWatchdog.modprobe)
        let load = try run(modprobe, ["softdog", "soft_noboot=1", "soft_margin=60"])
        try #require(load == 0 && FileManager.default.fileExists(atPath: KernelWatchdog.device), "modprobe softdog exit \(load)")
        defer { _ = try? run(modprobe, ["-r", "softdog"]) }

        // The device exists: arm must not try to load anything.
        let armed = KernelWatchdog.arm(timeout: .seconds(7)) { _ in "modprobe must not run" }
        let watchdog = try armed.get()
        defer { watchdog.disarm() }
        #expect(watchdog.seconds == 7)
        let sysfs = try #require(
            try FileManager.default.contentsOfDirectory(atPath: "/sys/class/watchdog").sorted().first.map { "/sys/class/watchdog/" + $0 })
        let state = try String(contentsOfFile: sysfs + "/state", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        let timeout = try String(contentsOfFile: sysfs + "/timeout", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(state == "active" && timeout == "7", "state \(state), timeout \(timeout)")
        let timeLeft = sysfs + "/timeleft"
        if let left = try? String(contentsOfFile: timeLeft, encoding: .utf8),
            let seconds = Int(left.trimmingCharacters(in: .whitespacesAndNewlines))
        {
            #expect(seconds <= 7)
            watchdog.keepAlive()
        }
    }

    @Test("without a device and without softdog: a clear failure, nothing armed", .requires(noWatchdogDevice))
    func noDevice() {
        let armed = KernelWatchdog.arm(timeout: .seconds(5)) { _ in "modprobe softdog failed (exit 1)" }
        guard case .failure(let failure) = armed else {
            Issue.record("armed without a device")
            return
        }
        #expect(failure.description == "no watchdog device: modprobe softdog failed (exit 1)")
    }

    func run(_ executable: String, _ arguments: [String]) throws -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        return process.terminationStatus
    }
}
