import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import RelayTLS
import RelayWire

/// A bare protocol client for broker tests: real TLS, real frames, no
/// client-library logic, so tests can send exactly what they mean —
/// including malformed bytes — and see every frame the broker answers.
public final class FrameClient: @unchecked Sendable {
    // @unchecked: `iterator` is only used by the one test task that owns the client.
    public let channel: any Channel
    private let inbox: AsyncThrowingStream<Frame, any Error>
    private let reader: IteratorBox
    private var pending: Task<Frame?, any Error>?
    /// Frames a helper read past while looking for a reply; `next` returns them first.
    private var stashed: [Frame] = []

    public static let group = MultiThreadedEventLoopGroup.singleton

    public static func connect(port: Int, pki: TLSTestPKI, as client: TLSTestPKI.Files? = nil) async throws -> FrameClient {
        let context = try TLSClientContext(configuration: pki.clientConfiguration(client))
        let (stream, continuation) = AsyncThrowingStream<Frame, any Error>.makeStream()
        let channel = try await ClientBootstrap(group: group)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let sync = channel.pipeline.syncOperations
                    try sync.addHandler(try context.makeHandler())
                    try sync.addHandler(ByteToMessageHandler(FrameDecoder(role: .client, maxFrameSize: 64 << 20)))
                    try sync.addHandler(Collector(continuation: continuation))
                }
            }
            .connect(host: "127.0.0.1", port: port).get()
        return FrameClient(channel: channel, inbox: stream)
    }

    private init(channel: any Channel, inbox: AsyncThrowingStream<Frame, any Error>) {
        self.channel = channel
        self.inbox = inbox
        self.reader = IteratorBox(inbox.makeAsyncIterator())
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

    /// The next frame, nil when the connection closed, or the error that closed it.
    /// On timeout the pending read keeps waiting and the next call gets its frame.
    public func next(timeout: TimeAmount = .seconds(10)) async throws -> Frame? {
        if !stashed.isEmpty { return stashed.removeFirst() }
        if pending == nil {
            let reader = self.reader
            pending = Task { try await reader.next() }
        }
        guard let read = pending else { return nil }
        // Race the read against a timer without a task group: a group would
        // wait for its reading child, and awaiting `Task.value` ignores
        // cancellation, so a timeout would never return.
        let outcome: Result<Frame?, any Error>? = await withCheckedContinuation { continuation in
            let resumed = NIOLockedValueBox(false)
            let finish: @Sendable (Result<Frame?, any Error>?) -> Void = { result in
                let first = resumed.withLockedValue { done in
                    defer { done = true }
                    return !done
                }
                if first { continuation.resume(returning: result) }
            }
            let timer = Task {
                try? await Task.sleep(nanoseconds: UInt64(timeout.nanoseconds))
                finish(nil)
            }
            Task {
                do { finish(.success(try await read.value)) } catch { finish(.failure(error)) }
                timer.cancel()
            }
        }
        guard let outcome else { throw FrameClientError.timeout }
        pending = nil
        return try outcome.get()
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

    /// Carries the stream iterator into the reading task; only one read runs at a time.
    private final class IteratorBox: @unchecked Sendable {
        var iterator: AsyncThrowingStream<Frame, any Error>.AsyncIterator
        init(_ iterator: AsyncThrowingStream<Frame, any Error>.AsyncIterator) { self.iterator = iterator }
        func next() async throws -> Frame? { try await iterator.next() }
    }

    /// HELLO, then WELCOME (or the ERR that refused us, as an error).
    @discardableResult
    public func hello(sessionID: ProducerSessionID = .none) async throws -> Welcome {
        try await send(.hello(Hello(maxFrameSize: 64 << 20, sessionID: sessionID, clientName: "frame-client")))
        switch try await next() {
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
        let continuation: AsyncThrowingStream<Frame, any Error>.Continuation
        init(continuation: AsyncThrowingStream<Frame, any Error>.Continuation) { self.continuation = continuation }
        func channelRead(context: ChannelHandlerContext, data: NIOAny) { continuation.yield(unwrapInboundIn(data)) }
        func channelInactive(context: ChannelHandlerContext) { continuation.finish() }
        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            continuation.finish(throwing: error)
            context.close(promise: nil)
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
