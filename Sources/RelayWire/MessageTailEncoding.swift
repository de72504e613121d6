import NIOCore
import RelayCore

/// The MSG tail (everything after the subscription id) in few buffer
/// writes. Field by field it was 18 small `ByteBuffer` writes per committed
/// message (two integers, two str16 lengths and strings, the fingerprint's
/// four words, the header count, the block, the payload), each ~107
/// instructions of uniqueness, capacity and rebasing checks:
/// `PreparedMessage.init` was 3,192 instructions per message in wave 7's
/// profile. The fixed-size runs now go in through `OutputRawSpan` (bounds
/// checked, no unsafe pointer), the strings and buffers as one copy each.
extension ByteBuffer {
    /// Appends the MSG tail, byte for byte what ``Frame/encode(into:maxFrameSize:)``
    /// writes after the subscription id of a `.message`. Throws, writing
    /// nothing, when the topic or principal is over 65,535 bytes.
    mutating func writeMessageTail(sequence: UInt64, timestamp: UInt64, topic: String, publisherPrincipal: String,
                                   publisherFingerprint: CertificateFingerprint, headers: Headers,
                                   payload: ByteBuffer) throws(WireError) {
        let topicBytes = topic.utf8.count
        let principalBytes = publisherPrincipal.utf8.count
        guard topicBytes <= Int(UInt16.max) else {
            throw WireError(.internalError, "MSG topic is \(topicBytes) bytes; a str16 holds at most 65535")
        }
        guard principalBytes <= Int(UInt16.max) else {
            throw WireError(.internalError, "MSG publisher principal is \(principalBytes) bytes; a str16 holds at most 65535")
        }
        writeWithOutputRawSpan(minimumWritableBytes: 8 + 8 + 2) { span in
            span.append(sequence.bigEndian, as: UInt64.self)
            span.append(timestamp.bigEndian, as: UInt64.self)
            span.append(UInt16(truncatingIfNeeded: topicBytes).bigEndian, as: UInt16.self)
        }
        writeString(topic)
        writeInteger(UInt16(truncatingIfNeeded: principalBytes))
        writeString(publisherPrincipal)
        writeWithOutputRawSpan(minimumWritableBytes: CertificateFingerprint.byteCount + 2) { span in
            span.append(publisherFingerprint.w0.bigEndian, as: UInt64.self)
            span.append(publisherFingerprint.w1.bigEndian, as: UInt64.self)
            span.append(publisherFingerprint.w2.bigEndian, as: UInt64.self)
            span.append(publisherFingerprint.w3.bigEndian, as: UInt64.self)
            span.append(UInt16(truncatingIfNeeded: headers.count).bigEndian, as: UInt16.self)
        }
        if headers.encoded.readableBytes > 0 { writeImmutableBuffer(headers.encoded) }
        writeImmutableBuffer(payload)
    }
}
