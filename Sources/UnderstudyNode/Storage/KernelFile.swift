import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Reading the kernel's text files (`/proc`, `/sys`) whole.
///
/// Foundation's `String(contentsOfFile:)`, `Data(contentsOf:)` and `FileManager.contents(atPath:)`
/// stop after the first `read` of a file whose size reads as 0, which every `/proc` file's does:
/// they return the first page (about 4 KiB) and no error. On a host with a few dozen mounts that
/// cut `/proc/self/mountinfo` — the mounts after it were invisible to the disk resources, which
/// must never mount a disk that is mounted already; a long command line (a Java class path) was
/// cut in `/proc/PID/cmdline`, which process monitors match. Read these with `read` until end of
/// file instead.
public enum KernelFile {
    /// The whole file as text, at most `limit` bytes; nil when it cannot be opened or read.
    public static func read(_ path: String, limit: Int = 64 << 20) -> String? {
        bytes(path, limit: limit).map { String(decoding: $0, as: UTF8.self) }
    }

    /// The whole file, at most `limit` bytes; nil when it cannot be opened or read.
    public static func bytes(_ path: String, limit: Int = 64 << 20) -> [UInt8]? {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return nil }
        defer { close(descriptor) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 16_384)
        while bytes.count < limit {
            let count = buffer.withUnsafeMutableBytes { Glibc.read(descriptor, $0.baseAddress, min($0.count, limit - bytes.count)) }
            if count < 0 && errno == EINTR { continue }
            guard count >= 0 else { return nil }
            if count == 0 { break }
            bytes += buffer[0..<count]
        }
        return bytes
    }
}
