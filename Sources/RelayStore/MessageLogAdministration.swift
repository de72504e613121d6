import RelayCore

/// What `relayctl` (through the broker's admin operations) asks of storage,
/// beyond what sessions need, in three capabilities a backend adopts one by
/// one: ``DurableCursorAdministration`` (`durables`, `durable delete`),
/// ``TopicAdministration`` (`topics`, `purge`) and ``StoreBackup``
/// (`backup`). They are SEPARATE protocols, not requirements of
/// ``MessageLog``: a log that cannot do one still is a ``MessageLog``, and
/// the broker answers `admin_not_supported` for the operations whose
/// capability `store as? any …` does not find (with the log's
/// ``AdministrationAlternatives`` text when it has one). LMDB and the
/// in-memory log have all three (``MessageLogAdministration``); the
/// JetStream log the first two.
///
/// Threads: every method may run on any thread except a log completion.
public typealias MessageLogAdministration = DurableCursorAdministration & TopicAdministration & StoreBackup

/// Listing and forgetting durable cursors.
public protocol DurableCursorAdministration: AnyObject, Sendable {
    /// Every durable cursor the log holds (owned ones; legacy schema-1
    /// cursors not yet adopted are left out), sorted by owner then name.
    func durableCursors() throws(StoreError) -> [DurableCursorRecord]

    /// Forgets a durable cursor; false when there was none.
    func deleteDurableCursor(owner: DurableOwner, name: String) async throws(StoreError) -> Bool

    /// What a consumer attaching a cursor at `cursor` with `filter` would
    /// receive from the log now: how many stored messages match after it
    /// (counting stops at `limit`: then `capped`), and the timestamp of the
    /// first of them. A ``MessageLog`` gets a scan of its reads; a log that
    /// can count without reading each message answers with its own.
    func backlog(after cursor: UInt64, filter: TopicFilter, limit: UInt64) throws(StoreError) -> DurableBacklog
}

/// Per-topic listings and purge.
public protocol TopicAdministration: AnyObject, Sendable {
    /// One entry per topic holding messages, sorted by topic.
    func topicStatistics() throws(StoreError) -> [TopicStatistics]

    /// Deletes every stored message whose topic matches `filter`, at once
    /// (not through retention). Sequences are never reused. Returns how
    /// many messages (and, where the backend knows, record bytes and
    /// topics) went. LMDB: what was stored when the purge began, in
    /// batches of records, each its own write transaction serialised with
    /// the appends (so they commit between the batches, not after the whole
    /// purge); a message published meanwhile is kept.
    func purge(_ filter: TopicFilter) throws(StoreError) -> PurgeResult

    /// ``purge(_:)`` that a stopping broker can end early: `stop` is asked
    /// before anything changes and, on a backend that purges in batches,
    /// before each batch (LMDB: inside the batch's transaction, so a purge
    /// that waited for the writer is asked once it has it). Once it answers
    /// true the purge ends with ``PurgeResult/stopped`` set; the batches
    /// committed before stay deleted and `messages` counts them (0: nothing
    /// changed). A backend without batches asks once, before it starts.
    func purge(_ filter: TopicFilter, stoppingWhen stop: () -> Bool) throws(StoreError) -> PurgeResult
}

extension TopicAdministration {
    public func purge(_ filter: TopicFilter, stoppingWhen stop: () -> Bool) throws(StoreError) -> PurgeResult {
        if stop() { return PurgeResult(messages: 0, bytes: nil, topics: nil, stopped: true) }
        return try purge(filter)
    }
}

/// A hot backup of the whole store.
public protocol StoreBackup: AnyObject, Sendable {
    /// Writes a consistent, compacted copy of the whole store to `sink`, in
    /// chunks, while appends continue (a read snapshot: what was committed
    /// when the copy began). The bytes are what the backend opens as its data
    /// (for LMDB, a `data.mdb`). `sink` runs on the calling thread and may
    /// block (that is the back-pressure); a throw from it ends the copy.
    /// Returns the number of bytes written.
    func backup(chunkSize: Int, to sink: (ArraySlice<UInt8>) throws -> Void) throws -> Int
}

/// The admin operations a log does not do itself, with what an operator
/// uses instead (the broker's `admin_not_supported` message carries it).
public protocol AdministrationAlternatives: Sendable {
    /// What to use instead of the admin operation `operation` (`backup`,
    /// `topics`, ...); nil when there is nothing to say.
    func alternative(to operation: String) -> String?
}

/// A durable's backlog (``DurableCursorAdministration/backlog(after:filter:limit:)``).
public struct DurableBacklog: Sendable, Hashable {
    public var messages: UInt64
    /// True when counting stopped at the limit: the backlog is at least `messages`.
    public var capped: Bool
    /// Timestamp (ns since the epoch) of the oldest message after the cursor; nil when none (or unknown).
    public var oldestTimestamp: UInt64?

    public init(messages: UInt64, capped: Bool, oldestTimestamp: UInt64?) {
        (self.messages, self.capped, self.oldestTimestamp) = (messages, capped, oldestTimestamp)
    }
}

extension DurableCursorAdministration where Self: MessageLog {
    /// Reads the log after `cursor` in batches (a bounded cost per call:
    /// at most `limit` messages are read).
    public func backlog(after cursor: UInt64, filter: TopicFilter, limit: UInt64) throws(StoreError) -> DurableBacklog {
        var from = cursor + 1, count: UInt64 = 0, oldest: UInt64?
        while count < limit {
            let batch = try read(from: from, filter: filter, maxMessages: 4096, maxBytes: 8 << 20, maxScan: 65_536)
            count += UInt64(batch.messages.count)
            if oldest == nil { oldest = batch.messages.first?.timestamp }
            if batch.reachedEnd || batch.next <= from { return DurableBacklog(messages: count, capped: false, oldestTimestamp: oldest) }
            from = batch.next
        }
        return DurableBacklog(messages: count, capped: true, oldestTimestamp: oldest)
    }
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
/// `bytes` is nil where the backend does not count bytes per topic
/// (JetStream), a timestamp nil where the record at that end is not a
/// Relay record: unknown, never a made-up zero.
public struct TopicStatistics: Sendable, Hashable {
    public var topic: String
    public var messages: UInt64
    public var bytes: UInt64?
    public var firstSequence: UInt64
    public var lastSequence: UInt64
    public var firstTimestamp: UInt64?
    public var lastTimestamp: UInt64?

    public init(topic: String, messages: UInt64, bytes: UInt64?, firstSequence: UInt64, lastSequence: UInt64,
                firstTimestamp: UInt64?, lastTimestamp: UInt64?) {
        (self.topic, self.messages, self.bytes) = (topic, messages, bytes)
        (self.firstSequence, self.lastSequence) = (firstSequence, lastSequence)
        (self.firstTimestamp, self.lastTimestamp) = (firstTimestamp, lastTimestamp)
    }
}

/// What a purge deleted: `bytes` and `topics` nil where the backend's
/// purge does not say them (JetStream answers the message count only).
public struct PurgeResult: Sendable, Hashable {
    public var messages: UInt64
    public var bytes: UInt64?
    public var topics: Int?
    /// The purge was asked to stop before it finished: `messages` (and
    /// `bytes`) are what went before it stopped, the rest is still stored.
    public var stopped: Bool

    public init(messages: UInt64, bytes: UInt64?, topics: Int?, stopped: Bool = false) {
        (self.messages, self.bytes, self.topics, self.stopped) = (messages, bytes, topics, stopped)
    }
}
