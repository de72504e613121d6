import NIOCore
import NIOConcurrencyHelpers
import RelayCore
import RelayWire
import Testing
@testable import RelayBroker

func message(_ seq: UInt64, topic: String = "t.a", bytes: Int = 8) -> RoutedMessage {
    // PreparedMessage only throws for fields over their length limits; these are tiny.
    let prepared = try? PreparedMessage(sequence: seq, timestamp: seq, topic: topic, publisherPrincipal: "CN=p",
                                        publisherFingerprint: .zero, headers: .empty, payload: ByteBuffer(repeating: 1, count: bytes))
    return RoutedMessage(sequence: seq, timestamp: seq, topic: topic, prepared: prepared!)
}

@Suite("Subscription delivery state")
struct SubscriptionDeliveryTests {
    let filter: TopicFilter
    init() throws { filter = try TopicFilter("t.>") }

    @Test("a new 'latest' subscription delivers live messages in order within credit")
    func liveWithinCredit() {
        let sub = SubscriptionDelivery(id: 1, filter: filter, start: 11, watermark: 10, credit: 2, bufferLimit: 100)
        #expect(!sub.needsReplay)
        for seq in UInt64(11)...14 { sub.offerLive(message(seq)) }
        #expect(sub.takeLive().map(\.sequence) == [11, 12])
        #expect(sub.takeLive().isEmpty)  // out of credit
        sub.grant(10)
        #expect(sub.takeLive().map(\.sequence) == [13, 14])
    }

    @Test("messages at or below the watermark are replayed, then the live buffer continues without a gap")
    func replayThenLive() {
        let sub = SubscriptionDelivery(id: 1, filter: filter, start: 1, watermark: 5, credit: 100, bufferLimit: 100)
        sub.offerLive(message(5))   // already fanned out before we joined: ignored
        sub.offerLive(message(6))
        sub.offerLive(message(7))
        #expect(sub.needsReplay && sub.replayThrough == 5)
        #expect(sub.takeLive().isEmpty)  // never live before the replay is done
        let replayed = sub.replayed([message(2), message(4)], scannedThrough: 5)
        #expect(replayed.map(\.sequence) == [2, 4])
        #expect(!sub.needsReplay)
        #expect(sub.takeLive().map(\.sequence) == [6, 7])
    }

    @Test("replay bounded by credit resumes after the last delivered message")
    func replayBoundedByCredit() {
        let sub = SubscriptionDelivery(id: 1, filter: filter, start: 1, watermark: 10, credit: 2, bufferLimit: 100)
        let first = sub.replayed([message(1), message(3), message(5)], scannedThrough: 10)
        #expect(first.map(\.sequence) == [1, 3])
        #expect(sub.nextSequence == 4 && sub.needsReplay)
        sub.grant(5)
        let second = sub.replayed([message(5), message(9)], scannedThrough: 10)
        #expect(second.map(\.sequence) == [5, 9])
        #expect(sub.nextSequence == 11 && !sub.needsReplay)
    }

    @Test("overflow drops the buffer and moves the replay bound: nothing lost, nothing duplicated")
    func overflowFallsBackToStore() {
        let sub = SubscriptionDelivery(id: 1, filter: filter, start: 1, watermark: 0, credit: 0, bufferLimit: 3)
        for seq in UInt64(1)...10 { sub.offerLive(message(seq)) }
        // 1,2,3 buffered; 4 overflowed (buffer dropped, validFrom = 4); 5,6,7 buffered; 8 overflowed; 9,10 buffered.
        #expect(sub.overflows == 2)
        #expect(sub.needsReplay && sub.replayThrough == 8 && sub.bufferedCount == 2)
        sub.grant(100)
        let fromStore = sub.replayed((UInt64(1)...8).map { message($0) }, scannedThrough: 8)
        #expect(fromStore.map(\.sequence) == Array(UInt64(1)...8))
        #expect(sub.takeLive().map(\.sequence) == [9, 10])
    }

    @Test("a byte limit bounds memory as well as the count")
    func byteLimit() {
        let sub = SubscriptionDelivery(id: 1, filter: filter, start: 1, watermark: 0, credit: 0, bufferLimit: 1_000,
                                       bufferByteLimit: 1_000)
        for seq in UInt64(1)...20 { sub.offerLive(message(seq, bytes: 200)) }
        #expect(sub.overflows > 0)
        #expect(sub.bufferedCount < 5)
    }

    @Test("credit saturates instead of wrapping")
    func creditSaturates() {
        let sub = SubscriptionDelivery(id: 1, filter: filter, start: 1, watermark: 0, credit: .max - 1, bufferLimit: 10)
        sub.grant(10)
        #expect(sub.credit == .max)
    }
}

final class CollectingSink: DeliverySink {
    let received = NIOLockedValueBox<[(UInt32, UInt64)]>([])
    let notices = NIOLockedValueBox<[UInt64?]>([])
    let liveRoom: Int
    init(liveRoom: Int = .max) { self.liveRoom = liveRoom }
    func deliver(_ batch: [RoutedDelivery], overflowThrough: UInt64?) {
        received.withLockedValue { $0.append(contentsOf: batch.map { ($0.subscription, $0.message.sequence) }) }
        notices.withLockedValue { $0.append(overflowThrough) }
    }
    var pairs: [(UInt32, UInt64)] { received.withLockedValue { $0 } }
    var overflowNotices: [UInt64?] { notices.withLockedValue { $0 } }
}

@Suite("Router")
struct RouterTests {
    @Test("subscribe returns the watermark; publish routes matches per sink in commit order")
    func routes() throws {
        let router = Router(watermark: 3)
        let a = CollectingSink(), b = CollectingSink()
        #expect(try router.subscribe(try TopicFilter("t.*"), sink: a, id: 1) == 3)
        #expect(try router.subscribe(try TopicFilter("t.b"), sink: a, id: 2) == 3)
        #expect(try router.subscribe(try TopicFilter(">"), sink: b, id: 9) == 3)
        router.publish([message(4, topic: "t.a"), message(5, topic: "t.b"), message(6, topic: "x")])
        #expect(router.watermark == 6)
        #expect(a.pairs.map(\.1) == [4, 5, 5])
        #expect(Set(a.pairs.filter { $0.1 == 5 }.map(\.0)) == [1, 2])
        #expect(b.pairs.map(\.1) == [4, 5, 6])
        router.unsubscribe(try TopicFilter(">"), sink: b, id: 9)
        router.publish([message(7, topic: "x")])
        #expect(b.pairs.count == 3)
        #expect(try router.subscribe(try TopicFilter("q"), sink: b, id: 1) == 7)
    }

    @Test("a sink with room for 3 deliveries gets the first 3 and the notice that the rest, through the batch's last sequence, were left out")
    func boundedRoom() throws {
        let router = Router(watermark: 0)
        let small = CollectingSink(liveRoom: 3), wide = CollectingSink()
        _ = try router.subscribe(try TopicFilter("t.*"), sink: small, id: 1)
        _ = try router.subscribe(try TopicFilter("t.a"), sink: small, id: 2)
        _ = try router.subscribe(try TopicFilter("t.*"), sink: wide, id: 1)
        router.publish((1...4).map { message(UInt64($0), topic: "t.a") })
        #expect(small.pairs.count == 3)
        #expect(small.pairs.map(\.1) == [1, 1, 2])
        #expect(small.overflowNotices == [4])
        #expect(wide.pairs.map(\.1) == [1, 2, 3, 4])
        #expect(wide.overflowNotices == [nil])
    }

    @Test("a batch with runs of one topic, interleaved with others, routes every message to exactly its matches, in order")
    func topicRuns() throws {
        let router = Router(watermark: 0)
        let a = CollectingSink(), b = CollectingSink(), c = CollectingSink()
        _ = try router.subscribe(try TopicFilter("t.a"), sink: a, id: 1)
        _ = try router.subscribe(try TopicFilter("t.*"), sink: a, id: 2)
        _ = try router.subscribe(try TopicFilter("t.b"), sink: b, id: 3)
        _ = try router.subscribe(try TopicFilter("x"), sink: c, id: 4)
        let topics = ["t.a", "t.a", "t.b", "t.b", "t.a", "x", "t.a"]
        router.publish(topics.enumerated().map { message(UInt64($0.offset + 1), topic: $0.element) })
        // Sink a: ids 1 and 2 for every t.a, id 2 for every t.b, in commit order.
        #expect(a.pairs.map(\.1) == [1, 1, 2, 2, 3, 4, 5, 5, 7, 7])
        #expect(a.pairs.filter { $0.0 == 1 }.map(\.1) == [1, 2, 5, 7])
        #expect(a.pairs.filter { $0.0 == 2 }.map(\.1) == [1, 2, 3, 4, 5, 7])
        #expect(b.pairs.map(\.0) == [3, 3])
        #expect(b.pairs.map(\.1) == [3, 4])
        #expect(c.pairs.map(\.1) == [6])
    }
}
