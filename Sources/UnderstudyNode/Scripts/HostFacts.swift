import Foundation
import UnderstudyModel

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// The host's part of the script variables (ARCHITECTURE.md §7): the Engine decides the rest.
public struct HostFacts: Sendable, Equatable {
    /// `CLP_VERSION_FULL`
    public var productVersion: String
    /// `CLP_PATH`
    public var installPath: String
    /// `CLP_OSNAME`
    public var osName: String
    /// `CLP_OSVER`
    public var osVersion: String

    public init(productVersion: String, installPath: String, osName: String, osVersion: String) {
        self.productVersion = productVersion
        self.installPath = installPath
        self.osName = osName
        self.osVersion = osVersion
    }

    /// Reads the OS name and version from os-release (`NAME`, `VERSION_ID`), falling back to
    /// `uname` (sysname, release) for whatever the file does not say.
    public static func detect(
        productVersion: String, installPath: String,
        osReleasePaths: [String] = ["/etc/os-release", "/usr/lib/os-release"]
    ) -> HostFacts {
        var release: [String: String] = [:]
        for path in osReleasePaths {
            if let text = try? String(contentsOfFile: path, encoding: .utf8) {
                release = parseOSRelease(text)
                break
            }
        }
        let kernel = unameFacts()
        return HostFacts(
            productVersion: productVersion, installPath: installPath,
            osName: release["NAME"].flatMap { $0.isEmpty ? nil : $0 } ?? kernel.sysname,
            osVersion: release["VERSION_ID"].flatMap { $0.isEmpty ? nil : $0 } ?? kernel.release)
    }

    /// The `CLP_*` variables these facts stand for.
    public var environment: [String: String] {
        [
            "CLP_VERSION_FULL": productVersion,
            "CLP_PATH": installPath,
            "CLP_OSNAME": osName,
            "CLP_OSVER": osVersion,
        ]
    }

    /// Parses the os-release(5) format: `KEY=value` lines, values optionally in single or
    /// double quotes, with backslash escapes inside double quotes; `#` lines are comments.
    public static func parseOSRelease(_ text: String) -> [String: String] {
        var result: [String: String] = [:]
        for rawLine in text.split(whereSeparator: \.isNewline) {
            let line = rawLine.trimmingCharacters(in: .whitespaces)
            guard !line.isEmpty, !line.hasPrefix("#"), let equals = line.firstIndex(of: "=") else { continue }
            let key = String(line[..<equals])
            var value = Substring(line[line.index(after: equals)...])
            if value.count >= 2, let first = value.first, first == "\"" || first == "'", value.last == first {
                value = value.dropFirst().dropLast()
                if first == "\"" {
                    var unescaped = ""
                    var escaping = false
                    for character in value {
                        if escaping {
                            unescaped.append(character)
                            escaping = false
                        } else if character == "\\" {
                            escaping = true
                        } else {
                            unescaped.append(character)
                        }
                    }
                    result[key] = unescaped
                    continue
                }
            }
            result[key] = String(value)
        }
        return result
    }

    private static func unameFacts() -> (sysname: String, release: String) {
        var names = utsname()
        guard uname(&names) == 0 else { return ("Linux", "") }
        func text<T>(_ field: inout T) -> String {
            withUnsafeBytes(of: &field) { bytes in
                String(decoding: bytes.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
        }
        return (text(&names.sysname), text(&names.release))
    }
}

/// Builds the complete environment of a script: a fixed base, the host facts, then the
/// Engine's variables. The daemon's own environment is deliberately not inherited, so a
/// script behaves the same however the daemon was started.
public enum ScriptEnvironment {
    public static let standardPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

    /// `PATH`, `LANG` and `HOME` (of the user the daemon runs as, unless given).
    public static func base(home: String? = nil) -> [String: String] {
        [
            "PATH": standardPath,
            "LANG": "C.UTF-8",
            "HOME": home ?? currentUserHome(),
        ]
    }

    /// Later layers win: base, host facts, the given variables.
    public static func compose(
        base: [String: String], host: HostFacts, variables: [String: String]
    ) -> [String: String] {
        base.merging(host.environment) { _, host in host }.merging(variables) { _, variable in variable }
    }

    /// The environment of a start or stop script. `asyncStartPID` is the pid of the
    /// resource's asynchronous start process, given to stop scripts as `CLP_PID`.
    public static func compose(
        base: [String: String], host: HostFacts, context: ScriptContext, asyncStartPID: Int32? = nil
    ) -> [String: String] {
        var variables = context.environment
        if let asyncStartPID { variables["CLP_PID"] = String(asyncStartPID) }
        return compose(base: base, host: host, variables: variables)
    }

    static func currentUserHome() -> String {
        let uid = geteuid()
        // getpwuid_r: the plain getpwuid shares one static buffer between threads.
        var buffer = [CChar](repeating: 0, count: 16 * 1024)
        let home = buffer.withUnsafeMutableBufferPointer { storage -> String? in
            var entry = passwd()
            var found: UnsafeMutablePointer<passwd>?
            guard let base = storage.baseAddress,
                getpwuid_r(uid, &entry, base, storage.count, &found) == 0,
                found != nil, let directory = entry.pw_dir
            else { return nil }
            return String(cString: directory)
        }
        if let home, !home.isEmpty { return home }
        return uid == 0 ? "/root" : "/"
    }
}
