import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Why a disk heartbeat device cannot be used or prepared.
public struct DiskHeartbeatDeviceError: Error, Equatable, CustomStringConvertible {
    public let description: String
    /// Opening failed with EBUSY.
    let busy: Bool

    public init(_ description: String) { self.init(description, busy: false) }

    init(_ description: String, busy: Bool) {
        self.description = description
        self.busy = busy
    }
}

/// Direct (O_DIRECT) I/O on a disk heartbeat device: aligned buffers, whole blocks, past the
/// page cache, so a read sees what the other servers wrote and not a cached copy.
final class DiskHeartbeatDevice {
    let path: String
    let fd: Int32

    /// O_DIRECT (Glibc does not export it to Swift; the value depends on the architecture).
    #if arch(arm64)
        static let directFlag: Int32 = 0o200000
    #else
        static let directFlag: Int32 = 0o40000
    #endif

    static func errorText(_ code: Int32 = errno) -> String { String(cString: strerror(code)) }

    /// Opens for direct reads and writes; `exclusive` adds O_EXCL (refused while mounted or
    /// held by the kernel).
    init(path: String, exclusive: Bool = false) throws(DiskHeartbeatDeviceError) {
        let fd = open(path, O_RDWR | O_CLOEXEC | Self.directFlag | (exclusive ? O_EXCL : 0))
        guard fd >= 0 else {
            let code = errno
            throw DiskHeartbeatDeviceError(
                code == EBUSY ? "\(path) is in use (mounted or held by the kernel)" : "cannot open \(path): \(Self.errorText(code))",
                busy: code == EBUSY)
        }
        self.path = path
        self.fd = fd
    }

    deinit { close(fd) }

    /// The device's size in bytes.
    func size() throws(DiskHeartbeatDeviceError) -> Int {
        let end = lseek(fd, 0, SEEK_END)
        guard end >= 0 else { throw DiskHeartbeatDeviceError("cannot find the size of \(path): \(Self.errorText())") }
        return Int(end)
    }

    /// Reads `length` bytes (a multiple of the alignment) at `offset`.
    func read(at offset: Int, length: Int) throws(DiskHeartbeatDeviceError) -> [UInt8] {
        let buffer = try AlignedBuffer(length: length)
        var done = 0
        while done < length {
            let got = pread(fd, buffer.pointer + done, length - done, off_t(offset + done))
            if got < 0 {
                if errno == EINTR { continue }
                throw DiskHeartbeatDeviceError("read of \(path) at \(offset + done) failed: \(Self.errorText())")
            }
            if got == 0 { throw DiskHeartbeatDeviceError("read of \(path) at \(offset + done) found the end of the device") }
            done += got
        }
        return buffer.bytes
    }

    /// Writes `bytes` at `offset`, zero-padded to the alignment.
    func write(_ bytes: [UInt8], at offset: Int) throws(DiskHeartbeatDeviceError) {
        let length = Self.aligned(bytes.count)
        let buffer = try AlignedBuffer(length: length)
        bytes.withUnsafeBytes { source in
            if let base = source.baseAddress { buffer.pointer.copyMemory(from: base, byteCount: bytes.count) }
        }
        var done = 0
        while done < length {
            let wrote = pwrite(fd, buffer.pointer + done, length - done, off_t(offset + done))
            if wrote < 0 {
                if errno == EINTR { continue }
                throw DiskHeartbeatDeviceError("write to \(path) at \(offset + done) failed: \(Self.errorText())")
            }
            if wrote == 0 { throw DiskHeartbeatDeviceError("write to \(path) at \(offset + done) wrote nothing") }
            done += wrote
        }
    }

    /// Flushes the device's write cache.
    func flush() throws(DiskHeartbeatDeviceError) {
        guard fsync(fd) == 0 else { throw DiskHeartbeatDeviceError("fsync of \(path) failed: \(Self.errorText())") }
    }

    /// Reads and checks the header.
    func header() throws(DiskHeartbeatDeviceError) -> DiskHeartbeatHeader {
        let bytes = try read(at: 0, length: DiskHeartbeatLayout.alignment)
        switch DiskHeartbeatHeader.decode(bytes) {
        case .success(let header): return header
        case .failure(let problem): throw DiskHeartbeatDeviceError("\(path): \(problem)")
        }
    }

    static func aligned(_ count: Int) -> Int {
        let unit = DiskHeartbeatLayout.alignment
        return max(unit, (count + unit - 1) / unit * unit)
    }

    // MARK: - Checks

    /// Whether `path` is a block device; nil when it is, else why not.
    static func blockDeviceProblem(_ path: String) -> String? {
        var info = stat()
        guard stat(path, &info) == 0 else { return "\(path) does not exist or cannot be read: \(errorText())" }
        guard info.st_mode & S_IFMT == S_IFBLK else { return "\(path) is not a block device" }
        return nil
    }

    /// The device number (major:minor) of a block device.
    static func deviceNumber(_ path: String) -> (major: UInt32, minor: UInt32)? {
        var info = stat()
        guard stat(path, &info) == 0, info.st_mode & S_IFMT == S_IFBLK else { return nil }
        // glibc's encoding of dev_t (sys/sysmacros.h, whose macros Swift does not import).
        let rdev = UInt64(info.st_rdev)
        let major = ((rdev >> 8) & 0xfff) | ((rdev >> 32) & ~UInt64(0xfff))
        let minor = (rdev & 0xff) | ((rdev >> 12) & ~UInt64(0xff))
        return (UInt32(truncatingIfNeeded: major), UInt32(truncatingIfNeeded: minor))
    }

    /// Mount points of the block device `path` (from /proc/self/mountinfo, by device number).
    static func mountPoints(of path: String) -> [String] {
        guard let number = deviceNumber(path),
            let table = KernelFile.read("/proc/self/mountinfo")
        else { return [] }
        let wanted = "\(number.major):\(number.minor)"
        return table.split(separator: "\n").compactMap { line in
            let fields = line.split(separator: " ")
            guard fields.count > 4, fields[2] == wanted else { return nil }
            return String(fields[4])
        }
    }

    /// Whether the block device is active swap (/proc/swaps, by device number).
    static func isSwapInUse(_ path: String) -> Bool {
        guard let number = deviceNumber(path), let table = KernelFile.read("/proc/swaps") else {
            return false
        }
        return table.split(separator: "\n").dropFirst().contains { line in
            guard let name = line.split(separator: " ").first, let other = deviceNumber(String(name)) else { return false }
            return other == number
        }
    }

    /// A file system, swap or volume-manager signature in the first bytes of a device (at
    /// least 72 KiB of them), or nil. Our own header is not one.
    static func foreignSignature(in bytes: [UInt8], pageSize: Int = Int(sysconf(Int32(_SC_PAGESIZE)))) -> String? {
        func has(_ text: String, at offset: Int) -> Bool {
            let magic = Array(text.utf8)
            return bytes.count >= offset + magic.count && bytes[offset..<(offset + magic.count)].elementsEqual(magic)
        }
        if bytes.count > 1081, bytes[1080] == 0x53, bytes[1081] == 0xEF { return "an ext2/ext3/ext4 file system" }
        if has("XFSB", at: 0) { return "an XFS file system" }
        if has("_BHRfS_M", at: 65_600) { return "a Btrfs file system" }
        for page in Set([4096, pageSize]) where page >= 10 {
            if has("SWAPSPACE2", at: page - 10) || has("SWAP-SPACE", at: page - 10) { return "swap space" }
        }
        for sector in 0..<4 where has("LABELONE", at: sector * 512) && has("LVM2 001", at: sector * 512 + 24) {
            return "an LVM physical volume"
        }
        return nil
    }
}

/// A page-aligned heap buffer for O_DIRECT, zero-filled.
final class AlignedBuffer {
    let pointer: UnsafeMutableRawPointer
    let length: Int

    init(length: Int) throws(DiskHeartbeatDeviceError) {
        var raw: UnsafeMutableRawPointer?
        guard posix_memalign(&raw, DiskHeartbeatLayout.alignment, length) == 0, let raw else {
            throw DiskHeartbeatDeviceError("cannot allocate an aligned buffer of \(length) bytes")
        }
        raw.initializeMemory(as: UInt8.self, repeating: 0, count: length)
        pointer = raw
        self.length = length
    }

    deinit { free(pointer) }

    var bytes: [UInt8] { Array(UnsafeRawBufferPointer(start: pointer, count: length)) }
}

/// `understudy diskhb init`: prepares a partition as a disk heartbeat device.
public enum DiskHeartbeatPreparation {
    public struct Prepared: Sendable, Equatable {
        public var slotCount: Int
        public var deviceSize: Int
        /// The device held a disk heartbeat header before (prepared again).
        public var wasPrepared: Bool
    }

    /// Writes the header and zeroes every slot. Refuses a path that is not a block device, a
    /// device smaller than 10 MiB, one that is mounted, active swap or held by the kernel,
    /// and one that holds a file system, swap or an LVM physical volume unless `force`
    /// (`blkid -p` is asked too when installed, for the types this check does not know).
    public static func prepare(_ path: String, force: Bool) throws(DiskHeartbeatDeviceError) -> Prepared {
        if let problem = DiskHeartbeatDevice.blockDeviceProblem(path) {
            throw DiskHeartbeatDeviceError("\(problem): a disk heartbeat needs a partition of a shared disk")
        }
        let mounts = DiskHeartbeatDevice.mountPoints(of: path)
        if !mounts.isEmpty {
            throw DiskHeartbeatDeviceError(
                "\(path) is mounted on \(mounts.joined(separator: ", ")); a disk heartbeat partition is never mounted")
        }
        if DiskHeartbeatDevice.isSwapInUse(path) { throw DiskHeartbeatDeviceError("\(path) is in use as swap") }
        // Exclusive: refused while mounted or held by the kernel. A device that was just
        // attached is often probed for a moment (udev, blkid, an LVM scan): a second at most.
        var attempt = 0
        var opened: DiskHeartbeatDevice?
        while opened == nil {
            switch Result(catching: { () throws(DiskHeartbeatDeviceError) in try DiskHeartbeatDevice(path: path, exclusive: true) }) {
            case .success(let device):
                opened = device
            case .failure(let error):
                attempt += 1
                guard error.busy, attempt < 10 else { throw error }
                usleep(100_000)
            }
        }
        guard let device = opened else { throw DiskHeartbeatDeviceError("cannot open \(path)") }
        let size = try device.size()
        guard size >= DiskHeartbeatLayout.minimumDeviceSize else {
            throw DiskHeartbeatDeviceError(
                "\(path) has \(size) bytes; a disk heartbeat partition needs at least \(DiskHeartbeatLayout.minimumDeviceSize) (10 MiB)")
        }
        let start = try device.read(at: 0, length: 72 * 1024)
        let wasPrepared = start.prefix(DiskHeartbeatHeader.magic.count).elementsEqual(DiskHeartbeatHeader.magic)
        if !force {
            if let found = DiskHeartbeatDevice.foreignSignature(in: start) {
                throw DiskHeartbeatDeviceError("\(path) holds \(found); refusing to overwrite it (use --force to prepare it anyway)")
            }
            if !wasPrepared, let type = blkidType(path) {
                throw DiskHeartbeatDeviceError(
                    "\(path) holds data of type \(type) (blkid); refusing to overwrite it (use --force to prepare it anyway)")
            }
        }
        let slotCount = DiskHeartbeatLayout.slotCount(deviceSize: size)
        // The header region past its first block and every slot, then the header: a device is
        // never taken for prepared before it is, and no leftover signature stays in the
        // header region (Btrfs keeps one at 64 KiB).
        let zeros = [UInt8](repeating: 0, count: 1024 * 1024)
        var offset = DiskHeartbeatLayout.alignment
        let end = DiskHeartbeatLayout.slotOffset(slotCount)
        while offset < end {
            let length = min(zeros.count, end - offset)
            try device.write(Array(zeros.prefix(length)), at: offset)
            offset += length
        }
        try device.flush()
        try device.write(DiskHeartbeatHeader(slotCount: slotCount).encoded(), at: 0)
        try device.flush()
        return Prepared(slotCount: slotCount, deviceSize: size, wasPrepared: wasPrepared)
    }

    /// `blkid -p -o value -s TYPE`: the type of what the device holds, or nil (nothing known,
    /// or blkid not installed).
    static func blkidType(_ path: String) -> String? {
        let candidates = ["/usr/sbin/blkid", "/sbin/blkid", "/usr/bin/blkid"]
        guard let blkid = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else { return nil }
        let outcome = SpawnedProcess.run([blkid, "-p", "-o", "value", "-s", "TYPE", path], errorToNull: true, timeout: .seconds(30))
        let type = outcome.output.trimmingCharacters(in: .whitespacesAndNewlines)
        return outcome.ok && !type.isEmpty ? type : nil
    }
}
