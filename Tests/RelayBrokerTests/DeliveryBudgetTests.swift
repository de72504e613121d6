import RelayCore
import Testing
@testable import RelayBroker

/// The live buffers of one connection share ``DeliveryBudget`` (wave-14
/// attack run: 1,000 subscriptions without credit each buffered up to their
/// own limit). End to end: `SubscriptionBufferBudgetTests`.
@Suite("Live buffers of one connection share a byte budget")
struct DeliveryBudgetTests {
    @Test("100 zero-credit subscriptions never hold more than the budget; each still replays what it missed")
    func sharedBudgetBoundsBuffers() throws {
        let filter = try TopicFilter("t.>")
        let size = message(1).approximateSize
        let budget = DeliveryBudget(limit: 50 * size)
        let subs = (UInt32(1)...100).map {
            SubscriptionDelivery(id: $0, filter: filter, start: 1, watermark: 0, credit: 0, bufferLimit: 8192, budget: budget)
        }
        for seq in UInt64(1)...200 {
            for sub in subs { sub.offerLive(message(seq)) }
            #expect(budget.used <= budget.limit)
            #expect(budget.used == subs.reduce(0) { $0 + $1.bufferedBytes })
        }
        // Nothing is lost: what a subscription does not hold (up to its
        // watermark) it reads from the store; everything after is buffered.
        var starved = 0
        for sub in subs {
            #expect(sub.replayThrough + UInt64(sub.bufferedCount) == 200)
            if sub.needsReplay { starved += 1 }
        }
        #expect(starved >= 50, "the budget of 50 messages cannot hold 100 subscriptions' 200 each")
        #expect(budget.used == subs.reduce(0) { $0 + $1.bufferedBytes })
    }

    @Test("bytes come back when messages are taken and when a subscription ends")
    func bytesAreReleased() throws {
        let filter = try TopicFilter("t.>")
        let budget = DeliveryBudget(limit: 1 << 20)
        var sub: SubscriptionDelivery? = SubscriptionDelivery(id: 1, filter: filter, start: 1, watermark: 0, credit: 2,
                                                             bufferLimit: 100, budget: budget)
        for seq in UInt64(1)...5 { sub?.offerLive(message(seq)) }
        #expect(budget.used == 5 * message(1).approximateSize)
        #expect(sub?.takeLive().count == 2)
        #expect(budget.used == 3 * message(1).approximateSize)
        sub = nil
        #expect(budget.used == 0)
    }

    @Test("connections share the broker's budget: none holds more than it together; bytes come back")
    func brokerBudgetBoundsEveryConnection() throws {
        let filter = try TopicFilter("t.>")
        let size = message(1).approximateSize
        let broker = LiveBufferBudget(limit: 30 * size)
        // Ten connections, each with room for 64 MiB of its own.
        let connections = (0..<10).map { _ in DeliveryBudget(limit: 64 << 20, shared: broker) }
        var subs: [SubscriptionDelivery]? = connections.enumerated().map { index, budget in
            SubscriptionDelivery(id: UInt32(index + 1), filter: filter, start: 1, watermark: 0, credit: 1,
                                 bufferLimit: 8192, budget: budget)
        }
        for seq in UInt64(1)...100 {
            for sub in subs ?? [] { sub.offerLive(message(seq)) }
            #expect(broker.bytes <= broker.limit)
            #expect(broker.bytes == connections.reduce(0) { $0 + $1.used })
        }
        // Lossless: what a subscription does not hold it reads from the store.
        for sub in subs ?? [] { #expect(sub.replayThrough + UInt64(sub.bufferedCount) == 100) }
        #expect(broker.bytes > 0)
        for sub in subs ?? [] { _ = sub.takeLive() }
        #expect(broker.bytes == connections.reduce(0) { $0 + $1.used })
        subs = nil
        #expect(broker.bytes == 0 && connections.allSatisfy { $0.used == 0 })
    }
}
