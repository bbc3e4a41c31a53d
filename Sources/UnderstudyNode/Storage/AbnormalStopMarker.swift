import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// The file `<directory>/running`: present while the cluster service runs. Found at startup,
/// it means the previous run did not stop cleanly (crash, kill -9, power loss).
public struct AbnormalStopMarker: Sendable {
    public let path: String

    public init(directory: String) {
        self.path = directory + "/running"
    }

    /// Whether a previous run left the marker behind. Ask before `markStarted()`.
    public var wasAbnormalStop: Bool {
        get throws(StorageError) {
            var info = stat()
            if stat(path, &info) == 0 { return true }
            if errno == ENOENT { return false }
            // Unknown is not "clean": the caller must not assume a clean stop.
            throw StorageError(path: path, operation: "cannot check", errorNumber: errno)
        }
    }

    /// Creates the marker durably; call when the cluster service starts.
    public func markStarted(now: Date = Date()) throws(StorageError) {
        // The content is for operators only: which process set it, and when.
        let note = "pid \(getpid()) started \(now.formatted(.iso8601))\n"
        try AtomicFile.write(Array(note.utf8), to: path)
    }

    /// Removes the marker durably; call when the cluster service has stopped cleanly.
    public func markCleanStop() throws(StorageError) {
        try AtomicFile.remove(path)
    }
}
