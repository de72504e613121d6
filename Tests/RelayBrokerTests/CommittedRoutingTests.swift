import Dispatch
import Foundation
import NIOCore
import NIOConcurrencyHelpers
import RelayCore
import RelayStore
import Testing
@testable import RelayBroker

/// ``Router/routeCommitted(_:_:metrics:)`` (wave 8, docs/performance.md
/// "Low-load tail (wave 8)"): a small committed batch is routed on the
/// caller's thread (the store's writer, in commit order) when nothing is
/// waiting on the router's queue, saving the queue's wake-up per commit; a
/// batch that would overtake queued work, or a large one, still goes through
/// the queue, so every sink sees commit order.
@Suite("Committed routing")
struct CommittedRoutingTests {
    static let stamp = PublisherStamp(principal: "CN=p", fingerprint: .zero)

    static func batch(_ sequences: ClosedRange<UInt64>, topic: String = "t.a") throws
        -> ([NewMessage], [Result<AppendReceipt, StoreError>]) {
        let topic = try Topic(topic)
        let messages = sequences.map { _ in NewMessage(topic: topic, payload: ByteBuffer(repeating: 7, count: 16), publisher: stamp) }
        let results = sequences.map { Result<AppendReceipt, StoreError>.success(AppendReceipt(sequence: $0, timestamp: $0, duplicate: false)) }
        return (messages, results)
    }

    /// Waits until the router's queue has run everything enqueued before,
    /// and has counted it done. The signal comes from inside the last work
    /// item, and the queue counts an item done only after it returns, so
    /// the count is then polled for (with a deadline) rather than assumed.
    static func drain(_ router: Router) {
        let drained = DispatchSemaphore(value: 0)
        router.enqueue { drained.signal() }
        drained.wait()
        let deadline = DispatchTime.now() + .seconds(5)
        while router.queuedWork > 0 && DispatchTime.now() < deadline { usleep(100) }
    }

    @Test("a small batch with an idle queue reaches the sink before routeCommitted returns")
    func smallBatchRoutesInline() throws {
        let router = Router(watermark: 0)
        let sink = ThreadRecordingSink()
        _ = router.subscribe(try TopicFilter("t.>"), sink: sink, id: 1)
        let (messages, results) = try Self.batch(1...3)
        router.routeCommitted(messages, results, metrics: BrokerMetrics())
        Self.drain(router)
        #expect(sink.sequences == [1, 2, 3])
        #expect(sink.threads == [.caller], "routed on the router's queue instead of the committing thread")
        #expect(router.watermark == 3)
    }

    @Test("a batch committed while earlier work waits on the queue does not overtake it")
    func queuedWorkKeepsCommitOrder() throws {
        let router = Router(watermark: 0)
        let sink = CollectingSink()
        _ = router.subscribe(try TopicFilter("t.>"), sink: sink, id: 1)
        // Hold the queue so the next batch has to wait behind queued work.
        let release = DispatchSemaphore(value: 0)
        let held = DispatchSemaphore(value: 0)
        router.enqueue {
            held.signal()
            release.wait()
        }
        held.wait()
        let (first, firstResults) = try Self.batch(1...2)
        router.routeCommitted(first, firstResults, metrics: BrokerMetrics())
        let (second, secondResults) = try Self.batch(3...4)
        router.routeCommitted(second, secondResults, metrics: BrokerMetrics())
        #expect(sink.pairs.isEmpty, "a batch went past work still waiting on the router's queue")
        release.signal()
        Self.drain(router)
        #expect(sink.pairs.map(\.1) == [1, 2, 3, 4])
        #expect(router.queuedWork == 0)
        // The queue is idle again: the next small batch goes inline (no drain).
        let (third, thirdResults) = try Self.batch(5...5)
        router.routeCommitted(third, thirdResults, metrics: BrokerMetrics())
        #expect(sink.pairs.map(\.1) == [1, 2, 3, 4, 5])
    }

    @Test("a large batch is routed on the queue, off the committing thread, in order with the batches after it")
    func largeBatchUsesTheQueue() throws {
        let router = Router(watermark: 0)
        let sink = ThreadRecordingSink()
        _ = router.subscribe(try TopicFilter("t.>"), sink: sink, id: 1)
        let large = UInt64(Router.inlineRoutingLimit + 1)
        // Hold the queue so "routed on the queue" is observable without a race.
        let release = DispatchSemaphore(value: 0)
        let held = DispatchSemaphore(value: 0)
        router.enqueue {
            held.signal()
            release.wait()
        }
        held.wait()
        let (big, bigResults) = try Self.batch(1...large)
        router.routeCommitted(big, bigResults, metrics: BrokerMetrics())
        let (small, smallResults) = try Self.batch((large + 1)...(large + 1))
        router.routeCommitted(small, smallResults, metrics: BrokerMetrics())
        #expect(sink.sequences.isEmpty)
        release.signal()
        Self.drain(router)
        #expect(sink.sequences == Array(1...(large + 1)))
        // Idle queue, but too large to route on the committing thread.
        let (again, againResults) = try Self.batch((large + 2)...(2 * large + 2))
        router.routeCommitted(again, againResults, metrics: BrokerMetrics())
        Self.drain(router)
        #expect(sink.sequences == Array(1...(2 * large + 2)))
        #expect(sink.threads == [.queue, .queue, .queue], "a batch over the inline limit was routed on the committing thread")
    }
}

/// Records each delivered sequence and whether each batch arrived on the
/// thread that created the sink (the test's, i.e. the committing thread) or
/// on another (the router's queue).
final class ThreadRecordingSink: DeliverySink, @unchecked Sendable {
    // @unchecked: `caller` is immutable after init; the rest is behind `state`.
    enum Where: Equatable { case caller, queue }
    private let caller = pthread_self()
    private let state = NIOLockedValueBox<(sequences: [UInt64], threads: [Where])>(([], []))
    func deliver(_ batch: [RoutedDelivery]) {
        let here: Where = pthread_equal(pthread_self(), caller) != 0 ? .caller : .queue
        state.withLockedValue {
            $0.sequences.append(contentsOf: batch.map(\.message.sequence))
            $0.threads.append(here)
        }
    }
    var sequences: [UInt64] { state.withLockedValue { $0.sequences } }
    var threads: [Where] { state.withLockedValue { $0.threads } }
}
