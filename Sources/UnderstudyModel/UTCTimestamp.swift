import Foundation

/// RFC 3339 timestamps in UTC, computed: the alert log writes one per entry and every syslog,
/// webhook and command alert carries one. `ISO8601DateFormatter` and `DateFormatter` build an
/// ICU formatter on every use (about 0.2 ms, and ICU's tables paged into the daemon for it).
public enum UTCTimestamp {
    /// `2026-12-06T09:40:00.123Z`: rounded to the nearest millisecond, as Foundation's
    /// formatters round.
    public static func milliseconds(_ date: Date) -> String {
        let (seconds, fraction) = nearestMillisecond(date)
        return civil(seconds) + "." + padded(fraction, 3) + "Z"
    }

    /// `2026-12-06T09:40:00Z`: the seconds of the nearest millisecond.
    public static func seconds(_ date: Date) -> String {
        civil(nearestMillisecond(date).seconds) + "Z"
    }

    static func nearestMillisecond(_ date: Date) -> (seconds: Int64, milliseconds: Int) {
        let interval = date.timeIntervalSince1970
        guard interval.isFinite, abs(interval) < 1e15 else { return (0, 0) }
        let total = Int64((interval * 1000).rounded())
        let seconds = total >= 0 ? total / 1000 : (total - 999) / 1000
        return (seconds, Int(total - seconds * 1000))
    }

    /// `09:40:00.123456`: the time of day with microseconds, cut (Pacemaker's alert
    /// timestamp, beside its `timestamp_usec`).
    public static func timeOfDayMicroseconds(_ date: Date) -> String {
        let (seconds, fraction) = split(date, unitsPerSecond: 1_000_000)
        let ofDay = Int(((seconds % 86_400) + 86_400) % 86_400)
        return padded(ofDay / 3600, 2) + ":" + padded(ofDay / 60 % 60, 2) + ":" + padded(ofDay % 60, 2) + "."
            + padded(fraction, 6)
    }

    /// Whole seconds since 1970 (floor) and the fraction in `unitsPerSecond`, in 0..<unitsPerSecond.
    static func split(_ date: Date, unitsPerSecond: Int64) -> (seconds: Int64, fraction: Int) {
        let interval = date.timeIntervalSince1970
        guard interval.isFinite, abs(interval) < 1e15 else { return (0, 0) }
        let whole = interval.rounded(.down)
        var fraction = Int64(((interval - whole) * Double(unitsPerSecond)).rounded(.down))
        fraction = min(max(fraction, 0), unitsPerSecond - 1)
        return (Int64(whole), Int(fraction))
    }

    /// `YYYY-MM-DDThh:mm:ss` of seconds since 1970 in UTC (days to date: Howard Hinnant's
    /// civil-from-days, exact for the proleptic Gregorian calendar).
    static func civil(_ seconds: Int64) -> String {
        let days = seconds >= 0 ? seconds / 86_400 : (seconds - 86_399) / 86_400
        let ofDay = Int(seconds - days * 86_400)
        let shifted = days + 719_468
        let era = (shifted >= 0 ? shifted : shifted - 146_096) / 146_097
        let dayOfEra = shifted - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthIndex = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * monthIndex + 2) / 5 + 1
        let month = monthIndex < 10 ? monthIndex + 3 : monthIndex - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        return padded(Int(year), 4) + "-" + padded(Int(month), 2) + "-" + padded(Int(day), 2) + "T" + padded(ofDay / 3600, 2) + ":"
            + padded(ofDay / 60 % 60, 2) + ":" + padded(ofDay % 60, 2)
    }

    static func padded(_ value: Int, _ width: Int) -> String {
        let digits = String(value)
        return digits.count >= width ? digits : String(repeating: "0", count: width - digits.count) + digits
    }
}
