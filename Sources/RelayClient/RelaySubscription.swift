import NIOConcurrencyHelpers
import NIOCore
import RelayWire

/// An open subscription: iterate it for messages. The sequence ends normally
/// after ``cancel()`` or ``RelayConnection/close()``, and throws a
/// ``RelayClientError`` when the broker ended it (e.g. the policy was
/// reloaded and no longer allows it) or the connection failed for good.
/// Iterate it from one task at a time.
public final class RelaySubscription: AsyncSequence, Sendable {
    /// Each element is one message the broker delivered.
    public typealias Element = ReceivedMessage

    let core: ConnectionCore
    let id: UInt32
    let stream: AsyncThrowingStream<ReceivedMessage, any Error>
    let window: UInt32
    /// Messages taken by iterators and not yet reported to the connection
    /// (shared, so a new iterator continues the count).
    let untold = NIOLockedValueBox(0)
    /// The filter this subscription was opened with.
    public let filter: String
    /// The durable cursor's name, or nil for an ephemeral subscription.
    public let durableName: String?
    /// The first sequence the broker said it would deliver.
    public let firstSequence: UInt64
    /// What the broker said when it accepted the subscription, for a human:
    /// e.g. that an existing durable resumes at its cursor and the requested
    /// start position was ignored. Nil when it said nothing.
    public let notice: String?

    init(core: ConnectionCore, id: UInt32, stream: AsyncThrowingStream<ReceivedMessage, any Error>, filter: String,
         durableName: String?, firstSequence: UInt64, notice: String?, window: UInt32) {
        self.core = core
        self.id = id
        self.stream = stream
        self.filter = filter
        self.durableName = durableName
        self.firstSequence = firstSequence
        self.notice = notice
        self.window = window
    }

    /// Marks `message` and everything before it on this subscription as
    /// processed; a durable cursor moves there (and survives reconnects and
    /// restarts). Ignored for ephemeral subscriptions.
    public func ack(_ message: ReceivedMessage) {
        ack(upTo: message.sequence)
    }

    /// Cumulative acknowledgement up to and including `sequence`.
    public func ack(upTo sequence: UInt64) {
        let core = self.core, id = self.id
        core.eventLoop.execute { core.acknowledge(upTo: sequence, subscription: id) }
    }

    /// Ends the subscription (UNSUB); iteration finishes after the messages already received.
    public func cancel() {
        let core = self.core, id = self.id
        core.eventLoop.execute { core.unsubscribe(id) }
    }

    /// An iterator over the messages; iterate from one task at a time.
    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(base: stream.makeAsyncIterator(), subscription: self, batch: Swift.max(1, Int(window / 4)))
    }

    /// Takes messages and tells the connection, every quarter window, that
    /// room was made so it can grant the broker more credit.
    public struct AsyncIterator: AsyncIteratorProtocol {
        var base: AsyncThrowingStream<ReceivedMessage, any Error>.AsyncIterator
        let subscription: RelaySubscription
        let batch: Int

        /// The next message, or nil once the subscription ended normally.
        /// - Throws: ``RelayClientError`` when the broker ended the
        ///   subscription or the connection closed for good with an error.
        public mutating func next() async throws -> ReceivedMessage? {
            guard let message = try await base.next() else { return nil }
            let batch = self.batch
            let report = subscription.untold.withLockedValue { untold -> Int in
                untold += 1
                guard untold >= batch else { return 0 }
                defer { untold = 0 }
                return untold
            }
            if report > 0 {
                let core = subscription.core, id = subscription.id
                core.eventLoop.execute { core.consumerTook(report, subscription: id) }
            }
            return message
        }
    }
}

/// A subscription opened with a handler (``Subscriber/subscribe(filter:from:durable:window:onMessage:onEnd:)``).
public struct SubscriptionHandle: Sendable {
    let core: ConnectionCore
    let id: UInt32
    /// The filter this subscription was opened with.
    public let filter: String
    /// The durable cursor's name, or nil for an ephemeral subscription.
    public let durableName: String?
    /// The first sequence the broker said it would deliver.
    public let firstSequence: UInt64
    /// The broker's notice on accepting it (``RelaySubscription/notice``), or nil.
    public let notice: String?

    /// Cumulative acknowledgement up to and including `sequence` (durable subscriptions).
    public func ack(upTo sequence: UInt64) {
        let core = self.core, id = self.id
        core.eventLoop.execute { core.acknowledge(upTo: sequence, subscription: id) }
    }

    /// Ends the subscription; `onEnd` is called with nil.
    public func cancel() {
        let core = self.core, id = self.id
        core.eventLoop.execute { core.unsubscribe(id) }
    }
}
