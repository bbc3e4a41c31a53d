import Foundation
import UnderstudyEngine

#if canImport(Glibc)
    import Glibc
#endif

/// diskw: I/O on a device or file.
/// - `read-direct`: reads `size` bytes (rounded up to 512) with O_DIRECT, past the page cache,
///   so a dead disk is seen even when its first blocks are cached;
/// - `read`: an ordinary read;
/// - `write-file`: writes, fsyncs and removes a file (`device` names the file); a full disk is
///   an error unless `disk-full-is-error` is false;
/// - `tur`: SCSI TEST UNIT READY with `sg_turs` (sg3-utils), for devices that support it.
/// The blocking calls run on a thread of their own (`BlockingCall`).
struct DiskProbe: MonitorProbe {
    enum Method: String {
        case readDirect = "read-direct"
        case read
        case writeFile = "write-file"
        case tur
    }

    let device: String
    let method: Method
    let size: Int
    let diskFullIsError: Bool
    let timeout: Duration
    /// The monitor's `nice`, applied to `sg_turs`.
    var nice = 0
    let call = BlockingCall()

    func check() async -> MonitorResult {
        switch method {
        case .tur:
            let result = await NetCommandRunner(nice: nice).run(["sg_turs", device], timeout: timeout)
            if result.succeeded { return .normal }
            if result.exitCode == 127 || result.exitCode == nil {
                return .error("sg_turs is not installed (Debian package sg3-utils)")
            }
            return .error("TEST UNIT READY on \(device): \(result.failureDescription)")
        case .read, .readDirect:
            let (device, size, direct) = (device, size, method == .readDirect)
            return await call.run { Self.read(device, size: size, direct: direct) }
        case .writeFile:
            let (path, size, fullIsError) = (device, size, diskFullIsError)
            return await call.run { Self.writeFile(path, size: size, diskFullIsError: fullIsError) }
        }
    }

    /// O_DIRECT (Glibc does not export it to Swift; the value depends on the architecture).
    #if arch(arm64)
        static let directFlag: Int32 = 0o200000
    #else
        static let directFlag: Int32 = 0o40000
    #endif

    static func read(_ device: String, size: Int, direct: Bool) -> MonitorResult {
        let flags = O_RDONLY | O_CLOEXEC | (direct ? Self.directFlag : 0)
        let fd = open(device, flags)
        guard fd >= 0 else { return .error("cannot open \(device): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        // O_DIRECT needs an aligned buffer and a length that is a multiple of the sector size.
        let length = max(512, (size + 511) / 512 * 512)
        var buffer: UnsafeMutableRawPointer?
        guard posix_memalign(&buffer, 4096, length) == 0, let buffer else { return .error("out of memory") }
        defer { free(buffer) }
        let got = pread(fd, buffer, length, 0)
        if got < 0 { return .error("read from \(device) failed: \(String(cString: strerror(errno)))") }
        if got == 0 { return .error("\(device) is empty") }
        return .normal
    }

    static func writeFile(_ path: String, size: Int, diskFullIsError: Bool) -> MonitorResult {
        let file = path.hasSuffix("/") ? path + ".understudy-diskw" : path
        let fd = open(file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { return .error("cannot create \(file): \(String(cString: strerror(errno)))") }
        let bytes = [UInt8](repeating: 0x55, count: max(1, size))
        var failure: Int32 = 0
        let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        if written != bytes.count { failure = written < 0 ? errno : ENOSPC }
        if failure == 0 && fsync(fd) != 0 { failure = errno }
        close(fd)
        unlink(file)
        if failure == 0 { return .normal }
        if failure == ENOSPC && !diskFullIsError { return .warning("\(file): the disk is full") }
        return .error("writing \(file) failed: \(String(cString: strerror(failure)))")
    }
}
