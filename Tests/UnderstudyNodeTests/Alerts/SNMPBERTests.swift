import Foundation
import Testing
import UnderstudyModel

@testable import UnderstudyNode

/// The hand-written BER encoder, byte for byte against X.690's rules and examples, and the
/// trap messages built from it.
@Suite("SNMP BER encoding")
struct SNMPBERTests {
    @Test(
        "INTEGER: shortest two's complement",
        arguments: [
            (Int64(0), [0x02, 0x01, 0x00]), (127, [0x02, 0x01, 0x7F]), (128, [0x02, 0x02, 0x00, 0x80]),
            (256, [0x02, 0x02, 0x01, 0x00]), (-1, [0x02, 0x01, 0xFF]), (-128, [0x02, 0x01, 0x80]),
            (-129, [0x02, 0x02, 0xFF, 0x7F]), (Int64(Int32.max), [0x02, 0x04, 0x7F, 0xFF, 0xFF, 0xFF]),
            (Int64(Int32.min), [0x02, 0x04, 0x80, 0x00, 0x00, 0x00]),
        ] as [(Int64, [UInt8])])
    func integer(value: Int64, expected: [UInt8]) {
        #expect(BER.integer(value) == expected)
    }

    @Test("TimeTicks and Unsigned32: unsigned, a leading zero octet where the high bit is set")
    func unsignedTypes() {
        #expect(BER.unsigned(0, tag: BER.Tag.timeTicks) == [0x43, 0x01, 0x00])
        #expect(BER.unsigned(200, tag: BER.Tag.timeTicks) == [0x43, 0x02, 0x00, 0xC8])
        #expect(BER.unsigned(UInt32.max, tag: BER.Tag.timeTicks) == [0x43, 0x05, 0x00, 0xFF, 0xFF, 0xFF, 0xFF])
        #expect(BER.unsigned(65_536, tag: BER.Tag.unsigned32) == [0x42, 0x03, 0x01, 0x00, 0x00])
    }

    @Test("lengths: short form below 128, long form with the fewest octets above")
    func lengths() {
        #expect(BER.length(0) == [0x00])
        #expect(BER.length(127) == [0x7F])
        #expect(BER.length(128) == [0x81, 0x80])
        #expect(BER.length(255) == [0x81, 0xFF])
        #expect(BER.length(256) == [0x82, 0x01, 0x00])
        #expect(BER.length(65_536) == [0x83, 0x01, 0x00, 0x00])
        let long = BER.octetString(Array(repeating: 0x41, count: 300))
        #expect(Array(long.prefix(4)) == [0x04, 0x82, 0x01, 0x2C])
        #expect(long.count == 304)
        #expect(BER.octetString([]) == [0x04, 0x00])
        #expect(BER.null == [0x05, 0x00])
    }

    @Test("OBJECT IDENTIFIER: first two arcs joined, base 128 with large arcs")
    func objectIdentifiers() throws {
        // X.690 8.19.5's example: {2 999 3}.
        #expect(BER.objectIdentifier(try #require(SNMPObjectID("2.999.3"))) == [0x06, 0x03, 0x88, 0x37, 0x03])
        #expect(
            BER.objectIdentifier(UnderstudyMIB.defaultRoot)
                == [0x06, 0x09, 0x2B, 0x06, 0x01, 0x04, 0x01, 0x81, 0xFD, 0x59, 0x11])
        #expect(
            BER.objectIdentifier(try #require(SNMPObjectID([1, 3, UInt32.max])))
                == [0x06, 0x06, 0x2B, 0x8F, 0xFF, 0xFF, 0xFF, 0x7F])
        #expect(BER.objectIdentifier(try #require(SNMPObjectID("1.3.6.1.2.1.1.3.0"))) == [0x06, 0x08, 0x2B, 6, 1, 2, 1, 1, 3, 0])
        #expect(BER.base128(128) == [0x81, 0x00])
    }

    @Test("OIDs from text: malformed ones refused")
    func objectIdentifierText() {
        #expect(SNMPObjectID(".1.3.6.1")?.description == "1.3.6.1")
        for bad in ["", "1", "3.1", "1.40", "1..3", "1.3.x", "1.3.4294967296", "1.3.-1", "1.3.+1", "1.3.٣"] {
            #expect(SNMPObjectID(bad) == nil, "\(bad)")
        }
        #expect(SNMPObjectID("2.100")?.arcs == [2, 100])
    }

    static let alert = AlertEvent(
        cluster: "prod", server: "db1", time: Date(timeIntervalSince1970: 1_796_549_000.123), level: .error, module: "rm",
        eventID: 9, message: "Monitor fipw1 detected an error.")

    @Test("an SNMPv2c trap: version 1, community, PDU [7] with sysUpTime.0 and snmpTrapOID.0 first")
    func v2cShape() throws {
        let message = TrapMessage.v2c(Self.alert, community: "public", root: UnderstudyMIB.defaultRoot, upTime: 4200, requestID: 77)
        // SEQUENCE with a long-form length (the message is over 255 bytes: two length octets).
        #expect(Array(message[0...1]) == [0x30, 0x82])
        #expect(Int(message[2]) << 8 | Int(message[3]) == message.count - 4)
        // version 1 (v2c), community "public", then the SNMPv2-Trap-PDU tag.
        #expect(Array(message[4..<7]) == [0x02, 0x01, 0x01])
        #expect(Array(message[7..<15]) == [0x04, 0x06] + Array("public".utf8))
        #expect(message[15] == BER.Tag.trapV2PDU)
        // request-id 77, error-status 0, error-index 0 after the PDU's own length.
        #expect(message.firstRange(of: [0x02, 0x01, 77, 0x02, 0x01, 0x00, 0x02, 0x01, 0x00]) != nil)
        let sysUpTime = TrapMessage.varbind(UnderstudyMIB.sysUpTime, BER.unsigned(4200, tag: BER.Tag.timeTicks))
        let trapOID = TrapMessage.varbind(
            UnderstudyMIB.snmpTrapOID, BER.objectIdentifier(try #require(SNMPObjectID("1.3.6.1.4.1.32473.17.0.3"))))
        #expect(message.firstRange(of: sysUpTime + trapOID) != nil)
        #expect(message.firstRange(of: Array("Monitor fipw1 detected an error.".utf8)) != nil)
        #expect(message.firstRange(of: Array("2026-12-06T".utf8)) != nil)
    }

    @Test("an SNMPv1 trap maps as RFC 3584: enterprise = root, specific = level")
    func v1Shape() {
        let message = TrapMessage.v1(
            Self.alert, community: "c", root: UnderstudyMIB.defaultRoot, upTime: 1, agentAddress: [127, 0, 0, 1])
        let contents = message[1] & 0x80 == 0 ? 2 : 2 + Int(message[1] & 0x7F)
        #expect(Array(message[contents..<contents + 3]) == [0x02, 0x01, 0x00])
        let expected =
            BER.objectIdentifier(UnderstudyMIB.defaultRoot) + [0x40, 0x04, 127, 0, 0, 1] + BER.integer(6) + BER.integer(3)
            + BER.unsigned(1, tag: BER.Tag.timeTicks)
        #expect(message.firstRange(of: expected) != nil)
    }

    @Test("text is cut at a character boundary to the MIB's 1,024 bytes")
    func truncation() {
        let text = String(repeating: "é", count: 600)  // 1,200 bytes
        let cut = TrapMessage.truncatedUTF8(text, 1024)
        #expect(cut.count == 1024)
        #expect(String(validating: cut, as: UTF8.self) != nil)
        #expect(TrapMessage.truncatedUTF8("abc", 2) == Array("ab".utf8))
    }

    @Test("manager addresses parse with clear errors")
    func managers() throws {
        #expect(try TrapManager(parsing: "nms.example.com") == TrapManager(host: "nms.example.com", port: 162))
        #expect(try TrapManager(parsing: "192.0.2.9:1162") == TrapManager(host: "192.0.2.9", port: 1162))
        #expect(try TrapManager(parsing: "[2001:db8::1]:2162") == TrapManager(host: "2001:db8::1", port: 2162))
        #expect(try TrapManager(parsing: "2001:db8::1") == TrapManager(host: "2001:db8::1", port: 162))
        #expect(TrapManager(host: "2001:db8::1", port: 162).description == "[2001:db8::1]:162")
        for (bad, words) in [
            ("", "empty"), ("host:0", "port"), ("host:99999", "port"), (":162", "no host"), ("[::1", "without"),
            ("a b", "neither"),
        ] {
            #expect {
                _ = try TrapManager(parsing: bad)
            } throws: { error in
                "\(error)".contains(words)
            }
        }
    }
}
