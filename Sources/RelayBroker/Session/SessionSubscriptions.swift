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
        do {
            if let owner, let cursor = try resumePosition(owner: owner, name: durable) {
                start = cursor + 1
            } else {
                switch request.start {
                case .latest: start = nil  // from the watermark on
                case .sequence(let s): start = s  // at least 1: validated above
                case .time, .earliest, .last: start = try broker.store.startSequence(request.start, filter: filter)
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
                                                 bufferLimit: broker.limits.subscriptionBuffer)
        if !durable.isEmpty { durableNames[id] = durable }
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
        // UNSUB gets no reply (Protocol/relay-v1.md); an unknown id is ignored.
        guard subscriptions[id] != nil else { return }
        endSubscription(id, code: nil, message: "")
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
        broker.metrics.subscriptions.decrement()
        // A subscription the broker ends is reported with ERR carrying its id.
        if let code { write(.error(ErrorFrame(code: code, subscriptionID: id, message: message))) }
    }

    func handleCredit(_ credit: Credit) {
        guard subscriptions[credit.subscriptionID] != nil else { return }
        subscriptions[credit.subscriptionID]?.grant(UInt64(credit.credit))
        schedulePump()
    }

    func handleAck(_ ack: Ack) {
        guard let sub = subscriptions[ack.subscriptionID], durableNames[ack.subscriptionID] != nil else { return }
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
        guard case .active = state else { return }
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
        guard case .active = state, let context else { return }
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
        }
        if written > 0 {
            broker.metrics.deliveries.increment(by: Int64(written))
            flushOutbound()
        }
        if written >= budget { schedulePump() }
    }

    private func send(_ messages: [RoutedMessage], subscription id: UInt32, replayed: Bool) -> Int {
        var sent = 0
        for message in messages {
            do {
                try message.prepared.write(subscriptionID: id, replayed: replayed, into: &outbound, maxFrameSize: peerMaxFrameSize)
                sent += 1
            } catch {
                endSubscription(id, code: .payloadTooLarge, message: "message \(message.sequence) does not fit this client's frame limit")
                break
            }
        }
        return sent
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
                endSubscription(id, code: .payloadTooLarge, message: "message \(message.sequence) does not fit this client's frame limit")
                break
            }
        }
        return sent
    }
}
