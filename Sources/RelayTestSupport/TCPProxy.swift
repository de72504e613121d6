import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// A TCP relay on 127.0.0.1 in front of relayd, for tests that need the
/// network to fail at a chosen moment: ``dropReplies()`` makes every open
/// connection swallow what the broker sends (a lost PUBACK), and
/// ``dropRequests()`` swallows what the client sends instead (a lost ACK),
/// ``cutAll()`` then closes them (a dropped connection), and ``partition()``
/// silences every connection both ways without closing any (a network
/// partition) until ``heal()``. Bytes pass through
/// unchanged, so TLS runs end to end between the client and relayd; new
/// connections are relayed normally.
public final class TCPProxy: Sendable {
    public let port: Int
    private let listener: any Channel
    /// Every relayed connection (appended to by the accept path).
    private let pairs: NIOLockedValueBox<[Pair]>
    /// Bytes from clients swallowed since ``dropRequests()``.
    private let swallowed: NIOLockedValueBox<Int>
    /// While true, new connections are accepted and then hear nothing.
    private let partitioned: NIOLockedValueBox<Bool>

    /// One relayed connection: the client's side and the broker's side.
    private struct Pair: @unchecked Sendable {
        // @unchecked: Channel is thread-safe; the flag is a lock box.
        let client: any Channel
        let broker: any Channel
        let dropReplies: NIOLockedValueBox<Bool>
        let dropRequests: NIOLockedValueBox<Bool>
    }

    /// Listens on a free port and relays each connection to `127.0.0.1:targetPort`.
    public static func start(to targetPort: Int) async throws -> TCPProxy {
        let pairs = NIOLockedValueBox<[Pair]>([])
        let swallowed = NIOLockedValueBox(0)
        let partitioned = NIOLockedValueBox(false)
        let listener = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { client in
                // Partitioned: the SYN got through (loopback cannot lose it), nothing else does.
                if partitioned.withLockedValue({ $0 }) {
                    return client.pipeline.addHandler(Forwarder(peer: client.eventLoop.makeFailedFuture(ChannelError.ioOnClosedChannel),
                                                                drop: NIOLockedValueBox(true), swallowed: nil))
                }
                // The broker side connects on the client's loop, so bytes the
                // client sends before it is up wait on the future, in order.
                let broker = ClientBootstrap(group: client.eventLoop)
                    .channelOption(.socketOption(.tcp_nodelay), value: 1)
                    .connect(host: "127.0.0.1", port: targetPort)
                let drop = NIOLockedValueBox(false)
                let dropRequests = NIOLockedValueBox(false)
                broker.whenSuccess { broker in
                    pairs.withLockedValue {
                        $0.append(Pair(client: client, broker: broker, dropReplies: drop, dropRequests: dropRequests))
                    }
                    // On the broker channel's loop (the client's): the sync pipeline API applies.
                    do {
                        try broker.pipeline.syncOperations.addHandler(
                            Forwarder(peer: client.eventLoop.makeSucceededFuture(client), drop: drop, swallowed: nil))
                    } catch {
                        client.close(promise: nil)
                    }
                }
                broker.whenFailure { _ in client.close(promise: nil) }
                return client.pipeline.addHandler(Forwarder(peer: broker, drop: dropRequests, swallowed: swallowed))
            }
            .bind(host: "127.0.0.1", port: 0).get()
        guard let port = listener.localAddress?.port else {
            throw RelaydFixtureError(message: "the proxy's listener has no port")
        }
        return TCPProxy(port: port, listener: listener, pairs: pairs, swallowed: swallowed, partitioned: partitioned)
    }

    private init(port: Int, listener: any Channel, pairs: NIOLockedValueBox<[Pair]>, swallowed: NIOLockedValueBox<Int>,
                 partitioned: NIOLockedValueBox<Bool>) {
        self.port = port
        self.listener = listener
        self.pairs = pairs
        self.swallowed = swallowed
        self.partitioned = partitioned
    }

    /// How many connections were relayed so far.
    public var connections: Int { pairs.withLockedValue { $0.count } }

    /// From now on, what the broker sends on the connections open now is
    /// discarded; the client never sees it.
    public func dropReplies() {
        for pair in pairs.withLockedValue({ $0 }) { pair.dropReplies.withLockedValue { $0 = true } }
    }

    /// From now on, what clients send on the connections open now is
    /// discarded; the broker never sees it (``swallowedRequestBytes`` counts it).
    public func dropRequests() {
        for pair in pairs.withLockedValue({ $0 }) { pair.dropRequests.withLockedValue { $0 = true } }
    }

    /// A network partition: from now on nothing passes either way on the
    /// connections open now, and none is closed, so neither end hears of it
    /// (a router dropping the packets, a NAT that lost the mapping). New
    /// connections are accepted and hear nothing until ``heal()``.
    public func partition() {
        partitioned.withLockedValue { $0 = true }
        dropReplies()
        dropRequests()
    }

    /// Ends the partition for new connections. The connections it silenced
    /// stay silent: their state is lost, as a client must find out by itself.
    public func heal() { partitioned.withLockedValue { $0 = false } }

    /// How many bytes from clients ``dropRequests()`` has swallowed so far:
    /// the event that a client's frame was sent and lost.
    public var swallowedRequestBytes: Int { swallowed.withLockedValue { $0 } }

    /// Closes both sides of every connection open now.
    public func cutAll() async {
        for pair in pairs.withLockedValue({ $0 }) {
            try? await pair.client.close()
            try? await pair.broker.close()
        }
    }

    public func close() async {
        await cutAll()
        try? await listener.close()
    }

    /// Writes what one side reads to the other side; closes the other side when this one closes.
    private final class Forwarder: ChannelInboundHandler, @unchecked Sendable {
        // @unchecked: used on its channel's loop only; `peer` is thread-safe.
        typealias InboundIn = ByteBuffer
        let peer: EventLoopFuture<any Channel>
        let drop: NIOLockedValueBox<Bool>
        /// Counts what `drop` swallowed (client side only).
        let swallowed: NIOLockedValueBox<Int>?

        init(peer: EventLoopFuture<any Channel>, drop: NIOLockedValueBox<Bool>, swallowed: NIOLockedValueBox<Int>?) {
            self.peer = peer
            self.drop = drop
            self.swallowed = swallowed
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let bytes = unwrapInboundIn(data)
            guard !drop.withLockedValue({ $0 }) else {
                swallowed?.withLockedValue { $0 += bytes.readableBytes }
                return
            }
            peer.whenSuccess { $0.writeAndFlush(bytes, promise: nil) }
        }

        func channelInactive(context: ChannelHandlerContext) {
            peer.whenSuccess { $0.close(promise: nil) }
            context.fireChannelInactive()
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            context.close(promise: nil)
        }
    }
}
