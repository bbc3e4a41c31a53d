import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Gives back the pages of machine code that only the program's start needed.
///
/// The binary is one static file of about 50 MB of code (the Swift runtime, Foundation, NIO,
/// Yams, …). Starting touches code all over it — argument parsing, YAML, the configuration's
/// checks, the runtime's type lookups — and the kernel maps each touched page with its
/// neighbours (fault-around, 64 KiB), so an idle daemon kept about 29 MiB of code resident
/// while it used under 6 MiB of it in a minute (measured with `clear_refs` and `Referenced:`
/// in smaps, docs/benchmarks.md). The shared libraries' code (libc, libstdc++ for ICU, libm)
/// is the same story on a smaller scale, about 3 MiB. These pages are the files', clean and
/// shared, and cost no swap; but they count as the daemon's memory, and the kernel keeps them
/// longer than the page cache it could use better.
///
/// Once started, the daemon (and its keeper) drop their mappings of code (`MADV_DONTNEED` on
/// every `r-xp` mapping of a file: the executable's and the libraries'): the next call of a
/// function maps its page again from the page cache (a minor fault, about a microsecond per
/// 64 KiB), so what stays resident is what the daemon runs. Safe only for such a mapping while
/// none of its pages was ever written: it is private and read-only, and a position-independent
/// executable linked with `-z now` (or a library without text relocations) never writes it, so
/// dropping it loses nothing. A mapping with any anonymous (copied-on-write) page — text
/// relocations, a debugger's breakpoint — is left alone, as are data, relocated data, heap and
/// anonymous code.
public enum StartupCode {
    struct CodeMapping: Equatable {
        var start: UInt
        var length: UInt
        var path: String
        var residentKilobytes: Int
    }

    /// The mappings of `smaps` (the text of `/proc/self/smaps`) that map a file readable and
    /// executable and hold no anonymous page: code that can be dropped and read again.
    static func codeMappings(smaps: String) -> [CodeMapping] {
        var mappings: [CodeMapping] = []
        var current: CodeMapping?
        var currentIsClean = true
        func finish() {
            if let mapping = current, currentIsClean { mappings.append(mapping) }
            current = nil
        }
        for line in smaps.split(separator: "\n") {
            if let mapping = StartupData.Mapping(line: line) {
                finish()
                guard mapping.permissions == "r-xp", mapping.path.hasPrefix("/") else { continue }
                current = CodeMapping(
                    start: mapping.start, length: mapping.end - mapping.start, path: mapping.path, residentKilobytes: 0)
                currentIsClean = true
                continue
            }
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            if current != nil, fields.count >= 2, let kilobytes = Int(fields[1]) {
                if fields[0] == "Rss:" { current?.residentKilobytes = kilobytes }
                if fields[0] == "Anonymous:", kilobytes > 0 { currentIsClean = false }
            }
        }
        finish()
        return mappings
    }

    /// Drops the mappings of the program's code pages; they come back as they are run.
    /// Returns the bytes of code whose pages were given back (0 when nothing could be done:
    /// no /proc, an unexpected layout — then the daemon just keeps its pages).
    @discardableResult
    public static func release() -> UInt {
        guard let smaps = KernelFile.read("/proc/self/smaps") else { return 0 }
        var released: UInt = 0
        for mapping in codeMappings(smaps: smaps) {
            guard let address = UnsafeMutableRawPointer(bitPattern: mapping.start) else { continue }
            if madvise(address, Int(mapping.length), MADV_DONTNEED) == 0 { released += mapping.length }
        }
        trimHeap()
        return released
    }

    /// Gives the heap's free pages back (`malloc_trim(0)`): what the start allocated and freed
    /// (the configuration's text, YAML nodes, the checks' scratch) leaves whole free pages in
    /// the middle of the heap and the arenas, which glibc keeps unless asked. (Declared in
    /// malloc.h, which Swift's Glibc module does not bring in.)
    static func trimHeap() {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "malloc_trim") else { return }
        typealias MallocTrim = @convention(c) (Int) -> Int32
        _ = unsafeBitCast(symbol, to: MallocTrim.self)(0)
    }

    /// Resident kilobytes of the program's code mappings (the `Rss:` of every clean `r-xp`
    /// mapping of a file in `/proc/self/smaps`), for tests and the footprint benchmark.
    public static func residentKilobytes() -> Int? {
        guard let smaps = KernelFile.read("/proc/self/smaps") else { return nil }
        return codeMappings(smaps: smaps).reduce(0) { $0 + $1.residentKilobytes }
    }
}
