import Foundation

// Waiting for state that announces itself with no event a test could await:
// a line appended to a file, a Prometheus sample, a count another task keeps,
// the state of many sockets at once. Where there is an event (a frame, a
// child's output line through `ChildProcess.waitForLine`, a channel's
// closeFuture), await it instead. These two are the suite's only polling
// loops, so every poll has a deadline and a named reason at its call site.

/// Checks `condition` every `interval` seconds until it holds or `timeout`
/// seconds pass; whether it held (checked once more at the deadline).
public func eventually(timeout: Double = 10, every interval: Double = 0.01,
                       _ condition: () async throws -> Bool) async rethrows -> Bool {
    try await eventuallyValue(timeout: timeout, every: interval) { try await condition() ? true : nil } ?? false
}

/// Calls `probe` every `interval` seconds until it returns a value or
/// `timeout` seconds pass; the first value, or nil at the deadline.
public func eventuallyValue<T>(timeout: Double = 10, every interval: Double = 0.01,
                               _ probe: () async throws -> T?) async rethrows -> T? {
    let deadline = Date().addingTimeInterval(timeout)
    while true {
        if let value = try await probe() { return value }
        guard Date() < deadline else { return nil }
        try? await Task.sleep(nanoseconds: UInt64(interval * 1_000_000_000))
    }
}
