import NIOCore
import RelayCore

extension RelayFrameDecoder {
    /// The PUBACK at the front of `buffer`, read in place, when it is
    /// complete and well formed (length 26, no undefined flag, after
    /// WELCOME, on a client's decoder). A publishing client reads one per
    /// message; through ``decodeFrame(_:)`` each was ~650 instructions of
    /// checks, a field-by-field reader and a ``Frame`` to copy and destroy.
    ///
    /// Nil, consuming nothing, for anything else: ``decodeFrame(_:)`` then
    /// decodes it with every check. A frame this accepts is one
    /// ``decodeFrame(_:)`` accepts, decoded to the same ``PublishAck``.
    @inline(__always)
    mutating func decodePublishAck(_ buffer: inout ByteBuffer) -> PublishAck? {
        guard greeted, role == .client else { return nil }
        let start = buffer.readerIndex
        guard let (length, type, flags, id, sequence, timestamp) = buffer.getMultipleIntegers(
            at: start, as: (UInt32, UInt8, UInt8, UInt64, UInt64, UInt64).self),
              type == FrameType.publishAck.rawValue, length == UInt32(ByteBuffer.publishAckFrameSize - 4),
              Int(length) <= currentMaxFrameSize, flags & ~FrameType.publishAck.definedFlags == 0 else { return nil }
        buffer.moveReaderIndex(to: start + ByteBuffer.publishAckFrameSize)
        return PublishAck(publishID: id, sequence: sequence, timestamp: timestamp,
                          duplicate: flags & PublishAck.duplicateFlag != 0)
    }
}

extension FrameAccumulator {
    /// Decodes every complete frame buffered, handing each to one of three
    /// handlers: a PUBACK to `publishAck`
    /// (``RelayFrameDecoder/decodePublishAck(_:)``), a MSG repeating the last
    /// one's strings to `message` (``RelayFrameDecoder/decodeRepeatedMessage(_:)``),
    /// anything else, with every check, to `frame` (a MSG with new strings
    /// comes there as `.message`).
    ///
    /// ``nextDecoded()`` gives the same frames, but each in a ``Decoded``
    /// enum that holds any ``Frame``: copying and destroying it cost ~300
    /// instructions per frame in the Swift client's profile (wave 9); here
    /// the frames go straight from the decoder to the handlers.
    ///
    /// The frame's type byte picks the fast path to try (a MSG was first
    /// tried as a PUBACK, one failed read of its head per message), and
    /// `message` takes the ``Message`` owned, so the subscriber's
    /// ``ReceivedMessage`` can take its strings and payload over instead of
    /// copying them and destroying the decoder's copy (wave 12).
    ///
    /// - Throws: the decoder's error; the connection must then be closed and
    ///   nothing else called. Frames before the faulty one were handed over.
    @inline(__always)
    public mutating func drainClientFrames(publishAck: (PublishAck) -> Void, message: (consuming Message) -> Void,
                                           frame: (Frame) -> Void) throws(WireError) {
        while try advance({ (decoder, buffer) throws(WireError) -> Bool? in
            let type = buffer.getInteger(at: buffer.readerIndex &+ 4, as: UInt8.self)
            if type == FrameType.message.rawValue {
                if let decoded = decoder.decodeRepeatedMessage(&buffer) {
                    message(consume decoded)
                    return true
                }
            } else if type == FrameType.publishAck.rawValue, let ack = decoder.decodePublishAck(&buffer) {
                publishAck(ack)
                return true
            }
            guard let decoded = try decoder.decodeFrame(&buffer) else { return nil }
            frame(decoded)
            return true
        }) != nil {}
    }
}
