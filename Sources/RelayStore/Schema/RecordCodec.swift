import NIOCore
import RelayCore

/// The versioned binary encoding of one log record (docs/storage.md §Record).
///
/// ```
/// u8  version (1)
/// u8  flags        bit 0: fingerprint stored as 32 raw bytes (always set
///                  since the fingerprint is typed; older records may hold text)
///                  bit 1: the record continues in `log_tail` (``RecordSplit``):
///                  the `log` value is its head, cut inside the payload
/// u64 timestamp    ns since epoch, big-endian
/// u8  topic length, topic bytes
/// u16 principal length, principal bytes
/// u8  fingerprint length, fingerprint bytes
/// u16 header count, then per header: u16 name length, name, u32 value length, value
/// payload          the rest of the record
/// ```
///
/// Headers arrive and leave as the protocol's header block (``HeaderBlock``:
/// u16 lengths); the codec transcodes that block to the record's header
/// section and back, bytes to bytes, widening or narrowing each value length.
enum RecordCodec {
    static let version: UInt8 = 1
    static let flagRawFingerprint: UInt8 = 1
    static let flagContinuesInTail: UInt8 = 2
    /// Offset of the topic length byte.
    static let topicOffset = 10

    /// The encoded size of a message, or an error naming the field too large to store.
    static func size(of message: NewMessage) throws(StoreError) -> Int {
        let principal = message.publisher.principal.utf8.count
        guard principal <= Int(UInt16.max) else {
            throw .invalidArgument("publisher principal is \(principal) bytes; the maximum is 65535")
        }
        var size = 10 + 1 + message.topic.value.utf8.count + 2 + principal + 1
            + CertificateFingerprint.byteCount + 2 + message.payload.readableBytes
        size += try headerSectionSize(message.headers)
        return size
    }

    /// The size of the record's header section for `block` (each value
    /// length grows from 2 to 4 bytes), after checking that the block holds
    /// exactly `count` well-formed fields: the store never writes a section
    /// it could not read back.
    static func headerSectionSize(_ block: HeaderBlock) throws(StoreError) -> Int {
        guard block.count <= Int(UInt16.max) else {
            throw .invalidArgument("a message has \(block.count) headers; the maximum is 65535")
        }
        let consumed = block.encoded.withUnsafeReadableBytes { raw -> Int? in
            var at = 0
            for _ in 0..<(2 * block.count) {  // key, then value, of each field
                guard at + 2 <= raw.count else { return nil }
                at += 2 + Int(UInt16(bigEndian: raw.loadUnaligned(fromByteOffset: at, as: UInt16.self)))
            }
            return at
        }
        guard consumed == block.encoded.readableBytes else {
            throw .invalidArgument("the header block does not hold exactly \(block.count) fields of u16-length key and value")
        }
        return block.encoded.readableBytes + 2 * block.count
    }

    /// Writes the record into `out`, which is exactly `size(of:)` bytes.
    static func encode(_ message: NewMessage, timestamp: UInt64, into out: UnsafeMutableRawBufferPointer) {
        var w = Writer(out: out)
        writeFields(message, timestamp: timestamp, flags: flagRawFingerprint, into: &w)
        message.payload.withUnsafeReadableBytes { w.bytes($0) }
    }

    /// Writes the head of a record cut at `out.count` bytes (``RecordSplit``
    /// puts the cut inside the payload): every field, then the payload's
    /// first bytes, with the flag that sends a reader on to `log_tail`.
    static func encodeHead(_ message: NewMessage, timestamp: UInt64, into out: UnsafeMutableRawBufferPointer) {
        var w = Writer(out: out)
        writeFields(message, timestamp: timestamp, flags: flagRawFingerprint | flagContinuesInTail, into: &w)
        message.payload.withUnsafeReadableBytes { payload in
            w.bytes(UnsafeRawBufferPointer(rebasing: payload[..<(out.count - w.offset)]))
        }
    }

    /// Writes the rest of the payload after `encodeHead` cut it: its last `out.count` bytes.
    static func encodeTail(_ message: NewMessage, into out: UnsafeMutableRawBufferPointer) {
        var w = Writer(out: out)
        message.payload.withUnsafeReadableBytes { payload in
            w.bytes(UnsafeRawBufferPointer(rebasing: payload[(payload.count - out.count)...]))
        }
    }

    /// Whether `record` is a head whose last bytes are in `log_tail`.
    @inline(__always)
    static func continuesInTail(_ record: UnsafeRawBufferPointer) -> Bool {
        record.count >= 2 && record[0] == version && record[1] & flagContinuesInTail != 0
    }

    /// Every field before the payload.
    private static func writeFields(_ message: NewMessage, timestamp: UInt64, flags: UInt8, into w: inout Writer) {
        w.byte(version)
        w.byte(flags)
        w.uint64(timestamp)
        var topic = message.topic.value
        w.byte(UInt8(truncatingIfNeeded: topic.utf8.count))
        topic.withUTF8 { w.bytes(UnsafeRawBufferPointer($0)) }
        var principal = message.publisher.principal
        w.uint16(UInt16(truncatingIfNeeded: principal.utf8.count))
        principal.withUTF8 { w.bytes(UnsafeRawBufferPointer($0)) }
        w.byte(UInt8(CertificateFingerprint.byteCount))
        // The four big-endian words are the 32 bytes in wire order; written
        // directly, not through the fingerprint's generic byte view (a call
        // into RelayCore that was a third of this function's instructions).
        let fingerprint = message.publisher.fingerprint
        w.uint64(fingerprint.w0)
        w.uint64(fingerprint.w1)
        w.uint64(fingerprint.w2)
        w.uint64(fingerprint.w3)
        w.uint16(UInt16(truncatingIfNeeded: message.headers.count))
        // `headerSectionSize` checked the block's structure; copy each field,
        // widening its value length.
        message.headers.encoded.withUnsafeReadableBytes { block in
            var at = 0
            for _ in 0..<message.headers.count {
                let keyLength = 2 + Int(UInt16(bigEndian: block.loadUnaligned(fromByteOffset: at, as: UInt16.self)))
                w.bytes(UnsafeRawBufferPointer(rebasing: block[at..<(at + keyLength)]))
                at += keyLength
                let valueLength = Int(UInt16(bigEndian: block.loadUnaligned(fromByteOffset: at, as: UInt16.self)))
                w.uint32(UInt32(valueLength))
                w.bytes(UnsafeRawBufferPointer(rebasing: block[(at + 2)..<(at + 2 + valueLength)]))
                at += 2 + valueLength
            }
        }
    }

    /// The topic bytes of a record, for filtering without decoding the rest.
    /// The view lives as long as `record`.
    static func topicBytes(of record: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer? {
        guard record.count > topicOffset, record[0] == version else { return nil }
        let length = Int(record[topicOffset])
        guard record.count >= topicOffset + 1 + length else { return nil }
        return UnsafeRawBufferPointer(rebasing: record[(topicOffset + 1)..<(topicOffset + 1 + length)])
    }

    /// The timestamp of a record.
    static func timestamp(of record: UnsafeRawBufferPointer) -> UInt64? {
        guard record.count >= 10, record[0] == version else { return nil }
        return record.readUInt64BE(at: 2)
    }

    /// Fields of a record located without copying; offsets into the record.
    struct Layout {
        var flags: UInt8
        var timestamp: UInt64
        var topic: Range<Int>
        var principal: Range<Int>
        var fingerprint: Range<Int>
        var headerCount: Int
        /// The header section after its count (record format: u32 value lengths).
        var headers: Range<Int>
        var payload: Range<Int>
    }

    /// Parses the record layout, checking every length against the record size.
    static func layout(of record: UnsafeRawBufferPointer, sequence: UInt64) throws(StoreError) -> Layout {
        var r = Reader(bytes: record, sequence: sequence)
        let v = try r.byte()
        guard v == version else {
            throw .invalidRecord(sequence: sequence, reason: "record version \(v) is not supported (expected \(version))")
        }
        let flags = try r.byte()
        let timestamp = try r.uint64()
        let topic = try r.range(Int(try r.byte()))
        let principal = try r.range(Int(try r.uint16()))
        let fingerprint = try r.range(Int(try r.byte()))
        let headerCount = Int(try r.uint16())
        let headersStart = r.offset
        for _ in 0..<headerCount {
            _ = try r.range(Int(try r.uint16()))
            _ = try r.range(Int(try r.uint32()))
        }
        return Layout(flags: flags, timestamp: timestamp, topic: topic, principal: principal, fingerprint: fingerprint,
                      headerCount: headerCount, headers: headersStart..<r.offset, payload: r.offset..<record.count)
    }

    /// Sequential writer into a buffer sized by `size(of:)`.
    private struct Writer {
        let out: UnsafeMutableRawBufferPointer
        var offset = 0

        mutating func byte(_ v: UInt8) { out[offset] = v; offset += 1 }
        mutating func uint16(_ v: UInt16) {
            out.storeBytes(of: v.bigEndian, toByteOffset: offset, as: UInt16.self); offset += 2
        }
        mutating func uint32(_ v: UInt32) {
            out.storeBytes(of: v.bigEndian, toByteOffset: offset, as: UInt32.self); offset += 4
        }
        mutating func uint64(_ v: UInt64) {
            out.storeBytes(of: v.bigEndian, toByteOffset: offset, as: UInt64.self); offset += 8
        }
        mutating func bytes(_ b: UnsafeRawBufferPointer) {
            guard b.count > 0, let base = b.baseAddress, let dst = out.baseAddress else { return }
            (dst + offset).copyMemory(from: base, byteCount: b.count)
            offset += b.count
        }
    }

    /// Bounds-checked sequential reader over a stored record.
    private struct Reader {
        let bytes: UnsafeRawBufferPointer
        let sequence: UInt64
        var offset = 0

        // The check inline, the error (its message built by interpolation)
        // out of line: a call per field was ~260 of the instructions a
        // replayed MSG took in relayd (wave 10).
        @inline(__always)
        mutating func need(_ n: Int) throws(StoreError) {
            guard bytes.count - offset >= n else { throw truncated(needing: n) }
        }
        @inline(never)
        func truncated(needing n: Int) -> StoreError {
            .invalidRecord(sequence: sequence, reason: "record truncated at offset \(offset) (needs \(n) more bytes of \(bytes.count))")
        }
        mutating func byte() throws(StoreError) -> UInt8 {
            try need(1); defer { offset += 1 }; return bytes[offset]
        }
        mutating func uint16() throws(StoreError) -> UInt16 {
            try need(2); defer { offset += 2 }
            return UInt16(bigEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt16.self))
        }
        mutating func uint32() throws(StoreError) -> UInt32 {
            try need(4); defer { offset += 4 }
            return UInt32(bigEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
        }
        mutating func uint64() throws(StoreError) -> UInt64 {
            try need(8); defer { offset += 8 }
            return bytes.readUInt64BE(at: offset)
        }
        mutating func range(_ n: Int) throws(StoreError) -> Range<Int> {
            try need(n); defer { offset += n }; return offset..<(offset + n)
        }
    }
}
