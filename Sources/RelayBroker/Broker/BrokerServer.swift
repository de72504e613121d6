import NIOCore
import NIOPosix
import RelayTLS
import RelayWire

/// The mutual-TLS listener. Each accepted connection gets, in order: the
/// OpenSSL handler (nothing passes it before the client certificate is
/// verified) and a ``SessionHandler``, which decodes the frames itself.
public final class BrokerServer: Sendable {
    let channel: any Channel
    public let context: BrokerContext

    public var port: Int { channel.localAddress?.port ?? 0 }

    public static func start(context: BrokerContext, host: String, port: Int,
                             group: any EventLoopGroup) async throws -> BrokerServer {
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.maxMessagesPerRead, value: 16)
            .childChannelOption(.writeBufferWaterMark, value: .init(low: 256 << 10, high: 1 << 20))
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    // Read before the TLS context: see SessionIO.acceptedGeneration.
                    let generation = context.generation
                    let tls = try context.tls.makeHandler()
                    let sync = channel.pipeline.syncOperations
                    try sync.addHandler(tls)
                    try sync.addHandler(SessionHandler(broker: context, allocator: channel.allocator, generation: generation))
                }
            }
            .bind(host: host, port: port).get()
        return BrokerServer(channel: channel, context: context)
    }

    private init(channel: any Channel, context: BrokerContext) {
        self.channel = channel
        self.context = context
    }

    /// Stops accepting new connections.
    public func closeListener() async {
        try? await channel.close()
    }
}
