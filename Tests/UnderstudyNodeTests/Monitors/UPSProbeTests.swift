import Foundation
import Testing
import UnderstudyEngine
import UnderstudyTestSupport

@testable import UnderstudyNode

/// upsw's probe and the power-off command against a real NUT upsd (dummy-ups drivers, and a
/// clone driver that carries out shutdown.return), started by the test on 127.0.0.1.
@Suite("UPS probe against a real upsd", .serialized)
struct UPSProbeTests {
    @Test(
        "OL, OB, OB LB, FSD and unreadable UPSes; shutdown.return powers the clone off and on again; bad credentials refused",
        .requires(NUTServer.prerequisite))
    func realUPSD() async throws {
        let nut = try await NUTServer.start(upses: ["ups1", "ups2"], clones: ["outlet1": "ups1"], offDelay: 2, onDelay: 1)
        defer { nut.stop() }
        let probe = UPSProbe(ups: "ups1", client: nut.client)

        var (result, power) = await probe.checkPower()
        #expect(result == .normal && power == .online)
        try nut.setStatus("ups1", "OB")
        try await waitFor("ups1 on battery") { await probe.checkPower().power == .onBattery }
        (result, power) = await probe.checkPower()
        #expect(power == .onBattery)
        if case .warning = result {} else { Issue.record("on battery should be a warning, got \(result)") }
        try nut.setStatus("ups1", "OB LB")
        try await waitFor("ups1 battery low") { await probe.checkPower().power == .lowBattery }

        // Not readable: unknown UPS, driver gone, upsd gone — errors, never a power state.
        (result, power) = await UPSProbe(ups: "nosuch", client: nut.client).checkPower()
        #expect(power == nil && "\(result)".contains("UNKNOWN-UPS"), "\(result)")
        nut.kill("driver-ups2")
        // upsd notices the lost driver within a moment.
        let ups2 = UPSProbe(ups: "ups2", client: nut.client)
        try await waitFor("ups2 unreadable") { await ups2.checkPower().power == nil }
        (result, power) = await ups2.checkPower()
        #expect(power == nil && "\(result)".contains("DRIVER-NOT-CONNECTED"), "\(result)")

        // The power-off command: refused with a wrong password, carried out with the right one.
        let wrong = nut.client.instantCommand("shutdown.return", ups: "outlet1", user: nut.user, password: "wrong")
        if case .success = wrong { Issue.record("a wrong password was accepted") }
        let done = nut.client.instantCommand("shutdown.return", ups: "outlet1", user: nut.user, password: nut.password)
        if case .failure(let failure) = done { Issue.record("shutdown.return failed: \(failure)") }
        // The clone is now in forced shutdown (upsw sees that as battery low)…
        let outlet = UPSProbe(ups: "outlet1", client: nut.client)
        // (Both read in one go: the forced-shutdown phase ends when the clone powers off.)
        try await waitFor("outlet1 in forced shutdown") {
            let forced = nut.variable("ups.status", of: "outlet1")?.contains("FSD") == true
            let power = await outlet.checkPower().power
            return forced && power == .lowBattery
        }
        // … powers the load off after its delay, and on again once line power returns.
        try await waitFor("load.off sent by the clone", timeout: .seconds(8)) { nut.log(of: "driver-ups1").contains("[load.off]") }
        #expect(!nut.log(of: "driver-ups1").contains("[load.on]"))
        try nut.setStatus("ups1", "OL")
        try await waitFor("load.on after line power returned", timeout: .seconds(8)) { nut.log(of: "driver-ups1").contains("[load.on]") }

        nut.kill("upsd")
        (result, power) = await probe.checkPower()
        #expect(power == nil && "\(result)".contains("127.0.0.1:\(nut.port)"), "\(result)")
        if case .error = result {} else { Issue.record("upsd gone should be an error, got \(result)") }
    }

    @Test(
        "status flags",
        arguments: [
            ("OL", MonitorResult.normal, PowerState.online), ("OL CHRG", .normal, .online), ("OB DISCHRG", nil, .onBattery),
            ("OB LB", nil, .lowBattery), ("FSD OL", nil, .lowBattery), ("OL RB", nil, .online),
        ] as [(String, MonitorResult?, PowerState)])
    func flags(_ status: String, _ result: MonitorResult?, _ power: PowerState) {
        let interpreted = UPSProbe.interpret(status, ups: "u")
        #expect(interpreted.power == power)
        if let result { #expect(interpreted.result == result) } else { #expect(interpreted.result != .normal) }
    }

    @Test("protocol text: quoting, unquoting, names")
    func protocolText() {
        #expect(NUTClient.unquote(#""OB LB""#) == "OB LB")
        #expect(NUTClient.unquote(#""a\"b\\c""#) == #"a"b\c"#)
        #expect(NUTClient.unquote("OL") == nil && NUTClient.unquote(#""open"#) == nil)
        #expect(NUTClient.quote(#"p"w\d"#) == #""p\"w\\d""#)
        #expect(NUTClient.isWord("ups-1.rack_2") && !NUTClient.isWord("ups 1") && !NUTClient.isWord("ups\nLOGOUT"))
    }

    func waitFor(_ what: String, timeout: Duration = .seconds(5), _ condition: () async -> Bool) async throws {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if await condition() { return }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw TestSupportError("timed out after \(timeout) waiting for \(what)")
    }
}
