import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// One line of `/proc/self/mountinfo` (proc(5)): a mount as the kernel sees it in this
/// process's mount namespace.
public struct MountEntry: Sendable, Equatable {
    /// `major:minor` of the mounted file system: what `st_dev` of every file on it says (for
    /// btrfs an anonymous device, not the block device).
    public var device: DeviceNumber
    public var mountPoint: String
    public var filesystem: String
    /// The mount source: the block device path, `server:/share`, …
    public var source: String
    public var options: String
}

/// A device number split as the kernel prints it.
public struct DeviceNumber: Sendable, Hashable, CustomStringConvertible {
    public var major: UInt32
    public var minor: UInt32

    public init(major: UInt32, minor: UInt32) {
        self.major = major
        self.minor = minor
    }

    /// From a `dev_t` (`st_dev`, `st_rdev`), glibc's encoding.
    public init(_ value: UInt64) {
        major = UInt32(((value >> 32) & 0xffff_f000) | ((value >> 8) & 0x0000_0fff))
        minor = UInt32(((value >> 12) & 0xffff_ff00) | (value & 0x0000_00ff))
    }

    /// `8:17`
    public init?(text: Substring) {
        let parts = text.split(separator: ":")
        guard parts.count == 2, let major = UInt32(parts[0]), let minor = UInt32(parts[1]) else { return nil }
        self.init(major: major, minor: minor)
    }

    public var description: String { "\(major):\(minor)" }
}

/// Reading the kernel's mount table and `/etc/fstab`.
public enum MountTable {
    /// The mounts of this process's mount namespace; lines that do not parse are skipped
    /// (the kernel writes this file; a reader must not crash on a future field).
    public static func current(path: String = "/proc/self/mountinfo") -> [MountEntry] {
        guard let text = KernelFile.read(path) else { return [] }
        return parse(mountinfo: text)
    }

    public static func parse(mountinfo text: String) -> [MountEntry] {
        text.split(separator: "\n").compactMap(parseLine)
    }

    /// `36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue`
    static func parseLine(_ line: Substring) -> MountEntry? {
        let fields = line.split(separator: " ", omittingEmptySubsequences: true)
        guard fields.count >= 10, let separator = fields.firstIndex(of: "-"), separator >= 6, separator + 2 < fields.count,
            let device = DeviceNumber(text: fields[2])
        else { return nil }
        return MountEntry(
            device: device, mountPoint: unescape(fields[4]), filesystem: String(fields[separator + 1]),
            source: unescape(fields[separator + 2]), options: String(fields[5]))
    }

    /// The kernel writes space, tab, newline and backslash in paths as `\040`, `\011`,
    /// `\012`, `\134`.
    static func unescape(_ field: Substring) -> String {
        guard field.contains("\\") else { return String(field) }
        var bytes: [UInt8] = []
        let utf8 = Array(field.utf8)
        var index = 0
        while index < utf8.count {
            if utf8[index] == UInt8(ascii: "\\"), index + 3 < utf8.count,
                let value = UInt8(String(decoding: utf8[(index + 1)...(index + 3)], as: UTF8.self), radix: 8)
            {
                bytes.append(value)
                index += 4
            } else {
                bytes.append(utf8[index])
                index += 1
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The newest mount at `mountPoint` (the one that covers the others), if any.
    public static func entry(at mountPoint: String, in entries: [MountEntry]) -> MountEntry? {
        let wanted = normalize(mountPoint)
        return entries.last { normalize($0.mountPoint) == wanted }
    }

    static func normalize(_ path: String) -> String {
        var text = path
        while text.count > 1 && text.hasSuffix("/") { text.removeLast() }
        return text
    }

    /// One `/etc/fstab` line that matters to the cluster.
    public struct FstabLine: Sendable, Equatable {
        public var number: Int
        public var spec: String
        public var mountPoint: String
        public var options: [String]
        /// Mounted at boot (`mount -a`): not `noauto`.
        public var mountsAtBoot: Bool { !options.contains("noauto") }
    }

    public static func parse(fstab text: String) -> [FstabLine] {
        var lines: [FstabLine] = []
        for (index, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") { continue }
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard fields.count >= 2 else { continue }
            let options = fields.count >= 4 ? fields[3].split(separator: ",").map(String.init) : ["defaults"]
            lines.append(
                FstabLine(number: index + 1, spec: unescape(fields[0]), mountPoint: unescape(fields[1]), options: options))
        }
        return lines
    }
}

/// Finding and stopping the processes that use a mounted file system, as `fuser -m` does:
/// a process uses it when its working directory, root, executable, an open file or a mapped
/// file lives on it.
public enum MountUsers {
    /// The processes (other than this one) using the file system with device number `device`.
    public static func find(device: DeviceNumber, proc: String = "/proc") -> [pid_t] {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: proc) else { return [] }
        let me = getpid()
        var users: [pid_t] = []
        for name in names {
            // Never this process or init (killing init panics the machine).
            guard let pid = pid_t(name), pid != me, pid > 1 else { continue }
            if uses(pid: pid, device: device, proc: proc) { users.append(pid) }
        }
        return users.sorted()
    }

    static func uses(pid: pid_t, device: DeviceNumber, proc: String) -> Bool {
        let base = "\(proc)/\(pid)"
        for link in ["cwd", "root", "exe"] where onDevice(base + "/" + link, device) { return true }
        if let descriptors = try? FileManager.default.contentsOfDirectory(atPath: base + "/fd") {
            for descriptor in descriptors where onDevice(base + "/fd/" + descriptor, device) { return true }
        }
        // Mapped files (libraries, mmap'ed data): the device field is `major:minor` in hex.
        if let maps = try? String(contentsOfFile: base + "/maps", encoding: .utf8) {
            let wanted = String(format: "%02x:%02x", device.major, device.minor)
            for line in maps.split(separator: "\n") {
                let fields = line.split(separator: " ", maxSplits: 5, omittingEmptySubsequences: true)
                if fields.count >= 5, fields[3] == wanted, fields[4] != "0" { return true }
            }
        }
        return false
    }

    /// stat(2) follows the `/proc` magic link to the file itself.
    static func onDevice(_ path: String, _ device: DeviceNumber) -> Bool {
        var info = stat()
        guard stat(path, &info) == 0 else { return false }
        return DeviceNumber(UInt64(info.st_dev)) == device
    }

    /// Signals every user of `device`: SIGTERM, then SIGKILL to those still there after
    /// `grace` (zero: SIGKILL at once, for fencing). Returns how many were signalled.
    @discardableResult
    public static func stop(device: DeviceNumber, grace: Duration) async -> Int {
        let users = find(device: device)
        guard !users.isEmpty else { return 0 }
        if grace > .zero {
            for pid in users { kill(pid, SIGTERM) }
            let deadline = ContinuousClock.now + grace
            while ContinuousClock.now < deadline {
                if find(device: device).isEmpty { return users.count }
                try? await Task.sleep(for: .milliseconds(50))
            }
        }
        for pid in find(device: device) { kill(pid, SIGKILL) }
        return users.count
    }

    /// SIGKILL to every user at once, without waiting (the fence path).
    @discardableResult
    public static func killNow(device: DeviceNumber) -> [pid_t] {
        let users = find(device: device)
        for pid in users { kill(pid, SIGKILL) }
        return users
    }
}
