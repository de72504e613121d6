import NIOCore
import RelayCore
import RelayStore
import RelayWire

/// A committed message on its way to subscribers, encoded once as a MSG
/// tail (``PreparedMessage``) and shared by every subscription that
/// receives it: fan-out to K subscribers costs K reference-count increments
/// and K memcpys of the encoded bytes, never K re-encodings.
public final class RoutedMessage: Sendable {
    public let sequence: UInt64
    public let topic: String
    public let prepared: PreparedMessage

    public init(sequence: UInt64, topic: String, prepared: PreparedMessage) {
        self.sequence = sequence
        self.topic = topic
        self.prepared = prepared
    }

    /// Bytes this message holds in memory, for buffer accounting.
    public var approximateSize: Int { prepared.frameSize + 48 }

    /// Encodes a committed message for delivery: the one conversion from the
    /// store's record to a MSG tail, used by live fan-out and by replay.
    /// Nil only when the message cannot be encoded, which validation at
    /// publish time rules out.
    public static func encode(sequence: UInt64, timestamp: UInt64, topic: String, publisherPrincipal: String,
                              publisherFingerprint: CertificateFingerprint, headers: [MessageHeader],
                              payload: ByteBuffer) -> RoutedMessage? {
        guard let prepared = try? PreparedMessage(
            sequence: sequence, timestamp: timestamp, topic: topic, publisherPrincipal: publisherPrincipal,
            publisherFingerprint: publisherFingerprint, headers: wireHeaders(headers), payload: payload) else { return nil }
        return RoutedMessage(sequence: sequence, topic: topic, prepared: prepared)
    }

    /// A stored message's headers as the MSG frame carries them (validated
    /// when published). Most messages carry none: no list is built then.
    static func wireHeaders(_ headers: [MessageHeader]) -> Headers {
        headers.isEmpty ? Headers.empty : (try? Headers(headers.map { HeaderField(key: $0.name, value: $0.value) })) ?? .empty
    }
}
