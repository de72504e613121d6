import RelayCore
import RelayStore

extension SessionStateMachine {
    /// The session while it delivers: active, or draining for a shutdown.
    /// After the client's BYE no more MSG is sent (§4.14).
    private var delivering: ActiveSession? {
        switch state {
        case .active(let session), .draining(let session, .shutdown): return session
        case .awaitingHandshake, .awaitingHello, .draining, .closed: return nil
        }
    }

    /// Live messages from the router. A subscription that is keeping up
    /// (nothing buffered or to replay, credit left) gets each message
    /// written at once; the others buffer it for ``pump(_:)``, which also
    /// sends a message this way refused (too large for the peer) and moves
    /// the durable cursors. Skipping the buffer saved a deque append and
    /// removal and an array per subscription and batch (fan-out profile).
    /// A subscription that buffers (or drops its buffer for the store) joins
    /// the table's queue of subscriptions with work (``SubscriptionTable``).
    /// `overflowThrough`: the router left out live messages for this
    /// session up to that sequence (its queue to this loop was full). After
    /// the batch that came with the notice, and before the pump, every
    /// subscription that had not got that far reads them from the store, as
    /// after a buffer overflow.
    mutating func deliverLive<Env: SessionEnvironment>(_ batch: [RoutedDelivery], overflowThrough: UInt64? = nil,
                                                       _ env: Env) {
        guard let session = delivering else { return }
        var direct = env.canDeliver
        var written = 0
        let budget = limits.deliveryBudget
        // A batch is mostly one subscription's: look its entry up once per
        // run of the same id, not once per message (a hash per delivery),
        // and queue it (if it buffered) and move its cursor once per run.
        var lastID: UInt32?
        var lastEntry: SubscriptionEntry?
        var lastSub: SubscriptionDelivery?
        var offered = false  // the current run buffered (or dropped) something
        for delivery in batch {
            let sub: SubscriptionDelivery
            if lastID == delivery.subscription, let cached = lastSub {
                sub = cached
            } else {
                guard let found = session.subscriptions[delivery.subscription] else { continue }
                if let previous = lastEntry { session.subscriptions.runEnded(previous, offered: offered) }
                offered = false
                (lastID, lastEntry, lastSub, sub) = (delivery.subscription, found, found.delivery, found.delivery)
            }
            let message = delivery.message
            if direct, sub.maySendLive(message), env.deliver(message, subscriptionID: delivery.subscription) {
                sub.sentLive(message)
                written += 1
                if written >= budget || env.outboundFull { direct = false }
                continue
            }
            sub.offerLive(message)
            offered = true
        }
        if let last = lastEntry { session.subscriptions.runEnded(last, offered: offered) }
        if let overflowThrough {
            for entry in session.subscriptions.entries.values where entry.delivery.overflow(through: overflowThrough) {
                session.subscriptions.markReady(entry)
            }
        }
        pump(env, alreadyWritten: written)
    }

    /// Sends what credit, the live buffers and the log allow, yielding to the
    /// event loop after ``SessionLimits/deliveryBudget`` messages so one
    /// subscriber's replay cannot starve other connections, or as soon as
    /// the output not yet flushed reaches ``SessionEnvironment/outboundFull``
    /// (the handler flushes after the turn, and the next turn goes on).
    /// A replay read that sent nothing and did not reach the log's end (it
    /// examined the store's bound of records, none matching) also ends the
    /// turn, and the next one comes after the event loop's sockets: reading
    /// on until something matched walked a whole sparse log in one turn while
    /// every connection on the event loop waited (`SparseReplayYieldTests`).
    ///
    /// It visits only the subscriptions in the table's queue of those with
    /// work, each at most once, in the queue's order; one it leaves with
    /// work goes to the back, so the next turn starts with the next one
    /// (`DeliveryTurnRotationTests`). Returns how many messages it wrote.
    @discardableResult
    mutating func pump<Env: SessionEnvironment>(_ env: Env, alreadyWritten: Int = 0) -> Int {
        guard let session = delivering else { return 0 }
        // Messages this turn already wrote (``deliverLive(_:overflowThrough:_:)``) count against its budget.
        var written = alreadyWritten
        let budget = limits.deliveryBudget
        // Set by a replay read that sent nothing and did not reach the log's end.
        var scannedWithoutMatch = false
        // The subscriptions queued when the turn began: one put back is not visited again in this turn.
        var remaining = session.subscriptions.readyCount
        // A log whose reads wait on a service is read off the loop (SessionStateMachine+ReadAhead).
        let readsOffLoop = env.readsWait
        while !scannedWithoutMatch, written < budget, env.canDeliver, !env.outboundFull,
              let entry = session.subscriptions.takeReady(within: &remaining) {
            let sub = entry.delivery
            let id = sub.id
            var tooLarge: UInt64?
            var readFailure: StoreError?
            turn: while written < budget, env.canDeliver, !env.outboundFull {
                if sub.needsReplay {
                    guard sub.credit > 0 else { break }
                    if readsOffLoop {
                        switch replayFromReadAhead(entry, in: session, written: &written, budget: budget, env) {
                        case .advanced: continue turn
                        case .waiting, .stalled, .paused: break turn
                        case .tooLarge(let sequence):
                            tooLarge = sequence
                            break turn
                        }
                    }
                    let before = sub.nextSequence, writtenBefore = written
                    // Each MSG is written as the read finds its record
                    // (inside the read): no batch of decoded messages.
                    var refused: UInt64?
                    let progress: ReadProgress
                    do {
                        progress = try env.visit(from: before, filter: sub.filter, maxMessages: Int(min(sub.credit, 1_024)),
                                                 maxBytes: Self.replayReadBytes) { record in
                            switch sub.replayStep(sequence: record.sequence, timestamp: record.timestamp) {
                            case .stop: return false
                            case .passOver: return true
                            case .deliver:
                                guard env.deliverReplayed(record, subscriptionID: id) else {
                                    refused = record.sequence
                                    return false
                                }
                                sub.sentReplayed()
                                written += 1
                                return true
                            }
                        }
                    } catch {
                        readFailure = error
                        break
                    }
                    if let refused {
                        tooLarge = refused
                        break turn
                    }
                    sub.replayScanned(to: progress.next)
                    if sub.nextSequence == before { break }  // no progress: wait for credit or data
                    if written == writtenBefore, !progress.reachedEnd, sub.needsReplay {
                        scannedWithoutMatch = true  // the next turn reads on, after the sockets
                        break turn
                    }
                } else {
                    for message in sub.takeLive(max: budget - written) {
                        guard env.deliver(message, subscriptionID: id) else {
                            tooLarge = message.sequence
                            break turn
                        }
                        written += 1
                    }
                    break
                }
            }
            if let sequence = tooLarge {
                // The subscription ends (§4.11). Its durable cursor moves past
                // the message, so a resume does not end on it again.
                if entry.durableName != nil { session.subscriptions.advanceCursor(entry, to: sequence) }
                // Only a durable has a cursor to move; either way, say how to read the message.
                let cursor = entry.durableName.map { " and durable '\($0)' moved past it (a resume continues after it)" } ?? ""
                endSubscription(id, in: session, code: .payloadTooLarge,
                                message: "message \(sequence) does not fit this connection's max_frame_size of "
                                    + "\(session.peerFrameLimit) bytes; the subscription ended\(cursor). To read it, "
                                    + "subscribe from sequence \(sequence) on a connection announcing a larger max_frame_size", env)
                continue
            }
            // `ack_mode` none: a durable cursor advances as messages are sent
            // (§4.6), to the last sequence sent or passed over.
            session.subscriptions.cursorFollowsDelivery(entry)
            if let readFailure {
                endSubscription(id, in: session, code: readFailure.relayErrorCode, message: "replay failed: \(readFailure)", env)
            } else if sub.hasWork, entry.awaitingRead == nil {  // one waiting for its read is queued by the answer
                session.subscriptions.markReady(entry)  // to the back: the next turn starts with the next one
            }
        }
        if written > 0 { metrics.deliveries.increment(by: Int64(written)) }
        commitCursors(session, env)
        if scannedWithoutMatch {
            env.run(.yieldPump)
        } else if written >= budget || env.outboundFull {
            env.run(.schedulePump)
        }
        return written
    }

    /// Payload bytes one store read of a replay returns at most: about one
    /// flush's worth of MSG frames (``SessionIO``'s flush chunk). Bigger reads
    /// built megabyte buffers (the read's arena, the output, the TLS
    /// records) that the allocator handed back to the kernel and faulted in
    /// again, zeroed, on the next read: a fifth of relayd's replay profile.
    static let replayReadBytes = 64 << 10
}
