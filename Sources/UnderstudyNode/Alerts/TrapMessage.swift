import Foundation
import UnderstudyModel

/// The numbers of docs/UNDERSTUDY-MIB.txt. The root is a placeholder under the documentation
/// enterprise number (RFC 5612: enterprises.32473); a site can move it (`TrapSettings.root`)
/// and edit the MIB's MODULE-IDENTITY line to match, everything below keeps its numbers.
public enum UnderstudyMIB {
    /// `understudyMIB`: 1.3.6.1.4.1.32473.17.
    public static let defaultRoot = SNMPObjectID(constant: [1, 3, 6, 1, 4, 1, 32473, 17])

    /// `understudyAlertInfo` (…0.1), `understudyAlertWarning` (…0.2), `understudyAlertError` (…0.3).
    static func notification(_ level: LogLevel, root: SNMPObjectID) -> SNMPObjectID {
        root.appending(0, levelNumber(level))
    }

    /// The `understudyAlertLevel` enumeration, which is also the notification's last arc.
    static func levelNumber(_ level: LogLevel) -> UInt32 {
        switch level {
        case .info: 1
        case .warning: 2
        case .error: 3
        }
    }

    /// The scalar instance (`.0`) of object `number` under `understudyAlertObjects` (…1.n).
    static func object(_ number: UInt32, root: SNMPObjectID) -> SNMPObjectID { root.appending(1, number, 0) }

    static let cluster: UInt32 = 1
    static let server: UInt32 = 2
    static let module: UInt32 = 3
    static let eventID: UInt32 = 4
    static let level: UInt32 = 5
    static let message: UInt32 = 6
    static let time: UInt32 = 7

    /// SNMPv2-MIB::sysUpTime.0 and snmpTrapOID.0 (RFC 3418), the first two varbinds of every
    /// SNMPv2 notification (RFC 3416 §4.2.6).
    static let sysUpTime = SNMPObjectID(constant: [1, 3, 6, 1, 2, 1, 1, 3, 0])
    static let snmpTrapOID = SNMPObjectID(constant: [1, 3, 6, 1, 6, 3, 1, 1, 4, 1, 0])
    /// UnderstudyText's SIZE (0..1024).
    static let maximumTextBytes = 1024
}

/// One alert as an SNMP trap message (a whole UDP datagram): SNMPv2c with an
/// SNMPv2-Trap-PDU (RFC 3416), or SNMPv1 with a Trap-PDU (RFC 1157) mapped as RFC 3584 §3.1
/// describes, so that a manager translating v1 traps sees the same notification.
enum TrapMessage {
    /// The varbinds after sysUpTime.0 and snmpTrapOID.0 (v2c), or all of them (v1).
    static func objectVarbinds(_ alert: AlertEvent, root: SNMPObjectID) -> [[UInt8]] {
        func text(_ number: UInt32, _ value: String) -> [UInt8] {
            varbind(UnderstudyMIB.object(number, root: root), BER.octetString(truncatedUTF8(value, UnderstudyMIB.maximumTextBytes)))
        }
        let eventID = UInt32(clamping: max(0, alert.eventID))
        return [
            text(UnderstudyMIB.cluster, alert.cluster),
            text(UnderstudyMIB.server, alert.server),
            text(UnderstudyMIB.module, alert.module),
            varbind(UnderstudyMIB.object(UnderstudyMIB.eventID, root: root), BER.unsigned(eventID, tag: BER.Tag.unsigned32)),
            varbind(
                UnderstudyMIB.object(UnderstudyMIB.level, root: root),
                BER.integer(Int64(UnderstudyMIB.levelNumber(alert.level)))),
            text(UnderstudyMIB.message, alert.message),
            text(UnderstudyMIB.time, timestamp(alert.time)),
        ]
    }

    /// SNMPv2c: `SEQUENCE { version 1, community, SNMPv2-Trap-PDU }`.
    static func v2c(
        _ alert: AlertEvent, community: String, root: SNMPObjectID, upTime: UInt32, requestID: Int32
    ) -> [UInt8] {
        let varbinds =
            [
                varbind(UnderstudyMIB.sysUpTime, BER.unsigned(upTime, tag: BER.Tag.timeTicks)),
                varbind(
                    UnderstudyMIB.snmpTrapOID,
                    BER.objectIdentifier(UnderstudyMIB.notification(alert.level, root: root))),
            ] + objectVarbinds(alert, root: root)
        let pdu = BER.sequence(
            [BER.integer(Int64(requestID)), BER.integer(0), BER.integer(0), BER.sequence(varbinds)],
            tag: BER.Tag.trapV2PDU)
        return BER.sequence([BER.integer(1), BER.octetString(Array(community.utf8)), pdu])
    }

    /// SNMPv1: `SEQUENCE { version 0, community, Trap-PDU }` with enterprise = the root,
    /// generic-trap enterpriseSpecific(6) and specific-trap = the notification's last arc
    /// (RFC 3584 §3.1: the notification `root.0.n` maps to enterprise `root`, specific `n`).
    static func v1(
        _ alert: AlertEvent, community: String, root: SNMPObjectID, upTime: UInt32, agentAddress: [UInt8]
    ) -> [UInt8] {
        let address = agentAddress.count == 4 ? agentAddress : [0, 0, 0, 0]
        let pdu = BER.sequence(
            [
                BER.objectIdentifier(root),
                BER.tlv(BER.Tag.ipAddress, address),
                BER.integer(6),
                BER.integer(Int64(UnderstudyMIB.levelNumber(alert.level))),
                BER.unsigned(upTime, tag: BER.Tag.timeTicks),
                BER.sequence(objectVarbinds(alert, root: root)),
            ],
            tag: BER.Tag.trapV1PDU)
        return BER.sequence([BER.integer(0), BER.octetString(Array(community.utf8)), pdu])
    }

    static func varbind(_ oid: SNMPObjectID, _ value: [UInt8]) -> [UInt8] {
        BER.sequence([BER.objectIdentifier(oid), value])
    }

    /// The UTF-8 of `text`, cut at a character boundary to at most `limit` bytes.
    static func truncatedUTF8(_ text: String, _ limit: Int) -> [UInt8] {
        var bytes: [UInt8] = []
        for character in text {
            let encoded = Array(String(character).utf8)
            if bytes.count + encoded.count > limit { break }
            bytes += encoded
        }
        return bytes
    }

    /// RFC 3339 in UTC with milliseconds: `2026-12-06T09:40:00.123Z`.
    static func timestamp(_ date: Date) -> String {
        UTCTimestamp.milliseconds(date)
    }
}
