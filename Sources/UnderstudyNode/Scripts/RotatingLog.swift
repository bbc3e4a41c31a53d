import Foundation
import Logging
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// Append-only log file of one resource's scripts, rotated by size.
///
/// When the file passes `rotateSize` bytes it becomes `NAME.1` (`NAME.1` becomes `NAME.2`, …,
/// keeping `keptGenerations` old files) and a new `NAME` is started. Writes never fail the
/// caller: a failure is counted and reported once through the logger, and the next write tries
/// again (the folder may have been recreated meanwhile).
///
/// With `rotateRecords` the file rotates after that many lines instead (the alert log: the
/// reference keeps 10,000 records), counted from the file's contents when it is opened.
///
/// Use one instance per file and share it between the runs of that resource: rotation is
/// coordinated by the instance, not by the file system.
public final class RotatingLog: Sendable {
    public let path: String
    public let rotateSize: Int
    public let keptGenerations: Int
    private let recordLimit: Mutex<Int?>
    private let logger: Logger?
    private let state = Mutex(State())

    private struct State {
        var descriptor: Int32 = -1
        var size = 0
        var records = 0
        /// Whether the last byte written was a newline, so headers start on their own line.
        var atLineStart = true
        var failureCount = 0
        var failureReported = false
    }

    public init(
        path: String, rotateSize: Int = 4 * 1024 * 1024, keptGenerations: Int = 2, rotateRecords: Int? = nil,
        logger: Logger? = nil
    ) {
        self.path = path
        self.rotateSize = max(1, rotateSize)
        self.recordLimit = Mutex(rotateRecords.map { max(1, $0) })
        self.keptGenerations = max(0, keptGenerations)
        self.logger = logger
    }

    deinit {
        state.withLock { state in
            if state.descriptor >= 0 { close(state.descriptor) }
        }
    }

    /// Lines per file before a rotation (record-counted logs only); changed by an online apply.
    public func setRotateRecords(_ records: Int) {
        recordLimit.withLock { $0 = max(1, records) }
    }

    /// How many writes (or opens, or rotations) failed since this log was created.
    public var failureCount: Int { state.withLock { $0.failureCount } }

    /// Appends raw output bytes as they are.
    public func append(_ bytes: UnsafeRawBufferPointer) {
        guard !bytes.isEmpty else { return }
        state.withLock { state in appendLocked(bytes, into: &state) }
    }

    public func append(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { append($0) }
    }

    /// Appends one line of text, starting a new line first if output left one unfinished.
    public func appendLine(_ line: String) {
        state.withLock { state in
            // Opened first: a file left mid-line by a crash is known before the line is built.
            guard openIfNeeded(&state) else { return }
            var text = state.atLineStart ? "" : "\n"
            text += line
            if !line.hasSuffix("\n") { text += "\n" }
            Array(text.utf8).withUnsafeBytes { appendLocked($0, into: &state) }
        }
    }

    /// Closes the file; the next write reopens it.
    public func closeFile() {
        state.withLock { state in
            if state.descriptor >= 0 { close(state.descriptor) }
            state.descriptor = -1
        }
    }

    // MARK: - Internals (called with the lock held)

    private func appendLocked(_ bytes: UnsafeRawBufferPointer, into state: inout State) {
        guard let base = bytes.baseAddress, openIfNeeded(&state) else { return }
        var offset = 0
        while offset < bytes.count {
            let written = write(state.descriptor, base + offset, bytes.count - offset)
            if written < 0 {
                if errno == EINTR { continue }
                recordFailure("cannot write to \(path): \(String(cString: strerror(errno)))", &state)
                // Reopen next time: the file may have been removed or the disk freed.
                close(state.descriptor)
                state.descriptor = -1
                return
            }
            offset += written
        }
        state.size += bytes.count
        if let last = bytes.last { state.atLineStart = last == UInt8(ascii: "\n") }
        if let records = recordLimit.withLock({ $0 }) {
            state.records += bytes.reduce(0) { $0 + ($1 == UInt8(ascii: "\n") ? 1 : 0) }
            if state.records >= records { rotate(&state) }
        } else if state.size >= rotateSize {
            rotate(&state)
        }
    }

    private func openIfNeeded(_ state: inout State) -> Bool {
        if state.descriptor >= 0 { return true }
        let folder = (path as NSString).deletingLastPathComponent
        if !folder.isEmpty {
            do {
                try FileManager.default.createDirectory(
                    atPath: folder, withIntermediateDirectories: true,
                    attributes: [.posixPermissions: 0o750])
            } catch {
                recordFailure("cannot create log folder \(folder): \(error.localizedDescription)", &state)
                return false
            }
        }
        let descriptor = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o640)
        guard descriptor >= 0 else {
            recordFailure("cannot open \(path): \(String(cString: strerror(errno)))", &state)
            return false
        }
        var info = stat()
        state.size = fstat(descriptor, &info) == 0 ? Int(info.st_size) : 0
        state.descriptor = descriptor
        state.records = 0
        if recordLimit.withLock({ $0 }) != nil, let data = FileManager.default.contents(atPath: path) {
            state.records = data.reduce(0) { $0 + ($1 == UInt8(ascii: "\n") ? 1 : 0) }
            state.atLineStart = data.last.map { $0 == UInt8(ascii: "\n") } ?? true
        }
        return true
    }

    private func rotate(_ state: inout State) {
        close(state.descriptor)
        state.descriptor = -1
        state.size = 0
        state.records = 0
        if keptGenerations == 0 {
            if unlink(path) != 0 && errno != ENOENT {
                recordFailure("cannot remove full log \(path): \(String(cString: strerror(errno)))", &state)
            }
            return
        }
        // Shift NAME.(n-1) → NAME.n, …, NAME → NAME.1; rename replaces the oldest atomically.
        for generation in stride(from: keptGenerations - 1, through: 1, by: -1) {
            let older = "\(path).\(generation)"
            if rename(older, "\(path).\(generation + 1)") != 0 && errno != ENOENT {
                recordFailure("cannot rotate \(older): \(String(cString: strerror(errno)))", &state)
            }
        }
        if rename(path, "\(path).1") != 0 && errno != ENOENT {
            recordFailure("cannot rotate \(path): \(String(cString: strerror(errno)))", &state)
        }
    }

    private func recordFailure(_ message: String, _ state: inout State) {
        state.failureCount += 1
        // Once is enough: a full disk would otherwise flood the daemon's own log.
        guard !state.failureReported else { return }
        state.failureReported = true
        logger?.warning("script log write failed (further failures are only counted): \(message)")
    }
}
