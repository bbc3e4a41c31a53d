import Foundation
import UnderstudyEngine

/// upsw: a UPS's `ups.status` from NUT's upsd. Line power is Normal; on battery (and battery
/// low) is Caution with the power state for the Engine's power policy; a UPS that cannot be
/// read (upsd down, driver not connected, stale data) is an error without a power state, so
/// it never shuts anything down by itself.
struct UPSProbe: MonitorProbe {
    let ups: String
    let client: NUTClient
    let call = BlockingCall()

    func check() async -> MonitorResult { await checkPower().result }

    func checkPower() async -> (result: MonitorResult, power: PowerState?) {
        let (ups, client) = (ups, client)
        return await call.run(busy: (MonitorResult.error("the previous upsd query is still blocked"), nil)) {
            switch client.status(of: ups) {
            case .failure(let failure):
                return (.error("cannot read UPS \(ups): \(failure)"), nil)
            case .success(let status):
                return Self.interpret(status, ups: ups)
            }
        }
    }

    /// NUT status flags: OL on line, OB on battery, LB battery low, FSD forced shutdown, RB
    /// replace battery (and others that change nothing here).
    static func interpret(_ status: String, ups: String) -> (result: MonitorResult, power: PowerState?) {
        let flags = Set(status.split(separator: " ").map(String.init))
        if flags.contains("LB") || flags.contains("FSD") {
            return (.warning("UPS \(ups): \(status) (battery low or forced shutdown)"), .lowBattery)
        }
        if flags.contains("OB") { return (.warning("UPS \(ups) is on battery (\(status))"), .onBattery) }
        if flags.contains("OL") {
            if flags.contains("RB") { return (.warning("UPS \(ups) asks for its battery to be replaced (\(status))"), .online) }
            return (.normal, .online)
        }
        return (.warning("UPS \(ups) reports \"\(status)\""), nil)
    }
}
