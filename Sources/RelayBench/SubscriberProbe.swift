import NIOConcurrencyHelpers
import RelayClient

/// What one subscriber received, checked.
public struct DeliveryOutcome: Sendable {
    public var delivered = 0
    public var checker: DeliveryChecker
    public var e2eLatency = LatencyRecorder()
    /// Monotonic time of the first and the last delivery.
    public var firstDelivery: UInt64 = 0
    public var lastDelivery: UInt64 = 0
    /// The broker's log sequence went backwards (a second order check, on the broker's numbering).
    public var sequenceRegressions = 0
    public var endError: String?
    public var timedOut = false
}

/// Receives on one subscription and checks every message (see
/// ``DeliveryChecker``); finishes once `expected` distinct messages arrived.
/// `onMessage` runs on the connection's event loop.
final class SubscriberProbe: @unchecked Sendable {
    // @unchecked: mutable state is guarded by `lock`.
    private let lock = NIOLock()
    private var outcome: DeliveryOutcome
    private var expected: Int
    private var lastSequence: UInt64 = 0
    private var finished = false
    private let done = OneShot<DeliveryOutcome>()

    init(publishers: Int, perPublisher: Int, expected: Int) {
        outcome = DeliveryOutcome(checker: DeliveryChecker(publishers: publishers, perPublisher: perPublisher))
        self.expected = expected
    }

    func receive(_ message: ReceivedMessage) {
        let now = BenchClock.now()
        let header = BenchPayload.parse(message.payload)
        // A Bool out of the lock, the outcome only once complete: an optional
        // DeliveryOutcome (its histogram inline) was copied out on every
        // delivery (wave 22). Deliveries run on one event loop, one at a time.
        let complete: Bool = lock.withLock {
            outcome.delivered += 1
            if outcome.firstDelivery == 0 { outcome.firstDelivery = now }
            outcome.lastDelivery = now
            let before = (outcome.checker.duplicated, outcome.checker.outOfOrder, outcome.checker.corrupt)
            if let header {
                outcome.checker.record(publisher: header.publisher, counter: header.counter)
                outcome.e2eLatency.record(nanoseconds: now &- header.sentAt)
            } else {
                outcome.checker.record(publisher: .max, counter: .max)
            }
            // Counted only when the payload check saw nothing, so one fault is not counted twice.
            let after = (outcome.checker.duplicated, outcome.checker.outOfOrder, outcome.checker.corrupt)
            if message.sequence <= lastSequence, before == after { outcome.sequenceRegressions += 1 }
            lastSequence = max(lastSequence, message.sequence)
            guard !finished, outcome.checker.distinct >= expected else { return false }
            finished = true
            return true
        }
        if complete { done.complete(lock.withLock { outcome }) }
    }

    /// The subscription ended (closed, or an error).
    func ended(_ error: RelayClientError?) {
        let snapshot: DeliveryOutcome = lock.withLock {
            if let error, outcome.endError == nil { outcome.endError = error.message }
            finished = true
            return outcome
        }
        done.complete(snapshot)
    }

    /// Lowers the target when publishers could not publish everything
    /// (failed publishes must not count as lost deliveries).
    func setExpected(_ value: Int) {
        let complete: DeliveryOutcome? = lock.withLock {
            expected = value
            return finishIfComplete()
        }
        if let complete { done.complete(complete) }
    }

    func stop() {
        let snapshot: DeliveryOutcome = lock.withLock {
            finished = true
            outcome.timedOut = outcome.checker.distinct < expected
            return outcome
        }
        done.complete(snapshot)
    }

    func wait() async -> DeliveryOutcome { await done.wait() }

    /// The counts now, including anything that arrived after completion
    /// (a late duplicate must still fail the run).
    func snapshot() -> DeliveryOutcome { lock.withLock { outcome } }

    /// Call with the lock held.
    private func finishIfComplete() -> DeliveryOutcome? {
        guard !finished, outcome.checker.distinct >= expected else { return nil }
        finished = true
        return outcome
    }
}
