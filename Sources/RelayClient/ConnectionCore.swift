import DequeModule
import Foundation
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
    // `submissionState` is the only cross-thread state and has its own lock.

    let eventLoop: any EventLoop
    let configuration: RelayClientConfiguration
    let tlsContext: TLSClientContext
    /// Kept across reconnects so the broker can recognise retried publishes.
    let sessionID: ProducerSessionID

    /// Idle, connecting, connected, waiting to reconnect or closed, each
    /// with its own data (the attempt's generation and channel, the session).
    var phase = ConnectionPhase()
    /// Consecutive failed attempts since the last WELCOME.
    var failedAttempts = 0
    /// Which of `configuration.servers` the current (or next) attempt dials.
    var serverIndex = 0
    /// The address the current attempt dials, for connecting and for messages.
    var currentServer: ServerAddress { configuration.servers[serverIndex % configuration.servers.count] }
    /// Publishes put back in the queue because a connection was lost before
    /// their PUBACK (each is sent again, with its id, on the next connection).
    var resentPublishCount = 0
    var everConnected = false
    /// The first error seen on the current attempt (an ERR frame, a TLS alert…).
    var attemptError: RelayClientError?
    /// Ends the current attempt when TCP, TLS and WELCOME together take
    /// longer than `configuration.connectTimeout` (the bootstrap's own
    /// timeout covers the TCP connect only; TLS and WELCOME have 10 s each).
    var connectDeadline: Scheduled<Void>?
    var firstConnect: EventLoopPromise<SessionInfo>?
    var observers: [UInt64: AsyncStream<ConnectionState>.Continuation] = [:]
    var nextObserverID: UInt64 = 0
    var lastState: ConnectionState = .connecting(attempt: 1)
    /// The keep-alive of the current connection (ConnectionCore+Keepalive.swift):
    /// whether anything was read since its last tick, and the ticks without.
    var keepaliveTask: RepeatedTask?
    var keepaliveHeard = false
    var keepaliveSilentTicks = 0
    var keepaliveToken: UInt64 = 0
    /// Frames written since the last flush (one buffer, one flush).
    var outbound: ByteBuffer

    // Publishing (see ConnectionCore+Publishing.swift).
    var nextPublishID: UInt64 = 1
    var unsent = Deque<PendingPublish>()
    var inFlight = InFlightTable()
    var drainWaiters: [EventLoopPromise<Void>] = []
    /// Guards `submissionState`, the one state shared across threads. A lock
    /// and a plain property rather than a `NIOLockedValueBox`: the closure
    /// `withLockedValue` takes retained and released the publish's fields
    /// once more per publish (wave 22).
    let submissionLock = NIOLock()
    var submissionState = Submissions()
    /// The batch being drained (swapped with `Submissions.items`, event loop only).
    var draining: [Submission] = []
    /// Answered publishes to hand back as spares at the next drain (event loop only).
    var answered: [PendingPublish] = []

    // Subscriptions (see ConnectionCore+Subscriptions.swift).
    /// Any change (a subscription added or removed) forgets `lastDelivering`.
    var subscriptions: [UInt32: SubscriptionState] = [:] {
        didSet { lastDelivering = nil }
    }
    /// The subscription of the last MSG (``subscription(delivering:)``).
    var lastDelivering: SubscriptionState?
    var nextSubscriptionID: UInt32 = 1

    init(configuration: RelayClientConfiguration, eventLoop: any EventLoop, sessionID: ProducerSessionID) throws(RelayClientError) {
        self.configuration = configuration
        self.eventLoop = eventLoop
        self.sessionID = sessionID
        // Ids of a producer session must increase across connections (spec
        // §4.3), including a new RelayConnection given the session id a
        // previous process used: starting at 1 again, its publishes were
        // answered as duplicates of that run's and never stored. The wall
        // clock in nanoseconds is above every id an earlier run could have
        // used (it would need more than one publish per nanosecond).
        if !sessionID.isNone { nextPublishID = Self.firstPublishID() }
        do {
            // Shared per TLS settings (see TLSClientContextCache).
            self.tlsContext = try TLSClientContextCache.context(for: configuration.tls)
        } catch {
            throw RelayClientError(category: .usage, message: "TLS settings are unusable: \(error.description)")
        }
        self.outbound = ByteBufferAllocator().buffer(capacity: 64 * 1024)
    }

    /// The wall clock in nanoseconds since the epoch (to a fraction of a
    /// microsecond: a Double), at least 1.
    static func firstPublishID() -> UInt64 {
        max(1, UInt64(max(0, Date().timeIntervalSince1970 * 1e9)))
    }

    var session: SessionInfo? { phase.link?.session }

    /// The welcomed connection's channel.
    var currentChannel: (any Channel)? { phase.link?.channel }

    var isConnected: Bool { phase.isConnected }

    var isClosed: Bool { phase.isClosed }

    // MARK: Connecting

    /// Starts the first attempt; the future completes at the first WELCOME.
    func start() -> EventLoopFuture<SessionInfo> {
        eventLoop.assertInEventLoop()
        let promise = eventLoop.makePromise(of: SessionInfo.self)
        switch phase.state {
        case .idle:
            firstConnect = promise
            attempt()
        case .connected(let link):
            promise.succeed(link.session)
        case .closed(let error):
            promise.fail(error ?? RelayClientError.closed)
        case .connecting, .waiting:
            if let firstConnect { firstConnect.futureResult.cascade(to: promise) } else { firstConnect = promise }
        }
        return promise.futureResult
    }

    private func attempt() {
        guard let generation = phase.beginAttempt() else { return }
        attemptError = nil
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
        let target = currentServer
        let timeout = configuration.connectTimeout
        connectDeadline = eventLoop.scheduleTask(in: timeout) { [self] in
            guard case .connecting(let attempt) = phase.state, attempt.generation == generation else { return }
            // A refusal already seen (a TLS alert) says more than the timeout.
            let refusal = attemptError.flatMap { $0.isRetryable ? nil : $0 }
            failed(refusal ?? .connectTimedOut(server: target.description, timeout: timeout, transportUp: attempt.channel != nil),
                   generation: generation)
        }
        let connected: EventLoopFuture<any Channel>
        if let address = try? SocketAddress(ipAddress: target.host, port: target.port) {
            connected = bootstrap.connect(to: address)
        } else {
            connected = bootstrap.connect(host: target.host, port: target.port)
        }
        connected.whenFailure { error in core.failed(RelayClientError.from(error, server: target.description), generation: generation) }
    }

    /// TCP is up: send HELLO (the TLS handler holds it until its handshake is done).
    func transportUp(channel: any Channel, generation: UInt64) {
        guard phase.transportUp(channel, generation: generation) else {
            // The attempt ended (its deadline passed) while TCP was connecting.
            channel.close(promise: nil)
            return
        }
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
        let helloTimeout = eventLoop.scheduleTask(in: timeout) { [self] in
            guard case .connecting(let attempt) = phase.state, attempt.generation == generation else { return }
            // A timeout like the connect deadline (isTimeout, exit 69), not a lost connection.
            noteError(.timedOut("the broker at \(currentServer) sent no WELCOME within "
                + "\(timeout.nanoseconds / 1_000_000) ms of the TCP connection; check that it is a Relay broker, "
                + "or raise RelayClientConfiguration.helloTimeout"))
            attempt.channel?.close(promise: nil)
        }
        if !phase.helloSent(timeout: helloTimeout, generation: generation) { helloTimeout.cancel() }
    }

    /// WELCOME: the session is usable; resend what the last connection left unanswered.
    func welcomed(_ welcome: Welcome, generation: UInt64) {
        let session = SessionInfo(welcome)
        guard let (_, helloTimeout) = phase.welcome(session, generation: generation) else { return }
        helloTimeout?.cancel()
        connectDeadline?.cancel()
        connectDeadline = nil
        failedAttempts = 0
        everConnected = true
        emit(.connected(session))
        startKeepalive(generation: generation)
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
        guard phase.isCurrent(generation) else { return }
        noteError(RelayClientError.from(error, server: currentServer.description))
    }

    func connectionClosed(generation: UInt64) {
        let error = attemptError ?? .connectionLost("the broker at \(currentServer) closed the connection")
        failed(error, generation: generation)
    }

    /// The attempt (or the live connection) `generation` ended with `error`:
    /// reconnect after a backoff, or give up when retrying cannot help.
    func failed(_ error: RelayClientError, generation: UInt64) {
        guard let lost = phase.lose(generation: generation) else {
            return  // an old attempt, or already handled
        }
        lost.channel?.close(promise: nil)
        lost.helloTimeout?.cancel()
        stopKeepalive()
        connectDeadline?.cancel()
        connectDeadline = nil
        outbound.clear()
        if lost.wasConnected { connectionLostRequeue() }
        let policy = configuration.reconnect
        failedAttempts += 1
        // With several addresses, the next attempt dials the next one; a failed
        // first connect tries each address once even without retryInitialConnection.
        let addressCount = configuration.servers.count
        serverIndex = (serverIndex + 1) % addressCount
        let untriedAddress = !everConnected && failedAttempts < addressCount
        let mayRetry = error.isRetryable && policy.enabled && (everConnected || policy.retryInitialConnection || untriedAddress)
            && (policy.maximumAttempts.map { failedAttempts <= $0 } ?? true)
        guard mayRetry else {
            finish(error)
            return
        }
        let delay = policy.delay(attempt: failedAttempts)
        emit(.disconnected(error, retryIn: delay))
        let nanos = Int64(delay.components.seconds) * 1_000_000_000 + Int64(delay.components.attoseconds / 1_000_000_000)
        let retry = eventLoop.scheduleTask(in: .nanoseconds(nanos)) { [self] in
            guard case .waiting = phase.state else { return }
            attempt()
        }
        if !phase.retryScheduled(retry) { retry.cancel() }
    }

    // MARK: Closing

    /// Closes for good: by the owner (`error` nil) or because of `error`.
    func finish(_ error: RelayClientError?) {
        guard let previous = phase.close(error) else { return }
        stopKeepalive()
        switch previous {
        case .connected(let link):
            var bye = link.channel.allocator.buffer(capacity: 16)
            if (try? bye.writeFrame(.bye(.normal), maxFrameSize: FrameLayout.defaultMaxFrameSize)) != nil {
                link.channel.writeAndFlush(bye, promise: nil)
            }
            link.channel.close(promise: nil)
        case .connecting(let attempt):
            attempt.helloTimeout?.cancel()
            connectDeadline?.cancel()
            connectDeadline = nil
            attempt.channel?.close(promise: nil)
        case .waiting(_, let retry):
            retry?.cancel()
        case .idle, .closed:
            break
        }
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
            try outbound.writeFrame(frame, maxFrameSize: phase.frameLimit)
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
        channel.writeAndFlush(outbound, promise: nil)
        // The TLS handler encrypts on flush and lets go of the plaintext, so
        // the buffer is this side's alone again: clear() keeps its storage
        // for the next batch. A new buffer per flush was a fresh allocation
        // (up to megabytes with 4 KiB messages) and fresh pages to fault in,
        // every time. Still shared (a write queued during the handshake),
        // clear() gives this side new storage of the same size instead.
        outbound.clear()
    }

    // MARK: States

    func emit(_ state: ConnectionState) {
        lastState = state
        for (_, observer) in observers { observer.yield(state) }
    }

    func addObserver(_ continuation: AsyncStream<ConnectionState>.Continuation) {
        continuation.yield(lastState)
        if phase.isClosed {
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
