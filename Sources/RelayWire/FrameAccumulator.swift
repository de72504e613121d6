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
    /// The part of a read after the bytes that completed `pending`'s frame,
    /// decoded in place once `pending` is used up.
    private var queued: ByteBuffer?

    public init(decoder: RelayFrameDecoder) {
        self.decoder = decoder
    }

    /// Adds bytes read from the connection. A read that arrives when nothing
    /// is pending is kept as is, without copying. When a frame is pending,
    /// only the bytes that complete it are copied next to it; the rest of
    /// the read (usually nearly all of a 16 KiB TLS record) stays where it is,
    /// so a read costs one copy of one straddling frame, not of the whole read.
    public mutating func append(_ bytes: ByteBuffer) {
        if pending.readableBytes == 0, queued == nil {
            pending = bytes
            return
        }
        if queued != nil {
            // Two reads without next() in between (not how the handlers call it): keep it simple.
            queued?.writeImmutableBuffer(bytes)
            return
        }
        var rest = bytes
        // Complete the 4-byte length first, then the frame it announces. A
        // length above the limit moves at most this read: next() refuses it.
        if pending.readableBytes < 4, let head = rest.readSlice(length: Swift.min(4 - pending.readableBytes, rest.readableBytes)) {
            pending.writeImmutableBuffer(head)
        }
        if let length = pending.getInteger(at: pending.readerIndex, as: UInt32.self) {
            let missing = 4 + Int(length) - pending.readableBytes
            if missing > 0, let body = rest.readSlice(length: Swift.min(missing, rest.readableBytes)) {
                pending.writeImmutableBuffer(body)
            }
        }
        if rest.readableBytes > 0 { queued = rest }
    }

    /// The next complete frame, or nil until more bytes arrive. After an
    /// error the connection must be closed; call nothing else.
    @inline(__always)
    public mutating func next() throws(WireError) -> Frame? {
        try advance { (decoder, buffer) throws(WireError) in try decoder.decodeFrame(&buffer) }
    }

    /// A frame, or a MSG decoded in place (``RelayFrameDecoder/decodeRepeatedMessage(_:)``).
    public enum Decoded {
        case frame(Frame)
        case message(Message)
    }

    /// ``next()`` for a client: a MSG that repeats the previous one's topic
    /// and principal and has no headers (a subscription's stream, nearly
    /// always) comes as its ``Message`` without a ``Frame`` around it and
    /// without re-parsing what the last one had; anything else as ``next()``
    /// gives it, with every check.
    @inline(__always)
    public mutating func nextDecoded() throws(WireError) -> Decoded? {
        try advance { (decoder, buffer) throws(WireError) -> Decoded? in
            if let message = decoder.decodeRepeatedMessage(&buffer) { return .message(message) }
            return try decoder.decodeFrame(&buffer).map { .frame($0) }
        }
    }

    /// A frame, or a PUB decoded in place (``RelayFrameDecoder/decodeRepeatedPublish(_:)``).
    public enum BrokerDecoded {
        case frame(Frame)
        case publish(Publish)
    }

    /// ``next()`` for the broker: a PUB that repeats the previous one's
    /// topic and has no headers (a publisher's stream, nearly always) comes
    /// as its ``Publish`` without a ``Frame`` around it; anything else as
    /// ``next()`` gives it, with every check.
    @inline(__always)
    public mutating func nextForBroker() throws(WireError) -> BrokerDecoded? {
        try advance { (decoder, buffer) throws(WireError) -> BrokerDecoded? in
            if let publish = decoder.decodeRepeatedPublish(&buffer) { return .publish(publish) }
            return try decoder.decodeFrame(&buffer).map { .frame($0) }
        }
    }

    /// Decodes from `pending` with `decode` until it yields, moving on to the queued read.
    /// Internal, not private: ``drainClientFrames(publishAck:message:frame:)`` uses it.
    @inline(__always)
    mutating func advance<Item>(
        _ decode: (inout RelayFrameDecoder, inout ByteBuffer) throws(WireError) -> Item?
    ) throws(WireError) -> Item? {
        while true {
            if let item = try decode(&decoder, &pending) { return item }
            guard let rest = queued else { break }
            queued = nil
            if pending.readableBytes == 0 {
                pending = rest
            } else {
                pending.writeImmutableBuffer(rest)  // only after two appends in a row
            }
        }
        if pending.readableBytes == 0 {
            pending = ByteBuffer()  // let go of the read buffer; delivered slices keep what they need
        } else if pending.readerIndex > 0 {
            keepIncompleteFrame()
        }
        return nil
    }

    /// Moves the incomplete frame at the end of a read into a buffer of its
    /// own, sized for the whole frame when its length is known.
    ///
    /// `discardReadBytes()` did this in place only when the read buffer was
    /// uniquely referenced, which it never is here (the caller's `NIOAny`
    /// still holds the read, delivered payload slices pin it): it then
    /// copied the whole buffer's capacity, 64-80 KiB of a TLS read, to keep
    /// a frame's tail: ~67,000 instructions per read, 226 per replayed
    /// 128 B message in the Swift client's profile (wave 12).
    private mutating func keepIncompleteFrame() {
        let readable = pending.readableBytes
        // The decoder refuses a length over its limit as soon as it is read; capped here all the same.
        let announced = pending.getInteger(at: pending.readerIndex, as: UInt32.self)
            .map { 4 + Swift.min(Int($0), decoder.currentMaxFrameSize) } ?? 0
        var own = ByteBufferAllocator().buffer(capacity: Swift.max(readable, announced))
        own.writeBuffer(&pending)
        pending = own
    }

    /// Capacity of the buffer holding an incomplete frame (tests: it must not pin a whole read).
    var pendingCapacity: Int { pending.capacity }

    /// Bytes of an incomplete frame being held.
    public var bufferedBytes: Int { pending.readableBytes + (queued?.readableBytes ?? 0) }

    /// At end of input: throws `protocol_violation` when it ends inside a frame.
    public func finish() throws(WireError) {
        if pending.readableBytes > 0 {
            throw WireError(.protocolViolation, "the connection closed inside a frame (\(pending.readableBytes) bytes pending)")
        }
    }
}
