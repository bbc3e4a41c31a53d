import Foundation
import Testing
import UnderstudyModel
import UnderstudyTestSupport

@testable import UnderstudyNode

/// The `ipmi` agent against a real BMC: OpenIPMI's ipmi_sim on 127.0.205.x (addresses used
/// by no other test), spoken to with the real ipmitool.
@Suite("Forced stop through IPMI", .requires(IPMISimulator.prerequisite), .serialized)
struct ForcedStopIPMITests {
    static let admin = IPMISimulator.User(name: "fencer", password: "Bmc-pw-7731", privilege: "admin")
    static let operatorUser = IPMISimulator.User(name: "operator1", password: "Op-pw-5512", privilege: "operator")

    /// A simulator for the test's length: stopped (by PID) and its folder removed whatever happens.
    func withSimulator(_ address: String = "127.0.205.1", _ body: (IPMISimulator) async throws -> Void) async throws {
        let simulator = try await IPMISimulator.start(address: address, users: [Self.admin, Self.operatorUser])
        defer { simulator.stop() }
        try await body(simulator)
    }

    func endpoint(_ simulator: IPMISimulator, user: IPMISimulator.User = admin, passwordFile: String? = nil) -> BMCEndpoint {
        BMCEndpoint(
            address: simulator.address, port: simulator.port, user: user.name,
            passwordFile: passwordFile ?? simulator.passwordFile(for: user.name))
    }

    func stopper(_ agents: [FencingAgentConfig], timeout: Duration = .seconds(20), configFolder: String? = nil) -> ForcedStopper {
        ForcedStopper(
            fencing: FencingConfig(agents: agents, timeout: timeout), localServer: "a", configFolder: configFolder,
            ipmitoolArguments: IPMISimulator.ipmitoolArguments)
    }

    func ipmi(_ name: String, _ bmc: BMCEndpoint, action: IPMIAgent.Action = .powerOff, interface: String = "lanplus")
        -> FencingAgentConfig
    {
        FencingAgentConfig(name: name, kind: .ipmi(IPMIAgent(action: action, interface: interface, bmcs: ["b": bmc])))
    }

    @Test("power-off turns the simulated chassis off, as ipmitool reads it back on its own")
    func powerOff() async throws {
        try await withSimulator { simulator in
            #expect(simulator.readPower(as: Self.admin.name) == "on")
            let outcome = await stopper([ipmi("bmc", endpoint(simulator))]).stop("b")
            #expect(outcome.succeeded, "\(outcome.detail)")
            #expect(outcome.agent == "bmc")
            #expect(outcome.detail.contains("powered the server off"), "\(outcome.detail)")
            #expect(simulator.readPower(as: Self.admin.name) == "off")
            #expect(simulator.power == false)
            #expect(simulator.chassisCommands == ["set power 0"])
        }
    }

    @Test("an OPERATOR account is enough; IPMI 1.5 (lan) works too")
    func operatorAccount() async throws {
        try await withSimulator { simulator in
            let check = await stopper([ipmi("bmc", endpoint(simulator, user: Self.operatorUser), interface: "lan")]).check("b")
            #expect(check.succeeded, "\(check.detail)")
            let outcome = await stopper([ipmi("bmc", endpoint(simulator, user: Self.operatorUser))]).stop("b")
            #expect(outcome.succeeded, "\(outcome.detail)")
            #expect(simulator.readPower(as: Self.admin.name) == "off")
        }
    }

    @Test("check mode succeeds while the BMC answers and changes nothing; a relative password file is taken from the config folder")
    func check() async throws {
        try await withSimulator { simulator in
            let relative = BMCEndpoint(
                address: simulator.address, port: simulator.port, user: Self.admin.name, passwordFile: "\(Self.admin.name).password")
            let outcome = await stopper([ipmi("bmc", relative)], configFolder: simulator.folder).check("b")
            #expect(outcome.succeeded, "\(outcome.detail)")
            #expect(outcome.detail.contains("power on"), "\(outcome.detail)")
            #expect(simulator.chassisCommands.isEmpty)
            #expect(simulator.power == true)
        }
    }

    @Test("a wrong password fails as an authentication failure; the detail carries neither password")
    func wrongPassword() async throws {
        try await withTemporaryFolder { folder in
            try await withSimulator { simulator in
                let wrong = "Wrong-pw-4409"
                let file = folder + "/wrong.password"
                try IPMISimulator.writePasswordFile(file, wrong)
                let fencer = stopper([ipmi("bmc", endpoint(simulator, passwordFile: file))])
                for outcome in [await fencer.stop("b"), await fencer.check("b")] {
                    #expect(!outcome.succeeded)
                    #expect(outcome.detail.contains("authentication failed"), "\(outcome.detail)")
                    #expect(!outcome.detail.contains(wrong) && !outcome.detail.contains(Self.admin.password), "\(outcome.detail)")
                }
                #expect(simulator.power == true)
                #expect(simulator.chassisCommands.isEmpty)
            }
        }
    }

    @Test("a missing password file is named, and ipmitool is not asked to prompt for one")
    func missingPasswordFile() async throws {
        try await withSimulator { simulator in
            let outcome = await stopper([ipmi("bmc", endpoint(simulator, passwordFile: "/nonexistent/understudy-bmc.password"))]).stop("b")
            #expect(!outcome.succeeded)
            #expect(outcome.detail.contains("/nonexistent/understudy-bmc.password") && outcome.detail.contains("does not exist"))
            #expect(simulator.power == true)
        }
    }

    @Test("a BMC that does not answer fails within the timeout")
    func notAnswering() async throws {
        let port = try FreePort.take()  // nothing listens on it
        try await withTemporaryFolder { folder in
            let file = folder + "/bmc.password"
            try IPMISimulator.writePasswordFile(file, "Nobody-listens-1")
            let silent = BMCEndpoint(address: "127.0.205.9", port: port, user: "fencer", passwordFile: file)
            let started = ContinuousClock.now
            let outcome = await stopper([ipmi("bmc", silent)], timeout: .seconds(3)).stop("b")
            let took = ContinuousClock.now - started
            #expect(!outcome.succeeded)
            #expect(outcome.detail.contains("127.0.205.9:\(port)"), "\(outcome.detail)")
            #expect(outcome.detail.contains("no result") || outcome.detail.contains("no answer"), "\(outcome.detail)")
            #expect(took < .seconds(5), "took \(took)")
        }
    }

    @Test("agents are tried in order: a failing first agent, then a second that stops the server")
    func agentsInOrder() async throws {
        try await withTemporaryFolder { folder in
            try await withSimulator { simulator in
                let file = folder + "/wrong.password"
                try IPMISimulator.writePasswordFile(file, "Wrong-pw-8812")
                let fencer = stopper([
                    ipmi("first", endpoint(simulator, passwordFile: file)), ipmi("second", endpoint(simulator)),
                ])
                let outcome = await fencer.stop("b")
                #expect(outcome.succeeded, "\(outcome.detail)")
                #expect(outcome.agent == "second")
                #expect(simulator.readPower(as: Self.admin.name) == "off")
                #expect(simulator.chassisCommands == ["set power 0"], "only the second agent reached the chassis")
            }
        }
    }

    @Test("the periodic check against the BMC reports a password that stopped working, then working again")
    func periodicCheck() async throws {
        try await withTemporaryFolder { folder in
            try await withSimulator { simulator in
                let file = folder + "/bmc.password"
                try IPMISimulator.writePasswordFile(file, Self.admin.password)
                let checker = ForcedStopChecker(stopper: stopper([ipmi("bmc", endpoint(simulator, passwordFile: file))])) { _ in }
                #expect(await checker.checkNow(peers: ["a", "b"]).isEmpty)
                #expect(await checker.results.first?.ok == true)
                try IPMISimulator.writePasswordFile(file, "Changed-pw-2290")
                let failed = await checker.checkNow(peers: ["a", "b"])
                #expect(failed.count == 1 && failed.first?.result.detail.contains("authentication failed") == true)
                #expect(await checker.checkNow(peers: ["a", "b"]).isEmpty)
                try IPMISimulator.writePasswordFile(file, Self.admin.password)
                let back = await checker.checkNow(peers: ["a", "b"])
                #expect(back.count == 1 && back.first?.result.ok == true && back.first?.previouslyOK == false)
                #expect(simulator.chassisCommands.isEmpty && simulator.power == true, "checks never touch the power")
            }
        }
    }

    @Test("a BMC that accepts power off but keeps the power on is a failure, within the timeout")
    func acceptedButStillOn() async throws {
        try await withSimulator { simulator in
            try simulator.setStuck(true)
            let started = ContinuousClock.now
            let outcome = await stopper([ipmi("bmc", endpoint(simulator))], timeout: .seconds(3)).stop("b")
            #expect(!outcome.succeeded)
            #expect(outcome.detail.contains("not off") && outcome.detail.contains("still on"), "\(outcome.detail)")
            #expect(ContinuousClock.now - started < .seconds(5))
            #expect(simulator.chassisCommands == ["set power 0"])
            #expect(simulator.readPower(as: Self.admin.name) == "on")
        }
    }

    @Test("power-cycle and reset succeed on the BMC's word and read the power state back; NMI refused by the BMC fails")
    func otherActions() async throws {
        try await withSimulator { simulator in
            let reset = await stopper([ipmi("bmc", endpoint(simulator), action: .reset)]).stop("b")
            #expect(reset.succeeded, "\(reset.detail)")
            #expect(reset.detail.contains("chassis power reset") && reset.detail.contains("power state now on"), "\(reset.detail)")
            #expect(simulator.chassisCommands == ["set reset 1"])
            let cycle = await stopper([ipmi("bmc", endpoint(simulator), action: .powerCycle)]).stop("b")
            #expect(cycle.succeeded, "\(cycle.detail)")
            #expect(simulator.chassisCommands.prefix(2) == ["set reset 1", "set power 0"], "\(simulator.chassisCommands)")
            // ipmi_sim implements no diagnostic interrupt: the BMC refuses the command.
            let nmi = await stopper([ipmi("bmc", endpoint(simulator), action: .nmi)]).stop("b")
            #expect(!nmi.succeeded)
            #expect(nmi.detail.contains("chassis power diag failed") && nmi.detail.contains("Invalid data field"), "\(nmi.detail)")
        }
    }
}
