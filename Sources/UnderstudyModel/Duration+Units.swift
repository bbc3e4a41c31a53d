extension Duration {
    /// The duration in seconds, with fractions: for tools and APIs that take a number of
    /// seconds (`ping -W`, `curl --max-time`, rates).
    public var inSeconds: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }

    /// Whole milliseconds (truncated toward zero).
    public var inMilliseconds: Int64 {
        components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000
    }
}
