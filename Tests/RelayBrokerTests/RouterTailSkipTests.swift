import RelayCore
import Testing
@testable import RelayBroker

/// ``Router/skipWhileUnsubscribed(_:)``: the shared log's tail skips a
/// message only while no subscription exists, atomically with subscribe, so
/// a subscriber that joins later reads every skipped message from the log.
@Suite("Router tail skip")
struct RouterTailSkipTests {
    @Test("without subscriptions a sequence is skipped and moves the watermark; a later subscriber starts above it")
    func skipsOnlyWhileUnsubscribed() throws {
        let router = Router(watermark: 3)
        #expect(router.skipWhileUnsubscribed(4))
        #expect(router.skipWhileUnsubscribed(5))
        #expect(router.watermark == 5)
        let sink = CollectingSink()
        #expect(try router.subscribe(try TopicFilter(">"), sink: sink, id: 1) == 5)
        #expect(!router.skipWhileUnsubscribed(6), "a subscription exists: the message must be routed")
        #expect(router.watermark == 5)
        router.unsubscribe(try TopicFilter(">"), sink: sink, id: 1)
        #expect(router.skipWhileUnsubscribed(7))
        #expect(router.watermark == 7)
    }

    @Test("a batch routed after a skip moves the watermark no lower")
    func olderBatchKeepsWatermark() throws {
        let router = Router(watermark: 0)
        #expect(router.skipWhileUnsubscribed(9))
        router.publish([message(8)])
        #expect(router.watermark == 9)
    }
}
