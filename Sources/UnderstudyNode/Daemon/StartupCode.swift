import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Gives back the pages of the program's own machine code that only its start needed.
///
/// The binary is one static file of about 50 MB of code (the Swift runtime, Foundation, NIO,
/// Yams, …). Starting touches code all over it — argument parsing, YAML, the configuration's
/// checks, the runtime's type lookups — and the kernel maps each touched page with its
/// neighbours (fault-around, 64 KiB), so an idle daemon kept about 29 MiB of code resident
/// while it used under 6 MiB of it in a minute (measured with `clear_refs` and `Referenced:`
/// in smaps, docs/benchmarks.md). These pages are the file's, clean and shared, and cost no
/// swap; but they count as the daemon's memory, and the kernel keeps them longer than the
/// page cache it could use better.
///
/// Once started, the daemon (and its keeper) drop their mappings of the executable's code
/// (`MADV_DONTNEED` on its `r-xp` mapping): the next call of a function maps its page again
/// from the page cache (a minor fault, about a microsecond per 64 KiB), so what stays resident
/// is what the daemon runs. Safe only for that mapping: it is private, read-only and never
/// written (a position-independent executable linked with `-z now` has no text relocations),
/// so dropping it loses nothing. Data, relocated data and heap are never touched.
public enum StartupCode {
    /// The ranges of `maps` (the text of `/proc/self/maps`) that map `executable` readable and
    /// executable: the program's code.
    static func codeRanges(maps: String, executable: String) -> [(start: UInt, length: UInt)] {
        var ranges: [(start: UInt, length: UInt)] = []
        for line in maps.split(separator: "\n") {
            // start-end perms offset device inode path (the path may hold spaces)
            let fields = line.split(separator: " ", maxSplits: 5, omittingEmptySubsequences: true)
            guard fields.count == 6, fields[1] == "r-xp" else { continue }
            guard fields[5].trimmingCharacters(in: .whitespaces) == executable else { continue }
            let bounds = fields[0].split(separator: "-")
            guard bounds.count == 2, let start = UInt(bounds[0], radix: 16), let end = UInt(bounds[1], radix: 16), end > start
            else { continue }
            ranges.append((start, end - start))
        }
        return ranges
    }

    /// The executable's path as `/proc/self/maps` names it (with " (deleted)" when the file
    /// was replaced under the running program, as an upgrade does).
    static func executablePath() -> String? {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let count = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard count > 0 else { return nil }
        return String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Drops the mappings of the program's code pages; they come back as they are run.
    /// Returns the bytes of code whose pages were given back (0 when nothing could be done:
    /// no /proc, an unexpected layout — then the daemon just keeps its pages).
    @discardableResult
    public static func release() -> UInt {
        guard let executable = executablePath(), let maps = KernelFile.read("/proc/self/maps") else { return 0 }
        var released: UInt = 0
        for range in codeRanges(maps: maps, executable: executable) {
            guard let address = UnsafeMutableRawPointer(bitPattern: range.start) else { continue }
            if madvise(address, Int(range.length), MADV_DONTNEED) == 0 { released += range.length }
        }
        return released
    }

    /// Resident kilobytes of the program's code mappings (the `Rss:` of its `r-xp` mappings in
    /// `/proc/self/smaps`), for tests and the footprint benchmark.
    public static func residentKilobytes() -> Int? {
        guard let executable = executablePath(), let smaps = KernelFile.read("/proc/self/smaps") else { return nil }
        var inCode = false
        var total = 0
        for line in smaps.split(separator: "\n") {
            let fields = line.split(separator: " ", maxSplits: 5, omittingEmptySubsequences: true)
            if let first = fields.first, first.contains("-"), fields.count >= 5, !first.hasSuffix(":") {
                inCode = fields.count == 6 && fields[1] == "r-xp" && fields[5].trimmingCharacters(in: .whitespaces) == executable
            } else if inCode, fields.count >= 2, fields[0] == "Rss:", let kilobytes = Int(fields[1]) {
                total += kilobytes
            }
        }
        return total
    }
}
