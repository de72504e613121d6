import NIOCore
import NIOEmbedded
import RelayTLS

/// Records what reaches the end of a pipeline: plaintext, the handshake
/// event, errors, and inactivity. Tests read it after ``EmbeddedTLSPair/interact()``.
public final class TLSEventRecorder: ChannelInboundHandler {
    public typealias InboundIn = ByteBuffer

    public private(set) var received: [UInt8] = []
    public private(set) var reads = 0
    /// The capacity of each read's buffer (how much the TLS handler allocated for it).
    public private(set) var readCapacities: [Int] = []
    public private(set) var handshake: TLSHandshakeCompleted?
    public private(set) var errors: [any Error] = []
    public private(set) var inactive = false

    public init() {}

    public var tlsErrors: [TLSError] { errors.compactMap { $0 as? TLSError } }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        reads += 1
        readCapacities.append(buffer.capacity)
        received += buffer.readBytes(length: buffer.readableBytes) ?? []
    }

    public func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? TLSHandshakeCompleted { handshake = event }
        context.fireUserInboundEventTriggered(event)
    }

    public func errorCaught(context: ChannelHandlerContext, error: any Error) {
        errors.append(error)  // recorded, not forwarded: EmbeddedChannel would rethrow it
    }

    public func channelInactive(context: ChannelHandlerContext) {
        inactive = true
        context.fireChannelInactive()
    }
}

/// A client and a server EmbeddedChannel joined back to back: ``interact()``
/// shuttles bytes between them until both are quiet.
public final class EmbeddedTLSPair {
    public let client: EmbeddedChannel
    public let server: EmbeddedChannel
    public let clientRecorder = TLSEventRecorder()
    public let serverRecorder = TLSEventRecorder()
    /// Every ciphertext buffer each side wrote, in order (for record-level checks).
    public private(set) var clientWrites: [ByteBuffer] = []
    public private(set) var serverWrites: [ByteBuffer] = []

    /// Both channels share one EmbeddedEventLoop so time advances for both.
    public let loop = EmbeddedEventLoop()

    public init(client: TLSHandler, server: TLSHandler) throws {
        self.client = EmbeddedChannel(loop: loop)
        self.server = EmbeddedChannel(loop: loop)
        try self.client.pipeline.syncOperations.addHandlers([client, clientRecorder])
        try self.server.pipeline.syncOperations.addHandlers([server, serverRecorder])
    }

    /// Makes both channels active (the client sends its ClientHello) and runs the handshake.
    public func connect() throws {
        let address = try SocketAddress(ipAddress: "127.0.0.1", port: 1)
        _ = self.server.connect(to: address)
        _ = self.client.connect(to: address)
        try interact()
    }

    /// Moves bytes both ways until neither side has anything to send, each
    /// write delivered whole.
    public func interact() throws {
        try interact(pieceLength: { $0 })
    }

    /// Like ``interact()``, but hands each ciphertext write to the other side
    /// in pieces, as a network may cut it: `pieceLength(remaining)` bytes at a
    /// time (clamped to 1...remaining), each piece its own channel read.
    public func interact(pieceLength: (Int) -> Int) throws {
        var moved = true
        while moved {
            moved = false
            while var bytes = try client.readOutbound(as: ByteBuffer.self) {
                moved = true
                clientWrites.append(bytes)
                try Self.deliver(&bytes, to: server, pieceLength: pieceLength)
            }
            while var bytes = try server.readOutbound(as: ByteBuffer.self) {
                moved = true
                serverWrites.append(bytes)
                try Self.deliver(&bytes, to: client, pieceLength: pieceLength)
            }
        }
    }

    private static func deliver(_ bytes: inout ByteBuffer, to channel: EmbeddedChannel, pieceLength: (Int) -> Int) throws {
        while bytes.readableBytes > 0, channel.isActive {
            let length = max(1, min(bytes.readableBytes, pieceLength(bytes.readableBytes)))
            if let piece = bytes.readSlice(length: length) { try channel.writeInbound(piece) }
        }
    }

    /// Feeds raw bytes to the server as if from the network.
    public func sendToServer(_ bytes: [UInt8]) throws {
        try server.writeInbound(server.allocator.buffer(bytes: bytes))
    }

    public func finish() {
        _ = try? client.finish(acceptAlreadyClosed: true)
        _ = try? server.finish(acceptAlreadyClosed: true)
    }
}
