import Logging
import NIOConcurrencyHelpers
import RelayCore
import RelayStore
import Testing
@testable import RelayBroker

/// A SUB's look-ups on a cluster edge open the shared log's tail off the
/// event loop (`Router.prepareLiveTail`) and the SUB's routing adds the
/// subscription later, on the loop. In between, the tail must not close: if
/// another subscription's end lets the idle close run there (`tail_idle =
/// "0s"` makes that likely), the routing reopens the tail on the loop, the
/// NATS requests the look-ups were moved off it for. The log here is the
/// in-memory log with a tail that only counts its starts and stops; the
/// idle close is LiveTail's own, waited for by its count.
@Suite("The shared log's tail, held for a SUB between its look-ups and its routing", .timeLimit(.minutes(1)))
struct LiveTailHoldTests {
    /// The in-memory log as a shared log whose tail delivers nothing.
    final class CountingTailLog: ForwardingMessageLog, SharedMessageLog, @unchecked Sendable {
        let counts = NIOLockedValueBox((starts: 0, stops: 0))

        init() { super.init(base: InMemoryMessageLog()) }

        func startTail(after sequence: UInt64, deliver: @escaping @Sendable ([StoredMessage]) -> Void) throws(StoreError) {
            counts.withLockedValue { $0.starts += 1 }
        }

        func startTail(after sequence: UInt64, skip: @escaping @Sendable (_ sequence: UInt64, _ payloadBytes: Int) -> Bool,
                       deliver: @escaping @Sendable ([StoredMessage]) -> Void) throws(StoreError) {
            counts.withLockedValue { $0.starts += 1 }
        }

        func stopTail() { counts.withLockedValue { $0.stops += 1 } }
        var starts: Int { counts.withLockedValue { $0.starts } }
        var stops: Int { counts.withLockedValue { $0.stops } }
    }

    /// A router following `log`'s tail with `tail_idle` 0 s, and the tail.
    static func router(_ log: CountingTailLog) throws -> (Router, LiveTail) {
        let router = Router(watermark: 0)
        router.followTail(of: log, idle: .zero, metrics: BrokerMetrics(), logger: Logger(label: "live-tail-hold"))
        let tail = try #require(router.tail, "followTail attached no tail to the router")
        return (router, tail)
    }

    /// Returns once `tail` has run `count` idle closes (each is an event: it
    /// closed the tail or found it needed).
    /// Stops waiting if the test's time limit cancels it (the expectations after it then fail).
    static func untilIdleChecks(_ tail: LiveTail, _ count: Int) async {
        while tail.idleChecks < count && !Task.isCancelled { await Task.yield() }
    }

    @Test("an idle close between a SUB's tail open and its routing leaves the tail open; the routing does not reopen it")
    func heldThroughAnIdleClose() async throws {
        let log = CountingTailLog()
        let (router, tail) = try Self.router(log)
        let first = CollectingSink(), second = CollectingSink()
        _ = try router.subscribe(try TopicFilter("a.>"), sink: first, id: 1)
        #expect(log.starts == 1)
        // The second SUB's look-ups, off the loop: the tail is open already.
        #expect(try router.prepareLiveTail(), "a router following a shared log must hold its tail")
        // Meanwhile the first subscription ends, and the idle close comes due.
        router.unsubscribe(try TopicFilter("a.>"), sink: first, id: 1)
        await Self.untilIdleChecks(tail, 1)
        #expect(tail.isOpen, "the idle close closed the tail the second SUB's look-ups had opened")
        #expect(log.stops == 0)
        // The second SUB's routing, on its loop, then the hold's release.
        _ = try router.subscribe(try TopicFilter("b.>"), sink: second, id: 2)
        router.releasePreparedTail()
        #expect(log.starts == 1, "the routing reopened the tail: \(log.starts) starts")
        #expect(tail.isOpen)
    }

    @Test("a tail opened for a SUB that then subscribed nothing closes at the next idle close once released")
    func releasedWithoutSubscriptionCloses() async throws {
        let log = CountingTailLog()
        let (router, tail) = try Self.router(log)
        #expect(try router.prepareLiveTail())
        #expect(log.starts == 1 && tail.isOpen)
        router.releasePreparedTail()
        await Self.untilIdleChecks(tail, 1)
        #expect(!tail.isOpen, "the released tail stayed open with no subscription")
        #expect(log.stops == 1)
    }

    @Test("a local log has no tail to hold")
    func localLogHoldsNothing() throws {
        let router = Router(watermark: 0)
        #expect(try router.prepareLiveTail() == false)
        router.releasePreparedTail()
        #expect(router.tail == nil)
        // Subscribing still works as on any local log: the watermark, no tail to open.
        #expect(try router.subscribe(try TopicFilter("a.>"), sink: CollectingSink(), id: 1) == 0)
    }

    @Test("two SUBs hold the tail: it stays open until the second lets go")
    func twoHoldsCloseAfterBoth() async throws {
        let log = CountingTailLog()
        let (router, tail) = try Self.router(log)
        #expect(try router.prepareLiveTail())
        #expect(try router.prepareLiveTail())
        router.releasePreparedTail()
        // Another subscription comes and goes: its end brings an idle close due.
        let passing = CollectingSink()
        _ = try router.subscribe(try TopicFilter("c.>"), sink: passing, id: 3)
        router.unsubscribe(try TopicFilter("c.>"), sink: passing, id: 3)
        await Self.untilIdleChecks(tail, 1)
        #expect(tail.isOpen, "the tail closed while a second SUB still held it")
        router.releasePreparedTail()
        await Self.untilIdleChecks(tail, 2)
        #expect(!tail.isOpen)
        #expect(log.starts == 1 && log.stops == 1)
    }
}
