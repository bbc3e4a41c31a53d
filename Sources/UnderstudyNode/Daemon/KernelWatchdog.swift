import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// The kernel watchdog (softdog, loaded on demand), for two uses:
/// - the shutdown-stall monitor (reference §3.5, `cluster.shutdown-monitor`): armed right
///   before Understudy runs the OS shutdown or reboot command and never closed with the magic
///   character, so an OS shutdown that hangs (or kills the daemon and then hangs) resets the
///   machine — a watchdog does not stop on an unexpected close;
/// - userw with `method: softdog`: armed while the monitor runs and kept alive by every tick of
///   the daemon, so a stall of the daemon longer than the timeout resets the machine; disarmed
///   (the magic close) when the monitor stops.
struct KernelWatchdog {
    static let device = "/dev/watchdog"
    /// linux/watchdog.h: _IOWR('W', 6, int) and _IOR('W', 5, int).
    static let setTimeoutRequest: UInt = 0xC004_5706
    static let keepAliveRequest: UInt = 0x8004_5705

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// The open device; kept open for the rest of the process's life.
    let descriptor: Int32
    /// The timeout the driver accepted (it may round), in seconds.
    let seconds: Int32

    /// Loads softdog when no watchdog device exists, opens it, sets the timeout and starts the
    /// countdown.
    static func arm(timeout: Duration, modprobe: (Int32) -> String? = Self.loadSoftdog) -> Result<KernelWatchdog, Failure> {
        var seconds = Int32(clamping: max(1, timeout.components.seconds + (timeout.components.attoseconds > 0 ? 1 : 0)))
        if !FileManager.default.fileExists(atPath: device) {
            if let problem = modprobe(seconds) { return .failure(Failure(description: "no watchdog device: \(problem)")) }
        }
        let descriptor = open(device, O_WRONLY | O_CLOEXEC)
        guard descriptor >= 0 else {
            return .failure(Failure(description: "cannot open \(device): \(String(cString: strerror(errno)))"))
        }
        var requested = seconds
        if ioctl(descriptor, setTimeoutRequest, &requested) == 0 {
            seconds = requested
        } else {
            // Keep going with the driver's own margin: a late reset beats none.
            seconds = -1
        }
        var dummy: Int32 = 0
        if ioctl(descriptor, keepAliveRequest, &dummy) != 0 {
            _ = write(descriptor, "1", 1)
        }
        return .success(KernelWatchdog(descriptor: descriptor, seconds: seconds))
    }

    /// Where kmod's modprobe is (Debian package kmod); nil when it is not installed.
    static var modprobe: String? {
        ["/usr/sbin/modprobe", "/sbin/modprobe"].first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// `modprobe softdog soft_margin=N`; nil when the device appeared.
    static func loadSoftdog(seconds: Int32) -> String? {
        guard let modprobe else { return "modprobe is not installed (Debian package kmod)" }
        let process: SpawnedProcess
        do {
            process = try SpawnedProcess.spawn([modprobe, "softdog", "soft_margin=\(seconds)"])
        } catch {
            return "modprobe cannot run: \(error)"
        }
        // modprobe exits at once; bounded anyway (5 s).
        guard let status = process.waitForExit(within: .seconds(5)) else {
            process.signal(SIGKILL)
            return "modprobe softdog did not finish"
        }
        guard status == 0 else { return "modprobe softdog failed (exit \(status))" }
        return FileManager.default.fileExists(atPath: device) ? nil : "softdog loaded but \(device) is missing"
    }

    /// Restarts the countdown.
    func keepAlive() {
        var dummy: Int32 = 0
        if ioctl(descriptor, Self.keepAliveRequest, &dummy) != 0 { _ = write(descriptor, "1", 1) }
    }

    /// Stops the countdown and closes the device (the magic close). Never for the shutdown
    /// watchdog: a server going down keeps it armed.
    func disarm() {
        _ = write(descriptor, "V", 1)
        close(descriptor)
    }
}
