import NIOCore
import RelayCore

/// The MSG tails of one committed batch, written into a few shared
/// buffers instead of one buffer per message.
///
/// ``PreparedMessage/init(sequence:timestamp:topic:publisherPrincipal:publisherFingerprint:headers:payload:allocator:)``
/// allocates a buffer per message (a storage object and its bytes, freed
/// again after delivery): about 500 instructions to allocate and 400 to free
/// of relayd's ~17,650 per 128 B message (wave 9 profile). Here the tails go
/// one after another into a chunk of up to ``chunkBytes`` and each message
/// gets a slice of it, so a batch of a few hundred messages makes a few
/// allocations. A chunk lives while any of its slices does: a subscriber
/// that buffers one message keeps at most one chunk (64 KiB) alive.
///
/// Consecutive messages with the same topic, principal and fingerprint (one
/// publisher's batch nearly always is) copy those bytes from the previous
/// tail in the chunk in one step instead of re-encoding two strings.
/// The bytes of every tail are those of ``PreparedMessage``'s initializer
/// (MessageTailBatchPinTests).
public struct MessageTailBatch {
    /// A chunk's size once it holds more than one tail.
    public static let chunkBytes = 64 << 10

    private let allocator: ByteBufferAllocator
    private var chunk = ByteBuffer()
    /// Lengths of the tails in `chunk` not yet sliced off.
    private var lengths: [Int] = []
    private var prepared: [PreparedMessage] = []
    /// Messages still to come, for sizing the next chunk.
    private var remaining: Int
    /// The previous tail's topic, principal and fingerprint and where their
    /// bytes (from the topic's length to the fingerprint's end) are in `chunk`.
    private var last: (topic: String, principal: String, fingerprint: CertificateFingerprint, at: Int, length: Int)?

    /// - Parameter count: how many messages will be appended (sizes the chunks; more is allowed).
    public init(count: Int, allocator: ByteBufferAllocator = ByteBufferAllocator()) {
        self.allocator = allocator
        self.remaining = max(count, 1)
        lengths.reserveCapacity(count)
        prepared.reserveCapacity(count)
    }

    /// Appends one message's tail. Throws, appending nothing, when the topic
    /// or principal is over 65,535 bytes.
    public mutating func append(sequence: UInt64, timestamp: UInt64, topic: String, publisherPrincipal: String,
                                publisherFingerprint: CertificateFingerprint, headers: Headers,
                                payload: ByteBuffer) throws(WireError) {
        let middle = 2 + topic.utf8.count + 2 + publisherPrincipal.utf8.count + CertificateFingerprint.byteCount
        let size = 16 + middle + headers.wireSize + payload.readableBytes
        reserve(size)
        remaining = max(remaining - 1, 1)
        let start = chunk.writerIndex
        if let last, last.length == middle, last.topic == topic, last.principal == publisherPrincipal,
           last.fingerprint == publisherFingerprint {
            chunk.writeWithOutputRawSpan(minimumWritableBytes: 16) { span in
                span.append(sequence.bigEndian, as: UInt64.self)
                span.append(timestamp.bigEndian, as: UInt64.self)
            }
            // The source range was written to this chunk above: readable, so this cannot throw.
            if (try? chunk.copyBytes(at: last.at, to: chunk.writerIndex, length: middle)) != nil {
                chunk.moveWriterIndex(forwardBy: middle)
                chunk.writeInteger(UInt16(truncatingIfNeeded: headers.count))
                if headers.encoded.readableBytes > 0 { chunk.writeImmutableBuffer(headers.encoded) }
                chunk.writeImmutableBuffer(payload)
                lengths.append(chunk.writerIndex - start)
                // Only the position moves: reassigning the strings cost a
                // retain and release each per message.
                self.last?.at = start + 16
                return
            }
            chunk.moveWriterIndex(to: start)
        }
        try chunk.writeMessageTail(sequence: sequence, timestamp: timestamp, topic: topic,
                                   publisherPrincipal: publisherPrincipal, publisherFingerprint: publisherFingerprint,
                                   headers: headers, payload: payload)
        lengths.append(chunk.writerIndex - start)
        last = (topic, publisherPrincipal, publisherFingerprint, start + 16, middle)
    }

    /// The prepared messages, in the order appended.
    public mutating func finish() -> [PreparedMessage] {
        seal()
        return prepared
    }

    /// Makes room for a tail of `size` bytes: in the current chunk, else in
    /// a new one sized for the messages still to come (at most a chunk).
    private mutating func reserve(_ size: Int) {
        guard chunk.writableBytes < size else { return }
        seal()
        let estimate = size.multipliedReportingOverflow(by: remaining)
        chunk = allocator.buffer(capacity: max(size, estimate.overflow ? Self.chunkBytes : min(estimate.partialValue, Self.chunkBytes)))
    }

    /// Slices the chunk's tails off into ``PreparedMessage``s.
    private mutating func seal() {
        for length in lengths {
            guard let tail = chunk.readSlice(length: length) else { break }
            prepared.append(PreparedMessage(tail: tail))
        }
        lengths.removeAll(keepingCapacity: true)
        last = nil
    }
}
