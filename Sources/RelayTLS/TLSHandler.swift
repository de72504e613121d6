import NIOCore
import RelayCore

/// TLS over a NIO channel, for both sides, with the system OpenSSL reading
/// and writing the channel's buffers in place (a session BIO). Make it from ``TLSServerContext/makeHandler()`` or
/// ``TLSClientContext/makeHandler(serverName:)`` and put it first in the
/// pipeline; it reads and writes plaintext `ByteBuffer`s above it.
///
/// Writes before the handshake completes are buffered. Writes between two
/// flushes are coalesced: small writes are copied together so they share
/// records, a write of a record (16 KiB) or more is encrypted in place, one
/// SSL_write per record, and all the ciphertext goes out in one channel write.
public final class TLSHandler: ChannelDuplexHandler {
    public typealias InboundIn = ByteBuffer
    public typealias InboundOut = ByteBuffer
    public typealias OutboundIn = ByteBuffer
    public typealias OutboundOut = ByteBuffer

    private enum State {
        /// Handshake not finished (`started` once the first flight went out).
        case handshaking(started: Bool)
        case active
        /// We sent close_notify and closed the channel; waiting for inactive.
        case closing
        case closed
    }

    private var state: State = .handshaking(started: false)
    private let connection: SSLConnection
    private let timeout: TimeAmount
    private var timeoutTask: Scheduled<Void>?
    /// Plaintext waiting for the next flush (or for the handshake).
    private var pendingWrites = CircularBuffer<(ByteBuffer, EventLoopPromise<Void>?)>()
    private var flushRequested = false
    /// Bytes of plaintext in `pendingWrites`.
    private var pendingBytes = 0

    /// The peer's verified chain once the handshake completed (its identity
    /// travels in the ``TLSHandshakeCompleted`` event).
    public private(set) var peerChain: PeerCertificateChain?

    /// Bytes the session BIO keeps for spilled output (handshake flights,
    /// alerts) between calls: 0 once they are sent (tests check it).
    var retainedSpillBytes: Int { connection.bioState.pointee.spill_capacity }

    init(connection: SSLConnection, timeout: TimeAmount) {
        self.connection = connection
        self.timeout = timeout
    }

    // MARK: Lifecycle

    public func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { startHandshake(context: context) }
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        timeoutTask?.cancel()
        failPendingWrites(ChannelError.ioOnClosedChannel)
    }

    public func channelActive(context: ChannelHandlerContext) {
        startHandshake(context: context)
        context.fireChannelActive()
    }

    public func channelInactive(context: ChannelHandlerContext) {
        timeoutTask?.cancel()
        switch state {
        case .handshaking:
            state = .closed
            failPendingWrites(TLSError.unexpectedEOF(duringHandshake: true))
            context.fireErrorCaught(TLSError.unexpectedEOF(duringHandshake: true))
        case .active:
            // TCP closed without close_notify: the data may be truncated.
            state = .closed
            failPendingWrites(TLSError.unexpectedEOF(duringHandshake: false))
            context.fireErrorCaught(TLSError.unexpectedEOF(duringHandshake: false))
        case .closing, .closed:
            state = .closed
            failPendingWrites(ChannelError.ioOnClosedChannel)
        }
        context.fireChannelInactive()
    }

    private func startHandshake(context: ChannelHandlerContext) {
        guard case .handshaking(started: false) = state else { return }
        state = .handshaking(started: true)
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        let timeout = self.timeout
        timeoutTask = context.eventLoop.scheduleTask(in: timeout) {
            let (handler, context) = loopBound.value
            if case .handshaking = handler.state {
                handler.fail(context: context, error: .handshakeTimedOut(milliseconds: timeout.nanoseconds / 1_000_000))
            }
        }
        advanceHandshake(context: context)
    }

    // MARK: Inbound

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        switch state {
        case .handshaking:
            connection.receive(buffer)
            advanceHandshake(context: context)
        case .active, .closing:
            // Decrypt large reads a few records at a time, while the bytes
            // are in cache (the slices share the read's storage: no copy).
            var remaining = buffer
            while let slice = remaining.readSlice(length: min(remaining.readableBytes, Self.feedSize)), slice.readableBytes > 0 {
                connection.receive(slice)
                readPlaintext(context: context)
                guard case .active = state else { break }
            }
        case .closed:
            break  // after a failure or close_notify: drop whatever follows
        }
    }

    public func channelReadComplete(context: ChannelHandlerContext) {
        sendOutput(context: context)
        context.fireChannelReadComplete()
    }

    private func advanceHandshake(context: ChannelHandlerContext) {
        switch connection.handshake() {
        case .incomplete:
            sendOutput(context: context)
        case .failed(let error):
            fail(context: context, error: error)
        case .complete:
            timeoutTask?.cancel()
            timeoutTask = nil
            sendOutput(context: context)
            // The leaf's identity is read before the chain summary, whose
            // expiry reuses its subject when the leaf expires first; the
            // failures are reported in the same order as before (no chain
            // or no leaf, then an unreadable leaf).
            let leaf = connection.peerLeaf()
            var extracted: Result<Identity, IdentityExtractionError>?
            if let leaf {
                do { extracted = .success(try IdentityExtractor.identity(of: leaf)) } catch { extracted = .failure(error) }
            }
            let leafSubject = leaf.flatMap { leaf in (try? extracted?.get()).map { (leaf, $0.subject) } }
            guard let summary = connection.handshakeSummary(leaf: leafSubject), let extracted else {
                fail(context: context, error: .noPeerCertificate)
                return
            }
            let identity: Identity
            switch extracted {
            case .success(let value):
                identity = value
            case .failure(let error):
                fail(context: context, error: .handshakeFailed(reason: "peer certificate cannot be read: \(error)"))
                return
            }
            state = .active
            peerChain = summary.chain
            context.fireUserInboundEventTriggered(TLSHandshakeCompleted(
                peer: identity, peerChain: summary.chain, protocolVersion: summary.version, cipherSuite: summary.cipher))
            // Application data may have arrived in the same flight.
            readPlaintext(context: context)
            if case .active = state, flushRequested { writePending(context: context) }
        }
    }

    private func readPlaintext(context: ChannelHandlerContext) {
        while true {
            switch state {
            case .active, .closing: break
            case .handshaking, .closed: return
            }
            switch connection.read(allocator: context.channel.allocator) {
            case .data(let plaintext):
                context.fireChannelRead(wrapInboundOut(plaintext))
            case .wantMore:
                sendOutput(context: context)
                return
            case .closeNotify:
                // The peer is done: answer with our close_notify and close.
                let wasClosing: Bool
                if case .closing = state { wasClosing = true } else { wasClosing = false }
                state = .closing
                if !wasClosing {
                    connection.shutdown()
                    sendOutput(context: context)
                    context.close(promise: nil)
                }
                return
            case .failed(let error):
                fail(context: context, error: error)
                return
            }
        }
    }

    // MARK: Outbound

    public func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch state {
        case .handshaking, .active:
            let buffer = unwrapOutboundIn(data)
            pendingBytes += buffer.readableBytes
            pendingWrites.append((buffer, promise))
        case .closing, .closed:
            promise?.fail(TLSError.writeAfterClose)
        }
    }

    public func flush(context: ChannelHandlerContext) {
        switch state {
        case .handshaking:
            flushRequested = true
        case .active:
            writePending(context: context)
        case .closing, .closed:
            break
        }
    }

    public func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        switch (state, mode) {
        case (.active, .all), (.active, .output):
            // Already-flushed data is out; send close_notify after it.
            if flushRequested { writePending(context: context) }
            failPendingWrites(ChannelError.ioOnClosedChannel)
            state = .closing
            connection.shutdown()
            sendOutput(context: context)
            context.close(mode: mode, promise: promise)
        case (.handshaking, .all):
            state = .closed
            timeoutTask?.cancel()
            failPendingWrites(ChannelError.ioOnClosedChannel)
            context.close(mode: mode, promise: promise)
        default:
            context.close(mode: mode, promise: promise)
        }
    }

    /// Encrypts every pending write and sends all the ciphertext in one
    /// channel write. Runs of small writes are copied into one buffer first
    /// so they share records; a write of a full record or more is encrypted
    /// in place, saving the copy. ``SSLConnection/write(_:into:)`` calls
    /// SSL_write once per 16 KiB record.
    private func writePending(context: ChannelHandlerContext) {
        flushRequested = false
        guard !pendingWrites.isEmpty else { return }
        var promises: [EventLoopPromise<Void>] = []
        promises.reserveCapacity(pendingWrites.count)
        // Room for every record's 22 bytes of header, type and tag.
        let records = pendingBytes / Self.recordSize + pendingWrites.count
        var ciphertext = context.channel.allocator.buffer(capacity: pendingBytes + records * 22 + 64)
        connection.drainOutput(into: &ciphertext)
        var run: ByteBuffer? = nil
        var failure: TLSError? = nil
        while let (buffer, promise) = pendingWrites.popFirst() {
            if let promise { promises.append(promise) }
            guard failure == nil else { continue }
            if buffer.readableBytes >= Self.recordSize {
                if let pending = run { failure = connection.write(pending, into: &ciphertext); run = nil }
                if failure == nil { failure = connection.write(buffer, into: &ciphertext) }
            } else if run == nil, pendingWrites.isEmpty {
                failure = connection.write(buffer, into: &ciphertext)  // a lone small write needs no copy
            } else {
                var small = buffer
                var combined = run ?? context.channel.allocator.buffer(capacity: min(pendingBytes, 4 * Self.recordSize))
                combined.writeBuffer(&small)
                if combined.readableBytes >= Self.recordSize {
                    failure = connection.write(combined, into: &ciphertext)
                    run = nil
                } else {
                    run = combined
                }
            }
        }
        if failure == nil, let pending = run { failure = connection.write(pending, into: &ciphertext) }
        pendingBytes = 0
        if let failure {
            promises.forEach { $0.fail(failure) }
            fail(context: context, error: failure)
            return
        }
        guard ciphertext.readableBytes > 0 else {
            promises.forEach { $0.succeed() }
            return
        }
        let promise: EventLoopPromise<Void>?
        switch promises.count {
        case 0: promise = nil
        case 1: promise = promises[0]
        default:
            let combinedPromise = context.eventLoop.makePromise(of: Void.self)
            let waiting = promises
            combinedPromise.futureResult.whenComplete { result in waiting.forEach { $0.completeWith(result) } }
            promise = combinedPromise
        }
        context.writeAndFlush(wrapOutboundOut(ciphertext), promise: promise)
    }

    /// The largest TLS record's plaintext.
    static let recordSize = 16_384
    /// Ciphertext handed to OpenSSL per step when a read brings more.
    static let feedSize = 4 * (16_384 + 22)

    /// Sends whatever ciphertext OpenSSL produced (handshake flights,
    /// alerts, close_notify, key updates).
    private func sendOutput(context: ChannelHandlerContext) {
        guard let ciphertext = connection.takeOutput(allocator: context.channel.allocator) else { return }
        context.writeAndFlush(wrapOutboundOut(ciphertext), promise: nil)
    }

    private func failPendingWrites(_ error: any Error) {
        flushRequested = false
        pendingBytes = 0
        while let (_, promise) = pendingWrites.popFirst() { promise?.fail(error) }
    }

    /// Sends any alert OpenSSL queued, reports the error and closes.
    private func fail(context: ChannelHandlerContext, error: TLSError) {
        switch state {
        case .closed: return
        case .handshaking, .active, .closing: break
        }
        timeoutTask?.cancel()
        timeoutTask = nil
        state = .closed
        sendOutput(context: context)
        failPendingWrites(error)
        context.fireErrorCaught(error)
        context.close(promise: nil)
    }
}

@available(*, unavailable)
extension TLSHandler: Sendable {}
