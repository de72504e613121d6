import NIOCore
import RelayCore

/// Client → broker: publish one message (§4.3).
public struct Publish: Sendable, Hashable {
    /// Client-chosen; strictly increasing per producer session; echoed in the answer.
    public var publishID: UInt64
    /// Not yet checked against the topic grammar: a bad topic refuses this
    /// publish only (PUBERR), see ``OperationValidation``.
    public var topic: String
    public var headers: Headers
    /// A slice of the receive buffer.
    public var payload: ByteBuffer

    public init(publishID: UInt64, topic: String, headers: Headers = .empty, payload: ByteBuffer) {
        self.publishID = publishID
        self.topic = topic
        self.headers = headers
        self.payload = payload
    }
}

/// Broker → client: the message is durably stored (§4.4).
public struct PublishAck: Sendable, Hashable {
    static let duplicateFlag: UInt8 = 0x01

    public var publishID: UInt64
    public var sequence: UInt64
    /// Nanoseconds since the Unix epoch, assigned at commit.
    public var timestamp: UInt64
    /// The publish id was already stored: `sequence` is the original one.
    public var duplicate: Bool

    public init(publishID: UInt64, sequence: UInt64, timestamp: UInt64, duplicate: Bool = false) {
        self.publishID = publishID
        self.sequence = sequence
        self.timestamp = timestamp
        self.duplicate = duplicate
    }
}

/// Broker → client: the publish was refused; nothing was stored (§4.5).
public struct PublishError: Sendable, Hashable {
    public var publishID: UInt64
    /// A ``RelayErrorCode`` raw value; kept raw so a newer broker's codes still decode.
    public var code: UInt16
    public var message: String

    public init(publishID: UInt64, code: RelayErrorCode, message: String) {
        self.init(publishID: publishID, rawCode: code.rawValue, message: message)
    }

    public init(publishID: UInt64, rawCode: UInt16, message: String) {
        self.publishID = publishID
        self.code = rawCode
        self.message = message
    }

    public var errorCode: RelayErrorCode? { RelayErrorCode(rawValue: code) }
}

/// Broker → client: one delivered message (§4.11), with the publisher's
/// identity as the broker derived it from the verified certificate.
public struct Message: Sendable, Hashable {
    static let replayedFlag: UInt8 = 0x01

    public var subscriptionID: UInt32
    public var sequence: UInt64
    /// Commit time, nanoseconds since the Unix epoch.
    public var timestamp: UInt64
    public var topic: String
    public var publisherPrincipal: String
    public var publisherFingerprint: CertificateFingerprint
    public var headers: Headers
    public var payload: ByteBuffer
    /// Read from the store (replay or catch-up) rather than delivered live.
    public var replayed: Bool

    public init(subscriptionID: UInt32, sequence: UInt64, timestamp: UInt64, topic: String,
                publisherPrincipal: String, publisherFingerprint: CertificateFingerprint,
                headers: Headers = .empty, payload: ByteBuffer, replayed: Bool = false) {
        self.subscriptionID = subscriptionID
        self.sequence = sequence
        self.timestamp = timestamp
        self.topic = topic
        self.publisherPrincipal = publisherPrincipal
        self.publisherFingerprint = publisherFingerprint
        self.headers = headers
        self.payload = payload
        self.replayed = replayed
    }
}
