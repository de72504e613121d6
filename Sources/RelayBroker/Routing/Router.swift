import Dispatch
import NIOConcurrencyHelpers
import RelayCore
import RelayStore

/// Something that receives routed messages: a session. Called from the
/// router's serial queue; implementations hop to their own event loop.
public protocol DeliverySink: AnyObject, Sendable {
    /// How many more deliveries the sink takes now: a session whose event
    /// loop is far behind the router (a client with many subscriptions that
    /// never reads) takes none, so what the router queues for it is bounded.
    var liveRoom: Int { get }
    /// `batch`; then, when `overflowThrough` is set, the notice that the
    /// router left out deliveries for this sink up to that sequence (past
    /// its ``liveRoom``): its subscriptions read those from the store, as
    /// after a buffer overflow. Nothing is lost and order is kept.
    func deliver(_ batch: [RoutedDelivery], overflowThrough: UInt64?)
}

/// One message for one subscription of a sink.
public struct RoutedDelivery: Sendable {
    public var subscription: UInt32
    public var message: RoutedMessage
}

/// Fans committed messages out to the subscriptions whose filters match.
///
/// ``publish(_:)`` is called once per committed batch, in commit order,
/// from the router's serial queue (see ``enqueue(_:)``). Subscribing
/// returns the *watermark*: the highest sequence fanned out before the
/// subscription joined, so the
/// subscriber knows that everything above it arrives live and everything up
/// to it must be read from the store (see ``SubscriptionDelivery``).
public final class Router: Sendable {
    struct Key: Hashable {
        let sink: any DeliverySink
        let subscription: UInt32

        static func == (a: Key, b: Key) -> Bool {
            a.sink === b.sink && a.subscription == b.subscription
        }
        func hash(into hasher: inout Hasher) {
            hasher.combine(ObjectIdentifier(sink))
            hasher.combine(subscription)
        }
    }

    private struct State {
        var trie = SubscriptionTrie<Key>()
        var watermark: UInt64
    }

    private let state: NIOLockedValueBox<State>
    /// A shared log's tail, opened by the first subscription (``followTail(of:idle:metrics:)``);
    /// nil for a local log.
    private let liveTail = NIOLockedValueBox<LiveTail?>(nil)
    /// Where commit completions encode and route their batches, off the
    /// store's writer thread. Serial and FIFO: the single writer enqueues in
    /// commit order, so ``publish(_:)`` still sees commit order, which the
    /// watermark relies on. A queue, not an event loop, so work enqueued
    /// while the broker shuts down still runs.
    private let queue = DispatchQueue(label: "relay.router")

    /// - Parameter watermark: the store's last committed sequence at start-up.
    public init(watermark: UInt64) {
        state = NIOLockedValueBox(State(watermark: watermark))
    }

    public var watermark: UInt64 { state.withLockedValue { $0.watermark } }
    public var subscriptionCount: Int { state.withLockedValue { $0.trie.count } }

    /// Adds a subscription and returns the watermark at that instant. With a
    /// shared log whose tail is closed, opens it first (``LiveTail``); a
    /// failure to open it is thrown and nothing is added.
    public func subscribe(_ filter: TopicFilter, sink: any DeliverySink, id: UInt32) throws(StoreError) -> UInt64 {
        let insert = {
            self.state.withLockedValue { state in
                state.trie.insert(filter, Key(sink: sink, subscription: id))
                return state.watermark
            }
        }
        guard let tail else { return insert() }
        return try tail.whileOpen(raise: { last in
            state.withLockedValue { $0.watermark = max($0.watermark, last) }
        }, insert)
    }

    /// Opens a shared log's tail now if it is closed, as the first
    /// subscription's ``subscribe(_:sink:id:)`` would (the log's last
    /// sequence, the watermark raised to it), so that call finds it open and
    /// does not wait on the log's service: for a SUB's look-ups made off the
    /// event loop. The tail stays open until ``releasePreparedTail()``, which
    /// the SUB calls after its routing, whatever that added; true when there
    /// is a hold to release (false for a local log, which has no tail).
    public func prepareLiveTail() throws(StoreError) -> Bool {
        guard let tail else { return false }
        try tail.openAndHold(raise: { last in
            state.withLockedValue { $0.watermark = max($0.watermark, last) }
        })
        return true
    }

    /// Ends the hold of ``prepareLiveTail()``: with no subscription on this
    /// edge (the SUB was refused, or its session closed first) the tail
    /// closes after `tail_idle`, as after the last UNSUB.
    public func releasePreparedTail() {
        tail?.releaseHold(stillNone: { self.subscriptionCount == 0 })
    }

    /// The shared log's tail (nil for a local log).
    var tail: LiveTail? { liveTail.withLockedValue { $0 } }

    func attach(_ tail: LiveTail) {
        liveTail.withLockedValue { $0 = tail }
    }

    /// For a shared log's tail: while no subscription exists, moves the
    /// watermark to `sequence` and answers true (the message needs no
    /// routing, so the tail need not decode it); otherwise false. Atomic
    /// with ``subscribe(_:sink:id:)``: a subscription that joins later gets a
    /// watermark of at least `sequence` and reads it from the log. A batch
    /// still on the queue from before moves the watermark no lower (max), and
    /// the subscriber ignores live messages at or below its watermark.
    public func skipWhileUnsubscribed(_ sequence: UInt64) -> Bool {
        state.withLockedValue { state in
            guard state.trie.count == 0 else { return false }
            state.watermark = max(state.watermark, sequence)
            return true
        }
    }

    public func unsubscribe(_ filter: TopicFilter, sink: any DeliverySink, id: UInt32) {
        let none = state.withLockedValue { state in
            _ = state.trie.remove(filter, Key(sink: sink, subscription: id))
            return state.trie.count == 0
        }
        if none, let tail {
            tail.lastSubscriptionEnded(stillNone: { self.subscriptionCount == 0 })
        }
    }

    /// Runs `work` on the router's serial queue after the work enqueued
    /// before it. The store's writer uses it to hand over each committed
    /// batch; the work calls ``publish(_:)``.
    public func enqueue(_ work: @escaping @Sendable () -> Void) {
        queue.async(execute: work)
    }

    /// Routes one committed batch (ascending sequences). One lock and one
    /// delivery call per sink per batch, not per message.
    public func publish(_ messages: [RoutedMessage]) {
        guard let last = messages.last else { return }
        // One batch per session. Parallel arrays with a dictionary of slots,
        // not a dictionary of (sink, batch) tuples: appending through the
        // dictionary's optional subscript cost three allocations per
        // delivery (RelayMicroBenchmarks' routing benchmark).
        var slots: [ObjectIdentifier: Int] = [:]
        var sinks: [any DeliverySink] = []
        var batches: [[RoutedDelivery]] = []
        // Per slot: how many deliveries the sink takes, and whether some were left out.
        var rooms: [Int] = []
        var overflowed: [Bool] = []
        state.withLockedValue { state in
            // A batch is usually one topic (or a few, in runs): a run is
            // matched, and its sinks given their slots, once, instead of
            // hashing the topic into the trie's cache and each sink into
            // `slots` for every message.
            var lastTopic: String?
            var targets: [(slot: Int, subscription: UInt32)] = []
            for message in messages {
                if message.topic != lastTopic {
                    lastTopic = message.topic
                    targets = state.trie.match(message.topic).map { key in
                        let id = ObjectIdentifier(key.sink)
                        if let slot = slots[id] { return (slot, key.subscription) }
                        slots[id] = sinks.count
                        sinks.append(key.sink)
                        batches.append([])
                        rooms.append(key.sink.liveRoom)
                        overflowed.append(false)
                        return (sinks.count - 1, key.subscription)
                    }
                }
                for target in targets {
                    guard batches[target.slot].count < rooms[target.slot] else {
                        overflowed[target.slot] = true
                        continue
                    }
                    batches[target.slot].append(RoutedDelivery(subscription: target.subscription, message: message))
                }
            }
            state.watermark = max(state.watermark, last.sequence)
        }
        // Outside the lock: sinks only enqueue onto their event loops, and
        // the serial queue calls us in commit order, so per-sink
        // order is commit order.
        for slot in sinks.indices {
            sinks[slot].deliver(batches[slot], overflowThrough: overflowed[slot] ? last.sequence : nil)
        }
    }
}
