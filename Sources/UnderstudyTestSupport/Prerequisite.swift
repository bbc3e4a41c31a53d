import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Something a test needs from the machine: root, a Debian package, a kernel feature.
///
/// A test declares it with the `.requires(...)` trait. Where it is missing the test is
/// skipped, and the test runner shows the reason. Under `UNDERSTUDY_REQUIRE_ALL=1` (set by
/// `.ci/run`, which runs as root after installing every package) a missing prerequisite fails
/// the test instead, so a CI machine that silently lost a package cannot turn tests into
/// skips. The names in `UNDERSTUDY_MAY_SKIP` (comma-separated) still skip there: what the CI
/// kernel cannot provide at all.
public struct Prerequisite: Sendable, CustomStringConvertible {
    /// A short stable name (`root`, `postgresql`, `softdog`, …) for `UNDERSTUDY_MAY_SKIP`.
    public let name: String
    /// Why it is missing on this machine; nil when it is met.
    public let missing: String?

    public init(_ name: String, missing: String?) {
        self.name = name
        self.missing = missing
    }

    public var description: String { missing.map { "\(name): \($0)" } ?? "\(name): available" }

    /// Met when every part is met; otherwise the first missing part (its own name, so that
    /// `UNDERSTUDY_MAY_SKIP` excuses exactly that part).
    public static func all(_ name: String, _ parts: [Prerequisite]) -> Prerequisite {
        parts.first { $0.missing != nil } ?? Prerequisite(name, missing: nil)
    }

    public static let requireAll = ProcessInfo.processInfo.environment["UNDERSTUDY_REQUIRE_ALL"] == "1"
    public static let maySkip: Set<String> = Set(
        (ProcessInfo.processInfo.environment["UNDERSTUDY_MAY_SKIP"] ?? "").split(separator: ",").map {
            $0.trimmingCharacters(in: .whitespaces)
        })

    /// Whether a test needing `prerequisites` runs; throws (a test failure) when one is missing
    /// and `UNDERSTUDY_REQUIRE_ALL=1` does not allow skipping it.
    static func evaluate(_ prerequisites: [Prerequisite]) throws -> Bool {
        guard let unmet = prerequisites.first(where: { $0.missing != nil }) else { return true }
        if requireAll && !maySkip.contains(unmet.name) {
            throw TestSupportError(
                "UNDERSTUDY_REQUIRE_ALL=1 and a prerequisite is missing: \(unmet)"
                    + " (install it, or list \"\(unmet.name)\" in UNDERSTUDY_MAY_SKIP if this machine cannot have it)")
        }
        return false
    }

    // MARK: - Common prerequisites

    public static let root = Prerequisite("root", missing: getuid() == 0 ? nil : "needs root")

    /// The exit status of a short command (nil when it cannot run), for prerequisites that
    /// must ask the system (`modprobe -n`).
    public static func exitStatus(_ executable: String, _ arguments: [String]) -> Int32? {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        do { try process.run() } catch { return nil }
        process.waitUntilExit()
        return process.terminationStatus
    }

    /// An executable at `path`, from Debian package `package`.
    public static func executable(_ path: String, package: String) -> Prerequisite {
        Prerequisite(
            package,
            missing: FileManager.default.isExecutableFile(atPath: path) ? nil : "\(path) is missing (Debian package \(package))")
    }

    /// A command found in PATH (or the usual sbin folders), from Debian package `package`.
    public static func command(_ name: String, package: String) -> Prerequisite {
        let folders =
            (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":").map(String.init)
            + ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]
        let found = folders.contains { FileManager.default.isExecutableFile(atPath: "\($0)/\(name)") }
        return Prerequisite(package, missing: found ? nil : "\(name) is not installed (Debian package \(package))")
    }
}

extension Trait where Self == ConditionTrait {
    /// Runs the test only where every prerequisite is met (see `Prerequisite`); the skip
    /// comment names what is missing.
    public static func requires(_ prerequisites: Prerequisite..., sourceLocation: SourceLocation = #_sourceLocation) -> Self {
        let unmet = prerequisites.filter { $0.missing != nil }.map(\.description).joined(separator: "; ")
        return .enabled(
            Comment(rawValue: unmet.isEmpty ? "prerequisites met" : "skipped: \(unmet)"), sourceLocation: sourceLocation
        ) { try Prerequisite.evaluate(prerequisites) }
    }
}
