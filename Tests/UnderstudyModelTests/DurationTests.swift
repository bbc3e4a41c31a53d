import Testing

@testable import UnderstudyModel

@Suite("Durations")
struct DurationTests {
    @Test(arguments: [
        ("100ms", Duration.milliseconds(100)), ("3s", .seconds(3)), ("5m", .seconds(300)), ("1h", .seconds(3600)),
        ("0s", .zero), ("0", .zero), ("0ms", .zero), ("90s", .seconds(90)), (" 30m ", .seconds(1800)),
    ])
    func parses(text: String, expected: Duration) {
        #expect(Duration(configText: text) == expected)
    }

    @Test(arguments: [
        "", "abc", "3", "60", "3 s", "3sec", "1.5s", "-3s", "s", "5M", "1d", "3s5", "99999999999999999999s", "9223372036854775807h",
    ])
    func refuses(text: String) {
        #expect(Duration(configText: text) == nil)
    }

    @Test(arguments: [
        (Duration.seconds(3), "3s"), (.milliseconds(500), "500ms"), (.seconds(300), "5m"), (.seconds(1800), "30m"),
        (.seconds(3600), "1h"), (.seconds(90), "90s"), (.zero, "0s"), (.milliseconds(1500), "1500ms"),
        (.seconds(7200), "2h"), (.seconds(5400), "90m"), (.microseconds(250), "250us"), (.nanoseconds(7), "7ns"),
        (.seconds(-3), "-3s"),
    ])
    func formats(duration: Duration, expected: String) {
        #expect(duration.configText == expected)
    }

    @Test func roundTrips() {
        for milliseconds in [0, 1, 999, 1000, 59_999, 60_000, 3_600_000, 86_400_000, 123_456_789] {
            let duration = Duration.milliseconds(milliseconds)
            #expect(Duration(configText: duration.configText) == duration)
        }
    }

    @Test func reasonsForTheLoader() {
        #expect(Duration.parseConfig("60") == .missingUnit)
        #expect(Duration.parseConfig("-5s") == .valid(.seconds(-5)))
        #expect(Duration.parseConfig("abc") == .invalid)
        #expect(Duration.parseConfig("9223372036854775807h") == .outOfRange)
    }
}
