import NIOConcurrencyHelpers

/// A value delivered once, awaited once: the first `complete` wins, later
/// ones are ignored (a deadline and a finish may race).
final class OneShot<Value: Sendable>: @unchecked Sendable {
    // @unchecked: every field is guarded by `lock`.
    private let lock = NIOLock()
    private var value: Value?
    private var waiter: CheckedContinuation<Value, Never>?

    func complete(_ result: Value) {
        let resume: CheckedContinuation<Value, Never>? = lock.withLock {
            guard value == nil else { return nil }
            value = result
            defer { waiter = nil }
            return waiter
        }
        resume?.resume(returning: result)
    }

    func wait() async -> Value {
        await withCheckedContinuation { continuation in
            let ready: Value? = lock.withLock {
                if let value { return value }
                waiter = continuation
                return nil
            }
            if let ready { continuation.resume(returning: ready) }
        }
    }
}

/// Calls `action` after `seconds` unless the returned task is cancelled first.
/// The bench's waits end either when the work is done or when this fires.
func deadline(seconds: Double, _ action: @escaping @Sendable () -> Void) -> Task<Void, Never> {
    Task {
        try? await Task.sleep(nanoseconds: UInt64(max(seconds, 0) * 1_000_000_000))
        if !Task.isCancelled { action() }
    }
}
