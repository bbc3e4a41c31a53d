import Foundation
import Testing

@testable import UnderstudyNode

/// The serial heartbeat's framing: whole frames are found in any byte stream, after garbage,
/// cut frames and bytes split anywhere, and nothing else is ever taken for one.
@Suite("Serial heartbeat framing")
struct SerialFrameTests {
    let key = TransportTestSupport.key

    func datagram(_ sequence: UInt64, size: Int = 40) throws -> [UInt8] {
        try DatagramCodec(key: key).seal(
            payload: [UInt8](repeating: UInt8(truncatingIfNeeded: sequence), count: size), sender: "node2", bootID: 5, sequence: sequence)
    }

    /// Runs the decoder over `stream` fed in chunks of random size; returns the sequences of
    /// the authenticated frames in order.
    func decode(_ stream: [UInt8], decoder: inout SerialFrameDecoder, random: inout some RandomNumberGenerator) -> [UInt64] {
        let codec = DatagramCodec(key: key)
        var found: [UInt64] = []
        var offset = 0
        while offset < stream.count {
            let count = min(stream.count - offset, Int.random(in: 1...700, using: &random))
            decoder.append(stream[offset..<(offset + count)])
            offset += count
            while let opened = decoder.next({ body -> DatagramCodec.Opened? in
                if case .success(let opened) = codec.authenticate(body) { return opened }
                return nil
            }) {
                found.append(opened.sequence)
            }
        }
        return found
    }

    @Test("frames back to back, fed a byte at a time")
    func byteByByte() throws {
        var stream: [UInt8] = []
        for sequence: UInt64 in 1...5 { stream += SerialFrame.frame(try datagram(sequence)) }
        var decoder = SerialFrameDecoder()
        let codec = DatagramCodec(key: key)
        var found: [UInt64] = []
        for byte in stream {
            decoder.append([byte])
            while let opened = decoder.next({ try? codec.authenticate($0).get() }) { found.append(opened.sequence) }
        }
        #expect(found == [1, 2, 3, 4, 5])
        #expect(decoder.skippedRuns == 0 && decoder.bufferedCount == 0)
    }

    @Test("a cut frame followed by a whole one: the whole one is found (resync inside the refused candidate)")
    func cutFrameThenWhole() throws {
        let first = SerialFrame.frame(try datagram(1, size: 300))
        let second = SerialFrame.frame(try datagram(2))
        let third = SerialFrame.frame(try datagram(3))
        var decoder = SerialFrameDecoder()
        var random = SplitMix64(state: 0x5E71_A1)
        let found = decode(Array(first.prefix(120)) + second + third, decoder: &decoder, random: &random)
        #expect(found == [2, 3])
        #expect(decoder.skippedRuns >= 1)
    }

    /// Random garbage (with false sync markers and false headers among it), cut frames and
    /// whole frames in random order and random chunking: exactly the whole frames come out,
    /// in order, and the buffer stays bounded.
    @Test("fuzz: garbage, false markers, cut frames; every whole frame is found, nothing else")
    func fuzz() throws {
        var random = SplitMix64(state: 0x5E71_A1)
        for round in 0..<200 {
            var stream: [UInt8] = []
            var expected: [UInt64] = []
            var sequence: UInt64 = 0
            for _ in 0..<Int.random(in: 1...12, using: &random) {
                sequence += 1
                let frame = SerialFrame.frame(try datagram(sequence, size: Int.random(in: 0...2000, using: &random)))
                switch Int.random(in: 0..<5, using: &random) {
                case 0:
                    stream += (0..<Int.random(in: 0...300, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }
                case 1:
                    // A false marker with a plausible length and a right CRC, then garbage.
                    var fake = SerialFrame.frame([UInt8](repeating: 0, count: Int.random(in: 1...500, using: &random)))
                    for index in SerialFrame.headerLength..<fake.count { fake[index] = UInt8.random(in: 0...255, using: &random) }
                    stream += fake
                case 2:
                    // A frame cut short (the sender restarted in the middle).
                    stream += frame.prefix(Int.random(in: 1..<frame.count, using: &random))
                case 3:
                    // A frame with one byte damaged on the line.
                    var damaged = frame
                    damaged[Int.random(in: 0..<damaged.count, using: &random)] ^= UInt8.random(in: 1...255, using: &random)
                    stream += damaged
                default:
                    break
                }
                stream += frame
                expected.append(sequence)
            }
            var decoder = SerialFrameDecoder()
            let found = decode(stream, decoder: &decoder, random: &random)
            // A damaged or cut frame may hide nothing but itself; the frames after it come out.
            #expect(found == expected, "round \(round)")
            #expect(decoder.bufferedCount <= SerialFrame.headerLength + DatagramCodec.maximumDatagramSize + 700)
        }
    }

    @Test("pure random bytes: no frame, bounded memory")
    func randomBytes() {
        var random = SplitMix64(state: 0x5E71_A1)
        var decoder = SerialFrameDecoder()
        let codec = DatagramCodec(key: key)
        for _ in 0..<200 {
            decoder.append((0..<2048).map { _ in UInt8.random(in: 0...255, using: &random) })
            #expect(decoder.next({ try? codec.authenticate($0).get() }) == nil)
        }
        #expect(decoder.bufferedCount <= SerialFrame.headerLength + DatagramCodec.maximumDatagramSize + 2048)
        #expect(decoder.skippedRuns >= 1)
    }
}
