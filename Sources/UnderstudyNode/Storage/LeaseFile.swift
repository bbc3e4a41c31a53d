import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Publishes this server's lease to its services: one line with the time, on the
/// `CLOCK_BOOTTIME` clock in nanoseconds, until which no other server can take its groups
/// over; `0` when it holds no lease. A service that must never run twice compares it with
/// its own `clock_gettime(CLOCK_BOOTTIME)` before it acts (see docs/scripts.md). When the
/// daemon dies or stalls, the time in the file simply passes.
///
/// Written in place with one `pwrite` of fixed width (readers never see a torn line), no
/// fsync: the file lives as long as the boot, and it is read, not recovered.
public final class LeaseFile: @unchecked Sendable {
    public let path: String
    private let descriptor: Int32
    private var lastWritten: Int64 = -1
    /// `CLOCK_BOOTTIME` at the daemon's time origin.
    private let originBoottime: Int64

    public init(path: String, originBoottime: Int64) throws {
        self.path = path
        self.originBoottime = originBoottime
        descriptor = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw DaemonStartError("cannot open the lease file \(path): \(String(cString: strerror(errno)))") }
        // Readable by services that run as other users; written by the daemon only.
        fchmod(descriptor, 0o644)
        write(expiry: nil)
    }

    deinit { close(descriptor) }

    /// `expiry` is a time since the daemon's origin; nil means no lease.
    public func write(expiry: Duration?) {
        let value: Int64
        if let expiry {
            let (seconds, attoseconds) = expiry.components
            value = originBoottime + seconds * 1_000_000_000 + attoseconds / 1_000_000_000
        } else {
            value = 0
        }
        guard value != lastWritten else { return }
        lastWritten = value
        let digits = String(value)
        let line = String(repeating: "0", count: max(0, 19 - digits.count)) + digits + "\n"
        let bytes = Array(line.utf8)
        _ = bytes.withUnsafeBytes { pwrite(descriptor, $0.baseAddress, $0.count, 0) }
    }

    /// `CLOCK_BOOTTIME` now, in nanoseconds.
    public static func boottimeNow() -> Int64 {
        var spec = timespec()
        clock_gettime(CLOCK_BOOTTIME, &spec)
        return Int64(spec.tv_sec) * 1_000_000_000 + Int64(spec.tv_nsec)
    }

    /// Reads a lease file: the expiry in `CLOCK_BOOTTIME` nanoseconds, 0 without a lease,
    /// nil when the file is missing or unreadable.
    public static func read(_ path: String) -> Int64? {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
        return Int64(text.trimmingCharacters(in: .whitespacesAndNewlines))
    }
}
