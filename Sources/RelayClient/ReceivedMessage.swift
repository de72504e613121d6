@_exported import struct NIOCore.ByteBuffer
@_exported import struct RelayWire.HeaderField
@_exported import enum RelayCore.StartPosition
import RelayCore
import Foundation
import NIOCore
import RelayWire

/// One message delivered to a subscription, with the publisher's identity as
/// the broker derived it from the publisher's verified certificate.
public struct ReceivedMessage: Sendable, Hashable {
    /// The topic it was published to.
    public var topic: String
    /// The message's position in the broker's log; increasing per subscription.
    public var sequence: UInt64
    /// Commit time, nanoseconds since the Unix epoch.
    public var timestamp: UInt64
    /// The publisher's principal (stamped by the broker, never by the publisher).
    public var publisherPrincipal: String
    let fingerprint: CertificateFingerprint
    let encodedHeaders: Headers
    /// The bytes the publisher sent.
    public var payload: ByteBuffer
    /// Read from the broker's store (replay or catch-up) rather than delivered live.
    public var replayed: Bool

    init(_ message: Message) {
        topic = message.topic
        sequence = message.sequence
        timestamp = message.timestamp
        publisherPrincipal = message.publisherPrincipal
        fingerprint = message.publisherFingerprint
        encodedHeaders = message.headers
        payload = message.payload
        replayed = message.replayed
    }

    /// SHA-256 of the publisher's certificate, 64 lower-case hex digits.
    public var publisherFingerprint: String { fingerprint.hex }

    /// The headers, in the order the publisher sent them.
    public var headers: [HeaderField] { Array(encodedHeaders) }

    /// The commit time as a `Date`.
    public var date: Date { Date(timeIntervalSince1970: Double(timestamp) / 1_000_000_000) }

    /// The payload bytes.
    public var bytes: [UInt8] { Array(payload.readableBytesView) }

    /// The payload as text when it is valid UTF-8, else nil.
    public var text: String? {
        String(validating: payload.readableBytesView, as: UTF8.self)
    }
}
