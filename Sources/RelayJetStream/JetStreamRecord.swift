import NIOCore
import RelayCore
import RelayStore

/// The data of one stream message: everything Relay keeps about a message
/// besides the sequence, which JetStream assigns. The publisher's stamp
/// travels inside the record, not in NATS headers, so it is stored and
/// replicated with the payload as one unit and no NATS client can alter it
/// separately (docs/cluster.md, "Records").
///
/// ```
/// format 1: 0x01       timestamp:u64  fingerprint:32 bytes  principal:str16  topic:str16
///           header_count:u16  headers_length:u32  headers  payload (the rest)
/// format 2: 'R' 0x02   timestamp:u64  fingerprint:32 bytes  principal:str16
///           header_count:u16  headers_length:u32  headers  payload (the rest)
/// ```
/// Format 2 leaves out the topic: the stream subject (`<prefix>.<topic>`)
/// already carries it. Its two leading bytes make a foreign message less
/// likely to pass for a record. Every reader accepts both; which one an edge
/// writes is ``JetStreamRecordFormat`` (docs/cluster.md, "Record formats and
/// rolling upgrades").
/// Integers are big-endian; `str16` is a u16 length then UTF-8 bytes; the
/// header block is Relay's wire encoding (Protocol/relay-v1.md §3), verbatim.
enum JetStreamRecord {
    static let version: UInt8 = 1
    /// Format 2's first byte ('R'), then its version byte.
    static let magic: UInt8 = 0x52, version2: UInt8 = 2

    static func encode(_ message: NewMessage, timestamp: UInt64, format: JetStreamRecordFormat = .v1) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.reserveCapacity(64 + message.publisher.principal.utf8.count + message.topic.value.utf8.count
                               + message.headers.encoded.readableBytes + message.payload.readableBytes)
        if format == .v1 {
            buffer.writeInteger(version)
        } else {
            buffer.writeInteger(magic)
            buffer.writeInteger(version2)
        }
        buffer.writeInteger(timestamp)
        message.publisher.fingerprint.withUnsafeBytes { _ = buffer.writeBytes($0) }
        writeString(message.publisher.principal, to: &buffer)
        if format == .v1 { writeString(message.topic.value, to: &buffer) }
        buffer.writeInteger(UInt16(clamping: message.headers.count))
        buffer.writeInteger(UInt32(message.headers.encoded.readableBytes))
        buffer.writeImmutableBuffer(message.headers.encoded)
        buffer.writeImmutableBuffer(message.payload)
        return buffer
    }

    /// The length of the version bytes, and whether the topic is inside;
    /// nil when `data` starts like neither format.
    private static func layout(of data: ByteBuffer) -> (headerBytes: Int, hasTopic: Bool)? {
        switch data.getInteger(at: data.readerIndex, as: UInt8.self) {
        case version: return (1, true)
        case magic where data.getInteger(at: data.readerIndex + 1, as: UInt8.self) == version2: return (2, false)
        default: return nil
        }
    }

    private static func writeString(_ value: String, to buffer: inout ByteBuffer) {
        buffer.writeInteger(UInt16(clamping: value.utf8.count))
        buffer.writeString(value)
    }

    /// Just the timestamp (a duplicate's receipt needs only that).
    static func timestamp(of data: ByteBuffer) -> UInt64? {
        guard let layout = layout(of: data) else { return nil }
        return data.getInteger(at: data.readerIndex + layout.headerBytes, as: UInt64.self)
    }

    /// The payload's size from the record's length fields alone, or nil when
    /// `data` is not a well-formed Relay record (then decode says why).
    static func payloadLength(of data: ByteBuffer) -> Int? {
        data.withUnsafeReadableBytes { payloadLength(ofBytes: $0) }
    }

    /// ``payloadLength(of:)`` on bytes in place: the tail asks it of every
    /// message before copying one (JetStreamMessageLog.startTail).
    static func payloadLength(ofBytes bytes: UnsafeRawBufferPointer) -> Int? {
        func integer(at offset: Int, byteCount: Int) -> Int? {
            guard offset >= 0, offset + byteCount <= bytes.count else { return nil }
            var value = 0
            for index in offset..<offset + byteCount { value = value << 8 | Int(bytes[index]) }
            return value
        }
        let headerBytes: Int, hasTopic: Bool
        switch integer(at: 0, byteCount: 1).map(UInt8.init) {
        case version: (headerBytes, hasTopic) = (1, true)
        case magic where integer(at: 1, byteCount: 1) == Int(version2): (headerBytes, hasTopic) = (2, false)
        default: return nil
        }
        var at = headerBytes + 8 + 32
        for _ in 0..<(hasTopic ? 2 : 1) {  // principal, topic
            guard let length = integer(at: at, byteCount: 2) else { return nil }
            at += 2 + length
        }
        guard let headerLength = integer(at: at + 2, byteCount: 4) else { return nil }
        at += 2 + 4 + headerLength
        return at <= bytes.count ? bytes.count - at : nil
    }

    /// `topic` is the stream subject without its prefix: format 2 records
    /// take their topic from it, format 1 records carry their own.
    static func decode(_ data: ByteBuffer, sequence: UInt64, topic subjectTopic: Substring?) throws(StoreError) -> StoredMessage {
        var buffer = data
        func fail(_ why: String) -> StoreError { .invalidRecord(sequence: sequence, reason: why) }
        guard let layout = layout(of: buffer) else { throw fail("not a Relay record (version byte)") }
        buffer.moveReaderIndex(forwardBy: layout.headerBytes)
        // The fingerprint as its four big-endian words: no byte array (the
        // tail decodes every message of the stream).
        guard let timestamp = buffer.readInteger(as: UInt64.self),
              let w0 = buffer.readInteger(as: UInt64.self), let w1 = buffer.readInteger(as: UInt64.self),
              let w2 = buffer.readInteger(as: UInt64.self), let w3 = buffer.readInteger(as: UInt64.self),
              let principal = readString(&buffer) else {
            throw fail("truncated record")
        }
        let topicText: String
        if layout.hasTopic {
            guard let text = readString(&buffer) else { throw fail("truncated record") }
            topicText = text
        } else {
            guard let subjectTopic else { throw fail("a format 2 record without its stream subject") }
            topicText = String(subjectTopic)
        }
        guard let headerCount = buffer.readInteger(as: UInt16.self),
              let headerLength = buffer.readInteger(as: UInt32.self),
              let headers = buffer.readSlice(length: Int(headerLength)) else {
            throw fail("truncated record")
        }
        let topic: Topic
        do { topic = try Topic(topicText) } catch { throw fail("invalid topic \"\(topicText)\": \(error)") }
        return StoredMessage(sequence: sequence, timestamp: timestamp, topic: topic,
                             publisher: PublisherStamp(principal: principal,
                                                       fingerprint: CertificateFingerprint(w0: w0, w1: w1, w2: w2, w3: w3)),
                             headers: HeaderBlock(count: Int(headerCount), encoded: headers), payload: buffer)
    }

    private static func readString(_ buffer: inout ByteBuffer) -> String? {
        guard let length = buffer.readInteger(as: UInt16.self) else { return nil }
        return buffer.readString(length: Int(length))
    }

    /// `Nats-Msg-Id` for a producer key: publisher fingerprint, session id and
    /// publish id, so JetStream's duplicate window does Relay's dedup.
    static func messageID(_ key: ProducerKey) -> String {
        let session = String(key.sessionHigh, radix: 16) + "-" + String(key.sessionLow, radix: 16)
        return "\(key.publisher.hex)-\(session)-\(key.publishID)"
    }
}
