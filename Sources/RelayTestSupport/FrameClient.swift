import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import RelayTLS
import RelayWire

/// A bare protocol client for broker tests: real TLS, real frames, no
/// client-library logic, so tests can send exactly what they mean —
/// including malformed bytes — and see every frame the broker answers.
public final class FrameClient: @unchecked Sendable {
    // @unchecked: `stashed` is only used by the one test task that owns the
    // client; the inbox is lock-protected.
    public let channel: any Channel
    private let inbox: FrameInbox
    /// Frames a helper read past while looking for a reply; `next` returns them first.
    private var stashed: [Frame] = []

    public static let group = MultiThreadedEventLoopGroup.singleton

    /// The wait for an event that must come (the TLS handshake, WELCOME):
    /// long enough for a full-suite run at load 10 on 2 vCPUs, so a timeout
    /// means the event is not coming.
    public static let loadedMachineDeadline = TimeAmount.seconds(60)

    /// - Parameters:
    ///   - sourceAddress: a local address to connect from (any of
    ///     127.0.0.0/8 works on Linux), for per-source-address limits.
    ///   - handshakeTimeout: how long this client waits for the TLS handshake.
    ///     Its clock starts when TCP is up, which the kernel's backlog makes
    ///     happen before relayd accepts; on a loaded machine relayd was seen
    ///     accepting 8 s later, so the default is a generous deadline
    ///     (``loadedMachineDeadline``), not the 10 s of a production client.
    public static func connect(port: Int, pki: TLSTestPKI, as client: TLSTestPKI.Files? = nil,
                               from sourceAddress: String? = nil,
                               handshakeTimeout: TimeAmount = loadedMachineDeadline) async throws -> FrameClient {
        var configuration = pki.clientConfiguration(client)
        configuration.handshakeTimeout = handshakeTimeout
        let context = try TLSClientContext(configuration: configuration)
        let inbox = FrameInbox()
        var bootstrap = ClientBootstrap(group: group)
        if let sourceAddress { bootstrap = bootstrap.bind(to: try SocketAddress(ipAddress: sourceAddress, port: 0)) }
        let channel = try await bootstrap
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let sync = channel.pipeline.syncOperations
                    try sync.addHandler(try context.makeHandler())
                    try sync.addHandler(ByteToMessageHandler(FrameDecoder(role: .client, maxFrameSize: 64 << 20)))
                    try sync.addHandler(Collector(inbox: inbox))
                }
            }
            .connect(host: "127.0.0.1", port: port).get()
        return FrameClient(channel: channel, inbox: inbox)
    }

    private init(channel: any Channel, inbox: FrameInbox) {
        self.channel = channel
        self.inbox = inbox
    }

    /// Sends frames in one write.
    public func send(_ frames: Frame...) async throws {
        var buffer = channel.allocator.buffer(capacity: 256)
        for frame in frames { try buffer.writeFrame(frame) }
        try await channel.writeAndFlush(buffer)
    }

    /// Sends raw bytes (inside TLS): for malformed-frame tests.
    public func sendRaw(_ bytes: [UInt8]) async throws {
        try await channel.writeAndFlush(channel.allocator.buffer(bytes: bytes))
    }

    /// Stops reading from the socket, so the broker's writes fill the TCP
    /// window: a subscriber that has stalled.
    public func pauseReading() async throws {
        try await channel.setOption(.autoRead, value: false).get()
    }

    public func resumeReading() async throws {
        try await channel.setOption(.autoRead, value: true).get()
        channel.read()
    }

    /// The next frame, nil when the connection closed, or the error that closed it.
    public func next(timeout: TimeAmount = .seconds(10)) async throws -> Frame? {
        if !stashed.isEmpty { return stashed.removeFirst() }
        let deadline = NIODeadline.now() + timeout
        while true {
            switch inbox.pop() {
            case .frame(let frame): return frame
            case .closed(nil): return nil
            case .closed(let error?): throw error
            case .empty:
                guard NIODeadline.now() < deadline else { throw FrameClientError.timeout }
                await inbox.waitForMore(until: deadline, on: channel.eventLoop)
            }
        }
    }

    /// Reads until `isReply` accepts a frame and returns it; frames read on
    /// the way (deliveries arriving before a SUBACK, say) stay queued for `next`.
    public func nextReply(timeout: TimeAmount = .seconds(10), where isReply: (Frame) -> Bool) async throws -> Frame? {
        var skipped: [Frame] = []
        defer { stashed.append(contentsOf: skipped) }
        while true {
            guard let frame = try await next(timeout: timeout) else { return nil }
            if isReply(frame) { return frame }
            skipped.append(frame)
        }
    }

    /// HELLO, then WELCOME (or the ERR that refused us, as an error).
    @discardableResult
    public func hello(sessionID: ProducerSessionID = .none,
                      timeout: TimeAmount = loadedMachineDeadline) async throws -> Welcome {
        do {
            try await send(.hello(Hello(maxFrameSize: 64 << 20, sessionID: sessionID, clientName: "frame-client")))
        } catch let writeError {
            // The write fails on a channel that is already closed. What closed
            // it is the answer: an ERR that beat the HELLO (too_many_connections,
            // then close), or the error that ended the connection (a TLS
            // handshake that timed out while this task waited to run), not
            // the write's "I/O on closed channel".
            let cause: Frame?
            do {
                cause = try await next()
            } catch FrameClientError.timeout {
                throw writeError  // still open: the write failed for its own reason
            } catch let closedBy {
                throw closedBy
            }
            if case .error(let refusal)? = cause { throw FrameClientError.refused(refusal) }
            throw writeError
        }
        switch try await next(timeout: timeout) {
        case .welcome(let welcome): return welcome
        case .error(let error): throw FrameClientError.refused(error)
        case let other: throw FrameClientError.unexpected(String(describing: other))
        }
    }

    public func close() async {
        try? await channel.close()
    }

    private final class Collector: ChannelInboundHandler {
        typealias InboundIn = Frame
        let inbox: FrameInbox
        init(inbox: FrameInbox) { self.inbox = inbox }
        func channelRead(context: ChannelHandlerContext, data: NIOAny) { inbox.push(unwrapInboundIn(data)) }
        func channelInactive(context: ChannelHandlerContext) { inbox.finish(nil) }
        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            inbox.finish(error)
            context.close(promise: nil)
        }
    }
}

/// Frames received and not yet taken, shared by the channel (producer) and
/// the test task (consumer). Taking a frame that is already here costs no
/// task or continuation, so tests can drain a million deliveries quickly.
final class FrameInbox: @unchecked Sendable {
    // @unchecked: every field is guarded by `lock`.
    enum Pop { case frame(Frame), closed((any Error)?), empty }

    private let lock = NIOLock()
    private var frames = CircularBuffer<Frame>()
    private var closed = false
    private var closeError: (any Error)?
    private var waiter: CheckedContinuation<Void, Never>?

    func push(_ frame: Frame) {
        let waiter = lock.withLock { () -> CheckedContinuation<Void, Never>? in
            frames.append(frame)
            defer { self.waiter = nil }
            return self.waiter
        }
        waiter?.resume()
    }

    func finish(_ error: (any Error)?) {
        let waiter = lock.withLock { () -> CheckedContinuation<Void, Never>? in
            if !closed { closed = true; closeError = error }
            defer { self.waiter = nil }
            return self.waiter
        }
        waiter?.resume()
    }

    func pop() -> Pop {
        lock.withLock {
            if let frame = frames.popFirst() { return .frame(frame) }
            return closed ? .closed(closeError) : .empty
        }
    }

    /// Suspends until a frame or the close arrives, or the deadline passes.
    func waitForMore(until deadline: NIODeadline, on loop: any EventLoop) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let ready = lock.withLock { () -> Bool in
                if !frames.isEmpty || closed { return true }
                waiter = continuation
                return false
            }
            if ready { return continuation.resume() }
            loop.scheduleTask(deadline: deadline) { [self] in
                let expired = lock.withLock { () -> CheckedContinuation<Void, Never>? in
                    defer { waiter = nil }
                    return waiter
                }
                expired?.resume()
            }
        }
    }
}

public enum FrameClientError: Error, CustomStringConvertible {
    case timeout
    case refused(ErrorFrame)
    case unexpected(String)

    public var description: String {
        switch self {
        case .timeout: return "no frame in time"
        case .refused(let e): return "refused: \(e.errorCode?.name ?? String(e.code)): \(e.message)"
        case .unexpected(let s): return "unexpected frame: \(s)"
        }
    }
}
