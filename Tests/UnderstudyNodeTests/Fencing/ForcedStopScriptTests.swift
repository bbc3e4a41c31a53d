import Foundation
import Synchronization
import Testing
import UnderstudyModel
import UnderstudyTestSupport

@testable import UnderstudyNode

#if canImport(Glibc)
    import Glibc
#endif

@Suite("Forced stop through scripts")
struct ForcedStopScriptTests {
    func script(_ name: String, _ command: [String]) -> FencingAgentConfig {
        FencingAgentConfig(name: name, kind: .script(command: command))
    }

    func stopper(_ agents: [FencingAgentConfig], timeout: Duration = .seconds(10), folder: String? = nil, host: HostFacts? = nil)
        -> ForcedStopper
    {
        ForcedStopper(
            fencing: FencingConfig(agents: agents, timeout: timeout), localServer: "server-a", configFolder: folder, host: host)
    }

    /// The variables of one run, from `env` written by the script.
    func environment(_ path: String) throws -> [String: String] {
        var variables: [String: String] = [:]
        for line in try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n") {
            guard let equals = line.firstIndex(of: "=") else { continue }
            variables[String(line[..<equals])] = String(line[line.index(after: equals)...])
        }
        return variables
    }

    @Test("the script gets exactly CLP_SERVER_DOWN, CLP_SERVER_LOCAL, CLP_FORCESTOP_MODE (1: stop, 0: check) and the base variables")
    func variables() async throws {
        try await withTemporaryFolder { folder in
            try writeScript(folder, "fence.sh", "env > \"$(dirname \"$0\")/env.$CLP_FORCESTOP_MODE\"")
            // A relative command is taken from the configuration folder.
            let fencer = stopper([script("vm", ["./fence.sh"])], folder: folder)
            let stop = await fencer.stop("server-b")
            #expect(stop.succeeded && stop.agent == "vm", "\(stop.detail)")
            let check = await fencer.check("server-b")
            #expect(check.succeeded, "\(check.detail)")
            let stopped = try environment(folder + "/env.1")
            let checked = try environment(folder + "/env.0")
            #expect(stopped["CLP_SERVER_DOWN"] == "server-b" && stopped["CLP_SERVER_LOCAL"] == "server-a")
            #expect(stopped["CLP_FORCESTOP_MODE"] == "1" && checked["CLP_FORCESTOP_MODE"] == "0")
            // Nothing of the daemon's own environment; the shell adds PWD.
            let expected: Set = ["PATH", "LANG", "HOME", "CLP_SERVER_DOWN", "CLP_SERVER_LOCAL", "CLP_FORCESTOP_MODE"]
            #expect(Set(stopped.keys).subtracting(["PWD"]) == expected, "\(stopped.keys.sorted())")
            #expect(stopped["PATH"] == ScriptEnvironment.standardPath)

            let host = HostFacts(productVersion: "9.9.9", installPath: "/opt/understudy", osName: "Debian", osVersion: "13")
            #expect(await stopper([script("vm", [folder + "/fence.sh"])], host: host).stop("server-b").succeeded)
            let withHost = try environment(folder + "/env.1")
            #expect(withHost["CLP_PATH"] == "/opt/understudy" && withHost["CLP_SERVER_DOWN"] == "server-b")
        }
    }

    @Test("exit 1 fails with the script's last line in the detail; the next agent's exit 0 succeeds")
    func exitCodes() async throws {
        try await withTemporaryFolder { folder in
            let failing = try writeScript(folder, "fail.sh", "echo connecting; echo 'error: domain server-b not found' >&2; exit 1")
            let working = try writeScript(folder, "ok.sh", "echo destroyed $CLP_SERVER_DOWN")
            let alone = await stopper([script("first", [failing])]).stop("server-b")
            #expect(!alone.succeeded && alone.agent == "first")
            #expect(alone.detail == "first: \(failing) exit 1: error: domain server-b not found", "\(alone.detail)")
            let both = await stopper([script("first", [failing]), script("second", [working, "--force"])]).stop("server-b")
            #expect(both.succeeded && both.agent == "second")
            #expect(both.detail == "second: \(working) exit 0: destroyed server-b", "\(both.detail)")
            let missing = await stopper([script("gone", [folder + "/missing.sh"])]).stop("server-b")
            #expect(!missing.succeeded && missing.detail.contains("cannot run"), "\(missing.detail)")
        }
    }

    @Test("a script that hangs is killed with its children at the timeout")
    func hangingScript() async throws {
        try await withTemporaryFolder { folder in
            let reaper = ProcessReaper()
            defer { reaper.killAll() }
            let hanging = try writeScript(
                folder, "hang.sh", "echo $$ > \(folder)/leader.pid; sleep 300 & echo $! > \(folder)/child.pid; echo waiting; wait")
            let task = Task { await stopper([script("stuck", [hanging])], timeout: .seconds(1)).stop("server-b") }
            // Bounds generous for a loaded machine (the unit run starts hundreds of tests at once:
            // once, in CI, the script took over 5 s to write its first line).
            let leader = await readPID(folder + "/leader.pid", within: .seconds(20))
            let running = ContinuousClock.now
            let child = await readPID(folder + "/child.pid", within: .seconds(20))
            reaper.track(leader)
            reaper.track(child)
            let outcome = await task.value
            #expect(ContinuousClock.now - running < .seconds(4), "killed at its 1 s timeout, not when it ended")
            #expect(!outcome.succeeded)
            #expect(outcome.detail.contains("timed out after 1") && outcome.detail.contains("process group killed"), "\(outcome.detail)")
            #expect(outcome.detail.hasSuffix(": waiting"), "\(outcome.detail)")
            let leaderPID = try #require(leader)
            let childPID = try #require(child)
            #expect(await processIsGone(leaderPID, within: .seconds(2)))
            #expect(await processIsGone(childPID, within: .seconds(2)), "the script's child is killed with it")
        }
    }

    @Test("cancelling the caller kills the running script")
    func cancellation() async throws {
        try await withTemporaryFolder { folder in
            let reaper = ProcessReaper()
            defer { reaper.killAll() }
            let hanging = try writeScript(folder, "hang.sh", "echo $$ > \(folder)/leader.pid; sleep 300")
            let fencer = stopper([script("stuck", [hanging])], timeout: .seconds(60))
            let task = Task { await fencer.stop("server-b") }
            let leader = await readPID(folder + "/leader.pid", within: .seconds(20))
            reaper.track(leader)
            task.cancel()
            let outcome = await task.value
            #expect(!outcome.succeeded && outcome.detail.contains("cancelled"), "\(outcome.detail)")
            #expect(await processIsGone(try #require(leader), within: .seconds(2)))
        }
    }

    @Test("the local server is never stopped; a server no agent covers is named")
    func refusals() async throws {
        let bmcOnly = FencingAgentConfig(
            name: "bmc",
            kind: .ipmi(IPMIAgent(bmcs: ["server-b": BMCEndpoint(address: "127.0.205.3", user: "u", passwordFile: "/nonexistent")])))
        let fencer = stopper([bmcOnly])
        let local = await fencer.stop("server-a")
        #expect(!local.succeeded && local.agent == nil && local.detail.contains("does not stop itself"))
        let uncovered = await fencer.stop("server-c")
        #expect(!uncovered.succeeded && uncovered.detail == "no forced-stop agent covers server server-c")
    }

    @Test("an ipmi agent with a local interface (open) is refused without running ipmitool")
    func localInterfaceRefused() async throws {
        try await withTemporaryFolder { folder in
            let ran = folder + "/ipmitool-ran"
            let fake = try writeScript(folder, "ipmitool", "touch \(ran); echo 'Chassis Power is off'")
            try "pw\n".write(toFile: folder + "/b.password", atomically: true, encoding: .utf8)
            let bmc = BMCEndpoint(address: "127.0.205.4", user: "u", passwordFile: folder + "/b.password")
            let local = FencingAgentConfig(name: "bmc", kind: .ipmi(IPMIAgent(interface: "open", bmcs: ["server-b": bmc])))
            let fencer = ForcedStopper(
                fencing: FencingConfig(agents: [local]), localServer: "server-a", configFolder: nil, ipmitool: fake)
            for outcome in [await fencer.stop("server-b"), await fencer.check("server-b")] {
                #expect(!outcome.succeeded && outcome.detail.contains("not IPMI over LAN"), "\(outcome.detail)")
            }
            #expect(!FileManager.default.fileExists(atPath: ran))
            // The same agent on lanplus does run the program given as ipmitool.
            let lan = FencingAgentConfig(name: "bmc", kind: .ipmi(IPMIAgent(bmcs: ["server-b": bmc])))
            let check = await ForcedStopper(
                fencing: FencingConfig(agents: [lan]), localServer: "server-a", configFolder: nil, ipmitool: fake
            ).check("server-b")
            #expect(check.succeeded && check.detail.contains("power off"), "\(check.detail)")
            #expect(FileManager.default.fileExists(atPath: ran))
        }
    }

    @Test("ipmitool gets the password file, not the password; a password it prints is masked in the detail")
    func passwordNeverShown() async throws {
        try await withTemporaryFolder { folder in
            let secret = "Sekret-9431"
            let fake = try writeScript(
                folder, "ipmitool",
                "echo \"$@\" > \(folder)/arguments; echo \"Error: password $(cat \(folder)/b.password) refused\" >&2; exit 1")
            try IPMISimulator.writePasswordFile(folder + "/b.password", secret)
            let bmc = BMCEndpoint(address: "127.0.205.5", user: "fencer", passwordFile: folder + "/b.password")
            let agent = FencingAgentConfig(name: "bmc", kind: .ipmi(IPMIAgent(bmcs: ["server-b": bmc])))
            let outcome = await ForcedStopper(
                fencing: FencingConfig(agents: [agent]), localServer: "server-a", configFolder: nil, ipmitool: fake
            ).stop("server-b")
            #expect(!outcome.succeeded)
            #expect(outcome.detail.contains("Error: password **** refused") && !outcome.detail.contains(secret), "\(outcome.detail)")
            let arguments = try String(contentsOfFile: folder + "/arguments", encoding: .utf8)
            #expect(arguments.contains("-f \(folder)/b.password") && !arguments.contains(secret), "\(arguments)")
        }
    }

    @Test("ipmitool's command line carries the password file, never the password; its messages are classified")
    func ipmitoolCommandLine() {
        let fencing = IPMIFencing(
            agentName: "bmc", agent: IPMIAgent(action: .powerOff, bmcs: [:]), server: "b",
            bmc: BMCEndpoint(address: "10.0.0.5", user: "fencer", passwordFile: "/etc/understudy/b.password"),
            passwordFile: "/etc/understudy/b.password", ipmitool: "ipmitool", extraArguments: [], environment: [:])
        #expect(
            fencing.arguments(["power", "off"]) == [
                "ipmitool", "-I", "lanplus", "-H", "10.0.0.5", "-p", "623", "-U", "fencer", "-f", "/etc/understudy/b.password", "-L",
                "OPERATOR", "-v", "chassis", "power", "off",
            ])
        #expect(IPMIFencing.command(.powerCycle) == "cycle" && IPMIFencing.command(.nmi) == "diag")
        #expect(IPMIFencing.parsePowerState("Chassis Power is off\n") == "off")
        #expect(IPMIFencing.parsePowerState("Chassis Power Control: Down/Off\n") == nil)
        let wrong = "Loading IANA PEN Registry...\n> RAKP 2 HMAC is invalid\nError: Unable to establish IPMI v2 / RMCP+ session\n"
        #expect(IPMIFencing.meaningfulLines(wrong).first == "RAKP 2 HMAC is invalid")
        #expect(IPMIFencing.cause(IPMIFencing.meaningfulLines(wrong)) == .authentication)
        let silent =
            "Get Auth Capabilities error\nError issuing Get Channel Authentication Capabilities request\nError: Unable to establish IPMI v2 / RMCP+ session\n"
        #expect(IPMIFencing.cause(IPMIFencing.meaningfulLines(silent)) == .noAnswer)
        let privilege = "Set Chassis Power Control to Down/Off failed: Insufficient privilege level\n"
        #expect(IPMIFencing.cause(IPMIFencing.meaningfulLines(privilege)) == .privilege)
        #expect(fencing.redact("echo Secret1 here", "Secret1") == "echo **** here")
    }
}
