import NIOCore
@testable import RelayWire

/// Feeds `input` to a fresh accumulator (no handshake expected) in reads of
/// `chunk` bytes, calling `drain` after each read, then checks that no
/// partial frame is left: the loop the in-place decoding suites share to
/// prove a fast path gives the same frames however the bytes arrive.
func feedInReads(_ input: ByteBuffer, chunk: Int, role: WireRole,
                 drain: (inout FrameAccumulator) throws -> Void) throws {
    var accumulator = FrameAccumulator(decoder: RelayFrameDecoder(role: role, expectHandshake: false))
    var rest = input
    while let read = rest.readSlice(length: min(chunk, rest.readableBytes)), read.readableBytes > 0 {
        accumulator.append(read)
        try drain(&accumulator)
    }
    try accumulator.finish()
}
