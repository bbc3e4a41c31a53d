import Foundation
import Testing

@testable import UnderstudyModel

@Suite("UTC timestamps")
struct UTCTimestampTests {
    @Test("the same text as ISO8601DateFormatter (internet date time, fractional seconds) over leap years, centuries and random instants")
    func matchesFoundation() {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        let whole = ISO8601DateFormatter()
        var instants: [Double] = [
            0, 0.999, 951_782_400, 951_868_799.5, 4_107_542_400, 1_798_761_600.123, 1_609_459_199.9995, 253_402_300_799,
        ]
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        for _ in 0..<2000 {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            instants.append(Double(state >> 33) / 1000 + Double(state & 0xFF) / 256_000)  // to about 2242, sub-millisecond
        }
        for seconds in instants {
            let date = Date(timeIntervalSince1970: seconds)
            #expect(UTCTimestamp.milliseconds(date) == formatter.string(from: date), "\(seconds)")
            #expect(UTCTimestamp.seconds(date) == whole.string(from: date), "\(seconds)")
        }
    }

    @Test("known values, before 1970 too, and the time of day with microseconds")
    func knownValues() {
        #expect(UTCTimestamp.milliseconds(Date(timeIntervalSince1970: 0)) == "1970-01-01T00:00:00.000Z")
        #expect(UTCTimestamp.milliseconds(Date(timeIntervalSince1970: 951_825_600.25)) == "2000-02-29T12:00:00.250Z")
        #expect(UTCTimestamp.milliseconds(Date(timeIntervalSince1970: -1.5)) == "1969-12-31T23:59:58.500Z")
        #expect(UTCTimestamp.milliseconds(Date(timeIntervalSince1970: 1_798_761_600.9996)) == "2027-01-01T00:00:01.000Z")
        #expect(UTCTimestamp.milliseconds(Date(timeIntervalSince1970: 1_798_761_600.1224)) == "2027-01-01T00:00:00.122Z")
        #expect(UTCTimestamp.seconds(Date(timeIntervalSince1970: 1_796_601_600)) == "2026-12-07T00:00:00Z")
        #expect(UTCTimestamp.timeOfDayMicroseconds(Date(timeIntervalSince1970: 1_796_601_600 + 3723.000456)) == "01:02:03.000456")
        #expect(UTCTimestamp.milliseconds(Date(timeIntervalSince1970: .nan)) == "1970-01-01T00:00:00.000Z")
    }
}
