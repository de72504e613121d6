import RelayWire

/// Who the broker says this client is, and the limits it enforces, from WELCOME.
public struct SessionInfo: Sendable, Hashable {
    /// The name the broker stamps on this client's messages.
    public var principal: String
    /// The certificate subject, RFC 4514.
    public var subject: String
    /// SHA-256 of the client certificate, 64 lower-case hex digits.
    public var fingerprint: String
    /// The certificate's SPIFFE ID, or empty.
    public var spiffeID: String
    /// The largest frame the broker accepts, in bytes.
    public var maxFrameSize: Int
    /// The largest payload the broker accepts, in bytes.
    public var maxPayload: Int
    /// The most headers one message may carry.
    public var maxHeaders: Int
    /// The most bytes one message's headers may take.
    public var maxHeaderBytes: Int
    /// The most publishes the broker lets await their PUBACK at once.
    public var maxInFlight: Int
    /// The most subscriptions one connection may hold open.
    public var maxSubscriptions: Int
    /// How long the broker remembers publish ids for deduplication, in ns (0: none).
    public var dedupWindowNanoseconds: UInt64

    init(_ w: Welcome) {
        principal = w.principal
        subject = w.subject
        fingerprint = w.fingerprint.hex
        spiffeID = w.spiffeID
        maxFrameSize = Int(w.maxFrameSize)
        maxPayload = Int(w.maxPayload)
        maxHeaders = Int(w.maxHeaders)
        maxHeaderBytes = Int(w.maxHeaderBytes)
        maxInFlight = Int(w.maxInFlight)
        maxSubscriptions = Int(w.maxSubscriptions)
        dedupWindowNanoseconds = w.dedupWindow
    }
}

/// The life of a ``RelayConnection``, as its ``RelayConnection/states`` stream reports it.
public enum ConnectionState: Sendable, Hashable {
    /// Connecting (attempt 1 is the first connection, later ones are reconnects).
    case connecting(attempt: Int)
    /// WELCOME received: the session is usable.
    case connected(SessionInfo)
    /// The connection was lost; the next attempt starts after `retryIn`.
    case disconnected(RelayClientError, retryIn: Duration)
    /// Finished for good: closed by the owner (nil) or by an error retrying cannot fix.
    case closed(RelayClientError?)

    /// True for ``closed(_:)``.
    public var isFinal: Bool {
        if case .closed = self { return true }
        return false
    }
}
