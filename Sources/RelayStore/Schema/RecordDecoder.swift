#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import NIOCore
import RelayCore

/// Turns stored records into ``StoredMessage``s for one read batch.
///
/// Replay speed is dominated by allocations, so the decoder (a) copies all
/// payloads and header blocks of a batch into one shared buffer and hands
/// out slices of it,
/// and (b) reuses the previous message's `Topic` and `PublisherStamp` when the
/// bytes are the same (consecutive messages usually share both).
struct RecordDecoder {
    private var arena: ByteBuffer
    private var lastTopicBytes: [UInt8] = []
    private var lastTopic: Topic?
    private var lastPublisherBytes: [UInt8] = []
    private var lastPublisherFlags: UInt8 = 0
    private var lastPublisher: PublisherStamp?

    init(expectedBytes: Int) {
        arena = ByteBufferAllocator().buffer(capacity: max(256, min(expectedBytes, 64 << 10)))
    }

    /// A decoded message whose payload still sits in the arena.
    private struct Pending {
        var sequence: UInt64
        var timestamp: UInt64
        var topic: Topic
        var publisher: PublisherStamp
        var headerCount: Int
        var headersStart: Int
        var headersLength: Int
        var payloadStart: Int
        var payloadLength: Int
    }
    private var pending: [Pending] = []

    /// Payload bytes decoded so far.
    var payloadBytes: Int { arena.readableBytes }
    var count: Int { pending.count }

    /// Decodes `record` (a view into the map, valid only during this call);
    /// everything kept is copied out. Messages are returned by ``finish()``.
    mutating func decode(_ record: UnsafeRawBufferPointer, sequence: UInt64) throws(StoreError) {
        let layout = try RecordCodec.layout(of: record, sequence: sequence)
        let topic = try decodeTopic(UnsafeRawBufferPointer(rebasing: record[layout.topic]), sequence: sequence)
        let publisher = decodePublisher(record, layout: layout)
        let headersStart = arena.writerIndex
        try transcodeHeaders(UnsafeRawBufferPointer(rebasing: record[layout.headers]), count: layout.headerCount,
                             sequence: sequence)
        let start = arena.writerIndex
        let written = arena.writeBytes(UnsafeRawBufferPointer(rebasing: record[layout.payload]))
        pending.append(Pending(sequence: sequence, timestamp: layout.timestamp, topic: topic, publisher: publisher,
                               headerCount: layout.headerCount, headersStart: headersStart,
                               headersLength: start - headersStart, payloadStart: start, payloadLength: written))
    }

    /// Appends the record's header section to the arena as the protocol's
    /// header block: the same bytes, each value length narrowed from u32 to
    /// u16. `layout` checked every length against the record. A value over
    /// 65,535 bytes cannot be in a MSG; relayd never stores one (it is not a
    /// str16 on the wire), so only a record written through the store API can
    /// hold one, and it is reported rather than delivered without its headers.
    private mutating func transcodeHeaders(_ section: UnsafeRawBufferPointer, count: Int,
                                           sequence: UInt64) throws(StoreError) {
        try Self.checkHeaderValues(section, count: count, sequence: sequence)
        Self.transcodeHeaders(section, count: count, into: &arena)
    }

    /// Throws `invalidRecord` when a header value is over 65,535 bytes (see above).
    static func checkHeaderValues(_ section: UnsafeRawBufferPointer, count: Int, sequence: UInt64) throws(StoreError) {
        var at = 0
        for index in 0..<count {
            at += 2 + Int(UInt16(bigEndian: section.loadUnaligned(fromByteOffset: at, as: UInt16.self)))
            let valueLength = Int(UInt32(bigEndian: section.loadUnaligned(fromByteOffset: at, as: UInt32.self)))
            guard valueLength <= Int(UInt16.max) else {
                throw .invalidRecord(sequence: sequence, reason: "header \(index + 1)'s value is \(valueLength) bytes; a MSG carries at most 65535 (the record was not written by relayd)")
            }
            at += 4 + valueLength
        }
    }

    /// Appends a header section that ``checkHeaderValues(_:count:sequence:)``
    /// passed, as the wire's entries (str16 key, str16 value).
    static func transcodeHeaders(_ section: UnsafeRawBufferPointer, count: Int, into out: inout ByteBuffer) {
        var at = 0
        for _ in 0..<count {
            let keyLength = 2 + Int(UInt16(bigEndian: section.loadUnaligned(fromByteOffset: at, as: UInt16.self)))
            out.writeBytes(UnsafeRawBufferPointer(rebasing: section[at..<(at + keyLength)]))
            at += keyLength
            let valueLength = Int(UInt32(bigEndian: section.loadUnaligned(fromByteOffset: at, as: UInt32.self)))
            out.writeInteger(UInt16(truncatingIfNeeded: valueLength))
            out.writeBytes(UnsafeRawBufferPointer(rebasing: section[(at + 4)..<(at + 4 + valueLength)]))
            at += 4 + valueLength
        }
    }

    /// A record's fingerprint field. Records written before the fingerprint
    /// was typed may hold it as text (hex, or anything a store user passed);
    /// text that is not a SHA-256 in hex reads as `.zero`, which MSG already
    /// sent for it.
    static func fingerprint(_ bytes: UnsafeRawBufferPointer, flags: UInt8) -> CertificateFingerprint {
        let fingerprint = flags & RecordCodec.flagRawFingerprint != 0
            ? CertificateFingerprint(bytes: bytes)
            : CertificateFingerprint(hex: String(decoding: bytes, as: UTF8.self))
        return fingerprint ?? .zero
    }

    /// The decoded messages. Slicing happens only now, after the last write
    /// to the arena: a slice taken earlier would force every later write to
    /// copy the whole shared buffer (copy-on-write).
    func finish() -> [StoredMessage] {
        pending.map { p in
            StoredMessage(sequence: p.sequence, timestamp: p.timestamp, topic: p.topic, publisher: p.publisher,
                          headers: p.headerCount == 0 ? .empty : HeaderBlock(
                              count: p.headerCount,
                              encoded: arena.getSlice(at: p.headersStart, length: p.headersLength) ?? ByteBuffer()),
                          payload: arena.getSlice(at: p.payloadStart, length: p.payloadLength) ?? ByteBuffer())
        }
    }

    private mutating func decodeTopic(_ bytes: UnsafeRawBufferPointer, sequence: UInt64) throws(StoreError) -> Topic {
        if let lastTopic, sameBytes(bytes, lastTopicBytes) { return lastTopic }
        do {
            let topic = try Topic(utf8: bytes)
            lastTopic = topic
            lastTopicBytes = Array(bytes)
            return topic
        } catch {
            throw .invalidRecord(sequence: sequence, reason: "stored topic is invalid: \(error)")
        }
    }

    private mutating func decodePublisher(_ record: UnsafeRawBufferPointer, layout: RecordCodec.Layout) -> PublisherStamp {
        // The flags byte, principal and fingerprint together identify the publisher.
        let span = UnsafeRawBufferPointer(rebasing: record[layout.principal.lowerBound..<layout.fingerprint.upperBound])
        if let lastPublisher, lastPublisherFlags == layout.flags, sameBytes(span, lastPublisherBytes) {
            return lastPublisher
        }
        let principal = String(decoding: record[layout.principal], as: UTF8.self)
        let fingerprint = Self.fingerprint(UnsafeRawBufferPointer(rebasing: record[layout.fingerprint]), flags: layout.flags)
        let publisher = PublisherStamp(principal: principal, fingerprint: fingerprint)
        lastPublisher = publisher
        lastPublisherFlags = layout.flags
        lastPublisherBytes = Array(span)
        return publisher
    }
}

/// Byte equality by memcmp (the generic `elementsEqual` walks byte by byte).
@inline(__always)
func sameBytes(_ a: UnsafeRawBufferPointer, _ b: [UInt8]) -> Bool {
    guard a.count == b.count else { return false }
    guard let base = a.baseAddress, a.count > 0 else { return true }
    return b.withUnsafeBytes { other in other.baseAddress.map { memcmp(base, $0, a.count) == 0 } ?? false }
}
