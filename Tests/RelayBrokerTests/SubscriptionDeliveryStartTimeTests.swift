import NIOCore
import RelayCore
import RelayWire
import Testing
@testable import RelayBroker

/// A `time` start position still in the future at SUB (Protocol/relay-v1.md
/// §4.6), below relayd: SubscriptionDelivery passes over messages committed
/// before it, on the live path and the replay path, without using credit.
/// (FutureTimeStartTests checks the same end to end.)
@Suite("Subscription delivery: time start in the future")
struct SubscriptionDeliveryStartTimeTests {
    let filter: TopicFilter
    init() throws { filter = try TopicFilter("t.>") }

    /// `message(seq)` from SubscriptionDeliveryTests, with its own commit time.
    func committed(_ seq: UInt64, at timestamp: UInt64) -> RoutedMessage {
        RoutedMessage(sequence: seq, timestamp: timestamp, topic: "t.a", prepared: message(seq).prepared)
    }

    @Test("live: messages before the start time are passed over without credit; later ones flow")
    func liveSkipsEarlierCommits() {
        let sub = SubscriptionDelivery(id: 1, filter: filter, start: 11, watermark: 10, credit: 2, bufferLimit: 100,
                                       notBefore: 1_000)
        sub.offerLive(committed(11, at: 998))
        sub.offerLive(committed(12, at: 999))
        sub.offerLive(committed(13, at: 1_000))
        sub.offerLive(committed(14, at: 1_001))
        #expect(sub.takeLive().map(\.sequence) == [13, 14])
        #expect(sub.credit == 0 && sub.nextSequence == 15 && sub.notBefore == nil)
    }

    @Test("once a message at or after the start time is seen, a later one with an earlier clock still flows")
    func checkEndsAtTheFirstMatch() {
        let sub = SubscriptionDelivery(id: 1, filter: filter, start: 1, watermark: 0, credit: 10, bufferLimit: 100,
                                       notBefore: 1_000)
        sub.offerLive(committed(1, at: 1_000))
        sub.offerLive(committed(2, at: 990))  // the commit clock stepped back: still after the start
        #expect(sub.takeLive().map(\.sequence) == [1, 2])
    }

    @Test("replay: passed-over messages use no credit and the read resumes after them")
    func replaySkipsEarlierCommits() {
        let sub = SubscriptionDelivery(id: 1, filter: filter, start: 1, watermark: 10, credit: 1, bufferLimit: 100,
                                       notBefore: 1_000)
        let batch = [committed(2, at: 500), committed(4, at: 700), committed(6, at: 1_200), committed(8, at: 1_300)]
        #expect(sub.replayed(batch, scannedThrough: 10).map(\.sequence) == [6])
        #expect(sub.nextSequence == 7 && sub.needsReplay, "out of credit after 6: 8 is read again later")
        sub.grant(5)
        #expect(sub.replayed([committed(8, at: 1_300)], scannedThrough: 10).map(\.sequence) == [8])
        #expect(!sub.needsReplay)
    }

    @Test("without a time start nothing is passed over")
    func noStartTime() {
        let sub = SubscriptionDelivery(id: 1, filter: filter, start: 1, watermark: 0, credit: 10, bufferLimit: 100)
        sub.offerLive(committed(1, at: 0))
        #expect(sub.takeLive().map(\.sequence) == [1])
    }
}
