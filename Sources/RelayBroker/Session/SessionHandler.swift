import Logging
import NIOCore
import RelayCore
import RelayPolicy
import RelayStore
import RelayTLS
import RelayWire

/// One client connection, from the verified TLS handshake to close.
///
/// Lives on the channel's event loop and is never touched from elsewhere:
/// the store's writer and the router reach it through ``SessionProxy``,
/// which hops onto the loop. Frames are answered by appending to one
/// outbound buffer that is written and flushed once per read batch or
/// delivery batch, so the TLS layer gets one write per flush.
///
/// It takes the decrypted bytes and decodes frames itself (``FrameAccumulator``)
/// instead of sitting behind NIO's `ByteToMessageHandler`, which boxes every
/// frame in `NIOAny` and sends it through the pipeline: 612 ns per PUB frame
/// there against 161 ns inline (relay-bench-wire), at one frame per message.
final class SessionHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = Never
    typealias OutboundOut = ByteBuffer

    enum State {
        /// TLS is still handshaking: no frame can have arrived (TLSHandler
        /// passes no bytes up before the handshake completed).
        case awaitingHandshake
        /// Verified; waiting for HELLO within the hello timeout.
        case awaitingHello(TLSHandshakeCompleted)
        case active
        /// ERR or BYE sent (or the channel went inactive): ignore everything.
        case closed
    }

    let broker: BrokerContext
    var state = State.awaitingHandshake
    var context: ChannelHandlerContext?
    var proxy: SessionProxy?
    var outbound: ByteBuffer
    /// Frames out of the bytes read; the broker-side rules (HELLO first,
    /// small frames before it, the frame size limit) are the decoder's.
    var frames: FrameAccumulator
    var helloTimer: Scheduled<Void>?
    var expiryTimer: Scheduled<Void>?

    // Established at HELLO.
    var identity: Identity?
    var peerChain: PeerCertificateChain?
    var permissions: Permissions?
    var publishCache: PublishCache?
    var principal = ""
    /// The stamp on this session's messages, fixed at HELLO: the principal
    /// and the certificate's fingerprint, which also keys its dedup entries.
    var publisher = PublisherStamp(principal: "", fingerprint: .zero)
    var producerSession = ProducerSessionID.none
    /// Whose durable cursors this session's are (IdentityScope).
    var durableOwner: DurableOwner?
    var peerMaxFrameSize = Int(FrameLayout.minimumMaxFrameSize)

    // Publishing.
    var pendingAppends: [NewMessage] = []
    var pendingPublishIDs: [UInt64] = []
    var inFlight = 0
    var readPaused = false
    var readRequestedWhilePaused = false

    // Output backpressure (SessionBackpressure.swift): true while the
    // channel's unsent bytes are above the high water mark.
    var writeBlocked = false
    var stallTimer: Scheduled<Void>?

    // For the session_closed audit event: when HELLO was accepted, and the
    // first reason the session ended (nil: the peer closed it cleanly).
    var activeSince: NIODeadline?
    var closeReason: String?
    /// Set once the client certificate verified: later TLS errors end a
    /// session instead of counting as handshake failures.
    var handshakeCompleted = false
    /// The source address whose pre-auth slot this connection holds.
    var preAuthAddress: String?
    /// In the broker's session registry (counted in max_connections).
    var registered = false

    // Subscribing.
    var subscriptions: [UInt32: SubscriptionDelivery] = [:]
    var durableNames: [UInt32: String] = [:]
    var pendingCursorAcks: [UInt32: UInt64] = [:]
    /// The highest ACK seen per durable subscription, committed or not:
    /// detaching re-commits it so the release waits for earlier commits.
    var highestCursorAcks: [UInt32: UInt64] = [:]
    /// Durable subscriptions with ack_mode none: their cursor advances as
    /// messages are sent (§4.6), not on ACK (``advanceCursorWithDelivery``).
    var cursorFollowsDelivery: Set<UInt32> = []
    var pumpScheduled = false

    // Shutdown: set while draining in-flight publishes before closing.
    var shutdownPromise: EventLoopPromise<Void>?
    /// The client sent BYE (Protocol/relay-v1.md §4.14): nothing more is read
    /// or delivered; the PUBs already read are answered, then BYE, then close
    /// (``finishByeIfDrained()``). A state-machine port: a `draining` state.
    var clientSaidBye = false

    /// ``BrokerContext/generation`` read before this connection's TLS
    /// handler was made; HELLO re-verifies the chain if a reload since changed it.
    let acceptedGeneration: UInt64

    init(broker: BrokerContext, allocator: ByteBufferAllocator, generation: UInt64 = 0) {
        self.broker = broker
        self.acceptedGeneration = generation
        self.outbound = allocator.buffer(capacity: 0)
        self.frames = FrameAccumulator(decoder: RelayFrameDecoder(role: .broker, maxFrameSize: broker.limits.maxFrameSize))
    }

    var logger: Logger { broker.logger }

    // MARK: Lifecycle

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        self.proxy = SessionProxy(handler: self, eventLoop: context.eventLoop)
        broker.metrics.connectionsAccepted.increment()
        // Until its certificate verifies, a connection holds a pre-auth slot
        // (total and per source address), not one of max_connections.
        let address = context.channel.remoteAddress?.ipAddress ?? "unknown"
        if let refusal = broker.admitPreAuth(address: address) {
            broker.metrics.preAuthRefused(limit: refusal.rawValue).increment()
            logger.debug("connection refused before TLS", metadata: ["peer": "\(address)", "limit": "\(refusal.rawValue)"])
            state = .closed
            context.close(promise: nil)
            return
        }
        preAuthAddress = address
        broker.metrics.preAuthConnections.increment()
    }

    /// Gives back the pre-auth slot (handshake done, or the connection ended).
    private func releasePreAuth() {
        guard let address = preAuthAddress else { return }
        preAuthAddress = nil
        broker.releasePreAuth(address: address)
        broker.metrics.preAuthConnections.decrement()
    }

    func channelInactive(context: ChannelHandlerContext) {
        if frames.bufferedBytes > 0, case .active = state {
            logger.debug("connection closed inside a frame", metadata: ["pending_bytes": "\(frames.bufferedBytes)"])
        }
        tearDown()
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        tearDown()
        self.context = nil
    }

    /// Releases everything the session holds in shared structures. Idempotent.
    private func tearDown() {
        shutdownPromise?.succeed()
        shutdownPromise = nil
        helloTimer?.cancel()
        expiryTimer?.cancel()
        stallTimer?.cancel()
        stallTimer = nil
        state = .closed
        recordSessionClosed()
        for (id, sub) in subscriptions {
            if let proxy { broker.router.unsubscribe(sub.filter, sink: proxy, id: id) }
            broker.metrics.subscriptions.decrement()
        }
        for (id, name) in durableNames { detachDurable(name, lastAck: highestCursorAcks[id]) }
        pendingCursorAcks.removeAll()
        highestCursorAcks.removeAll()
        cursorFollowsDelivery.removeAll()
        subscriptions.removeAll()
        durableNames.removeAll()
        releasePreAuth()
        if let proxy, registered {
            broker.unregister(proxy)
            broker.metrics.connectionsOpen.decrement()
        }
        registered = false
        proxy = nil
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard let handshake = event as? TLSHandshakeCompleted, case .awaitingHandshake = state else {
            context.fireUserInboundEventTriggered(event)
            return
        }
        state = .awaitingHello(handshake)
        handshakeCompleted = true
        releasePreAuth()
        guard let proxy, broker.register(proxy) else {
            let shuttingDown = !broker.isAccepting
            terminate(shuttingDown ? .serverShuttingDown : .tooManyConnections,
                      shuttingDown ? "the broker is shutting down" : "the broker is at max_connections authenticated sessions; retry later")
            return
        }
        registered = true
        broker.metrics.connectionsOpen.increment()
        let timeout = broker.helloTimeout
        let session = NIOLoopBound(WeakSession(self), eventLoop: context.eventLoop)
        helloTimer = context.eventLoop.scheduleTask(in: timeout) {
            session.value.handler?.terminate(.helloTimeout, "no HELLO within \(timeout.nanoseconds / 1_000_000) ms of the TLS handshake")
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        switch error {
        case let wire as WireError:
            terminate(wire.code, wire.message)
        case let tls as TLSError where handshakeCompleted:
            // The session was established: a TLS error now (most often a TCP
            // close without close_notify, e.g. a client killed with Ctrl-C)
            // ends a session; it is not a handshake failure.
            closeReason = closeReason ?? Self.sessionCloseReason(tls)
            logger.debug("session closed by a TLS error", metadata: ["error": "\(tls)", "principal": "\(principal)"])
            state = .closed
            context.close(promise: nil)
        case let tls as TLSError:
            broker.metrics.handshakeFailure(reason: Self.reasonLabel(tls)).increment()
            logger.info("TLS connection failed", metadata: ["error": "\(tls)", "peer": "\(context.remoteAddress?.description ?? "?")"])
            broker.audit?.record("connection_refused", ["peer": context.remoteAddress?.description ?? "?",
                                                        "cause": Self.reasonLabel(tls), "reason": "\(tls)"])
            state = .closed
            context.close(promise: nil)
        default:
            logger.debug("connection error", metadata: ["error": "\(error)"])
            closeReason = closeReason ?? Self.connectionErrorReason(error)
            state = .closed
            context.close(promise: nil)
        }
    }

    static func reasonLabel(_ error: TLSError) -> String {
        switch error {
        case .certificateRejected(let code, _): return "certificate_rejected_\(code)"
        case .noPeerCertificate: return "no_client_certificate"
        case .alertReceived: return "alert_received"
        case .handshakeFailed: return "handshake_failed"
        case .handshakeTimedOut: return "handshake_timeout"
        case .unexpectedEOF: return "unexpected_eof"
        default: return "other"
        }
    }

    // MARK: Frames

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .closed = state { return }  // closing: bytes still in flight are dropped, not buffered
        if clientSaidBye { return }  // the client said it sends nothing more (§4.14)
        frames.append(unwrapInboundIn(data))
        while true {
            if case .closed = state { return }  // after ERR or BYE nothing more is read
            if clientSaidBye { return }  // frames after the client's BYE are not read
            let frame: Frame
            do {
                guard let next = try frames.next() else { return }
                frame = next
            } catch {
                terminate(error.code, error.message)
                return
            }
            handle(frame)
            // A read batch of small requests (PINGs, refused PUBs) can answer
            // with as many bytes as it read: hand them to the channel as they
            // grow, so its water marks see them and reading stops in time.
            if outbound.readableBytes >= Self.midBatchFlushBytes { flushOutbound() }
        }
    }

    /// Answer bytes buffered in the session before they are flushed mid-batch.
    static let midBatchFlushBytes = 64 << 10

    private func handle(_ frame: Frame) {
        switch state {
        case .awaitingHandshake:
            // Unreachable by construction (TLSHandler forwards nothing before the
            // handshake); refuse rather than trust an unverified peer.
            terminate(.protocolViolation, "frame before the TLS handshake completed")
        case .awaitingHello(let handshake):
            guard case .hello(let hello) = frame else {
                terminate(.helloRequired, "the first frame must be HELLO, got \(frame.type)")
                return
            }
            handleHello(hello, handshake: handshake)
            if case .active = state { activeSince = .now() }
        case .active:
            handleActive(frame)
        case .closed:
            break
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        // Cursor commits first: the writer commits in queue order, so an ACK
        // read before a PUB is durable once that PUB's PUBACK is sent (a
        // client can use a publish as a barrier for its ACKs).
        commitPendingCursorAcks()
        submitPendingAppends()
        flushOutbound()
        context.fireChannelReadComplete()
    }

    private func handleActive(_ frame: Frame) {
        switch frame {
        case .publish(let publish): handlePublish(publish)
        case .subscribe(let subscribe): handleSubscribe(subscribe)
        case .unsubscribe(let id): handleUnsubscribe(id)
        case .credit(let credit): handleCredit(credit)
        case .ack(let ack): handleAck(ack)
        case .ping(let token): write(.pong(token: token))
        case .pong: break
        case .bye:
            // §4.14: answer the PUBs already read (this read's are not yet
            // handed to the store; earlier ones may await their commit), then
            // BYE, then close. Reading stops; completePublishes finishes it.
            closeReason = closeReason ?? "bye"
            clientSaidBye = true
            pauseReading()
            commitPendingCursorAcks()
            submitPendingAppends()
            finishByeIfDrained()
        case .hello:
            terminate(.protocolViolation, "HELLO was already received")
        case .welcome, .publishAck, .publishError, .subscribeAck, .message, .error:
            // The decoder refuses broker-only frames; kept exhaustive for safety.
            terminate(.protocolViolation, "\(frame.type) is sent by the broker, not by clients")
        }
    }

    // MARK: Output

    func write(_ frame: Frame) {
        do {
            try outbound.writeFrame(frame, maxFrameSize: peerMaxFrameSize)
        } catch {
            logger.error("could not encode a frame", metadata: ["frame": "\(frame.type)", "error": "\(error)"])
        }
    }

    func flushOutbound() {
        guard let context, outbound.readableBytes > 0 else { return }
        let buffer = outbound
        outbound = context.channel.allocator.buffer(capacity: 0)
        context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
    }

    /// Sends ERR and closes the connection (connection-level codes).
    func terminate(_ code: RelayErrorCode, _ message: String) {
        guard let context else { return }
        if case .closed = state { return }
        broker.metrics.refusal(code: code.name).increment()
        closeReason = closeReason ?? code.name
        logger.info("closing session", metadata: ["code": "\(code.name)", "reason": "\(message)", "principal": "\(principal)"])
        write(.error(ErrorFrame(code: code, message: message)))
        flushOutbound()
        state = .closed
        context.close(promise: nil)
    }

    // MARK: Backpressure: stop reading while too many publishes are in flight.

    func read(context: ChannelHandlerContext) {
        if readPaused || writeBlocked {
            readRequestedWhilePaused = true
        } else {
            context.read()
        }
    }

    func pauseReading() { readPaused = true }

    func resumeReading() {
        guard readPaused else { return }
        readPaused = false
        readIfRequested()
    }

    /// Issues the read NIO asked for while reading was paused, once neither
    /// the in-flight window nor the output backlog holds it back.
    func readIfRequested() {
        guard !readPaused, !writeBlocked, readRequestedWhilePaused else { return }
        readRequestedWhilePaused = false
        context?.read()
    }
}

/// A session for a timer scheduled on its loop: the timer must not keep a
/// closed session alive (tearDown cancels it, but a weak reference needs no
/// such care), and NIOLoopBound makes the capture Sendable by checking the loop.
struct WeakSession {
    weak var handler: SessionHandler?
    init(_ handler: SessionHandler) { self.handler = handler }
}
