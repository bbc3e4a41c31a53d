import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// A file operation on durable state failed; the message names the file and the cause.
public struct StorageError: Error, Sendable, Equatable, CustomStringConvertible {
    public var path: String
    public var message: String

    public init(path: String, message: String) {
        self.path = path
        self.message = message
    }

    init(path: String, operation: String, errorNumber: Int32) {
        self.init(path: path, message: "\(operation) \(path): \(String(cString: strerror(errorNumber)))")
    }

    public var description: String { message }
}

/// Durable whole-file writes (invariant I5): after a crash at any moment the file holds either
/// its old or its new complete content, never a mix or nothing.
///
/// A write goes to a temporary file in the same folder, is fsync'ed, renamed over the target,
/// and then the folder is fsync'ed so the rename itself survives a power loss.
public enum AtomicFile {
    /// Permissions of folders this creates: state is the daemon's alone.
    public static let folderMode: mode_t = 0o700
    public static let fileMode: mode_t = 0o600
    static let temporaryMarker = ".tmp-"

    public static func write(_ data: Data, to path: String, mode: mode_t = fileMode) throws(StorageError) {
        let bytes = [UInt8](data)
        try write(bytes, to: path, mode: mode)
    }

    public static func write(_ bytes: [UInt8], to path: String, mode: mode_t = fileMode) throws(StorageError) {
        let (folder, name) = split(path)
        try createFolder(folder)
        let temporaryPath =
            folder + "/." + name + temporaryMarker + String(getpid()) + "-"
            + String(UInt32.random(in: 0...UInt32.max), radix: 16)
        let descriptor = open(temporaryPath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
        guard descriptor >= 0 else {
            throw StorageError(path: temporaryPath, operation: "cannot create", errorNumber: errno)
        }
        var succeeded = false
        defer {
            if !succeeded { unlink(temporaryPath) }
        }
        do {
            defer { close(descriptor) }
            // The umask may have narrowed the mode, never widened it; make it exact.
            _ = fchmod(descriptor, mode)
            try writeAll(bytes, to: descriptor, path: temporaryPath)
            guard fsync(descriptor) == 0 else {
                throw StorageError(path: temporaryPath, operation: "cannot fsync", errorNumber: errno)
            }
        }
        guard rename(temporaryPath, path) == 0 else {
            throw StorageError(path: path, operation: "cannot replace", errorNumber: errno)
        }
        succeeded = true
        try syncFolder(folder)
    }

    /// The file's content, or nil when it does not exist. Any other failure throws.
    public static func read(_ path: String) throws(StorageError) -> Data? {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else {
            if errno == ENOENT { return nil }
            throw StorageError(path: path, operation: "cannot open", errorNumber: errno)
        }
        defer { close(descriptor) }
        var data = Data()
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let count = chunk.withUnsafeMutableBytes { systemRead(descriptor, $0.baseAddress, $0.count) }
            if count > 0 {
                data.append(contentsOf: chunk[..<count])
            } else if count == 0 {
                return data
            } else if errno != EINTR {
                throw StorageError(path: path, operation: "cannot read", errorNumber: errno)
            }
        }
    }

    /// Removes the file durably; a file that is already absent is fine.
    public static func remove(_ path: String) throws(StorageError) {
        guard unlink(path) == 0 else {
            if errno == ENOENT { return }
            throw StorageError(path: path, operation: "cannot remove", errorNumber: errno)
        }
        try syncFolder(split(path).folder)
    }

    public static func exists(_ path: String) -> Bool {
        access(path, F_OK) == 0
    }

    // MARK: - Helpers

    static func split(_ path: String) -> (folder: String, name: String) {
        let url = URL(fileURLWithPath: path)
        return (url.deletingLastPathComponent().path, url.lastPathComponent)
    }

    /// `mkdir -p` with mode 0700, making each new folder durable in its parent.
    static func createFolder(_ folder: String) throws(StorageError) {
        var info = stat()
        if stat(folder, &info) == 0 {
            guard info.st_mode & S_IFMT == S_IFDIR else {
                throw StorageError(path: folder, message: "\(folder) exists but is not a folder")
            }
            return
        }
        let parent = split(folder).folder
        if parent != folder { try createFolder(parent) }
        if mkdir(folder, folderMode) != 0 && errno != EEXIST {
            throw StorageError(path: folder, operation: "cannot create folder", errorNumber: errno)
        }
        try syncFolder(parent)
    }

    static func syncFolder(_ folder: String) throws(StorageError) {
        let descriptor = open(folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard descriptor >= 0 else {
            throw StorageError(path: folder, operation: "cannot open folder", errorNumber: errno)
        }
        defer { close(descriptor) }
        // Some file systems cannot fsync folders (EINVAL); their renames are not made less
        // durable by trying.
        if fsync(descriptor) != 0 && errno != EINVAL {
            throw StorageError(path: folder, operation: "cannot fsync folder", errorNumber: errno)
        }
    }

    private static func writeAll(_ bytes: [UInt8], to descriptor: Int32, path: String) throws(StorageError) {
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeBytes { buffer -> Int in
                guard let base = buffer.baseAddress else { return 0 }
                return systemWrite(descriptor, base + offset, buffer.count - offset)
            }
            if written < 0 {
                if errno == EINTR { continue }
                throw StorageError(path: path, operation: "cannot write", errorNumber: errno)
            }
            offset += written
        }
    }
}

// The enum's own `read`/`write` hide the C functions inside it.
private func systemWrite(_ descriptor: Int32, _ buffer: UnsafeRawPointer, _ count: Int) -> Int {
    write(descriptor, buffer, count)
}

private func systemRead(_ descriptor: Int32, _ buffer: UnsafeMutableRawPointer?, _ count: Int) -> Int {
    read(descriptor, buffer, count)
}
