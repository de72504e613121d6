/// A ``MessageLog`` that several relayd edges share (the JetStream backend):
/// what one edge appends, every edge must deliver. The broker then feeds its
/// router from the log's tail, in the log's one order, instead of routing its
/// own appends (which would give each edge a different order and miss the
/// other edges' messages). LMDB and the in-memory log are not shared: the
/// broker keeps routing their appends directly, which is the fast path.
public protocol SharedMessageLog: MessageLog {
    /// Calls `deliver` with every message stored after `sequence`, by any
    /// edge, in ascending sequence order, each exactly once, until
    /// ``stopTail()`` or the log is closed. Calls never overlap; each must
    /// only hand off. One tail at a time: starting a second one while one
    /// runs throws.
    func startTail(after sequence: UInt64, deliver: @escaping @Sendable ([StoredMessage]) -> Void) throws(StoreError)

    /// Stops the tail ``startTail(after:deliver:)`` started (nothing when none
    /// runs), so the backing service stops sending this edge every message;
    /// a call already under way may still finish. The tail may be started
    /// again, from any sequence: after ``MessageLog/lastSequence()``, which a
    /// shared log answers from the service itself (the stream leader), it
    /// misses nothing stored later.
    func stopTail()

    /// As ``startTail(after:deliver:)``, but first asks `skip` with each
    /// message's sequence and payload size: when it answers true (nothing on
    /// this edge needs the message live) the message is neither decoded nor
    /// delivered. Calls never overlap.
    func startTail(after sequence: UInt64, skip: @escaping @Sendable (_ sequence: UInt64, _ payloadBytes: Int) -> Bool,
                   deliver: @escaping @Sendable ([StoredMessage]) -> Void) throws(StoreError)
}

extension SharedMessageLog {
    /// A log that cannot tell a message's sequence before decoding it delivers everything.
    public func startTail(after sequence: UInt64, skip: @escaping @Sendable (_ sequence: UInt64, _ payloadBytes: Int) -> Bool,
                          deliver: @escaping @Sendable ([StoredMessage]) -> Void) throws(StoreError) {
        try startTail(after: sequence, deliver: deliver)
    }
}

extension MessageLog {
    /// False while the log cannot take appends (a replicated log without
    /// quorum): /readyz reports not ready. A local log is always available.
    public var isAvailable: Bool {
        (self as? any AvailabilityReporting)?.reportsAvailable ?? true
    }
}

/// A shared log that knows, without asking its service, the cursor of each
/// durable attached on this edge: the one it read when the durable was
/// attached, or stored since. For `relay_subscription_lag` on a cluster
/// edge, where listing every cursor would cost a request per cursor.
public protocol KnownCursorReporting: AnyObject {
    /// The cursors known for `durables`; a durable with no cursor (none
    /// stored yet, or lost to a delete) is left out.
    func knownCursors(_ durables: [(owner: DurableOwner, name: String)]) -> [DurableCursorRecord]
}

/// A log that can lose its backing service reports it here.
public protocol AvailabilityReporting {
    var reportsAvailable: Bool { get }
}

/// A shared log that other writers can put records into (anything that may
/// publish into the JetStream stream's subjects). Its tail and its reads skip
/// records they cannot decode and count them here (each sequence once), for
/// relay_storage_foreign_records_total.
public protocol ForeignRecordReporting: AnyObject {
    /// Records the tail or a read skipped so far.
    var foreignRecordCount: UInt64 { get }
    /// `observer` is called (on the tail's or a reader's thread) with each batch of newly skipped records.
    func observeForeignRecords(_ observer: @escaping @Sendable (Int) -> Void)
}

/// A log that reaches its backing service with client credentials on disk (a
/// certificate, its key, the CA that verifies the service) and can take
/// renewed ones while it runs, without a restart (the JetStream backend:
/// docs/cluster.md, "Renewing the edge's NATS certificate").
public protocol CredentialRenewing: AnyObject {
    /// Connects to the service again with `files` as they are on disk now
    /// (the configured paths, or new ones a reloaded config names), and
    /// proves the new connection works, but moves nothing to it yet: calling
    /// the returned closure does (once), and from then on the connection
    /// presents those files at every reconnect. Dropping the closure uncalled
    /// closes the new connection. Throws, changing nothing, when the service
    /// does not accept a connection with those files.
    func connectWithRenewedCredentials(_ files: CredentialFiles) throws(CredentialRenewalError) -> @Sendable () -> Void
}

/// The paths of the files a ``CredentialRenewing`` log presents to its
/// backing service.
public struct CredentialFiles: Sendable, Equatable {
    /// The CA that verifies the service.
    public var ca: String
    public var certificate: String
    public var privateKey: String

    public init(ca: String, certificate: String, privateKey: String) {
        (self.ca, self.certificate, self.privateKey) = (ca, certificate, privateKey)
    }
}

/// Why renewed credentials were not taken (``CredentialRenewing``).
public struct CredentialRenewalError: Error, Sendable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
