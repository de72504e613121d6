import DequeModule
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import RelayTLS
import RelayWire

/// The state of one logical client connection across reconnects: the
/// current channel, the producer session, publishes awaiting their answer
/// and open subscriptions.
///
/// Confined to one event loop: every mutable property is read and written
/// only there (public entry points hop with `execute`), so no lock guards
/// it and every channel of every reconnect runs on that same loop.
final class ConnectionCore: @unchecked Sendable {
    // @unchecked: all mutable state below is event-loop confined (see above);
    // `submissions` is the only cross-thread state and has its own lock.

    enum Phase {
        case idle
        /// TCP/TLS/HELLO in progress for attempt `generation`.
        case connecting(generation: UInt64, channel: (any Channel)?)
        case connected(generation: UInt64, channel: any Channel, session: SessionInfo)
        /// Waiting `scheduled` before the next attempt.
        case waiting(scheduled: Scheduled<Void>?)
        case closed(RelayClientError?)
    }

    let eventLoop: any EventLoop
    let configuration: RelayClientConfiguration
    let tlsContext: TLSClientContext
    /// Kept across reconnects so the broker can recognise retried publishes.
    let sessionID: ProducerSessionID

    var phase: Phase = .idle {
        // Cached because reading `session` copies the whole enum payload
        // (channel, SessionInfo's strings): it was 9% of a subscriber's CPU
        // when every delivery and every written frame asked for it.
        didSet {
            if case .connected(_, _, let session) = phase {
                isConnected = true
                frameLimit = session.maxFrameSize
            } else {
                isConnected = false
                frameLimit = FrameLayout.defaultMaxFrameSize
            }
        }
    }
    /// True while `phase` is `.connected` (a WELCOME arrived on the current channel).
    private(set) var isConnected = false
    /// The broker's frame size limit once connected; the protocol default before.
    private(set) var frameLimit = FrameLayout.defaultMaxFrameSize
    var generation: UInt64 = 0
    /// Consecutive failed attempts since the last WELCOME.
    var failedAttempts = 0
    /// Publishes put back in the queue because a connection was lost before
    /// their PUBACK (each is sent again, with its id, on the next connection).
    var resentPublishCount = 0
    var everConnected = false
    /// The first error seen on the current attempt (an ERR frame, a TLS alert…).
    var attemptError: RelayClientError?
    var helloTimeout: Scheduled<Void>?
    var firstConnect: EventLoopPromise<SessionInfo>?
    var observers: [UInt64: AsyncStream<ConnectionState>.Continuation] = [:]
    var nextObserverID: UInt64 = 0
    var lastState: ConnectionState = .connecting(attempt: 1)
    /// Frames written since the last flush (one buffer, one flush).
    var outbound: ByteBuffer

    // Publishing (see ConnectionCore+Publishing.swift).
    var nextPublishID: UInt64 = 1
    var unsent = Deque<PendingPublish>()
    var inFlight: [UInt64: PendingPublish] = [:]
    var drainWaiters: [EventLoopPromise<Void>] = []
    let submissions = NIOLockedValueBox(Submissions())

    // Subscriptions (see ConnectionCore+Subscriptions.swift).
    var subscriptions: [UInt32: SubscriptionState] = [:]
    var nextSubscriptionID: UInt32 = 1

    init(configuration: RelayClientConfiguration, eventLoop: any EventLoop, sessionID: ProducerSessionID) throws(RelayClientError) {
        self.configuration = configuration
        self.eventLoop = eventLoop
        self.sessionID = sessionID
        do {
            // Shared per TLS settings (see TLSClientContextCache).
            self.tlsContext = try TLSClientContextCache.context(for: configuration.tls)
        } catch {
            throw RelayClientError(category: .usage, message: "TLS settings are unusable: \(error.description)")
        }
        self.outbound = ByteBufferAllocator().buffer(capacity: 64 * 1024)
    }

    var session: SessionInfo? {
        if case .connected(_, _, let session) = phase { return session }
        return nil
    }

    var currentChannel: (any Channel)? {
        if case .connected(_, let channel, _) = phase { return channel }
        return nil
    }

    var isClosed: Bool {
        if case .closed = phase { return true }
        return false
    }

    // MARK: Connecting

    /// Starts the first attempt; the future completes at the first WELCOME.
    func start() -> EventLoopFuture<SessionInfo> {
        eventLoop.assertInEventLoop()
        let promise = eventLoop.makePromise(of: SessionInfo.self)
        switch phase {
        case .idle:
            firstConnect = promise
            attempt()
        case .connected(_, _, let session):
            promise.succeed(session)
        case .closed(let error):
            promise.fail(error ?? RelayClientError.closed)
        case .connecting, .waiting:
            if let firstConnect { firstConnect.futureResult.cascade(to: promise) } else { firstConnect = promise }
        }
        return promise.futureResult
    }

    private func attempt() {
        generation += 1
        let generation = self.generation
        attemptError = nil
        phase = .connecting(generation: generation, channel: nil)
        emit(.connecting(attempt: failedAttempts + 1))
        let core = self
        let maxFrameSize = configuration.maxFrameSize
        let bootstrap = ClientBootstrap(group: eventLoop)
            .connectTimeout(configuration.connectTimeout)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let sync = channel.pipeline.syncOperations
                    try sync.addHandler(try core.tlsContext.makeHandler())
                    try sync.addHandler(ClientChannelHandler(core: core, generation: generation, maxFrameSize: maxFrameSize))
                }
            }
        // An IP literal needs no resolver: connecting to the address directly
        // skips getaddrinfo on a blocking thread and the happy-eyeballs race,
        // about 7% of a connection's client CPU.
        let connected: EventLoopFuture<any Channel>
        if let address = try? SocketAddress(ipAddress: configuration.host, port: configuration.port) {
            connected = bootstrap.connect(to: address)
        } else {
            connected = bootstrap.connect(host: configuration.host, port: configuration.port)
        }
        connected.whenFailure { error in core.failed(RelayClientError.from(error, server: core.configuration.server), generation: generation) }
    }

    /// TCP is up: send HELLO (the TLS handler holds it until its handshake is done).
    func transportUp(channel: any Channel, generation: UInt64) {
        guard case .connecting(let current, _) = phase, current == generation else { return }
        phase = .connecting(generation: generation, channel: channel)
        let hello = Hello(maxFrameSize: UInt32(configuration.maxFrameSize), sessionID: sessionID,
                          clientName: String(configuration.clientName.utf8.prefix(255)) ?? "")
        var buffer = channel.allocator.buffer(capacity: 64)
        do {
            try buffer.writeFrame(.hello(hello), maxFrameSize: FrameLayout.preHelloMaxFrameSize)
        } catch {
            failed(.usage("cannot encode HELLO: \(error)"), generation: generation)
            return
        }
        channel.writeAndFlush(buffer, promise: nil)
        let timeout = configuration.helloTimeout
        helloTimeout = eventLoop.scheduleTask(in: timeout) { [self] in
            guard case .connecting(let current, let channel) = phase, current == generation else { return }
            noteError(.connectionLost("the broker at \(configuration.server) sent no WELCOME within "
                + "\(timeout.nanoseconds / 1_000_000) ms; check that it is a Relay broker"))
            channel?.close(promise: nil)
        }
    }

    /// WELCOME: the session is usable; resend what the last connection left unanswered.
    func welcomed(_ welcome: Welcome, generation: UInt64) {
        guard case .connecting(let current, let channel?) = phase, current == generation else { return }
        helloTimeout?.cancel()
        let session = SessionInfo(welcome)
        phase = .connected(generation: generation, channel: channel, session: session)
        failedAttempts = 0
        everConnected = true
        emit(.connected(session))
        if let firstConnect {
            self.firstConnect = nil
            firstConnect.succeed(session)
        }
        resubscribeAll()
        pumpPublishes()
        flushOutbound()
    }

    /// Remembers the first error of this attempt; it explains the close that
    /// follows. A final error (a TLS alert, an ERR) wins over a transient one
    /// (a reset) that raced it.
    func noteError(_ error: RelayClientError) {
        if let current = attemptError, !(current.isRetryable && !error.isRetryable) { return }
        attemptError = error
    }

    func connectionError(_ error: any Error, generation: UInt64) {
        guard generation == self.generation else { return }
        noteError(RelayClientError.from(error, server: configuration.server))
    }

    func connectionClosed(generation: UInt64) {
        let error = attemptError ?? .connectionLost("the broker at \(configuration.server) closed the connection")
        failed(error, generation: generation)
    }

    /// The attempt (or the live connection) `generation` ended with `error`:
    /// reconnect after a backoff, or give up when retrying cannot help.
    func failed(_ error: RelayClientError, generation: UInt64) {
        let wasConnected: Bool
        switch phase {
        case .connecting(let current, let channel) where current == generation:
            wasConnected = false
            channel?.close(promise: nil)
        case .connected(let current, let channel, _) where current == generation:
            wasConnected = true
            channel.close(promise: nil)
        default:
            return  // an old attempt, or already handled
        }
        helloTimeout?.cancel()
        outbound.clear()
        if wasConnected { connectionLostRequeue() }
        let policy = configuration.reconnect
        failedAttempts += 1
        let mayRetry = error.isRetryable && policy.enabled && (everConnected || policy.retryInitialConnection)
            && (policy.maximumAttempts.map { failedAttempts <= $0 } ?? true)
        guard mayRetry else {
            finish(error)
            return
        }
        let delay = policy.delay(attempt: failedAttempts)
        emit(.disconnected(error, retryIn: delay))
        let nanos = Int64(delay.components.seconds) * 1_000_000_000 + Int64(delay.components.attoseconds / 1_000_000_000)
        let scheduled = eventLoop.scheduleTask(in: .nanoseconds(nanos)) { [self] in
            guard case .waiting = phase else { return }
            attempt()
        }
        phase = .waiting(scheduled: scheduled)
    }

    // MARK: Closing

    /// Closes for good: by the owner (`error` nil) or because of `error`.
    func finish(_ error: RelayClientError?) {
        switch phase {
        case .closed:
            return
        case .connected(_, let channel, _):
            var bye = channel.allocator.buffer(capacity: 16)
            if (try? bye.writeFrame(.bye(.normal), maxFrameSize: FrameLayout.defaultMaxFrameSize)) != nil {
                channel.writeAndFlush(bye, promise: nil)
            }
            channel.close(promise: nil)
        case .connecting(_, let channel):
            channel?.close(promise: nil)
        case .waiting(let scheduled):
            scheduled?.cancel()
        case .idle:
            break
        }
        helloTimeout?.cancel()
        phase = .closed(error)
        let failure = error ?? RelayClientError.closed
        failAllPublishes(failure)
        finishAllSubscriptions(error)
        if let firstConnect {
            self.firstConnect = nil
            firstConnect.fail(failure)
        }
        emit(.closed(error))
        for (_, observer) in observers { observer.finish() }
        observers = [:]
    }

    // MARK: Writing

    /// Appends a frame to the pending output; false when it cannot be encoded.
    @discardableResult
    func write(_ frame: Frame) -> Bool {
        do {
            try outbound.writeFrame(frame, maxFrameSize: frameLimit)
            return true
        } catch {
            return false
        }
    }

    /// Writes and flushes everything appended since the last flush, as one buffer.
    func flushOutbound() {
        guard outbound.readableBytes > 0 else { return }
        guard let channel = currentChannel else {
            outbound.clear()
            return
        }
        let buffer = outbound
        outbound = channel.allocator.buffer(capacity: max(64 * 1024, buffer.readableBytes))
        channel.writeAndFlush(buffer, promise: nil)
    }

    // MARK: States

    func emit(_ state: ConnectionState) {
        lastState = state
        for (_, observer) in observers { observer.yield(state) }
    }

    func addObserver(_ continuation: AsyncStream<ConnectionState>.Continuation) {
        continuation.yield(lastState)
        if case .closed = phase {
            continuation.finish()
            return
        }
        let id = nextObserverID
        nextObserverID += 1
        observers[id] = continuation
        continuation.onTermination = { [self] _ in
            eventLoop.execute { self.observers[id] = nil }
        }
    }
}
