import RelayCore
import NIOCore
import RelayWire

/// Where a subscription's messages go.
enum MessageSink {
    /// A ``RelaySubscription`` (AsyncSequence); the consumer reports what it took.
    case stream(AsyncThrowingStream<ReceivedMessage, any Error>.Continuation)
    /// A handler called on the event loop; a message counts as consumed when it returns.
    case callback(onMessage: @Sendable (ReceivedMessage) -> Void, onEnd: @Sendable (RelayClientError?) -> Void)

    func finish(_ error: RelayClientError?) {
        switch self {
        case .stream(let continuation):
            if let error { continuation.finish(throwing: error) } else { continuation.finish() }
        case .callback(_, let onEnd):
            onEnd(error)
        }
    }
}

/// One subscription's state across reconnects (event-loop confined).
final class SubscriptionState {
    let id: UInt32
    let filter: String
    let start: StartPosition
    /// Empty for an ephemeral subscription.
    let durableName: String
    /// Messages the broker may send before this client has consumed them.
    let window: UInt32
    let sink: MessageSink
    /// The sink's handler when it is a callback, taken out once: switching
    /// over `sink` per message copied the enum (~170 instructions a MSG).
    let onMessage: (@Sendable (ReceivedMessage) -> Void)?
    /// Completed by the first accepting SUBACK (first sequence and notice).
    var opened: EventLoopPromise<SubscribeAck>?
    /// A SUB for it was sent on the current connection.
    var attached = false
    var firstSequence: UInt64 = 0
    /// The highest sequence handed to the consumer: anything at or below is a
    /// re-delivery after a reconnect and is dropped.
    var lastSeen: UInt64 = 0
    /// Credit granted on the current connection and not used yet.
    var credit: Int64 = 0
    var yielded: UInt64 = 0
    var consumed: UInt64 = 0
    var ackRequested: UInt64 = 0
    /// Retries of a refused SUB so far (``retryRefusedSubscribe``); 0 again once accepted.
    var refusedRetries = 0
    /// A durable re-attached after a reconnect still has to repeat its last
    /// ACK once the broker delivered up to it: the ACK written right after
    /// the SUB is cut to what the broker has delivered there, which is
    /// nothing yet (§4.10). Without this, an ACK lost with the connection
    /// (an edge killed before committing it) leaves the cursor behind until
    /// the consumer acknowledges a newer message, and the next run of the
    /// consumer gets those messages again.
    var ackRepeatPending = false

    init(id: UInt32, filter: String, start: StartPosition, durableName: String, window: UInt32,
         sink: MessageSink, opened: EventLoopPromise<SubscribeAck>) {
        self.id = id
        self.filter = filter
        self.start = start
        self.durableName = durableName
        self.window = window
        self.sink = sink
        if case .callback(let onMessage, _) = sink { self.onMessage = onMessage } else { self.onMessage = nil }
        self.opened = opened
    }

    var isDurable: Bool { !durableName.isEmpty }
    /// Delivered to the stream, not yet taken by the consumer.
    var buffered: Int64 { Int64(yielded) - Int64(consumed) }
}

extension ConnectionCore {
    /// Registers a subscription and sends SUB (now, or once connected).
    func subscribe(filter: String, start: StartPosition, durableName: String, window: UInt32,
                   sink: MessageSink) -> (UInt32, EventLoopFuture<SubscribeAck>) {
        let promise = eventLoop.makePromise(of: SubscribeAck.self)
        if case .closed(let error) = phase.state {
            promise.fail(error ?? RelayClientError.closed)
            sink.finish(error ?? RelayClientError.closed)
            return (0, promise.futureResult)
        }
        let id = nextSubscriptionID
        nextSubscriptionID = nextSubscriptionID == UInt32.max ? 1 : nextSubscriptionID + 1
        let state = SubscriptionState(id: id, filter: filter, start: start, durableName: durableName,
                                      window: max(1, window), sink: sink, opened: promise)
        subscriptions[id] = state
        if isConnected {
            attach(state)
            flushOutbound()
        }
        return (id, promise.futureResult)
    }

    /// Sends SUB for `state` on the current connection. A re-subscription
    /// continues right after the last message the consumer got: durable ones
    /// by name (the broker resumes after the last ACK), ephemeral ones from
    /// the next sequence.
    private func attach(_ state: SubscriptionState) {
        var start = state.start
        if !state.isDurable {
            if state.lastSeen > 0 {
                start = .sequence(state.lastSeen + 1)
            } else if state.firstSequence > 0 {
                start = .sequence(state.firstSequence)
            }
        }
        let credit = max(0, Int64(state.window) - state.buffered)
        state.credit = credit
        state.attached = true
        write(.subscribe(Subscribe(subscriptionID: state.id, filter: state.filter, start: start,
                                   durableName: state.durableName, initialCredit: UInt32(credit),
                                   ackMode: state.isDurable ? .cumulative : .none)))
        if state.isDurable, state.ackRequested > 0 {
            write(.ack(Ack(subscriptionID: state.id, sequence: state.ackRequested)))
            state.ackRepeatPending = true
        }
    }

    /// Repeats a re-attached durable's last ACK once the broker has
    /// delivered `sequence`, at or past it (see `ackRepeatPending`).
    private func repeatAckIfDue(_ state: SubscriptionState, delivered sequence: UInt64) {
        guard state.ackRepeatPending, sequence >= state.ackRequested else { return }
        state.ackRepeatPending = false
        write(.ack(Ack(subscriptionID: state.id, sequence: state.ackRequested)))
    }

    func resubscribeAll() {
        for id in subscriptions.keys.sorted() {
            if let state = subscriptions[id] { attach(state) }
        }
    }

    func markSubscriptionsDetached() {
        for state in subscriptions.values {
            state.attached = false
            state.credit = 0
        }
    }

    func subscribeAnswered(_ ack: SubscribeAck) {
        guard let state = subscriptions[ack.subscriptionID] else { return }
        if ack.isAccepted {
            state.refusedRetries = 0
            state.firstSequence = ack.firstSequence
            if let opened = state.opened {
                state.opened = nil
                opened.succeed(ack)
            }
            return
        }
        if retryRefusedSubscribe(state, code: ack.code, message: ack.message) { return }
        subscriptionEnded(state.id, error: .broker(rawCode: ack.code, message: ack.message,
                                                   operation: "subscribe to \(state.filter)"))
    }

    /// Two refusals that time ends, retried with backoff (0.1 s doubling, 8
    /// tries, about 25 s in all) before the refusal is reported:
    /// - `durable_in_use` of a durable: after a reconnect the broker may not
    ///   have noticed yet that the old connection, which held the name, is gone;
    /// - `storage_unavailable`: a cluster edge could not open its tail of the
    ///   shared log (no stream leader, e.g. during a 3-5 s election).
    /// Each retry is reported to `onSubscribeRetry` before it is scheduled.
    private func retryRefusedSubscribe(_ state: SubscriptionState, code: UInt16, message: String) -> Bool {
        let attempts = 8
        let durableInUse = state.isDurable && code == RelayErrorCode.durableInUse.rawValue
        guard durableInUse || code == RelayErrorCode.storageUnavailable.rawValue,
              state.refusedRetries < attempts else { return false }
        let milliseconds = Int64(100) << Int64(state.refusedRetries)
        let delay = TimeAmount.milliseconds(milliseconds)
        state.refusedRetries += 1
        configuration.onSubscribeRetry?(SubscribeRetry(
            filter: state.filter, durableName: state.isDurable ? state.durableName : nil, rawCode: code,
            attempt: state.refusedRetries, attempts: attempts, retryIn: .milliseconds(milliseconds), brokerMessage: message))
        if durableInUse {
            configuration.durableInUseHandler?(DurableInUseRetry(
                filter: state.filter, durableName: state.durableName, attempt: state.refusedRetries,
                attempts: attempts, retryIn: .milliseconds(milliseconds), brokerMessage: message))
        }
        state.attached = false
        // The state is the loop's (as all of the core's): bound to it for the
        // timer's closure, which NIO types as @Sendable.
        let retried = NIOLoopBound(state, eventLoop: eventLoop)
        eventLoop.scheduleTask(in: delay) { [self] in
            let state = retried.value
            guard let current = subscriptions[state.id], current === state, isConnected, !state.attached else { return }
            attach(state)
            flushOutbound()
        }
        return true
    }

    /// The subscription a MSG is for. A connection's MSGs mostly come for one
    /// subscription after another, so the last one found is tried first: the
    /// dictionary's hash and probe were ~115 instructions per delivery (wave
    /// 12). `subscriptions` forgets it whenever it changes, so a removed
    /// subscription is never found here.
    @inline(__always)
    private func subscription(delivering id: UInt32) -> SubscriptionState? {
        if let last = lastDelivering, last.id == id { return last }
        let state = subscriptions[id]
        lastDelivering = state
        return state
    }

    func delivered(_ message: consuming Message) {
        guard let state = subscription(delivering: message.subscriptionID), state.attached else { return }
        state.credit -= 1
        repeatAckIfDue(state, delivered: message.sequence)
        guard message.sequence > state.lastSeen else {
            // Already handed over before a reconnect: drop it, but give its credit back.
            topUp(state)
            return
        }
        state.lastSeen = message.sequence
        state.yielded += 1
        if let onMessage = state.onMessage {
            // `consume`: handed over, not copied (a copyable value is copied otherwise).
            onMessage(ReceivedMessage(consume message))
            state.consumed += 1
            topUp(state)
        } else if case .stream(let continuation) = state.sink {
            continuation.yield(ReceivedMessage(consume message))
        }
    }

    /// Grants credit so that credit plus buffered messages is back to the
    /// window, once at least half of it is missing (few CREDIT frames).
    @discardableResult
    private func topUp(_ state: SubscriptionState) -> Bool {
        guard state.attached, isConnected else { return false }
        let deficit = Int64(state.window) - state.credit - state.buffered
        guard deficit >= max(1, Int64(state.window / 2)) else { return false }
        state.credit += deficit
        return write(.credit(Credit(subscriptionID: state.id, credit: UInt32(deficit))))
    }

    /// The consumer took `count` more messages from the stream.
    func consumerTook(_ count: Int, subscription id: UInt32) {
        guard let state = subscriptions[id] else { return }
        state.consumed += UInt64(count)
        if topUp(state) { flushOutbound() }
    }

    /// Cumulative ACK for a durable subscription (remembered and re-sent after a reconnect).
    func acknowledge(upTo sequence: UInt64, subscription id: UInt32) {
        guard let state = subscriptions[id], state.isDurable, sequence > state.ackRequested else { return }
        state.ackRequested = sequence
        guard state.attached, isConnected else { return }
        write(.ack(Ack(subscriptionID: id, sequence: sequence)))
        flushOutbound()
    }

    /// The consumer is done with the subscription.
    func unsubscribe(_ id: UInt32) {
        guard let state = subscriptions.removeValue(forKey: id) else { return }
        if state.attached, isConnected {
            write(.unsubscribe(subscriptionID: id))
            flushOutbound()
        }
        state.opened?.fail(RelayClientError.closed)
        state.opened = nil
        state.sink.finish(nil)
    }

    /// The broker ended or refused the subscription.
    func subscriptionEnded(_ id: UInt32, error: RelayClientError) {
        guard let state = subscriptions.removeValue(forKey: id) else { return }
        if let opened = state.opened {
            state.opened = nil
            opened.fail(error)
        }
        state.sink.finish(error)
    }

    func finishAllSubscriptions(_ error: RelayClientError?) {
        let all = subscriptions.values
        subscriptions.removeAll()
        for state in all {
            state.opened?.fail(error ?? RelayClientError.closed)
            state.opened = nil
            state.sink.finish(error)
        }
    }
}
