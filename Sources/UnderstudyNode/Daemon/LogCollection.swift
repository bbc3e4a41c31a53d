import Crypto
import Foundation
import UnderstudyEngine
import UnderstudyModel

#if canImport(Glibc)
    import Glibc
#endif

// `clplogcc` (reference §2.9): each server builds its own archive (LogArchiveBuilder.swift)
// and the collecting CLI fetches it in chunks, through its local daemon and, for the other
// servers, the control channel. One collection at a time per server.

/// How much `clplogcc -t` collects (docs/commands.md lists every member).
public enum LogCollectionType: String, Codable, Sendable, CaseIterable {
    /// Logs, status, redacted configuration, state records and system facts (the default).
    case type1
    /// type1 plus rotated log generations, longer journal excerpts and larger file limits.
    case type2
    /// Minimal: logs and status.
    case type3
}

/// One step of a collection, sent by the collecting CLI to each server.
public enum LogCollectionStep: Codable, Sendable, Equatable {
    /// Start building the archive. `collection` identifies the collecting run (a second,
    /// different one is refused while this one lasts); `label` is the time stamp of its
    /// file names (`YYYYMMDD-HHMMSS`); `collector` names the server the CLI runs on.
    case prepare(collection: String, type: LogCollectionType, label: String, collector: ServerName)
    /// How the build goes: `.building`, `.ready` or `.failed`.
    case poll(collection: String)
    /// Up to `LogCollector.chunkSize` bytes of the archive from `offset`.
    case read(collection: String, offset: UInt64)
    /// The archive arrived (or the collection was abandoned): remove it.
    case finish(collection: String)

    public var collection: String {
        switch self {
        case .prepare(let collection, _, _, _), .poll(let collection), .read(let collection, _), .finish(let collection):
            collection
        }
    }
}

/// What a server built.
public struct LogArchiveInfo: Codable, Sendable, Equatable {
    /// `understudy-logs-SERVER-YYYYMMDD-HHMMSS.tar.gz`.
    public var fileName: String
    public var size: UInt64
    /// SHA-256 of the archive, hex: the collector checks what it wrote.
    public var sha256: String
    /// What was left out or cut, and why (also in the archive's MANIFEST.txt).
    public var notes: [String]

    public init(fileName: String, size: UInt64, sha256: String, notes: [String]) {
        self.fileName = fileName
        self.size = size
        self.sha256 = sha256
        self.notes = notes
    }
}

public enum LogCollectionAnswer: Codable, Sendable, Equatable {
    case building
    case ready(LogArchiveInfo)
    case chunk(offset: UInt64, bytes: Data)
    case finished
    /// Another collection runs on this server (reference §2.9: concurrent collections are
    /// not allowed); the text says whose and since when.
    case busy(String)
    case failed(String)
}

/// The collection a server takes part in: at most one at a time. An abandoned one (its
/// collector died) expires `idleLimit` (120 s) after its last request, and its files go with it.
public actor LogCollector {
    /// Raw bytes per `read`: base64 in JSON makes it about 1.4 MiB, well inside a control
    /// frame (4 MiB) and a local-socket frame (4 MiB).
    public static let chunkSize = 1024 * 1024
    public static let defaultIdleLimit: Duration = .seconds(120)

    enum Phase {
        /// The task is nil while the sources are being gathered.
        case building(Task<Void, Never>?)
        case ready(LogArchiveInfo, path: String)
        case failed(String)
    }

    struct Current {
        var id: String
        var collector: ServerName
        var startedAt: Date
        var lastTouched: ContinuousClock.Instant
        var phase: Phase
        var directory: String
    }

    let workRoot: String
    let idleLimit: Duration
    var current: Current?

    /// `workRoot` holds the archives being built and served (`STATE/logcc`); whatever an
    /// earlier daemon left there is removed.
    public init(workRoot: String, idleLimit: Duration = LogCollector.defaultIdleLimit) {
        self.workRoot = workRoot
        self.idleLimit = idleLimit
        try? FileManager.default.removeItem(atPath: workRoot)
    }

    /// Runs one step; `sources` is asked for what to collect only when a build starts.
    public func handle(
        _ step: LogCollectionStep, sources: @Sendable (LogCollectionType, String) async -> LogArchiveSources
    ) async -> LogCollectionAnswer {
        expireIfIdle()
        switch step {
        case .prepare(let id, let type, let label, let collector):
            if let current {
                guard current.id == id else {
                    let since = Self.timeText(current.startedAt)
                    return .busy(
                        "Another log collection (from \(current.collector), started \(since)) is in progress on this server; try again when it has ended."
                    )
                }
                touch()
                return answer(for: current.phase)
            }
            guard Self.isValidLabel(label), Self.isValidID(id) else { return .failed("malformed collection request") }
            let directory = workRoot + "/" + id
            // Taken before the first suspension: a second prepare meanwhile finds it busy.
            current = Current(
                id: id, collector: collector, startedAt: Date(), lastTouched: .now, phase: .building(nil), directory: directory)
            let what = await sources(type, label)
            guard self.current?.id == id else { return .failed("the log collection \(id) was finished while it started") }
            let task = Task.detached { [weak self] in
                let outcome: Result<(LogArchiveInfo, String), LogArchiveError>
                do throws(LogArchiveError) {
                    outcome = .success(try await LogArchiveBuilder.build(what, in: directory))
                } catch {
                    outcome = .failure(error)
                }
                await self?.built(id: id, outcome: outcome)
            }
            self.current?.phase = .building(task)
            return .building
        case .poll(let id):
            guard let current, current.id == id else {
                return .failed("no log collection \(id) on this server (it expired or was finished)")
            }
            touch()
            return answer(for: current.phase)
        case .read(let id, let offset):
            guard let current, current.id == id else {
                return .failed("no log collection \(id) on this server (it expired or was finished)")
            }
            touch()
            guard case .ready(let info, let path) = current.phase else { return answer(for: current.phase) }
            guard offset <= info.size else { return .failed("offset \(offset) is past the end of the archive (\(info.size) bytes)") }
            do {
                return .chunk(offset: offset, bytes: try Self.readChunk(path: path, offset: offset, count: Self.chunkSize))
            } catch {
                return .failed("cannot read the archive: \(error)")
            }
        case .finish(let id):
            guard let current, current.id == id else { return .finished }
            drop(current)
            return .finished
        }
    }

    /// The archive of the current collection, while it exists (tests).
    public var currentArchivePath: String? {
        guard let current, case .ready(_, let path) = current.phase else { return nil }
        return path
    }

    func built(id: String, outcome: Result<(LogArchiveInfo, String), LogArchiveError>) {
        guard var current, current.id == id else {
            // Finished or expired while building: nothing serves the files.
            try? FileManager.default.removeItem(atPath: workRoot + "/" + id)
            return
        }
        switch outcome {
        case .success(let (info, path)): current.phase = .ready(info, path: path)
        case .failure(let error): current.phase = .failed(error.description)
        }
        self.current = current
    }

    func answer(for phase: Phase) -> LogCollectionAnswer {
        switch phase {
        case .building: .building
        case .ready(let info, _): .ready(info)
        case .failed(let reason): .failed(reason)
        }
    }

    func touch() { current?.lastTouched = .now }

    func expireIfIdle() {
        guard let current, current.lastTouched.duration(to: .now) > idleLimit else { return }
        drop(current)
    }

    func drop(_ collection: Current) {
        if case .building(let task) = collection.phase { task?.cancel() }
        try? FileManager.default.removeItem(atPath: collection.directory)
        current = nil
    }

    static func readChunk(path: String, offset: UInt64, count: Int) throws -> Data {
        guard let handle = FileHandle(forReadingAtPath: path) else { throw LogArchiveError("cannot open \(path)") }
        defer { try? handle.close() }
        try handle.seek(toOffset: offset)
        return try handle.read(upToCount: count) ?? Data()
    }

    static func isValidLabel(_ label: String) -> Bool {
        !label.isEmpty && label.count <= 32 && label.allSatisfy { $0.isASCII && ($0.isNumber || $0 == "-") }
    }

    static func isValidID(_ id: String) -> Bool {
        !id.isEmpty && id.count <= 64 && id.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }
    }

    /// `2026-12-06 14:30:12`, local time.
    static func timeText(_ date: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.dateFormat = "yyyy-MM-dd HH:mm:ss"
        return formatter.string(from: date)
    }
}
