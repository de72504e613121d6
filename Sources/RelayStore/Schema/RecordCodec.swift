import NIOCore
import RelayCore

/// The versioned binary encoding of one log record (docs/storage.md §Record).
///
/// ```
/// u8  version (1)
/// u8  flags        bit 0: fingerprint stored as 32 raw bytes (always set
///                  since the fingerprint is typed; older records may hold text)
/// u64 timestamp    ns since epoch, big-endian
/// u8  topic length, topic bytes
/// u16 principal length, principal bytes
/// u8  fingerprint length, fingerprint bytes
/// u16 header count, then per header: u16 name length, name, u32 value length, value
/// payload          the rest of the record
/// ```
enum RecordCodec {
    static let version: UInt8 = 1
    static let flagRawFingerprint: UInt8 = 1
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
        guard message.headers.count <= Int(UInt16.max) else {
            throw .invalidArgument("a message has \(message.headers.count) headers; the maximum is 65535")
        }
        for header in message.headers {
            let n = header.name.utf8.count
            guard n <= Int(UInt16.max) else { throw .invalidArgument("header name is \(n) bytes; the maximum is 65535") }
            size += 2 + n + 4 + header.value.utf8.count
        }
        return size
    }

    /// Writes the record into `out`, which is exactly `size(of:)` bytes.
    static func encode(_ message: NewMessage, timestamp: UInt64, into out: UnsafeMutableRawBufferPointer) {
        var w = Writer(out: out)
        w.byte(version)
        w.byte(flagRawFingerprint)
        w.uint64(timestamp)
        var topic = message.topic.value
        w.byte(UInt8(truncatingIfNeeded: topic.utf8.count))
        topic.withUTF8 { w.bytes(UnsafeRawBufferPointer($0)) }
        var principal = message.publisher.principal
        w.uint16(UInt16(truncatingIfNeeded: principal.utf8.count))
        principal.withUTF8 { w.bytes(UnsafeRawBufferPointer($0)) }
        w.byte(UInt8(CertificateFingerprint.byteCount))
        message.publisher.fingerprint.withUnsafeBytes { w.bytes($0) }
        w.uint16(UInt16(truncatingIfNeeded: message.headers.count))
        for header in message.headers {
            var name = header.name, value = header.value
            w.uint16(UInt16(truncatingIfNeeded: name.utf8.count))
            name.withUTF8 { w.bytes(UnsafeRawBufferPointer($0)) }
            w.uint32(UInt32(truncatingIfNeeded: value.utf8.count))
            value.withUTF8 { w.bytes(UnsafeRawBufferPointer($0)) }
        }
        message.payload.withUnsafeReadableBytes { w.bytes($0) }
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
        var headers: [(name: Range<Int>, value: Range<Int>)]
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
        var headers: [(name: Range<Int>, value: Range<Int>)] = []
        if headerCount > 0 {
            headers.reserveCapacity(headerCount)
            for _ in 0..<headerCount {
                let name = try r.range(Int(try r.uint16()))
                let value = try r.range(Int(try r.uint32()))
                headers.append((name, value))
            }
        }
        return Layout(flags: flags, timestamp: timestamp, topic: topic, principal: principal,
                      fingerprint: fingerprint, headers: headers, payload: r.offset..<record.count)
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

        mutating func need(_ n: Int) throws(StoreError) {
            guard bytes.count - offset >= n else {
                throw .invalidRecord(sequence: sequence, reason: "record truncated at offset \(offset) (needs \(n) more bytes of \(bytes.count))")
            }
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
