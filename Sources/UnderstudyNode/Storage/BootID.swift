import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// Boot ids tell apart the successive runs of one server's daemon: every start gets a value
/// strictly greater than any before it, even when the wall clock went backwards.
public struct BootIDAllocator: Sendable {
    static let stateName = "boot-id"
    private let store: StateStore

    private struct Record: Codable {
        var bootID: UInt64
    }

    public init(directory: String) {
        self.store = StateStore(directory: directory)
    }

    /// The boot id of the latest start, if any.
    public func lastAllocated() throws -> UInt64? {
        try store.load(Record.self, name: Self.stateName)?.bootID
    }

    /// Chooses max(previous + 1, wall clock in microseconds) and persists it durably before
    /// returning it, so no later start can reuse it.
    public func allocate(wallClockMicroseconds: UInt64 = BootIDAllocator.wallClockMicroseconds()) throws -> UInt64 {
        let previous = try lastAllocated()
        var next = wallClockMicroseconds
        if let previous {
            guard previous < UInt64.max else {
                throw CorruptStateError(path: store.path(for: Self.stateName), detail: "boot id is at its maximum")
            }
            next = max(previous + 1, wallClockMicroseconds)
        }
        try store.save(Record(bootID: next), name: Self.stateName)
        return next
    }

    public static func wallClockMicroseconds() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        guard now.tv_sec >= 0 else { return 0 }
        return UInt64(now.tv_sec) * 1_000_000 + UInt64(now.tv_nsec / 1000)
    }
}
