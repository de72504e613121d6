import RelayCore

/// What `relayctl` (through the broker's admin operations) asks of storage,
/// beyond what sessions need: listings, purge, durable deletion and a hot
/// backup. A SEPARATE protocol, not requirements of ``MessageLog``: a log
/// that cannot do these (a replicated backend) still is a ``MessageLog``,
/// and the broker answers `not_supported` when `store as? any
/// MessageLogAdministration` fails.
///
/// Threads: every method may run on any thread except a log completion.
/// Listings are read-only snapshots; ``purge(_:)`` is one write transaction
/// serialised with appends, so it cannot interleave with half a commit.
public protocol MessageLogAdministration: AnyObject, Sendable {
    /// Every durable cursor the log holds (owned ones; legacy schema-1
    /// cursors not yet adopted are left out), sorted by owner then name.
    func durableCursors() throws(StoreError) -> [DurableCursorRecord]

    /// One entry per topic holding messages, sorted by topic.
    func topicStatistics() throws(StoreError) -> [TopicStatistics]

    /// Deletes every stored message whose topic matches `filter`, at once
    /// (not through retention). Sequences are never reused. Returns how
    /// many messages and record bytes went.
    func purge(_ filter: TopicFilter) throws(StoreError) -> PurgeResult

    /// Forgets a durable cursor; false when there was none.
    func deleteDurableCursor(owner: DurableOwner, name: String) async throws(StoreError) -> Bool

    /// Writes a consistent, compacted copy of the whole store to `sink`, in
    /// chunks, while appends continue (a read snapshot: what was committed
    /// when the copy began). The bytes are what the backend opens as its data
    /// (for LMDB, a `data.mdb`). `sink` runs on the calling thread and may
    /// block (that is the back-pressure); a throw from it ends the copy.
    /// Returns the number of bytes written.
    func backup(chunkSize: Int, to sink: (ArraySlice<UInt8>) throws -> Void) throws -> Int
}

/// A stored durable cursor: whose it is (the owner digest, see
/// `IdentityScope` in the broker), its name, the last consumed sequence, and
/// the filter it was attached with (nil: recorded before filters were stored).
public struct DurableCursorRecord: Sendable, Hashable {
    public var owner: DurableOwner
    public var name: String
    public var cursor: UInt64
    public var filter: String?

    public init(owner: DurableOwner, name: String, cursor: UInt64, filter: String?) {
        (self.owner, self.name, self.cursor, self.filter) = (owner, name, cursor, filter)
    }
}

/// One topic's stored messages: how many, their record bytes, and the
/// oldest and newest by sequence and commit time (ns since the epoch).
public struct TopicStatistics: Sendable, Hashable {
    public var topic: String
    public var messages: UInt64
    public var bytes: UInt64
    public var firstSequence: UInt64
    public var lastSequence: UInt64
    public var firstTimestamp: UInt64
    public var lastTimestamp: UInt64

    public init(topic: String, messages: UInt64, bytes: UInt64, firstSequence: UInt64, lastSequence: UInt64,
                firstTimestamp: UInt64, lastTimestamp: UInt64) {
        (self.topic, self.messages, self.bytes) = (topic, messages, bytes)
        (self.firstSequence, self.lastSequence) = (firstSequence, lastSequence)
        (self.firstTimestamp, self.lastTimestamp) = (firstTimestamp, lastTimestamp)
    }
}

/// What a purge deleted.
public struct PurgeResult: Sendable, Hashable {
    public var messages: UInt64
    public var bytes: UInt64
    public var topics: Int

    public init(messages: UInt64, bytes: UInt64, topics: Int) {
        (self.messages, self.bytes, self.topics) = (messages, bytes, topics)
    }
}
