import NIOCore
import RelayWire

/// The last handler of a client pipeline (after TLS): decodes frames and
/// hands every event to the connection core, tagged with the attempt it
/// belongs to so events of an old connection never touch a new one.
///
/// Frames are decoded here (``FrameAccumulator``) rather than by NIO's
/// `ByteToMessageHandler`, which boxes each frame in `NIOAny` and sends it
/// through the pipeline: about 450 ns per frame, and a client reads one
/// PUBACK per publish and one MSG per delivery. Those two come out of the
/// accumulator without a ``Frame`` around them
/// (``FrameAccumulator/drainClientFrames(publishAck:message:frame:)``).
final class ClientChannelHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private let core: ConnectionCore
    private let generation: UInt64
    private var frames: FrameAccumulator
    /// Set after a decoding error: the connection is closing, read nothing more.
    private var failed = false
    /// True while `frames` hands frames to the core. The core may close the
    /// channel from a handler (BYE, an ERR that ends the connection), and NIO
    /// then runs `channelInactive` inside that call: it must not touch
    /// `frames`, which the drain is still modifying (an exclusivity
    /// violation). The bytes after a frame that made this side close do
    /// not matter, so the end-of-input check is skipped.
    private var draining = false

    init(core: ConnectionCore, generation: UInt64, maxFrameSize: Int) {
        self.core = core
        self.generation = generation
        self.frames = FrameAccumulator(decoder: RelayFrameDecoder(role: .client, maxFrameSize: maxFrameSize))
    }

    func channelActive(context: ChannelHandlerContext) {
        core.transportUp(channel: context.channel, generation: generation)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !failed else { return }
        frames.append(unwrapInboundIn(data))
        let core = self.core, generation = self.generation
        draining = true
        defer { draining = false }
        do {
            // PUBACKs and repeated MSGs straight to the core, without a Frame or an enum around them.
            try frames.drainClientFrames(publishAck: { core.received($0, generation: generation) },
                                         message: { message in core.received(consume message, generation: generation) },
                                         frame: { core.received($0, generation: generation) })
        } catch {
            failed = true
            core.connectionError(error, generation: generation)
            context.close(promise: nil)
        }
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
        if !failed, !draining {
            do { try frames.finish() } catch { core.connectionError(error, generation: generation) }
        }
        core.connectionClosed(generation: generation)
        context.fireChannelInactive()
    }
}
