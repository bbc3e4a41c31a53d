import Testing
import UnderstudyEngine
import UnderstudyModel

@testable import UnderstudyNode

@Suite("Log rate limiter")
struct LogRateLimiterTests {
    @Test("a flood of one event is cut to its budget per window and summed up once the window ends")
    func floodIsBounded() {
        var limiter = LogRateLimiter(window: .seconds(60), objects: 3)
        var written: [LogEntry] = []
        // 580 lines a second for 20 s, each with another epoch (the flood of issue 13).
        for index in 0..<11_600 {
            let now = Duration.milliseconds(index * 1000 / 580)
            written += limiter.admit(LogEntry(.info, "nm", 10, "s1 is the master server (epoch \(index)@s1)."), now: now)
        }
        #expect(written.count == limiter.perEvent)
        written += limiter.rollWindow(now: .seconds(61))
        let summary = written.last
        #expect(written.count == limiter.perEvent + 1)
        #expect(summary?.message.hasPrefix("\(11_600 - limiter.perEvent) more messages like this were left out in the last 60 s") == true)
        #expect(summary?.message.contains("epoch 11599@s1") == true)
        #expect(summary?.module == "nm" && summary?.eventID == 10)
    }

    @Test("an identical line repeats at most its own budget; other lines of the same event still get through")
    func identicalLines() {
        var limiter = LogRateLimiter(window: .seconds(60), objects: 3, perMessage: 10)
        var written: [LogEntry] = []
        for index in 0..<50 {
            written += limiter.admit(LogEntry(.warning, "rm", 8, "Monitor m1: check failed; retry 1/1."), now: .seconds(index))
        }
        written += limiter.admit(LogEntry(.warning, "rm", 8, "Monitor m2: check failed; retry 1/1."), now: .seconds(50))
        #expect(written.filter { $0.message.contains("m1") }.count == 10)
        #expect(written.last?.message == "Monitor m2: check failed; retry 1/1.")
    }

    @Test("an event once per object of a large cluster (a failover of every group) is not cut")
    func onePerObject() {
        var limiter = LogRateLimiter(window: .seconds(60), objects: 900)
        var written: [LogEntry] = []
        for index in 0..<300 {
            written += limiter.admit(LogEntry(.warning, "rc", 60, "Failing over group group-number-\(index) from s2."), now: .zero)
        }
        #expect(written.count == 300)
        #expect(limiter.rollWindow(now: .seconds(61)).isEmpty)
    }
}
