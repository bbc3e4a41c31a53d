import Foundation
import Testing
import UnderstudyEngine

@testable import UnderstudyNode

/// The disk heartbeat's device header and slot codec, and how a reader treats what it finds
/// in a peer's slot: no device needed.
@Suite("Disk heartbeat format")
struct DiskHeartbeatFormatTests {
    let key = TransportTestSupport.key
    var slots: DiskSlotCodec { DiskSlotCodec(key: key, clusterName: "c1") }

    func sealedSlot(sender: String = "node2", slot: Int = 1, sequence: UInt64 = 7, payload: [UInt8] = Array("hello".utf8)) throws
        -> [UInt8]
    {
        let datagram = try DatagramCodec(key: key).seal(payload: payload, sender: sender, bootID: 42, sequence: sequence)
        let bytes = try #require(slots.seal(datagram: datagram, slot: slot, writtenAtMicros: 1_700_000_000_000_000))
        // As read back from the device: the whole slot, zero padding after the record.
        return bytes + [UInt8](repeating: 0, count: DiskHeartbeatLayout.slotSize - bytes.count)
    }

    @Test("a slot round-trips; a zeroed slot is empty, not an error")
    func roundTrip() throws {
        let bytes = try sealedSlot()
        let slot = try #require(try slots.open(bytes, expectedSlot: 1).get())
        #expect(slot.index == 1 && slot.writtenAtMicros == 1_700_000_000_000_000)
        let opened = try DatagramCodec(key: key).authenticate(slot.datagram).get()
        #expect(opened.sender == "node2" && opened.sequence == 7 && opened.payload == Array("hello".utf8))
        #expect(try slots.open([UInt8](repeating: 0, count: DiskHeartbeatLayout.slotSize), expectedSlot: 1).get() == nil)
    }

    @Test("the largest heartbeat a configuration may have fits in a slot, sealed with the longest sender name")
    func largestHeartbeatFits() throws {
        let payload = [UInt8](repeating: 0x41, count: HeartbeatBudget.limit)
        let name = String(repeating: "n", count: NodeName.maximumLength)
        let datagram = try DatagramCodec(key: key).seal(payload: payload, sender: name, bootID: 1, sequence: 1)
        #expect(datagram.count <= DiskSlotCodec.maximumDatagramLength)
        #expect(slots.seal(datagram: datagram, slot: 0, writtenAtMicros: 0) != nil)
        // A datagram larger than a slot is refused, not cut.
        #expect(
            slots.seal(datagram: [UInt8](repeating: 1, count: DiskSlotCodec.maximumDatagramLength + 1), slot: 0, writtenAtMicros: 0) == nil)
    }

    @Test("foreign, misplaced and damaged slots are rejected with their reason")
    func rejections() throws {
        let good = try sealedSlot()
        #expect(slots.open(good, expectedSlot: 0).failureReason == .wrongSlot)
        #expect(DiskSlotCodec(key: key, clusterName: "other").open(good, expectedSlot: 1).failureReason == .foreignCluster)
        #expect(DiskSlotCodec(key: TransportTestSupport.otherKey, clusterName: "c1").open(good, expectedSlot: 1).failureReason == .badMAC)
        var magic = good
        magic[0] = UInt8(ascii: "X")
        #expect(slots.open(magic, expectedSlot: 1).failureReason == .badMagic)
        var length = good
        length[24...27] = [0xFF, 0xFF, 0xFF, 0xFF]
        #expect(slots.open(length, expectedSlot: 1).failureReason == .badLength)
        #expect(slots.open(Array(good.prefix(30)), expectedSlot: 1).failureReason == .truncated)
        // Torn: the header of one write with the datagram of another.
        let other = try sealedSlot(sequence: 8, payload: Array("world".utf8))
        let torn = Array(good.prefix(DiskSlotCodec.headerLength)) + Array(other.dropFirst(DiskSlotCodec.headerLength))
        #expect(slots.open(torn, expectedSlot: 1).failureReason == .badMAC)
    }

    /// Random slots, truncations and byte mutations of a genuine slot: never a trap, and a
    /// mutated slot is never taken for a heartbeat with other content.
    @Test("fuzz: random and mutated slot contents are rejected, never crash")
    func fuzz() throws {
        var random = SplitMix64(state: 0x5EED_D15C)
        let good = try sealedSlot()
        let recordLength = DiskSlotCodec.headerLength + Int(WireBytes.readUInt64(good[...], at: 24, width: 4))
        let datagrams = DatagramCodec(key: key)
        func accepted(_ bytes: [UInt8]) -> DatagramCodec.Opened? {
            guard case .success(let slot?) = slots.open(bytes, expectedSlot: 1),
                case .success(let opened) = datagrams.authenticate(slot.datagram)
            else { return nil }
            return opened
        }
        let genuine = try #require(accepted(good))
        for round in 0..<3000 {
            var bytes = good
            switch round % 4 {
            case 0:
                // Flip 1-8 bytes inside the record.
                for _ in 0..<Int.random(in: 1...8, using: &random) {
                    let index = Int.random(in: 0..<recordLength, using: &random)
                    bytes[index] ^= UInt8.random(in: 1...255, using: &random)
                }
                #expect(accepted(bytes) == nil, "round \(round): a mutated slot was accepted")
            case 1:
                // Cut anywhere.
                bytes = Array(bytes.prefix(Int.random(in: 0..<recordLength, using: &random)))
                #expect(accepted(bytes) == nil, "round \(round): a truncated slot was accepted")
            case 2:
                // Garbage, sometimes with our magic and version in front.
                let count = Int.random(in: 0...4096, using: &random)
                bytes = (0..<count).map { _ in UInt8.random(in: 0...255, using: &random) }
                if round % 8 == 2 && bytes.count > 5 { bytes.replaceSubrange(0..<5, with: DiskSlotCodec.magic + [1]) }
                #expect(accepted(bytes) == nil, "round \(round): garbage was accepted")
            default:
                // The padding after the record is not part of it.
                let index = Int.random(in: recordLength..<bytes.count, using: &random)
                bytes[index] = UInt8.random(in: 0...255, using: &random)
                #expect(accepted(bytes) == genuine, "round \(round): padding changed the slot")
            }
        }
    }

    @Test("the device header round-trips; a damaged or missing one is refused")
    func header() {
        let header = DiskHeartbeatHeader(slotCount: 128)
        var bytes = header.encoded() + [UInt8](repeating: 0, count: 100)
        #expect(DiskHeartbeatHeader.decode(bytes) == .success(header))
        bytes[17] ^= 1
        #expect(DiskHeartbeatHeader.decode(bytes) == .failure(.corrupt))
        #expect(DiskHeartbeatHeader.decode([UInt8](repeating: 0, count: 4096)) == .failure(.missing))
        #expect(DiskHeartbeatLayout.slotCount(deviceSize: 10 << 20) == 128)
        #expect(DiskHeartbeatLayout.slotCount(deviceSize: 4 * DiskHeartbeatLayout.slotSize) == 3)
    }

    @Test("file system, swap and LVM signatures are recognised; zeros and our header are not")
    func signatures() {
        func with(_ text: [UInt8], at offset: Int) -> [UInt8] {
            var bytes = [UInt8](repeating: 0, count: 72 * 1024)
            bytes.replaceSubrange(offset..<(offset + text.count), with: text)
            return bytes
        }
        #expect(DiskHeartbeatDevice.foreignSignature(in: with([0x53, 0xEF], at: 1080))?.contains("ext") == true)
        #expect(DiskHeartbeatDevice.foreignSignature(in: with(Array("XFSB".utf8), at: 0))?.contains("XFS") == true)
        #expect(DiskHeartbeatDevice.foreignSignature(in: with(Array("_BHRfS_M".utf8), at: 65_600))?.contains("Btrfs") == true)
        #expect(DiskHeartbeatDevice.foreignSignature(in: with(Array("SWAPSPACE2".utf8), at: 4086), pageSize: 4096) == "swap space")
        var lvm = with(Array("LABELONE".utf8), at: 512)
        lvm.replaceSubrange(536..<544, with: Array("LVM2 001".utf8))
        #expect(DiskHeartbeatDevice.foreignSignature(in: lvm) == "an LVM physical volume")
        #expect(DiskHeartbeatDevice.foreignSignature(in: [UInt8](repeating: 0, count: 72 * 1024)) == nil)
        #expect(DiskHeartbeatDevice.foreignSignature(in: with(DiskHeartbeatHeader(slotCount: 3).encoded(), at: 0)) == nil)
    }

    @Test("the daemon's start: a diskhb device that is not a block device is refused, naming the heartbeat and the key")
    func daemonStartRefusesANonBlockDevice() async throws {
        let config = try BlockingPathTestSupport.config("  - {name: disk1, type: diskhb, device: /etc/hostname}")
        // The disk path first, so that nothing binds a LAN socket before the refusal.
        var reordered = config
        reordered.heartbeats = [config.heartbeats[1], config.heartbeats[0]]
        let error = await #expect(throws: DaemonStartError.self) {
            _ = try await HeartbeatTransports.open(HeartbeatTransportContext(config: reordered, me: "node1", key: key, bootID: 1))
        }
        #expect(
            error?.description.contains("heartbeat disk1: device: /etc/hostname is not a block device") == true,
            "\(String(describing: error))")
    }

    /// What a reader does with a peer's slot over successive reads.
    @Test("a reader: the first look is not delivered, a changed slot is, an unchanged one is not; a wrong writer is counted")
    func readerDeliversOnlyChanges() throws {
        let state = BlockingPathState(path: "disk1", type: "diskhb", events: { _ in })
        let worker = DiskHeartbeatWorker(
            state: state, device: "/dev/null", me: "node1", mySlot: 0, peers: [(slot: 1, name: "node2")], codec: slots,
            datagrams: DatagramCodec(key: key), bootID: 1, firstSequence: 1, interval: .seconds(1))
        let peer = (slot: 1, name: "node2")
        worker.examine(try sealedSlot(sequence: 7), of: peer)
        #expect(state.counters.withLock { $0.accepted } == 0, "a slot seen for the first time may be a dead server's")
        worker.examine(try sealedSlot(sequence: 7), of: peer)
        #expect(state.counters.withLock { $0.accepted } == 0, "an unchanged slot is no new heartbeat")
        worker.examine(try sealedSlot(sequence: 8), of: peer)
        #expect(state.counters.withLock { $0.accepted } == 1)
        worker.examine(try sealedSlot(sequence: 8), of: peer)
        worker.examine(try sealedSlot(sequence: 8), of: peer)
        #expect(state.counters.withLock { $0.accepted } == 1, "re-read with the same sequence: not delivered again")
        // node3 wrote into node2's slot (with node2's index): authenticated, but not node2.
        worker.examine(try sealedSlot(sender: "node3", sequence: 9), of: peer)
        #expect(state.counters.withLock { $0.dropped(.wrongSender) } == 1)
        // An older sequence written back (a replay of a copy of the slot).
        worker.examine(try sealedSlot(sequence: 8), of: peer)
        worker.examine(try sealedSlot(sequence: 9), of: peer)
        worker.examine(try sealedSlot(sequence: 8), of: peer)
        #expect(state.counters.withLock { $0.accepted } == 2)
        #expect(state.counters.withLock { $0.dropped(.replayed) } == 1)
        state.stop()
    }
}

extension Result {
    fileprivate var failureReason: Failure? {
        if case .failure(let reason) = self { return reason }
        return nil
    }
}
