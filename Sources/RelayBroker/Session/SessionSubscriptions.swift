import NIOCore
import RelayCore
import RelayPolicy
import RelayStore
import RelayWire

extension SessionHandler {
    func handleSubscribe(_ request: Subscribe) {
        let id = request.subscriptionID
        func refuse(_ code: RelayErrorCode, _ message: String) {
            write(.subscribeAck(.refused(subscriptionID: id, code: code, message: message)))
        }
        guard subscriptions[id] == nil else {
            return refuse(.duplicateSubscriptionID, "subscription id \(id) is already open on this connection")
        }
        guard subscriptions.count < broker.limits.maxSubscriptionsPerConnection else {
            return refuse(.tooManySubscriptions, "at most \(broker.limits.maxSubscriptionsPerConnection) subscriptions per connection")
        }
        // Filter grammar, start-position values and the durable-name grammar
        // (Protocol/relay-v1.md §4.6), with control characters quoted.
        let filter: TopicFilter
        do { filter = try OperationValidation.validate(request) } catch {
            return refuse(error.code, error.message)
        }
        let decision = permissions?.canSubscribe(filter) ?? .identityRefused
        guard decision.isAllowed else {
            broker.audit?.record("subscribe_denied", ["principal": principal, "serial": identity?.serialNumber ?? "",
                                                      "filter": filter.value, "rule": decision.rule ?? "(no rule allows it)"])
            return refuse(.notAuthorized, "not allowed to subscribe to \(filter)")
        }
        let durable = request.durableName
        // Durable names belong to the workload (IdentityScope.durableOwner),
        // never to the principal, which different certificates can share.
        var owner: DurableOwner?
        if !durable.isEmpty {
            guard let durableOwner else {
                return refuse(.invalidStartPosition, "durable subscriptions are not available for this certificate")
            }
            guard broker.claimDurable(owner: durableOwner, name: durable) else {
                return refuse(.durableInUse, "durable subscription \"\(durable)\" is attached to another connection")
            }
            owner = durableOwner
        }
        var start: UInt64?
        var notBefore: UInt64?  // a `time` start: skip what was committed before it (§4.6)
        do {
            if let owner, let cursor = try resumePosition(owner: owner, name: durable) {
                start = cursor + 1
            } else {
                switch request.start {
                case .latest: start = nil  // from the watermark on
                case .sequence(let s): start = s  // at least 1: validated above
                case .time(let t):
                    start = try broker.store.startSequence(request.start, filter: filter)
                    notBefore = t
                case .earliest, .last: start = try broker.store.startSequence(request.start, filter: filter)
                }
            }
        } catch {
            if let owner { broker.releaseDurable(owner: owner, name: durable) }
            return refuse(error.relayErrorCode, "could not resolve the start position: \(error)")
        }
        guard let proxy else { return }
        let watermark = broker.router.subscribe(filter, sink: proxy, id: id)
        let first = start ?? watermark + 1
        subscriptions[id] = SubscriptionDelivery(id: id, filter: filter, start: first, watermark: watermark,
                                                 credit: UInt64(request.initialCredit),
                                                 bufferLimit: broker.limits.subscriptionBuffer, notBefore: notBefore)
        if !durable.isEmpty {
            durableNames[id] = durable
            if request.ackMode == .none { cursorFollowsDelivery.insert(id) }
        }
        broker.metrics.subscriptions.increment()
        write(.subscribeAck(.accepted(subscriptionID: id, firstSequence: first)))
        schedulePump()
    }

    /// The owner's committed cursor; else a cursor migrated from a
    /// schema-1 store under this session's principal, which this owner then
    /// adopts (the legacy key is deleted, so it is handed out once).
    private func resumePosition(owner: DurableOwner, name: String) throws(StoreError) -> UInt64? {
        if let cursor = try broker.store.cursor(owner: owner, name: name) { return cursor }
        guard let legacy = try broker.store.legacyCursor(principal: principal, name: name) else { return nil }
        let logger = self.logger, principal = self.principal
        broker.store.adoptLegacyCursor(principal: principal, name: name, owner: owner, sequence: legacy) { result in
            if case .failure(let error) = result {
                logger.error("adopting a migrated durable cursor failed", metadata: ["name": "\(name)", "error": "\(error)"])
            }
        }
        logger.notice("durable cursor migrated from schema 1 adopted",
                      metadata: ["name": "\(name)", "principal": "\(principal)", "sequence": "\(legacy)"])
        return legacy
    }

    func handleUnsubscribe(_ id: UInt32) {
        // UNSUB gets no reply (Protocol/relay-v1.md §4.8), except for an id
        // that is not open.
        guard subscriptions[id] != nil else { return reportUnknownSubscription(id, frame: "UNSUB") }
        endSubscription(id, code: nil, message: "")
    }

    /// CREDIT, UNSUB or ACK for an id that is not open (never opened, ended
    /// by UNSUB, or ended by the broker with ERR): ERR `unknown_subscription`
    /// naming it (§4.8-4.10). Operation-level: the connection stays open.
    func reportUnknownSubscription(_ id: UInt32, frame: String) {
        write(.error(ErrorFrame(code: .unknownSubscription, subscriptionID: id,
                                message: "\(frame) for subscription \(id), which is not open on this connection")))
    }

    /// Ends a subscription and tells the client with SUBEND (code 0 when it asked).
    func endSubscription(_ id: UInt32, code: RelayErrorCode?, message: String) {
        guard let sub = subscriptions.removeValue(forKey: id) else { return }
        if let proxy { broker.router.unsubscribe(sub.filter, sink: proxy, id: id) }
        if let name = durableNames.removeValue(forKey: id) {
            detachDurable(name, lastAck: highestCursorAcks[id])
        }
        pendingCursorAcks[id] = nil
        highestCursorAcks[id] = nil
        cursorFollowsDelivery.remove(id)
        broker.metrics.subscriptions.decrement()
        // A subscription the broker ends is reported with ERR carrying its id.
        if let code { write(.error(ErrorFrame(code: code, subscriptionID: id, message: message))) }
    }

    func handleCredit(_ credit: Credit) {
        guard let sub = subscriptions[credit.subscriptionID] else {
            return reportUnknownSubscription(credit.subscriptionID, frame: "CREDIT")
        }
        // §4.9: outstanding credit (granted and not used) above 2^32-1 is
        // credit_overflow, which closes the connection. Both terms are at
        // most 2^32-1 (initial credit is a u32, and this check keeps the sum
        // there), so the addition cannot wrap.
        let outstanding = sub.credit + UInt64(credit.credit)
        guard outstanding <= UInt64(UInt32.max) else {
            return terminate(.creditOverflow, "CREDIT \(credit.credit) on subscription \(credit.subscriptionID) would make "
                             + "\(outstanding) MSG outstanding, above 2^32-1; grant credit as messages are used")
        }
        sub.grant(UInt64(credit.credit))
        schedulePump()
    }

    func handleAck(_ ack: Ack) {
        guard let sub = subscriptions[ack.subscriptionID] else {
            return reportUnknownSubscription(ack.subscriptionID, frame: "ACK")
        }
        // An ephemeral subscription has no cursor, and on an ack_mode none one
        // the cursor follows delivery (§4.6): the ACK is ignored (§4.10).
        guard durableNames[ack.subscriptionID] != nil, !cursorFollowsDelivery.contains(ack.subscriptionID) else { return }
        // Never move a cursor past what was delivered.
        let sequence = min(ack.sequence, sub.nextSequence &- 1)
        let highest = max(highestCursorAcks[ack.subscriptionID] ?? 0, sequence)
        highestCursorAcks[ack.subscriptionID] = highest
        pendingCursorAcks[ack.subscriptionID] = highest
    }

    /// One cursor commit per durable subscription per read batch.
    func commitPendingCursorAcks() {
        guard !pendingCursorAcks.isEmpty else { return }
        let logger = self.logger
        for (id, sequence) in pendingCursorAcks {
            guard let name = durableNames[id], let owner = durableOwner else { continue }
            broker.store.commitCursor(owner: owner, name: name, sequence: sequence) { result in
                if case .failure(let error) = result {
                    logger.error("durable cursor commit failed", metadata: ["name": "\(name)", "error": "\(error)"])
                }
            }
        }
        pendingCursorAcks.removeAll(keepingCapacity: true)
    }

    /// Lets go of a durable name after committing its last ACK. The commit
    /// queues behind any earlier cursor commit on the store's writer, and the
    /// name is released only once it is done, so a client that reconnects at
    /// once resumes after its last ACK rather than from an older cursor.
    func detachDurable(_ name: String, lastAck: UInt64?) {
        // A durable name is only ever claimed with an owner (handleSubscribe).
        guard let owner = durableOwner else { return }
        let broker = self.broker, logger = self.logger
        guard let lastAck else { return broker.releaseDurable(owner: owner, name: name) }
        broker.store.commitCursor(owner: owner, name: name, sequence: lastAck) { result in
            if case .failure(let error) = result {
                logger.error("durable cursor commit failed", metadata: ["name": "\(name)", "error": "\(error)"])
            }
            broker.releaseDurable(owner: owner, name: name)
        }
    }

    // MARK: Delivery

    /// Live messages from the router (already on this loop).
    func deliverLive(_ batch: [RoutedDelivery]) {
        guard case .active = state, !clientSaidBye else { return }  // no MSG after the client's BYE
        for delivery in batch {
            subscriptions[delivery.subscription]?.offerLive(delivery.message)
        }
        pump()
    }

    func schedulePump() {
        guard !pumpScheduled, let context else { return }
        pumpScheduled = true
        let session = NIOLoopBound(self, eventLoop: context.eventLoop)
        context.eventLoop.execute {
            session.value.pumpScheduled = false
            session.value.pump()
        }
    }

    /// Sends what credit, the live buffers and the store allow, yielding to
    /// the event loop after a bounded amount so one subscriber's replay
    /// cannot starve other connections.
    func pump() {
        guard case .active = state, !clientSaidBye, let context else { return }
        var written = 0
        let budget = 8_192
        for id in Array(subscriptions.keys) {
            while written < budget, context.channel.isWritable, let sub = subscriptions[id] {
                if sub.needsReplay {
                    guard sub.credit > 0 else { break }
                    let before = sub.nextSequence
                    let batch: ReadBatch
                    do {
                        batch = try broker.store.read(from: before, filter: sub.filter,
                                                      maxMessages: Int(min(sub.credit, 1_024)), maxBytes: 1 << 20,
                                                      maxScan: 65_536)
                    } catch {
                        endSubscription(id, code: error.relayErrorCode, message: "replay failed: \(error)")
                        break
                    }
                    let deliverable = sub.replayed(batch.messages, scannedThrough: batch.next &- 1)
                    written += sendReplayed(deliverable, subscription: id)
                    if sub.nextSequence == before { break }  // no progress: wait for credit or data
                } else {
                    let live = sub.takeLive(max: budget - written)
                    written += send(live, subscription: id, replayed: false)
                    break
                }
            }
            advanceCursorWithDelivery(id)
        }
        // Queued on the store's writer before the MSG frames are flushed, so a
        // PUB the client sends after reading them commits after these cursors.
        commitPendingCursorAcks()
        if written > 0 { broker.metrics.deliveries.increment(by: Int64(written)) }
        // Flushed even when no MSG went out: an ERR that ended a subscription
        // (a MSG above the client's frame limit, a failed replay) must not
        // wait for the next write made for another reason (§4.11).
        flushOutbound()
        if written >= budget { schedulePump() }
    }

    private func send(_ messages: [RoutedMessage], subscription id: UInt32, replayed: Bool) -> Int {
        var sent = 0
        for message in messages {
            do {
                try message.prepared.write(subscriptionID: id, replayed: replayed, into: &outbound, maxFrameSize: peerMaxFrameSize)
                sent += 1
            } catch {
                endOversized(id, sequence: message.sequence)
                break
            }
        }
        return sent
    }

    /// §4.6: a durable ack_mode none cursor advances as messages are sent: to
    /// the last sequence this subscription has sent or passed over. Committed
    /// once per pump pass (``commitPendingCursorAcks``), and on detach.
    private func advanceCursorWithDelivery(_ id: UInt32) {
        guard cursorFollowsDelivery.contains(id), let sub = subscriptions[id] else { return }
        let passed = sub.nextSequence &- 1
        guard passed > (highestCursorAcks[id] ?? 0) else { return }
        highestCursorAcks[id] = passed
        pendingCursorAcks[id] = passed
    }

    /// §4.11: a MSG above the client's `max_frame_size` ends the subscription
    /// with ERR `payload_too_large`. A durable cursor moves past that message
    /// (committed on detach as if it were acknowledged), so a resume with the
    /// same limit continues after it instead of ending on it again.
    private func endOversized(_ id: UInt32, sequence: UInt64) {
        if durableNames[id] != nil { highestCursorAcks[id] = max(highestCursorAcks[id] ?? 0, sequence) }
        endSubscription(id, code: .payloadTooLarge,
                        message: "message \(sequence) does not fit this connection's max_frame_size of \(peerMaxFrameSize) bytes; "
                            + "the subscription ended (a durable cursor moved past it)")
    }

    /// Replayed messages go to one subscription each, so each MSG is written
    /// straight from the store's record into the outbound buffer: no shared
    /// tail (``PreparedMessage``) to allocate, fill and free per message.
    private func sendReplayed(_ messages: [StoredMessage], subscription id: UInt32) -> Int {
        var sent = 0
        for message in messages {
            do {
                try PreparedMessage.writeFrame(
                    subscriptionID: id, replayed: true, sequence: message.sequence, timestamp: message.timestamp,
                    topic: message.topic.value, publisherPrincipal: message.publisher.principal,
                    publisherFingerprint: message.publisher.fingerprint,
                    headers: Headers(message.headers), payload: message.payload,
                    into: &outbound, maxFrameSize: peerMaxFrameSize)
                sent += 1
            } catch {
                endOversized(id, sequence: message.sequence)
                break
            }
        }
        return sent
    }
}
