import NIOCore

/// A committed message on its way to subscribers. One instance per message is
/// shared by every subscription that receives it (a class, so fan-out to K
/// subscribers costs K reference-count increments, not K copies).
public final class RoutedMessage: Sendable {
    public let sequence: UInt64
    /// Nanoseconds since the Unix epoch, stamped by the broker.
    public let timestamp: UInt64
    public let topic: String
    /// The publisher's principal and certificate fingerprint, as the broker
    /// derived them from the verified certificate. Never client-supplied.
    public let publisherPrincipal: String
    public let publisherFingerprint: String
    public let headers: [(String, String)]
    public let payload: ByteBuffer

    public init(sequence: UInt64, timestamp: UInt64, topic: String, publisherPrincipal: String,
                publisherFingerprint: String, headers: [(String, String)], payload: ByteBuffer) {
        self.sequence = sequence
        self.timestamp = timestamp
        self.topic = topic
        self.publisherPrincipal = publisherPrincipal
        self.publisherFingerprint = publisherFingerprint
        self.headers = headers
        self.payload = payload
    }

    /// Bytes this message holds in memory, for buffer accounting.
    public var approximateSize: Int { payload.readableBytes + topic.utf8.count + 64 }
}
