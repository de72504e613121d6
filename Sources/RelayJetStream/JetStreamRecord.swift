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
/// version:u8 (1)  timestamp:u64  fingerprint:32 bytes
/// principal:str16  topic:str16  header_count:u16  headers_length:u32  headers  payload (the rest)
/// ```
/// Integers are big-endian; `str16` is a u16 length then UTF-8 bytes; the
/// header block is Relay's wire encoding (Protocol/relay-v1.md §3), verbatim.
enum JetStreamRecord {
    static let version: UInt8 = 1

    static func encode(_ message: NewMessage, timestamp: UInt64) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.reserveCapacity(64 + message.publisher.principal.utf8.count + message.topic.value.utf8.count
                               + message.headers.encoded.readableBytes + message.payload.readableBytes)
        buffer.writeInteger(version)
        buffer.writeInteger(timestamp)
        message.publisher.fingerprint.withUnsafeBytes { _ = buffer.writeBytes($0) }
        writeString(message.publisher.principal, to: &buffer)
        writeString(message.topic.value, to: &buffer)
        buffer.writeInteger(UInt16(clamping: message.headers.count))
        buffer.writeInteger(UInt32(message.headers.encoded.readableBytes))
        buffer.writeImmutableBuffer(message.headers.encoded)
        buffer.writeImmutableBuffer(message.payload)
        return buffer
    }

    private static func writeString(_ value: String, to buffer: inout ByteBuffer) {
        buffer.writeInteger(UInt16(clamping: value.utf8.count))
        buffer.writeString(value)
    }

    /// Just the timestamp (a duplicate's receipt needs only that).
    static func timestamp(of data: ByteBuffer) -> UInt64? {
        guard data.getInteger(at: data.readerIndex, as: UInt8.self) == version else { return nil }
        return data.getInteger(at: data.readerIndex + 1, as: UInt64.self)
    }

    /// The payload's size from the record's length fields alone, or nil when
    /// `data` is not a well-formed Relay record (then decode says why).
    static func payloadLength(of data: ByteBuffer) -> Int? {
        let start = data.readerIndex, end = data.writerIndex
        guard data.getInteger(at: start, as: UInt8.self) == version else { return nil }
        var at = start + 1 + 8 + 32
        for _ in 0..<2 {  // principal, topic
            guard let length = data.getInteger(at: at, as: UInt16.self) else { return nil }
            at += 2 + Int(length)
        }
        guard let headerLength = data.getInteger(at: at + 2, as: UInt32.self) else { return nil }
        at += 2 + 4 + Int(headerLength)
        return at <= end ? end - at : nil
    }

    static func decode(_ data: ByteBuffer, sequence: UInt64) throws(StoreError) -> StoredMessage {
        var buffer = data
        func fail(_ why: String) -> StoreError { .invalidRecord(sequence: sequence, reason: why) }
        guard buffer.readInteger(as: UInt8.self) == version else { throw fail("not a Relay record (version byte)") }
        // The fingerprint as its four big-endian words: no byte array (the
        // tail decodes every message of the stream).
        guard let timestamp = buffer.readInteger(as: UInt64.self),
              let w0 = buffer.readInteger(as: UInt64.self), let w1 = buffer.readInteger(as: UInt64.self),
              let w2 = buffer.readInteger(as: UInt64.self), let w3 = buffer.readInteger(as: UInt64.self),
              let principal = readString(&buffer), let topicText = readString(&buffer),
              let headerCount = buffer.readInteger(as: UInt16.self),
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
