import Foundation
import Testing
import UnderstudyModel
import UnderstudyTestSupport

@testable import UnderstudyNode

/// The shipped MIB against net-snmp's parser, and traps into a real snmptrapd that decodes
/// them with it.
@Suite("SNMP trap destination", .serialized)
struct SNMPTrapDestinationTests {
    static let alert = AlertEvent(
        cluster: "prod", server: "db1", time: Date(timeIntervalSince1970: 1_796_549_000.25), level: .error, module: "rm",
        eventID: 9, message: "Monitor fipw1 detected an error (ＦＩＰ 192.0.2.10).")

    /// Every object and notification the sender uses, by name, at the OID the code sends.
    @Test("snmptranslate accepts UNDERSTUDY-MIB, and its OIDs are the ones the code sends", .requires(SNMPTools.snmptranslate))
    func mibTranslates() throws {
        let scratch = FileManager.default.temporaryDirectory.path + "/understudy-mib-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let directories = try SNMPTools.mibDirectories(scratch: scratch)
        let root = UnderstudyMIB.defaultRoot
        let expected: [(String, SNMPObjectID)] = [
            ("understudyMIB", root),
            ("understudyAlertInfo", UnderstudyMIB.notification(.info, root: root)),
            ("understudyAlertWarning", UnderstudyMIB.notification(.warning, root: root)),
            ("understudyAlertError", UnderstudyMIB.notification(.error, root: root)),
            ("understudyAlertCluster.0", UnderstudyMIB.object(UnderstudyMIB.cluster, root: root)),
            ("understudyAlertServer.0", UnderstudyMIB.object(UnderstudyMIB.server, root: root)),
            ("understudyAlertModule.0", UnderstudyMIB.object(UnderstudyMIB.module, root: root)),
            ("understudyAlertEventID.0", UnderstudyMIB.object(UnderstudyMIB.eventID, root: root)),
            ("understudyAlertLevel.0", UnderstudyMIB.object(UnderstudyMIB.level, root: root)),
            ("understudyAlertMessage.0", UnderstudyMIB.object(UnderstudyMIB.message, root: root)),
            ("understudyAlertTime.0", UnderstudyMIB.object(UnderstudyMIB.time, root: root)),
        ]
        for (name, oid) in expected {
            let result = Shell.run(["snmptranslate", "-M", directories, "-m", "+UNDERSTUDY-MIB", "-IR", "-On", name])
            #expect(result.ok, "snmptranslate \(name): \(result.output.suffix(600))")
            let lines = result.output.split(separator: "\n")
            #expect(lines.contains { $0 == "." + oid.description }, "\(name) should be .\(oid)")
            // net-snmp warns (and still answers) for a module with errors: none may name ours.
            #expect(!lines.contains { $0.contains("UNDERSTUDY-MIB") }, "\(result.output.suffix(1000))")
        }
        // The level enumeration matches the code's numbering.
        let level = Shell.run(["snmptranslate", "-M", directories, "-m", "+UNDERSTUDY-MIB", "-Td", "UNDERSTUDY-MIB::understudyAlertLevel"])
        #expect(level.output.contains("info(1), warning(2), error(3)"))
    }

    @Test("an SNMPv2c trap arrives in snmptrapd as understudyAlertError with every object", .requires(SNMPTools.snmptrapd))
    func v2cTrap() async throws {
        let receiver = try await SNMPTrapReceiver.start()
        defer { receiver.stop() }
        let destination = try SNMPTrapDestination(
            settings: TrapSettings(managers: [TrapManager(host: "127.0.0.1", port: receiver.port)], community: "understudy"))
        #expect(destination.name == "trap 127.0.0.1:\(receiver.port)")
        try await destination.deliver(Self.alert)
        let log = try #require(
            await receiver.waitForTrap(containing: ["UNDERSTUDY-MIB::understudyAlertError", "fipw1"]), "\(receiver.log.suffix(3000))")
        #expect(log.contains("OID: UNDERSTUDY-MIB::understudyAlertError"))
        #expect(log.contains("UNDERSTUDY-MIB::understudyAlertCluster.0 = STRING: prod"))
        #expect(log.contains("UNDERSTUDY-MIB::understudyAlertServer.0 = STRING: db1"))
        #expect(log.contains("UNDERSTUDY-MIB::understudyAlertModule.0 = STRING: rm"))
        #expect(log.contains("UNDERSTUDY-MIB::understudyAlertEventID.0 = Gauge32: 9"))
        #expect(log.contains("UNDERSTUDY-MIB::understudyAlertLevel.0 = INTEGER: error(3)"))
        #expect(log.contains("UNDERSTUDY-MIB::understudyAlertMessage.0 = STRING: Monitor fipw1 detected an error (ＦＩＰ 192.0.2.10)."))
        #expect(log.contains("UNDERSTUDY-MIB::understudyAlertTime.0 = STRING: 2026-12-06T09:23:20.250Z"))
        #expect(log.contains("Timeticks: ("))
    }

    @Test("an SNMPv1 trap maps to the same notification", .requires(SNMPTools.snmptrapd))
    func v1Trap() async throws {
        let receiver = try await SNMPTrapReceiver.start()
        defer { receiver.stop() }
        var alert = Self.alert
        alert.level = .warning
        alert.message = "version one"
        let destination = try SNMPTrapDestination(
            settings: TrapSettings(managers: [TrapManager(host: "127.0.0.1", port: receiver.port)], version: .v1))
        try await destination.deliver(alert)
        let log = try #require(await receiver.waitForTrap(containing: ["version one"]), "\(receiver.log.suffix(3000))")
        #expect(log.contains("SNMP v1, community public"))
        #expect(log.contains("Enterprise Specific Trap (UNDERSTUDY-MIB::understudyAlertWarning)"))
        #expect(log.contains("localhost [127.0.0.1]") || log.contains("[127.0.0.1]"))
        #expect(log.contains("UNDERSTUDY-MIB::understudyAlertLevel.0 = INTEGER: warning(2)"))
    }

    @Test("two managers: one datagram each; an absent receiver is reported by name", .requires(SNMPTools.snmptrapd))
    func absentReceiver() async throws {
        let receiver = try await SNMPTrapReceiver.start()
        defer { receiver.stop() }
        let nobody = try FreePort.take()
        var alert = Self.alert
        alert.level = .info
        alert.message = "to two managers"
        let destination = try SNMPTrapDestination(
            settings: TrapSettings(managers: [
                TrapManager(host: "127.0.0.1", port: nobody), TrapManager(host: "127.0.0.1", port: receiver.port),
            ]))
        let error = try await #require(throws: TrapDeliveryError.self) { try await destination.deliver(alert) }
        #expect(error.description.contains("127.0.0.1:\(nobody)"))
        #expect(error.description.contains("refused"))
        #expect(!error.description.contains("127.0.0.1:\(receiver.port)"))
        // The live manager got it all the same.
        let log = try #require(await receiver.waitForTrap(containing: ["to two managers"]), "\(receiver.log.suffix(3000))")
        #expect(log.contains("UNDERSTUDY-MIB::understudyAlertInfo"))
    }

    @Test("an unresolvable manager is an error naming it")
    func unresolvable() async throws {
        let destination = try SNMPTrapDestination(
            settings: TrapSettings(managers: [TrapManager(host: "nms.invalid", port: 162)], refusalWait: .zero))
        let error = try await #require(throws: TrapDeliveryError.self) { try await destination.deliver(Self.alert) }
        #expect(error.description.contains("nms.invalid:162"))
    }

    @Test("settings: no manager, an empty community, a bad manager are refused by name")
    func settings() {
        func problem(_ settings: TrapSettings) -> String? {
            do {
                _ = try SNMPTrapDestination(settings: settings)
                return nil
            } catch {
                return error.description
            }
        }
        let manager = TrapManager(host: "192.0.2.9")
        #expect(problem(TrapSettings(managers: [manager])) == nil)
        #expect(problem(TrapSettings(managers: []))?.hasPrefix("managers:") == true)
        #expect(problem(TrapSettings(managers: [manager, TrapManager(host: "bad host", port: 162)]))?.hasPrefix("managers[1]:") == true)
        #expect(problem(TrapSettings(managers: [TrapManager(host: "nms", port: 70000)]))?.contains("port") == true)
        #expect(problem(TrapSettings(managers: [manager], community: ""))?.hasPrefix("community:") == true)
        #expect(problem(TrapSettings(managers: [manager], refusalWait: .seconds(-1)))?.contains("refusal wait") == true)
    }
}
