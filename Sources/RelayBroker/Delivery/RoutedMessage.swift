import NIOCore
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
}
