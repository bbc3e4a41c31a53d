import Testing
import UnderstudyEngine

@testable import UnderstudyNode

@Suite("Heartbeat datagram codec and replay guard")
struct DatagramCodecTests {
    let codec = DatagramCodec(key: TransportTestSupport.key)

    private func sealed(_ payload: [UInt8] = Array("state digest".utf8), sender: String = "server1", boot: UInt64 = 7, sequence: UInt64 = 1)
        throws -> [UInt8]
    {
        try codec.seal(payload: payload, sender: sender, bootID: boot, sequence: sequence)
    }

    private func reason(_ result: Result<DatagramCodec.Opened, DropReason>) -> DropReason? {
        if case .failure(let reason) = result { return reason }
        return nil
    }

    /// `config check` and the daemon refuse configurations by the Engine's copy of this limit.
    @Test("the heartbeat budget's datagram limit is the codec's largest payload")
    func budgetMatchesTheCodec() throws {
        #expect(HeartbeatBudget.datagramPayloadLimit == DatagramCodec.maximumPayloadSize)
        let longestName = String(repeating: "n", count: NodeName.maximumLength)
        let full = try codec.seal(
            payload: [UInt8](repeating: 0x61, count: DatagramCodec.maximumPayloadSize), sender: longestName, bootID: 1, sequence: 1)
        #expect(full.count == DatagramCodec.maximumDatagramSize)
    }

    /// A known answer computed outside Swift (Python's hmac module) from the documented wire
    /// format: catches a change of byte order, field order, MAC input or key handling that a
    /// round trip through the same code would not notice.
    @Test("a sealed datagram matches the known answer, byte for byte")
    func knownAnswer() throws {
        // key "transport-test-cluster-key-0123456789", sender "server1", boot 7, sequence 1,
        // payload "state digest":
        //   python3 -c "import hmac,hashlib,struct; b=b'USHB'+bytes([1,7])+b'server1'
        //     +struct.pack('>QQH',7,1,12)+b'state digest';
        //     print((b+hmac.new(KEY,b,hashlib.sha256).digest()).hex())"
        let expected =
            "5553484201077365727665723100000000000000070000000000000001000c737461746520646967657374"
            + "e72d8694c4b7f1ecfea22438a6b72c1194e7c1a9b7537c961767aafb86b434d2"
        let bytes = try sealed()
        #expect(bytes.map { String(format: "%02x", $0) }.joined() == expected)
    }

    @Test func roundTrip() throws {
        var receiver = DatagramCodec(key: TransportTestSupport.key)
        for payload in [[], [0], Array("hello".utf8), [UInt8](repeating: 0xAB, count: 1400)] {
            let bytes = try sealed(payload, sender: "node-2.example", boot: 0xDEAD_BEEF_0000_0001, sequence: UInt64(payload.count + 1))
            let opened = try receiver.open(bytes).get()
            #expect(
                opened
                    == DatagramCodec.Opened(
                        sender: "node-2.example", bootID: 0xDEAD_BEEF_0000_0001, sequence: UInt64(payload.count + 1), payload: payload))
        }
        let largest = [UInt8](repeating: 1, count: DatagramCodec.maximumPayloadSize)
        let bytes = try codec.seal(payload: largest, sender: String(repeating: "n", count: 63), bootID: 1, sequence: 1)
        #expect(bytes.count == DatagramCodec.maximumDatagramSize)
        #expect(try receiver.open(bytes).get().payload == largest)
    }

    @Test func wireLayoutIsAsDocumented() throws {
        let bytes = try sealed([9, 8], sender: "ab", boot: 0x0102, sequence: 0x0304)
        #expect(Array(bytes[0..<4]) == Array("USHB".utf8))
        #expect(bytes[4] == 1)
        #expect(bytes[5] == 2)
        #expect(Array(bytes[6..<8]) == Array("ab".utf8))
        #expect(Array(bytes[8..<16]) == [0, 0, 0, 0, 0, 0, 1, 2])
        #expect(Array(bytes[16..<24]) == [0, 0, 0, 0, 0, 0, 3, 4])
        #expect(Array(bytes[24..<26]) == [0, 2])
        #expect(Array(bytes[26..<28]) == [9, 8])
        #expect(bytes.count == 28 + 32)
    }

    @Test func wrongKeyIsBadMAC() throws {
        var stranger = DatagramCodec(key: TransportTestSupport.otherKey)
        #expect(reason(stranger.open(try sealed())) == .badMAC)
        #expect(stranger.replayGuard.trackedSenders == 0)
    }

    @Test func everySingleBitFlipIsDropped() throws {
        let original = try sealed(Array("payload under test".utf8), sender: "server1")
        let nameEnd = 6 + "server1".utf8.count
        for byteIndex in original.indices {
            for bit in 0..<8 {
                var corrupted = original
                corrupted[byteIndex] ^= UInt8(1) << UInt8(bit)
                var receiver = DatagramCodec(key: TransportTestSupport.key)
                let dropped = reason(receiver.open(corrupted))
                #expect(dropped != nil, "flip of bit \(bit) in byte \(byteIndex) was accepted")
                // Boot id, sequence, payload and MAC are only protected by the MAC.
                if byteIndex >= nameEnd, !(nameEnd + 16..<nameEnd + 18).contains(byteIndex) {
                    #expect(dropped == .badMAC, "byte \(byteIndex) bit \(bit): \(String(describing: dropped))")
                }
            }
        }
    }

    @Test func truncationAtEveryLengthIsTruncated() throws {
        let original = try sealed()
        for length in 0..<original.count {
            var receiver = DatagramCodec(key: TransportTestSupport.key)
            #expect(reason(receiver.open(Array(original.prefix(length)))) == .truncated, "length \(length)")
        }
    }

    @Test func headerFieldErrorsHaveTheirReasons() throws {
        let original = try sealed()
        var receiver = DatagramCodec(key: TransportTestSupport.key)

        var wrongMagic = original
        wrongMagic[0] = UInt8(ascii: "X")
        #expect(reason(receiver.open(wrongMagic)) == .badMagic)
        #expect(reason(receiver.open(Array("GET / HTTP/1.1\r\n\r\n".utf8))) == .badMagic)

        var wrongVersion = original
        wrongVersion[4] = 2
        #expect(reason(receiver.open(wrongVersion)) == .badVersion)

        #expect(reason(receiver.open(original + [0])) == .badLength)

        var emptyName = original
        emptyName[5] = 0
        #expect(reason(receiver.open(emptyName)) == .badSender)
        var longName = original
        longName[5] = 64
        #expect(reason(receiver.open(longName)) == .badSender)

        var invalidName = try sealed(sender: "server1")
        invalidName[6] = UInt8(ascii: "/")
        #expect(reason(receiver.open(invalidName)) == .badSender)

        #expect(reason(receiver.open([UInt8](repeating: 0, count: DatagramCodec.maximumDatagramSize + 1))) == .oversize)
        #expect(reason(receiver.open(Array("USHB".utf8) + [UInt8](repeating: 1, count: 70_000))) == .oversize)
    }

    @Test func randomGarbageNeverOpens() {
        var generator = SplitMix64(state: 0x5EED)
        var receiver = DatagramCodec(key: TransportTestSupport.key)
        for round in 0..<5_000 {
            let length = Int.random(in: 0...300, using: &generator)
            var bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
            // Half the rounds get a valid-looking header so the deeper checks are exercised.
            if round % 2 == 0, bytes.count >= 6 {
                bytes.replaceSubrange(0..<5, with: Array("USHB".utf8) + [1])
                bytes[5] = UInt8.random(in: 1...10, using: &generator)
            }
            #expect(reason(receiver.open(bytes)) != nil)
        }
        #expect(receiver.replayGuard.trackedSenders == 0)
    }

    @Test func sealRefusesBadSendersAndHugePayloads() {
        for name in ["", "-leading-dash", ".dot", "has space", "slash/name", "ünïcode", String(repeating: "a", count: 64)] {
            #expect(throws: DatagramCodec.SealError.invalidSenderName(name)) {
                try codec.seal(payload: [], sender: name, bootID: 1, sequence: 1)
            }
        }
        let tooLarge = DatagramCodec.maximumPayloadSize + 1
        #expect(throws: DatagramCodec.SealError.payloadTooLarge(byteCount: tooLarge)) {
            try codec.seal(payload: [UInt8](repeating: 0, count: tooLarge), sender: "ok", bootID: 1, sequence: 1)
        }
    }

    @Test func replayedDatagramIsDropped() throws {
        var receiver = DatagramCodec(key: TransportTestSupport.key)
        let bytes = try sealed(sequence: 42)
        #expect(reason(receiver.open(bytes)) == nil)
        #expect(reason(receiver.open(bytes)) == .replayed)
        #expect(reason(receiver.open(bytes)) == .replayed)
    }

    @Test func reorderingWithinTheWindowIsAccepted() throws {
        var receiver = DatagramCodec(key: TransportTestSupport.key)
        for sequence: UInt64 in [5, 3, 4, 1, 2, 10, 7, 6, 9, 8] {
            #expect(reason(receiver.open(try sealed(sequence: sequence))) == nil, "sequence \(sequence)")
        }
        for sequence: UInt64 in 1...10 {
            #expect(reason(receiver.open(try sealed(sequence: sequence))) == .replayed, "sequence \(sequence)")
        }
    }

    @Test func sequencesOlderThanTheWindowAreStale() throws {
        var receiver = DatagramCodec(key: TransportTestSupport.key)
        #expect(reason(receiver.open(try sealed(sequence: 1))) == nil)
        #expect(reason(receiver.open(try sealed(sequence: 1_000))) == nil)
        #expect(reason(receiver.open(try sealed(sequence: 1_000 - 127))) == nil)
        #expect(reason(receiver.open(try sealed(sequence: 1_000 - 128))) == .staleSequence)
        #expect(reason(receiver.open(try sealed(sequence: 1))) == .staleSequence)
        #expect(reason(receiver.open(try sealed(sequence: 999))) == nil)
        #expect(reason(receiver.open(try sealed(sequence: 999))) == .replayed)
    }

    @Test func olderBootIsStaleAndNewerBootResetsTheWindow() throws {
        var receiver = DatagramCodec(key: TransportTestSupport.key)
        #expect(reason(receiver.open(try sealed(boot: 100, sequence: 500))) == nil)
        #expect(reason(receiver.open(try sealed(boot: 99, sequence: 501))) == .staleBoot)

        // The sender restarted: small sequence numbers are fresh again.
        #expect(reason(receiver.open(try sealed(boot: 101, sequence: 1))) == nil)
        #expect(reason(receiver.open(try sealed(boot: 101, sequence: 2))) == nil)
        #expect(reason(receiver.open(try sealed(boot: 101, sequence: 1))) == .replayed)
        #expect(reason(receiver.open(try sealed(boot: 100, sequence: 600))) == .staleBoot)
        #expect(receiver.replayGuard.currentBootID(of: "server1") == 101)
    }

    @Test func sendersHaveIndependentWindows() throws {
        var receiver = DatagramCodec(key: TransportTestSupport.key)
        #expect(reason(receiver.open(try sealed(sender: "a", sequence: 1))) == nil)
        #expect(reason(receiver.open(try sealed(sender: "b", sequence: 1))) == nil)
        #expect(reason(receiver.open(try sealed(sender: "a", sequence: 1))) == .replayed)
    }

    @Test func forgedDatagramsCannotPoisonTheWindow() throws {
        var receiver = DatagramCodec(key: TransportTestSupport.key)
        let forger = DatagramCodec(key: TransportTestSupport.otherKey)
        #expect(reason(receiver.open(try sealed(boot: 5, sequence: 1))) == nil)
        // A forged huge boot id and sequence must not move the window.
        let forged = try forger.seal(payload: [], sender: "server1", bootID: .max, sequence: .max)
        #expect(reason(receiver.open(forged)) == .badMAC)
        #expect(receiver.replayGuard.currentBootID(of: "server1") == 5)
        #expect(reason(receiver.open(try sealed(boot: 5, sequence: 2))) == nil)
    }

    @Test func replayGuardBoundsTheNumberOfSenders() {
        var guardian = ReplayGuard(windowSize: 16, maximumSenders: 3)
        for name in ["a", "b", "c"] { #expect(guardian.admit(sender: name, bootID: 1, sequence: 1) == nil) }
        #expect(guardian.admit(sender: "d", bootID: 1, sequence: 1) == .tooManySenders)
        guardian.forget(sender: "a")
        #expect(guardian.admit(sender: "d", bootID: 1, sequence: 1) == nil)
        // A window of 16 numbers.
        #expect(guardian.admit(sender: "b", bootID: 1, sequence: 17) == nil)
        #expect(guardian.admit(sender: "b", bootID: 1, sequence: 2) == nil)
        #expect(guardian.admit(sender: "b", bootID: 1, sequence: 1) == .staleSequence)
    }

    @Test func sequenceNumbersNearTheTopOfTheRangeWork() {
        var guardian = ReplayGuard()
        #expect(guardian.admit(sender: "a", bootID: 1, sequence: .max - 1) == nil)
        #expect(guardian.admit(sender: "a", bootID: 1, sequence: .max) == nil)
        #expect(guardian.admit(sender: "a", bootID: 1, sequence: .max - 1) == .replayed)
        #expect(guardian.admit(sender: "a", bootID: 1, sequence: 0) == .staleSequence)
    }
}
