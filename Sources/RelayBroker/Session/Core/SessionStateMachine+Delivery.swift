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

    /// Live messages from the router.
    mutating func deliverLive<Env: SessionEnvironment>(_ batch: [RoutedDelivery], _ env: Env) {
        guard let session = delivering else { return }
        for delivery in batch {
            session.subscriptions[delivery.subscription]?.delivery.offerLive(delivery.message)
        }
        pump(env)
    }

    /// Sends what credit, the live buffers and the log allow, yielding to the
    /// event loop after ``SessionLimits/deliveryBudget`` messages so one
    /// subscriber's replay cannot starve other connections. Returns how many
    /// messages it wrote.
    @discardableResult
    mutating func pump<Env: SessionEnvironment>(_ env: Env) -> Int {
        guard let session = delivering else { return 0 }
        var written = 0
        let budget = limits.deliveryBudget
        for id in Array(session.subscriptions.ids) {
            guard let entry = session.subscriptions[id] else { continue }
            let sub = entry.delivery
            var tooLarge: UInt64?
            var readFailure: StoreError?
            turn: while written < budget, env.canDeliver {
                if sub.needsReplay {
                    guard sub.credit > 0 else { break }
                    let before = sub.nextSequence
                    let batch: ReadBatch
                    do {
                        batch = try env.read(from: before, filter: sub.filter, maxMessages: Int(min(sub.credit, 1_024)),
                                             maxBytes: 1 << 20)
                    } catch {
                        readFailure = error
                        break
                    }
                    for message in sub.replayed(batch.messages, scannedThrough: batch.next &- 1) {
                        guard env.deliverReplayed(message, subscriptionID: id) else {
                            tooLarge = message.sequence
                            break turn
                        }
                        written += 1
                    }
                    if sub.nextSequence == before { break }  // no progress: wait for credit or data
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
            // `ack_mode` none: a durable cursor advances as messages are sent
            // (§4.6), to the last sequence sent or passed over.
            if entry.durableName != nil, entry.ackMode == .none, tooLarge == nil {
                let passed = sub.nextSequence &- 1
                if passed > (entry.highestAck ?? 0) { session.subscriptions.advanceCursor(entry, to: passed) }
            }
            if let sequence = tooLarge {
                // The subscription ends (§4.11). Its durable cursor moves past
                // the message, so a resume does not end on it again.
                if entry.durableName != nil { session.subscriptions.advanceCursor(entry, to: sequence) }
                endSubscription(id, in: session, code: .payloadTooLarge,
                                message: "message \(sequence) does not fit this connection's max_frame_size of "
                                    + "\(session.peerFrameLimit) bytes; the subscription ended (a durable cursor moved past it)", env)
            } else if let readFailure {
                endSubscription(id, in: session, code: readFailure.relayErrorCode, message: "replay failed: \(readFailure)", env)
            }
        }
        if written > 0 { metrics.deliveries.increment(by: Int64(written)) }
        commitCursors(session, env)
        if written >= budget { env.run(.schedulePump) }
        return written
    }
}
