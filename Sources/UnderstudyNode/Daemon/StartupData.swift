import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Gives back the pages of the executable's read-only data that only the program's start read.
///
/// The static binary's `.rodata` is about 37 MB: ICU's data (34 MB), CoreFoundation's and the
/// Swift runtime's Unicode tables, BoringSSL's constants, Swift's metadata strings. The start
/// reads a few MiB of it (locale and Unicode set-up, argument parsing, the configuration's
/// checks), and the kernel maps each page read with its neighbours, so an idle daemon kept
/// 3.9–4.3 MiB of it resident while reading almost none of it afterwards (docs/benchmarks.md).
/// Unlike code (`StartupCode`), these pages sit in a writable mapping: Swift's objects put
/// constants that need relocating in a writable `.rodata`, so the linker makes the whole output
/// section writable, and dropping a page that was written (relocated) would lose the write.
///
/// So the section is made read-only first (`mprotect`): from then on no page of it can be
/// written — a stray write faults at once instead of being lost later — and the set of its
/// copied-on-write pages is fixed. Then `/proc/self/pagemap` tells which pages are copies (the
/// relocated ones, a handful) and every run of pages between them is dropped
/// (`MADV_DONTNEED`): those map the file's page cache, and reading them again maps them again
/// (a minor fault). Nothing is done when any step cannot be checked: no section header, a
/// section not inside one mapping of the executable, no pagemap.
public enum StartupData {
    /// A section of an ELF file as its header says: the address relative to the load base.
    struct Section: Equatable {
        var name: String
        var address: UInt
        var size: UInt
        var flags: UInt64
    }

    static let allocatedFlag: UInt64 = 0x2

    /// The sections of a 64-bit little-endian ELF file, read through `read(offset, count)`
    /// (nil: not such a file, or a header that points outside what it can read). Every
    /// offset and count comes from the file, so each is checked before use.
    static func sections(read: (UInt64, Int) -> [UInt8]?) -> [Section]? {
        guard let header = read(0, 64), header.count == 64, header[0..<4] == [0x7f, 0x45, 0x4c, 0x46],
            header[4] == 2, header[5] == 1
        else { return nil }
        let sectionOffset = header.load(UInt64.self, at: 0x28)
        let entrySize = Int(header.load(UInt16.self, at: 0x3a))
        let count = Int(header.load(UInt16.self, at: 0x3c))
        let namesIndex = Int(header.load(UInt16.self, at: 0x3e))
        guard entrySize == 64, count > 0, namesIndex < count, let table = read(sectionOffset, entrySize * count),
            table.count == entrySize * count
        else { return nil }
        func field<T: FixedWidthInteger>(_ type: T.Type, _ index: Int, _ offset: Int) -> T {
            table.load(T.self, at: index * entrySize + offset)
        }
        let namesSize = field(UInt64.self, namesIndex, 32)
        guard namesSize <= 1 << 20, let names = read(field(UInt64.self, namesIndex, 24), Int(namesSize)),
            names.count == Int(namesSize)
        else { return nil }
        return (0..<count).compactMap { index in
            let nameOffset = Int(field(UInt32.self, index, 0))
            guard nameOffset < names.count, let end = names[nameOffset...].firstIndex(of: 0) else { return nil }
            let address = field(UInt64.self, index, 16)
            let size = field(UInt64.self, index, 32)
            guard address <= UInt64(UInt.max) - size else { return nil }
            return Section(
                name: String(decoding: names[nameOffset..<end], as: UTF8.self), address: UInt(address), size: UInt(size),
                flags: field(UInt64.self, index, 8))
        }
    }

    /// A mapping of `/proc/self/maps` (or a header line of `/proc/self/smaps`).
    struct Mapping: Equatable {
        var start: UInt
        var end: UInt
        var permissions: String
        var offset: UInt
        var path: String

        /// `start-end perms offset device inode [path]` (the path may hold spaces); nil for
        /// any other line (an smaps field line, garbage).
        init?(line: Substring) {
            let fields = line.split(separator: " ", maxSplits: 5, omittingEmptySubsequences: true)
            guard fields.count >= 5, !fields[0].hasSuffix(":") else { return nil }
            let bounds = fields[0].split(separator: "-")
            guard bounds.count == 2, let start = UInt(bounds[0], radix: 16), let end = UInt(bounds[1], radix: 16), end > start,
                let offset = UInt(fields[2], radix: 16)
            else { return nil }
            self.init(
                start: start, end: end, permissions: String(fields[1]), offset: offset,
                path: fields.count == 6 ? fields[5].trimmingCharacters(in: .whitespaces) : "")
        }

        init(start: UInt, end: UInt, permissions: String, offset: UInt, path: String) {
            self.start = start
            self.end = end
            self.permissions = permissions
            self.offset = offset
            self.path = path
        }
    }

    static func mappings(maps: String) -> [Mapping] {
        maps.split(separator: "\n").compactMap { Mapping(line: $0) }
    }

    /// The whole pages of `section` in memory, when they lie inside one private mapping of
    /// `path` loaded at the base its offset-0 mapping gives.
    static func pages(of section: Section, path: String, mappings: [Mapping], pageSize: UInt) -> Range<UInt>? {
        let own = mappings.filter { $0.path == path }
        guard let base = own.first(where: { $0.offset == 0 })?.start else { return nil }
        let (start, startOverflow) = base.addingReportingOverflow(section.address)
        let (end, endOverflow) = start.addingReportingOverflow(section.size)
        guard !startOverflow, !endOverflow else { return nil }
        let first = (start + pageSize - 1) / pageSize * pageSize
        let last = end / pageSize * pageSize
        guard first < last,
            own.contains(where: { $0.start <= first && last <= $0.end && $0.permissions.hasSuffix("p") })
        else { return nil }
        return first..<last
    }

    /// Runs of pages that hold no copy of their own, from pagemap entries (one per page of
    /// `pages`): a page present and not a file page, or swapped out, is a copy and is kept.
    static func droppableRuns(pages: Range<UInt>, entries: [UInt64], pageSize: UInt) -> [Range<UInt>] {
        var runs: [Range<UInt>] = []
        var runStart: UInt?
        for (index, entry) in entries.enumerated() {
            let page = pages.lowerBound + UInt(index) * pageSize
            let present = entry >> 63 & 1 == 1
            let swapped = entry >> 62 & 1 == 1
            let filePage = entry >> 61 & 1 == 1
            let isCopy = swapped || (present && !filePage)
            if isCopy {
                if let start = runStart { runs.append(start..<page) }
                runStart = nil
            } else if runStart == nil {
                runStart = page
            }
        }
        if let start = runStart { runs.append(start..<(pages.lowerBound + UInt(entries.count) * pageSize)) }
        return runs
    }

    /// Makes the executable's `.rodata` read-only and drops its pages that are the file's.
    /// Returns the bytes dropped (0 when nothing could be done; the daemon keeps its pages).
    @discardableResult
    public static func release() -> UInt {
        let pageSize = UInt(sysconf(Int32(_SC_PAGESIZE)))
        guard let pages = readOnlyDataPages(pageSize: pageSize), let address = UnsafeMutableRawPointer(bitPattern: pages.lowerBound)
        else { return 0 }
        guard mprotect(address, Int(pages.upperBound - pages.lowerBound), PROT_READ) == 0 else { return 0 }
        guard let entries = pagemap(pages, pageSize: pageSize) else { return 0 }
        var released: UInt = 0
        for run in droppableRuns(pages: pages, entries: entries, pageSize: pageSize) {
            guard let start = UnsafeMutableRawPointer(bitPattern: run.lowerBound) else { continue }
            let length = run.upperBound - run.lowerBound
            if madvise(start, Int(length), MADV_DONTNEED) == 0 { released += length }
        }
        return released
    }

    /// The whole pages of this executable's `.rodata` in memory (nil when they cannot be told).
    static func readOnlyDataPages(pageSize: UInt) -> Range<UInt>? {
        guard pageSize > 0, let path = ownExecutable(),
            let rodata = readSections(path: path)?.first(where: { $0.name == ".rodata" && $0.flags & allocatedFlag != 0 }),
            let maps = KernelFile.read("/proc/self/maps")
        else { return nil }
        return pages(of: rodata, path: path, mappings: mappings(maps: maps), pageSize: pageSize)
    }

    /// The executable's path as `/proc/self/maps` names it.
    static func ownExecutable() -> String? {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let length = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard length > 0 else { return nil }
        return String(decoding: buffer[0..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    static func readSections(path: String) -> [Section]? {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return nil }
        defer { close(descriptor) }
        return sections { offset, count in
            guard count >= 0, count <= 1 << 20, offset <= UInt64(Int.max) else { return nil }
            var bytes = [UInt8](repeating: 0, count: count)
            let read = bytes.withUnsafeMutableBytes { pread(descriptor, $0.baseAddress, count, off_t(offset)) }
            return read == count ? bytes : nil
        }
    }

    /// The pagemap entries of `pages` (/proc/self/pagemap: 8 bytes per page).
    static func pagemap(_ pages: Range<UInt>, pageSize: UInt) -> [UInt64]? {
        let descriptor = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return nil }
        defer { close(descriptor) }
        let count = Int((pages.upperBound - pages.lowerBound) / pageSize)
        var entries = [UInt64](repeating: 0, count: count)
        let bytes = count * 8
        let read = entries.withUnsafeMutableBytes {
            pread(descriptor, $0.baseAddress, bytes, off_t(pages.lowerBound / pageSize * 8))
        }
        return read == bytes ? entries : nil
    }

    /// Resident kilobytes of the executable's `.rodata` (for tests); nil when it cannot be told.
    static func residentKilobytes() -> Int? {
        let pageSize = UInt(sysconf(Int32(_SC_PAGESIZE)))
        guard let pages = readOnlyDataPages(pageSize: pageSize), let entries = pagemap(pages, pageSize: pageSize) else { return nil }
        return entries.filter { $0 >> 63 & 1 == 1 }.count * Int(pageSize) / 1024
    }
}

extension [UInt8] {
    /// A little-endian integer at `offset` (the caller has checked the bounds).
    fileprivate func load<T: FixedWidthInteger>(_ type: T.Type, at offset: Int) -> T {
        var value: T = 0
        for index in 0..<MemoryLayout<T>.size { value |= T(self[offset + index]) << (8 * index) }
        return value
    }
}
