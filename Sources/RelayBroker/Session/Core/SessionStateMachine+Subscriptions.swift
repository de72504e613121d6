import RelayCore
import RelayStore
import RelayWire

extension SessionStateMachine {
    /// Opens a subscription. The checks run in the spec's order (§4.6):
    /// duplicate id, subscription limit, the wire layer's grammar checks
    /// (`.failure`), policy, durable owner and claim, the durable's stored
    /// filter, the owner's durable limit (a new name only), start position.
    /// The last three need the log (``StartLookup``): made inline, or off
    /// the loop when the log's reads wait on a service.
    mutating func subscribe<Env: SessionEnvironment>(_ id: UInt32, _ checked: Result<SubscribeRequest, OperationError>,
                                                     _ env: Env) {
        guard case .active(let session) = state else { return requestBeforeOpening("SUB", env) }
        func refuse(_ code: RelayErrorCode, _ message: String) {
            env.run(.send(.subscribeRefused(subscriptionID: id, code, message)))
        }
        guard session.subscriptions[id] == nil else {
            return refuse(.duplicateSubscriptionID, "subscription id \(id) is already open on this connection")
        }
        guard session.subscriptions.count < limits.maxSubscriptions else {
            return refuse(.tooManySubscriptions, "at most \(limits.maxSubscriptions) subscriptions per connection")
        }
        let request: SubscribeRequest
        switch checked {
        case .success(let r): request = r
        case .failure(let error): return refuse(error.code, error.message)
        }
        let filter = request.filter
        let decision = session.permissions.canSubscribe(filter)
        guard decision.isAllowed else {
            env.audit("subscribe_denied", ["principal": session.principal, "serial": session.identity.serialNumber,
                                           "filter": filter.value, "rule": decision.rule ?? "(no rule allows it)"])
            return refuse(.notAuthorized, "not allowed to subscribe to \(filter)")
        }
        // Durable names belong to the workload (IdentityScope.durableOwner),
        // never to the principal, which different certificates can share.
        let durable = request.durableName
        var owner: DurableOwner?
        if !durable.isEmpty {
            guard let durableOwner = session.durableOwner else {
                return refuse(.invalidStartPosition, "durable subscriptions are not available for this certificate")
            }
            guard env.claimDurable(owner: durableOwner, name: durable) else {
                if let mine = session.subscriptions.entries.values.first(where: { $0.durableName == durable }) {
                    return refuse(.durableInUse, "durable subscription \"\(durable)\" is attached to subscription \(mine.id) on "
                        + "this connection; UNSUB it first")
                }
                return refuse(.durableInUse, "durable subscription \"\(durable)\" is attached to another connection")
            }
            owner = durableOwner
        }
        let lookup = StartLookup(owner: owner, durableName: durable, principal: session.principal, filter: filter,
                                 start: request.start, maxDurables: limits.maxDurables)
        let pending = PendingSubscription(id: id, request: request, owner: owner)
        guard !env.readsWait else {
            // A log whose reads wait on a service: the look-ups run off the
            // loop, and no other request of this session is read until they
            // are answered (``startLookedUp(_:_:_:)``), so what the client
            // sent after the SUB is handled after its SUBACK, as inline.
            pendingSubscription = pending
            env.run(.lookUpStart(subscriptionID: id, lookup))
            return
        }
        let answer: Result<StartAnswer, StoreError>
        do { answer = .success(try env.lookUpStart(lookup)) } catch { answer = .failure(error) }
        openSubscription(pending, answer, in: session, env)
    }

    /// The look-ups of the SUB the session holds its requests for were
    /// answered (off the loop): it opens or is refused as it would have been
    /// inline, then the session reads on. After a reload in between, the
    /// policy it is opened under is the new one. A session that ended
    /// meanwhile released the durable name at tear-down: nothing to do.
    mutating func startLookedUp<Env: SessionEnvironment>(_ id: UInt32, _ answer: Result<StartAnswer, StoreError>, _ env: Env) {
        guard let session, let pending = pendingSubscription, pending.id == id else { return }
        pendingSubscription = nil
        let decision = session.permissions.canSubscribe(pending.request.filter)
        guard decision.isAllowed else {
            if let owner = pending.owner { env.run(.releaseDurable(owner: owner, name: pending.request.durableName)) }
            env.audit("subscribe_denied", ["principal": session.principal, "serial": session.identity.serialNumber,
                                           "filter": pending.request.filter.value,
                                           "rule": decision.rule ?? "(no rule allows it)"])
            env.run(.send(.subscribeRefused(subscriptionID: id, .notAuthorized,
                                            "not allowed to subscribe to \(pending.request.filter)")))
            env.run(.resumeReading)
            return
        }
        openSubscription(pending, answer, in: session, env)
        env.run(.resumeReading)
    }

    /// Opens the subscription from its look-ups' answer, or refuses it: the
    /// durable's stored filter, the owner's durable limit, a failed look-up,
    /// live delivery that cannot start (§4.6).
    private func openSubscription<Env: SessionEnvironment>(_ pending: PendingSubscription, _ answer: Result<StartAnswer, StoreError>,
                                                           in session: ActiveSession, _ env: Env) {
        let (id, request, owner) = (pending.id, pending.request, pending.owner)
        let filter = request.filter
        let durable = request.durableName
        func refuse(_ code: RelayErrorCode, _ message: String) {
            if let owner { env.run(.releaseDurable(owner: owner, name: durable)) }
            env.run(.send(.subscribeRefused(subscriptionID: id, code, message)))
        }
        var start: UInt64?
        var resumedCursor: UInt64?
        var notBefore: UInt64?  // a `time` start: pass over what was committed before it (§4.6)
        var notice = ""
        switch answer {
        case .failure(let error):
            return refuse(error.relayErrorCode, "could not resolve the start position: \(error)")
        case .success(.resumed(let resumed)):
            // An existing durable is never moved silently (§4.6): another
            // filter (stored with the cursor, so it survives a restart) is
            // refused, an explicit start is ignored and said so.
            let cursor = resumed.sequence
            if let stored = resumed.filter, stored != filter.value {
                return refuse(.durableFilterMismatch, "durable \"\(durable)\" exists with filter \"\(stored)\" (cursor at "
                    + "\(cursor)); subscribe to \"\(stored)\", use another durable name, or delete it with "
                    + "`relayctl durable delete \(durable)` to start over with \"\(filter)\"")
            }
            if request.start != .latest {
                notice = "durable \"\(durable)\" resumes after its cursor at \(cursor); the requested start position "
                    + "was ignored (delete the durable with `relayctl durable delete \(durable)` to start elsewhere)"
            }
            start = cursor + 1
            resumedCursor = cursor
        case .success(.overDurableLimit(let held, let counted)):
            return refuse(.tooManyDurables, Self.tooManyDurablesText(durable, held: held, limit: limits.maxDurables, owner: counted))
        case .success(.fresh(let first)):
            start = first
            if case .time(let t) = request.start { notBefore = t }
        case .success(.liveDeliveryUnavailable(let error)):
            return refuse(error.relayErrorCode, Self.liveDeliveryRefusal(error))
        }
        let watermark: UInt64
        do {
            watermark = try env.route(filter, subscriptionID: id)
        } catch {
            return refuse(error.relayErrorCode, Self.liveDeliveryRefusal(error))
        }
        let first = start ?? watermark + 1
        let delivery = SubscriptionDelivery(id: id, filter: filter, start: first, watermark: watermark,
                                            credit: UInt64(request.initialCredit), bufferLimit: limits.subscriptionBuffer,
                                            budget: session.deliveryBudget, notBefore: notBefore)
        let entry = SubscriptionEntry(delivery: delivery, durableName: owner == nil ? nil : durable, ackMode: request.ackMode)
        // A resumed durable re-commits its cursor when it detaches, so its name
        // is released only after every commit queued before that one, among
        // them the one storing an adopted filter (resumeCursor): the next SUB
        // of the name then reads the stored filter, not the record without one.
        entry.highestAck = resumedCursor
        session.subscriptions.insert(entry)
        metrics.subscriptions.increment()
        env.run(.send(.subscribed(subscriptionID: id, firstSequence: first, notice: notice)))
        env.run(.schedulePump)
    }

    /// SUBACK text when live delivery cannot start. A cluster edge opens its
    /// tail of the shared log for its first subscription; without the log's
    /// service that is refused, typed.
    static func liveDeliveryRefusal(_ error: StoreError) -> String {
        guard case .unavailable(let why) = error else { return "could not start live delivery: \(error)" }
        return "could not start live delivery: this edge follows the shared log (NATS JetStream) from its first "
            + "subscription, and the log did not answer (\(why)); retry once the NATS cluster has a quorum again"
    }

    /// SUBACK `too_many_durables`: how many, the limit, and what to do.
    /// Names only the client's own durable and owner digest.
    static func tooManyDurablesText(_ durable: String, held: Int, limit: Int, owner: DurableOwner) -> String {
        let owner = Hex.encode(owner.digest).prefix(16)
        return "durable \"\(durable)\" would be a new durable subscription, and this identity already holds "
            + "\(held > limit ? "more than \(limit)" : "\(held)") (stored cursors and attached ones; at most \(limit) per "
            + "identity, [limits] max_durables); attach one of those again, delete the ones no longer needed with "
            + "`relayctl durable delete <name> --owner \(owner)` (`relayctl durables` lists them), or ask the operator "
            + "to raise max_durables"
    }

    /// UNSUB: no answer; an id that is not open is ERR `unknown_subscription` (§4.8).
    mutating func unsubscribe<Env: SessionEnvironment>(_ id: UInt32, _ env: Env) {
        guard case .active(let session) = state else { return requestBeforeOpening("UNSUB", env) }
        guard session.subscriptions[id] != nil else { return unknownSubscription(id, "UNSUB", env) }
        endSubscription(id, in: session, code: nil, message: "", env)
    }

    /// CREDIT (§4.9): outstanding credit above 2^32 − 1 is `credit_overflow`.
    mutating func grantCredit<Env: SessionEnvironment>(_ id: UInt32, _ credit: UInt32, _ env: Env) {
        guard case .active(let session) = state else { return requestBeforeOpening("CREDIT", env) }
        guard let entry = session.subscriptions[id] else { return unknownSubscription(id, "CREDIT", env) }
        let outstanding = entry.delivery.credit + UInt64(credit)  // both below 2^33: no overflow
        guard outstanding <= UInt64(UInt32.max) else {
            return terminate(.creditOverflow, "CREDIT \(credit) on subscription \(id) would make \(outstanding) MSG "
                + "outstanding, above 2^32-1; grant credit as messages are used", env)
        }
        entry.delivery.grant(UInt64(credit))
        session.subscriptions.markReady(entry)
        env.run(.schedulePump)
    }

    /// ACK (§4.10): moves a durable cumulative subscription's cursor, never
    /// past what was delivered; ignored for `ack_mode` none and ephemeral ones.
    mutating func acknowledge<Env: SessionEnvironment>(_ id: UInt32, through sequence: UInt64, _ env: Env) {
        guard case .active(let session) = state else { return requestBeforeOpening("ACK", env) }
        guard let entry = session.subscriptions[id] else { return unknownSubscription(id, "ACK", env) }
        guard entry.durableName != nil, entry.ackMode == .cumulative else { return }
        session.subscriptions.advanceCursor(entry, to: min(sequence, entry.delivery.nextSequence &- 1))
    }

    /// An id that is not open: never opened, refused, ended by UNSUB or by
    /// the broker (§4.8-4.10). Operation-level: the connection stays open.
    private func unknownSubscription<Env: SessionEnvironment>(_ id: UInt32, _ operation: String, _ env: Env) {
        env.run(.send(.subscriptionEnded(subscriptionID: id, .unknownSubscription,
                                         "\(operation) for subscription \(id), which is not open on this connection")))
    }

    /// Ends subscription `id`, telling the client `code` when the broker ended it.
    /// `commitCursor` false: the durable's cursor is not committed at the
    /// detach (it was lost: deleted, or moved by another edge).
    func endSubscription<Env: SessionEnvironment>(_ id: UInt32, in session: ActiveSession, code: RelayErrorCode?,
                                                  message: String, commitCursor: Bool = true, _ env: Env) {
        guard let entry = session.subscriptions.remove(id) else { return }
        release(entry, owner: session.durableOwner, commitCursor: commitCursor, env)
        if let code { env.run(.send(.subscriptionEnded(subscriptionID: id, code, message))) }
    }

    /// A cursor commit of durable `name` found it deleted (`durable_deleted`)
    /// or moved by another edge (`durable_in_use`): the subscription attached
    /// to it ends with that code, its cursor not committed again.
    mutating func durableCursorLost<Env: SessionEnvironment>(owner: DurableOwner, name: String, code: RelayErrorCode,
                                                             message: String, _ env: Env) {
        guard case .active(let session) = state, session.durableOwner == owner else { return }
        for id in session.subscriptions.ids.sorted() where session.subscriptions[id]?.durableName == name {
            endSubscription(id, in: session, code: code, message: message, commitCursor: false, env)
        }
    }

    /// One cursor commit per moved durable cursor.
    func commitCursors<Env: SessionEnvironment>(_ session: ActiveSession, _ env: Env) {
        // No moved cursor (every read batch of most sessions): nothing to
        // commit, and the owner is not worked out for it.
        guard session.subscriptions.hasPendingAcks, let owner = session.durableOwner else { return }
        session.subscriptions.takePendingAcks { name, filter, sequence in
            env.run(.commitCursor(owner: owner, name: name, sequence: sequence, filter: filter.value))
        }
    }
}
