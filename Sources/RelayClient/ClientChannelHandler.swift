import NIOCore
import RelayWire

/// The last handler of a client pipeline (after TLS and the frame decoder):
/// hands every event to the connection core, tagged with the attempt it
/// belongs to so events of an old connection never touch a new one.
final class ClientChannelHandler: ChannelInboundHandler {
    typealias InboundIn = Frame

    private let core: ConnectionCore
    private let generation: UInt64

    init(core: ConnectionCore, generation: UInt64) {
        self.core = core
        self.generation = generation
    }

    func channelActive(context: ChannelHandlerContext) {
        core.transportUp(channel: context.channel, generation: generation)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        core.received(unwrapInboundIn(data), generation: generation)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        core.readComplete(generation: generation)
        context.fireChannelReadComplete()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        core.connectionError(error, generation: generation)
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        core.connectionClosed(generation: generation)
        context.fireChannelInactive()
    }
}
