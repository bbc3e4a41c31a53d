// Durations in the config file always carry a unit: `100ms`, `3s`, `5m`, `1h` (`0` alone is
// allowed because zero needs no unit). A bare number is refused on purpose: CLUSTERPRO stores
// seconds in some places and milliseconds in others, so a unitless value is a trap.

extension Duration {
    /// The units the config file accepts, smallest first, with their length in milliseconds.
    static let configUnits: [(suffix: String, milliseconds: Int64)] = [
        ("ms", 1), ("s", 1_000), ("m", 60_000), ("h", 3_600_000),
    ]

    /// Parses a config duration (`100ms`, `3s`, `5m`, `1h`, `0s`, `0`).
    /// Nil for anything else, including negative values and numbers without a unit.
    public init?(configText text: String) {
        guard case .valid(let duration) = Duration.parseConfig(text), duration >= .zero else {
            return nil
        }
        self = duration
    }

    /// The duration the way the config file writes it, in the largest unit that divides it
    /// exactly: `3s`, `500ms`, `5m`, `30m`, `1h`. Values finer than a millisecond (measured
    /// times, never config values) fall back to `us` or `ns` for display.
    public var configText: String {
        if self < .zero { return "-" + (Duration.zero - self).configText }
        let (seconds, attoseconds) = components
        let attosecondsPerMillisecond: Int64 = 1_000_000_000_000_000
        guard attoseconds % attosecondsPerMillisecond == 0 else {
            let attosecondsPerMicrosecond: Int64 = 1_000_000_000_000
            if attoseconds % attosecondsPerMicrosecond == 0 {
                return "\(Int128(seconds) * 1_000_000 + Int128(attoseconds / attosecondsPerMicrosecond))us"
            }
            return "\(Int128(seconds) * 1_000_000_000 + Int128(attoseconds / 1_000_000_000))ns"
        }
        let milliseconds = Int128(seconds) * 1_000 + Int128(attoseconds / attosecondsPerMillisecond)
        if milliseconds == 0 { return "0s" }
        for unit in Duration.configUnits.reversed() where milliseconds % Int128(unit.milliseconds) == 0 {
            return "\(milliseconds / Int128(unit.milliseconds))\(unit.suffix)"
        }
        return "\(milliseconds)ms"
    }

    /// Why a text is or is not a duration; the loader turns the failures into messages.
    enum ConfigParseResult: Equatable {
        case valid(Duration)
        /// A number without a unit, like `60`.
        case missingUnit
        /// Too large to represent.
        case outOfRange
        case invalid
    }

    /// Like `init?(configText:)` but keeps a leading minus sign, so the validator can say
    /// "must be greater than zero" instead of "not a duration".
    static func parseConfig(_ rawText: String) -> ConfigParseResult {
        var text = Substring(rawText.trimmingWhitespace())
        var negative = false
        if text.first == "-" {
            negative = true
            text = text.dropFirst()
        } else if text.first == "+" {
            text = text.dropFirst()
        }
        let digits = text.prefix { $0.isASCII && $0.isNumber }
        let suffix = text.dropFirst(digits.count)
        guard !digits.isEmpty else { return .invalid }
        guard let amount = Int64(digits) else { return .outOfRange }
        let unitMilliseconds: Int64
        if suffix.isEmpty {
            // Only zero may omit the unit.
            guard amount == 0 else { return .missingUnit }
            unitMilliseconds = 1
        } else if let unit = configUnits.first(where: { $0.suffix == suffix }) {
            unitMilliseconds = unit.milliseconds
        } else {
            return .invalid
        }
        let (milliseconds, overflow) = amount.multipliedReportingOverflow(by: unitMilliseconds)
        guard !overflow else { return .outOfRange }
        return .valid(.milliseconds(negative ? -milliseconds : milliseconds))
    }
}

extension String {
    /// The string without leading and trailing spaces, tabs and newlines.
    func trimmingWhitespace() -> String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0.isNewline }
        guard let first = firstIndex(where: { !isSpace($0) }),
            let last = lastIndex(where: { !isSpace($0) })
        else { return "" }
        return String(self[first...last])
    }
}
