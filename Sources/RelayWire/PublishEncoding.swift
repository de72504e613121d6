import NIOCore
import RelayCore

/// PUB, a client's one frame per published message, in four buffer writes.
///
/// Through ``Frame/encode(into:maxFrameSize:)`` a PUB was seven small
/// `ByteBuffer` writes (length, type and flags with the id, the topic's
/// length, the topic, the header count, the header block, the payload) plus
/// setting the length afterwards, each ~107 instructions of uniqueness,
/// capacity and rebasing checks, and the ``Frame`` and ``Publish`` values
/// around the fields copied and destroyed: 2,205 instructions per 128-byte
/// publish in the Swift client's profile (issue 19, wave 9). Here the length
/// is computed first, the fixed-size head goes in through `OutputRawSpan`
/// (bounds checked, no unsafe pointer), and the topic, header block and
/// payload are one copy each.
extension ByteBuffer {
    /// Appends a PUB frame, byte for byte what ``Frame/encode(into:maxFrameSize:)``
    /// writes for `.publish(Publish(publishID:topic:headers:payload:))`.
    /// - Throws: ``WireError``, writing nothing, when the topic is over
    ///   65,535 bytes (`internal_error`) or the frame's length is over
    ///   `maxFrameSize` (`frame_too_large`), as `Frame.encode` does.
    public mutating func writePublish(publishID: UInt64, topic: String, headers: Headers, payload: ByteBuffer,
                                      maxFrameSize: Int = Int(FrameLayout.maximumMaxFrameSize)) throws(WireError) {
        try writePublish(publishID: publishID, topic: topic, headers: headers.count == 0 ? nil : Optional(headers),
                         payload: payload, maxFrameSize: maxFrameSize)
    }

    /// The same PUB, with nil for no headers: a client that keeps the
    /// headers of a publish without any as nil copies no ``Headers`` value
    /// per publish (copying ``Headers/empty`` was ~430 instructions a publish
    /// in the Swift client's profile, wave 22).
    public mutating func writePublish(publishID: UInt64, topic: String, headers: Headers?, payload: ByteBuffer,
                                      maxFrameSize: Int = Int(FrameLayout.maximumMaxFrameSize)) throws(WireError) {
        let topicBytes = topic.utf8.count
        guard topicBytes <= Int(UInt16.max) else {
            throw WireError(.internalError, "PUB topic is \(topicBytes) bytes; a str16 holds at most 65535")
        }
        // Type and flags, publish id, topic length, topic, header block (count included), payload.
        let headerBytes = headers?.wireSize ?? 2
        let length = FrameLayout.typeAndFlagsSize + 8 + 2 + topicBytes + headerBytes + payload.readableBytes
        guard length <= maxFrameSize, length <= Int(UInt32.max) else {
            throw WireError(.frameTooLarge, "\(FrameType.publish) frame is \(length) bytes; the peer accepts at most \(maxFrameSize)")
        }
        reserveCapacity(minimumWritableBytes: 4 + length)
        let type = FrameType.publish.rawValue
        writeWithOutputRawSpan(minimumWritableBytes: 4 + FrameLayout.typeAndFlagsSize + 8 + 2) { span in
            span.append(UInt32(truncatingIfNeeded: length).bigEndian, as: UInt32.self)
            span.append(type, as: UInt8.self)
            span.append(UInt8(0), as: UInt8.self)
            span.append(publishID.bigEndian, as: UInt64.self)
            span.append(UInt16(truncatingIfNeeded: topicBytes).bigEndian, as: UInt16.self)
        }
        writeString(topic)
        if let headers {
            headers.write(into: &self)
        } else {
            // The count alone; a span is cheaper than writeInteger's generic path.
            writeWithOutputRawSpan(minimumWritableBytes: 2) { span in span.append(UInt16(0), as: UInt16.self) }
        }
        writeImmutableBuffer(payload)
    }
}
