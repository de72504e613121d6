import RelayCore

/// The message log as the broker uses it: everything RelayBroker calls on
/// storage, and nothing else. The broker holds an `any MessageLog`; only
/// relayd's composition root (`RelaydCommand`) opens the concrete one.
///
/// Two implementations: ``MessageStore`` (LMDB, durable, what relayd runs)
/// and ``InMemoryMessageLog`` (the same semantics in memory, for unit tests
/// of the session logic; nothing survives the process). A replicated
/// backend would be a third.
///
/// Threads: reads (``read(from:filter:maxMessages:maxBytes:maxScan:)``,
/// ``startSequence(_:filter:)``, the cursor lookups) run on the caller's
/// thread, so each must be bounded. relayd calls them on an event loop,
/// except a SUB's look-ups on a log whose reads wait on a service
/// (``readsWaitOnService``), which it makes on a thread of its own. Appends and
/// cursor commits return at once; their completion runs later on the log's
/// own thread (``MessageStore``'s writer) or, for ``InMemoryMessageLog``,
/// before the call returns. Either way a completion must only hand off.
public protocol MessageLog: AnyObject, Sendable {
    // MARK: Appending

    /// Queues `messages` to be stored; `completion` gets one result per
    /// message, in order, once they are durable. A message whose
    /// ``NewMessage/producerKey`` was stored within ``dedupWindow`` is not
    /// stored again: its result is the original sequence and timestamp with
    /// `duplicate == true`.
    func append(_ messages: [NewMessage], completion: @escaping @Sendable ([Result<AppendReceipt, StoreError>]) -> Void)

    /// How far back a retried publish is recognised (WELCOME's `dedup_window`).
    var dedupWindow: DedupWindow { get }

    // MARK: Reading

    /// A bounded batch of the messages matching `filter` from sequence `from`
    /// on: at most `maxMessages` (at least one even if it exceeds `maxBytes`),
    /// examining at most `maxScan` records. ``ReadBatch/next`` says where the
    /// next call continues.
    func read(from: UInt64, filter: TopicFilter, maxMessages: Int, maxBytes: Int, maxScan: Int) throws(StoreError) -> ReadBatch

    /// ``read(from:filter:maxMessages:maxBytes:maxScan:)`` handing each
    /// message to `body` as it is found, for a reader that writes it out at
    /// once; `body` returns false to stop before that message. A log with
    /// records in memory hands them over without decoding (``StoredRecord``);
    /// the default reads a batch and hands its messages over.
    func visit(from: UInt64, filter: TopicFilter, maxMessages: Int, maxBytes: Int, maxScan: Int,
               _ body: (borrowing StoredRecord) -> Bool) throws(StoreError) -> ReadProgress

    /// The first sequence a subscription of `filter` starting at `position`
    /// reads. Bounded: `last N` examines at most a fixed number of entries
    /// and may then start later than the N-th newest match.
    func startSequence(_ position: StartPosition, filter: TopicFilter) throws(StoreError) -> UInt64

    /// The newest sequence ever stored (0 when none was).
    func lastSequence() throws(StoreError) -> UInt64

    /// True when reads wait on a remote service (the JetStream backend: a
    /// durable cursor read waits up to seconds while the cursor bucket elects
    /// a leader). relayd then makes a SUB's look-ups (the durable cursor,
    /// the owner's durables, the start position) off the event loop, so the
    /// other sessions on that loop are not held. False for a local log,
    /// whose look-ups take microseconds (a thread hop would cost more).
    var readsWaitOnService: Bool { get }

    // MARK: Durable cursors

    /// Records that durable subscription `name` of `owner`, attached with
    /// `filter`, consumed up to `sequence`; the filter is stored in the same
    /// record, so it survives a restart. Ordered with appends and other
    /// cursor commits; works when the log is full.
    func commitCursor(owner: DurableOwner, name: String, sequence: UInt64, filter: String,
                      completion: @escaping @Sendable (Result<Void, StoreError>) -> Void)

    /// The committed position of a durable cursor and its filter, or nil
    /// when there is none. A record from before filters were stored has a
    /// nil ``DurableCursor/filter``.
    func durableCursor(owner: DurableOwner, name: String) throws(StoreError) -> DurableCursor?

    /// The names of `owner`'s stored durable cursors, at most `limit` of
    /// them (any `limit`: the caller only counts up to it), in no promised
    /// order. Bounded by `limit`; the broker asks this for a SUB of a new
    /// durable name, to hold each owner to `[limits] max_durables`
    /// (Protocol/relay-v1.md §4.6). Legacy schema-1 cursors are not counted.
    func durableNames(owner: DurableOwner, limit: Int) throws(StoreError) -> [String]

    /// A cursor that an older schema keyed by principal only (schema 1 of
    /// ``MessageStore``), not yet adopted; nil when there is none. A log
    /// with no such history always returns nil.
    func legacyCursor(principal: String, name: String) throws(StoreError) -> UInt64?

    /// Gives a legacy cursor to `owner`: commits `owner`'s cursor at
    /// `sequence` with `filter`, then forgets the legacy one, so it is handed out once.
    func adoptLegacyCursor(principal: String, name: String, owner: DurableOwner, sequence: UInt64, filter: String,
                           completion: @escaping @Sendable (Result<Void, StoreError>) -> Void)

    // MARK: Retention, size, lifetime

    /// Runs retention and dedup-window pruning until nothing more is due;
    /// returns how many entries were deleted. (Logs also prune on their own.)
    func prune() async throws(StoreError) -> Int

    /// Size figures for the `relay_storage_bytes` gauge and `relayctl`.
    func usage() throws(StoreError) -> StorageUsage

    /// Finishes what is queued, then closes; later calls fail with
    /// ``StoreError/closed``. Idempotent. Not from a completion.
    func close()
}

/// How much a ``MessageLog`` holds: `usedBytes` in use; `allocatedBytes`
/// reserved now (LMDB's current map size; the used bytes in memory);
/// `maxBytes`, the most it may grow to before appends fail with
/// `storageFull`; and the number of `messages` stored.
public struct StorageUsage: Sendable, Equatable {
    public var usedBytes: Int, allocatedBytes: Int, maxBytes: Int, messages: Int

    /// Public so a log outside this module can report its size.
    public init(usedBytes: Int, allocatedBytes: Int, maxBytes: Int, messages: Int) {
        (self.usedBytes, self.allocatedBytes, self.maxBytes, self.messages) = (usedBytes, allocatedBytes, maxBytes, messages)
    }
}

extension MessageLog {
    /// A local log's reads do not wait on a service.
    public var readsWaitOnService: Bool { false }

    /// The committed position alone (``durableCursor(owner:name:)`` without the filter).
    public func cursor(owner: DurableOwner, name: String) throws(StoreError) -> UInt64? {
        try durableCursor(owner: owner, name: name)?.sequence
    }
}

extension MessageStore: MessageLog {
    public var dedupWindow: DedupWindow { configuration.dedup }
}
