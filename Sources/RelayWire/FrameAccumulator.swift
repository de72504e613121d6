import NIOCore

/// Turns the byte buffers a connection reads into frames, for a session
/// handler that takes `ByteBuffer` reads and handles each frame inline.
///
/// `ByteToMessageHandler(RelayFrameDecoder(...))` works too, but it wraps
/// every frame in `NIOAny` (a heap box for a value this size) and sends it
/// through the pipeline; at millions of frames a second that costs more than
/// decoding. This type does the same cumulation without either. The same
/// ``RelayFrameDecoder`` rules apply: the length is checked against the limit
/// as soon as its 4 bytes have arrived, so at most one frame (within the
/// limit) plus one read is ever buffered.
public struct FrameAccumulator {
    public var decoder: RelayFrameDecoder
    /// Bytes read but not yet decoded (the start of an incomplete frame).
    private var pending = ByteBuffer()

    public init(decoder: RelayFrameDecoder) {
        self.decoder = decoder
    }

    /// Adds bytes read from the connection. A read that arrives when nothing
    /// is pending is kept as is, without copying.
    public mutating func append(_ bytes: ByteBuffer) {
        if pending.readableBytes == 0 {
            pending = bytes
        } else {
            pending.writeImmutableBuffer(bytes)
        }
    }

    /// The next complete frame, or nil until more bytes arrive. After an
    /// error the connection must be closed; call nothing else.
    @inline(__always)
    public mutating func next() throws(WireError) -> Frame? {
        if let frame = try decoder.decodeFrame(&pending) { return frame }
        if pending.readableBytes == 0 {
            pending = ByteBuffer()  // let go of the read buffer; delivered slices keep what they need
        } else if pending.readerIndex > 0 {
            pending.discardReadBytes()  // keep only the incomplete frame
        }
        return nil
    }

    /// Bytes of an incomplete frame being held.
    public var bufferedBytes: Int { pending.readableBytes }

    /// At end of input: throws `protocol_violation` when it ends inside a frame.
    public func finish() throws(WireError) {
        if pending.readableBytes > 0 {
            throw WireError(.protocolViolation, "the connection closed inside a frame (\(pending.readableBytes) bytes pending)")
        }
    }
}
