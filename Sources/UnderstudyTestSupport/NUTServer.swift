import Foundation
import UnderstudyNode

#if canImport(Glibc)
    import Glibc
#endif

/// A real Network UPS Tools server for tests and the lab: `upsd` with one `dummy-ups` driver
/// per simulated UPS (its status set with SET VAR) and, optionally, `clone` drivers on top of
/// them, which carry out `shutdown.return` for real (power the load off after `offDelay`,
/// on again `onDelay` after line power returns; dummy-ups logs the `load.off` / `load.on`
/// it is sent). Everything lives in a folder of its own, listens on 127.0.0.1 only, and is
/// stopped by PID. Debian packages nut-server and nut-client.
public final class NUTServer: @unchecked Sendable {
    public static let binaries = (upsd: "/lib/nut/upsd", dummy: "/lib/nut/dummy-ups", clone: "/lib/nut/clone")

    /// Why this machine cannot run it; nil when it can.
    public static func unavailableReason() -> String? {
        for path in [binaries.upsd, binaries.dummy, binaries.clone] where !FileManager.default.isExecutableFile(atPath: path) {
            return "\(path) is missing (Debian packages nut-server, nut-client)"
        }
        return nil
    }

    /// For `.requires(NUTServer.prerequisite)`.
    public static var prerequisite: Prerequisite { Prerequisite("nut", missing: unavailableReason()) }

    public let folder: String
    public let port: Int
    public let user = "admin"
    public let password = "nut-\(UInt32.random(in: 100_000...999_999))"
    public var passwordFile: String { folder + "/admin.password" }
    public var client: NUTClient { NUTClient(host: "127.0.0.1", port: port, timeout: .seconds(3)) }

    private let lock = NSLock()
    private var processes: [String: Process] = [:]

    init(folder: String, port: Int) {
        self.folder = folder
        self.port = port
    }

    deinit { stop() }

    /// Starts drivers and upsd and waits until every UPS answers with a settable status.
    /// `clones` maps a clone's name to the dummy UPS it sits on.
    public static func start(
        upses: [String], clones: [String: String] = [:], offDelay: Int = 3, onDelay: Int = 2
    ) async throws -> NUTServer {
        if let reason = unavailableReason() { throw TestSupportError(reason) }
        let port = try FreePort.take()
        let folder = FileManager.default.temporaryDirectory.path + "/understudy-nut-\(UUID().uuidString.prefix(8))"
        let server = NUTServer(folder: folder, port: port)
        do {
            try server.writeConfiguration(upses: upses, clones: clones, offDelay: offDelay, onDelay: onDelay)
            for ups in upses { try server.launch(binaries.dummy, ["-a", ups], name: "driver-\(ups)") }
            try server.launch(binaries.upsd, [], name: "upsd")
            for ups in upses { try await server.waitUntilReady(ups) }
            for clone in clones.keys.sorted() {
                try server.launch(binaries.clone, ["-a", clone], name: "driver-\(clone)")
                try await server.waitUntilReady(clone, settable: false)
            }
        } catch {
            server.stop()
            throw error
        }
        return server
    }

    func writeConfiguration(upses: [String], clones: [String: String], offDelay: Int, onDelay: Int) throws {
        let manager = FileManager.default
        try manager.createDirectory(atPath: folder + "/state", withIntermediateDirectories: true)
        var ups = ""
        for name in upses {
            // *.dev keeps values set with SET VAR; pollinterval 5 makes SET VAR take effect at once.
            try "ups.status: OL\nbattery.charge: 100\n".write(toFile: "\(folder)/\(name).dev", atomically: true, encoding: .utf8)
            ups += "[\(name)]\n\tdriver = dummy-ups\n\tport = \(name).dev\n\tpollinterval = 5\n\tdesc = \"simulated UPS\"\n"
        }
        for (clone, source) in clones.sorted(by: { $0.key < $1.key }) {
            // load.status is required: clone 2.8.0 crashes on the first INSTCMD without it.
            ups += """
                [\(clone)]
                \tdriver = clone
                \tport = dummy-ups-\(source)
                \toffdelay = \(offDelay)
                \tondelay = \(onDelay)
                \tload.off = load.off
                \tload.on = load.on
                \tload.status = outlet.status
                \tpollinterval = 1

                """
        }
        try ups.write(toFile: folder + "/ups.conf", atomically: true, encoding: .utf8)
        try "LISTEN 127.0.0.1 \(port)\nMAXAGE 5\n".write(toFile: folder + "/upsd.conf", atomically: true, encoding: .utf8)
        let users = "[\(user)]\n\tpassword = \(password)\n\tinstcmds = all\n\tactions = SET\n"
        try users.write(toFile: folder + "/upsd.users", atomically: true, encoding: .utf8)
        try "\(password)\n".write(toFile: passwordFile, atomically: true, encoding: .utf8)
        for file in ["upsd.users", "admin.password"] {
            try manager.setAttributes([.posixPermissions: 0o600], ofItemAtPath: folder + "/" + file)
        }
    }

    /// Runs a NUT program in the foreground (-F: no fork, so the PID is the daemon's); as
    /// root it must be told to stay root (it would switch to the `nut` user, who cannot read
    /// this folder).
    func launch(_ binary: String, _ arguments: [String], name: String) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = arguments + (getuid() == 0 ? ["-u", "root"] : []) + ["-F"]
        var environment = ProcessInfo.processInfo.environment
        environment["NUT_CONFPATH"] = folder
        environment["NUT_STATEPATH"] = folder + "/state"
        environment["NUT_ALTPIDPATH"] = folder + "/state"
        process.environment = environment
        let logPath = "\(folder)/\(name).log"
        FileManager.default.createFile(atPath: logPath, contents: nil)
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        process.standardOutput = log
        process.standardError = log
        process.standardInput = FileHandle.nullDevice
        try process.run()
        lock.withLock { processes[name] = process }
    }

    func waitUntilReady(_ ups: String, settable: Bool = true) async throws {
        let client = client
        let ready = await eventually(within: .seconds(20), every: .milliseconds(100)) {
            guard case .success(let status) = client.status(of: ups), status != "WAIT" else { return false }
            // A dummy UPS takes SET VAR only after its first poll.
            guard settable else { return true }
            if case .success = client.setVariable("ups.status", of: ups, to: status, user: user, password: password) { return true }
            return false
        }
        guard ready else { throw TestSupportError("UPS \(ups) did not come up in upsd within 20 s; see \(folder)") }
    }

    /// Sets a simulated UPS's status flags (`OL`, `OB`, `OB LB` …).
    public func setStatus(_ ups: String, _ status: String) throws {
        if case .failure(let failure) = client.setVariable("ups.status", of: ups, to: status, user: user, password: password) {
            throw TestSupportError("cannot set \(ups) to \(status): \(failure)")
        }
    }

    public func variable(_ name: String, of ups: String) -> String? {
        if case .success(let value) = client.variable(name, of: ups) { return value }
        return nil
    }

    /// What a driver printed (dummy-ups logs the instant commands it is sent).
    public func log(of name: String) -> String {
        (try? String(contentsOfFile: "\(folder)/\(name).log", encoding: .utf8)) ?? ""
    }

    /// Kills one process (a driver, to make its UPS unreadable).
    public func kill(_ name: String) {
        guard let process = lock.withLock({ processes.removeValue(forKey: name) }) else { return }
        Self.terminate([process])
    }

    /// Stops everything by PID and removes the folder.
    public func stop() {
        let all = lock.withLock { () -> [Process] in
            defer { processes = [:] }
            return Array(processes.values)
        }
        Self.terminate(all)
        // UNDERSTUDY_KEEP_NUT=1 keeps the folder (configuration and logs) for a look after a failure.
        if ProcessInfo.processInfo.environment["UNDERSTUDY_KEEP_NUT"] == nil { try? FileManager.default.removeItem(atPath: folder) }
    }

    /// SIGTERM, then SIGKILL for any still running after 3 s (NUT's programs exit within
    /// milliseconds of SIGTERM).
    static func terminate(_ processes: [Process]) {
        for process in processes where process.isRunning { Glibc.kill(process.processIdentifier, SIGTERM) }
        let deadline = Date().addingTimeInterval(3)
        while processes.contains(where: \.isRunning) && Date() < deadline { usleep(20_000) }
        for process in processes where process.isRunning { Glibc.kill(process.processIdentifier, SIGKILL) }
    }
}
