import NIOCore
import RelayCore

/// One stored message as a replay read finds it, handed to the reader's
/// closure so it can write the message straight into its output: no copy of
/// the payload into a batch buffer, no ``StoredMessage`` (a `Topic`, a
/// `PublisherStamp` and two buffer slices, each reference-counted) per
/// message. That copy and those objects were a quarter of relayd's replay
/// profile (docs/performance-history.md, "Fan-out and replay (wave 7)").
///
/// Non-copyable and only ever borrowed by the closure of
/// ``MessageLog/visit(from:filter:maxMessages:maxBytes:maxScan:_:)``, so it
/// cannot outlive the call: it may point into the store's memory map, which
/// is valid only inside the read transaction. Nothing outside this module
/// sees that memory; callers get the fields and a writer.
public struct StoredRecord: ~Copyable {
    public let sequence: UInt64
    /// Commit time, nanoseconds since the Unix epoch.
    public let timestamp: UInt64
    /// Bytes of the header fields and the payload: what a read's
    /// `maxBytes` counts (``RecordDecoder/payloadBytes``).
    public let countedBytes: Int
    /// Bytes ``writeDeliveryFields(into:)`` appends.
    public let deliveryFieldsSize: Int
    private let source: Source

    private enum Source {
        /// A record in the map, valid for the read transaction that found it
        /// (this value is borrowed only within that transaction), and its layout.
        case record(UnsafeRawBufferPointer, RecordCodec.Layout)
        /// A decoded message (a log without records in memory, e.g. the in-memory log).
        case message(StoredMessage)
    }

    /// A decoded message, for logs that read into ``StoredMessage``s.
    public init(_ message: StoredMessage) {
        sequence = message.sequence
        timestamp = message.timestamp
        countedBytes = message.headers.encoded.readableBytes + message.payload.readableBytes
        deliveryFieldsSize = 2 + message.topic.value.utf8.count + 2 + message.publisher.principal.utf8.count
            + CertificateFingerprint.byteCount + 2 + countedBytes
        source = .message(message)
    }

    /// A record of the map. `layout` checked every length, and the caller
    /// checked the topic and that every header value fits a str16
    /// (``RecordCheck``), so writing it cannot fail.
    init(record: UnsafeRawBufferPointer, sequence: UInt64, layout: RecordCodec.Layout) {
        self.sequence = sequence
        timestamp = layout.timestamp
        // Header values are u32-prefixed in the record and u16 on the wire.
        countedBytes = layout.headers.count - 2 * layout.headerCount + layout.payload.count
        deliveryFieldsSize = 2 + layout.topic.count + 2 + layout.principal.count + CertificateFingerprint.byteCount
            + 2 + countedBytes
        source = .record(record, layout)
    }

    /// Appends the message's fields in the order and encoding of a Relay v1
    /// MSG after its timestamp (Protocol/relay-v1.md §4.8): str16 topic,
    /// str16 publisher principal, the 32-byte fingerprint, the header block
    /// (u16 count, then str16 key and str16 value per header), the payload.
    /// Exactly ``deliveryFieldsSize`` bytes; the same bytes as encoding
    /// ``message()`` would give.
    public func writeDeliveryFields(into out: inout ByteBuffer) {
        switch source {
        case .message(let m):
            out.reserveCapacity(minimumWritableBytes: deliveryFieldsSize)
            out.writeInteger(UInt16(truncatingIfNeeded: m.topic.value.utf8.count))
            out.writeString(m.topic.value)
            out.writeInteger(UInt16(truncatingIfNeeded: m.publisher.principal.utf8.count))
            out.writeString(m.publisher.principal)
            m.publisher.fingerprint.withUnsafeBytes { _ = out.writeBytes($0) }
            out.writeInteger(UInt16(truncatingIfNeeded: m.headers.count))
            out.writeImmutableBuffer(m.headers.encoded)
            out.writeImmutableBuffer(m.payload)
        case .record(let record, let layout):
            let size = deliveryFieldsSize
            // One write of exactly `size` bytes, copied field by field from
            // the record: ByteBuffer's per-call checks and its generic slice
            // path cost more than the copies themselves (about 960 of the
            // 5,541 instructions a replayed MSG took, in callgrind). `layout`
            // checked that every range lies inside `record`; `size` is the
            // sum of what is written below, and the closure gets at least
            // that much room.
            out.writeWithUnsafeMutableBytes(minimumWritableBytes: size) { destination in
                var w = FieldWriter(destination: destination, record: record)
                w.str16(layout.topic)
                w.str16(layout.principal)
                if layout.flags & RecordCodec.flagRawFingerprint != 0, layout.fingerprint.count == CertificateFingerprint.byteCount {
                    w.copy(layout.fingerprint)
                } else {
                    let fingerprint = RecordDecoder.fingerprint(UnsafeRawBufferPointer(rebasing: record[layout.fingerprint]),
                                                                flags: layout.flags)
                    fingerprint.withUnsafeBytes { w.copy($0) }
                }
                w.u16(layout.headerCount)
                // The record's entries: u16 key length, key, u32 value length, value;
                // the wire's: the same with a u16 value length (checked to fit).
                var at = layout.headers.lowerBound
                for _ in 0..<layout.headerCount {
                    let keyEnd = at + 2 + Int(UInt16(bigEndian: record.loadUnaligned(fromByteOffset: at, as: UInt16.self)))
                    w.copy(at..<keyEnd)
                    let valueLength = Int(UInt32(bigEndian: record.loadUnaligned(fromByteOffset: keyEnd, as: UInt32.self)))
                    w.u16(valueLength)
                    w.copy((keyEnd + 4)..<(keyEnd + 4 + valueLength))
                    at = keyEnd + 4 + valueLength
                }
                w.copy(layout.payload)
                return w.offset
            }
        }
    }

    /// The message, decoded (copied out of the map): for a reader that
    /// needs a ``StoredMessage`` after all.
    public func message() throws(StoreError) -> StoredMessage {
        switch source {
        case .message(let m):
            return m
        case .record(let record, _):
            var decoder = RecordDecoder(expectedBytes: countedBytes + 256)
            try decoder.decode(record, sequence: sequence)
            guard let message = decoder.finish().first else {
                throw .invalidRecord(sequence: sequence, reason: "the record decoded to no message")
            }
            return message
        }
    }
}

/// Where a visit stopped.
public struct ReadProgress: Sendable, Equatable {
    /// Where the next read continues: after the last record examined, or
    /// at the record the closure refused.
    public var next: UInt64
    /// True when the read reached the end of the log.
    public var reachedEnd: Bool

    public init(next: UInt64, reachedEnd: Bool) {
        (self.next, self.reachedEnd) = (next, reachedEnd)
    }
}

extension MessageLog {
    /// The default visit, for logs without records in memory: a ``read``
    /// whose messages are handed over one by one. Stops before the message
    /// `body` refuses; its sequence is then ``ReadProgress/next``.
    public func visit(from: UInt64, filter: TopicFilter, maxMessages: Int, maxBytes: Int, maxScan: Int,
                      _ body: (borrowing StoredRecord) -> Bool) throws(StoreError) -> ReadProgress {
        try read(from: from, filter: filter, maxMessages: maxMessages, maxBytes: maxBytes, maxScan: maxScan).visit(body)
    }
}

extension ReadBatch {
    /// Hands the messages to `body` one by one, as a visit would; stops
    /// before the one it refuses (then its sequence is ``ReadProgress/next``).
    public func visit(_ body: (borrowing StoredRecord) -> Bool) -> ReadProgress {
        for message in messages {
            guard body(StoredRecord(message)) else { return ReadProgress(next: message.sequence, reachedEnd: false) }
        }
        return ReadProgress(next: next, reachedEnd: reachedEnd)
    }
}

/// The checks ``RecordDecoder`` makes before it keeps a record, for a read
/// that hands records out without decoding them: the layout, the topic (each
/// distinct topic once per read) and header values that fit a str16.
struct RecordCheck {
    private var lastTopic: [UInt8] = []

    mutating func check(_ record: UnsafeRawBufferPointer, sequence: UInt64) throws(StoreError) -> StoredRecord {
        let layout = try RecordCodec.layout(of: record, sequence: sequence)
        let topic = UnsafeRawBufferPointer(rebasing: record[layout.topic])
        if lastTopic.isEmpty || !sameBytes(topic, lastTopic) {
            do {
                _ = try Topic(utf8: topic)
            } catch {
                throw .invalidRecord(sequence: sequence, reason: "stored topic is invalid: \(error)")
            }
            lastTopic = Array(topic)
        }
        try RecordDecoder.checkHeaderValues(UnsafeRawBufferPointer(rebasing: record[layout.headers]),
                                            count: layout.headerCount, sequence: sequence)
        return StoredRecord(record: record, sequence: sequence, layout: layout)
    }
}

/// Appends to a buffer ``StoredRecord/writeDeliveryFields(into:)`` sized
/// exactly, from the record it is given.
private struct FieldWriter {
    let destination: UnsafeMutableRawBufferPointer
    let record: UnsafeRawBufferPointer
    var offset = 0

    mutating func u16(_ value: Int) {
        destination.storeBytes(of: UInt16(truncatingIfNeeded: value).bigEndian, toByteOffset: offset, as: UInt16.self)
        offset += 2
    }

    /// A str16: the field's length, then its bytes.
    mutating func str16(_ range: Range<Int>) {
        u16(range.count)
        copy(range)
    }

    mutating func copy(_ range: Range<Int>) {
        copy(UnsafeRawBufferPointer(rebasing: record[range]))
    }

    mutating func copy(_ bytes: UnsafeRawBufferPointer) {
        guard let source = bytes.baseAddress, let base = destination.baseAddress, bytes.count > 0 else { return }
        (base + offset).copyMemory(from: source, byteCount: bytes.count)
        offset += bytes.count
    }
}
