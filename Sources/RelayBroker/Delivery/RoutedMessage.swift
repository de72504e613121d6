import NIOCore
import RelayCore
import RelayStore
import RelayWire

/// A committed message on its way to subscribers, encoded once as a MSG
/// tail (``PreparedMessage``) and shared by every subscription that
/// receives it: fan-out to K subscribers costs K copies of this value (two
/// reference-count increments: the topic and the tail's storage) and K
/// memcpys of the encoded bytes, never K re-encodings.
///
/// A struct, not a class: an object per message was an allocation and a
/// free (~300 instructions) per committed message; the tails of a batch
/// share a few buffers (``MessageTailBatch``).
public struct RoutedMessage: Sendable {
    public let sequence: UInt64
    /// The commit time, for a `time` start position in the future (§4.6).
    public let timestamp: UInt64
    public let topic: String
    public let prepared: PreparedMessage

    public init(sequence: UInt64, timestamp: UInt64, topic: String, prepared: PreparedMessage) {
        self.sequence = sequence
        self.timestamp = timestamp
        self.topic = topic
        self.prepared = prepared
    }

    /// Bytes this message holds in memory, for buffer accounting.
    public var approximateSize: Int { prepared.frameSize + 48 }

    /// Encodes a committed message for delivery: the one conversion from the
    /// store's record to a MSG tail, used by live fan-out and by replay.
    /// Nil only when the topic or principal is over 65,535 bytes, which
    /// validation at publish time rules out.
    public static func encode(sequence: UInt64, timestamp: UInt64, topic: String, publisherPrincipal: String,
                              publisherFingerprint: CertificateFingerprint, headers: HeaderBlock,
                              payload: ByteBuffer) -> RoutedMessage? {
        guard let prepared = try? PreparedMessage(
            sequence: sequence, timestamp: timestamp, topic: topic, publisherPrincipal: publisherPrincipal,
            publisherFingerprint: publisherFingerprint, headers: Headers(headers), payload: payload) else { return nil }
        return RoutedMessage(sequence: sequence, timestamp: timestamp, topic: topic, prepared: prepared)
    }
}

/// The header block between the wire and the store: the same bytes, never
/// decoded into fields and re-encoded.
extension HeaderBlock {
    /// A decoded PUB's block, to store.
    init(_ headers: Headers) {
        self.init(count: headers.count, encoded: headers.encoded)
    }
}

extension Headers {
    /// A stored (or just committed) message's block, for MSG.
    init(_ block: HeaderBlock) {
        self = block.isEmpty ? .empty : Headers(validated: block.encoded, count: block.count)
    }
}
