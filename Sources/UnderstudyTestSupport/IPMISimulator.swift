import Foundation
import UnderstudyNode

#if canImport(Glibc)
    import Glibc
#endif

/// A real IPMI BMC for tests: OpenIPMI's `ipmi_sim` answering IPMI 1.5 and 2.0 (RMCP+) over
/// LAN on a loopback address and a free UDP port, with its own users, and a chassis whose power
/// the simulator controls through a small program here (`chassis_control`): the power state is
/// a file in the simulator's folder, every command the BMC carries out is appended to a log.
/// Everything lives in a folder of its own; the simulator is stopped by PID. Debian packages
/// openipmi (`ipmi_sim`) and ipmitool.
///
/// ipmi_sim does not answer Get Channel Cipher Suites and offers no cipher suite 17: ipmitool
/// 1.8.19 then waits 10 s before it falls back to suite 3. `ipmitoolArguments` (`-C 3`) are the
/// options every ipmitool run against it should carry.
public final class IPMISimulator: Sendable {
    public static let binary = "/usr/bin/ipmi_sim"
    public static let ipmitoolArguments = ["-C", "3"]

    /// For `.requires(IPMISimulator.prerequisite)`.
    public static var prerequisite: Prerequisite {
        Prerequisite.all(
            "openipmi", [.executable(binary, package: "openipmi"), .command("ipmitool", package: "ipmitool")])
    }

    public struct User: Sendable {
        public var name: String
        public var password: String
        /// `user`, `operator` or `admin`.
        public var privilege: String

        public init(name: String, password: String, privilege: String) {
            self.name = name
            self.password = password
            self.privilege = privilege
        }
    }

    public let folder: String
    public let address: String
    public let port: Int
    public let users: [User]
    private let process: SpawnedProcess

    /// The network namespace it runs in (nil: this process's).
    public let namespace: String?

    private init(folder: String, address: String, port: Int, users: [User], process: SpawnedProcess, namespace: String?) {
        self.namespace = namespace
        self.folder = folder
        self.address = address
        self.port = port
        self.users = users
        self.process = process
    }

    deinit { stop() }

    /// Starts the simulator with the chassis powered on and waits until it answers (at most
    /// 10 s). `users` get user numbers from 2 on.
    /// - Parameters:
    ///   - namespace: a network namespace to run it in (a lab's client, so that the lab's
    ///     servers reach it); `port` is then needed (a free port of this namespace says
    ///     nothing about that one).
    ///   - onPowerOff: a shell command the chassis runs when its power goes off (what losing
    ///     power does to the server behind it: a lab test kills that server's processes).
    public static func start(
        address: String, users: [User], namespace: String? = nil, port fixedPort: Int? = nil, onPowerOff: String? = nil
    ) async throws -> IPMISimulator {
        if let missing = prerequisite.missing { throw TestSupportError(missing) }
        let port = try fixedPort ?? FreePort.take()
        let folder = NSTemporaryDirectory() + "understudy-ipmi-\(UUID().uuidString.prefix(8))"
        let manager = FileManager.default
        try manager.createDirectory(atPath: folder + "/state", withIntermediateDirectories: true)
        func remove() { try? manager.removeItem(atPath: folder) }
        do {
            try writeConfiguration(folder: folder, address: address, port: port, users: users, onPowerOff: onPowerOff)
        } catch {
            remove()
            throw error
        }
        let log = open(folder + "/ipmi_sim.log", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard log >= 0 else {
            remove()
            throw TestSupportError("cannot create \(folder)/ipmi_sim.log")
        }
        defer { close(log) }
        let process: SpawnedProcess
        do {
            let prefix = namespace.map { ["/usr/bin/env", "ip", "netns", "exec", $0] } ?? []
            process = try SpawnedProcess.spawn(
                prefix + [binary, "-c", folder + "/lan.conf", "-f", folder + "/bmc.emu", "-s", folder + "/state", "-n"],
                output: .descriptor(log), error: .descriptor(log))
        } catch {
            remove()
            throw TestSupportError("ipmi_sim cannot start: \(error)")
        }
        let simulator = IPMISimulator(folder: folder, address: address, port: port, users: users, process: process, namespace: namespace)
        let reader = users.first { $0.privilege != "user" } ?? users[0]
        let deadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline {
            if simulator.readPower(as: reader.name) != nil { return simulator }
            guard process.isRunning else { break }
            try? await Task.sleep(for: .milliseconds(100))
        }
        let output = (try? String(contentsOfFile: folder + "/ipmi_sim.log", encoding: .utf8)) ?? ""
        simulator.stop()
        throw TestSupportError("ipmi_sim on \(address):\(port) did not answer within 10 s: \(output)")
    }

    private static func writeConfiguration(folder: String, address: String, port: Int, users: [User], onPowerOff: String?) throws {
        let userLines = users.enumerated().map { index, user in
            "  user \(index + 2) true \"\(user.name)\" \"\(user.password)\" \(user.privilege) 10 md5"
        }.joined(separator: "\n")
        let lan = """
            name "understudy"
            set_working_mc 0x20
              startlan 1
                addr \(address) \(port)
                priv_limit admin
                allowed_auths_callback md5
                allowed_auths_user md5
                allowed_auths_operator md5
                allowed_auths_admin md5
                guid a123456789abcdefa123456789abcdef
              endlan
              chassis_control "/bin/sh \(folder)/chassis.sh"
            \(userLines)

            """
        // The BMC itself: one management controller at 0x20.
        let emulation = """
            mc_setbmc 0x20
            mc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02
            mc_enable 0x20

            """
        // ipmi_sim runs "<program> get power" (answer "power:1") and "<program> set power 0",
        // "set reset 1" … With a file "stuck" the chassis accepts commands but keeps its power.
        let chassis = """
            #!/bin/sh
            dir='\(folder)'
            echo "$*" >> "$dir/chassis.log"
            operation=$1; shift
            case $operation in
            get)
                for name in "$@"; do
                    [ "$name" = power ] && echo "power:$(cat "$dir/power")"
                done ;;
            set)
                while [ $# -ge 2 ]; do
                    if [ "$1" = power ] && [ ! -e "$dir/stuck" ]; then
                        echo "$2" > "$dir/power"
                        if [ "$2" = 0 ]; then
                            date +%s%N >> "$dir/power-off-times"
                            \(onPowerOff.map { "/bin/sh -c '\($0.replacingOccurrences(of: "'", with: "'\\''"))' >/dev/null 2>&1" } ?? ":")
                        fi
                    fi
                    shift 2
                done ;;
            esac
            exit 0

            """
        try lan.write(toFile: folder + "/lan.conf", atomically: true, encoding: .utf8)
        try emulation.write(toFile: folder + "/bmc.emu", atomically: true, encoding: .utf8)
        try chassis.write(toFile: folder + "/chassis.sh", atomically: true, encoding: .utf8)
        try "1\n".write(toFile: folder + "/power", atomically: true, encoding: .utf8)
        for user in users {
            try writePasswordFile(folder + "/\(user.name).password", user.password)
        }
    }

    /// A password file as ipmitool's `-f` reads it (mode 0600).
    public static func writePasswordFile(_ path: String, _ password: String) throws {
        try (password + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: path)
    }

    public func passwordFile(for user: String) -> String { folder + "/\(user).password" }

    /// The chassis power as the simulator holds it (true: on); nil when unreadable.
    public var power: Bool? {
        let text = (try? String(contentsOfFile: folder + "/power", encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
        return text.flatMap(Int.init).map { $0 != 0 }
    }

    /// Makes the chassis accept power commands without changing its power (a BMC that says yes
    /// and does nothing), or behave again.
    public func setStuck(_ stuck: Bool) throws {
        let path = folder + "/stuck"
        if stuck {
            try "stuck\n".write(toFile: path, atomically: true, encoding: .utf8)
        } else if FileManager.default.fileExists(atPath: path) {
            try FileManager.default.removeItem(atPath: path)
        }
    }

    /// The chassis commands the simulator carried out ("set power 0", "set reset 1"), without
    /// the power reads.
    public var chassisCommands: [String] {
        let text = (try? String(contentsOfFile: folder + "/chassis.log", encoding: .utf8)) ?? ""
        return text.split(separator: "\n").map(String.init).filter { !$0.hasPrefix("get ") }
    }

    /// When the chassis power went off (wall clock, nanoseconds since 1970), in order.
    public var powerOffTimes: [UInt64] {
        let text = (try? String(contentsOfFile: folder + "/power-off-times", encoding: .utf8)) ?? ""
        return text.split(separator: "\n").compactMap { UInt64($0) }
    }

    /// ipmitool against this BMC as `user` (its own password file), at most 15 s; from inside
    /// its namespace when it runs in one.
    public func ipmitool(as user: String, _ arguments: [String]) -> SpawnedProcess.Outcome {
        SpawnedProcess.run(
            (namespace.map { ["/usr/bin/env", "ip", "netns", "exec", $0] } ?? []) + ["ipmitool", "-I", "lanplus", "-H", address, "-p", String(port), "-U", user, "-f", passwordFile(for: user)]
                + Self.ipmitoolArguments + arguments, timeout: .seconds(15))
    }

    /// `chassis power status` read independently of the code under test: "on", "off", or nil.
    public func readPower(as user: String) -> String? {
        let outcome = ipmitool(as: user, ["chassis", "power", "status"])
        guard outcome.ok else { return nil }
        for line in outcome.output.split(separator: "\n") where line.hasPrefix("Chassis Power is ") {
            return String(line.dropFirst("Chassis Power is ".count))
        }
        return nil
    }

    /// Stops the simulator (by PID: SIGTERM, then SIGKILL after 2 s) and removes its folder.
    public func stop() {
        if process.isRunning {
            process.signal(SIGTERM)
            if process.waitForExit(within: .seconds(2)) == nil {
                process.signal(SIGKILL)
                _ = process.waitForExit(within: .seconds(5))
            }
        }
        try? FileManager.default.removeItem(atPath: folder)
    }
}
