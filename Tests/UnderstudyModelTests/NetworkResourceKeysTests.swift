import Testing
import UnderstudyModel

/// The keys issue 3 added: fip announcement and probe tuning, vip RIP settings, the pingnp
/// timeout; read into the model, defaults where absent, ranges checked.
@Suite struct NetworkResourceKeysTests {
    @Test func fipTuningAndPingTimeoutAreRead() throws {
        let yaml =
            baseCluster.replacingOccurrences(of: "targets: [10.0.0.254]", with: "targets: [10.0.0.254], timeout: 30ms")
            + "groups:\n  - name: g1\n    resources:\n      - {name: f, type: fip, address: 10.0.0.50/24, announce-count: 5, announce-interval: 20ms, probe-wait: 25ms}\n"
        let config = try load(yaml).config
        guard case .fip(let fip) = config.groups[0].resources[0].settings else {
            Issue.record("not a fip")
            return
        }
        #expect(fip.announceCount == 5)
        #expect(fip.announceInterval == .milliseconds(20))
        #expect(fip.probeWait == .milliseconds(25))
        #expect(config.networkPartition.first { $0.typeName == "pingnp" }?.pingTimeout == .milliseconds(30))
    }

    @Test func vipRIPSettingsAndDefaults() throws {
        let yaml =
            baseCluster
            + "groups:\n  - name: g1\n    resources:\n      - {name: a, type: vip, address: 10.9.0.1/32, rip-version: 1, rip-interval: 5s, rip-metric: 3}\n      - {name: b, type: vip, address: 10.9.0.2}\n"
        let config = try load(yaml).config
        guard case .vip(let set) = config.groups[0].resources[0].settings,
            case .vip(let defaulted) = config.groups[0].resources[1].settings
        else {
            Issue.record("not vips")
            return
        }
        #expect(set.ripVersion == .v1 && set.ripInterval == .seconds(5) && set.ripMetric == 3)
        #expect(defaulted.ripVersion == nil && defaulted.ripInterval == .seconds(30) && defaulted.ripMetric == 1)
    }

    @Test func outOfRangeValuesAreErrors() {
        let fip = baseCluster + "groups:\n  - name: g1\n    resources: [{name: f, type: fip, address: 10.0.0.50/24, probe-wait: 5ms}]\n"
        expectError(fip, line: baseLines + 3, keyPath: "groups[0].resources[0].probe-wait", "must be from 20ms to 10s")
        let vip = baseCluster + "groups:\n  - name: g1\n    resources: [{name: v, type: vip, address: 10.9.0.1, rip-metric: 16}]\n"
        expectError(vip, line: baseLines + 3, keyPath: "groups[0].resources[0].rip-metric", "16 means unreachable")
        let ng = baseCluster + "groups:\n  - name: g1\n    resources: [{name: v, type: vip, address: 10.9.0.1, rip-version: ng}]\n"
        expectError(ng, line: baseLines + 3, keyPath: "groups[0].resources[0].rip-version", "RIPng carries IPv6 only")
    }
}
