import Foundation
import Testing
import UnderstudyTestSupport

#if canImport(Glibc)
    import Glibc
#endif

/// net-snmp's tools with the shipped MIB: snmptranslate, and a real snmptrapd on a free
/// loopback port that logs every trap it decodes to a file. Debian packages snmp and
/// snmptrapd.
enum SNMPTools {
    static let snmptrapd = Prerequisite.executable("/usr/sbin/snmptrapd", package: "snmptrapd")
    static let snmptranslate = Prerequisite.command("snmptranslate", package: "snmp")

    static let docs: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<4 { url.deleteLastPathComponent() }
        return url.appendingPathComponent("docs").path
    }()

    /// The `-M` list: docs/ (UNDERSTUDY-MIB.txt) and, where the system has no SNMPv2-SMI
    /// (Debian ships none of the IETF MIB modules: they are not DFSG-free, and
    /// snmp-mibs-downloader is in non-free), a folder with the one definition of it the MIB
    /// uses. See `baseModule`.
    static func mibDirectories(scratch: String) throws -> String {
        let probe = Shell.run(["snmptranslate", "-On", "SNMPv2-SMI::enterprises"])
        guard !probe.ok || !probe.output.contains(".1.3.6.1.4.1") else { return "+" + docs }
        let folder = scratch + "/base-mibs"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        try baseModule.write(toFile: folder + "/SNMPv2-SMI.txt", atomically: true, encoding: .utf8)
        return "+" + docs + ":" + folder
    }

    /// What UNDERSTUDY-MIB imports from SNMPv2-SMI beyond the macros net-snmp knows by
    /// itself: the path to `enterprises` (RFC 2578 §2). Only for machines without the real
    /// module; on any NMS the real one is used.
    static let baseModule = """
        SNMPv2-SMI DEFINITIONS ::= BEGIN
        org            OBJECT IDENTIFIER ::= { iso 3 }
        dod            OBJECT IDENTIFIER ::= { org 6 }
        internet       OBJECT IDENTIFIER ::= { dod 1 }
        private        OBJECT IDENTIFIER ::= { internet 4 }
        enterprises    OBJECT IDENTIFIER ::= { private 1 }
        END

        """
}

/// A real snmptrapd for one test, stopped by PID, its folder removed.
final class SNMPTrapReceiver: @unchecked Sendable {
    let folder: String
    let port: Int
    private let process = Process()

    var logFile: String { folder + "/traps.log" }
    var log: String { (try? String(contentsOfFile: logFile, encoding: .utf8)) ?? "" }

    private init(folder: String, port: Int) {
        self.folder = folder
        self.port = port
    }

    deinit { stop() }

    /// snmptrapd in the foreground (`-f`), logging to a file (`-Lf`), with its own
    /// configuration only (`-C -c`: `disableAuthorization yes`, so every community is
    /// logged) and the shipped MIB loaded (`-M +docs -m +UNDERSTUDY-MIB`).
    static func start() async throws -> SNMPTrapReceiver {
        let folder = FileManager.default.temporaryDirectory.path + "/understudy-snmptrapd-\(UUID().uuidString.prefix(8))"
        let receiver = SNMPTrapReceiver(folder: folder, port: try FreePort.take())
        do {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            try "disableAuthorization yes\n".write(toFile: folder + "/snmptrapd.conf", atomically: true, encoding: .utf8)
            receiver.process.executableURL = URL(fileURLWithPath: "/usr/sbin/snmptrapd")
            receiver.process.arguments = [
                "-f", "-n", "-C", "-c", folder + "/snmptrapd.conf", "-Lf", receiver.logFile,
                "-M", try SNMPTools.mibDirectories(scratch: folder), "-m", "+UNDERSTUDY-MIB", "udp:127.0.0.1:\(receiver.port)",
            ]
            // Its persistent state goes to the test's folder, not /var/lib/snmp.
            receiver.process.environment = ["SNMP_PERSISTENT_DIR": folder, "PATH": "/usr/sbin:/usr/bin:/bin"]
            receiver.process.standardOutput = FileHandle.nullDevice
            receiver.process.standardError = FileHandle.nullDevice
            try receiver.process.run()
            // snmptrapd logs its version once it listens. Bounded: 100 rounds of 100 ms.
            for _ in 0..<100 {
                if receiver.log.contains("NET-SNMP version") { return receiver }
                guard receiver.process.isRunning else { break }
                try await Task.sleep(for: .milliseconds(100))
            }
            throw TestSupportError("snmptrapd did not start: \(receiver.log.suffix(2000))")
        } catch {
            receiver.stop()
            throw error
        }
    }

    /// Waits (bounded: 50 rounds of 100 ms) until the log holds a line with every one of
    /// `words`; returns that line and those after it.
    func waitForTrap(containing words: [String]) async throws -> String? {
        for _ in 0..<50 {
            let text = log
            if words.allSatisfy({ text.contains($0) }) { return text }
            try await Task.sleep(for: .milliseconds(100))
        }
        return nil
    }

    /// Kills snmptrapd by its PID: it inherits SIGTERM blocked from the test runner's thread
    /// (and takes seconds to exit on it anyway), and it has nothing to save; the test has
    /// read its log.
    func stop() {
        process.stopBounded()
        try? FileManager.default.removeItem(atPath: folder)
    }
}
