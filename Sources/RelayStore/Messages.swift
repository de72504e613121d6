import NIOCore
import RelayCore

/// Who published a message, as verified by TLS and stamped by the broker
/// (never taken from anything a client can set). The stamp the store keeps
/// with each message; RelayClient's `PublisherStamp` is the API that sends them.
public struct PublisherStamp: Hashable, Sendable {
    /// The identity's principal as policy names it (e.g. the SPIFFE ID or subject CN).
    public var principal: String
    /// SHA-256 of the client certificate.
    public var fingerprint: CertificateFingerprint

    public init(principal: String, fingerprint: CertificateFingerprint) {
        self.principal = principal
        self.fingerprint = fingerprint
    }
}

/// A message's headers as the publisher's PUB carried them: `count` fields,
/// each `u16 key length, key, u16 value length, value` (Protocol/relay-v1.md
/// §3), in the publisher's order, repeated keys kept. The broker validated
/// the block when it decoded the PUB; the store keeps these bytes (its record
/// widens each value length to u32, docs/storage.md) and reads the same bytes
/// back, so MSG carries the block verbatim, live and on replay. Nothing on
/// that path turns a header into a String.
public struct HeaderBlock: Hashable, Sendable {
    public static let empty = HeaderBlock(count: 0, encoded: ByteBuffer())

    /// The number of fields.
    public let count: Int
    /// The fields, without the u16 count that precedes them on the wire.
    public let encoded: ByteBuffer

    public init(count: Int, encoded: ByteBuffer) {
        self.count = count
        self.encoded = encoded
    }

    public var isEmpty: Bool { count == 0 }
}

/// Who published (the certificate digest), their 16-byte producer session
/// id and the per-publish id: the key that makes a retried publish return
/// the original sequence. The digest is part of the key so that two
/// identities that send the same session and publish ids never collide
/// (Protocol/relay-v1.md §4.3).
public struct ProducerKey: Hashable, Sendable {
    /// The publisher's certificate.
    public var publisher: CertificateFingerprint
    /// The session id as two big-endian halves (bytes 0–7 and 8–15).
    public var sessionHigh: UInt64
    public var sessionLow: UInt64
    public var publishID: UInt64

    public init(publisher: CertificateFingerprint, sessionHigh: UInt64, sessionLow: UInt64, publishID: UInt64) {
        self.publisher = publisher
        self.sessionHigh = sessionHigh
        self.sessionLow = sessionLow
        self.publishID = publishID
    }

    /// Builds the key from a 16-byte session id as sent on the wire.
    public init<Bytes: Collection>(publisher: CertificateFingerprint, session bytes: Bytes,
                                   publishID: UInt64) throws(StoreError) where Bytes.Element == UInt8 {
        guard bytes.count == 16 else {
            throw .invalidArgument("a producer session id is 16 bytes, got \(bytes.count)")
        }
        var high: UInt64 = 0, low: UInt64 = 0
        for (i, b) in bytes.enumerated() {
            if i < 8 { high = high << 8 | UInt64(b) } else { low = low << 8 | UInt64(b) }
        }
        self.init(publisher: publisher, sessionHigh: high, sessionLow: low, publishID: publishID)
    }
}

/// Whose durable subscriptions these are: a 32-byte digest of the verified
/// identity of one workload, computed by the broker (see
/// docs/security.md, "Durable subscriptions belong to one workload"). The
/// store only keys cursors by it.
public struct DurableOwner: Hashable, Sendable {
    public let digest: [UInt8]

    /// Exactly 32 bytes, else nil.
    public init?(digest: [UInt8]) {
        guard digest.count == 32 else { return nil }
        self.digest = digest
    }
}

/// A message to append. The store assigns its sequence and timestamp.
public struct NewMessage: Sendable {
    public var topic: Topic
    public var payload: ByteBuffer
    public var headers: HeaderBlock
    public var publisher: PublisherStamp
    /// When set, a second append with the same key (within the dedup window)
    /// returns the first one's sequence with `duplicate == true`.
    public var producerKey: ProducerKey?

    public init(topic: Topic, payload: ByteBuffer, headers: HeaderBlock = .empty, publisher: PublisherStamp,
                producerKey: ProducerKey? = nil) {
        self.topic = topic
        self.payload = payload
        self.headers = headers
        self.publisher = publisher
        self.producerKey = producerKey
    }
}

/// The outcome of one durable append.
public struct AppendReceipt: Hashable, Sendable {
    /// The message's position in the global log (first message is 1).
    public var sequence: UInt64
    /// Nanoseconds since the Unix epoch, assigned by the store at commit.
    public var timestamp: UInt64
    /// True when the producer key was seen before: `sequence` is the original one and nothing was stored.
    public var duplicate: Bool

    public init(sequence: UInt64, timestamp: UInt64, duplicate: Bool) {
        self.sequence = sequence
        self.timestamp = timestamp
        self.duplicate = duplicate
    }
}

/// A message read back from the store.
public struct StoredMessage: Sendable, Equatable {
    public var sequence: UInt64
    /// Nanoseconds since the Unix epoch.
    public var timestamp: UInt64
    public var topic: Topic
    public var publisher: PublisherStamp
    /// The publisher's header block, byte for byte; a slice of the batch's shared buffer.
    public var headers: HeaderBlock
    /// A slice of a buffer shared by the messages of one read batch.
    public var payload: ByteBuffer

    public init(sequence: UInt64, timestamp: UInt64, topic: Topic, publisher: PublisherStamp,
                headers: HeaderBlock, payload: ByteBuffer) {
        self.sequence = sequence
        self.timestamp = timestamp
        self.topic = topic
        self.publisher = publisher
        self.headers = headers
        self.payload = payload
    }
}

/// One bounded batch of a replay.
public struct ReadBatch: Sendable {
    public var messages: [StoredMessage]
    /// Where the next call continues (the sequence after the last one examined).
    public var next: UInt64
    /// True when the batch reached the end of the log (nothing newer is stored yet).
    public var reachedEnd: Bool

    /// Public so a ``MessageLog`` outside this module can return batches.
    public init(messages: [StoredMessage], next: UInt64, reachedEnd: Bool) {
        (self.messages, self.next, self.reachedEnd) = (messages, next, reachedEnd)
    }
}
