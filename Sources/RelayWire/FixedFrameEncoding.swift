import NIOCore

/// Frames of fixed size written with one buffer write.
///
/// `ByteBuffer.writeMultipleIntegers` writes each integer separately, and
/// each write is a uniqueness check, a capacity check and a copy through a
/// rebased buffer (about 107 instructions: issue 19's profile). A PUBACK was
/// seven such writes (length, type and flags, three u64s, then the length
/// set again): 1,250 instructions per published message on the broker.
/// Here the whole frame goes into the buffer's writable bytes in one step,
/// through `OutputRawSpan`, which checks every append against the space
/// reserved (no unsafe pointer).
extension ByteBuffer {
    /// Bytes of a PUBACK frame: length (4), type and flags (2), publish id,
    /// sequence and timestamp (8 each).
    static let publishAckFrameSize = 4 + FrameLayout.typeAndFlagsSize + 3 * 8

    /// Appends `ack` as a PUBACK frame, byte for byte what
    /// ``Frame/encode(into:maxFrameSize:)`` writes for `.publishAck`.
    public mutating func writePublishAck(_ ack: PublishAck) {
        let length = UInt32(Self.publishAckFrameSize - 4)
        let type = FrameType.publishAck.rawValue, flags = ack.duplicate ? PublishAck.duplicateFlag : 0
        writeWithOutputRawSpan(minimumWritableBytes: Self.publishAckFrameSize) { span in
            span.append(length.bigEndian, as: UInt32.self)
            span.append(type, as: UInt8.self)
            span.append(flags, as: UInt8.self)
            span.append(ack.publishID.bigEndian, as: UInt64.self)
            span.append(ack.sequence.bigEndian, as: UInt64.self)
            span.append(ack.timestamp.bigEndian, as: UInt64.self)
        }
    }
}
