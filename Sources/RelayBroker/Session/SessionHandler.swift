import Foundation
import Logging
import NIOCore
import RelayCore
import RelayPolicy
import RelayStore
import RelayTLS
import RelayWire

/// One client connection, from the verified TLS handshake to close: the
/// NIO and Relay v1 adapter around ``SessionStateMachine``, which makes
/// every decision. This class turns channel events, frames and timers into
/// the machine's events, and ``SessionIO`` runs the machine's actions.
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

    let broker: BrokerContext
    var machine: SessionStateMachine
    let io: SessionIO
    /// Frames out of the bytes read; the broker-side rules (HELLO first,
    /// small frames before it, the frame size limit) are the decoder's.
    var frames: FrameAccumulator
    /// The last PUB topic that passed the grammar: a publisher mostly
    /// repeats it, and the same bytes get the same verdict.
    var lastTopic: Topic?
    var helloTimer: Scheduled<Void>?
    var expiryTimer: Scheduled<Void>?
    var stallTimer: Scheduled<Void>?
    /// Armed by a shutdown: `[limits] shutdown_grace`.
    var graceTimer: Scheduled<Void>?
    /// When HELLO was accepted, and as whom: the session_closed audit event.
    var opened: (since: NIODeadline, principal: String, serial: String)?
    /// Set once the client certificate verified: later TLS errors end a
    /// session instead of counting as handshake failures.
    var handshakeCompleted = false
    /// The source address whose pre-auth slot this connection holds.
    var preAuthAddress: String?
    /// The connection log's peer and subject (SessionHandler+ConnectionLog).
    var connectionLog = ConnectionLogState()
    /// In the broker's session registry (counted in max_connections).
    var registered = false
    var pumpScheduled = false
    var readRequestedWhilePaused = false
    /// Completed once the drain the shutdown started ends the session.
    var shutdownPromise: EventLoopPromise<Void>?
    /// The reload generation (``BrokerContext/generation``) this session was
    /// last judged under; see ``catchUpWithReload()``.
    var evaluatedGeneration: UInt64

    init(broker: BrokerContext, allocator: ByteBufferAllocator, generation: UInt64 = 0) {
        self.broker = broker
        self.machine = SessionStateMachine(limits: SessionLimits(broker.limits), metrics: broker.metrics, logger: broker.logger,
                                           liveBuffers: broker.liveBuffers)
        self.io = SessionIO(broker: broker, allocator: allocator, acceptedGeneration: generation)
        self.evaluatedGeneration = generation
        self.frames = FrameAccumulator(decoder: RelayFrameDecoder(role: .broker, maxFrameSize: broker.limits.maxFrameSize))
    }

    var logger: Logger { broker.logger }
    var publishLimits: PublishLimits { PublishLimits(maxPayload: broker.limits.maxPayload, maxHeaders: broker.limits.maxHeaders) }

    /// Carries out what the machine's last event noted: close (after
    /// writing what is pending), another delivery turn, resumed reading.
    func settle() {
        if io.closeRequested {
            io.closeRequested = false
            io.flush()
            io.context?.close(promise: nil)
            // A shutdown waits for the session's last answer, not for the
            // TLS close to finish (tear-down completes it otherwise).
            shutdownPromise?.succeed()
            shutdownPromise = nil
            return
        }
        if io.pumpRequested {
            io.pumpRequested = false
            schedulePump(afterIO: io.pumpAfterIO)
            io.pumpAfterIO = false
        }
        if io.resumeRequested {
            io.resumeRequested = false
            readIfRequested()
        }
    }

    // MARK: Lifecycle

    func handlerAdded(context: ChannelHandlerContext) {
        io.context = context
        io.proxy = SessionProxy(handler: self, eventLoop: context.eventLoop)
        broker.metrics.connectionsAccepted.increment()
        noteAccept(context.channel.remoteAddress)
        // Until its certificate verifies, a connection holds a pre-auth slot
        // (total and per source address), not one of max_connections.
        let address = context.channel.remoteAddress?.ipAddress ?? "unknown"
        if let refusal = broker.admitPreAuth(address: address) {
            broker.metrics.preAuthRefused(limit: refusal.rawValue).increment()
            logger.debug("connection refused before TLS", metadata: ["peer": "\(address)", "limit": "\(refusal.rawValue)"])
            machine.connectionEnded(reason: nil)
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
        if frames.bufferedBytes > 0, case .active = machine.state {
            logger.debug("connection closed inside a frame", metadata: ["pending_bytes": "\(frames.bufferedBytes)"])
        }
        tearDown()
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        tearDown()
        io.context = nil
    }

    /// Releases everything the session holds in shared structures. Idempotent.
    private func tearDown() {
        helloTimer?.cancel()
        expiryTimer?.cancel()
        stallTimer?.cancel()
        stallTimer = nil
        graceTimer?.cancel()
        graceTimer = nil
        retireForAdmin()  // before recordSessionClosed, which forgets `opened`
        recordSessionClosed()
        machine.tearDown(io)
        releasePreAuth()
        if let proxy = io.proxy, registered {
            broker.unregister(proxy)
            broker.metrics.connectionsOpen.decrement()
        }
        registered = false
        io.proxy = nil
        shutdownPromise?.succeed()
        shutdownPromise = nil
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard let handshake = event as? TLSHandshakeCompleted, case .awaitingHandshake = machine.state else {
            context.fireUserInboundEventTriggered(event)
            return
        }
        machine.handshakeCompleted(handshake)
        handshakeCompleted = true
        (connectionLog.subject, connectionLog.tls) = (handshake.peer.subject.rfc4514, handshake.protocolVersion)
        releasePreAuth()
        guard let proxy = io.proxy, broker.register(proxy) else {
            let shuttingDown = !broker.isAccepting
            machine.terminate(shuttingDown ? .serverShuttingDown : .tooManyConnections,
                              shuttingDown ? "the broker is shutting down" : "the broker is at max_connections authenticated sessions; retry later", io)
            return settle()
        }
        registered = true
        broker.metrics.connectionsOpen.increment()
        let timeout = broker.helloTimeout
        helloTimer = scheduleEvent(in: timeout) { $0.machine.helloTimedOut(after: timeout.nanoseconds / 1_000_000, $0.io) }
    }

    /// Runs `event` on this loop after `delay` (if the session still
    /// exists), then carries out what it decided.
    func scheduleEvent(in delay: TimeAmount, _ event: @escaping (SessionHandler) -> Void) -> Scheduled<Void>? {
        guard let context = io.context else { return nil }
        let session = NIOLoopBound(WeakSession(self), eventLoop: context.eventLoop)
        return context.eventLoop.scheduleTask(in: delay) {
            guard let handler = session.value.handler else { return }
            event(handler)
            handler.settle()
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        switch error {
        case let wire as WireError:
            machine.terminate(wire.code, wire.message, io)
            settle()
            return
        case let tls as TLSError where handshakeCompleted:
            // The session was established: a TLS error now (most often a TCP
            // close without close_notify, e.g. a client killed with Ctrl-C)
            // ends a session; it is not a handshake failure.
            logger.debug("session closed by a TLS error", metadata: ["error": "\(tls)", "principal": "\(opened?.principal ?? "")"])
            machine.connectionEnded(reason: Self.sessionCloseReason(tls))
        case let tls as TLSError:
            broker.metrics.handshakeFailure(reason: Self.reasonLabel(tls)).increment()
            logDenied(reason: Self.reasonLabel(tls), error: "\(tls)")
            broker.audit?.record("connection_refused", ["peer": connectionLog.peer,
                                                        "cause": Self.reasonLabel(tls), "reason": "\(tls)"])
            machine.connectionEnded(reason: nil)
        default:
            logger.debug("connection error", metadata: ["error": "\(error)"])
            machine.connectionEnded(reason: Self.connectionErrorReason(error))
        }
        context.close(promise: nil)
    }

    // MARK: Frames (Relay v1 → the machine's events)

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        catchUpWithReload()  // one locked read of the generation per read, not per frame
        guard machine.takesRequests else { return }  // closing: bytes still in flight are dropped, not buffered
        frames.append(unwrapInboundIn(data))
        handleFrames()
        settle()
    }

    /// Hands the complete frames read so far to the machine, until none is
    /// left, the session closes, or a SUB's look-ups go off the loop: the
    /// frames after that SUB stay here until its answer
    /// (``startLookedUp(_:_:)``), so they are handled after its SUBACK.
    func handleFrames() {
        reading: while machine.takesRequests && !machine.holdsRequests {  // after ERR or BYE nothing more is read
            do {
                // A PUB repeating the last topic comes without a Frame around it.
                switch try frames.nextForBroker() {
                case nil: break reading
                case .publish(let publish)?: machine.publish(publish.publishID, checked(publish), io)
                case .frame(let frame)?: handle(frame)
                }
            } catch {
                machine.terminate(error.code, error.message, io)
                break reading
            }
            // A read batch of small requests (PINGs, refused PUBs) can answer
            // with as many bytes as it read: hand them to the channel as they
            // grow, so its water marks see them and reading stops in time.
            if io.outbound.readableBytes >= Self.midBatchFlushBytes { io.flush() }
        }
    }

    /// Answer bytes buffered in the session before they are flushed mid-batch.
    static let midBatchFlushBytes = 64 << 10

    func channelReadComplete(context: ChannelHandlerContext) {
        machine.readBatchEnded(io)
        io.flush()
        settle()
        context.fireChannelReadComplete()
    }

    // MARK: Events from the store, the router and the broker (via SessionProxy)

    func commitCompleted(ids: [UInt64], results: [Result<AppendReceipt, StoreError>]) {
        machine.commitCompleted(ids: ids, results: results, io)
        io.flush()
        settle()
    }

    func deliverLive(_ batch: [RoutedDelivery], overflowThrough: UInt64? = nil) {
        machine.deliverLive(batch, overflowThrough: overflowThrough, io)
        io.flush()  // also an ERR ending a subscription: sent at once
        settle()
    }

    /// Runs a delivery turn later on this loop. `afterIO`: only after the
    /// loop has served its sockets. swift-nio runs a task that `execute`
    /// queued from a task in the same tick, before it polls the sockets, so
    /// such a turn waits a moment instead (50 µs: later than the tick's
    /// other tasks, so the loop polls first; a sparse replay's read takes
    /// milliseconds, so the wait costs it about 2 %).
    func schedulePump(afterIO: Bool = false) {
        guard !pumpScheduled, let context = io.context else { return }
        pumpScheduled = true
        let session = NIOLoopBound(self, eventLoop: context.eventLoop)
        let turn = {
            let handler = session.value
            handler.pumpScheduled = false
            handler.machine.pump(handler.io)
            handler.io.flush()
            handler.settle()
        }
        if afterIO {
            context.eventLoop.scheduleTask(in: .microseconds(50), turn)
        } else {
            context.eventLoop.execute(turn)
        }
    }

    /// After a reload: re-verify the certificate against the new CA/CRL set
    /// (and the current time), re-evaluate the policy, end what is no longer
    /// allowed. Called by the reload's task on this loop and at the start of
    /// every read: the reload installs its policy and TLS context before this
    /// loop runs that task, and a PUB read in between must already be judged
    /// by the new rules (StagedReloadTests once saw one pass under the old).
    /// Always against the broker's current state, never a state a task
    /// carried: after two quick reloads their tasks run after reads too.
    func catchUpWithReload() {
        guard case .active(let session) = machine.state else { return }
        // The generation first: a reload between the two reads makes the next
        // read judge again, never skip a policy.
        let generation = broker.generation
        guard generation != evaluatedGeneration else { return }
        evaluatedGeneration = generation
        var failure: TLSError?
        do { try broker.tls.current.verify(session.peerChain) } catch { failure = error }
        machine.reevaluate(verification: failure, policy: broker.policy, io)
        io.flush()
        settle()
    }

    /// A shared log found the durable's cursor deleted or moved by another
    /// edge at a commit: the subscription attached to it ends, telling the client why.
    func durableCursorLost(owner: DurableOwner, name: String, error: StoreError) {
        machine.durableCursorLost(owner: owner, name: name, code: error.relayErrorCode, message: error.description, io)
        io.flush()
        settle()
    }

    func terminate(_ code: RelayErrorCode, _ message: String) {
        machine.terminate(code, message, io)
        settle()
    }

    /// Graceful shutdown: read no more frames, let the in-flight commits
    /// finish and their PUBACKs go out, then say `server_shutting_down`.
    /// ADMINs in flight are answered too (a backup is ended, incomplete);
    /// after `[limits] shutdown_grace` the session ends whatever it still waits for.
    func beginShutdown(_ promise: EventLoopPromise<Void>) {
        guard !machine.isClosed, io.context != nil else { return promise.succeed() }
        if let earlier = shutdownPromise { earlier.futureResult.cascade(to: promise) } else { shutdownPromise = promise }
        machine.shutdown(io)
        io.flush()
        settle()
        guard !machine.isClosed else { return }
        // `[limits] shutdown_grace`: how long the session waits for its answers
        // (PUBs committing, ADMINs running) before it ends regardless; with an
        // ADMIN still running then (the broker asks it to stop), once more for its typed answer.
        let grace = TimeAmount.nanoseconds(broker.limits.shutdownGraceNanos)
        graceTimer = scheduleEvent(in: grace) { handler in
            guard handler.machine.shutdownGraceEnded(afterNanos: grace.nanoseconds, handler.io) else { return }
            handler.graceTimer = handler.scheduleEvent(in: grace) {
                $0.machine.shutdownGraceEnded(afterNanos: grace.nanoseconds, $0.io)
            }
        }
    }

    /// Closes the session when a certificate of its verified chain expires:
    /// a timer armed at HELLO fires just after the earliest `notAfter` of the
    /// chain (re-armed while further out than a day) and ends the session
    /// with `certificate_expired`.
    func scheduleExpiry(_ expiry: ChainExpiry) {
        guard let context = io.context else { return }
        let seconds = expiry.notAfter.timeIntervalSinceNow
        let delay = TimeAmount.milliseconds(Int64(max(0, min(seconds, 86_400)) * 1000) + 1)
        let session = NIOLoopBound(WeakSession(self), eventLoop: context.eventLoop)
        expiryTimer = context.eventLoop.scheduleTask(in: delay) {
            guard let handler = session.value.handler else { return }
            guard expiry.notAfter.timeIntervalSinceNow <= 0 else { return handler.scheduleExpiry(expiry) }
            let what = expiry.depth == 0 ? "the client certificate"
                : "the CA certificate '\(expiry.subject)' in the client's chain"
            handler.machine.certificateExpired(at: Self.isoTimestamp(expiry.notAfter), what: what, handler.io)
            handler.settle()
        }
    }

    static func isoTimestamp(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.string(from: date)
    }

    // MARK: Backpressure: stop reading while the machine says so.

    func read(context: ChannelHandlerContext) {
        if machine.readsPaused {
            readRequestedWhilePaused = true
        } else {
            context.read()
        }
    }

    /// Issues the read NIO asked for while reading was paused, once neither
    /// the in-flight window nor the output backlog holds it back.
    func readIfRequested() {
        guard !machine.readsPaused, readRequestedWhilePaused else { return }
        readRequestedWhilePaused = false
        io.context?.read()
    }
}

/// A session for a timer scheduled on its loop: the timer must not keep a
/// closed session alive (tearDown cancels it, but a weak reference needs no
/// such care), and NIOLoopBound makes the capture Sendable by checking the loop.
struct WeakSession {
    weak var handler: SessionHandler?
    init(_ handler: SessionHandler) { self.handler = handler }
}
