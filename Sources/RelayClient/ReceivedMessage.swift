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
    /// The decoded MSG, held whole and taken over owned from the decoder:
    /// copying its strings, headers and payload into fields of their own and
    /// destroying the original cost ~400 instructions per delivery in the
    /// wave-12 replay profile. Its subscription id is zeroed: which
    /// subscription got a message is not part of it (equality and hash are
    /// over the fields below, as when they were stored one by one).
    private var message: Message

    /// The topic it was published to.
    public var topic: String {
        get { message.topic }
        set { message.topic = newValue }
    }
    /// The message's position in the broker's log; increasing per subscription.
    public var sequence: UInt64 {
        get { message.sequence }
        set { message.sequence = newValue }
    }
    /// Commit time, nanoseconds since the Unix epoch.
    public var timestamp: UInt64 {
        get { message.timestamp }
        set { message.timestamp = newValue }
    }
    /// The publisher's principal (stamped by the broker, never by the publisher).
    public var publisherPrincipal: String {
        get { message.publisherPrincipal }
        set { message.publisherPrincipal = newValue }
    }
    var fingerprint: CertificateFingerprint { message.publisherFingerprint }
    var encodedHeaders: Headers { message.headers }
    /// The bytes the publisher sent.
    public var payload: ByteBuffer {
        get { message.payload }
        set { message.payload = newValue }
    }
    /// Read from the broker's store (replay or catch-up) rather than delivered live.
    public var replayed: Bool {
        get { message.replayed }
        set { message.replayed = newValue }
    }

    init(_ message: consuming Message) {
        message.subscriptionID = 0
        self.message = consume message
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
