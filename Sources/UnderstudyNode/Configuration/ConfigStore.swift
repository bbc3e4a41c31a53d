import Foundation
import UnderstudyModel

/// The version of the configuration a server runs (`config-version.json` in the state
/// folder).
public struct ConfigVersionRecord: Sendable, Codable, Equatable {
    public var version: UInt64
    /// The identity of the configuration of that version (`ConfigBundle.hash`).
    public var hash: String

    public init(version: UInt64, hash: String) {
        self.version = version
        self.hash = hash
    }
}

/// A configuration stored by phase 1 of an apply and not switched to yet
/// (`config-pending.json`).
public struct PendingConfiguration: Sendable, Codable, Equatable {
    public var version: UInt64
    public var hash: String
    /// The version the coordinator ran when it began (the one this replaces).
    public var base: UInt64
    /// The server that coordinates the apply.
    public var coordinator: String
    public var bundle: ConfigBundle

    public init(version: UInt64, hash: String, base: UInt64, coordinator: String, bundle: ConfigBundle) {
        self.version = version
        self.hash = hash
        self.base = base
        self.coordinator = coordinator
        self.bundle = bundle
    }
}

/// The durable records of configuration versions in a server's state folder, written through
/// `StateStore` (write, fsync, rename: invariant I5). A file that cannot be used is never
/// deleted: `load` throws an error naming it, and `setAside` moves it out of the way with a
/// name that says why, so the operator still has it.
public struct ConfigStore: Sendable {
    public static let versionName = "config-version"
    public static let pendingName = "config-pending"
    let store: StateStore

    public init(directory: String) {
        store = StateStore(directory: directory)
    }

    public var versionPath: String { store.path(for: Self.versionName) }
    public var pendingPath: String { store.path(for: Self.pendingName) }

    /// The running version, nil when none was recorded. Throws `CorruptStateError` (naming
    /// the file) when the file is not a valid record.
    public func runningVersion() throws -> ConfigVersionRecord? {
        guard let record = try store.load(ConfigVersionRecord.self, name: Self.versionName) else { return nil }
        guard Self.isHash(record.hash) else {
            throw CorruptStateError(
                path: versionPath, detail: "hash \(record.hash.prefix(40).debugDescription) is not a configuration hash")
        }
        return record
    }

    public func saveRunningVersion(_ record: ConfigVersionRecord) throws {
        try store.save(record, name: Self.versionName)
    }

    /// The pending configuration, nil when none. Throws `CorruptStateError` (naming the file)
    /// when it is not a valid one: unreadable JSON, version 0, a hash of the wrong form, or a
    /// bundle that could not be distributed (too large, script names outside `scripts/`).
    public func pending() throws -> PendingConfiguration? {
        guard let pending = try store.load(PendingConfiguration.self, name: Self.pendingName) else { return nil }
        guard pending.version > 0 else { throw CorruptStateError(path: pendingPath, detail: "version 0") }
        guard Self.isHash(pending.hash) else {
            throw CorruptStateError(
                path: pendingPath, detail: "hash \(pending.hash.prefix(40).debugDescription) is not a configuration hash")
        }
        do {
            try pending.bundle.check()
        } catch {
            throw CorruptStateError(path: pendingPath, detail: error.description)
        }
        return pending
    }

    public func savePending(_ pending: PendingConfiguration) throws {
        try store.save(pending, name: Self.pendingName)
    }

    public func removePending() throws {
        try store.remove(name: Self.pendingName)
    }

    /// Moves an unusable file aside (`<file>.corrupt-<unix time>`), keeping it for the
    /// operator; returns the new path.
    @discardableResult
    public func setAside(_ path: String, now: Date = Date()) throws -> String {
        let target = path + ".corrupt-\(Int(now.timeIntervalSince1970))"
        guard rename(path, target) == 0 else {
            throw StorageError(path: path, message: "cannot move \(path) aside: \(String(cString: strerror(errno)))")
        }
        return target
    }

    /// A hash as `ConfigBundle.hash` makes them: 32 lowercase hex digits.
    static func isHash(_ text: String) -> Bool {
        text.utf8.count == 32
            && text.utf8.allSatisfy {
                (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains($0)
            }
    }
}
