import RelayCore
import RelayStore
import RelayWire

extension SessionStateMachine {
    /// One publish, checked by the wire layer (`.failure`: refused there).
    /// Authorises it and queues it for the read batch's single append.
    /// Refusals are answered at once; the connection stays.
    mutating func publish<Env: SessionEnvironment>(_ publishID: UInt64, _ checked: Result<PublishRequest, OperationError>,
                                                   _ env: Env) {
        guard case .active(let session) = state else { return requestBeforeOpening("PUB", env) }
        let request: PublishRequest
        switch checked {
        case .success(let r): request = r
        case .failure(let error): return refusePublish(publishID, error.code, error.message, env)
        }
        guard session.publishCache.isAllowed(request.topic) else {
            let decision = session.publishCache.decision(request.topic)
            env.audit("publish_denied", ["principal": session.principal, "serial": session.identity.serialNumber,
                                         "topic": request.topic.value, "rule": decision.rule ?? "(no rule allows it)"])
            return refusePublish(publishID, .notAuthorized, "not allowed to publish to \(request.topic)", env)
        }
        guard session.window.inFlight < limits.maxInFlightPublishes else {
            return refusePublish(publishID, .tooManyInFlight,
                                 "more than \(limits.maxInFlightPublishes) publishes await their PUBACK", env)
        }
        // Keyed by the certificate as well as the session and publish ids
        // (Protocol/relay-v1.md §4.3): a session id is not a secret, so
        // another identity reusing it must not hit this one's entries.
        var producerKey: ProducerKey?
        if session.producerSession != .none {
            producerKey = ProducerKey(publisher: session.publisher.fingerprint, sessionHigh: session.producerSession.high,
                                      sessionLow: session.producerSession.low, publishID: publishID)
        }
        session.window.pending.append(NewMessage(topic: request.topic, payload: request.payload, headers: request.headers,
                                                 publisher: session.publisher, producerKey: producerKey))
        session.window.pendingIDs.append(publishID)
        session.window.inFlight += 1
        if session.window.inFlight >= limits.maxInFlightPublishes, !session.window.paused {
            session.window.paused = true
            env.run(.pauseReading)
        }
        // A read burst can carry a whole window of PUBs. Handing them to the
        // store in slices lets the writer commit the first slice while this
        // loop still decodes the rest, so commit, PUBACKs, the client's refill
        // and decoding overlap instead of taking turns for the whole window.
        // (On a machine busy with other work the extra commits cost more than
        // the overlap gains: 88-98k -> 70-81k msg/s in one such A/B run; on
        // a quiet one, 1:1 fsync 275-302k -> 326-364k.)
        if session.window.pending.count >= limits.appendSliceSize { readBatchEnded(env) }
    }

    private func refusePublish<Env: SessionEnvironment>(_ id: UInt64, _ code: RelayErrorCode, _ message: String, _ env: Env) {
        metrics.publishesRefused.increment()
        env.run(.send(.publishRefused(publishID: id, code, message)))
    }

    /// The end of a read batch (or of an append slice, or the start of a
    /// drain). Cursor commits first: the log commits in queue order, so an
    /// ACK read before a PUB is durable once that PUB's PUBACK is sent (a
    /// client can use a publish as a barrier for its ACKs). Then every PUB
    /// of the batch goes to the log as one append.
    mutating func readBatchEnded<Env: SessionEnvironment>(_ env: Env) {
        guard let session else { return }
        commitCursors(session, env)
        guard !session.window.pending.isEmpty else { return }
        let messages = session.window.pending
        let ids = session.window.pendingIDs
        session.window.pending.removeAll(keepingCapacity: true)
        session.window.pendingIDs.removeAll(keepingCapacity: true)
        env.run(.append(messages, publishIDs: ids))
    }

    /// The log committed (or refused) one append: PUBACK or PUBERR for each
    /// publish, in order; then the window reopens, or a drain finishes.
    mutating func commitCompleted<Env: SessionEnvironment>(ids: [UInt64], results: [Result<AppendReceipt, StoreError>],
                                                           _ env: Env) {
        guard let session else { return }
        for (id, result) in zip(ids, results) {
            switch result {
            case .success(let receipt):
                env.run(.send(.published(publishID: id, receipt)))
            case .failure(let error):
                refusePublish(id, error.relayErrorCode, "\(error)", env)
            }
        }
        session.window.inFlight -= ids.count
        if case .draining = state {
            finishDrainIfDone(env)
        } else if session.window.paused, session.window.inFlight <= limits.maxInFlightPublishes / 2 {
            session.window.paused = false
            env.run(.resumeReading)
        }
    }
}
