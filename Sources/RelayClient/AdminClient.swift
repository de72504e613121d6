import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import RelayCore
import RelayTLS
import RelayWire

/// One admin session (Protocol/relay-v1.md §4.15): mTLS, HELLO, then ADMIN
/// requests, each answered by one ADMINREPLY (or, for `backup`, a stream
/// of them). Used by `relayctl`; separate from ``RelayConnection`` because
/// it needs none of its publishing, subscribing or reconnecting.
public final class AdminClient: Sendable {
    private let channel: any Channel
    private let inbox: AsyncThrowingStream<Frame, any Error>
    private let nextID = NIOLockedValueBox<UInt32>(1)
    /// Who the broker says this client is (from WELCOME).
    public let welcome: Welcome

    /// A refusal: the broker's code and message (`not_authorized`, …).
    public struct Refused: Error, CustomStringConvertible {
        public var code: UInt16
        public var message: String
        /// The address that refused, when the refusal came before WELCOME
        /// (with several `servers`, not necessarily the first).
        public var server: String? = nil
        public var errorCode: RelayErrorCode? { RelayErrorCode(rawValue: code) }
        public var description: String {
            let name = errorCode?.name ?? "code 0x\(String(code, radix: 16))"
            return message.isEmpty ? name : "\(name): \(message)"
        }
    }

    /// Connects to the first of `configuration.servers` that answers, sends
    /// HELLO and waits for WELCOME. An address that cannot be reached
    /// (refused, timed out, no such host, closed before WELCOME: a retryable
    /// error) is skipped for the next one, as relay-pub and relay-sub do. A
    /// refusal (the TLS handshake, an ERR in place of WELCOME) or a setting
    /// that is wrong ends the attempt at once: another edge trusting the same
    /// CA would answer the same, and moving on would hide why.
    public static func connect(_ configuration: RelayClientConfiguration,
                               group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) async throws -> AdminClient {
        var unreachable: [RelayClientError] = []
        let servers = configuration.servers
        for server in servers {
            var single = configuration
            single.servers = [server]
            do {
                return try await open(single, group: group)
            } catch var refused as Refused {
                refused.server = server.description
                throw refused
            } catch {
                // A TLS refusal, a refused connection, an unreadable key: the same
                // plain sentences and exit codes (RelayExit) as relay-pub/relay-sub.
                let mapped = RelayClientError.from(error, server: server.description)
                guard mapped.isRetryable else { throw mapped }
                unreachable.append(mapped)
            }
        }
        throw RelayClientError.noServerReachable(servers, unreachable)
    }

    private static func open(_ configuration: RelayClientConfiguration,
                             group: any EventLoopGroup) async throws -> AdminClient {
        let tls = try TLSClientContext(configuration: configuration.tls)
        let (stream, continuation) = AsyncThrowingStream<Frame, any Error>.makeStream()
        let maxFrame = configuration.maxFrameSize
        // connectTimeout bounds TCP, TLS and WELCOME together, as for RelayConnection.
        let deadline = NIODeadline.now() + configuration.connectTimeout
        let channel = try await ClientBootstrap(group: group)
            .connectTimeout(configuration.connectTimeout)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let sync = channel.pipeline.syncOperations
                    try sync.addHandler(try tls.makeHandler())
                    try sync.addHandler(ByteToMessageHandler(FrameDecoder(role: .client, maxFrameSize: maxFrame)))
                    try sync.addHandler(Inbox(continuation: continuation))
                }
            }
            .connect(host: configuration.host, port: configuration.port).get()
        let timedOut = NIOLockedValueBox(false)
        let expiry = channel.eventLoop.scheduleTask(deadline: deadline) {
            timedOut.withLockedValue { $0 = true }
            channel.close(promise: nil)
        }
        defer { expiry.cancel() }
        do {
            return try await hello(channel, inbox: stream, configuration: configuration)
        } catch where timedOut.withLockedValue({ $0 }) {
            // Whatever the close made of the handshake, the timeout is why.
            throw RelayClientError.connectTimedOut(server: configuration.server, timeout: configuration.connectTimeout,
                                                   transportUp: true)
        }
    }

    /// HELLO, then WELCOME (or the broker's refusal) on a fresh channel.
    private static func hello(_ channel: any Channel, inbox stream: AsyncThrowingStream<Frame, any Error>,
                              configuration: RelayClientConfiguration) async throws -> AdminClient {
        let maxFrame = configuration.maxFrameSize
        var hello = ByteBuffer()
        try hello.writeFrame(.hello(Hello(maxFrameSize: UInt32(maxFrame), clientName: configuration.clientName)))
        var iterator = stream.makeAsyncIterator()
        do {
            try await channel.writeAndFlush(hello)
        } catch {
            // With TLS 1.3 the broker's refusal of this certificate arrives
            // after the client's side of the handshake: the channel may close
            // on that alert before HELLO is written. The inbox then holds the
            // alert, which says why (exit 77), where the write error says
            // only "closed".
            _ = try await iterator.next()
            throw error
        }
        switch try await iterator.next() {
        case .welcome(let welcome)?:
            return AdminClient(channel: channel, inbox: stream, welcome: welcome)
        case .error(let error)?:
            channel.close(promise: nil)
            throw Refused(code: error.code, message: error.message)
        case let other:
            channel.close(promise: nil)
            throw Refused(code: RelayErrorCode.protocolViolation.rawValue,
                          message: other.map { "the broker answered HELLO with \($0.type)" } ?? "the broker closed the connection")
        }
    }

    private init(channel: any Channel, inbox: AsyncThrowingStream<Frame, any Error>, welcome: Welcome) {
        self.channel = channel
        self.inbox = inbox
        self.welcome = welcome
    }

    /// Calls `operation` with `arguments` (a JSON object's bytes; empty for
    /// none) and returns the result body (JSON). Replies with `more` set
    /// (backup data) go to `chunk` in order before the final body returns.
    /// One call at a time per client.
    public func call(_ operation: String, arguments: [UInt8] = [],
                     chunk: ((ByteBuffer) throws -> Void)? = nil) async throws -> ByteBuffer {
        let id = nextID.withLockedValue { id in
            defer { id &+= 1 }
            return id
        }
        var request = ByteBuffer()
        var body = ByteBuffer()
        body.writeBytes(arguments)
        try request.writeFrame(.admin(AdminRequest(requestID: id, operation: operation, body: body)))
        try await channel.writeAndFlush(request)
        for try await frame in inbox {
            switch frame {
            case .adminReply(let reply) where reply.requestID == id:
                if reply.code != 0 { throw Refused(code: reply.code, message: reply.message) }
                if reply.more {
                    try chunk?(reply.body)
                    continue
                }
                return reply.body
            case .error(let error) where error.subscriptionID == 0:
                throw Refused(code: error.code, message: error.message)
            case .ping(let token):
                var pong = ByteBuffer()
                try pong.writeFrame(.pong(token: token))
                try await channel.writeAndFlush(pong)
            default:
                continue
            }
        }
        throw Refused(code: RelayErrorCode.internalError.rawValue, message: "the broker closed the connection before answering \(operation)")
    }

    /// Completes when the connection closes (e.g. after `relayctl disconnect`).
    public var closeFuture: EventLoopFuture<Void> { channel.closeFuture }

    /// Says BYE and closes.
    public func close() async {
        var bye = ByteBuffer()
        try? bye.writeFrame(.bye(.normal))
        try? await channel.writeAndFlush(bye)
        try? await channel.close()
    }

    private final class Inbox: ChannelInboundHandler, Sendable {
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
