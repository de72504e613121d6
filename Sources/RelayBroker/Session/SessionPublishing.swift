import NIOCore
import RelayCore
import RelayPolicy
import RelayStore
import RelayWire

extension SessionHandler {
    var publishLimits: PublishLimits {
        PublishLimits(maxPayload: broker.limits.maxPayload, maxHeaders: broker.limits.maxHeaders)
    }

    /// Validates and authorises one PUB and queues it for the read batch's
    /// single append. Refusals answer PUBERR at once; the connection stays.
    func handlePublish(_ publish: Publish) {
        let topic: Topic
        do {
            topic = try OperationValidation.validate(publish, limits: publishLimits)
        } catch {
            refusePublish(publish.publishID, error.code, error.message)
            return
        }
        guard publishCache?.isAllowed(topic) == true else {
            let decision = publishCache?.decision(topic)
            broker.audit?.record("publish_denied", ["principal": principal, "serial": identity?.serialNumber ?? "",
                                                    "topic": topic.value, "rule": decision?.rule ?? "(no rule allows it)"])
            refusePublish(publish.publishID, .notAuthorized, "not allowed to publish to \(topic)")
            return
        }
        guard inFlight < broker.limits.maxInFlightPublishes else {
            refusePublish(publish.publishID, .tooManyInFlight,
                          "more than \(broker.limits.maxInFlightPublishes) publishes await their PUBACK")
            return
        }
        // Keyed by the certificate as well as the session and publish ids
        // (Protocol/relay-v1.md §4.3): a session id is not a secret, so
        // another identity reusing it must not hit this one's entries.
        var producerKey: ProducerKey?
        if producerSession != .none {
            producerKey = ProducerKey(publisher: publisher.fingerprint, sessionHigh: producerSession.high,
                                      sessionLow: producerSession.low, publishID: publish.publishID)
        }
        pendingAppends.append(NewMessage(topic: topic, payload: publish.payload, headers: HeaderBlock(publish.headers),
                                         publisher: publisher,
                                         producerKey: producerKey))
        pendingPublishIDs.append(publish.publishID)
        inFlight += 1
        if inFlight >= broker.limits.maxInFlightPublishes { pauseReading() }
        // A read burst can carry a whole window of PUBs. Handing them to the
        // store in slices lets the writer commit the first slice while this
        // loop still decodes the rest, so commit, PUBACKs, the client's refill
        // and decoding overlap instead of taking turns for the whole window.
        // (On a machine busy with other work the extra commits cost more than
        // the overlap gains: 88-98k -> 70-81k msg/s in one such A/B run; on
        // a quiet one, 1:1 fsync 275-302k -> 326-364k.)
        if pendingAppends.count >= Self.appendSliceSize {
            commitPendingCursorAcks()  // the ACK-before-PUB barrier, as at the end of a read
            submitPendingAppends()
        }
    }

    /// PUBs per append handed to the store in the middle of a read burst.
    static let appendSliceSize = 256

    private func refusePublish(_ id: UInt64, _ code: RelayErrorCode, _ message: String) {
        broker.metrics.publishesRefused.increment()
        write(.publishError(PublishError(publishID: id, code: code, message: message)))
    }

    /// Hands every PUB of this read batch to the store as one append. The
    /// completion runs on the writer thread after the durable commit: it
    /// sends the PUBACKs to this session's loop and hands the batch to the
    /// router's serial queue (one hop each per commit, not per message), so
    /// the writer goes straight back to committing. The router's queue runs
    /// in the order the single writer made the hops, i.e. commit order: it
    /// encodes and fans out the new messages (``Router/routeCommitted(_:_:metrics:)``).
    func submitPendingAppends() {
        guard !pendingAppends.isEmpty, let proxy else { return }
        let messages = pendingAppends
        let ids = pendingPublishIDs
        pendingAppends.removeAll(keepingCapacity: true)
        pendingPublishIDs.removeAll(keepingCapacity: true)
        let router = broker.router
        let metrics = broker.metrics
        let submitted = NIODeadline.now()
        broker.store.append(messages) { results in
            metrics.commitLatency.recordNanoseconds((NIODeadline.now() - submitted).nanoseconds)
            // The batch is on disk: the PUBACKs go first, straight to the
            // session's loop, so the publisher can refill its window while the
            // router is still encoding and fanning out. Nothing orders a PUBACK
            // against the fan-out of its message (Protocol/relay-v1.md); the
            // fan-out keeps commit order on the router's serial queue.
            proxy.onLoop { session in session.completePublishes(ids: ids, results: results) }
            router.routeCommitted(messages, results, metrics: metrics)
        }
    }

    /// PUBACK or PUBERR for each publish of one append, in order.
    func completePublishes(ids: [UInt64], results: [Result<AppendReceipt, StoreError>]) {
        for (id, result) in zip(ids, results) {
            switch result {
            case .success(let receipt):
                write(.publishAck(PublishAck(publishID: id, sequence: receipt.sequence, timestamp: receipt.timestamp,
                                             duplicate: receipt.duplicate)))
            case .failure(let error):
                refusePublish(id, error.relayErrorCode, "\(error)")
            }
        }
        inFlight -= ids.count
        flushOutbound()
        if clientSaidBye {
            finishByeIfDrained()
        } else if shutdownPromise != nil {
            finishShutdownIfDrained()
        } else if inFlight <= broker.limits.maxInFlightPublishes / 2 {
            resumeReading()
        }
    }

    /// Graceful shutdown: read no more frames, let the in-flight commits
    /// finish and their PUBACKs go out, then say `server_shutting_down`.
    func beginShutdown(_ promise: EventLoopPromise<Void>) {
        guard case .active = state else {
            terminate(.serverShuttingDown, "the broker is shutting down")
            promise.succeed()
            return
        }
        shutdownPromise = promise
        pauseReading()
        submitPendingAppends()
        finishShutdownIfDrained()
    }

    /// After the client's BYE: once every PUB read before it is answered,
    /// BYE and close (§4.14). tearDown completes a shutdown waiting meanwhile.
    func finishByeIfDrained() {
        guard clientSaidBye, inFlight == 0, case .active = state, let context else { return }
        write(.bye(.normal))
        flushOutbound()
        state = .closed
        context.close(promise: nil)
    }

    private func finishShutdownIfDrained() {
        guard inFlight == 0, let promise = shutdownPromise else { return }
        shutdownPromise = nil
        terminate(.serverShuttingDown, "the broker is shutting down; reconnect after it restarts")
        promise.succeed()
    }
}
