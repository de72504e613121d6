import NIOCore
import RelayCore

/// A MSG encoded once for every subscription that receives it.
///
/// MSG frames for one message differ only in the 4-byte subscription id and
/// the replayed flag. Encoding topic, principal, headers and payload once
/// and copying the bytes per subscriber costs one memcpy each instead of K
/// re-encodings. The header block is the publisher's, verbatim: the PUB's
/// bytes live, the same bytes read back from the store on replay.
public struct PreparedMessage: Sendable, Hashable {
    /// Everything after the subscription id: sequence, timestamp, topic,
    /// principal, fingerprint, headers, payload.
    public let tail: ByteBuffer

    public init(sequence: UInt64, timestamp: UInt64, topic: String, publisherPrincipal: String,
                publisherFingerprint: CertificateFingerprint, headers: Headers, payload: ByteBuffer,
                allocator: ByteBufferAllocator = ByteBufferAllocator()) throws(WireError) {
        var tail = allocator.buffer(capacity: 16 + 2 + topic.utf8.count + 2 + publisherPrincipal.utf8.count
            + CertificateFingerprint.byteCount + headers.wireSize + payload.readableBytes)
        try tail.writeMessageTail(sequence: sequence, timestamp: timestamp, topic: topic,
                                  publisherPrincipal: publisherPrincipal, publisherFingerprint: publisherFingerprint,
                                  headers: headers, payload: payload)
        self.tail = tail
    }

    /// A tail written elsewhere (``MessageTailBatch``), byte for byte what the
    /// initializer above writes.
    init(tail: ByteBuffer) {
        self.tail = tail
    }

    /// Writes one MSG frame straight from its fields, without a tail to share:
    /// the replay path, where each message goes to one subscription. The
    /// bytes are those of `PreparedMessage(...).write(...)`. Throws, writing
    /// nothing, when the frame exceeds `maxFrameSize` or a string a str16.
    public static func writeFrame(subscriptionID: UInt32, replayed: Bool, sequence: UInt64, timestamp: UInt64,
                                  topic: String, publisherPrincipal: String, publisherFingerprint: CertificateFingerprint,
                                  headers: Headers, payload: ByteBuffer, into out: inout ByteBuffer,
                                  maxFrameSize: Int) throws(WireError) {
        let topicBytes = topic.utf8.count
        let principalBytes = publisherPrincipal.utf8.count
        guard topicBytes <= Int(UInt16.max), principalBytes <= Int(UInt16.max) else {
            throw WireError(.internalError, "a MSG topic or principal is over 65535 bytes")
        }
        let tailLength = 16 + 2 + topicBytes + 2 + principalBytes + CertificateFingerprint.byteCount
            + headers.wireSize + payload.readableBytes
        let length = FrameLayout.typeAndFlagsSize + 4 + tailLength
        guard length <= maxFrameSize else {
            throw WireError(.frameTooLarge, "MSG frame is \(length) bytes; the subscriber accepts at most \(maxFrameSize)")
        }
        out.reserveCapacity(minimumWritableBytes: 4 + length)
        out.writeMultipleIntegers(UInt32(truncatingIfNeeded: length), FrameType.message.rawValue,
                                  replayed ? Message.replayedFlag : 0, subscriptionID, sequence, timestamp)
        out.writeInteger(UInt16(truncatingIfNeeded: topicBytes))
        out.writeString(topic)
        out.writeInteger(UInt16(truncatingIfNeeded: principalBytes))
        out.writeString(publisherPrincipal)
        publisherFingerprint.write(into: &out)
        headers.write(into: &out)
        out.writeImmutableBuffer(payload)
    }

    /// Writes the start of one MSG frame, up to and including its
    /// timestamp, for a caller that appends the remaining
    /// `fieldsSize` bytes itself (topic, principal, fingerprint, headers,
    /// payload, in that order: a replay writes them straight from the
    /// stored record). Throws, writing nothing, when the frame would exceed
    /// `maxFrameSize`; reserves room for the whole frame.
    @inline(__always)
    public static func writeHead(subscriptionID: UInt32, replayed: Bool, sequence: UInt64, timestamp: UInt64,
                                 fieldsSize: Int, into out: inout ByteBuffer, maxFrameSize: Int) throws(WireError) {
        let length = FrameLayout.typeAndFlagsSize + 4 + 16 + fieldsSize
        guard length <= maxFrameSize else {
            throw WireError(.frameTooLarge, "MSG frame is \(length) bytes; the subscriber accepts at most \(maxFrameSize)")
        }
        out.reserveCapacity(minimumWritableBytes: 4 + length)
        // The 26 bytes in one write: `writeMultipleIntegers` did six, each
        // with its own uniqueness, capacity and rebasing checks (~1,000 of
        // the ~4,600 instructions a replayed MSG took in relayd, wave 10).
        let flags = replayed ? Message.replayedFlag : 0
        out.writeWithOutputRawSpan(minimumWritableBytes: headSize) { span in
            span.append(UInt32(truncatingIfNeeded: length).bigEndian, as: UInt32.self)
            span.append(FrameType.message.rawValue, as: UInt8.self)
            span.append(flags, as: UInt8.self)
            span.append(subscriptionID.bigEndian, as: UInt32.self)
            span.append(sequence.bigEndian, as: UInt64.self)
            span.append(timestamp.bigEndian, as: UInt64.self)
        }
    }

    /// Bytes ``writeHead(subscriptionID:replayed:sequence:timestamp:fieldsSize:into:maxFrameSize:)``
    /// writes: length, type, flags, subscription id, sequence, timestamp.
    public static let headSize = 4 + FrameLayout.typeAndFlagsSize + 4 + 16

    /// The length field of each MSG frame written from this message.
    public var frameLength: Int { FrameLayout.typeAndFlagsSize + 4 + tail.readableBytes }

    /// Bytes each MSG frame takes on the wire, length prefix included.
    public var frameSize: Int { 4 + frameLength }

    /// Appends the MSG frame for one subscription. Throws `frame_too_large`,
    /// writing nothing, when the frame exceeds the subscriber's limit; the
    /// broker then ends that subscription with ERR `payload_too_large`.
    @inline(__always)
    public func write(subscriptionID: UInt32, replayed: Bool = false, into out: inout ByteBuffer,
                      maxFrameSize: Int) throws(WireError) {
        let length = frameLength
        guard length <= maxFrameSize else {
            throw WireError(.frameTooLarge, "MSG frame is \(length) bytes; the subscriber accepts at most \(maxFrameSize)")
        }
        out.reserveCapacity(minimumWritableBytes: 4 + length)
        // The 10 bytes before the tail in one write, not four (each integer
        // write is a uniqueness, capacity and rebasing check): 948 → ~450
        // instructions per delivered MSG (wave 9 profile).
        let flags = replayed ? Message.replayedFlag : 0
        out.writeWithOutputRawSpan(minimumWritableBytes: 10) { span in
            span.append(UInt32(truncatingIfNeeded: length).bigEndian, as: UInt32.self)
            span.append(FrameType.message.rawValue, as: UInt8.self)
            span.append(flags, as: UInt8.self)
            span.append(subscriptionID.bigEndian, as: UInt32.self)
        }
        out.writeImmutableBuffer(tail)
    }
}
