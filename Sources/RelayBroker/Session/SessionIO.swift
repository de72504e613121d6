import Logging
import NIOCore
import RelayCore
import RelayPolicy
import RelayStore
import RelayTLS
import RelayWire

/// The ``SessionStateMachine``'s environment on a real connection: it
/// answers the machine's look-ups from the broker, encodes its outputs as
/// Relay v1 frames into one outbound buffer, and runs its actions against
/// the store and the router.
///
/// It never touches the channel while the machine is deciding (a write or a
/// close can call back into the handler, which is mid-event): closing, the
/// next delivery turn and resuming reads are only noted here, and
/// ``SessionHandler`` carries them out once the event is handled.
final class SessionIO: SessionEnvironment {
    let broker: BrokerContext
    /// ``BrokerContext/generation`` read before this connection's TLS
    /// handler was made; HELLO re-verifies the chain if a reload since changed it.
    let acceptedGeneration: UInt64
    var context: ChannelHandlerContext?
    var proxy: SessionProxy?
    var outbound: ByteBuffer
    /// The peer's frame limit: the pre-HELLO minimum until WELCOME.
    private var peerMaxFrameSize = Int(FrameLayout.minimumMaxFrameSize)

    // Noted during an event, done by the handler after it.
    var closeRequested = false
    var pumpRequested = false
    /// The requested pump is to run after the event loop served its sockets (``SessionAction/yieldPump``).
    var pumpAfterIO = false
    var resumeRequested = false
    /// A durable ``claimDurable(owner:name:)`` found still committing this
    /// connection's own detach, and that detach's cursor, for ``resumeCursor(owner:name:principal:filter:)``.
    private var reattached: (key: DurableClaims.Key, cursor: DurableCursor)?

    /// For `relayctl connections`: this connection's id, and the messages
    /// it published (acknowledged) and was sent. Plain counters: the
    /// session's loop is their only writer.
    let connectionID: UInt64
    var messagesIn: UInt64 = 0
    var messagesOut: UInt64 = 0

    init(broker: BrokerContext, allocator: ByteBufferAllocator, acceptedGeneration: UInt64) {
        self.broker = broker
        self.acceptedGeneration = acceptedGeneration
        self.connectionID = broker.admin.nextConnectionID()
        self.readsWait = broker.store.readsWaitOnService
        self.outbound = allocator.buffer(capacity: 0)
    }

    var logger: Logger { broker.logger }

    // MARK: Relay v1 output

    /// Writes `frame`, or what stands in for it when it is above the
    /// peer's limit (§2): a shortened `message`, or for an ADMINREPLY result
    /// a `payload_too_large` refusal, so every request still gets its answer.
    /// False when nothing could be written (then the caller decides).
    @discardableResult
    func write(_ frame: Frame) -> Bool {
        do {
            try outbound.writeFrame(frame, maxFrameSize: peerMaxFrameSize)
            return true
        } catch {
            if let standIn = standIn(for: frame), (try? outbound.writeFrame(standIn, maxFrameSize: peerMaxFrameSize)) != nil {
                return true
            }
            logger.error("could not encode a frame", metadata: ["frame": "\(frame.type)", "error": "\(error)"])
            return false
        }
    }

    /// Set when WELCOME did not fit the client's limit: its size. The
    /// handler then refuses the session (``SessionHandler/handleHello(_:)``).
    var unsendableWelcome: Int?

    private func standIn(for frame: Frame) -> Frame? {
        if case .adminReply(let reply) = frame, !reply.more, reply.code == 0 {
            // type, flags, request_id, code, message (str16), body: counted, not
            // encoded (a result can be above even the 64 MiB encoding limit).
            let size = 2 + 4 + 2 + 2 + reply.message.utf8.count + reply.body.readableBytes
            return Frame.adminReply(AdminReply(requestID: reply.requestID, refusal: .payloadTooLarge, message:
                "the reply is \(size) bytes, above this connection's max_frame_size of \(peerMaxFrameSize); "
                    + "announce a larger max_frame_size in HELLO (at most \(FrameLayout.maximumMaxFrameSize))"))
                .shorteningMessage(toFit: peerMaxFrameSize)
        }
        return frame.shorteningMessage(toFit: peerMaxFrameSize)
    }

    /// Output a delivery turn writes before it stops for a flush (see
    /// ``outboundFull``): 64 KiB, a few hundred small MSG frames. Flushing
    /// a whole turn at once (up to 8,192 frames, ~2 MB) had the buffers
    /// under it (this one, the TLS records) allocated at megabytes, grown by
    /// copying, freed, handed back to the kernel and faulted in again,
    /// zeroed, by the next turn: a fifth of relayd's replay profile.
    static let flushChunk = 64 << 10
    /// Capacity kept for the next event's output after a flush. A
    /// connection that delivered keeps up to this much; one that only
    /// answers small frames keeps what those needed.
    static let keptCapacity = 256 << 10

    var outboundFull: Bool { outbound.readableBytes >= Self.flushChunk }

    func flush() {
        guard let context, outbound.readableBytes > 0 else { return }
        context.writeAndFlush(NIOAny(outbound), promise: nil)
        // The TLS handler encrypts the plaintext during the flush and lets
        // go of it, so the storage is normally ours alone again: clearing
        // reuses it instead of growing a new buffer from nothing for every
        // event. (If something still holds it, clear() allocates a fresh
        // one: a ByteBuffer is a value.)
        if outbound.capacity > Self.keptCapacity {
            outbound = context.channel.allocator.buffer(capacity: 0)
        } else {
            outbound.clear()
        }
    }

    private func send(_ output: SessionOutput) {
        switch output {
        case .welcome(let version, let principal, let identity, let peerFrameLimit):
            peerMaxFrameSize = peerFrameLimit
            let limits = broker.limits
            let welcome = Frame.welcome(Welcome(version: version, maxFrameSize: UInt32(limits.maxFrameSize), maxPayload: UInt32(limits.maxPayload),
                                   maxHeaders: UInt16(clamping: limits.maxHeaders), maxInFlight: UInt32(limits.maxInFlightPublishes),
                                   maxSubscriptions: UInt32(limits.maxSubscriptionsPerConnection),
                                   dedupWindow: broker.dedupWindowNanoseconds, principal: principal, subject: identity.subject.rfc4514,
                                   fingerprint: identity.fingerprintSHA256, spiffeID: identity.spiffe?.uri ?? ""))
            if !write(welcome) { unsendableWelcome = (try? welcome.encoded().readableBytes).map { $0 - 4 } ?? 0 }
        case .published(let id, let receipt):
            messagesIn &+= 1
            // Straight to the PUBACK encoder, the bytes `Frame.encode` writes
            // for it (26 bytes always fit: a peer's limit is at least 1,024):
            // no `Frame` around each of a commit's acks.
            outbound.writePublishAck(PublishAck(publishID: id, sequence: receipt.sequence, timestamp: receipt.timestamp,
                                                duplicate: receipt.duplicate))
        case .publishRefused(let id, let code, let message):
            broker.metrics.operationRefusal(code: code.name).increment()
            write(.publishError(PublishError(publishID: id, code: code, message: message)))
        case .subscribed(let id, let first, let notice):
            write(.subscribeAck(SubscribeAck(subscriptionID: id, code: 0, firstSequence: first, message: notice)))
        case .subscribeRefused(let id, let code, let message):
            broker.metrics.operationRefusal(code: code.name).increment()
            write(.subscribeAck(.refused(subscriptionID: id, code: code, message: message)))
        case .subscriptionEnded(let id, let code, let message):
            broker.metrics.operationRefusal(code: code.name).increment()
            write(.error(ErrorFrame(code: code, subscriptionID: id, message: message)))
        case .adminEnded(let id, let code, let message):
            write(.adminReply(AdminReply(requestID: id, refusal: code, message: message)))
        }
    }

    func deliver(_ message: RoutedMessage, subscriptionID: UInt32) -> Bool {
        do {
            try message.prepared.write(subscriptionID: subscriptionID, replayed: false, into: &outbound,
                                       maxFrameSize: peerMaxFrameSize)
            messagesOut &+= 1
            return true
        } catch {
            return false
        }
    }

    /// Replayed messages go to one subscription each, so each MSG is written
    /// straight from the store's record into the outbound buffer: no shared
    /// tail (``PreparedMessage``) to allocate, fill and free per message.
    func deliverReplayed(_ message: StoredMessage, subscriptionID: UInt32) -> Bool {
        do {
            try PreparedMessage.writeFrame(
                subscriptionID: subscriptionID, replayed: true, sequence: message.sequence, timestamp: message.timestamp,
                topic: message.topic.value, publisherPrincipal: message.publisher.principal,
                publisherFingerprint: message.publisher.fingerprint,
                headers: Headers(message.headers), payload: message.payload,
                into: &outbound, maxFrameSize: peerMaxFrameSize)
            messagesOut &+= 1
            return true
        } catch {
            return false
        }
    }

    /// The replay's path: the MSG's head, then the record's fields copied
    /// straight from the store's map into the output (one copy per message).
    func deliverReplayed(_ record: borrowing StoredRecord, subscriptionID: UInt32) -> Bool {
        do {
            try PreparedMessage.writeHead(subscriptionID: subscriptionID, replayed: true, sequence: record.sequence,
                                          timestamp: record.timestamp, fieldsSize: record.deliveryFieldsSize,
                                          into: &outbound, maxFrameSize: peerMaxFrameSize)
        } catch {
            return false
        }
        record.writeDeliveryFields(into: &outbound)
        messagesOut &+= 1
        return true
    }

    var canDeliver: Bool { context?.channel.isWritable ?? false }

    // MARK: Actions

    func run(_ action: SessionAction) {
        switch action {
        case .send(let output):
            send(output)
        case .close(.error(let code, let message)):
            write(.error(ErrorFrame(code: code, message: message)))
            closeRequested = true
        case .close(.goodbye):
            write(.bye(.normal))
            closeRequested = true
        case .append(let messages, let ids):
            append(messages, ids: ids)
        case .commitCursor(let owner, let name, let sequence, let filter):
            broker.admin.durableAcknowledged(owner: owner, name: name)
            let logger = self.logger, proxy = self.proxy
            broker.store.commitCursor(owner: owner, name: name, sequence: sequence, filter: filter) { result in
                guard case .failure(let error) = result else { return }
                switch error {
                case .durableDeleted, .durableConflict:
                    // A shared log's cursor deleted or moved by another edge: the subscription ends (the log said why).
                    proxy?.onLoop { session in session.durableCursorLost(owner: owner, name: name, error: error) }
                default:
                    logger.error("durable cursor commit failed", metadata: ["name": "\(name)", "error": "\(error)"])
                }
            }
        case .detachDurable(let owner, let name, let lastAck, let filter):
            detach(owner: owner, name: name, lastAck: lastAck, filter: filter)
        case .releaseDurable(let owner, let name):
            broker.releaseDurable(owner: owner, name: name)
        case .lookUpStart(let id, let lookup):
            lookUpOffLoop(id, lookup)
        case .readReplay(let id, let read):
            readOffLoop(id, read)
        case .unroute(let filter, let id):
            if let proxy { broker.router.unsubscribe(filter, sink: proxy, id: id) }
        case .pauseReading:
            break  // SessionHandler.read(context:) asks the machine
        case .resumeReading:
            resumeRequested = true
        case .schedulePump:
            pumpRequested = true
        case .yieldPump:
            pumpRequested = true
            pumpAfterIO = true
        }
    }

    /// Hands one append to the store. The completion runs on the writer
    /// thread after the durable commit: it sends the answers to this
    /// session's loop and hands the batch to the router's serial queue (one
    /// hop each per commit, not per message), so the writer goes straight
    /// back to committing. The router's queue runs in the order the single
    /// writer made the hops, i.e. commit order: it encodes and fans out
    /// (``Router/routeCommitted(_:_:metrics:)``).
    private func append(_ messages: [NewMessage], ids: [UInt64]) {
        guard let proxy else { return }
        let router = broker.router
        let metrics = broker.metrics
        let routes = broker.routesCommittedAppends
        let health = broker.storeHealth
        let submitted = NIODeadline.now()
        broker.store.append(messages) { results in
            metrics.commitLatency.recordNanoseconds((NIODeadline.now() - submitted).nanoseconds)
            health.record(results)
            // The PUBACKs go first, straight to the session's loop, so the
            // publisher can refill its window while the router is still
            // encoding and fanning out. Nothing orders a PUBACK against the
            // fan-out of its message (Protocol/relay-v1.md).
            proxy.onLoop { session in session.commitCompleted(ids: ids, results: results) }
            if routes { router.routeCommitted(messages, results, metrics: metrics) }
            else { Router.countCommitted(messages, results, metrics: metrics) }
        }
    }

    /// Lets go of a durable name after committing its last cursor position.
    /// The commit queues behind any earlier cursor commit on the store's
    /// writer, and the name is released only once it is done, so a client
    /// that reconnects at once resumes after it rather than from an older cursor.
    private func detach(owner: DurableOwner, name: String, lastAck: UInt64?, filter: String) {
        let broker = self.broker, logger = self.logger
        guard let lastAck else { return broker.releaseDurable(owner: owner, name: name) }
        let detach = broker.detachingDurable(owner: owner, name: name, cursor: DurableCursor(sequence: lastAck, filter: filter))
        broker.store.commitCursor(owner: owner, name: name, sequence: lastAck, filter: filter) { result in
            switch result {
            case .success: break
            case .failure(let error) where error.relayErrorCode == .durableDeleted || error.relayErrorCode == .durableInUse:
                logger.notice("durable cursor not stored at detach", metadata: ["name": "\(name)", "reason": "\(error)"])
            case .failure(let error):
                logger.error("durable cursor commit failed", metadata: ["name": "\(name)", "error": "\(error)"])
            }
            broker.durableDetached(owner: owner, name: name, detach: detach)
        }
    }

    func audit(_ event: String, _ fields: KeyValuePairs<String, any Sendable>) {
        broker.audit?.record(event, fields)
    }

    // MARK: Look-ups

    func reverifyIfReloaded(_ chain: PeerCertificateChain) -> TLSError? {
        // The handshake may have been verified against the CA/CRL set a reload
        // has since replaced (it raced the reload, which re-evaluates only
        // registered, active sessions): verify the chain again before admitting.
        guard broker.generation != acceptedGeneration else { return nil }
        do {
            try broker.tls.current.verify(chain)
            return nil
        } catch {
            return error
        }
    }

    func permissions(for identity: Identity) -> Permissions { broker.policy.permissions(for: identity) }

    func claimDurable(owner: DurableOwner, name: String) -> Bool {
        switch broker.claimDurable(owner: owner, name: name, holder: connectionID) {
        case .claimed:
            reattached = nil
            return true
        case .reattached(let cursor):
            reattached = (DurableClaims.Key(owner: owner, name: name), cursor)
            return true
        case .inUse:
            return false
        }
    }

    /// The log's, read once: the machine asks at every delivery turn.
    let readsWait: Bool

    /// The look-ups of a SUB, with the cursor ``claimDurable(owner:name:)``
    /// found this connection's own detach still committing (taken: it
    /// answers this SUB only).
    private func takeStartLookups() -> BrokerStartLookups {
        defer { reattached = nil }
        return BrokerStartLookups(broker: broker, reattached: reattached)
    }

    func durablesHeld(owner: DurableOwner, besides name: String, upTo limit: Int) throws(StoreError) -> Int {
        try BrokerStartLookups(broker: broker, reattached: nil).durablesHeld(owner: owner, besides: name, upTo: limit)
    }

    func resumeCursor(owner: DurableOwner, name: String, principal: String, filter: String) throws(StoreError) -> DurableCursor? {
        try takeStartLookups().resumeCursor(owner: owner, name: name, principal: principal, filter: filter)
    }

    func startSequence(_ start: StartPosition, filter: TopicFilter) throws(StoreError) -> UInt64 {
        try BrokerStartLookups(broker: broker, reattached: nil).startSequence(start, filter: filter)
    }

    /// Makes a SUB's look-ups on the broker's runner, and hands the answer
    /// back to this session's loop. A session gone by then finds nothing to
    /// do (its tear-down released the durable name).
    private func lookUpOffLoop(_ id: UInt32, _ lookup: StartLookup) {
        let lookups = takeStartLookups()
        guard let proxy else { return }
        let router = broker.router
        broker.offLoopReads.run({ () throws(StoreError) -> (answer: StartAnswer, holdsTail: Bool) in
            let answer = try lookups.lookUpStart(lookup)
            guard answer.opens(filter: lookup.filter) else { return (answer, false) }
            // The shared log's tail too, if this edge has no subscription
            // yet: opening it asks the log's service (routing would, on the
            // loop). It stays open for this SUB until released below.
            do throws(StoreError) {
                return (answer, try router.prepareLiveTail())
            } catch {
                return (.liveDeliveryUnavailable(error), false)
            }
        }) { looked in
            proxy.onLoop { session in
                session.startLookedUp(id, looked.map { $0.answer })
                // After the routing: a SUB that subscribed nothing lets the tail close after tail_idle.
                if case .success(let done) = looked, done.holdsTail { router.releasePreparedTail() }
            }
        }
    }

    /// Reads a replay's next batch on the broker's off-loop threads and
    /// hands it back to this session's loop.
    private func readOffLoop(_ id: UInt32, _ read: ReplayRead) {
        guard let proxy else { return }
        let store = broker.store
        broker.offLoopReads.run({ () throws(StoreError) -> ReadBatch in
            // maxScan as inline (``read(from:filter:maxMessages:maxBytes:)``).
            try store.read(from: read.from, filter: read.filter, maxMessages: read.maxMessages, maxBytes: read.maxBytes,
                           maxScan: 65_536)
        }) { batch in
            proxy.onLoop { session in session.replayRead(id, read, batch) }
        }
    }

    func route(_ filter: TopicFilter, subscriptionID: UInt32) throws(StoreError) -> UInt64 {
        guard let proxy else { return broker.router.watermark }  // torn down: nothing will be delivered
        return try broker.router.subscribe(filter, sink: proxy, id: subscriptionID)
    }

    func visit(from: UInt64, filter: TopicFilter, maxMessages: Int, maxBytes: Int,
               _ body: (borrowing StoredRecord) -> Bool) throws(StoreError) -> ReadProgress {
        try broker.store.visit(from: from, filter: filter, maxMessages: maxMessages, maxBytes: maxBytes, maxScan: 65_536, body)
    }

    func read(from: UInt64, filter: TopicFilter, maxMessages: Int, maxBytes: Int) throws(StoreError) -> ReadBatch {
        // maxScan bounds one read's walk over non-matching messages; a turn
        // whose read sent nothing ends there and the next runs after the
        // event loop's sockets (`pump`, ``SessionAction/yieldPump``), so a
        // sparse wildcard replay does not hold the loop for the whole log.
        try broker.store.read(from: from, filter: filter, maxMessages: maxMessages, maxBytes: maxBytes, maxScan: 65_536)
    }
}
