/// Checks `condition` every `interval` until it holds or `timeout` has passed; true when it
/// held. Tests wait with this instead of sleeping a fixed time: as fast as the machine allows,
/// bounded when it is slow.
public func eventually(
    within timeout: Duration = .seconds(5), every interval: Duration = .milliseconds(10), _ condition: () async throws -> Bool
) async rethrows -> Bool {
    let deadline = ContinuousClock.now + timeout
    while true {
        if try await condition() { return true }
        if ContinuousClock.now >= deadline { return false }
        try? await Task.sleep(for: interval)
    }
}
